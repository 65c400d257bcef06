"""The Lambda functions Chalice packages, completed: each one's least-privilege policy,
environment, reserved concurrency, event sources and failure destination; the dependencies layer."""
from __future__ import annotations

import json
from typing import Any

from chalicelib.config import STRIPE_SECRET_KEYS, STRIPE_SECRET_VAR
from infra.bundle import ARCHITECTURE, RUNTIME

from .common import ROOT, function_name, schedule_rule_name, table_arn
from .identity import CONSOLE_CLIENT_PARAMETER, console_environment

EXECUTIONS = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                         "${DeadlineTimer.Name}:*"}
UPLOADS, SERVED = {"Fn::Sub": "${EvidenceBucket.Arn}/uploads/*"}, {"Fn::Sub": "${EvidenceBucket.Arn}/evidence/*"}
# What committing a change does after the write (chalicelib/relay.py): publish domain events and
# delete the delivered outbox records (one BatchWriteItem); start and stop timers (only where the
# change owes timers).
PUBLISH: dict[str, list[Any]] = {
    "events:PutEvents": [{"Fn::GetAtt": ["EventBus", "Arn"]}],
    "dynamodb:BatchWriteItem": [table_arn("OutboxTable")],
}
RELAY: dict[str, list[Any]] = {
    **PUBLISH,
    "states:StartExecution": [{"Ref": "DeadlineTimer"}],
    "states:StopExecution": [EXECUTIONS],
}
# Where a change owes a refund, the relay hands it to the refund queue (one SendMessageBatch,
# whose IAM action is sqs:SendMessage); the pay-refunds function sends it.
OWES_REFUNDS: dict[str, list[Any]] = {"sqs:SendMessage": [{"Fn::GetAtt": ["RefundQueue", "Arn"]}]}
# A unit of work (chalicelib/adapters/dynamodb/unit_of_work.py) reads the aggregates it changes and
# writes them with the outbox records in one transaction.
UNIT_OF_WORK: dict[str, list[Any]] = {
    "dynamodb:GetItem": [table_arn("OrdersTable"), table_arn("DisputesTable")],
    "dynamodb:PutItem": [table_arn("OutboxTable")],
    "dynamodb:UpdateItem": [table_arn("OrdersTable"), table_arn("DisputesTable")],
}
# The changes that make standing facts true (registrations, disputes opening and ending, refunds
# for never shipping) write their counters and markers, reading nothing (docs/RULES.md 11).
FACTS: dict[str, list[Any]] = {
    "dynamodb:PutItem": [table_arn("ModerationTable")], "dynamodb:UpdateItem": [table_arn("ModerationTable")],
}
# The API also reads standings, signals and rules (an opening reads the rules; a rule by its key).
STANDING: dict[str, list[Any]] = {
    **FACTS, "dynamodb:GetItem": [table_arn("ModerationTable")], "dynamodb:Query": [table_arn("ModerationTable")],
}


def _merge(*grants: dict[str, list[Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for grant in grants:
        for action, resources in grant.items():
            out.setdefault(action, [])
            out[action] += [r for r in resources if r not in out[action]]
    return out


# Each function: the actions its code calls, on the resources it uses (recorded during the
# integration tests and checked by tests/integration/test_least_privilege.py).
FUNCTION_GRANTS: dict[str, dict[str, list[Any]]] = {
    "APIHandler": _merge(UNIT_OF_WORK, RELAY, OWES_REFUNDS, STANDING, {
        "dynamodb:PutItem": [table_arn("OrdersTable"), table_arn("MessagesTable"), table_arn("NotesTable"),
                             table_arn("EvidenceTable"), table_arn("IdempotencyTable")],
        "dynamodb:UpdateItem": [table_arn("EvidenceTable"), table_arn("IdempotencyTable")],
        "dynamodb:DeleteItem": [table_arn("IdempotencyTable")],
        "dynamodb:ConditionCheckItem": [table_arn("DisputesTable")],
        # A page of disputes shows the refunds its resolved ones owe: their orders in one request.
        "dynamodb:BatchGetItem": [table_arn("OrdersTable")],
        "dynamodb:Query": [table_arn("MessagesTable"), table_arn("NotesTable"), table_arn("EvidenceTable")]
                          + [table_arn(t, index=True) for t in ("OrdersTable", "DisputesTable")],
        # Presigned: the apps upload to uploads/ and download served copies with these.
        "s3:PutObject": [UPLOADS], "s3:GetObject": [SERVED],
        # The console: its session key and its Cognito client's id.
        "secretsmanager:GetSecretValue": [{"Ref": "ConsoleSessionSecret"}],
        "ssm:GetParameter": [{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                                         + CONSOLE_CLIENT_PARAMETER}],
    }),
    "TimerFired": _merge(UNIT_OF_WORK, RELAY, OWES_REFUNDS, FACTS),
    # A record that fails again is moved to the back of the outbox (UpdateItem), never dropped; a
    # refund left there is handed to the refund queue again. It reads and changes no aggregate. It
    # evaluates the standing of the sellers whose orders or defects changed (Query), and records a
    # level change with its event (UpdateItem, PutItem in one transaction).
    "DrainOutbox": _merge(RELAY, OWES_REFUNDS, {
        "dynamodb:Query": [table_arn("OutboxTable", index=True), table_arn("ModerationTable")],
        "dynamodb:UpdateItem": [table_arn("OutboxTable"), table_arn("ModerationTable")],
        "dynamodb:PutItem": [table_arn("OutboxTable")]}),
    # Sends a refund: reads the order, records the attempt and the provider's answer on it (the
    # refund's one record: no dispute is read or written) with the timers it starts (settlement,
    # retry), then forgets the outbox record (a DeleteItem on condition that it owes that
    # attempt); while the provider is unreachable it moves the record to the back of the outbox.
    "PayRefunds": _merge(RELAY, {"dynamodb:GetItem": [table_arn("OrdersTable")],
                                 "dynamodb:PutItem": [table_arn("OutboxTable")],
                                 "dynamodb:UpdateItem": [table_arn("OrdersTable"), table_arn("OutboxTable")],
                                 "dynamodb:DeleteItem": [table_arn("OutboxTable")]}),
    # Releasing changes the orders it found due (no read of its own) and publishes; no timer.
    "ReleaseEscrow": _merge(PUBLISH, {"dynamodb:Query": [table_arn("OrdersTable", index=True)],
                                      "dynamodb:UpdateItem": [table_arn("OrdersTable")],
                                      "dynamodb:PutItem": [table_arn("OutboxTable")]}),
    # Accepting evidence publishes an event; it starts and stops no timer.
    "EvidenceUploaded": _merge({k: v for k, v in RELAY.items() if not k.startswith("states:")}, {
        "dynamodb:GetItem": [table_arn("DisputesTable"), table_arn("EvidenceTable")],
        "dynamodb:PutItem": [table_arn("EvidenceTable"), table_arn("OutboxTable")],
        "dynamodb:ConditionCheckItem": [table_arn("DisputesTable")],  # accepted only while the dispute is open
        "dynamodb:UpdateItem": [table_arn("DisputesTable"), table_arn("EvidenceTable")],
        # Deletes the raw upload, and a served copy that lost a race or whose dispute closed meanwhile.
        "s3:GetObject": [UPLOADS], "s3:DeleteObject": [UPLOADS, SERVED], "s3:PutObject": [SERVED],
    }),
    # Expiring a slot or rejecting a stuck file reads the dispute, frees the party's place and
    # publishes; no timer.
    "ExpireEvidence": _merge(PUBLISH, {
        "dynamodb:Query": [table_arn("EvidenceTable", index=True)], "dynamodb:GetItem": [table_arn("DisputesTable")],
        "dynamodb:PutItem": [table_arn("EvidenceTable"), table_arn("OutboxTable")],
        # The freed place is counted on the dispute's item too (what available_actions reads).
        "dynamodb:UpdateItem": [table_arn("EvidenceTable"), table_arn("DisputesTable")],
        "s3:DeleteObject": [UPLOADS],  # the raw upload of a file stuck in processing
    }),
}
# The functions that call the payment provider: the pay-refunds function sends refunds; the API
# verifies the provider's webhooks (and cancels a newer attempt an older one's success made
# redundant). Only these read the Stripe secret; the others (the timers and the reconciler
# included: they hand refunds to the queue) get PAYMENT_PROVIDER=none and no grant.
PAYS = ("APIHandler", "PayRefunds")
STRIPE_SECRET = {"Ref": "StripeSecretArn"}
PAYMENT_GRANT: dict[str, list[Any]] = {"secretsmanager:GetSecretValue": [STRIPE_SECRET]}
# The queue each SQS-triggered function's event source mapping reads (with the function's role).
CONSUMES = {"TimerFired": "TimerQueue", "EvidenceUploaded": "EvidenceQueue", "PayRefunds": "RefundQueue"}
# Handlers that answer with the messages that failed (Powertools' batch processing, app.py):
# only those come back, not the whole batch.
REPORTS_BATCH_FAILURES = ("EvidenceUploaded", "PayRefunds")
# Scheduled (asynchronously invoked) functions send what failed after retries here.
SCHEDULED = ("ReleaseEscrow", "DrainOutbox", "ExpireEvidence")


def role_id(function_id: str) -> str:
    """The logical id of the role Chalice gives a function (its policy is merged in by this id)."""
    return "ApiHandlerRole" if function_id == "APIHandler" else f"{function_id}Role"



def function_policy(function_id: str, stripe: bool = False) -> list[dict[str, Any]]:
    """Least privilege: its own log group; the actions its code calls, on the resources it uses
    (with ``stripe``, the paying functions read the Stripe secret); its queue (event source
    mapping) or its failure destination; X-Ray."""
    log_group = {"Fn::Sub": f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:"
                            f"/aws/lambda/${{AWS::StackName}}-{function_id}:*"}
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": log_group}]
    by_resources: dict[str, list[str]] = {}
    grants = FUNCTION_GRANTS[function_id]
    if stripe and function_id in PAYS:
        grants = _merge(grants, PAYMENT_GRANT)
    for action, resources in grants.items():
        by_resources.setdefault(json.dumps(resources, sort_keys=True), []).append(action)
    statements += [{"Effect": "Allow", "Action": sorted(actions), "Resource": json.loads(key)}
                   for key, actions in sorted(by_resources.items())]
    if function_id in CONSUMES:
        statements.append({"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                         "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                           "Resource": {"Fn::GetAtt": [CONSUMES[function_id], "Arn"]}})
    if function_id in SCHEDULED:
        statements.append({"Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}})
    # X-Ray's write actions support no resource narrower than "*" (justified in infra/checkov.yaml).
    statements.append({"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                       "Resource": "*"})
    return [{"PolicyName": f"{function_id}Policy", "PolicyDocument": {"Version": "2012-10-17",
                                                                      "Statement": statements}}]


# Reserved concurrency: the API cannot take the capacity the timers, evidence and schedules need.
RESERVED_CONCURRENCY = {"TimerFired": 5, "EvidenceUploaded": 5, "PayRefunds": 5, "ReleaseEscrow": 2, "DrainOutbox": 2,
                        "ExpireEvidence": 2}


STRIPE_SECRET_PARAMETER = {
    "Type": "String", "AllowedPattern": r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$",
    "Description": "ARN of the Secrets Manager secret holding the Stripe keys: JSON with "
                   + " and ".join(STRIPE_SECRET_KEYS) + " (docs/DEPLOYMENT.md)."}


def stage_payment_provider(stage: str) -> str:
    """PAYMENT_PROVIDER of a stage in .chalice/config.json (the stage's value, else the app's)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_env = config.get("stages", {}).get(stage, {}).get("environment_variables", {})
    return str(stage_env.get("PAYMENT_PROVIDER") or config.get("environment_variables", {}).get("PAYMENT_PROVIDER")
               or "")


def payment_environment(function_id: str, stripe: bool) -> dict[str, Any]:
    """Functions that pay nothing hold no payment credentials; the paying ones of a Stripe stage
    name the secret they read (chalicelib/config.py)."""
    if function_id not in PAYS:
        return {"PAYMENT_PROVIDER": "none"}
    return {STRIPE_SECRET_VAR: STRIPE_SECRET} if stripe else {}


def function_resource(function_id: str, env: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"FunctionName": function_name(function_id), "Environment": {"Variables": env},
                             "Runtime": RUNTIME, "Layers": [{"Ref": "DependenciesLayer"}], "Tracing": "Active"}
    if function_id in RESERVED_CONCURRENCY:
        props["ReservedConcurrentExecutions"] = RESERVED_CONCURRENCY[function_id]
    if function_id in SCHEDULED:
        failures = {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]}
        props["EventInvokeConfig"] = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600,
                                      "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": failures}}}
        event = f"{function_id}Event"
        # Named, so that the failure queue's policy can name the rules that may send to it.
        props["Events"] = {event: {"Properties": {"Name": schedule_rule_name(function_id),
                                                  "DeadLetterConfig": {"Arn": failures},
                                                  "RetryPolicy": {"MaximumRetryAttempts": 3,
                                                                  "MaximumEventAgeInSeconds": 3600}}}}
    if function_id in CONSUMES:
        # Lambda's pollers would otherwise invoke past the reserved concurrency: a throttled message
        # returns to the queue and the receive counts toward maxReceiveCount, so a burst could
        # send healthy messages to the dead-letter queue. Capped at the reserved concurrency,
        # MAX_RECEIVES counts real failures only (5 x 180 s, which PROCESSING_LIMIT relies on).
        source: dict[str, Any] = {"ScalingConfig": {"MaximumConcurrency": RESERVED_CONCURRENCY[function_id]}}
        if function_id in REPORTS_BATCH_FAILURES:
            source["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
        props["Events"] = {f"{function_id}SqsEventSource": {"Properties": source}}
    # Chalice names SQS sources by ARN string, not Ref: the queues must exist first (the refund
    # queue does: every function's REFUND_QUEUE_URL refers to it); the log group must exist before
    # the function writes to it.
    return {"Properties": props, "DependsOn": ["TimerQueue", "EvidenceQueue", f"{function_id}LogGroup"]}


def layer_resources() -> dict[str, Any]:
    """The dependencies, built for the runtime (infra/bundle.py), shared by every function."""
    return {"DependenciesLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {
        "LayerName": {"Fn::Sub": "${AWS::StackName}-dependencies"}, "ContentUri": "./layer.zip",
        "CompatibleRuntimes": [RUNTIME], "CompatibleArchitectures": [ARCHITECTURE], "RetentionPolicy": "Delete"}}}


def function_resources(function_ids: list[str], env: dict[str, Any], stripe: bool) -> dict[str, Any]:
    """Each function (by its logical id) with the stack's ``env``, and its role's policy."""
    resources: dict[str, Any] = {}
    for function_id in function_ids:
        console = console_environment() if function_id == "APIHandler" else {}
        resources[function_id] = function_resource(function_id, {**env, **payment_environment(function_id, stripe),
                                                                 **console})
        resources[role_id(function_id)] = {"Properties": {"Policies": function_policy(function_id, stripe)}}
    return resources
