"""One definition of the stack's data resources, used two ways:

- ``provision(settings)`` creates them in the emulated AWS of `make dev` and the tests;
- ``cloudformation(stage)`` renders them as CloudFormation for `chalice package --merge-template`.

Both read the key schemas and indexes from the PynamoDB models, so local and deployed tables
cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from pynamodb.models import Model

from chalicelib.adapters.dynamodb import (
    MODELS,
    IdempotencyRecordModel,
    bind_models,
    create_idempotency_table,
    create_tables,
)
from chalicelib.config import Settings

LOGICAL_IDS = {"OrderModel": "OrdersTable", "DisputeModel": "DisputesTable", "MessageModel": "MessagesTable",
               "IdempotencyRecordModel": "IdempotencyTable"}
ENV_VARS = {"OrderModel": "ORDERS_TABLE", "DisputeModel": "DISPUTES_TABLE", "MessageModel": "MESSAGES_TABLE",
            "IdempotencyRecordModel": "IDEMPOTENCY_TABLE"}


def provision(settings: Settings) -> None:
    """Create every resource the app needs (idempotent)."""
    bind_models(settings.tables, settings.region)
    create_tables(wait=False)
    create_idempotency_table(settings.idempotency_table)


def _hash_first(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(keys, key=lambda k: k["KeyType"] != "HASH")


def table_resource(model: type[Model], table_name: Any) -> dict[str, Any]:
    """A model's table as an AWS::DynamoDB::Table resource."""
    schema = model._get_schema()
    props: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(schema["attribute_definitions"], key=lambda a: a["AttributeName"]),
        "KeySchema": _hash_first(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    gsis = schema.get("global_secondary_indexes") or []
    if gsis:
        props["GlobalSecondaryIndexes"] = [{
            "IndexName": g["index_name"],
            "KeySchema": _hash_first(g["key_schema"]),
            "Projection": {"ProjectionType": g["projection"]["ProjectionType"]},
        } for g in gsis]
    if model is IdempotencyRecordModel:
        props["TimeToLiveSpecification"] = {"AttributeName": "expiration", "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": props}


def _table_arns() -> list[Any]:
    arns: list[Any] = []
    for logical_id in LOGICAL_IDS.values():
        arn = {"Fn::GetAtt": [logical_id, "Arn"]}
        arns += [arn, {"Fn::Sub": f"${{{logical_id}.Arn}}/index/*"}]
    return arns


def function_policy(role_name: str) -> list[dict[str, Any]]:
    """Least privilege: logs, and item-level DynamoDB actions on this stack's tables only."""
    return [{"PolicyName": f"{role_name}Policy", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "arn:aws:logs:*:*:*"},
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                       "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"],
         "Resource": _table_arns()},
    ]}}]


def cloudformation(function_ids: list[str]) -> dict[str, Any]:
    """The merge template for `chalice package`: the tables, and for each Lambda function
    (by its logical id) the table names in its environment and a policy scoped to them."""
    resources: dict[str, Any] = {}
    for model in (*MODELS, IdempotencyRecordModel):
        name = model.__name__
        resources[LOGICAL_IDS[name]] = table_resource(
            model, {"Fn::Sub": f"${{AWS::StackName}}-{LOGICAL_IDS[name].removesuffix('Table').lower()}"})
    env = {ENV_VARS[name]: {"Ref": logical_id} for name, logical_id in LOGICAL_IDS.items()}
    for function_id in function_ids:
        role = "ApiHandlerRole" if function_id == "APIHandler" else f"{function_id}Role"
        resources[function_id] = {"Properties": {"Environment": {"Variables": env}}}
        resources[role] = {"Properties": {"Policies": function_policy(role)}}
    return {"Resources": resources}
