"""One definition of the stack's data resources, used two ways:

- ``provision(settings)`` creates them in the emulated AWS of `make dev` and the tests;
- ``cloudformation(stage)`` renders them as CloudFormation for `chalice package --merge-template`.

Both read the key schemas and indexes from the PynamoDB models, so local and deployed tables
cannot drift apart.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from chalicelib.adapters.aws import EVENT_SOURCE
from chalicelib.adapters.dynamodb import DEFAULT_TABLES, create_tables, make_tables
from chalicelib.config import (
    DEFAULT_EVIDENCE_QUEUE,
    DEFAULT_TIMER_QUEUE,
    STRIPE_SECRET_KEYS,
    STRIPE_SECRET_VAR,
    Settings,
)
from chalicelib.metrics import DIMENSION as METRICS_DIMENSION
from chalicelib.metrics import NAMESPACE as METRICS_NAMESPACE
from infra.bundle import ARCHITECTURE, RUNTIME

LOGICAL_IDS = {"orders": "OrdersTable", "disputes": "DisputesTable", "messages": "MessagesTable",
               "notes": "NotesTable", "moderation": "ModerationTable",
               "outbox": "OutboxTable", "evidence": "EvidenceTable", "idempotency": "IdempotencyTable"}
ENV_VARS = {"orders": "ORDERS_TABLE", "disputes": "DISPUTES_TABLE", "messages": "MESSAGES_TABLE",
            "notes": "NOTES_TABLE", "moderation": "MODERATION_TABLE",
            "outbox": "OUTBOX_TABLE", "evidence": "EVIDENCE_TABLE", "idempotency": "IDEMPOTENCY_TABLE"}
# What a stack keeps when deleted (DeletionPolicy Retain: the tables, the evidence bucket) is named
# with the first 8 characters of the stack's id, new at every creation: a stack deleted (after a
# failed first deploy, say) is created again under the same name without colliding with what the
# last one left behind (docs/DEPLOYMENT.md, Teardown).
CREATION_ID = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]}


def retained_name(pattern: str) -> dict[str, Any]:
    """``pattern`` (with ``${CreationId}`` in it) for a resource a deleted stack leaves behind."""
    assert "${CreationId}" in pattern
    return {"Fn::Sub": [pattern, {"CreationId": CREATION_ID}]}


BUCKET_NAME = retained_name("${AWS::StackName}-evidence-${AWS::AccountId}-${CreationId}")
BUCKET_ARN = retained_name("arn:${AWS::Partition}:s3:::${AWS::StackName}-evidence-${AWS::AccountId}-${CreationId}")
ROOT = Path(__file__).resolve().parent.parent
TIMER_MACHINE = "deadline_timer"
TIMER_MACHINE_NAME = "buyer-protection-deadline-timer"
# Lambda retries a failing timer message this often before it goes to the dead-letter queue.
MAX_RECEIVES = 5


def state_machine_definition(name: str = TIMER_MACHINE) -> dict[str, Any]:
    """A definition from statemachines/, as an object (so cfn-lint checks it)."""
    return json.loads((ROOT / "statemachines" / f"{name}.asl.json").read_text())


def substitute(definition: dict[str, Any], values: dict[str, str]) -> str:
    """What CloudFormation's DefinitionSubstitutions does, for local runs."""
    text = json.dumps(definition)
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _queue_with_dlq(sqs: Any, name: str, visibility_timeout: int) -> tuple[str, str]:
    """A queue whose messages go to ``<name>-dlq`` after MAX_RECEIVES tries; returns both URLs."""
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility_timeout),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": _queue_arn(sqs, dlq),
                                     "maxReceiveCount": str(MAX_RECEIVES)})})["QueueUrl"]
    return queue, dlq


def provision(settings: Settings, visibility_timeout: int = 30) -> dict[str, str]:
    """Create every resource the app needs in the current (emulated) account; idempotent.
    Returns the environment the app needs to find them."""
    create_tables(make_tables(settings.tables, settings.region), wait=False)
    sqs = boto3.client("sqs", region_name=settings.region)
    queue, dlq = _queue_with_dlq(sqs, settings.timer_queue_name, visibility_timeout)
    events = boto3.client("events", region_name=settings.region)
    if not any(b["Name"] == settings.event_bus_name for b in events.list_event_buses()["EventBuses"]):
        events.create_event_bus(Name=settings.event_bus_name)
    # Locally, every domain event is also copied to a queue, so a developer (or a test) can read them.
    tap = sqs.create_queue(QueueName=f"{settings.event_bus_name}-events-tap")["QueueUrl"]
    tap_arn = _queue_arn(sqs, tap)
    events.put_rule(Name="all-dispute-events", EventBusName=settings.event_bus_name,
                    EventPattern=json.dumps({"source": [EVENT_SOURCE]}))
    events.put_targets(Rule="all-dispute-events", EventBusName=settings.event_bus_name,
                       Targets=[{"Id": "tap", "Arn": tap_arn}])
    # Evidence: a private bucket whose uploads/ prefix reports new objects to a queue.
    evidence_queue, evidence_dlq = _queue_with_dlq(sqs, settings.evidence_queue_name, visibility_timeout)
    evidence_queue_arn = _queue_arn(sqs, evidence_queue)
    s3 = boto3.client("s3", region_name=settings.region)
    s3.create_bucket(Bucket=settings.evidence_bucket)
    s3.put_bucket_notification_configuration(Bucket=settings.evidence_bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": evidence_queue_arn, "Events": ["s3:ObjectCreated:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
    sfn = boto3.client("stepfunctions", region_name=settings.region)
    definition = substitute(state_machine_definition(), {"TimerQueueUrl": queue})
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    arn = existing.get(TIMER_MACHINE_NAME) or sfn.create_state_machine(
        name=TIMER_MACHINE_NAME, definition=definition, type="STANDARD",
        roleArn="arn:aws:iam::123456789012:role/deadline-timer")["stateMachineArn"]
    return {"TIMER_STATE_MACHINE_ARN": arn, "TIMER_QUEUE_URL": queue, "TIMER_DLQ_URL": dlq,
            "EVENTS_TAP_QUEUE_URL": tap, "EVIDENCE_QUEUE_URL": evidence_queue, "EVIDENCE_DLQ_URL": evidence_dlq}


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


def _table_arns() -> list[Any]:
    arns: list[Any] = []
    for logical_id in LOGICAL_IDS.values():
        arn = {"Fn::GetAtt": [logical_id, "Arn"]}
        arns += [arn, {"Fn::Sub": f"${{{logical_id}.Arn}}/index/*"}]
    return arns


def _table(logical_id: str, index: bool = False) -> dict[str, str]:
    return {"Fn::Sub": f"${{{logical_id}.Arn}}" + ("/index/*" if index else "")}


EXECUTIONS = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                         "${DeadlineTimer.Name}:*"}
UPLOADS, SERVED = {"Fn::Sub": "${EvidenceBucket.Arn}/uploads/*"}, {"Fn::Sub": "${EvidenceBucket.Arn}/evidence/*"}
# What committing a change does after the write (chalicelib/relay.py): publish domain events and
# delete the delivered outbox records (one BatchWriteItem); start and stop timers (only where the
# change owes timers).
PUBLISH: dict[str, list[Any]] = {
    "events:PutEvents": [{"Fn::GetAtt": ["EventBus", "Arn"]}],
    "dynamodb:BatchWriteItem": [_table("OutboxTable")],
}
RELAY: dict[str, list[Any]] = {
    **PUBLISH,
    "states:StartExecution": [{"Ref": "DeadlineTimer"}],
    "states:StopExecution": [EXECUTIONS],
}
# A unit of work (chalicelib/adapters/dynamodb/unit_of_work.py) reads the aggregates it changes and
# writes them with the outbox records in one transaction.
# The console (deployed): where it is served, where its client id is kept, its sign-in domain.
CONSOLE_URL = "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/console"
CONSOLE_CLIENT_PARAMETER = "/${AWS::StackName}/console/client-id"
HOSTED_UI = "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"


UNIT_OF_WORK: dict[str, list[Any]] = {
    "dynamodb:GetItem": [_table("OrdersTable"), _table("DisputesTable")],
    "dynamodb:PutItem": [_table("OutboxTable")],
    "dynamodb:UpdateItem": [_table("OrdersTable"), _table("DisputesTable")],
}
# The changes that make standing facts true (registrations, disputes opening and ending, refunds
# for never shipping) write their counters and markers, reading nothing (docs/RULES.md 11).
FACTS: dict[str, list[Any]] = {
    "dynamodb:PutItem": [_table("ModerationTable")], "dynamodb:UpdateItem": [_table("ModerationTable")],
}
# The API also reads standings, signals and rules (an opening reads the rules; a rule by its key).
STANDING: dict[str, list[Any]] = {
    **FACTS, "dynamodb:GetItem": [_table("ModerationTable")], "dynamodb:Query": [_table("ModerationTable")],
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
    "APIHandler": _merge(UNIT_OF_WORK, RELAY, STANDING, {
        "dynamodb:PutItem": [_table("OrdersTable"), _table("MessagesTable"), _table("NotesTable"),
                             _table("EvidenceTable"), _table("IdempotencyTable")],
        "dynamodb:UpdateItem": [_table("EvidenceTable"), _table("IdempotencyTable")],
        "dynamodb:DeleteItem": [_table("IdempotencyTable")],
        "dynamodb:ConditionCheckItem": [_table("DisputesTable")],
        "dynamodb:Query": [_table("MessagesTable"), _table("NotesTable"), _table("EvidenceTable")]
                          + [_table(t, index=True) for t in ("OrdersTable", "DisputesTable")],
        # Presigned: the apps upload to uploads/ and download served copies with these.
        "s3:PutObject": [UPLOADS], "s3:GetObject": [SERVED],
        # The console: its session key and its Cognito client's id.
        "secretsmanager:GetSecretValue": [{"Ref": "ConsoleSessionSecret"}],
        "ssm:GetParameter": [{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                                         + CONSOLE_CLIENT_PARAMETER}],
    }),
    "TimerFired": _merge(UNIT_OF_WORK, RELAY, FACTS),
    # A record that fails again is moved to the back of the outbox (UpdateItem), never dropped.
    "DrainOutbox": _merge(UNIT_OF_WORK, RELAY, {"dynamodb:Query": [_table("OutboxTable", index=True)],
                                                "dynamodb:UpdateItem": [_table("OutboxTable")]}),
    # Releasing changes the orders it found due (no read of its own) and publishes; no timer.
    "ReleaseEscrow": _merge(PUBLISH, {"dynamodb:Query": [_table("OrdersTable", index=True)],
                                      "dynamodb:UpdateItem": [_table("OrdersTable")],
                                      "dynamodb:PutItem": [_table("OutboxTable")]}),
    # Accepting evidence publishes an event; it starts and stops no timer.
    "EvidenceUploaded": _merge({k: v for k, v in RELAY.items() if not k.startswith("states:")}, {
        "dynamodb:GetItem": [_table("DisputesTable"), _table("EvidenceTable")],
        "dynamodb:PutItem": [_table("EvidenceTable"), _table("OutboxTable")],
        "dynamodb:ConditionCheckItem": [_table("DisputesTable")],  # accepted only while the dispute is open
        "dynamodb:UpdateItem": [_table("DisputesTable"), _table("EvidenceTable")],
        # Deletes the raw upload, and a served copy that lost a race or whose dispute closed meanwhile.
        "s3:GetObject": [UPLOADS], "s3:DeleteObject": [UPLOADS, SERVED], "s3:PutObject": [SERVED],
    }),
    # Expiring a slot or rejecting a stuck file reads the dispute, frees the party's place and
    # publishes; no timer.
    "ExpireEvidence": _merge(PUBLISH, {
        "dynamodb:Query": [_table("EvidenceTable", index=True)], "dynamodb:GetItem": [_table("DisputesTable")],
        "dynamodb:PutItem": [_table("EvidenceTable"), _table("OutboxTable")],
        # The freed place is counted on the dispute's item too (what available_actions reads).
        "dynamodb:UpdateItem": [_table("EvidenceTable"), _table("DisputesTable")],
        "s3:DeleteObject": [UPLOADS],  # the raw upload of a file stuck in processing
    }),
}
# The functions that send refunds (the relay after a commit, the reconciler) or verify the
# provider's webhooks (the API). Only these read the Stripe secret; the others get
# PAYMENT_PROVIDER=none and no grant.
PAYS = ("APIHandler", "TimerFired", "DrainOutbox")
STRIPE_SECRET = {"Ref": "StripeSecretArn"}
PAYMENT_GRANT: dict[str, list[Any]] = {"secretsmanager:GetSecretValue": [STRIPE_SECRET]}
# The queue each SQS-triggered function's event source mapping reads (with the function's role).
CONSUMES = {"TimerFired": "TimerQueue", "EvidenceUploaded": "EvidenceQueue"}
# Scheduled (asynchronously invoked) functions send what failed after retries here.
SCHEDULED = ("ReleaseEscrow", "DrainOutbox", "ExpireEvidence")


def role_id(function_id: str) -> str:
    """The logical id of the role Chalice gives a function (its policy is merged in by this id)."""
    return "ApiHandlerRole" if function_id == "APIHandler" else f"{function_id}Role"


def function_name(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{function_id}"}


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


# Dead-letter queues keep a message the longest SQS allows (14 days). A standard queue's message
# keeps its original enqueue time in the dead-letter queue, so source queues keep theirs 10 days:
# a message reaching a dead-letter queue has 4 days left there at least. A consumer may be down
# 10 days and lose nothing; the age alarm fires after an hour.
DLQ_RETENTION = 14 * 24 * 3600
QUEUE_RETENTION = 10 * 24 * 3600
OLDEST_MESSAGE_ALARM_SECONDS = 3600
# Every alarm notifies the operators' topic (subscribe to it after deploying: README).
NOTIFY: dict[str, Any] = {"AlarmActions": [{"Ref": "AlarmTopic"}], "OKActions": [{"Ref": "AlarmTopic"}]}


def queue_alarm(queue: str, description: str, metric: str = "ApproximateNumberOfMessagesVisible",
                threshold: int = 0) -> dict[str, Any]:
    """An alarm on one of ``queue``'s metrics above ``threshold``."""
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description, **NOTIFY,
        "Namespace": "AWS/SQS", "MetricName": metric,
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
        "Statistic": "Maximum", "Period": 300, "EvaluationPeriods": 1, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}


def dead_letter_queue(queue_name: Any) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": queue_name, "MessageRetentionPeriod": DLQ_RETENTION, "SqsManagedSseEnabled": True}}


def queue_resources(prefix: str, queue_name: Any, alarm_description: str) -> dict[str, Any]:
    """<prefix>Queue, its <prefix>DeadLetterQueue (after MAX_RECEIVES tries), an alarm on the
    dead-letter queue and one on the age of the queue's oldest message (a consumer down)."""
    dlq = f"{prefix}DeadLetterQueue"
    return {
        dlq: dead_letter_queue(f"{queue_name}-dlq"),
        f"{prefix}Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": queue_name, "VisibilityTimeout": 180, "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": QUEUE_RETENTION,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": MAX_RECEIVES}}},
        f"{prefix}DeadLetterAlarm": queue_alarm(dlq, alarm_description),
        f"{prefix}QueueAgeAlarm": queue_alarm(
            f"{prefix}Queue", f"A message waited over {OLDEST_MESSAGE_ALARM_SECONDS // 60} min in the queue: "
                              "its consumer is down or throttled.",
            metric="ApproximateAgeOfOldestMessage", threshold=OLDEST_MESSAGE_ALARM_SECONDS),
    }


NONCURRENT_DAYS = 30


def evidence_resources(evidence_queue_name: str) -> dict[str, Any]:
    """The evidence bucket (private, encrypted, raw uploads cleaned after a day) and the queue its
    uploads/ prefix reports to, with a dead-letter queue and an alarm."""
    return {
        **queue_resources("Evidence", evidence_queue_name, "An evidence upload could not be processed after retries."),
        "EvidenceQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "EvidenceQueue"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["EvidenceQueue", "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": BUCKET_ARN},
                              "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}}},
        "EvidenceBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "EvidenceBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [{"Fn::GetAtt": ["EvidenceBucket", "Arn"]}, {"Fn::Sub": "${EvidenceBucket.Arn}/*"}],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
        "EvidenceBucket": {"Type": "AWS::S3::Bucket", "DependsOn": "EvidenceQueuePolicy",
                           "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
            "BucketName": BUCKET_NAME,
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            # Uploads never processed (or processed: the served copy lives under evidence/) go after a day.
            "LifecycleConfiguration": {"Rules": [
                {"Id": "raw-uploads", "Status": "Enabled", "Prefix": "uploads/", "ExpirationInDays": 1,
                 "NoncurrentVersionExpirationInDays": 1},
                {"Id": "abandoned-multipart", "Status": "Enabled",
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
                # The bucket is versioned: a deleted object's versions go after NONCURRENT_DAYS (time to
                # undo a mistaken delete), then its delete marker.
                {"Id": "deleted-objects", "Status": "Enabled",
                 "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                 "ExpiredObjectDeleteMarker": True}]},
            # The apps POST uploads to presigned forms and GET served copies; the form's policy pins
            # key, type and size. Origins are the web app's, per stage (parameter AppOrigins).
            "CorsConfiguration": {"CorsRules": [{"AllowedMethods": ["POST", "GET"], "AllowedOrigins": {"Ref": "AppOrigins"},
                                                 "AllowedHeaders": ["*"], "MaxAge": 3000}]},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "NotificationConfiguration": {"QueueConfigurations": [{
                "Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["EvidenceQueue", "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "uploads/"}]}}}]}}},
    }


# The business metrics' dimension (chalicelib/metrics.py): the stack's name, so two stages in one
# account never feed each other's alarms. Set as POWERTOOLS_SERVICE_NAME on every function.
METRICS_SERVICE = {"Fn::Sub": "${AWS::StackName}"}
METRICS_DIMENSIONS = [{"Name": METRICS_DIMENSION, "Value": METRICS_SERVICE}]
# Metrics the payments use cases emit (chalicelib/metrics.py), and what each alarm means.
MONEY_ALARMS = {
    "RefundsOverdue": "A refund was not settled by its deadline: it was asked again with the same key.",
    "RefundsNeedingAttention": "Every automatic attempt of a refund failed: a moderator must retry it.",
    "RefundsFailed": "The payment provider refused or failed a refund.",
    "MediationOverdue": "An escalated dispute passed its mediation deadline without a moderator's decision.",
}


def money_alarm(metric: str, why: str) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": why, **NOTIFY, "Namespace": METRICS_NAMESPACE, "MetricName": metric,
        "Dimensions": METRICS_DIMENSIONS,
        "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}


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
    `moderators` and `moderation-admins` groups); the platform's services get access tokens by client credentials, with
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
        "ModerationAdminsGroup": {"Type": "AWS::Cognito::UserPoolGroup", "Properties": {
            "GroupName": "moderation-admins", "UserPoolId": {"Ref": "UserPool"},
            "Description": "Moderation admins manage the auto-resolution rules (docs/RULES.md)."}},
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
        # The case team's console signs in through the hosted UI on that domain: a public client
        # (PKCE, no secret) whose ID tokens last a working day, the console session's longest.
        "ConsoleAppClient": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {
            "ClientName": {"Fn::Sub": "${AWS::StackName}-console"}, "UserPoolId": {"Ref": "UserPool"},
            "GenerateSecret": False, "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": ["openid", "email", "profile"], "SupportedIdentityProviders": ["COGNITO"],
            "CallbackURLs": [{"Fn::Sub": f"{CONSOLE_URL}/callback"}],
            "LogoutURLs": [{"Fn::Sub": f"{CONSOLE_URL}/signed-out"}],
            "ExplicitAuthFlows": ["ALLOW_REFRESH_TOKEN_AUTH"], "PreventUserExistenceErrors": "ENABLED",
            "EnableTokenRevocation": True, "IdTokenValidity": 480, "AccessTokenValidity": 60,
            "RefreshTokenValidity": 1,
            "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"}}},
        # The API function reads the console client's id here: referring to the client from its
        # environment would make a cycle (client -> callback URL -> API -> function -> client).
        "ConsoleClientIdParameter": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": {"Fn::Sub": CONSOLE_CLIENT_PARAMETER}, "Type": "String", "Value": {"Ref": "ConsoleAppClient"},
            "Description": "The console's Cognito app client id (read by the API function)."}},
        # Signs the console's session cookies, the same key in every container of the API function.
        "ConsoleSessionSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Description": "Signs the case console's session cookies (HS256); replacing it signs everyone out.",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True}}},
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


def console_environment() -> dict[str, Any]:
    """The API function's console settings (chalicelib/config.py ConsoleSettings): the hosted UI,
    where the console client's id is, and the session key's secret."""
    return {"CONSOLE_AUTH_DOMAIN": {"Fn::Sub": HOSTED_UI},
            "CONSOLE_CLIENT_ID_PARAMETER": {"Fn::Sub": CONSOLE_CLIENT_PARAMETER},
            "CONSOLE_SESSION_SECRET_ARN": {"Ref": "ConsoleSessionSecret"}}


def auth_environment() -> dict[str, Any]:
    """What chalicelib/config.py reads to verify tokens, from the stack's own pool and clients."""
    return {"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": {"Ref": "MobileAppClient"},
            "AUTH_JWKS_URL": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"
                                         "/.well-known/jwks.json"},
            "AUTH_RESOURCE_SERVER": RESOURCE_SERVER}


def layer_resources() -> dict[str, Any]:
    """The dependencies, built for the runtime (infra/bundle.py), shared by every function."""
    return {"DependenciesLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {
        "LayerName": {"Fn::Sub": "${AWS::StackName}-dependencies"}, "ContentUri": "./layer.zip",
        "CompatibleRuntimes": [RUNTIME], "CompatibleArchitectures": [ARCHITECTURE], "RetentionPolicy": "Delete"}}}


def outputs() -> dict[str, Any]:
    """What a newcomer needs after `make deploy`: where the API is and how to get tokens."""
    out: dict[str, Any] = {
        "UserPoolId": {"Value": {"Ref": "UserPool"}},
        "MobileAppClientId": {"Value": {"Ref": "MobileAppClient"}},
        "TokenEndpoint": {"Value": {"Fn::Sub": "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
                                               "/oauth2/token"}},
        "EvidenceBucketName": {"Value": {"Ref": "EvidenceBucket"}},
        "ConsoleURL": {"Value": {"Fn::Sub": CONSOLE_URL + "/"},
                       "Description": "The case team's console (moderators sign in with the hosted UI)."},
        "ConsoleAppClientId": {"Value": {"Ref": "ConsoleAppClient"}},
        "HostedUiEndpoint": {"Value": {"Fn::Sub": HOSTED_UI}},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
    }
    out.update({f"{logical_id}Id": {"Value": {"Ref": logical_id}} for logical_id in SERVICE_CLIENTS})
    return out


# What Step Functions needs to deliver a machine's logs to CloudWatch Logs (its documented minimum).
LOG_DELIVERY_ACTIONS = ["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                        "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy", "logs:UpdateLogDelivery"]


def messaging_resources(timer_queue_name: str) -> dict[str, Any]:
    """The timer machine, its queue (with a dead-letter queue and an alarm on it) and the bus."""
    return {
        **queue_resources("Timer", timer_queue_name,
                          "A deadline could not be applied after retries: a dispute is stuck in its phase."),
        "TimerFailedAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmDescription": "A deadline timer execution failed: its expiry never reached the queue.", **NOTIFY,
            "Namespace": "AWS/States", "MetricName": "ExecutionsFailed",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": "DeadlineTimer"}}],
            "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}},
        **{f"{metric}Alarm": money_alarm(metric, why) for metric, why in MONEY_ALARMS.items()},
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}"}}},
        "DeadlineTimerRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]},
            "Policies": [{"PolicyName": "SendToTimerQueue", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["TimerQueue", "Arn"]}}]}},
                # Step Functions' log delivery and X-Ray actions support no resource narrower than "*".
                {"PolicyName": "DeliverLogs", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": LOG_DELIVERY_ACTIONS, "Resource": "*"}]}},
                {"PolicyName": "Tracing", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["xray:GetSamplingRules", "xray:GetSamplingTargets",
                                                   "xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                     "Resource": "*"}]}}]}},
        "DeadlineTimerLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-deadline-timer"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}},
        "DeadlineTimer": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": {"Fn::Sub": "${AWS::StackName}-deadline-timer"},
            "StateMachineType": "STANDARD",
            "Definition": state_machine_definition(),
            "DefinitionSubstitutions": {"TimerQueueUrl": {"Ref": "TimerQueue"}},
            "RoleArn": {"Fn::GetAtt": ["DeadlineTimerRole", "Arn"]},
            # Failed states only, without the input and output (dispute ids): cheap, and enough to debug.
            "LoggingConfiguration": {"Level": "ERROR", "IncludeExecutionData": False, "Destinations": [
                {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["DeadlineTimerLogGroup", "Arn"]}}}]},
            "TracingConfiguration": {"Enabled": True}}},
    }


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
    from chalicelib.http import error_body

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


# The API's name, per stack: its alarms watch this stage's API only.
API_NAME = {"Fn::Sub": "${AWS::StackName}"}


def schedule_rule_name(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{function_id}"}


def schedule_rule_arn(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/"
                       f"${{AWS::StackName}}-{function_id}"}


def alarm_topic_resources() -> dict[str, Any]:
    """The operators' topic. CloudWatch cannot publish to a topic encrypted with the AWS-managed
    SNS key (its policy admits no other service): a key of the stack's own lets CloudWatch use it."""
    return {
        "AlarmKey": {"Type": "AWS::KMS::Key", "Properties": {
            "Description": {"Fn::Sub": "${AWS::StackName}: encrypts the alarm topic"}, "EnableKeyRotation": True,
            "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                {"Sid": "AccountAdministersTheKey", "Effect": "Allow",
                 "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "CloudWatchPublishesAlarms", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]}}},
        "AlarmKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": {"Fn::Sub": "alias/${AWS::StackName}-alarms"}, "TargetKeyId": {"Ref": "AlarmKey"}}},
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": {"Fn::Sub": "${AWS::StackName}-alarms"}, "KmsMasterKeyId": {"Ref": "AlarmKey"}}},
        "AlarmTopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [{"Ref": "AlarmTopic"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish",
                "Resource": {"Ref": "AlarmTopic"},
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                              "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:"
                                                                       "${AWS::AccountId}:alarm:*"}}}}]}}},
    }


def operations_resources(function_ids: list[str]) -> dict[str, Any]:
    """The alarm topic; per function a log group with retention and alarms on errors and throttles;
    the schedules' failure queue; the API's access logs and 5xx alarm."""
    resources: dict[str, Any] = {
        **alarm_topic_resources(),
        # The scheduled functions' failure destination (their role sends) and their rules'
        # dead-letter queue (EventBridge sends, through the queue policy): a dead-letter queue itself.
        "AsyncFailuresQueue": dead_letter_queue({"Fn::Sub": "${AWS::StackName}-async-failures"}),
        "AsyncFailuresAlarm": queue_alarm(
            "AsyncFailuresQueue", "A scheduled run failed after retries (or EventBridge could not invoke it)."),
        "AsyncFailuresQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "AsyncFailuresQueue"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": [schedule_rule_arn(f) for f in SCHEDULED]},
                              "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}}},
        "ApiAccessLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/apigateway/${AWS::StackName}-access"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}},
        "Api5xxAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmDescription": "The API answered 5xx (a bug, or a dependency down).", **NOTIFY,
            "Namespace": "AWS/ApiGateway", "MetricName": "5XXError",
            "Dimensions": [{"Name": "ApiName", "Value": API_NAME}, {"Name": "Stage", "Value": "api"}],
            "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}},
    }
    for function_id in function_ids:
        resources[f"{function_id}LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{function_id}"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}}
        for metric in ("Errors", "Throttles"):
            resources[f"{function_id}{metric}Alarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
                "AlarmDescription": f"{function_id}: Lambda {metric.lower()}.", **NOTIFY,
                "Namespace": "AWS/Lambda", "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": function_name(function_id)}],
                "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}
    return resources


# Reserved concurrency: the API cannot take the capacity the timers, evidence and schedules need.
RESERVED_CONCURRENCY = {"TimerFired": 5, "EvidenceUploaded": 5, "ReleaseEscrow": 2, "DrainOutbox": 2, "ExpireEvidence": 2}
API_THROTTLE = {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
PARAMETERS = {
    "LogRetentionDays": {"Type": "Number", "Default": 90, "AllowedValues": [30, 90, 180, 365, 731],
                         "Description": "How long the functions' and the API's logs are kept."},
    "AppOrigins": {"Type": "CommaDelimitedList", "Default": "https://localhost",
                   "Description": "Web origins allowed to POST uploads to and GET evidence from the bucket."},
}


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
        props["Events"] = {f"{function_id}SqsEventSource": {"Properties": {
            "ScalingConfig": {"MaximumConcurrency": RESERVED_CONCURRENCY[function_id]}}}}
    # Chalice names SQS sources by ARN string, not Ref: the queues must exist first; the log group
    # must exist before the function writes to it.
    return {"Properties": props, "DependsOn": ["TimerQueue", "EvidenceQueue", f"{function_id}LogGroup"]}


def cloudformation(stage: str, function_ids: list[str], timer_queue_name: str = DEFAULT_TIMER_QUEUE,
                   evidence_queue_name: str = DEFAULT_EVIDENCE_QUEUE) -> dict[str, Any]:
    """The merge template for `chalice package`: identity, tables, timer machine, queues, bus,
    bucket, alarms, and for each Lambda function (by its logical id) its environment, policy,
    concurrency and failure destination; the API's access logs, throttling and tracing."""
    resources: dict[str, Any] = {**messaging_resources(timer_queue_name), **evidence_resources(evidence_queue_name),
                                 **identity_resources(), **layer_resources(), **operations_resources(function_ids)}
    tables = make_tables(DEFAULT_TABLES, "us-east-1")  # only the key schemas are read
    for name, logical_id in LOGICAL_IDS.items():
        resources[logical_id] = table_resource(
            getattr(tables, name),
            retained_name(f"${{AWS::StackName}}-{logical_id.removesuffix('Table').lower()}-${{CreationId}}"))
    env: dict[str, Any] = {ENV_VARS[name]: {"Ref": logical_id} for name, logical_id in LOGICAL_IDS.items()}
    env.update({"TIMER_STATE_MACHINE_ARN": {"Ref": "DeadlineTimer"}, "EVENT_BUS_NAME": {"Ref": "EventBus"},
                "TIMER_QUEUE_NAME": timer_queue_name, "EVIDENCE_BUCKET": {"Ref": "EvidenceBucket"},
                "EVIDENCE_QUEUE_NAME": evidence_queue_name, "POWERTOOLS_SERVICE_NAME": METRICS_SERVICE,
                **auth_environment()})
    stripe = stage_payment_provider(stage) == "stripe"
    for function_id in function_ids:
        console = console_environment() if function_id == "APIHandler" else {}
        resources[function_id] = function_resource(function_id, {**env, **payment_environment(function_id, stripe),
                                                                 **console})
        resources[role_id(function_id)] = {"Properties": {"Policies": function_policy(function_id, stripe)}}
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
    parameters = {**PARAMETERS, **({"StripeSecretArn": STRIPE_SECRET_PARAMETER} if stripe else {})}
    return {"Parameters": parameters, "Resources": resources, "Outputs": outputs()}
