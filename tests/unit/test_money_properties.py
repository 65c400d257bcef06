"""A stateful property test of the money (hypothesis): random sequences over many orders of API
actions, timer expiries (early, late, twice), the refund worker (late, partly, a message delivered
again), the provider failing, timing out, answering garbage or settling late, replayed and
out-of-order webhooks, the reconciler and moderators' retries.

The provider may also change its mind: an attempt it failed succeeds later (its notice delivered
or lost), with newer attempts cancellable or not.

After every step, for every order: held == refunded + refund pending + released + still held,
nothing negative; and, from the simulated provider's own count, no refund was paid more than
once, and a refund is SUCCEEDED exactly when its money was sent. The one exception is the
provider's own: a change of mind after another attempt of the same refund had already paid (or
before the refund worker ran the cancel a webhook handed it); such a refund is then always held
for a person (PAID_TWICE), never silently counted once."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Reason, ReturnProblem, Solution
from chalicelib.domain.errors import DomainError
from chalicelib.domain.ledger import RefundStatus
from chalicelib.domain.money import Money
from chalicelib.domain.orders import ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.ports import SettlementNotice
from chalicelib.services import commands as c
from chalicelib.services.disputes import (
    AcceptOffer,
    Cancel,
    ConfirmReturn,
    ContestReturn,
    Decide,
    Escalate,
    OpenDispute,
    RejectRequest,
    ShipReturn,
)
from tests.support import order_body
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, new_world

ORDERS = [f"o-{i}" for i in range(4)]
OUTCOMES = ["REFUND_FULL", "REFUND_PARTIAL", "REJECTED", "RETURN_AND_REFUND"]


class Money_(RuleBasedStateMachine):
    @initialize()
    def wire(self) -> None:
        world = new_world(Policy(refund_max_attempts=2, refund_retry=timedelta(minutes=5)))
        self.clock, self.policy, self.state, self.timers = world.clock, world.policy, world.state, world.timers
        self.provider, self.services = world.payments, world.services
        self.refunds, self.worker = world.refunds, world.worker
        self.handed: list[dict[str, Any]] = []  # every message the refund queue carried
        self.notices: list[SettlementNotice] = []
        self.fired = 0
        self.provider_paid_twice: set[str] = set()  # refunds the provider itself may pay twice
        self.cancels_refused = False  # as the provider was last told (refuse_cancels)
        self.unheard: set[str] = set()  # attempts that paid after a change of mind whose notice was lost

    def teardown(self) -> None:
        self.provider.close()

    def _try(self, action: Any) -> Any:
        try:
            return action()
        except DomainError:
            return None  # a refusal is a fine answer; the invariants say whether it hurt

    def _dispute_id(self, order_id: str) -> str | None:
        entry = self.state.orders.get(order_id)
        if entry is None:
            return None
        if entry[0].open_dispute_id:
            return entry[0].open_dispute_id
        mine = [d for d in self.state.disputes.values() if d.order_id == order_id]
        return mine[-1].dispute_id if mine else None

    # ---- the API ------------------------------------------------------------------------------
    @rule(order_id=st.sampled_from(ORDERS), total=st.integers(2, 5000))
    def register(self, order_id: str, total: int) -> None:
        self._try(lambda: self.services.orders.register(SERVICE, parse.register_order(order_body(
            order_id, total=total, estimated_delivery_at="2026-11-05T00:00:00Z"))))

    @rule(order_id=st.sampled_from(ORDERS), delivered=st.booleans())
    def ship(self, order_id: str, delivered: bool) -> None:
        self._try(lambda: self.services.orders.ship(SELLER, c.ShipOrder(order_id, "CP", "CN1")))
        if delivered:
            self._try(lambda: self.services.orders.record_scan(SERVICE, c.RecordScan(
                order_id, ScanStatus.DELIVERED, self.clock.now())))

    @rule(order_id=st.sampled_from(ORDERS))
    def confirm_receipt(self, order_id: str) -> None:
        self._try(lambda: self.services.orders.confirm_receipt(BUYER, c.ConfirmReceipt(order_id)))

    @rule(order_id=st.sampled_from(ORDERS), solution=st.sampled_from(list(Solution)), part=st.integers(1, 4999),
          received=st.booleans())
    def open_dispute(self, order_id: str, solution: Solution, part: int, received: bool) -> None:
        reason = Reason.NOT_AS_DESCRIBED if received else Reason.NOT_RECEIVED
        amount = Money(part, "USD") if solution is Solution.REFUND_PARTIAL else None
        self._try(lambda: self.services.disputes.open(BUYER, OpenDispute(
            order_id, reason, "Something is wrong with it", solution, amount, ())))

    @rule(order_id=st.sampled_from(ORDERS), by_seller=st.booleans())
    def accept_open_offer(self, order_id: str, by_seller: bool) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is None:
            return
        who = SELLER if by_seller else BUYER
        offers = [o for o in self.state.disputes[dispute_id].offers if o.status == "OPEN"]
        for offer in offers:
            cmd = AcceptOffer(dispute_id, None, offer.offer_id)
            self._try(lambda cmd=cmd: self.services.disputes.accept_offer(who, cmd))

    @rule(order_id=st.sampled_from(ORDERS), total=st.integers(2, 5000), solution=st.sampled_from(
        [Solution.REFUND_FULL, Solution.REFUND_PARTIAL, Solution.RESEND]), part=st.integers(1, 4999))
    def a_dispute_is_agreed(self, order_id: str, total: int, solution: Solution, part: int) -> None:
        """The common path, in one step: registered, delivered, disputed, and the seller agrees."""
        self.register(order_id, total)
        self.ship(order_id, delivered=True)
        self.open_dispute(order_id, solution, part, received=True)
        self.accept_open_offer(order_id, by_seller=True)

    @rule(order_id=st.sampled_from(ORDERS), total=st.integers(2, 5000), retried=st.booleans())
    def a_refund_is_declined(self, order_id: str, total: int, retried: bool) -> None:
        """The path a change of mind needs, in one step: a full refund agreed, its attempt declined
        at the provider, and (maybe) its retry timer firing at once (attempt 2 goes out)."""
        self.provider.fail_next(1)
        self.a_dispute_is_agreed(order_id, total, Solution.REFUND_FULL, 1)
        self.the_refund_worker_runs()
        self.money_settles()
        if retried:
            for command in [t for t in self.timers.started if t.action == "REFUND_RETRY"]:
                self._try(lambda command=command: self.services.timers.fired("EXPIRE", command.message()))
            self.the_refund_worker_runs()

    @rule(order_id=st.sampled_from(ORDERS))
    def reject_and_escalate(self, order_id: str) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            self._try(lambda: self.services.disputes.reject(SELLER, RejectRequest(dispute_id, None, "No way")))
            self._try(lambda: self.services.disputes.escalate(SELLER, Escalate(dispute_id, None, None)))

    @rule(order_id=st.sampled_from(ORDERS), outcome=st.sampled_from(OUTCOMES), part=st.integers(1, 4999))
    def decide(self, order_id: str, outcome: str, part: int) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            amount = Money(part, "USD") if outcome == "REFUND_PARTIAL" else None
            self._try(lambda: self.services.disputes.decide(MODERATOR, Decide(
                dispute_id, None, Decision(outcome), amount, "A moderator's reasons here")))

    @rule(order_id=st.sampled_from(ORDERS), contest=st.booleans())
    def the_return(self, order_id: str, contest: bool) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is None:
            return
        self._try(lambda: self.services.disputes.ship_return(BUYER, ShipReturn(dispute_id, None, "CP", "R1")))
        if contest:
            self._try(lambda: self.services.disputes.contest_return(SELLER, ContestReturn(
                dispute_id, None, ReturnProblem.EMPTY_BOX, "Nothing inside")))
        else:
            self._try(lambda: self.services.disputes.confirm_return(SELLER, ConfirmReturn(dispute_id, None)))

    @rule(order_id=st.sampled_from(ORDERS))
    def cancel(self, order_id: str) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            self._try(lambda: self.services.disputes.cancel(BUYER, Cancel(dispute_id, None, None)))

    # ---- time and timers ----------------------------------------------------------------------
    @rule(minutes=st.integers(0, 60 * 24 * 20))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @rule(pick=st.integers(0, 10**6), early=st.booleans())
    def a_timer_fires(self, pick: int, early: bool) -> None:
        """Any timer ever started, in any order, possibly again (at-least-once delivery)."""
        started = self.timers.started
        if not started:
            return
        command = started[pick % len(started)]
        if not early and command.due_at is not None and command.due_at > self.clock.now():
            self.clock.current = command.due_at
        self._try(lambda: self.services.timers.fired("EXPIRE", command.message()))
        self.fired += 1

    @rule()
    def the_reconciler_runs(self) -> None:
        self.clock.advance(seconds=31)
        self.services.timers.drain_outbox()

    # ---- the refund worker (off the request path) ---------------------------------------------
    @rule(some=st.booleans())
    def the_refund_worker_runs(self, some: bool = False) -> None:
        """The worker sends what the queue holds (``some``: only the first message; the rest
        waits for a later run, while anything else may happen in between)."""
        messages = self.refunds.take()
        if some:
            self.refunds.messages, messages = messages[1:], messages[:1]
        self.handed += messages
        for message in messages:
            self._handle(message)

    @rule(pick=st.integers(0, 10**6))
    def a_refund_message_comes_again(self, pick: int) -> None:
        """The queue delivers a message again (SQS is at least once), or two workers hold it."""
        if self.handed:
            self._handle(self.handed[pick % len(self.handed)])

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("op") == "cancel" and self.cancels_refused and any(
                r.status == "PENDING" for _, r in self.provider.attempts(message["refund_id"])):
            # The cancel a webhook handed over runs now, while the provider refuses cancels.
            self.provider_paid_twice.add(message["refund_id"])
        self._try(lambda: self.worker.handle(message))

    # ---- the provider -------------------------------------------------------------------------
    @rule(fault=st.sampled_from(["fail", "timeout", "lost_answer", "garbage", "late", "refuse"]))
    def the_provider_misbehaves_next(self, fault: str) -> None:
        {"fail": lambda: self.provider.fail_next(1), "timeout": lambda: self.provider.timeout_next(1),
         "lost_answer": lambda: self.provider.timeout_next(1, after_accepting=True),
         "garbage": lambda: self.provider.garbage_next(1), "late": lambda: self.provider.settle_late(1, 10**9),
         "refuse": lambda: self.provider.refuse_next(1)}[fault]()

    @rule(pick=st.integers(0, 10**6), delivered=st.booleans(), cancellable=st.booleans())
    def the_provider_changes_its_mind(self, pick: int, delivered: bool, cancellable: bool) -> None:
        """An attempt the provider failed succeeds after all; its notice comes in, or is lost."""
        failed = [(o, r) for o, r in ((o, r) for ro in self._all_refund_ids() for o, r in self.provider.attempts(ro))
                  if r.status == "FAILED"]
        if not failed:
            return
        order, _ = failed[pick % len(failed)]
        others = [r.status for o, r in self.provider.attempts(order.refund_id) if o.attempt != order.attempt]
        if "SUCCEEDED" in others or ("PENDING" in others and not (cancellable and delivered)):
            # Another attempt had paid, or is out and will not be stopped: the provider may pay twice.
            self.provider_paid_twice.add(order.refund_id)
        self.provider.refuse_cancels(not cancellable)
        self.cancels_refused = not cancellable
        notice = self.provider.change_mind(order.refund_id, order.attempt, deliver=delivered)
        if notice is not None:
            self.notices.append(notice)  # a lost one may still come in later (replays)
            if not delivered:
                self.unheard.add(order.idempotency_key)

    def _all_refund_ids(self) -> list[str]:
        return [r.refund_id for o, _ in self.state.orders.values() for r in o.refunds]

    @rule()
    def money_settles(self) -> None:
        # A cancel the refund worker has not run yet (a webhook hands it over through the queue)
        # cannot stop a newer attempt that settles now: the provider may pay it too.
        for message in self.refunds.messages:
            if message.get("op") == "cancel" and any(
                    r.status == "PENDING" for _, r in self.provider.attempts(message["refund_id"])):
                self.provider_paid_twice.add(message["refund_id"])
        self.notices += self.provider.settle_due(now=10**8)

    @rule(pick=st.integers(0, 10**6), earlier=st.booleans())
    def a_webhook_is_replayed_or_comes_out_of_order(self, pick: int, earlier: bool) -> None:
        """Any notice the provider sent, again, in any order, or the "pending" notice every attempt
        had before it settled arriving late. (A notice saying what the provider never said is a
        forgery: the signature check keeps those out, see test_money.py.)"""
        if not self.notices:
            return
        notice = self.notices[pick % len(self.notices)]
        if earlier:
            notice = replace(notice, status=RefundStatus.PENDING, failure_reason=None)
        self._try(lambda: self.services.payments.settle(notice))

    @rule(order_id=st.sampled_from(ORDERS))
    def a_moderator_retries_what_needs_attention(self, order_id: str) -> None:
        entry = self.state.orders.get(order_id)
        for refund in entry[0].refunds if entry else ():
            if refund.needs_attention:
                self._try(lambda r=refund.refund_id: self.services.payments.retry(MODERATOR, order_id, r))

    # ---- after every step -----------------------------------------------------------------------
    @invariant()
    def escrow_balances_and_no_refund_is_paid_twice(self) -> None:
        if not hasattr(self, "state"):
            return
        for order, _ in self.state.orders.values():
            escrow = order.escrow
            escrow.check()
            assert (escrow.refunded.amount + escrow.refund_pending.amount + escrow.released.amount
                    + escrow.still_held.amount) == order.total.amount
            for refund in order.refunds:
                sent = self.provider.sent_for(refund.refund_id)
                keys = [k for k in self.provider.sent if k.startswith(refund.refund_id + ":")]
                if len(keys) > 1:
                    assert refund.refund_id in self.provider_paid_twice, (refund, keys)  # never our doing
                    if not self.unheard.intersection(keys):  # once we heard it: a person looks, never silence
                        assert refund.needs_attention and refund.attention_reason in ("PAID_TWICE",
                                                                                     "NEWER_ATTEMPT_LIVE"), refund
                    continue
                assert sent in (0, refund.amount.amount), f"{refund.refund_id} paid {sent} of {refund.amount}"
                if sent > 0 and refund.status != "SUCCEEDED":
                    assert keys[0] in self.unheard, (refund, keys)  # the provider knows, we have not heard yet
                else:
                    assert (sent > 0) == (refund.status == "SUCCEEDED"), (refund, sent)


TestMoney = Money_.TestCase
TestMoney.settings = settings(max_examples=200, stateful_step_count=40, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
