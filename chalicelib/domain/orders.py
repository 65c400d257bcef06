"""Orders: logistics, the money they hold (a ledger, see ledger.py), and when a dispute may be opened.

An order is immutable: every change returns a new order. What a change asks of the outside world
(money to send, timers, events) rides along in ``effects`` until the unit of work commits it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .catalog import RECEIVED_REASONS, Reason
from .errors import Conflict, DomainError, RuleViolation
from .ledger import Escrow, EscrowStatus, Ledger, MoneyEvent, PayRefund, Refund, RefundStatus, retry_delay
from .money import Money
from .policy import Policy
from .timefmt import fmt, parse, parse_opt
from .timers import REFUND_RETRY, REFUND_SETTLEMENT, SHIP_BY, START, STOP, TimerCommand, order_subject


@dataclass(frozen=True)
class Defect:
    """The order became a defect of its seller (a resolution at their fault, or refunded for never
    shipping): counted once per order, since the order's own versioned write records it."""


@dataclass(frozen=True)
class DefectReversed:
    """A defect counted for the order was corrected (its resolution's fault found to be another's,
    or its never-shipped refund reversed): subtracted once, by its marker."""


Effect = TimerCommand | PayRefund | MoneyEvent | Defect | DefectReversed
MAX_SHIP_BY = timedelta(days=365)  # a Standard Step Functions execution lives at most a year
MAX_SCANS = 100  # a shipment keeps its latest carrier scans, oldest first (the item stays small)
__all__ = ["ORDER_ROLES", "Eligibility", "Escrow", "EscrowStatus", "Order", "OrderCommand", "OrderItem", "OrderStatus",
           "PaymentRef", "ScanStatus", "Shipment"]


class OrderCommand(str, Enum):
    """What a person may ask of an order (``Order.allowed`` lists those possible now)."""

    SHIP = "SHIP"
    CONFIRM_RECEIPT = "CONFIRM_RECEIPT"
    OPEN_DISPUTE = "OPEN_DISPUTE"
    RETRY_REFUND = "RETRY_REFUND"


# Who gives each command: the order's seller or buyer, or a moderator.
ORDER_ROLES: dict[OrderCommand, str] = {
    OrderCommand.SHIP: "seller", OrderCommand.CONFIRM_RECEIPT: "buyer", OrderCommand.OPEN_DISPUTE: "buyer",
    OrderCommand.RETRY_REFUND: "moderator",
}


class ScanStatus(str, Enum):
    """Where a carrier saw the parcel."""

    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"


class OrderStatus(str, Enum):
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class OrderItem:
    """One line of an order, as checkout registered it."""

    item_id: str
    title: str
    quantity: int
    unit_price: Money

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "title": self.title, "quantity": self.quantity,
                "unit_price": self.unit_price.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> OrderItem:
        """``where``: the item's path in the request body (``items[0]``), named by a refusal."""
        return cls(str(d["item_id"]), str(d["title"]), int(d["quantity"]),
                   Money.from_dict(d["unit_price"], ".".join(filter(None, (where, "unit_price")))))


@dataclass(frozen=True)
class PaymentRef:
    """The charge refunds go back to: the provider's name and its reference (``pi_...``)."""

    provider: str
    reference: str

    def to_dict(self) -> dict[str, str]:
        return {"provider": self.provider, "reference": self.reference}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> PaymentRef | None:
        return None if not d else cls(str(d["provider"]), str(d["reference"]))


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str
    shipped_at: datetime
    last_scan_at: datetime | None = None
    # Where the parcel was seen: (status, occurred_at), oldest first; a repeated scan is kept once.
    scans: tuple[tuple[str, datetime], ...] = ()

    def with_scan(self, status: str, occurred_at: datetime) -> Shipment:
        last = self.last_scan_at
        scans = self.scans if (status, occurred_at) in self.scans else \
            tuple(sorted((*self.scans, (status, occurred_at)), key=lambda s: (s[1], s[0])))[-MAX_SCANS:]
        return replace(self, last_scan_at=occurred_at if last is None else max(last, occurred_at), scans=scans)

    @property
    def last_seen(self) -> datetime:
        """When the parcel was last seen: its latest scan, else when it was handed over."""
        return self.last_scan_at or self.shipped_at

    def to_dict(self) -> dict[str, Any]:
        return {"carrier": self.carrier, "tracking_number": self.tracking_number,
                "shipped_at": fmt(self.shipped_at), "last_scan_at": fmt(self.last_scan_at),
                "scans": [{"status": st, "occurred_at": fmt(at)} for st, at in self.scans]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Shipment | None:
        if not data:
            return None
        return cls(carrier=data["carrier"], tracking_number=data["tracking_number"],
                   shipped_at=parse(data["shipped_at"]), last_scan_at=parse_opt(data.get("last_scan_at")),
                   scans=tuple((x["status"], parse(x["occurred_at"])) for x in data.get("scans") or []))


@dataclass(frozen=True)
class Eligibility:
    can_open: bool
    reasons: tuple[Reason, ...]
    opens_at: datetime | None
    closes_at: datetime | None
    why_not: str | None
    refund_at: datetime | None = None  # never shipped: when its money comes back by itself (the ship-by date)

    def to_dict(self) -> dict[str, Any]:
        return {"can_open": self.can_open, "reasons": [r.value for r in self.reasons],
                "opens_at": fmt(self.opens_at), "closes_at": fmt(self.closes_at), "why_not": self.why_not,
                "refund_at": fmt(self.refund_at)}


@dataclass(frozen=True)
class Order:
    order_id: str
    buyer_id: str
    seller_id: str
    items: tuple[OrderItem, ...]
    total: Money
    estimated_delivery_at: datetime
    created_at: datetime
    ledger: Ledger
    ship_by: datetime
    status: OrderStatus = OrderStatus.PAID
    shipment: Shipment | None = None
    delivered_at: datetime | None = None
    open_dispute_id: str | None = None
    payment: PaymentRef | None = None  # the charge refunds go back to
    shipment_round: int = 1  # a RESEND asks for another shipment (and another ship-by timer)
    previous_shipments: tuple[Shipment, ...] = ()
    defect_counted: bool = False  # seller standing counts at most one defect per order
    defect_reversed: bool = False  # that defect was subtracted again (and is never counted anew)
    version: int | None = None
    effects: tuple[Effect, ...] = field(default=(), compare=False, repr=False)

    @property
    def escrow(self) -> Escrow:
        return self.ledger.escrow

    @property
    def refunds(self) -> tuple[Refund, ...]:
        return self.ledger.refunds

    # ---- registration ---------------------------------------------------------------------
    @classmethod
    def register(cls, *, order_id: str, buyer_id: str, seller_id: str, items: list[OrderItem],
                 total: Money, estimated_delivery_at: datetime, now: datetime, ship_by: datetime | None = None,
                 payment: PaymentRef | None = None, policy: Policy | None = None) -> Order:
        """Checkout registers a paid order; its whole total goes into escrow, and the seller's
        ship-by timer starts (an order not shipped by then is refunded)."""
        if buyer_id == seller_id:
            raise RuleViolation("buyer and seller must differ", code="INVALID_ORDER")
        if total.amount <= 0:
            raise RuleViolation("order total must be positive", code="INVALID_AMOUNT")
        ids = [i.item_id for i in items]
        if len(set(ids)) != len(ids):
            raise RuleViolation("item_id values must be unique", code="INVALID_ORDER")
        line_sum = 0
        for item in items:
            if item.unit_price.currency != total.currency:
                raise RuleViolation("item prices must be in the order's currency", code="INVALID_AMOUNT")
            line_sum += item.unit_price.amount * item.quantity
        if line_sum > total.amount:
            raise RuleViolation("items cost more than the order total", code="INVALID_AMOUNT",
                                details={"items_total": line_sum, "total": total.amount})
        policy = policy or Policy()
        deadline = ship_by or now + policy.ship_by
        if not now < deadline <= now + MAX_SHIP_BY:
            raise RuleViolation("ship_by must be in the future and within a year (a timer waits at most that long)",
                                code="INVALID_TIMESTAMP", details={"field": "ship_by"})
        order = cls(order_id=order_id, buyer_id=buyer_id, seller_id=seller_id, items=tuple(items),
                    total=total, estimated_delivery_at=estimated_delivery_at, created_at=now,
                    ledger=Ledger.hold(total, now), ship_by=deadline, payment=payment)
        return order._then(order._ship_by_timer(START))

    # ---- logistics ------------------------------------------------------------------------
    def ship_refusal(self) -> DomainError | None:
        """Why the seller cannot ship now, or None."""
        if self.status is OrderStatus.COMPLETED:
            return Conflict("the order is closed: its money has been paid out", code="ORDER_CLOSED")
        if self.status is not OrderStatus.PAID:
            return Conflict("the order has already been shipped", code="ALREADY_SHIPPED")
        return None

    def ship(self, carrier: str, tracking_number: str, now: datetime) -> Order:
        _raise(self.ship_refusal())
        shipped = replace(self, status=OrderStatus.SHIPPED,
                          shipment=Shipment(carrier=carrier, tracking_number=tracking_number, shipped_at=now))
        return shipped._then(self._ship_by_timer(STOP))

    def record_scan(self, status: ScanStatus, occurred_at: datetime, now: datetime, policy: Policy) -> Order:
        """A carrier scan. Scans can arrive late or twice; they never move the order backwards, and
        one from the future (beyond carriers' clock drift) is refused: a delivery dated ahead
        would move the buyer's dispute window."""
        if self.shipment is None:
            raise Conflict("the order has not been shipped", code="NOT_SHIPPED_YET")
        if occurred_at < self.shipment.shipped_at:
            raise RuleViolation("a scan cannot happen before the parcel was shipped", code="INVALID_TIMESTAMP",
                                details={"shipped_at": fmt(self.shipment.shipped_at)})
        if occurred_at > now + policy.scan_clock_skew:
            raise RuleViolation("a scan cannot happen in the future", code="INVALID_TIMESTAMP",
                                details={"latest": fmt(now + policy.scan_clock_skew)})
        order = replace(self, shipment=self.shipment.with_scan(ScanStatus(status).value, occurred_at))
        if status == ScanStatus.DELIVERED and self.status is OrderStatus.SHIPPED:
            order = replace(order, status=OrderStatus.DELIVERED, delivered_at=occurred_at)
        return order

    def refund_unshipped(self, now: datetime, policy: Policy) -> Order:
        """The ship-by date passed and nothing was shipped: the buyer gets everything back."""
        if self.status is not OrderStatus.PAID or self.shipment is not None:
            raise Conflict("the order has been shipped", code="ALREADY_SHIPPED")
        if now + policy.timer_tolerance < self.ship_by:
            raise Conflict("the ship-by date has not passed", code="NOT_DUE", details={"ship_by": fmt(self.ship_by)})
        if self.open_dispute_id:
            raise Conflict("a dispute is open on this order", code="DISPUTE_OPEN",
                           details={"dispute_id": self.open_dispute_id})
        order = replace(self, status=OrderStatus.COMPLETED)._defect()
        return order._request_refund(self.escrow.still_held, now, policy, "NOT_SHIPPED", None, None)

    def _defect(self) -> Order:
        return self if self.defect_counted else replace(self, defect_counted=True)._then(Defect())

    def reverse_defect(self) -> Order:
        """Subtract the defect counted for this order, once (the order's versioned write records
        it, so a retry finds it done); the order never counts a defect again afterwards."""
        if not self.defect_counted or self.defect_reversed:
            raise Conflict("this order has no counted defect to reverse", code="INVALID_STATE",
                           details={"defect_counted": self.defect_counted, "defect_reversed": self.defect_reversed})
        return replace(self, defect_reversed=True)._then(DefectReversed())

    # ---- escrow ---------------------------------------------------------------------------
    def release_at(self, policy: Policy) -> datetime | None:
        """Protection ends this long after shipment, and never before the buyer's dispute window
        has closed; then escrow goes to the seller by itself."""
        if self.shipment is None or self.escrow.still_held.amount == 0 or self.open_dispute_id:
            return None  # an open dispute holds the money until it ends
        return max(self.shipment.shipped_at + policy.protection, self._window(policy)[1])

    def confirm_receipt_refusal(self) -> DomainError | None:
        """Why the buyer cannot confirm receipt now, or None."""
        if self.open_dispute_id:
            return Conflict("a dispute is open on this order", code="DISPUTE_OPEN",
                            details={"dispute_id": self.open_dispute_id})
        if self.shipment is None:
            return Conflict("the order has not been shipped", code="NOT_SHIPPED_YET")
        if self.escrow.still_held.amount == 0:
            return Conflict("escrow has already been paid out", code="ESCROW_RELEASED")
        return None

    def confirm_receipt(self, now: datetime) -> Order:
        """The buyer says all is well: escrow goes to the seller at once."""
        _raise(self.confirm_receipt_refusal())
        delivered = self if self.delivered_at else replace(self, delivered_at=now)  # the buyer says it came
        return delivered._release_rest(now, "the buyer confirmed receipt")

    def auto_release(self, now: datetime, policy: Policy) -> Order:
        """Protection ran out with no dispute open: escrow goes to the seller."""
        due = self.release_at(policy)
        if due is None or now < due:
            raise Conflict("escrow is not due for release", code="NOT_DUE")
        return self._release_rest(now, "the protection period ended")

    def settle_dispute(self, dispute_id: str, outcome: str | None, refund: Money | None, refund_id: str | None,
                       now: datetime, policy: Policy, seller_fault: bool = False) -> Order:
        """A dispute ended. A refund is owed and the rest released; a RESEND keeps the money held
        and waits for the replacement; a cancelled dispute leaves the order protected. At the
        seller's fault, the order is their defect (once)."""
        if self.open_dispute_id != dispute_id:
            raise Conflict("this dispute is not the order's open dispute", code="INVALID_STATE")
        order = replace(self, open_dispute_id=None)
        if seller_fault:
            order = order._defect()
        if outcome == "RESEND":
            return order._await_replacement(now, policy)
        if outcome is None:
            if order.status is OrderStatus.PAID and order.shipment is None and now + policy.timer_tolerance >= order.ship_by:
                # Its ship-by timer fired while the dispute held the money: refund it now.
                return order.refund_unshipped(now, policy)
            return order
        if refund is not None and refund.amount > 0:
            order = order._request_refund(refund, now, policy, "DISPUTE", dispute_id, refund_id)
        return replace(order._release_rest(now, f"dispute {dispute_id} ended"), status=OrderStatus.COMPLETED)

    # ---- refunds (the payment provider's answers, the refund timers) -----------------------
    def refund_sending(self, refund_id: str, attempt: int, now: datetime) -> Order:
        return replace(self, ledger=self.ledger.refund_sending(refund_id, attempt, now))

    def refund_submitted(self, refund_id: str, attempt: int, provider_refund_id: str | None, now: datetime) -> Order:
        return replace(self, ledger=self.ledger.refund_submitted(refund_id, attempt, provider_refund_id, now))

    def flag_refund(self, refund_id: str, reason: str, now: datetime) -> Order:
        """A refund a machine cannot settle alone: moderators see it (and an alarm fires)."""
        ledger = self.ledger.flag(refund_id, reason, now)
        if ledger == self.ledger:
            return self
        order = replace(self, ledger=ledger)
        return order._then(self._money_event("refund.needs_attention", ledger.refund(refund_id)))

    def refund_settled(self, refund_id: str, attempt: int, provider_refund_id: str | None, now: datetime) -> Order:
        before = self.ledger.refund(refund_id)
        order = replace(self, ledger=self.ledger.refund_settled(refund_id, attempt, provider_refund_id, now))
        if order.ledger == self.ledger:
            return self
        after = order.ledger.refund(refund_id)
        effects: list[Effect] = [self._settlement_timer(before, STOP), self._money_event("refund.succeeded", after)]
        if after.needs_attention:
            effects.append(self._money_event("refund.needs_attention", after))
        return order._then(*effects)

    def refund_failed(self, refund_id: str, attempt: int, reason: str, now: datetime, policy: Policy) -> Order:
        before = self.ledger.refund(refund_id)
        order = replace(self, ledger=self.ledger.refund_failed(refund_id, attempt, reason, now,
                                                               policy.refund_max_attempts))
        if order.ledger == self.ledger:
            return self
        after = order.ledger.refund(refund_id)
        if before.status is RefundStatus.SUCCEEDED:
            return order  # a newer attempt, live when an older one paid, failed: the hold is lifted
        effects: list[Effect] = [self._settlement_timer(before, STOP), self._money_event("refund.failed", after)]
        if after.needs_attention:
            effects.append(self._money_event("refund.needs_attention", after))
        else:
            effects.append(TimerCommand(START, after.refund_id, REFUND_RETRY,
                                        due_at=now + retry_delay(policy.refund_retry, after.attempt),
                                        round=after.attempt, refs=self._refund_refs(after)))
        return order._then(*effects)

    def retry_refusal(self, refund_id: str) -> DomainError | None:
        """Why the refund cannot be tried again now, or None."""
        return self.ledger.retry_refusal(refund_id)

    def retry_refund(self, refund_id: str, now: datetime, policy: Policy) -> Order:
        """A failed refund's next attempt (by its backoff timer, or a moderator)."""
        ledger, refund = self.ledger.retry_refund(refund_id, now, now + policy.refund_settlement)
        return replace(self, ledger=ledger)._then(*self._pay(refund, now, policy),
                                                  self._money_event("refund.retried", refund))

    def refund_overdue(self, refund_id: str, round_: int, now: datetime, policy: Policy) -> Order:
        """A refund still pending at its settlement deadline: alarm, ask again with the same
        idempotency key (never a new payment), and give it another settlement period."""
        refund = self.ledger.refund(refund_id)
        if not refund.awaits_settlement(round_):
            raise Conflict("the refund is not waiting for this settlement deadline", code="INVALID_STATE",
                           details={"status": refund.status.value})
        ledger, late = self.ledger.settlement_overdue(refund_id, now, now + policy.refund_settlement)
        return replace(self, ledger=ledger)._then(self._money_event("refund.overdue", refund),
                                                  *self._pay(late, now, policy))

    # ---- disputes -------------------------------------------------------------------------
    def _window(self, policy: Policy) -> tuple[datetime, datetime, tuple[Reason, ...]]:
        """When the buyer may open a dispute (opens, closes) and for which reasons. Follows what
        really happened: a delivery, or a shipment (a late one moves the window with it)."""
        if self.delivered_at is not None:
            return self.delivered_at, self.delivered_at + policy.dispute_window, RECEIVED_REASONS
        opens = self.estimated_delivery_at
        expected = self.estimated_delivery_at
        if self.shipment is not None:
            # A tracking number never scanned this long after it was given means the
            # parcel was not sent; the buyer need not wait for the estimated date. And a parcel
            # shipped late cannot be expected before the carrier had a fair chance to deliver it.
            grace_end = self.shipment.shipped_at + policy.tracking_grace
            if self.shipment.last_scan_at is None:
                opens = min(opens, grace_end)
            expected = max(expected, grace_end)
        return opens, max(opens, expected) + policy.dispute_window, (Reason.NOT_RECEIVED,)

    def eligibility(self, now: datetime, policy: Policy) -> Eligibility:
        """Whether, when and for which reasons the buyer may open a dispute now."""
        if self.open_dispute_id:
            return Eligibility(False, (), None, None, "DISPUTE_OPEN")
        if self.escrow.still_held.amount == 0:
            return Eligibility(False, (), None, None, "ESCROW_RELEASED")
        opens, closes, reasons = self._window(policy)
        # Nothing shipped yet: the money comes back by itself at the ship-by date, whatever the window.
        refund_at = self.ship_by if self.shipment is None else None
        if self.shipment is None and self.shipment_round > 1:
            return Eligibility(False, (), None, None, "NOT_SHIPPED_YET", refund_at)  # a replacement is awaited
        if now < opens:
            why = "NOT_SHIPPED_YET" if self.shipment is None else "WINDOW_NOT_OPEN"
            return Eligibility(False, (), opens, closes, why, refund_at)
        if now > closes:
            # Never shipped, its window past (an early estimate, a late ship-by): the buyer has not
            # lost anything, the refund is still ahead; say so rather than "closed".
            why = "NOT_SHIPPED_YET" if self.shipment is None else "WINDOW_CLOSED"
            return Eligibility(False, (), opens, closes, why, refund_at)
        return Eligibility(True, reasons, opens, closes, None, refund_at)

    def open_refusal(self, reason: Reason | None, now: datetime, policy: Policy) -> DomainError | None:
        """The refusal openapi.yaml names, or None if ``reason`` (any allowed one, for None) may be
        opened now."""
        e = self.eligibility(now, policy)
        window = {"opens_at": fmt(e.opens_at), "closes_at": fmt(e.closes_at)}
        if e.why_not == "DISPUTE_OPEN":
            return Conflict("a dispute is already open on this order", code="DISPUTE_ALREADY_OPEN",
                            details={"dispute_id": self.open_dispute_id})
        if e.why_not == "ESCROW_RELEASED":
            return RuleViolation("the order's money has been paid out; protection has ended",
                                 code="DISPUTE_WINDOW_CLOSED", details={**window, "why_not": e.why_not})
        if e.why_not == "NOT_SHIPPED_YET" and e.closes_at is not None and now > e.closes_at:
            # The window did close (the contract's code), but nothing is lost: say why and when.
            return RuleViolation(f"the dispute window has closed, but the order was never shipped: its money comes "
                                 f"back to the buyer by itself on {fmt(e.refund_at)}, with no dispute needed",
                                 code="DISPUTE_WINDOW_CLOSED",
                                 details={**window, "why_not": e.why_not, "refund_at": fmt(e.refund_at)})
        if e.why_not in ("NOT_SHIPPED_YET", "WINDOW_NOT_OPEN"):
            return RuleViolation("the dispute window is not open yet", code="DISPUTE_WINDOW_NOT_OPEN",
                                 details={**window, "why_not": e.why_not})
        if e.why_not == "WINDOW_CLOSED":
            return RuleViolation("the dispute window has closed", code="DISPUTE_WINDOW_CLOSED", details=window)
        if reason is not None and reason not in e.reasons:
            return RuleViolation(f"{reason.value} cannot be opened for this order now", code="REASON_NOT_ALLOWED",
                                 details={"allowed_reasons": [r.value for r in e.reasons]})
        return None

    def check_can_open(self, reason: Reason, now: datetime, policy: Policy) -> None:
        """Raise the refusal openapi.yaml names, or return if ``reason`` may be opened now."""
        _raise(self.open_refusal(reason, now, policy))

    def allowed(self, now: datetime, policy: Policy) -> list[tuple[OrderCommand, str | None]]:
        """What may be asked of the order now (command, refund id for a retry): read from the
        same guards the actions raise from. Who may ask is ``ORDER_ROLES``."""
        out: list[tuple[OrderCommand, str | None]] = []
        if self.ship_refusal() is None:
            out.append((OrderCommand.SHIP, None))
        if self.confirm_receipt_refusal() is None:
            out.append((OrderCommand.CONFIRM_RECEIPT, None))
        if self.open_refusal(None, now, policy) is None:
            out.append((OrderCommand.OPEN_DISPUTE, None))
        out += [(OrderCommand.RETRY_REFUND, r.refund_id) for r in self.refunds if self.retry_refusal(r.refund_id) is None]
        return out

    def attach_dispute(self, dispute_id: str) -> Order:
        if self.open_dispute_id:
            raise Conflict("a dispute is already open on this order", code="DISPUTE_ALREADY_OPEN",
                           details={"dispute_id": self.open_dispute_id})
        return replace(self, open_dispute_id=dispute_id)

    def item_ids(self) -> set[str]:
        return {i.item_id for i in self.items}

    # ---- internals ------------------------------------------------------------------------
    def _then(self, *effects: Effect) -> Order:
        return replace(self, effects=(*self.effects, *effects))

    def _release_rest(self, now: datetime, why: str) -> Order:
        rest = self.escrow.still_held
        order = replace(self, ledger=self.ledger.release(rest, now, why), status=OrderStatus.COMPLETED)
        if rest.amount == 0:
            return order
        return order._then(MoneyEvent("escrow.released", {"order_id": self.order_id, "amount": rest.to_dict(),
                                                          "why": why}))

    def _request_refund(self, amount: Money, now: datetime, policy: Policy, cause: str, dispute_id: str | None,
                        refund_id: str | None) -> Order:
        ledger, refund = self.ledger.request_refund(amount, now, now + policy.refund_settlement, cause, dispute_id,
                                                    refund_id)
        return replace(self, ledger=ledger)._then(self._money_event("refund.requested", refund),
                                                  *self._pay(refund, now, policy))

    def _pay(self, refund: Refund, now: datetime, policy: Policy) -> tuple[Effect, ...]:
        """Send this attempt, and wait for it to settle (a timer per settlement round)."""
        return (PayRefund(self.order_id, refund.refund_id, refund.attempt),
                TimerCommand(START, refund.refund_id, REFUND_SETTLEMENT, due_at=refund.settle_by,
                             round=refund.settlement_round, refs=self._refund_refs(refund)))

    def _settlement_timer(self, refund: Refund, op: str) -> TimerCommand:
        return TimerCommand(op, refund.refund_id, REFUND_SETTLEMENT, round=refund.settlement_round,
                            refs=self._refund_refs(refund))

    def _refund_refs(self, refund: Refund) -> dict[str, str]:
        return {"order_id": self.order_id, "refund_id": refund.refund_id}

    def _money_event(self, detail_type: str, refund: Refund) -> MoneyEvent:
        return MoneyEvent(detail_type, {"order_id": self.order_id, "refund_id": refund.refund_id,
                                        "dispute_id": refund.dispute_id, "amount": refund.amount.to_dict(),
                                        "status": refund.status.value, "attempt": refund.attempt,
                                        "failure_reason": refund.failure_reason, "cause": refund.cause})

    def _ship_by_timer(self, op: str) -> TimerCommand:
        return TimerCommand(op, order_subject(self.order_id), SHIP_BY, due_at=self.ship_by, round=self.shipment_round,
                            refs={"order_id": self.order_id})

    def _await_replacement(self, now: datetime, policy: Policy) -> Order:
        """RESEND: the money stays held; the seller ships a replacement by a new ship-by date, and
        the buyer's window will follow the replacement."""
        previous = (*self.previous_shipments, self.shipment) if self.shipment else self.previous_shipments
        order = replace(self, status=OrderStatus.PAID, shipment=None, delivered_at=None, previous_shipments=previous,
                        ship_by=now + policy.ship_by, shipment_round=self.shipment_round + 1)
        return order._then(order._ship_by_timer(START))

    # ---- persistence shape ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored document (everything but the version)."""
        return {
            "order_id": self.order_id, "buyer_id": self.buyer_id, "seller_id": self.seller_id,
            "items": [i.to_dict() for i in self.items], "total": self.total.to_dict(),
            "estimated_delivery_at": fmt(self.estimated_delivery_at), "created_at": fmt(self.created_at),
            "ledger": self.ledger.to_dict(), "ship_by": fmt(self.ship_by), "status": self.status.value,
            "shipment": self.shipment.to_dict() if self.shipment else None,
            "delivered_at": fmt(self.delivered_at), "open_dispute_id": self.open_dispute_id,
            "payment": self.payment.to_dict() if self.payment else None, "shipment_round": self.shipment_round,
            "previous_shipments": [s.to_dict() for s in self.previous_shipments],
            "defect_counted": self.defect_counted, "defect_reversed": self.defect_reversed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], version: int | None) -> Order:
        total = Money.from_dict(d["total"])
        return cls(
            order_id=d["order_id"], buyer_id=d["buyer_id"], seller_id=d["seller_id"],
            items=tuple(OrderItem.from_dict(i) for i in d["items"]), total=total,
            estimated_delivery_at=parse(d["estimated_delivery_at"]), created_at=parse(d["created_at"]),
            ledger=Ledger.from_dict(d["ledger"], total.currency), ship_by=parse(d["ship_by"]),
            status=OrderStatus(d["status"]), shipment=Shipment.from_dict(d.get("shipment")),
            delivered_at=parse_opt(d.get("delivered_at")), open_dispute_id=d.get("open_dispute_id"),
            payment=PaymentRef.from_dict(d.get("payment")), shipment_round=int(d.get("shipment_round") or 1),
            previous_shipments=tuple(s for s in (Shipment.from_dict(x) for x in d.get("previous_shipments") or [])
                                     if s is not None),
            defect_counted=bool(d.get("defect_counted")), defect_reversed=bool(d.get("defect_reversed")),
            version=version,
        )


def _raise(refusal: DomainError | None) -> None:
    if refusal is not None:
        raise refusal
