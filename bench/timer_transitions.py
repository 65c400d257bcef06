"""State transitions the deadline timers cost per dispute lifecycle, measured, not estimated.

Plays each lifecycle path against the real state machine definition under moto's Step Functions
interpreter (second-scale phases, reminders on as in production), then counts the states entered
in every execution's history: what Step Functions Standard bills ($0.025 per 1,000 transitions).

    make bench        (or: python -m bench.timer_transitions)
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from typing import Any

PRICE_PER_TRANSITION = 0.025 / 1000  # USD, Step Functions Standard, us-east-1


def main() -> int:
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import bootstrap
    from chalicelib.config import Settings
    from chalicelib.ports import SystemClock
    from infra.resources import provision
    from local.emulator import make_dynamodb_atomic
    from tests.integration.api import BUYER, MODERATOR, SELLER, Api
    from tests.integration.timers import SECONDS, TimerRig, fast_policy
    from tests.support import AUDIENCE, ISSUER, keypair

    make_dynamodb_atomic()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        settings = Settings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE,
                                      "AUTH_PUBLIC_KEY": keypair()[1], "AWS_DEFAULT_REGION": "us-east-1"})
        env = provision(settings)
        # Parties act at once; a reminder comes 2 s before a 6 s deadline (as 1 day before 7 in production).
        policy = fast_policy(seller_response=6 * SECONDS, negotiation=6 * SECONDS, mediation_sla=6 * SECONDS,
                             return_shipment=6 * SECONDS, return_receipt=6 * SECONDS, reminder_before=2 * SECONDS)
        container = bootstrap.build(replace(settings, policy=policy,
                                            timer_state_machine_arn=env["TIMER_STATE_MACHINE_ARN"]),
                                    clock=SystemClock())
        bootstrap.install(container)
        api, rig = Api(Client(app)), TimerRig(app, env)
        counter = iter(range(1000))

        def opened(requested: dict[str, Any] | None = None, reason: str = "NOT_AS_DESCRIBED") -> dict[str, Any]:
            order_id = f"o-{next(counter)}"
            api.delivered_order(order_id)
            return api.open_dispute(order_id, requested=requested, reason=reason)

        def seller_accepts() -> str:
            d = opened()
            api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
            return d["dispute_id"]

        def seller_silent() -> str:
            d = opened()
            rig.run_until(lambda: api.get(f"/disputes/{d['dispute_id']}").json_body["status"] == "RESOLVED")
            return d["dispute_id"]

        def negotiation_then_decision() -> str:
            d = opened()
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/offers", SELLER, {"type": "REFUND_PARTIAL",
                                                          "amount": {"amount": 200, "currency": "USD"}})
            api.post(f"/disputes/{did}/escalate", BUYER, {})
            api.post(f"/disputes/{did}/decision", MODERATOR,
                     {"outcome": "REFUND_PARTIAL", "amount": {"amount": 700, "currency": "USD"},
                      "rationale": "Colour differs from the listing."})
            return did

        def return_and_refund() -> str:
            d = opened({"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
            api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"})
            api.post(f"/disputes/{did}/confirm-return", SELLER, {})
            return did

        def everyone_silent_until_mediation_overdue() -> str:
            d = opened()
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/reject", SELLER, {"message": "It is as listed."})
            rig.run_until(lambda: (api.get(f"/disputes/{did}").json_body["deadlines"] or [{}])[0].get("overdue")
                          is True, timeout=30)
            api.post(f"/disputes/{did}/decision", MODERATOR, {"outcome": "REJECTED", "rationale": "As listed."})
            return did

        paths = [("seller accepts the request", seller_accepts),
                 ("seller silent: request granted by the timer", seller_silent),
                 ("negotiation, escalation, moderator's decision", negotiation_then_decision),
                 ("return and refund", return_and_refund),
                 ("worst case: every deadline runs out, then a decision", everyone_silent_until_mediation_overdue)]
        rows = []
        for label, play in paths:
            did = play()
            states = rig.wait_until_settled(did, timeout=30)
            per_timer = {name: sum(1 for e in rig.history(did, name) if e["type"].endswith("StateEntered"))
                         for name in states}
            rows.append((label, " + ".join(f"{n} {c}" for n, c in per_timer.items()), sum(per_timer.values())))
            time.sleep(0.1)
        bootstrap.reset()

    print("| lifecycle path | transitions per timer | state transitions | USD per million disputes |")
    print("|---|---|---|---|")
    for label, breakdown, transitions in rows:
        print(f"| {label} | {breakdown} | {transitions} | {transitions * PRICE_PER_TRANSITION * 1e6:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
