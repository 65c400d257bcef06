"""Least privilege, proven: every AWS operation each function makes in a dispute's whole life is
allowed by that function's policy in the template, and the policy grants nothing it never used."""
from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from typing import Any

import pytest

from infra.build import function_ids
from infra.resources import LOGICAL_IDS, cloudformation, role_id
from tests.integration.evidence import Uploads, jpeg
from tests.integration.recorder import Call, recording
from tests.integration.test_timers import PROVIDERS, world


def scenario(settings, aws) -> list[Call]:
    """One dispute through every function: orders, a dispute, evidence, a timer's expiry with
    its refund paid, the moderation views, and each schedule."""
    from app import app
    from local.dispatcher import scheduled_event
    from tests.integration.api import MODERATOR, SELLER

    api, timers, _ = world(settings, aws)
    with recording() as calls:  # nested in the session's recording
        api.delivered_order()
        did = api.open_dispute()["dispute_id"]
        listed = Uploads(api, app, aws).upload(did, jpeg())
        assert listed["status"] == "ACCEPTED", listed
        assert api.get(f"/disputes/{did}/messages", SELLER).status_code == 200
        assert api.get("/moderation/disputes", MODERATOR).status_code == 200
        said = api.post(f"/disputes/{did}/messages", SELLER, {"body": "Sent the right colour."},
                        headers={"Idempotency-Key": "m-1"})
        assert said.status_code == 201, said.json_body
        timers.run_until(lambda: api.get(f"/disputes/{did}").json_body["status"] == "RESOLVED")
        timers.run_until(lambda: api.get("/orders/o-1").json_body["escrow"]["refunded"]["amount"] == 500)
        for name in ("drain-outbox", "release-escrow", "expire-evidence"):
            app.handler_map[name](scheduled_event(name), None)
    return list(calls)


@pytest.fixture(scope="module")
def recorded(base_settings, aws_account, recorded_calls) -> list[Call]:
    from dataclasses import replace

    from chalicelib import bootstrap
    from tests.support import empty_account

    settings = replace(base_settings, timer_state_machine_arn=aws_account["TIMER_STATE_MACHINE_ARN"])
    empty_account(settings, aws_account)
    try:
        scenario(settings, aws_account)
        return list(recorded_calls)
    finally:
        while PROVIDERS:
            PROVIDERS.pop().close()
        bootstrap.reset()


ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX = {"dynamodb": "dynamodb", "stepfunctions": "states", "events": "events", "s3": "s3", "sqs": "sqs"}
TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# Operations whose IAM action has another name.
ACTION = {"HeadObject": "GetObject"}


def table_arn(name: str, index: str | None = None) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}" + (f"/index/{index}" if index else "")


def required(call: Call) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs one call needs."""
    p, op = call.params, call.operation
    if call.service == "dynamodb":
        if op == "TransactWriteItems":
            return [(f"dynamodb:{TRANSACT[kind]}", table_arn(body["TableName"]))
                    for item in p["TransactItems"] for kind, body in item.items()]
        if op == "TransactGetItems":
            return [("dynamodb:GetItem", table_arn(item["Get"]["TableName"])) for item in p["TransactItems"]]
        if op in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{op}", table_arn(name)) for name in p["RequestItems"]]
        return [(f"dynamodb:{op}", table_arn(p["TableName"], p.get("IndexName")))]
    if call.service == "s3":
        return [(f"s3:{ACTION.get(op, op)}", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")]
    if call.service == "stepfunctions":
        return [(f"states:{op}", p.get("stateMachineArn") or p["executionArn"])]
    if call.service == "events":
        return [("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{e['EventBusName']}")
                for e in p["Entries"]]
    raise AssertionError(f"no policy mapping for {call.service}:{op}: add it to the template and here")


def physical(settings: Any, aws: dict[str, str]) -> dict[str, dict[str, str]]:
    """What each logical id of the template is in the emulated account: {id: {attribute: value}}."""
    queues = {name: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[1]}" for name, url in aws.items()
              if name.endswith("_URL")}
    machine = aws["TIMER_STATE_MACHINE_ARN"]
    out = {logical: {"Ref": getattr(settings, f"{name}_table"), "Arn": table_arn(getattr(settings, f"{name}_table"))}
           for name, logical in LOGICAL_IDS.items()}
    out.update({
        "DeadlineTimer": {"Ref": machine, "Name": machine.rsplit(":", 1)[1]},
        "EventBus": {"Ref": settings.event_bus_name,
                     "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{settings.event_bus_name}"},
        "EvidenceBucket": {"Ref": settings.evidence_bucket, "Arn": f"arn:aws:s3:::{settings.evidence_bucket}"},
        "TimerQueue": {"Arn": queues["TIMER_QUEUE_URL"]}, "EvidenceQueue": {"Arn": queues["EVIDENCE_QUEUE_URL"]},
        # Not provisioned locally (Lambda's async invocation has no emulator here): a name only.
        "AsyncFailuresQueue": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:buyer-protection-async-failures"},
    })
    return out


def resolve(value: Any, names: dict[str, dict[str, str]]) -> Any:
    """CloudFormation's intrinsics, as the emulated account would resolve them."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "buyer-protection"}
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return pseudo.get(value["Ref"]) or names[value["Ref"]]["Ref"]
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        return names[logical][attribute]
    if "Fn::Sub" in value:
        def one(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref in pseudo:
                return pseudo[ref]
            logical, _, attribute = ref.partition(".")
            return names[logical][attribute or "Ref"]

        return re.sub(r"\$\{([^}]+)\}", one, value["Fn::Sub"])
    return {k: resolve(v, names) for k, v in value.items()}


@pytest.fixture(scope="module")
def policies(base_settings, aws_account) -> dict[str, list[dict[str, Any]]]:
    """Each function's statements from the template, resolved against the emulated account."""
    from dataclasses import replace

    settings = replace(base_settings, timer_state_machine_arn=aws_account["TIMER_STATE_MACHINE_ARN"])
    resources = cloudformation("dev", function_ids())["Resources"]
    names = physical(settings, aws_account)
    out = {}
    for function in function_ids():
        statements = [s for p in resources[role_id(function)]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        out[function] = [{"Action": as_list(s["Action"]), "Resource": as_list(resolve(s["Resource"], names))}
                         for s in statements]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statement: dict[str, Any], action: str, arn: str) -> bool:
    return action in statement["Action"] and any(fnmatch.fnmatchcase(arn, r) for r in statement["Resource"])


def test_every_recorded_operation_is_allowed_by_its_functions_policy(recorded, policies):
    assert {c.function for c in recorded} >= {"APIHandler", "TimerFired", "EvidenceUploaded", "DrainOutbox"}
    denied = sorted({(c.function, action, arn) for c in recorded for action, arn in required(c)
                     if not any(allows(s, action, arn) for s in policies[c.function])})
    assert not denied, denied


def test_no_policy_grants_a_wildcard_action_or_a_resource_wider_than_aws_requires(policies):
    for function, statements in policies.items():
        for statement in statements:
            assert not any("*" in action for action in statement["Action"]), (function, statement)
            if statement["Resource"] == ["*"]:  # only where AWS supports no resource (X-Ray)
                assert all(a.startswith("xray:") for a in statement["Action"]), (function, statement)


def test_each_function_is_granted_only_what_it_calls(recorded, policies):
    """Every action granted on a resource is one the function was seen calling there, apart from
    its queue's event source mapping, its failure destination, logs and X-Ray."""
    infrastructure = ("sqs:", "logs:", "xray:")
    used = defaultdict(set)
    for c in recorded:
        used[c.function].update(required(c))
    unused = []
    for function in ("APIHandler", "TimerFired", "EvidenceUploaded"):  # the ones the tests drive fully
        for statement in policies[function]:
            for action in statement["Action"]:
                if action.startswith(infrastructure):
                    continue
                for resource in statement["Resource"]:
                    if not any(a == action and fnmatch.fnmatchcase(arn, resource) for a, arn in used[function]):
                        unused.append((function, action, resource))
    assert not unused, unused
