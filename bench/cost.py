"""AWS cost per million disputes, from the calls the app makes (counted, not estimated by hand).

Three kinds of dispute are played through the app (tests/integration/actions.py: in-process moto,
the app's real wiring): negotiated (offer, message, accept, settled refund), contested (reject,
escalate, a moderator's decision, settled refund) and auto-resolved (the seller's deadline
expires and grants the request, settled refund). Each refund is sent by the pay-refunds function
from the refund queue (one more invocation; its calls counted like the actions'). Every AWS call of the dispute's own actions is
counted (the order's registration and shipping are the order's cost, not the dispute's), with
DynamoDB capacity units estimated from item sizes. Prices are in bench/prices.json; Step Functions
transitions per timer come from bench/timer_transitions.py's measurement (2 for a timer stopped,
5 for one that reminds and expires).

    make bench        (or: python -m bench.cost)
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from bench.report import emulated_aws_environment, expect, write

PRICES = Path(__file__).resolve().parent / "prices.json"
STOPPED_TIMER_TRANSITIONS, EXPIRED_TIMER_TRANSITIONS = 2, 5
TIMER_MESSAGES_WHEN_EXPIRED = 2  # a reminder and the expiry, each through SQS to a Lambda
SQS_REQUESTS_PER_MESSAGE = 3  # sent by the state machine, received and deleted by Lambda's poller
# A refund sent: handed to the refund queue by the request (its SendMessageBatch is counted there),
# received and deleted by Lambda's poller for one pay-refunds invocation.
POLLER_REQUESTS_PER_REFUND = 2
KINDS = ("negotiated", "contested", "auto_resolved")
# A reviewer's estimate on main before this bench existed (its own method and scope: the order's
# calls included), kept for reference; the same method on the code before the outbox and sweep
# work gave $251 / $306 / $253 too (write units dominate, and a batched delete bills as many).
REVIEWED_BEFORE = {"negotiated": 369, "contested": 653}


def usage(counted: dict[str, Counter[tuple[str, str]]]) -> dict[str, float]:
    """What one dispute consumed, per billed dimension."""
    from tests.integration.actions import CAPACITY

    total: Counter[tuple[str, str]] = Counter()
    for calls in counted.values():
        total.update(calls)
    expired = sum(1 for action in counted if action == "timer expiry")
    sends = sum(1 for action in counted if action.endswith(": refund send"))  # pay-refunds invocations
    requests = sum(1 for action in counted if action != "timer expiry" and not action.endswith(": refund send"))
    started = total[("stepfunctions", "StartExecution")]
    messages = expired * TIMER_MESSAGES_WHEN_EXPIRED
    return {
        "api_requests": requests,
        "lambda_invocations": requests + messages + sends,
        "dynamodb_requests": sum(n for (service, _), n in total.items() if service == "dynamodb"),
        "dynamodb_read_units": total[(CAPACITY, "read")],
        "dynamodb_write_units": total[(CAPACITY, "write")],
        "state_transitions": started * STOPPED_TIMER_TRANSITIONS
        + expired * (EXPIRED_TIMER_TRANSITIONS - STOPPED_TIMER_TRANSITIONS),
        "events": total[("events", "PutEvents")],
        "sqs_requests": messages * SQS_REQUESTS_PER_MESSAGE + sends * POLLER_REQUESTS_PER_REFUND
        + sum(n for action, calls in counted.items() if not action.endswith(": refund send")
              for (service, op), n in calls.items() if service == "sqs" and op in ("SendMessage", "SendMessageBatch")),
    }


def dollars_per_million(use: dict[str, float], p: dict[str, Any]) -> dict[str, float]:
    """USD per million disputes, per service."""
    lambda_gb_s = use["lambda_invocations"] * p["lambda_assumed_billed_ms_per_invocation"] / 1000 * p["lambda_assumed_gb"]
    costs = {
        "dynamodb": use["dynamodb_read_units"] * p["dynamodb_usd_per_million_read_units"]
        + use["dynamodb_write_units"] * p["dynamodb_usd_per_million_write_units"],
        "step_functions": use["state_transitions"] * p["step_functions_standard_usd_per_thousand_transitions"] * 1000,
        "api_gateway": use["api_requests"] * p["api_gateway_rest_usd_per_million_requests"],
        "lambda": use["lambda_invocations"] * p["lambda_usd_per_million_requests"]
        + lambda_gb_s * p["lambda_usd_per_gb_second"] * 1e6,
        "eventbridge": use["events"] * p["eventbridge_usd_per_million_events"],
        "sqs": use["sqs_requests"] * p["sqs_usd_per_million_requests"],
    }
    return {k: round(v, 2) for k, v in costs.items()}


def main() -> None:
    emulated_aws_environment()
    from dataclasses import replace

    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import bootstrap
    from chalicelib.adapters.simulated_payments import SimulatedPayments
    from local.emulator import back_up_items_not_tables, make_dynamodb_atomic
    from local.provision import provision
    from tests.integration.actions import Player
    from tests.integration.api import Api
    from tests.support import FakeClock, local_settings

    prices = json.loads(PRICES.read_text())
    make_dynamodb_atomic()
    back_up_items_not_tables()
    results: dict[str, Any] = {}
    with mock_aws():
        settings = local_settings()
        env = provision(settings)
        for n, kind in enumerate(KINDS):
            clock = FakeClock()
            payments = SimulatedPayments(lambda notice: bootstrap.container().services.payments.settle(notice),
                                         auto_settle=False)
            container = bootstrap.build(replace(settings, timer_state_machine_arn=env["TIMER_STATE_MACHINE_ARN"],
                                                refund_queue_url=env["REFUND_QUEUE_URL"]),
                                        clock=clock, payments=payments)
            container.payments = payments  # type: ignore[attr-defined]
            bootstrap.install(container)
            try:
                with Client(app) as client:
                    player = Player(Api(client), container, clock)
                    getattr(player, kind)(f"o-{kind}-{n}")
                use = usage(player.counted)
                expect(use["dynamodb_requests"] > 0 and use["api_requests"] > 0, f"{kind}: nothing counted")
                costs = dollars_per_million(use, prices)
                results[kind] = {"per_dispute": use, "usd_per_million_disputes": costs,
                                 "usd_per_million_disputes_total": round(sum(costs.values()), 2)}
            finally:
                payments.close()
                bootstrap.reset()
    for kind, r in results.items():
        print(f"{kind:>14}: ${r['usd_per_million_disputes_total']:,.0f} per million disputes "
              f"({', '.join(f'{k} {v:,.0f}' for k, v in r['usd_per_million_disputes'].items())})")
    write("cost", "each kind of dispute played once through the app over moto (in-process), every AWS call of its "
          "own actions counted on the acting thread; DynamoDB units estimated from item sizes; prices from "
          "bench/prices.json", {"per_kind": 1, "note": "counts, not timings: the same on every run"}, results,
          prices=prices, reviewed_before_usd_per_million=REVIEWED_BEFORE)


if __name__ == "__main__":
    main()
