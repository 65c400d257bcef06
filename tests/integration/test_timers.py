"""The deadline timers, run for real: the definition in statemachines/ under moto's Step
Functions interpreter, its SQS messages fed to the app's handler. No mock replaces the machine."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.adapters.aws import StepFunctionsTimers
from chalicelib.ports import OutboxKind, SystemClock
from tests.integration.api import BUYER, MODERATOR, SELLER, Api
from tests.integration.timers import SECONDS, TimerRig, fast_policy


@pytest.fixture
def interpreter():
    """The session's moto account runs state machines for real (tests/conftest.py); check it."""
    from moto.core.config import default_user_config

    assert default_user_config["stepfunctions"]["execute_state_machine"] is True
    try:
        yield
    finally:
        while PROVIDERS:
            PROVIDERS.pop().close()


def world(settings, aws, policy=None, timers=None, clock=None):
    """The app wired for real (real clock unless given), with second-scale phases."""
    from chalice.test import Client

    from app import app
    from chalicelib import bootstrap
    from chalicelib.adapters.simulated_payments import SimulatedPayments

    # Card refunds settle half a second after they are sent, and say so as a webhook would.
    payments = SimulatedPayments(lambda notice: bootstrap.container().services.payments.settle(notice),
                                 settle_after=0.5)
    PROVIDERS.append(payments)
    c = bootstrap.build(replace(settings, policy=policy or fast_policy()), clock=clock or SystemClock(), timers=timers,
                        payments=payments)
    bootstrap.install(c)
    return Api(Client(app)), TimerRig(app, aws), c


PROVIDERS: list[Any] = []  # stopped after each test, whatever happened (see interpreter)


@pytest.fixture
def rig(interpreter, settings, aws):
    api, rig, _ = world(settings, aws)
    yield api, rig
    from chalicelib import bootstrap

    bootstrap.reset()


# A phase left early has its timer stopped (ABORTED); under moto a stop can lose the race with a
# 2-second timer, which then finds the phase gone and does nothing (SUCCEEDED, a no-op).
LEFT = {"ABORTED", "SUCCEEDED"}


def left(states: dict[str, str], *phases: str) -> dict[str, str]:
    """The states, with those of phases left early checked and folded to 'LEFT'."""
    for phase in phases:
        assert states.get(phase) in LEFT, states
    return {k: ("LEFT" if k in phases else v) for k, v in states.items()}


def status(api: Api, dispute_id: str) -> str:
    return api.get(f"/disputes/{dispute_id}").json_body["status"]


def test_seller_silence_grants_the_buyers_request(rig):
    api, timers = rig
    api.delivered_order()
    did = api.open_dispute()["dispute_id"]
    assert list(timers.executions(did)) == ["SELLER_RESPONSE"]  # started (running, or its 2 s ran out)
    timers.run_until(lambda: status(api, did) == "RESOLVED")
    d = api.get(f"/disputes/{did}").json_body
    assert d["resolution"]["decided_by"] == "system" and d["resolution"]["outcome"] == "REFUND_PARTIAL"
    assert [e["event"] for e in d["timeline"]][-3:] == ["dispute.deadline_expired", "dispute.offer_accepted",
                                                        "dispute.resolved"]
    order = api.get("/orders/o-1").json_body
    assert (order["escrow"]["refund_pending"]["amount"], order["escrow"]["released"]["amount"]) in ((500, 1500), (0, 1500))
    timers.run_until(lambda: api.get("/orders/o-1").json_body["escrow"]["refunded"]["amount"] == 500)
    assert api.get(f"/disputes/{did}").json_body["refund"]["status"] == "SUCCEEDED"
    assert timers.wait_until_settled(did) == {"SELLER_RESPONSE": "SUCCEEDED"}


def test_a_stalled_negotiation_escalates_and_an_overdue_mediation_is_flagged_not_decided(rig):
    api, timers = rig
    d = api.negotiating()
    did = d["dispute_id"]
    timers.run_until(lambda: status(api, did) == "ESCALATED")
    timers.run_until(lambda: api.get(f"/disputes/{did}").json_body["deadlines"][0].get("overdue") is True)
    d = api.get(f"/disputes/{did}").json_body
    assert d["status"] == "ESCALATED" and d["resolution"] is None
    timers.run_until(lambda: [q["dispute_id"] for q in api.get("/moderation/disputes?overdue=true", MODERATOR)
                              .json_body["items"]] == [did])
    assert left(timers.wait_until_settled(did), "SELLER_RESPONSE") == {
        "SELLER_RESPONSE": "LEFT", "NEGOTIATION": "SUCCEEDED", "MEDIATION": "SUCCEEDED"}
    # The moderator still decides; nothing is left waiting afterwards.
    api.post(f"/disputes/{did}/decision", MODERATOR, {"outcome": "REJECTED", "rationale": "Tracking shows delivery."})
    assert status(api, did) == "RESOLVED"


def return_agreed(api: Api) -> str:
    api.delivered_order()
    d = api.open_dispute(requested={"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
    api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
    return d["dispute_id"]


def test_a_return_never_shipped_closes_for_the_seller(rig):
    api, timers = rig
    did = return_agreed(api)
    timers.run_until(lambda: status(api, did) == "RESOLVED")
    assert api.get(f"/disputes/{did}").json_body["resolution"]["outcome"] == "REJECTED"
    assert api.get("/orders/o-1").json_body["escrow"]["status"] == "RELEASED"
    assert left(timers.wait_until_settled(did), "SELLER_RESPONSE") == {
        "SELLER_RESPONSE": "LEFT", "RETURN_SHIPMENT": "SUCCEEDED"}


def test_a_return_never_confirmed_is_refunded(rig):
    api, timers = rig
    did = return_agreed(api)
    api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"})
    timers.run_until(lambda: status(api, did) == "RESOLVED")
    assert api.get(f"/disputes/{did}").json_body["resolution"]["outcome"] == "REFUND_FULL"
    timers.run_until(lambda: api.get("/orders/o-1").json_body["escrow"]["status"] == "REFUNDED")
    assert left(timers.wait_until_settled(did), "SELLER_RESPONSE", "RETURN_SHIPMENT") == {
        "SELLER_RESPONSE": "LEFT", "RETURN_SHIPMENT": "LEFT", "RETURN_RECEIPT": "SUCCEEDED"}


@pytest.mark.parametrize("ending", ["accept", "cancel", "escalate_then_decide", "return_then_confirm"])
def test_a_dispute_that_ends_early_leaves_no_timer_waiting(interpreter, settings, aws, ending):
    hour = timedelta(hours=1)
    api, timers, _ = world(settings, aws, fast_policy(seller_response=hour, negotiation=hour, mediation_sla=hour,
                                                      return_shipment=hour, return_receipt=hour))
    api.delivered_order()
    d = api.open_dispute(requested={"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
    did, offer = d["dispute_id"], d["offers"][0]["offer_id"]
    if ending == "accept":
        api.post(f"/disputes/{did}/offers", SELLER, {"type": "REFUND_FULL"})
        seller_offer = api.get(f"/disputes/{did}").json_body["offers"][-1]["offer_id"]
        api.post(f"/disputes/{did}/offers/{seller_offer}/accept", BUYER, {})
    elif ending == "cancel":
        api.post(f"/disputes/{did}/cancel", BUYER, {})
    elif ending == "escalate_then_decide":
        api.post(f"/disputes/{did}/reject", SELLER, {"message": "no"})
        api.post(f"/disputes/{did}/escalate", SELLER, {})
        api.post(f"/disputes/{did}/decision", MODERATOR, {"outcome": "REJECTED", "rationale": "No evidence given."})
    else:
        api.post(f"/disputes/{did}/offers/{offer}/accept", SELLER, {})
        api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"})
        api.post(f"/disputes/{did}/confirm-return", SELLER, {})
    assert status(api, did) in ("RESOLVED", "CANCELLED")
    states = timers.wait_until_settled(did)
    assert states and set(states.values()) == {"ABORTED"}, states


def test_a_party_is_reminded_before_its_deadline(interpreter, settings, aws):
    from chalicelib import bootstrap

    api, timers, _ = world(settings, aws, fast_policy(seller_response=3 * SECONDS, reminder_before=2 * SECONDS))
    try:
        api.delivered_order()
        did = api.open_dispute()["dispute_id"]
        reminders: list[dict] = []
        timers.run_until(lambda: bool(reminders.extend(
            e for e in timers.published() if e["detail-type"] == "dispute.deadline_approaching") or reminders))
        detail = reminders[0]["detail"]
        assert detail["dispute_id"] == did and detail["details"]["actor"] == "seller"
        assert detail["details"]["action"] == "SELLER_RESPONSE" and status(api, did) == "AWAITING_SELLER"
    finally:
        bootstrap.reset()


class FailingFirstStarts(StepFunctionsTimers):
    """The real adapter, with Step Functions down for the first ``n`` starts."""

    def __init__(self, inner: StepFunctionsTimers, n: int) -> None:
        super().__init__(inner.client, inner.state_machine_arn)
        self.failures = n

    def start(self, command):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("injected: Step Functions unreachable")
        super().start(command)


def test_a_timer_that_failed_to_start_is_started_by_the_reconciler(interpreter, settings, aws):
    import boto3

    from app import app
    from chalicelib import bootstrap

    real = StepFunctionsTimers(boto3.client("stepfunctions", region_name="us-east-1"), settings.timer_state_machine_arn)
    failing = FailingFirstStarts(real, 0)
    api, timers, c = world(settings, aws, timers=failing)
    try:
        api.delivered_order()
        failing.failures = 1  # Step Functions goes down just before the dispute opens
        r = api.post("/orders/o-1/disputes", BUYER, {"reason": "WRONG_ITEM", "description": "Blue, not red at all",
                                                     "requested": {"type": "REFUND_FULL"}})
        assert r.status_code == 201  # the dispute is stored; its timer start is owed, not lost
        did = r.json_body["dispute_id"]
        assert timers.executions(did) == {}
        owed = [r for r in c.outbox.pending(c.clock.now() + timedelta(minutes=1), 10) if r.kind is OutboxKind.TIMER]
        assert len(owed) == 1
        c.relay.drain(c.clock.now(), grace=timedelta(0))  # what the scheduled reconciler does
        c.services.timers.check_standing(c.clock.now(), grace=timedelta(0))  # and then (the order's seller)
        assert list(timers.executions(did)) == ["SELLER_RESPONSE"]  # started (running, or its 2 s ran out)
        assert c.outbox.pending(c.clock.now() + timedelta(minutes=1), 10) == []
        # Starting twice is harmless: the name is deterministic.
        app.handler_map["drain-outbox"]({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {},
                                         "resources": [], "time": "2026-11-23T00:00:00Z", "region": "us-east-1",
                                         "account": "1", "id": "x", "version": "0"}, None)
        timers.run_until(lambda: status(api, did) == "RESOLVED")
    finally:
        bootstrap.reset()


RACES = 25


def test_when_a_party_acts_as_the_deadline_fires_exactly_one_transition_wins(interpreter, settings, aws):
    """Many disputes whose seller accepts at the instant the timer fires: each ends exactly once,
    either for the seller (200, the timer is a no-op) or by the timer (409 to the seller)."""
    import time

    from chalicelib import bootstrap

    api, timers, c = world(settings, aws, fast_policy(seller_response=3 * SECONDS))
    try:
        disputes = []
        for i in range(RACES):
            api.delivered_order(f"o-{i}")
            d = api.open_dispute(f"o-{i}")
            disputes.append((d["dispute_id"], d["offers"][0]["offer_id"], f"o-{i}"))
        # Wait until the machines have reported (the expiries sit in the queue), then race.
        deadline = time.monotonic() + 15
        while int(timers.sqs.get_queue_attributes(QueueUrl=timers.env["TIMER_QUEUE_URL"], AttributeNames=[
                "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]) < RACES:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        start = threading.Barrier(2)
        answers: dict[str, int] = {}

        def sellers() -> None:
            start.wait()
            for did, offer, _ in disputes:
                answers[did] = api.post(f"/disputes/{did}/offers/{offer}/accept", SELLER, {}).status_code

        def timer() -> None:
            start.wait()
            while timers.pump.pump_once(wait_seconds=1):
                pass

        raced = threading.Event()

        def refund_worker() -> None:  # the pay-refunds function, sending while the race goes on
            while not raced.is_set():
                if not timers.pay_refunds():
                    time.sleep(0.05)

        threads = [threading.Thread(target=sellers), threading.Thread(target=timer)]
        worker = threading.Thread(target=refund_worker)
        for t in [*threads, worker]:
            t.start()
        for t in threads:
            t.join(timeout=60)
        raced.set()
        worker.join(timeout=60)
        timers.pay_refunds()  # what was handed over as the race ended
        deadline = time.monotonic() + 15  # the simulated card refunds settle half a second after they are sent
        while any(api.get(f"/orders/{o}").json_body["escrow"]["refund_pending"]["amount"] for _, _, o in disputes):
            assert time.monotonic() < deadline, "the refunds did not settle"
            time.sleep(0.2)
        won = {"seller": 0, "system": 0}
        for did, _, order_id in disputes:
            d = api.get(f"/disputes/{did}").json_body
            assert d["status"] == "RESOLVED"
            assert [e["event"] for e in d["timeline"]].count("dispute.resolved") == 1
            by = d["resolution"]["decided_by"]
            won[by] += 1
            assert answers[did] == (200 if by == "seller" else 409), (answers[did], by)
            escrow = api.get(f"/orders/{order_id}").json_body["escrow"]
            assert escrow["refunded"]["amount"] == 500 and escrow["released"]["amount"] == 1500
        assert sum(won.values()) == RACES
        print(f"races: {won}")
    finally:
        bootstrap.reset()


def test_a_refund_not_settled_in_time_is_overdue_on_the_real_machine_and_looked_up_again(
        interpreter, settings, aws):
    from chalicelib import bootstrap

    api, timers, _ = world(settings, aws, policy=fast_policy(refund_settlement=2 * SECONDS))
    provider = PROVIDERS[-1]
    try:
        provider.settle_late(1, extra_seconds=10**6)  # the card refund hangs at the provider
        api.delivered_order()
        d = api.open_dispute()
        r = api.post(f"/disputes/{d['dispute_id']}/offers/{d['offers'][0]['offer_id']}/accept", SELLER, {})
        refund_id = r.json_body["refund"]["refund_id"]

        def executions() -> dict[str, str]:
            return {e["name"]: e["status"] for page in timers.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=timers.env["TIMER_STATE_MACHINE_ARN"]) for e in page["executions"]
                if e["name"].startswith(refund_id)}

        # Started with the refund (on a busy machine its 2 s may already have run out).
        assert executions().get(f"{refund_id}--REFUND_SETTLEMENT--1") in ("RUNNING", "SUCCEEDED")
        timers.run_until(lambda: f"{refund_id}--REFUND_SETTLEMENT--2" in executions())
        assert executions()[f"{refund_id}--REFUND_SETTLEMENT--1"] == "SUCCEEDED"
        assert "refund.overdue" in [e["detail-type"] for e in timers.published()]
        # Looked up at the provider (still pending there), not sent again: nothing paid twice.
        assert provider.calls == 1 and len(provider.attempts(refund_id)) == 1
        order = api.get("/orders/o-1").json_body
        assert order["refunds"][0]["status"] == "PENDING" and order["escrow"]["refund_pending"]["amount"] == 500
    finally:
        bootstrap.reset()
