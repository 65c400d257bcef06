"""Least privilege, proven: every AWS operation each function makes in a dispute's whole life is
allowed by that function's policy in the template, and the policy grants nothing it never used.
The template is a Stripe stage's (it has every grant there is: the paying functions read the
Stripe secret when their container starts)."""
from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from chalicelib.config import STRIPE_SECRET_VAR
from chalicelib.relay import REFUND_LEASE
from infra.build import function_ids
from infra.bundle import BOTOCORE_SERVICES
from infra.template import cloudformation
from infra.template.common import LOGICAL_IDS
from infra.template.functions import PAYS, role_id, stage_payment_provider
from tests.integration.evidence import Uploads
from tests.integration.recorder import Call, acting_as, recording
from tests.integration.test_timers import PROVIDERS, world
from tests.integration.timers import SECONDS, fast_policy
from tests.media import jpeg


class ShiftedClock:
    """The real clock (the state machines really wait), which the scenario can move forward to
    run the schedules when their work is due."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + self.offset

    def advance(self, **kw: float) -> None:
        self.offset += timedelta(**kw)


def scenario(settings, aws) -> list[Call]:
    """Disputes through every function and every path that needs a permission: orders, a
    dispute, evidence, a timer's expiry whose refund the provider cannot take at first (the
    reconciler requeues it, then the provider refuses it and its retry timer pays it), a change
    whose request dies after its commit (the reconciler starts and stops its timers and publishes
    its events), a file whose dispute closes while it is checked, a file whose processing dies,
    the moderation and list views, a retried request that failed, and each schedule."""
    from app import app
    from chalicelib.adapters.aws import S3EvidenceStore
    from chalicelib.relay import OutboxRelay
    from local.dispatcher import scheduled_event
    from tests.integration.api import BUYER, MODERATOR, SELLER

    clock = ShiftedClock()
    # A seller rated from its first order, on watch from one defective buyer: the defect the timer's
    # refund makes changes the level, which the reconciler publishes.
    policy = fast_policy(dispute_window=timedelta(days=15), refund_retry=2 * SECONDS, standing_min_orders=1,
                         watch_buyers=1)
    api, timers, c = world(settings, aws, policy=policy, clock=clock)
    payments = PROVIDERS[-1]
    uploads = Uploads(api, app, aws)

    def schedule(name: str) -> Any:
        return app.handler_map[name](scheduled_event(name), None)

    def reconcile() -> Any:
        """The reconciler, once what is owed is older than its grace and a refund's lease (the test
        ages the records)."""
        for record in c.outbox.pending(clock.now() + timedelta(hours=1), 100):
            c.outbox.requeue(record, clock.now() - REFUND_LEASE - timedelta(minutes=1))
        return schedule("drain-outbox")

    with recording() as calls:  # nested in the session's recording
        api.delivered_order()
        did = api.open_dispute()["dispute_id"]
        listed = uploads.upload(did, jpeg())
        assert listed["status"] == "ACCEPTED", listed
        # The seller's photo counts for no checklist: accepted while the dispute is open only.
        assert uploads.upload(did, jpeg(), who=SELLER)["status"] == "ACCEPTED"
        for who, path in ((SELLER, f"/disputes/{did}/messages"), (MODERATOR, "/moderation/disputes"),
                          (BUYER, "/orders"), (SELLER, "/disputes")):
            assert api.get(path, who).status_code == 200, path
        said = api.post(f"/disputes/{did}/messages", SELLER, {"body": "Sent the right colour."},
                        headers={"Idempotency-Key": "m-1"})
        assert said.status_code == 201, said.json_body
        # The case team's notes (their own table) and claims (conditional writes on the dispute).
        noted = api.post(f"/disputes/{did}/notes", MODERATOR, {"body": "Seller answered within a day."})
        assert noted.status_code == 201, noted.json_body
        assert api.get(f"/disputes/{did}/notes", MODERATOR).status_code == 200
        # Standing, signals and the rules (the moderation table).
        for path in ("/sellers/s-1/standing", "/buyers/b-1/signals", "/moderation/rules"):
            assert api.get(path, MODERATOR).status_code == 200, path
        rule = {"description": "Counterfeits to a person", "mode": "DRY_RUN", "priority": 1,
                "when": {"reasons": ["COUNTERFEIT"]}, "then": "ESCALATE"}
        admin = ("a-1", "moderation-admins")
        assert api.call("PUT", "/moderation/rules/counterfeits", admin, rule).status_code == 200
        assert api.get("/moderation/rules/counterfeits/report", admin).status_code == 200
        # The seller stays silent: the timer grants the refund and hands it to the refund queue;
        # the pay-refunds function finds the provider unreachable, twice (the record stays in the
        # outbox, at the back; the reconciler hands it over again), then refused (a new attempt
        # is owed: its retry timer hands it over, and the function sends it).
        payments.timeout_next(2)
        timers.run_until(lambda: api.get(f"/disputes/{did}").json_body["status"] == "RESOLVED")
        timers.pay_refunds()
        assert payments.calls == 1 and payments.sent_for(refund_of(c, "o-1")) == 0
        assert reconcile() == {"delivered": 1, "failed": 0}  # and the seller's new level is published
        assert [json.loads(e["Detail"])["to"] for e in published(calls, "DrainOutbox")
                if e["DetailType"] == "seller.standing_changed"] == ["WATCH"]  # the level the defect made
        assert timers.pay_refunds() == 1 and payments.calls == 2
        payments.refuse_next(1, "card_declined")
        assert reconcile() == {"delivered": 1, "failed": 0}
        assert timers.pay_refunds() == 1 and payments.calls == 3
        timers.run_until(lambda: api.get("/orders/o-1").json_body["escrow"]["refunded"]["amount"] == 500)
        # A page of disputes shows its refunded ones' refunds: their orders in one BatchGetItem.
        [listed] = api.get("/disputes?role=buyer").json_body["items"]
        assert listed["refund"]["status"] == "SUCCEEDED", listed
        # A request that failed is not remembered: its key may be used again.
        late = api.post(f"/disputes/{did}/messages", BUYER, {"body": "Thanks."}, headers={"Idempotency-Key": "m-2"})
        assert late.status_code == 409, late.json_body

        # A file whose dispute is cancelled while it is checked: its served copy is removed.
        api.delivered_order("o-2")
        closing = api.open_dispute("o-2")["dispute_id"]
        write = S3EvidenceStore.write

        def write_then_cancel(store: Any, key: str, data: bytes, content_type: str) -> None:
            write(store, key, data, content_type)
            cancel = threading.Thread(target=lambda: api.post(f"/disputes/{closing}/cancel", BUYER, {}))
            cancel.start()  # the buyer, in a request of its own (another invocation)
            cancel.join()

        with mock.patch.object(S3EvidenceStore, "write", write_then_cancel):
            assert uploads.upload(closing, jpeg())["rejection_reason"] == "DISPUTE_CLOSED"

        # A file whose processing dies (the function is killed): the sweep rejects it later.
        api.delivered_order("o-3")
        stuck = api.open_dispute("o-3")["dispute_id"]
        slot = uploads.slot(stuck, jpeg(), "image/jpeg").json_body
        assert uploads.post(slot["upload"], jpeg()) in (200, 201, 204)
        with mock.patch("chalicelib.inspection.inspect", side_effect=MemoryError("killed")):
            uploads.deliver()
        assert uploads.listed(stuck, slot["evidence_id"])["status"] == "PROCESSING"
        unused = uploads.slot(stuck, jpeg(), "image/jpeg").json_body  # never used
        # The seller's answer is committed, then its request dies before delivering what it owes.
        with mock.patch.object(OutboxRelay, "try_deliver", return_value=0):
            rejected = api.post(f"/disputes/{stuck}/reject", SELLER, {"message": "Colour is as listed"})
        assert rejected.status_code == 200, rejected.json_body
        assert reconcile()["failed"] == 0  # stops the seller's timer, starts the negotiation's, publishes
        clock.advance(minutes=30)
        assert schedule("expire-evidence") == {"expired": 2}
        assert uploads.listed(stuck, slot["evidence_id"])["rejection_reason"] == "PROCESSING_FAILED"
        assert uploads.listed(stuck, unused["evidence_id"])["status"] == "EXPIRED"

        # An order nobody disputes: the sweep releases its escrow when protection ends.
        api.delivered_order("o-4")
        clock.advance(days=61)
        assert "o-4" in schedule("release-escrow")["released"]
    return list(calls)


def published(calls: list[Call], function: str) -> list[dict[str, Any]]:
    """The events a function put on the bus, in the recorded calls."""
    return [entry for call in calls if call.function == function and call.service == "events"
            and call.operation == "PutEvents" for entry in call.params.get("Entries", [])]


def refund_of(c: Any, order_id: str) -> str:
    """The id of the order's one refund."""
    with c.services.payments.uow() as uow:
        order = uow.orders.get(order_id)
    [refund] = order.refunds
    return str(refund.refund_id)


STAGE = "prod"


def cold_starts(aws: dict[str, str], secret_arn: str, console: dict[str, str] | None = None) -> None:
    """The first invocation of each paying function in a Stripe stage: its container is built
    from the environment the template gives it (the API function reads the console's session key
    and client id), then it reads the Stripe secret as its first refund or webhook would."""
    from aws_lambda_powertools.utilities.parameters import clear_caches
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from tests.integration.api import BUYER, Api
    from tests.support import AUDIENCE, ISSUER, keypair

    gone = json.dumps({"order_id": "o-0", "refund_id": "r-0", "attempt": 1, "outbox_id": "r-0:1:0"})
    invocations = {
        # A GET reads no secret; the first webhook reads the Stripe keys to verify it (refused: unsigned),
        # the first console sign-in the console's client id and session key.
        "APIHandler": lambda: Api(Client(app, stage_name=STAGE)).get("/disputes/d-0", BUYER).status_code == 404
        and Client(app, stage_name=STAGE).http.post("/payments/webhook", headers={"Stripe-Signature": "t=1,v1=00"},
                                                    body=b"{}").status_code == 400
        and Client(app, stage_name=STAGE).http.get("/console/login").status_code in (302, 303),
        "PayRefunds": lambda: app.handler_map["pay-refunds"](
            {"Records": [{"body": gone, "receiptHandle": "r-0", "messageId": "m-0", "attributes": {},
                          "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:refunds", "awsRegion": REGION}]},
            None) == {"batchItemFailures": []},
    }
    assert set(invocations) == set(PAYS)
    env = {"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE, "AUTH_PUBLIC_KEY": keypair()[1],
           "TIMER_STATE_MACHINE_ARN": aws["TIMER_STATE_MACHINE_ARN"], "PAYMENT_PROVIDER": "stripe",
           STRIPE_SECRET_VAR: secret_arn}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for var in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
            patch.delenv(var, raising=False)
        for function, invoke in invocations.items():
            bootstrap.reset()
            clear_caches()
            for name, value in (console or {}).items():
                if function == "APIHandler":  # the only function the template gives them
                    patch.setenv(name, value)
                else:
                    patch.delenv(name, raising=False)
            assert invoke(), function
            with acting_as(function):  # its first refund reads the keys (the read, not the refund, here)
                assert bootstrap.container().settings.payments.stripe_keys()[0] == "sk_test_least_privilege"
    bootstrap.reset()
    clear_caches()


@pytest.fixture(scope="module")
def stripe_secret(aws_account) -> str:
    import boto3

    assert stage_payment_provider(STAGE) == "stripe"
    client = boto3.client("secretsmanager", region_name=REGION)
    keys = {"api_key": "sk_test_least_privilege", "webhook_secret": "whsec_least_privilege"}
    return str(client.create_secret(Name=f"buyer-protection-{STAGE}/stripe", SecretString=json.dumps(keys))["ARN"])


@pytest.fixture(scope="module")
def console_store(aws_account) -> dict[str, str]:
    """The console's session key secret and client id parameter, as the stack makes them; the API
    function's environment naming them (infra/template/identity.py console_environment)."""
    import boto3

    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"buyer-protection-{STAGE}/console-session", SecretString="k" * 64)["ARN"]
    name = "/buyer-protection/console/client-id"  # the template's name, with this account's stack name
    boto3.client("ssm", region_name=REGION).put_parameter(Name=name, Value="console-client", Type="String",
                                                          Overwrite=True)
    return {"CONSOLE_SESSION_SECRET_ARN": str(secret), "CONSOLE_CLIENT_ID_PARAMETER": name,
            "CONSOLE_AUTH_DOMAIN": "https://buyer-protection.auth.us-east-1.amazoncognito.com"}


@pytest.fixture(scope="module")
def exercised(base_settings, aws_account, stripe_secret, console_store) -> list[Call]:
    """The cold starts' and the scenario's own calls: what "grants nothing beyond" is judged on,
    whatever else ran."""
    from dataclasses import replace

    from chalicelib import bootstrap
    from tests.support import empty_account

    settings = replace(base_settings, timer_state_machine_arn=aws_account["TIMER_STATE_MACHINE_ARN"],
                       refund_queue_url=aws_account["REFUND_QUEUE_URL"])
    empty_account(settings, aws_account)
    try:
        with recording() as cold:  # nested in the session's recording
            cold_starts(aws_account, stripe_secret, console_store)
        return list(cold) + scenario(settings, aws_account)
    finally:
        while PROVIDERS:
            PROVIDERS.pop().close()
        bootstrap.reset()


@pytest.fixture(scope="module")
def recorded(exercised, recorded_calls) -> list[Call]:
    """Every call of the session (every test's, the scenario's included): each must be allowed."""
    return list(recorded_calls)


ACCOUNT, REGION = "123456789012", "us-east-1"
PREFIX = {"dynamodb": "dynamodb", "stepfunctions": "states", "events": "events", "s3": "s3", "sqs": "sqs"}
TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
# Operations whose IAM action has another name.
ACTION = {"HeadObject": "GetObject", "SendMessageBatch": "SendMessage"}


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
    if call.service == "secretsmanager":
        return [(f"secretsmanager:{op}", p["SecretId"])]
    if call.service == "ssm":
        return [(f"ssm:{op}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{p['Name']}")]
    if call.service == "sqs":
        return [(f"sqs:{ACTION.get(op, op)}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{p['QueueUrl'].rsplit('/', 1)[1]}")]
    if call.service == "events":
        return [("events:PutEvents", f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{e['EventBusName']}")
                for e in p["Entries"]]
    raise AssertionError(f"no policy mapping for {call.service}:{op}: add it to the template and here")


def physical(settings: Any, aws: dict[str, str], secret_arn: str,
             console: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
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
        "RefundQueue": {"Arn": queues["REFUND_QUEUE_URL"], "Ref": aws["REFUND_QUEUE_URL"]},
        # Not provisioned locally (Lambda's async invocation has no emulator here): a name only.
        "AsyncFailuresQueue": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:buyer-protection-async-failures"},
        "StripeSecretArn": {"Ref": secret_arn},  # the stack's parameter
        "ConsoleSessionSecret": {"Ref": (console or {}).get("CONSOLE_SESSION_SECRET_ARN", "")},
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
def policies(base_settings, aws_account, stripe_secret, console_store) -> dict[str, list[dict[str, Any]]]:
    """Each function's statements from the template, resolved against the emulated account."""
    from dataclasses import replace

    settings = replace(base_settings, timer_state_machine_arn=aws_account["TIMER_STATE_MACHINE_ARN"])
    resources = cloudformation(STAGE, function_ids())["Resources"]
    names = physical(settings, aws_account, stripe_secret, console_store)
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
    assert {c.function for c in recorded} == set(policies)
    assert {c.service for c in recorded} <= set(BOTOCORE_SERVICES)  # the bundle keeps their data
    denied = sorted({(c.function, action, arn) for c in recorded for action, arn in required(c)
                     if not any(allows(s, action, arn) for s in policies[c.function])})
    assert not denied, denied


def test_no_policy_grants_a_wildcard_action_or_a_resource_wider_than_aws_requires(policies):
    for function, statements in policies.items():
        for statement in statements:
            assert not any("*" in action for action in statement["Action"]), (function, statement)
            if statement["Resource"] == ["*"]:  # only where AWS supports no resource (X-Ray)
                assert all(a.startswith("xray:") for a in statement["Action"]), (function, statement)


def test_each_function_is_granted_only_what_it_calls(exercised, policies):
    """Every action granted on a resource is one the function was seen calling there, apart from
    its queue's event source mapping, its failure destination, logs and X-Ray."""
    infrastructure = ("sqs:", "logs:", "xray:")
    used = defaultdict(set)
    for c in exercised:
        used[c.function].update(required(c))
    unused = []
    for function in policies:
        for statement in policies[function]:
            for action in statement["Action"]:
                if action.startswith(infrastructure):
                    continue
                for resource in statement["Resource"]:
                    if not any(a == action and fnmatch.fnmatchcase(arn, resource) for a, arn in used[function]):
                        unused.append((function, action, resource))
    assert not unused, "granted, never used:\n" + "\n".join(map(str, unused))


def test_the_stripe_secret_is_read_by_the_paying_functions_only_and_only_that_one(exercised, stripe_secret,
                                                                                   console_store):
    reads = {(c.function, c.operation, c.params["SecretId"]) for c in exercised if c.service == "secretsmanager"}
    console_key = ("APIHandler", "GetSecretValue", console_store["CONSOLE_SESSION_SECRET_ARN"])
    assert reads - {console_key} == {(function, "GetSecretValue", stripe_secret) for function in PAYS}


def test_the_consoles_key_and_client_id_are_read_by_the_api_function_only(exercised, console_store):
    key = console_store["CONSOLE_SESSION_SECRET_ARN"]
    reads = {(c.function, c.service, c.operation) for c in exercised
             if c.service == "ssm" or (c.service == "secretsmanager" and c.params["SecretId"] == key)}
    assert reads == {("APIHandler", "secretsmanager", "GetSecretValue"), ("APIHandler", "ssm", "GetParameter")}
