"""The simulated card processor: idempotent refunds, asynchronous settlement, scripted faults."""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from chalicelib.adapters.simulated_payments import MAX_DELIVERIES, SimulatedPayments
from chalicelib.domain.money import Money
from chalicelib.ports import InvalidWebhook, PaymentUnavailable, RefundOrder, SettlementNotice


class Tick:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def an_order(attempt: int = 1, amount: int = 2500, reference: str | None = "pi_1") -> RefundOrder:
    return RefundOrder("rf-1", attempt, "o-1", reference, Money(amount, "USD"))


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def delivered() -> list[SettlementNotice]:
    return []


@pytest.fixture
def sim(tick: Tick, delivered: list[SettlementNotice]) -> Iterator[SimulatedPayments]:
    with SimulatedPayments(delivered.append, auto_settle=False, clock=tick, secret="sim-secret") as provider:
        yield provider


def wait_until(condition: Callable[[], bool], deadline: float = 10.0) -> bool:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_a_refund_is_pending_until_it_settles_after_the_delay(sim, tick, delivered):
    receipt = sim.refund(an_order())
    assert receipt.status == "PENDING" and receipt.provider_refund_id.startswith("sim_re_")
    tick.now += 0.99
    assert sim.settle_due() == [] and sim.sent == {}
    tick.now += 0.01
    [notice] = sim.settle_due()
    assert notice.event_id.startswith("sim_evt_")
    assert (notice.refund_id, notice.attempt, notice.status) == ("rf-1", 1, "SUCCEEDED")
    assert notice.provider_refund_id == receipt.provider_refund_id and notice.amount == Money(2500, "USD")
    assert delivered == [notice]
    assert sim.lookup(an_order()).status == "SUCCEEDED"
    assert sim.sent == {"rf-1:1": Money(2500, "USD")}


def test_the_same_idempotency_key_never_sends_money_twice(sim, tick, delivered):
    first = sim.refund(an_order())
    assert sim.refund(an_order()) == first
    tick.now += 5
    sim.settle_due()
    again = sim.refund(an_order())
    assert again.status == "SUCCEEDED" and again.provider_refund_id == first.provider_refund_id
    tick.now += 5
    assert sim.settle_due() == []
    assert sim.calls == 3 and len(sim.attempts("rf-1")) == 1 and len(delivered) == 1
    assert sim.sent_for("rf-1") == 2500


@pytest.mark.parametrize("changed", [an_order(amount=2400), an_order(reference="pi_2")])
def test_reusing_a_key_with_other_parameters_is_refused_and_moves_no_money(sim, tick, changed):
    sim.refund(an_order())
    with pytest.raises(PaymentUnavailable, match="idempotency key reused"):
        sim.refund(changed)
    tick.now += 5
    sim.settle_due()
    assert sim.sent == {"rf-1:1": Money(2500, "USD")}


def test_a_declined_refund_settles_failed_and_sends_nothing(sim, tick, delivered):
    sim.fail_next(reason="card_declined")
    assert sim.refund(an_order()).status == "PENDING"
    tick.now += 5
    [notice] = sim.settle_due()
    assert (notice.status, notice.failure_reason) == ("FAILED", "card_declined")
    assert sim.lookup(an_order()).failure_reason == "card_declined"
    assert sim.sent == {} and sim.sent_for("rf-1") == 0 and delivered == [notice]


def test_a_new_attempt_after_a_failure_is_paid_once_over_the_refund(sim, tick):
    sim.fail_next()
    sim.refund(an_order(attempt=1))
    tick.now += 5
    sim.settle_due()
    sim.refund(an_order(attempt=2))
    tick.now += 5
    sim.settle_due()
    assert [r.status for _, r in sim.attempts("rf-1")] == ["FAILED", "SUCCEEDED"]
    assert sim.sent_for("rf-1") == 2500 and sim.sent_for("rf-other") == 0


def test_a_lost_answer_then_a_retry_with_the_same_key_sends_once(sim, tick):
    sim.timeout_next(after_accepting=True)
    with pytest.raises(PaymentUnavailable, match="timed out"):
        sim.refund(an_order())
    assert sim.lookup(an_order()).status == "PENDING"  # the provider did accept it
    retried = sim.refund(an_order())
    assert retried.status == "PENDING"
    tick.now += 5
    assert len(sim.settle_due()) == 1
    assert sim.sent_for("rf-1") == 2500 and len(sim.attempts("rf-1")) == 1


@pytest.mark.parametrize(("script", "message"), [(SimulatedPayments.garbage_next, "unreadable answer"),
                                                 (SimulatedPayments.timeout_next, "timed out")])
def test_garbage_and_plain_timeouts_record_nothing(sim, tick, script, message):
    script(sim, 2)
    for _ in range(2):
        with pytest.raises(PaymentUnavailable, match=message):
            sim.refund(an_order())
    assert sim.lookup(an_order()) is None and sim.attempts("rf-1") == []
    tick.now += 5
    assert sim.settle_due() == [] and sim.sent == {}
    assert sim.refund(an_order()).status == "PENDING"  # the script is used up: back to normal
    assert sim.calls == 3


def test_a_refused_refund_fails_at_once_and_never_settles(sim, tick, delivered):
    sim.refuse_next(reason="charge_already_refunded")
    receipt = sim.refund(an_order())
    assert (receipt.status, receipt.failure_reason) == ("FAILED", "charge_already_refunded")
    assert sim.refund(an_order()) == receipt
    tick.now += 5
    assert sim.settle_due() == [] and delivered == [] and sim.sent == {}


def test_a_late_settlement_arrives_after_the_extra_delay(sim, tick):
    sim.settle_late(extra_seconds=10)
    sim.refund(an_order(attempt=1))
    sim.refund(an_order(attempt=2))
    tick.now += 1
    assert [n.attempt for n in sim.settle_due()] == [2]
    tick.now += 9.5
    assert sim.settle_due() == []
    tick.now += 0.5
    assert [n.attempt for n in sim.settle_due()] == [1]


def test_settle_after_can_change_at_runtime(sim, tick):
    sim.settle_after = 30
    sim.refund(an_order())
    tick.now += 29
    assert sim.settle_due() == []
    assert len(sim.settle_due(now=tick.now + 1)) == 1


def test_a_refused_delivery_is_retried_until_accepted(tick: Tick) -> None:
    seen: list[SettlementNotice] = []

    def flaky(notice: SettlementNotice) -> None:
        seen.append(notice)
        if len(seen) < 3:
            raise RuntimeError("webhook endpoint down")

    with SimulatedPayments(flaky, auto_settle=False, clock=tick, redeliver_after=2.0) as sim:
        sim.refund(an_order())
        tick.now += 1
        [notice] = sim.settle_due()
        tick.now += 1.5
        sim.settle_due()
        assert len(seen) == 1  # not yet: redelivery waits redeliver_after
        for _ in range(3):
            tick.now += 2
            sim.settle_due()
        assert seen == [notice] * 3 and sim.undelivered == []
        assert sim.sent_for("rf-1") == 2500  # redelivery never moves money again


def test_delivery_gives_up_after_a_bounded_number_of_tries(tick: Tick) -> None:
    tries: list[SettlementNotice] = []

    def down(notice: SettlementNotice) -> None:
        tries.append(notice)
        raise RuntimeError("webhook endpoint down")

    with SimulatedPayments(down, auto_settle=False, clock=tick) as sim:
        sim.refund(an_order())
        for _ in range(MAX_DELIVERIES + 5):
            tick.now += 3
            sim.settle_due()
        assert len(tries) == MAX_DELIVERIES and len(sim.undelivered) == 1


def test_a_signed_webhook_round_trips(sim, tick):
    sim.fail_next(reason="expired_card")
    sim.refund(an_order())
    tick.now += 5
    [notice] = sim.settle_due()
    payload, headers = sim.sign(notice)
    assert sim.parse_webhook(payload, headers) == notice
    assert sim.parse_webhook(payload, {k.lower(): v for k, v in headers.items()}) == notice


def test_a_tampered_or_unsigned_webhook_is_invalid(sim, tick):
    sim.refund(an_order())
    tick.now += 5
    [notice] = sim.settle_due()
    payload, headers = sim.sign(notice)
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(payload.replace(b"2500", b"9500"), headers)
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(payload, {})
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(payload, {"X-Sim-Signature": "é" * 64})
    with SimulatedPayments(auto_settle=False, secret="another") as other, pytest.raises(InvalidWebhook):
        other.parse_webhook(payload, headers)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"id": "e", "type": "refund.updated", "data": {}}',
                                  b'{"id": "e", "type": "refund.updated", "data": {"refund_id": "r", "attempt": 1,'
                                  b' "provider_refund_id": "p", "status": "LOST", "amount": {"amount": 1, "currency": "USD"}}}'])
def test_a_signed_but_unreadable_webhook_is_invalid(sim, body):
    signature = hmac.new(b"sim-secret", body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(body, {"X-Sim-Signature": signature})


@pytest.mark.parametrize("attempt", ["1e400", "-1e400", "1.5", "true", "0", "-1", '" 1"', "null", "1001", "9" * 5000])
def test_a_signed_webhook_whose_attempt_is_no_attempt_number_is_invalid_never_a_crash(sim, attempt):
    # 1e400 is read as an infinite float, whose int() raised OverflowError: a 500 before this.
    data = ('"refund_id": "r", "attempt": ' + attempt + ', "order_id": "o", "provider_refund_id": "p",'
            ' "status": "SUCCEEDED", "amount": {"amount": 1, "currency": "USD"}')
    body = ('{"id": "e", "type": "refund.updated", "data": {' + data + '}}').encode()
    signature = hmac.new(b"sim-secret", body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(body, {"X-Sim-Signature": signature})


def test_a_webhook_about_something_else_is_ignored(sim):
    body = b'{"id": "e", "type": "charge.succeeded", "data": {}}'
    signature = hmac.new(b"sim-secret", body, hashlib.sha256).hexdigest()
    assert sim.parse_webhook(body, {"X-Sim-Signature": signature}) is None


def test_many_threads_with_one_key_make_one_attempt_and_pay_once(sim, tick):
    barrier = threading.Barrier(16)
    receipts = []

    def call() -> None:
        barrier.wait()
        receipts.append(sim.refund(an_order()))

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(receipts) == 16 and len({r.provider_refund_id for r in receipts}) == 1
    assert sim.calls == 16 and len(sim.attempts("rf-1")) == 1
    tick.now += 5
    assert len(sim.settle_due()) == 1
    assert sim.sent_for("rf-1") == 2500


def test_the_background_thread_settles_and_redelivers_until_accepted() -> None:
    accepted: list[SettlementNotice] = []
    refusals: list[SettlementNotice] = []

    def receive(notice: SettlementNotice) -> None:
        if not refusals:
            refusals.append(notice)
            raise RuntimeError("first delivery refused")
        accepted.append(notice)

    with SimulatedPayments(receive, settle_after=0.05, redeliver_after=0.05) as sim:
        assert sim.refund(an_order()).status == "PENDING"
        assert wait_until(lambda: len(accepted) == 1)
        assert accepted == refusals and accepted[0].status == "SUCCEEDED"
        assert sim.sent_for("rf-1") == 2500


def test_close_stops_the_thread():
    sim = SimulatedPayments()
    thread = sim._thread
    assert thread is not None and thread.is_alive()
    sim.refund(an_order())  # something pending: the thread is waiting on a deadline, not forever
    sim.close()
    assert not thread.is_alive()


def test_without_a_configured_secret_nobody_can_forge_a_webhook():
    with SimulatedPayments(auto_settle=False) as a, SimulatedPayments(auto_settle=False) as b:
        body = b'{"id": "e", "type": "charge.succeeded", "data": {}}'
        for guess in ("sim-secret", ""):
            with pytest.raises(InvalidWebhook):
                a.parse_webhook(body, {"X-Sim-Signature": hmac.new(guess.encode(), body, hashlib.sha256).hexdigest()})
        payload, headers = a.sign(SettlementNotice("e", "r", 1, "p", "SUCCEEDED", Money(1, "USD")))
        with pytest.raises(InvalidWebhook):
            b.parse_webhook(payload, headers)
