"""State transitions the deadline timers cost per dispute lifecycle, measured, not estimated.

Plays each lifecycle path against the real state machine definition under moto's Step Functions
interpreter (second-scale phases, reminders on as in production), then counts the states entered
in every execution's history: what Step Functions Standard bills ($0.025 per 1,000 transitions).

    make bench        (or: python -m bench.timer_transitions)
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

from bench.report import emulated_aws_environment, expect, write

PRICE_PER_TRANSITION = 0.025 / 1000  # USD, Step Functions Standard, us-east-1


def main() -> int:
    emulated_aws_environment()
    from chalice.test import Client
    from moto import mock_aws

    from app import app
    from chalicelib import bootstrap
    from chalicelib.ports import SystemClock
    from local.emulator import back_up_items_not_tables, make_dynamodb_atomic
    from local.provision import provision
    from tests.integration.api import BUYER, MODERATOR, SELLER
    from tests.integration.timers import SECONDS, TimerRig, fast_policy
    from tests.support import local_settings

    make_dynamodb_atomic()
    back_up_items_not_tables()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        settings = local_settings()
        env = provision(settings)
        # Parties act at once; a reminder comes 2 s before a 6 s deadline (as 1 day before 7 in production).
        policy = fast_policy(seller_response=6 * SECONDS, negotiation=6 * SECONDS, mediation_sla=6 * SECONDS,
                             return_shipment=6 * SECONDS, return_receipt=6 * SECONDS, reminder_before=2 * SECONDS)
        container = bootstrap.build(replace(settings, policy=policy,
                                            timer_state_machine_arn=env["TIMER_STATE_MACHINE_ARN"]),
                                    clock=SystemClock())
        bootstrap.install(container)
        api, rig = CheckedApi(Client(app)), TimerRig(app, env)
        counter = iter(range(1000))

        def opened(requested: dict[str, Any] | None = None, reason: str = "NOT_AS_DESCRIBED") -> dict[str, Any]:
            order_id = f"o-{next(counter)}"
            api.delivered_order(order_id)
            return api.open_dispute(order_id, requested=requested, reason=reason)

        def seller_accepts() -> str:
            d = opened()
            api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {},
                     expect_status=200)
            return d["dispute_id"]

        def seller_silent() -> str:
            d = opened()
            rig.run_until(lambda: api.get(f"/disputes/{d['dispute_id']}").json_body["status"] == "RESOLVED")
            return d["dispute_id"]

        def negotiation_then_decision() -> str:
            d = opened()
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/offers", SELLER, {"type": "REFUND_PARTIAL",
                                                          "amount": {"amount": 200, "currency": "USD"}}, expect_status=201)
            # The buyer would need a photo first (EVIDENCE_REQUIRED); the seller may escalate as is.
            api.post(f"/disputes/{did}/escalate", SELLER, {}, expect_status=200)
            api.post(f"/disputes/{did}/decision", MODERATOR,
                     {"outcome": "REFUND_PARTIAL", "amount": {"amount": 700, "currency": "USD"},
                      "rationale": "Colour differs from the listing."}, expect_status=200)
            return did

        def return_and_refund() -> str:
            d = opened({"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {}, expect_status=200)
            api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"},
                     expect_status=200)
            api.post(f"/disputes/{did}/confirm-return", SELLER, {}, expect_status=200)
            return did

        def everyone_silent_until_mediation_overdue() -> str:
            d = opened()
            did = d["dispute_id"]
            api.post(f"/disputes/{did}/reject", SELLER, {"message": "It is as listed."}, expect_status=200)
            rig.run_until(lambda: (api.get(f"/disputes/{did}").json_body["deadlines"] or [{}])[0].get("overdue")
                          is True, timeout=30)
            api.post(f"/disputes/{did}/decision", MODERATOR, {"outcome": "REJECTED", "rationale": "As listed."},
                     expect_status=200)
            return did

        paths = [("seller accepts the request", seller_accepts),
                 ("seller silent: request granted by the timer", seller_silent),
                 ("negotiation, escalation (by the seller), moderator's decision", negotiation_then_decision),
                 ("return and refund", return_and_refund),
                 ("worst case: every deadline runs out, then a decision", everyone_silent_until_mediation_overdue)]
        rows = []
        for label, play in paths:
            did = play()
            final = api.get(f"/disputes/{did}").json_body
            expect(final["status"] == "RESOLVED", f"{label}: the dispute ended {final['status']}, not RESOLVED")
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
    write("timer_transitions",
          method=("each lifecycle path played once through the API against the real state machine definition under "
                  "moto's Step Functions interpreter (second-scale phases, reminders on); every answer checked and "
                  "every dispute checked RESOLVED; states entered counted from each execution's history"),
          repetitions={"per_path": 1, "note": "a count, not a timing: the same on every run"},
          results=[{"path": label, "per_timer": breakdown, "state_transitions": transitions,
                    "usd_per_million_disputes": round(transitions * PRICE_PER_TRANSITION * 1e6)}
                   for label, breakdown, transitions in rows],
          price_per_transition_usd=PRICE_PER_TRANSITION)
    return 0


class CheckedApi:
    """The test driver, stopping the benchmark on any answer but the one expected."""

    def __init__(self, client: Any) -> None:
        from tests.integration.api import Api

        self._api = Api(client)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def post(self, path: str, who: tuple[str, ...], body: Any = None, expect_status: int = 200) -> Any:
        r = self._api.post(path, who, body)
        expect(r.status_code == expect_status, f"POST {path} answered {r.status_code}: {r.json_body}")
        return r

    def get(self, path: str, who: tuple[str, ...] | None = None) -> Any:
        r = self._api.get(path) if who is None else self._api.get(path, who)
        expect(r.status_code == 200, f"GET {path} answered {r.status_code}: {r.json_body}")
        return r


if __name__ == "__main__":
    sys.exit(main())
