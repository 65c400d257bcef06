"""The stateful property test of seller standing and buyer signals (hypothesis), played over any
wiring of the use cases: random histories of orders, disputes, decisions, timer expiries (early,
late, twice), replays, defects reversed (once, or twice) and time passing. After every step, the standing and signals the service
answers equal a recomputation from the whole stored history (tests/standing_history.py).

Subclasses say how to build the world (``wire``) and how to read every stored order and dispute
(``history``): the in-memory fakes in tests/unit, DynamoDB (moto) in tests/integration."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Fault, Reason, Solution
from chalicelib.domain.disputes import Dispute
from chalicelib.domain.errors import DomainError
from chalicelib.domain.identity import Identity
from chalicelib.domain.orders import Order, ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.domain.timers import TimerCommand
from chalicelib.services import Services
from chalicelib.services import commands as c
from chalicelib.services.disputes import AcceptOffer, Cancel, Decide, Escalate, OpenDispute, RejectRequest
from tests import standing_history as model
from tests.support import FakeClock, order_body

ORDERS = [f"o-{i}" for i in range(6)]
SELLERS = ["s-1", "s-2"]
BUYERS = ["b-1", "b-2", "b-3"]
SERVICE = Identity("svc", frozenset(), scopes=frozenset({"orders.write", "tracking.write"}))
MODERATOR = Identity("m-1", frozenset({"moderators"}))
ADMIN = Identity("a-1", frozenset({"moderation-admins"}))
# Small thresholds, so short histories reach every level and both windows.
POLICY = Policy(standing_window_days=10, standing_long_window_days=40, standing_min_orders=3,
                at_risk_defect_rate=0.3, at_risk_buyers=2, watch_defect_rate=0.1, watch_buyers=1,
                signals_window_days=20, frequent_disputer_losses=2, refund_max_attempts=2)


def person(sub: str) -> Identity:
    return Identity(sub, frozenset())


class StandingMachine(RuleBasedStateMachine):
    services: Services
    clock: FakeClock
    started: list[TimerCommand]

    def wire(self) -> None:
        raise AssertionError("a subclass wires the use cases")

    def history(self) -> tuple[list[Order], list[Dispute]]:
        raise AssertionError("a subclass reads the stored history")

    @initialize()
    def start(self) -> None:
        self.wire()
        self.parties: dict[str, tuple[str, str]] = {}  # order -> (buyer, seller), once registered

    def _try(self, action: Any) -> Any:
        try:
            return action()
        except DomainError:
            return None  # refused: the invariant says whether anything was counted anyway

    def _dispute_id(self, order_id: str) -> str | None:
        mine = [d for d in self.history()[1] if d.order_id == order_id]
        open_ = [d for d in mine if d.is_open]
        return (open_ or mine)[-1].dispute_id if mine else None

    def _party(self, order_id: str, role: int) -> Identity:
        return person(self.parties.get(order_id, ("nobody", "nobody"))[role])

    # ---- orders ---------------------------------------------------------------------------
    @rule(order_id=st.sampled_from(ORDERS), buyer=st.sampled_from(BUYERS), seller=st.sampled_from(SELLERS))
    def register(self, order_id: str, buyer: str, seller: str) -> None:
        """Registered (a replay of the same body changes nothing; another body is refused)."""
        body = order_body(order_id, buyer_id=buyer, seller_id=seller,
                          estimated_delivery_at="2026-11-05T00:00:00Z")
        if self._try(lambda: self.services.orders.register(SERVICE, parse.register_order(body))) is not None:
            self.parties.setdefault(order_id, (buyer, seller))

    @rule(order_id=st.sampled_from(ORDERS), delivered=st.booleans())
    def ship(self, order_id: str, delivered: bool) -> None:
        self._try(lambda: self.services.orders.ship(self._party(order_id, 1), c.ShipOrder(order_id, "CP", "CN1")))
        if delivered:
            self._try(lambda: self.services.orders.record_scan(SERVICE, c.RecordScan(
                order_id, ScanStatus.DELIVERED, self.clock.now())))

    # ---- disputes -------------------------------------------------------------------------
    @rule(order_id=st.sampled_from(ORDERS), solution=st.sampled_from([Solution.REFUND_FULL, Solution.RESEND]),
          received=st.booleans())
    def open_dispute(self, order_id: str, solution: Solution, received: bool) -> None:
        reason = Reason.NOT_AS_DESCRIBED if received else Reason.NOT_RECEIVED
        self._try(lambda: self.services.disputes.open(self._party(order_id, 0), OpenDispute(
            order_id, reason, "Something is wrong with it", solution, None, ())))

    @rule(order_id=st.sampled_from(ORDERS), buyer=st.sampled_from(BUYERS), seller=st.sampled_from(SELLERS),
          solution=st.sampled_from([Solution.REFUND_FULL, Solution.RESEND]))
    def an_order_is_disputed(self, order_id: str, buyer: str, seller: str, solution: Solution) -> None:
        """The common path in one step: registered, delivered, disputed."""
        self.register(order_id, buyer, seller)
        self.ship(order_id, delivered=True)
        self.open_dispute(order_id, solution, received=True)

    @rule(order_id=st.sampled_from(ORDERS), buyer=st.sampled_from(BUYERS), seller=st.sampled_from(SELLERS),
          outcome=st.sampled_from(["REFUND_FULL", "REJECTED"]), fault=st.sampled_from([None, *Fault]),
          agreed=st.booleans(), hours=st.integers(0, 24 * 5))
    def a_dispute_runs_its_course(self, order_id: str, buyer: str, seller: str, outcome: str, fault: Fault | None,
                                  agreed: bool, hours: int) -> None:
        """Disputed, then agreed (early or late) or decided by a moderator."""
        self.an_order_is_disputed(order_id, buyer, seller, Solution.REFUND_FULL)
        self.time_passes(hours)
        if agreed:
            self.accept_open_offer(order_id, by_seller=True)
        else:
            self.reject_and_escalate(order_id)
            self.decide(order_id, outcome, fault)

    @rule(order_id=st.sampled_from(ORDERS), by_seller=st.booleans())
    def accept_open_offer(self, order_id: str, by_seller: bool) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is None:
            return
        dispute = next(d for d in self.history()[1] if d.dispute_id == dispute_id)
        who = self._party(order_id, 1 if by_seller else 0)
        for offer in [o for o in dispute.offers if o.status == "OPEN"]:
            cmd = AcceptOffer(dispute_id, None, offer.offer_id)
            self._try(lambda cmd=cmd: self.services.disputes.accept_offer(who, cmd))

    @rule(order_id=st.sampled_from(ORDERS))
    def reject_and_escalate(self, order_id: str) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            seller = self._party(order_id, 1)
            self._try(lambda: self.services.disputes.reject(seller, RejectRequest(dispute_id, None, "No way")))
            self._try(lambda: self.services.disputes.escalate(seller, Escalate(dispute_id, None, None)))

    @rule(order_id=st.sampled_from(ORDERS), outcome=st.sampled_from(["REFUND_FULL", "REJECTED"]),
          fault=st.sampled_from([None, *Fault]))
    def decide(self, order_id: str, outcome: str, fault: Fault | None) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            self._try(lambda: self.services.disputes.decide(MODERATOR, Decide(
                dispute_id, None, Decision(outcome), None, "A moderator's reasons here", fault)))

    @rule(order_id=st.sampled_from(ORDERS))
    def cancel(self, order_id: str) -> None:
        dispute_id = self._dispute_id(order_id)
        if dispute_id is not None:
            buyer = self._party(order_id, 0)
            self._try(lambda: self.services.disputes.cancel(buyer, Cancel(dispute_id, None, None)))

    @rule(order_id=st.sampled_from(ORDERS), twice=st.booleans())
    def a_defect_is_reversed(self, order_id: str, twice: bool) -> None:
        """A moderation admin subtracts an order's defect (a fault corrected), maybe twice: the
        second is refused and subtracts nothing more."""
        for _ in range(2 if twice else 1):
            self._try(lambda: self.services.moderation.reverse_defect(ADMIN, order_id))

    @rule(order_id=st.sampled_from(ORDERS), buyer=st.sampled_from(BUYERS), seller=st.sampled_from(SELLERS),
          hours=st.integers(0, 24 * 5), twice=st.booleans())
    def a_sellers_fault_is_corrected(self, order_id: str, buyer: str, seller: str, hours: int, twice: bool) -> None:
        """Decided against the seller, then the defect reversed: the common path in one step."""
        self.a_dispute_runs_its_course(order_id, buyer, seller, "REFUND_FULL", Fault.SELLER, False, hours)
        self.a_defect_is_reversed(order_id, twice)

    # ---- time and timers ------------------------------------------------------------------
    @rule(hours=st.integers(0, 24 * 30))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule(pick=st.integers(0, 10**6), early=st.booleans(), twice=st.booleans())
    def a_timer_fires(self, pick: int, early: bool, twice: bool) -> None:
        """Any timer ever started (a deadline, a ship-by date), early or on time, maybe twice."""
        if not self.started:
            return
        command = self.started[pick % len(self.started)]
        if not early and command.due_at is not None and command.due_at > self.clock.now():
            self.clock.current = command.due_at
        for _ in range(2 if twice else 1):
            self._try(lambda: self.services.timers.fired("EXPIRE", command.message()))

    # ---- after every step -------------------------------------------------------------------
    @invariant()
    def standing_and_signals_equal_a_recomputation_from_the_history(self) -> None:
        if not hasattr(self, "parties"):
            return
        orders, disputes = self.history()
        now: datetime = self.clock.now()
        for seller in SELLERS:
            answered = self.services.moderation.standing(MODERATOR, seller).to_dict()
            assert model.without_as_of(answered) == model.standing(seller, orders, disputes, now, POLICY)
        for buyer in BUYERS:
            answered = self.services.moderation.signals(MODERATOR, buyer).to_dict()
            assert model.without_as_of(answered) == model.signals(buyer, orders, disputes, now, POLICY)
