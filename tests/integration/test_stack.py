"""The deployed stack and the local one come from the same definitions and cannot drift."""
from __future__ import annotations

import boto3

from infra.build import function_ids
from infra.template import cloudformation
from infra.template.common import LOGICAL_IDS
from infra.template.functions import role_id


def keys(schema):
    return sorted((k["AttributeName"], k["KeyType"]) for k in schema)


def test_every_lambda_function_gets_the_tables_and_a_scoped_policy():
    ids = function_ids()
    assert ids[0] == "APIHandler" and "ReleaseEscrow" in ids
    resources = cloudformation("dev", ids)["Resources"]
    for function_id in ids:
        assert {"TimerQueue", "EvidenceQueue"} <= set(resources[function_id]["DependsOn"])
        env = resources[function_id]["Properties"]["Environment"]["Variables"]
        assert env["ORDERS_TABLE"] == {"Ref": "OrdersTable"}
        statements = resources[role_id(function_id)]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        # "*" only for X-Ray, whose actions take no narrower resource.
        assert all(s["Resource"] not in ("*", ["*"]) or all(a.startswith("xray:") for a in s["Action"])
                   for s in statements)
        assert not any("dynamodb:Scan" in s["Action"] for s in statements)


def test_local_tables_have_the_key_schemas_and_indexes_of_the_template(aws, settings):
    client = boto3.client("dynamodb", region_name="us-east-1")
    resources = cloudformation("dev", ["APIHandler"])["Resources"]
    local_names = {"OrdersTable": settings.orders_table, "DisputesTable": settings.disputes_table,
                   "MessagesTable": settings.messages_table, "NotesTable": settings.notes_table,
                   "ModerationTable": settings.moderation_table,
                   "OutboxTable": settings.outbox_table,
                   "EvidenceTable": settings.evidence_table,
                   "IdempotencyTable": settings.idempotency_table}
    assert set(local_names) == set(LOGICAL_IDS.values())
    for logical_id, table_name in local_names.items():
        declared = resources[logical_id]["Properties"]
        actual = client.describe_table(TableName=table_name)["Table"]
        assert keys(actual["KeySchema"]) == keys(declared["KeySchema"])
        assert {g["IndexName"]: keys(g["KeySchema"]) for g in actual.get("GlobalSecondaryIndexes", [])} \
            == {g["IndexName"]: keys(g["KeySchema"]) for g in declared.get("GlobalSecondaryIndexes", [])}
