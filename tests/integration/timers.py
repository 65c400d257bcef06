"""Running the real deadline machine under moto's Step Functions interpreter."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3

from chalicelib.domain.policy import Policy

SECONDS = timedelta(seconds=1)


def fast_policy(**overrides: Any) -> Policy:
    """Second-scale phases (the machine's Wait states really sleep) and a wide dispute window."""
    values: dict[str, Any] = dict(seller_response=2 * SECONDS, negotiation=2 * SECONDS, mediation_sla=2 * SECONDS,
                  return_shipment=2 * SECONDS, return_receipt=2 * SECONDS, reminder_before=timedelta(hours=1),
                  dispute_window=timedelta(days=3650))
    values.update(overrides)
    return Policy(**values)


class TimerRig:
    """Pumps the timer queue into the app's handler, and the refund queue into the pay-refunds
    function, as Lambda's event source mappings would."""

    def __init__(self, app: Any, env: dict[str, str]) -> None:
        from local.dispatcher import SqsPump

        self.env = env
        self.pump = SqsPump(app, "timer-fired", env["TIMER_QUEUE_URL"], boto3.client("sqs", region_name="us-east-1"))
        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")

    def run_until(self, done: Callable[[], bool], timeout: float = 15) -> None:
        """Feed the timer queue to its handler, and the refund queue to the pay-refunds function
        (the refunds a timer's expiry owes), until ``done``."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "the timer did not fire in time"
            self.pump.pump_once(wait_seconds=1)
            self.pay_refunds()

    def pay_refunds(self) -> int:
        """The pay-refunds function over what the refund queue holds now; how many it handled."""
        from tests.support import pay_refunds

        return pay_refunds(self.env["REFUND_QUEUE_URL"])

    def executions(self, dispute_id: str) -> dict[str, str]:
        """name -> status of the timer executions of one dispute."""
        out = {}
        for page in self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.env["TIMER_STATE_MACHINE_ARN"]):
            for e in page["executions"]:
                if e["name"].startswith(dispute_id):
                    out[e["name"].split("--")[1]] = e["status"]
        return out

    def wait_until_settled(self, dispute_id: str, timeout: float = 10) -> dict[str, str]:
        """Wait until no timer of the dispute runs and nothing is owed, reconciling as the scheduled
        reconciler would (moto refuses to stop an execution in its very first instant; the owed
        stop is retried), and sending the refunds as the pay-refunds function would."""
        from chalicelib import bootstrap

        c = bootstrap.container()
        deadline = time.monotonic() + timeout
        while True:
            c.relay.drain(c.clock.now(), grace=timedelta(0))
            c.services.timers.check_standing(c.clock.now(), grace=timedelta(0))  # the sellers' levels
            self.pay_refunds()  # the refunds the reconciler handed over, sent
            owed = c.outbox.pending(c.clock.now() + timedelta(minutes=5), 10)
            states = self.executions(dispute_id)
            if not owed and "RUNNING" not in states.values():
                return states
            assert time.monotonic() < deadline, f"timers still running: {states}, owed: {owed}"
            time.sleep(0.2)

    def history(self, dispute_id: str, action: str) -> list[dict[str, Any]]:
        arn = self.env["TIMER_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":{dispute_id}--{action}"
        return self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def published(self) -> list[dict[str, Any]]:
        """Every domain event the bus delivered to the local tap queue so far (consumed)."""
        events = []
        while messages := self.sqs.receive_message(QueueUrl=self.env["EVENTS_TAP_QUEUE_URL"],
                                                   MaxNumberOfMessages=10).get("Messages", []):
            for m in messages:
                events.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.env["EVENTS_TAP_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
        return events
