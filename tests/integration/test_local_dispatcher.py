"""The local SQS pump keeps Lambda's event source contract: a message the handler reports as
failed (ReportBatchItemFailures) stays in the queue, the others of the batch are deleted."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3

from local.dispatcher import SqsPump


def test_a_message_reported_as_failed_stays_and_the_others_go(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="pump-contract", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        records = event["Records"]
        seen.extend(r["body"] for r in records)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "bad"]}

    pump = SqsPump(SimpleNamespace(handler_map={"h": handler}), "h", queue, sqs)
    for body in ("good", "bad"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    handled = [pump.pump_once(wait_seconds=0), pump.pump_once(wait_seconds=0)]
    assert sorted(zip(seen, handled, strict=True)) == [("bad", 0), ("good", 1)]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
