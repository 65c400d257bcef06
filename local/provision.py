"""The stack's resources, created in the emulated AWS of `make dev` and the tests: the tables
from the PynamoDB models, the queues (timers, evidence, refunds), the bus, the evidence bucket and the timer machine, from the
definitions the deployed template uses (infra/template), so local and deployed cannot drift apart."""
from __future__ import annotations

import json
from typing import Any

import boto3

from chalicelib.adapters.aws import EVENT_SOURCE
from chalicelib.adapters.dynamodb import create_tables, make_tables
from chalicelib.config import Settings
from infra.template.common import MAX_RECEIVES, TIMER_MACHINE_NAME, state_machine_definition, substitute


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
    # The refunds commits owe, for the pay-refunds handler.
    refund_queue, refund_dlq = _queue_with_dlq(sqs, settings.refund_queue_name, visibility_timeout)
    sfn = boto3.client("stepfunctions", region_name=settings.region)
    definition = substitute(state_machine_definition(), {"TimerQueueUrl": queue})
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    arn = existing.get(TIMER_MACHINE_NAME) or sfn.create_state_machine(
        name=TIMER_MACHINE_NAME, definition=definition, type="STANDARD",
        roleArn="arn:aws:iam::123456789012:role/deadline-timer")["stateMachineArn"]
    return {"TIMER_STATE_MACHINE_ARN": arn, "TIMER_QUEUE_URL": queue, "TIMER_DLQ_URL": dlq,
            "EVENTS_TAP_QUEUE_URL": tap, "EVIDENCE_QUEUE_URL": evidence_queue, "EVIDENCE_DLQ_URL": evidence_dlq,
            "REFUND_QUEUE_URL": refund_queue, "REFUND_DLQ_URL": refund_dlq}
