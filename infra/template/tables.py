"""The tables, read from the PynamoDB models (key schemas and indexes), so local and deployed
tables cannot drift apart."""
from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamodb import DEFAULT_TABLES, make_tables

from .common import ENV_VARS, LOGICAL_IDS, retained_name


def _hash_first(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(keys, key=lambda k: k["KeyType"] != "HASH")


def table_resource(model: Any, table_name: Any) -> dict[str, Any]:
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
    if model.__name__ == "IdempotencyRecordModel":
        props["TimeToLiveSpecification"] = {"AttributeName": "expiration", "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": props}



def table_resources() -> dict[str, Any]:
    """Every table of the app, named after the stack (and its creation: they are retained)."""
    tables = make_tables(DEFAULT_TABLES, "us-east-1")  # only the key schemas are read
    return {logical_id: table_resource(
                getattr(tables, name),
                retained_name(f"${{AWS::StackName}}-{logical_id.removesuffix('Table').lower()}-${{CreationId}}"))
            for name, logical_id in LOGICAL_IDS.items()}


def table_environment() -> dict[str, Any]:
    """What chalicelib/config.py reads to find each table."""
    return {ENV_VARS[name]: {"Ref": logical_id} for name, logical_id in LOGICAL_IDS.items()}
