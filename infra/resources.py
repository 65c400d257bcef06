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


def cloudformation(stage: str) -> dict[str, Any]:
    """The data resources as a merge template for `chalice package`."""
    resources: dict[str, Any] = {}
    for model in (*MODELS, IdempotencyRecordModel):
        name = model.__name__
        resources[LOGICAL_IDS[name]] = table_resource(
            model, {"Fn::Sub": f"${{AWS::StackName}}-{LOGICAL_IDS[name].removesuffix('Table').lower()}"})
    return {"Resources": resources}
