"""The world the unit tests play in: every use case wired as in the app (``bootstrap.use_cases``)
over the in-memory fakes, a unit of work over ``InMemoryState`` and the relay delivering the
outbox to recording timers and a recording publisher; the callers (identities); states built
through the use cases themselves. No AWS, no moto."""
from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from chalicelib import bootstrap
from chalicelib.adapters.memory import (
    FakeUnitOfWork,
    InMemoryOutbox,
    InMemoryRefundQueue,
    InMemoryState,
    MemoryEvidenceStore,
    RecordingPublisher,
    RecordingTimers,
)
from chalicelib.adapters.simulated_payments import SimulatedPayments
from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Reason, Solution
from chalicelib.domain.disputes import Dispute, Status
from chalicelib.domain.evidence import Evidence
from chalicelib.domain.identity import Identity
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.ports import OutboxKind, OutboxRecord
from chalicelib.relay import OutboxRelay, RefundWorker
from chalicelib.services import Services
from chalicelib.services import commands as c
from chalicelib.services.disputes import AcceptOffer, Escalate, MakeOffer, OpenDispute, ShipReturn
from tests.support import T0, FakeClock, order_body

BUYER = Identity("b-1", frozenset())
SELLER = Identity("s-1", frozenset())
STRANGER = Identity("x-1", frozenset())
MODERATOR = Identity("m-1", frozenset({"moderators"}))
SERVICE = Identity("svc", frozenset(), scopes=frozenset({"orders.write", "tracking.write"}))

Ctx = dict[str, str]


def jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    """A real, small JPEG, as a phone would upload it."""
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class World:
    clock: FakeClock
    state: InMemoryState
    timers: RecordingTimers
    publisher: RecordingPublisher
    store: MemoryEvidenceStore
    relay: OutboxRelay
    services: Services
    payments: SimulatedPayments
    policy: Policy
    refunds: InMemoryRefundQueue
    worker: RefundWorker

    # ---- what the tests compare ------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything stored, and everything that went out to the world (deep copies)."""
        s = self.state
        return copy.deepcopy({"orders": s.orders, "disputes": s.disputes, "messages": s.messages, "notes": s.notes,
                              "counters": s.counters, "markers": s.markers, "rules": s.rules, "cases": s.cases,
                              "evidence": s.evidence, "outbox": s.outbox, "objects": self.store.objects,
                              "started": self.timers.started, "stopped": self.timers.stopped,
                              "events": self.publisher.events})

    # ---- states, built through the use cases themselves ------------------------------------
    def registered(self) -> Ctx:
        order, created = self.services.orders.register(SERVICE, parse.register_order(order_body()))
        assert created
        return {"order_id": order.order_id}

    def shipped(self) -> Ctx:
        ctx = self.registered()
        self.services.orders.ship(SELLER, c.ShipOrder(ctx["order_id"], "CP", "CN123"))
        return ctx

    def delivered(self) -> Ctx:
        ctx = self.shipped()
        self.services.orders.record_scan(SERVICE, c.RecordScan(ctx["order_id"], ScanStatus.DELIVERED, T0))
        return ctx

    def awaiting_seller(self, requested: Solution = Solution.REFUND_PARTIAL, amount: int | None = 500) -> Ctx:
        """AWAITING_SELLER; the buyer's request is the open offer ``offer_id``."""
        ctx = self.delivered()
        d = self.services.disputes.open(BUYER, OpenDispute(
            ctx["order_id"], Reason.NOT_AS_DESCRIBED, "Ordered red, received blue", requested,
            None if amount is None else Money(amount, "USD"), ()))
        assert d.status is Status.AWAITING_SELLER
        return {**ctx, "dispute_id": d.dispute_id, "offer_id": d.offers[0].offer_id}

    def negotiating(self) -> Ctx:
        """NEGOTIATING, with the seller's counter-offer open as ``offer_id``."""
        ctx = self.awaiting_seller()
        d, offer = self.services.disputes.make_offer(SELLER, MakeOffer(
            ctx["dispute_id"], None, Solution.REFUND_PARTIAL, Money(1000, "USD"), None))
        assert d.status is Status.NEGOTIATING
        return {**ctx, "offer_id": offer.offer_id}

    def negotiating_with_photo(self) -> Ctx:
        """NEGOTIATING, with the buyer's photo accepted (what a buyer needs to escalate)."""
        ctx = self.negotiating()
        self.upload_photo(ctx["dispute_id"])
        return ctx

    def with_evidence(self) -> Ctx:
        """AWAITING_SELLER, with one accepted photo from the buyer."""
        ctx = self.awaiting_seller()
        self.upload_photo(ctx["dispute_id"])
        return ctx

    def escalated(self) -> Ctx:
        ctx = self.negotiating()
        d = self.services.disputes.escalate(SELLER, Escalate(ctx["dispute_id"], None, None))
        assert d.status is Status.ESCALATED
        return ctx

    def awaiting_return(self) -> Ctx:
        ctx = self.awaiting_seller(Solution.RETURN_AND_REFUND, None)
        d = self.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
        assert d.status is Status.AWAITING_RETURN
        return ctx

    def return_in_transit(self) -> Ctx:
        ctx = self.awaiting_return()
        d = self.services.disputes.ship_return(BUYER, ShipReturn(ctx["dispute_id"], None, "CP", "RT123"))
        assert d.status is Status.RETURN_IN_TRANSIT
        return ctx

    # ---- evidence ----------------------------------------------------------------------------
    def upload_photo(self, dispute_id: str, who: Identity = BUYER) -> Evidence:
        """Request a slot, put a real JPEG where the presigned POST would, and let S3's event in."""
        data = jpeg()
        slot, _ = self.services.evidence.request_upload(who, c.RequestUpload(dispute_id, "photo.jpg", "image/jpeg",
                                                                             len(data)))
        self.store.write(slot.upload_key, data, "image/jpeg")
        assert self.services.evidence.process_upload(slot.upload_key) == "accepted"
        stored = self.state.evidence[(dispute_id, slot.evidence_id)]
        assert stored.status == "ACCEPTED"
        return stored

    def dispute(self, dispute_id: str) -> Dispute:
        return self.state.disputes[dispute_id]

    def shown(self, dispute_id: str) -> dict[str, Any]:
        """The dispute as its buyer reads it over the API (its refund derived from the order)."""
        from chalicelib.api import views

        return views.dispute(self.services.disputes.get(BUYER, dispute_id), self.clock.now(), self.policy, BUYER)

    def order(self, order_id: str = "o-1") -> Order:
        return self.state.orders[order_id][0]

    # ---- money -------------------------------------------------------------------------------
    def pay_refunds(self) -> list[str]:
        """The refund worker, over every message the refund queue holds: what each send did."""
        return [self.worker.handle(m) for m in self.refunds.take()]

    def outbox(self) -> dict[str, OutboxRecord]:
        """The outbox records for the outside world (timers, events, refunds): without the sellers'
        standing checks, which wait for the reconciler by design (services/timers.py)."""
        return {k: r for k, r in self.state.outbox.items() if r.kind is not OutboxKind.STANDING}

    def standing_checks(self) -> list[str]:
        """The sellers whose standing the reconciler will evaluate."""
        return [r.payload["seller_id"] for r in self.state.outbox.values() if r.kind is OutboxKind.STANDING]

    def settle_payments(self) -> list[Any]:
        """The refund worker sends what is owed, then every refund attempt the provider holds
        settles now (its webhooks come in)."""
        self.pay_refunds()
        return self.payments.settle_due(now=float("inf"))

    def refunded(self) -> Ctx:
        """A full refund agreed (the seller accepted), sent to the provider, not settled yet."""
        ctx = self.awaiting_seller(Solution.REFUND_FULL, None)
        d = self.services.disputes.accept_offer(SELLER, AcceptOffer(ctx["dispute_id"], None, ctx["offer_id"]))
        assert d.refund is not None
        self.pay_refunds()  # the refund worker, after the request
        return {**ctx, "refund_id": d.refund.refund_id}

    def refund_needing_attention(self) -> Ctx:
        """A refund whose every automatic attempt failed at the provider."""
        self.payments.fail_next(self.policy.refund_max_attempts, "card_declined")  # every attempt sent fails
        ctx = self.refunded()
        for _ in range(self.policy.refund_max_attempts):
            self.settle_payments()
            refund = self.order(ctx["order_id"]).ledger.refund(ctx["refund_id"])
            if refund.needs_attention:
                return ctx
            assert self.services.payments.timer("REFUND_RETRY", ctx["order_id"], ctx["refund_id"],
                                                refund.attempt) == "retried"
        raise AssertionError("the refund never needed attention")


def new_world(policy: Policy | None = None) -> World:
    """The use cases over fresh fakes; close ``world.payments`` when done."""
    clock = FakeClock()
    policy = policy or Policy(refund_max_attempts=3)
    state = InMemoryState(policy)
    timers, publisher, store = RecordingTimers(), RecordingPublisher(), MemoryEvidenceStore()
    refunds = InMemoryRefundQueue()
    relay = OutboxRelay(InMemoryOutbox(state), timers, publisher, refunds)
    holder: list[Services] = []
    # The simulator's webhooks reach the service in-process; tests decide when money settles.
    payments = SimulatedPayments(lambda notice: holder[0].payments.settle(notice), auto_settle=False)
    services = bootstrap.use_cases(lambda: FakeUnitOfWork(state, relay, clock), clock, policy, relay, publisher,
                                   store, payments, sandbox=True)
    holder.append(services)
    return World(clock=clock, state=state, timers=timers, publisher=publisher, store=store, relay=relay,
                 services=services, payments=payments, policy=policy, refunds=refunds,
                 worker=RefundWorker(InMemoryOutbox(state), services.payments.send, clock,
                                     services.payments.stop_newer_attempt))
