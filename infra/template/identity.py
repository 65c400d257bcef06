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


def identity_resources() -> dict[str, Any]:
    """People sign in to a Cognito user pool through the mobile apps' client (ID tokens carry the
    `moderators` group); the platform's services get access tokens by client credentials, with
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


def auth_environment() -> dict[str, Any]:
    """What chalicelib/config.py reads to verify tokens, from the stack's own pool and clients."""
    return {"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": {"Ref": "MobileAppClient"},
            "AUTH_JWKS_URL": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"
                                         "/.well-known/jwks.json"},
            "AUTH_RESOURCE_SERVER": RESOURCE_SERVER}
