"""Who may call: the Cognito user pool of people and the platform's machine clients."""
from __future__ import annotations

from typing import Any

# The resource server the platform's services get scopes on (client credentials).
RESOURCE_SERVER = "buyer-protection"
# Machine clients and the scopes each is granted (chalicelib/adapters/auth.py names the scopes).
SERVICE_CLIENTS = {"CheckoutClient": ("checkout", ["orders.write"]),
                   "CarrierTrackingClient": ("carrier-tracking", ["tracking.write"])}
SCOPE_DESCRIPTIONS = {"orders.write": "Register paid orders (checkout)",
                      "tracking.write": "Report carrier tracking scans (carrier tracking)"}
ISSUER = {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"}
# The console (deployed): where it is served, where its client id is kept, its sign-in domain.
CONSOLE_URL = "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/console"
CONSOLE_CLIENT_PARAMETER = "/${AWS::StackName}/console/client-id"
HOSTED_UI = "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"


def identity_resources() -> dict[str, Any]:
    """People sign in to a Cognito user pool through the mobile apps' client (ID tokens carry the
    `moderators` and `moderation-admins` groups); the platform's services get access tokens by client credentials, with
    scopes on this service's resource server."""
    resources: dict[str, Any] = {
        "UserPool": {"Type": "AWS::Cognito::UserPool", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
                     "Properties": {
            "UserPoolName": {"Fn::Sub": "${AWS::StackName}-users"},
            "UsernameAttributes": ["email"], "AutoVerifiedAttributes": ["email"],
            "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
            "Policies": {"PasswordPolicy": {"MinimumLength": 12, "RequireLowercase": True, "RequireNumbers": True,
                                            "RequireSymbols": False, "RequireUppercase": True,
                                            "TemporaryPasswordValidityDays": 3}},
            "MfaConfiguration": "OPTIONAL", "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "DeletionProtection": "ACTIVE"}},
        "ModeratorsGroup": {"Type": "AWS::Cognito::UserPoolGroup", "Properties": {
            "GroupName": "moderators", "UserPoolId": {"Ref": "UserPool"},
            "Description": "Moderators decide escalated disputes and retry failed refunds."}},
        "ModerationAdminsGroup": {"Type": "AWS::Cognito::UserPoolGroup", "Properties": {
            "GroupName": "moderation-admins", "UserPoolId": {"Ref": "UserPool"},
            "Description": "Moderation admins manage the auto-resolution rules (docs/RULES.md)."}},
        "ServicesGroup": {"Type": "AWS::Cognito::UserPoolGroup", "Properties": {
            "GroupName": "services", "UserPoolId": {"Ref": "UserPool"},
            "Description": "Service accounts signing in as users (API version 1); client credentials are preferred."}},
        "MobileAppClient": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {
            "ClientName": {"Fn::Sub": "${AWS::StackName}-mobile"}, "UserPoolId": {"Ref": "UserPool"},
            "GenerateSecret": False,
            # SRP for the apps; the admin flow needs IAM credentials (an operator's CLI, never a phone).
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
            "PreventUserExistenceErrors": "ENABLED", "EnableTokenRevocation": True,
            "IdTokenValidity": 60, "AccessTokenValidity": 60, "RefreshTokenValidity": 30,
            "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"}}},
        # The token endpoint (/oauth2/token) for client credentials lives on the pool's domain.
        "UserPoolDomain": {"Type": "AWS::Cognito::UserPoolDomain", "Properties": {
            "UserPoolId": {"Ref": "UserPool"}, "Domain": {"Fn::Sub": "${AWS::StackName}-${AWS::AccountId}"}}},
        # The case team's console signs in through the hosted UI on that domain: a public client
        # (PKCE, no secret) whose ID tokens last a working day, the console session's longest.
        "ConsoleAppClient": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {
            "ClientName": {"Fn::Sub": "${AWS::StackName}-console"}, "UserPoolId": {"Ref": "UserPool"},
            "GenerateSecret": False, "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": ["openid", "email", "profile"], "SupportedIdentityProviders": ["COGNITO"],
            "CallbackURLs": [{"Fn::Sub": f"{CONSOLE_URL}/callback"}],
            "LogoutURLs": [{"Fn::Sub": f"{CONSOLE_URL}/signed-out"}],
            "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"], "PreventUserExistenceErrors": "ENABLED",
            "EnableTokenRevocation": True, "IdTokenValidity": 480, "AccessTokenValidity": 60,
            "RefreshTokenValidity": 1,
            "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"}}},
        # The API function reads the console client's id here: referring to the client from its
        # environment would make a cycle (client -> callback URL -> API -> function -> client).
        "ConsoleClientIdParameter": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": {"Fn::Sub": CONSOLE_CLIENT_PARAMETER}, "Type": "String", "Value": {"Ref": "ConsoleAppClient"},
            "Description": "The console's Cognito app client id (read by the API function)."}},
        # Signs the console's session cookies, the same key in every container of the API function.
        "ConsoleSessionSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Description": "Signs the case console's session cookies (HS256); replacing it signs everyone out.",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}}},
        "ServicesResourceServer": {"Type": "AWS::Cognito::UserPoolResourceServer", "Properties": {
            "UserPoolId": {"Ref": "UserPool"}, "Identifier": RESOURCE_SERVER, "Name": "buyer-protection API",
            "Scopes": [{"ScopeName": name, "ScopeDescription": why} for name, why in SCOPE_DESCRIPTIONS.items()]}},
    }
    for logical_id, (name, scopes) in SERVICE_CLIENTS.items():
        resources[logical_id] = {"Type": "AWS::Cognito::UserPoolClient", "DependsOn": "ServicesResourceServer",
                                 "Properties": {
            "ClientName": {"Fn::Sub": f"${{AWS::StackName}}-{name}"}, "UserPoolId": {"Ref": "UserPool"},
            "GenerateSecret": True, "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["client_credentials"],
            "AllowedOAuthScopes": [f"{RESOURCE_SERVER}/{scope}" for scope in scopes],
            "SupportedIdentityProviders": ["COGNITO"], "EnableTokenRevocation": True,
            "AccessTokenValidity": 60, "TokenValidityUnits": {"AccessToken": "minutes"},
            "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"]}}
    return resources


def console_environment() -> dict[str, Any]:
    """The API function's console settings (chalicelib/config.py ConsoleSettings): the hosted UI,
    where the console client's id is, and the session key's secret."""
    return {"CONSOLE_AUTH_DOMAIN": {"Fn::Sub": HOSTED_UI},
            "CONSOLE_CLIENT_ID_PARAMETER": {"Fn::Sub": CONSOLE_CLIENT_PARAMETER},
            "CONSOLE_SESSION_SECRET_ARN": {"Ref": "ConsoleSessionSecret"}}


def auth_environment() -> dict[str, Any]:
    """What chalicelib/config.py reads to verify tokens, from the stack's own pool and clients."""
    return {"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": {"Ref": "MobileAppClient"},
            "AUTH_JWKS_URL": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"
                                         "/.well-known/jwks.json"},
            "AUTH_RESOURCE_SERVER": RESOURCE_SERVER}
