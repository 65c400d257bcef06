"""The REST API Chalice builds, completed: its name, API Gateway's own error answers in the API's
error format, access logs, throttling and tracing."""
from __future__ import annotations

import json
from typing import Any

from .common import API_NAME, RETAIN

# API Gateway answers some requests itself, before any function runs: give them the API's error
# body. Static texts only: API Gateway's default for an unknown path echoes the Authorization
# header back. (A known path with a method it lacks is indistinguishable there from an unknown
# path: 404 ROUTE_NOT_FOUND; `make dev` answers 405 METHOD_NOT_ALLOWED with an Allow header.)
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "ROUTE_NOT_FOUND", "no route has this method and path"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "UNSUPPORTED_CONTENT_TYPE", "send JSON"),
    "REQUEST_TOO_LARGE": (413, "BODY_TOO_LARGE", "request body is too large"),
    "THROTTLED": (429, "THROTTLED", "too many requests: retry later with the same Idempotency-Key"),
    "DEFAULT_4XX": (None, "REQUEST_REFUSED", "the request was refused before it reached the service"),
    "DEFAULT_5XX": (None, "SERVICE_UNAVAILABLE", "the service is unavailable: retry with the same Idempotency-Key"),
}


def gateway_responses() -> dict[str, Any]:
    """The API definition's x-amazon-apigateway-gateway-responses: part of the API's body, they are
    deployed with the stage (a separate AWS::ApiGateway::GatewayResponse would need a new deployment)."""
    from chalicelib.api.routing import error_body

    responses: dict[str, Any] = {}
    for kind, (status, code, message) in GATEWAY_RESPONSES.items():
        response: dict[str, Any] = {
            "responseParameters": {"gatewayresponse.header.Content-Type": "'application/json'",
                                   "gatewayresponse.header.X-Content-Type-Options": "'nosniff'"},
            "responseTemplates": {"application/json": json.dumps(error_body(code, message))}}
        if status is not None:
            response["statusCode"] = str(status)
        responses[kind] = response
    return responses


API_THROTTLE = {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}


def api_resources() -> dict[str, Any]:
    """What is merged into Chalice's RestAPI, and the account-wide role it writes access logs with."""
    resources: dict[str, Any] = {}
    resources["RestAPI"] = {"Properties": {
        "Name": API_NAME,
        # Merged into Chalice's swagger: the API's title (its name) and API Gateway's own answers.
        "DefinitionBody": {"info": {"title": API_NAME}, "x-amazon-apigateway-gateway-responses": gateway_responses()},
        "TracingEnabled": True,
        "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]},
                             "Format": json.dumps({"requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
                                                   "time": "$context.requestTime", "method": "$context.httpMethod",
                                                   "path": "$context.resourcePath", "status": "$context.status",
                                                   "latencyMs": "$context.responseLatency"})},
        "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "MetricsEnabled": True, **API_THROTTLE}]}}
    # API Gateway writes access logs through one role per account and region (set here). Both are
    # account-wide: kept when a stack goes, as another stage's API may log through them.
    resources["ApiGatewayLogsRole"] = {"Type": "AWS::IAM::Role", **RETAIN, "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                          "AmazonAPIGatewayPushToCloudWatchLogs"}]}}
    resources["ApiGatewayAccount"] = {"Type": "AWS::ApiGateway::Account", **RETAIN,
                                      "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}}}
    resources["RestAPI"]["DependsOn"] = ["ApiGatewayAccount"]
    return resources
