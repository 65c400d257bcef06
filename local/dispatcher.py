"""Feeds the app's non-HTTP handlers locally, as AWS would in the cloud.

- SQS queues -> the handler subscribed to them (what a Lambda event source mapping does: a batch
  is deleted when the handler returns, and comes back after the visibility timeout if it raises);
- schedules -> their handlers, on their intervals (moto never fires EventBridge schedules).
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from chalice import Chalice

from chalicelib.config import Settings
from chalicelib.logs import logger


def scheduled_event(rule: str) -> dict[str, Any]:
    return {"version": "0", "id": "local", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
            "detail": {}}


class SqsPump:
    """One queue -> one handler, the way Lambda's SQS event source mapping drives it."""

    def __init__(self, app: Chalice, handler_name: str, queue_url: str, client: Any = None) -> None:
        self.handler = app.handler_map[handler_name]
        self.handler_name = handler_name
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs")
        self.queue_arn = self.client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def pump_once(self, wait_seconds: int = 1) -> int:
        """Receive one batch and hand it over; returns how many messages were handled."""
        messages = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                               WaitTimeSeconds=wait_seconds,
                                               AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": "us-east-1"}
            for m in messages]}
        try:
            result = self.handler(event, None)
        except Exception:  # noqa: BLE001 - like Lambda: the batch returns to the queue and is retried
            logger.exception("queue handler failed; the message will be retried", handler=self.handler_name)
            return 0
        # ReportBatchItemFailures: the messages a handler names as failed stay, to be retried.
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])} if isinstance(result, dict) else set()
        done = [m for m in messages if m["MessageId"] not in failed]
        for m in done:
            self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(done)


# SQS long polling: a poll waits this long for a message (idle CPU near zero) and the dispatcher
# notices Ctrl-C within it.
POLL_SECONDS = 1


class Dispatcher:
    """One thread per queue (long polling, as Lambda's pollers do) and one for the schedules."""

    def __init__(self, app: Chalice, settings: Settings, stop: threading.Event, queues: dict[str, str]) -> None:
        self.app = app
        self.stop = stop
        self.pumps = [SqsPump(app, handler, url) for handler, url in queues.items()]
        # (handler name, interval seconds): the schedules app.py declares, at local speed.
        self.schedules = [("release-escrow", settings.sweep_interval_seconds), ("drain-outbox", 5),
                          ("expire-evidence", 30)]
        self.threads = [threading.Thread(target=self._poll, args=(pump,), name=f"poll-{pump.handler_name}",
                                         daemon=True) for pump in self.pumps]
        self.threads.append(threading.Thread(target=self._schedules, name="schedules", daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _poll(self, pump: SqsPump) -> None:
        while not self.stop.is_set():
            try:
                pump.pump_once(wait_seconds=POLL_SECONDS)
            except Exception:  # noqa: BLE001 - emulator hiccup; keep dispatching
                logger.exception("queue poll failed", handler=pump.handler_name)
                self.stop.wait(POLL_SECONDS)

    def _schedules(self) -> None:
        due = {name: time.monotonic() + interval for name, interval in self.schedules}
        while not self.stop.wait(0.25):
            for name, interval in self.schedules:
                if time.monotonic() >= due[name]:
                    due[name] = time.monotonic() + interval
                    try:
                        self.app.handler_map[name](scheduled_event(name), None)
                    except Exception:  # noqa: BLE001 - keep dispatching; the failure is logged
                        logger.exception("scheduled handler failed", handler=name)
