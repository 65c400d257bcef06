"""moto's transactions, as adapted in local/emulator.py: a refused transaction still leaves every
item as it was, and no table is copied to make that so (a transaction costs what it touches)."""
from __future__ import annotations

import inspect
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


def test_the_patched_names_are_where_moto_keeps_them(aws: Any, settings: Any) -> None:
    """Fails when moto moves what local/emulator.py replaces (its backup, or the copy module it uses)."""
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

    from local.emulator import _CopyKeepingTables, back_up_items_not_tables

    back_up_items_not_tables()
    original = inspect.getsource(DynamoDBBackend.transact_write_items.__wrapped__)  # type: ignore[attr-defined]
    assert "copy.deepcopy(\n                    self.tables[table_name]" in original
    assert isinstance(models.copy, _CopyKeepingTables)
    table = dynamodb_backends["123456789012"]["us-east-1"].tables[settings.outbox_table]
    assert models.copy.deepcopy(table) is table and models.copy.deepcopy({"a": [1]}) == {"a": [1]}


@pytest.fixture
def table(aws: Any, settings: Any) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(settings.outbox_table)


def test_a_refused_transaction_leaves_every_item_as_it_was(table: Any, settings: Any) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    name = settings.outbox_table
    table.put_item(Item={"outbox_id": "kept", "kind": "EVENT"})
    table.put_item(Item={"outbox_id": "deleted", "kind": "EVENT"})
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": name, "Item": {"outbox_id": {"S": "new"}, "kind": {"S": "EVENT"}}}},
            {"Update": {"TableName": name, "Key": {"outbox_id": {"S": "kept"}},
                        "UpdateExpression": "SET kind = :k", "ExpressionAttributeValues": {":k": {"S": "TIMER"}}}},
            {"Delete": {"TableName": name, "Key": {"outbox_id": {"S": "deleted"}}}},
            {"ConditionCheck": {"TableName": name, "Key": {"outbox_id": {"S": "absent"}},
                                "ConditionExpression": "attribute_exists(outbox_id)"}},
        ])
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = {i["outbox_id"]: i["kind"] for i in table.scan(ConsistentRead=True)["Items"]}
    assert items == {"kept": "EVENT", "deleted": "EVENT"}


def test_an_accepted_transaction_writes_every_item(table: Any, settings: Any) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    name = settings.outbox_table
    table.put_item(Item={"outbox_id": "kept", "kind": "EVENT"})
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": name, "Item": {"outbox_id": {"S": "new"}, "kind": {"S": "EVENT"}}}},
        {"Update": {"TableName": name, "Key": {"outbox_id": {"S": "kept"}}, "UpdateExpression": "SET kind = :k",
                    "ExpressionAttributeValues": {":k": {"S": "TIMER"}}}},
    ])
    items = {i["outbox_id"]: i["kind"] for i in table.scan(ConsistentRead=True)["Items"]}
    assert items == {"kept": "TIMER", "new": "EVENT"}


def test_moto_forgets_the_item_copies_it_made_once_they_are_dropped(table: Any, settings: Any) -> None:
    """moto's BaseModel recorded every instance ever made (local/emulator.py track_instances_weakly):
    every Query result and conditional write copies items, so `make dev` grew with each request."""
    import gc

    from moto.dynamodb.models.dynamo_type import Item

    from local.emulator import _WeakInstances

    tracked: Any = Item  # moto's metaclass adds instances_tracked
    table.put_item(Item={"outbox_id": "read-often", "kind": "EVENT"})
    client = boto3.client("dynamodb", region_name="us-east-1")
    gc.collect()
    before = len(tracked.instances_tracked)
    for _ in range(200):  # each Scan deep-copies its results, each conditional put the old item
        assert client.scan(TableName=settings.outbox_table)["Count"] == 1
        table.put_item(Item={"outbox_id": "read-often", "kind": "EVENT"}, ConditionExpression="attribute_exists(outbox_id)")
    gc.collect()
    assert isinstance(tracked.instances_tracked, _WeakInstances)
    assert len(tracked.instances_tracked) < before + 20  # not the 400 copies made
    assert any(i.attrs["outbox_id"].value == "read-often" for i in tracked.instances_tracked)  # the live one is seen
