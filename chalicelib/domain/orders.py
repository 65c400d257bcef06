"""Orders, their escrow ledger, and when a dispute may be opened."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from .catalog import RECEIVED_REASONS, Reason
from .errors import Conflict, RuleViolation
from .money import Money
from .policy import Policy
from .timefmt import fmt, parse, parse_opt


class OrderStatus(str, Enum):
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"


class EscrowStatus(str, Enum):
    HELD = "HELD"
    RELEASED = "RELEASED"  # all of it went to the seller
    REFUNDED = "REFUNDED"  # all of it went back to the buyer
    SETTLED = "SETTLED"  # split between the two


@dataclass(frozen=True)
class Escrow:
    """The order's money. Invariant: held == refunded + released + still_held."""

    held: Money
    refunded: Money
    released: Money

    @classmethod
    def hold(cls, total: Money) -> Escrow:
        zero = Money.zero(total.currency)
        return cls(held=total, refunded=zero, released=zero)

    @property
    def still_held(self) -> Money:
        return self.held - self.refunded - self.released

    @property
    def status(self) -> EscrowStatus:
        if self.still_held.amount > 0:
            return EscrowStatus.HELD
        if self.refunded.amount == 0:
            return EscrowStatus.RELEASED
        if self.released.amount == 0:
            return EscrowStatus.REFUNDED
        return EscrowStatus.SETTLED

    def settle(self, refund: Money) -> Escrow:
        """Refund ``refund`` to the buyer and release everything else still held to the seller."""
        remaining = self.still_held
        if refund.amount < 0 or refund.amount > remaining.amount:
            raise RuleViolation("refund exceeds what escrow still holds", code="INVALID_AMOUNT",
                                details={"still_held": remaining.to_dict()})
        return Escrow(held=self.held, refunded=self.refunded + refund,
                      released=self.released + (remaining - refund))

    def to_dict(self) -> dict[str, Any]:
        return {"held": self.held.to_dict(), "refunded": self.refunded.to_dict(),
                "released": self.released.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Escrow:
        return cls(held=Money.from_dict(data["held"]), refunded=Money.from_dict(data["refunded"]),
                   released=Money.from_dict(data["released"]))


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str
    shipped_at: datetime
    last_scan_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"carrier": self.carrier, "tracking_number": self.tracking_number,
                "shipped_at": fmt(self.shipped_at), "last_scan_at": fmt(self.last_scan_at)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Shipment | None:
        if not data:
            return None
        return cls(carrier=data["carrier"], tracking_number=data["tracking_number"],
                   shipped_at=parse(data["shipped_at"]), last_scan_at=parse_opt(data.get("last_scan_at")))


@dataclass(frozen=True)
class Eligibility:
    can_open: bool
    reasons: tuple[Reason, ...]
    opens_at: datetime | None
    closes_at: datetime | None
    why_not: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"can_open": self.can_open, "reasons": [r.value for r in self.reasons],
                "opens_at": fmt(self.opens_at), "closes_at": fmt(self.closes_at), "why_not": self.why_not}


@dataclass(frozen=True)
class Order:
    order_id: str
    buyer_id: str
    seller_id: str
    items: tuple[dict[str, Any], ...]
    total: Money
    estimated_delivery_at: datetime
    created_at: datetime
    escrow: Escrow
    status: OrderStatus = OrderStatus.PAID
    shipment: Shipment | None = None
    delivered_at: datetime | None = None
    open_dispute_id: str | None = None
    version: int | None = None

    # ---- registration ---------------------------------------------------------------------
    @classmethod
    def register(cls, *, order_id: str, buyer_id: str, seller_id: str, items: list[dict[str, Any]],
                 total: Money, estimated_delivery_at: datetime, now: datetime) -> Order:
        """Checkout registers a paid order; its whole total goes into escrow."""
        if buyer_id == seller_id:
            raise RuleViolation("buyer and seller must differ", code="INVALID_ORDER")
        if total.amount <= 0:
            raise RuleViolation("order total must be positive", code="INVALID_AMOUNT")
        ids = [i["item_id"] for i in items]
        if len(set(ids)) != len(ids):
            raise RuleViolation("item_id values must be unique", code="INVALID_ORDER")
        line_sum = 0
        for item in items:
            price = Money.from_dict(item["unit_price"])
            if price.currency != total.currency:
                raise RuleViolation("item prices must be in the order's currency", code="INVALID_AMOUNT")
            line_sum += price.amount * int(item["quantity"])
        if line_sum > total.amount:
            raise RuleViolation("items cost more than the order total", code="INVALID_AMOUNT",
                                details={"items_total": line_sum, "total": total.amount})
        return cls(order_id=order_id, buyer_id=buyer_id, seller_id=seller_id, items=tuple(items),
                   total=total, estimated_delivery_at=estimated_delivery_at, created_at=now,
                   escrow=Escrow.hold(total))

    # ---- logistics ------------------------------------------------------------------------
    def ship(self, carrier: str, tracking_number: str, now: datetime) -> Order:
        if self.status is not OrderStatus.PAID:
            raise Conflict("the order has already been shipped", code="ALREADY_SHIPPED")
        return replace(self, status=OrderStatus.SHIPPED,
                       shipment=Shipment(carrier=carrier, tracking_number=tracking_number, shipped_at=now))

    def record_scan(self, status: str, occurred_at: datetime) -> Order:
        """A carrier scan. Scans can arrive late or twice; they never move the order backwards."""
        if self.shipment is None:
            raise Conflict("the order has not been shipped", code="NOT_SHIPPED_YET")
        if occurred_at < self.shipment.shipped_at:
            raise RuleViolation("a scan cannot happen before the parcel was shipped", code="INVALID_TIMESTAMP",
                                details={"shipped_at": fmt(self.shipment.shipped_at)})
        last = self.shipment.last_scan_at
        shipment = replace(self.shipment, last_scan_at=occurred_at if last is None else max(last, occurred_at))
        order = replace(self, shipment=shipment)
        if status == "DELIVERED" and self.status is OrderStatus.SHIPPED:
            order = replace(order, status=OrderStatus.DELIVERED, delivered_at=occurred_at)
        return order

    # ---- escrow ---------------------------------------------------------------------------
    def release_at(self, policy: Policy) -> datetime | None:
        """Protection ends this long after shipment; then escrow goes to the seller by itself."""
        if self.shipment is None or self.escrow.status is not EscrowStatus.HELD or self.open_dispute_id:
            return None  # an open dispute holds the money until it ends
        return self.shipment.shipped_at + policy.protection

    def confirm_receipt(self, now: datetime) -> Order:
        """The buyer says all is well: escrow goes to the seller at once."""
        if self.open_dispute_id:
            raise Conflict("a dispute is open on this order", code="DISPUTE_OPEN",
                           details={"dispute_id": self.open_dispute_id})
        if self.shipment is None:
            raise Conflict("the order has not been shipped", code="NOT_SHIPPED_YET")
        if self.escrow.status is not EscrowStatus.HELD:
            raise Conflict("escrow has already been paid out", code="ESCROW_RELEASED")
        delivered = self if self.delivered_at else replace(self, delivered_at=now)  # the buyer says it came
        return delivered._settle(Money.zero(self.total.currency))

    def auto_release(self, now: datetime, policy: Policy) -> Order:
        """Protection ran out with no dispute open: escrow goes to the seller."""
        due = self.release_at(policy)
        if due is None or now < due:
            raise Conflict("escrow is not due for release", code="NOT_DUE")
        return self._settle(Money.zero(self.total.currency))

    def settle_dispute(self, dispute_id: str, refund: Money | None) -> Order:
        """A dispute ended. With a refund the escrow is split; without, the order stays protected."""
        if self.open_dispute_id != dispute_id:
            raise Conflict("this dispute is not the order's open dispute", code="INVALID_STATE")
        order = replace(self, open_dispute_id=None)
        return order if refund is None else order._settle(refund)

    def _settle(self, refund: Money) -> Order:
        return replace(self, escrow=self.escrow.settle(refund), status=OrderStatus.COMPLETED)

    # ---- disputes -------------------------------------------------------------------------
    def eligibility(self, now: datetime, policy: Policy) -> Eligibility:
        """Whether, when and for which reasons the buyer may open a dispute now."""
        if self.open_dispute_id:
            return Eligibility(False, (), None, None, "DISPUTE_OPEN")
        if self.escrow.status is not EscrowStatus.HELD:
            return Eligibility(False, (), None, None, "ESCROW_RELEASED")
        if self.delivered_at is not None:
            reasons: tuple[Reason, ...] = RECEIVED_REASONS
            opens, closes = self.delivered_at, self.delivered_at + policy.dispute_window
        else:
            opens = self.estimated_delivery_at
            if self.shipment is not None and self.shipment.last_scan_at is None:
                # Seed 002: a tracking number never scanned this long after it was given means
                # the parcel was not sent; the buyer need not wait for the estimated date.
                opens = min(opens, self.shipment.shipped_at + policy.tracking_grace)
            closes = max(opens, self.estimated_delivery_at) + policy.dispute_window
            reasons = (Reason.NOT_RECEIVED,)
        if now < opens:
            why = "NOT_SHIPPED_YET" if self.shipment is None else "WINDOW_NOT_OPEN"
            return Eligibility(False, (), opens, closes, why)
        if now > closes:
            return Eligibility(False, (), opens, closes, "WINDOW_CLOSED")
        return Eligibility(True, reasons, opens, closes, None)

    def check_can_open(self, reason: Reason, now: datetime, policy: Policy) -> None:
        """Raise the refusal API.md names, or return if ``reason`` may be opened now."""
        e = self.eligibility(now, policy)
        window = {"opens_at": fmt(e.opens_at), "closes_at": fmt(e.closes_at)}
        if e.why_not == "DISPUTE_OPEN":
            raise Conflict("a dispute is already open on this order", code="DISPUTE_ALREADY_OPEN",
                           details={"dispute_id": self.open_dispute_id})
        if e.why_not == "ESCROW_RELEASED":
            raise RuleViolation("the order's money has been paid out; protection has ended",
                                code="DISPUTE_WINDOW_CLOSED", details={**window, "why_not": e.why_not})
        if e.why_not in ("NOT_SHIPPED_YET", "WINDOW_NOT_OPEN"):
            raise RuleViolation("the dispute window is not open yet", code="DISPUTE_WINDOW_NOT_OPEN",
                                details={**window, "why_not": e.why_not})
        if e.why_not == "WINDOW_CLOSED":
            raise RuleViolation("the dispute window has closed", code="DISPUTE_WINDOW_CLOSED", details=window)
        if reason not in e.reasons:
            raise RuleViolation(f"{reason.value} cannot be opened for this order now", code="REASON_NOT_ALLOWED",
                                details={"allowed_reasons": [r.value for r in e.reasons]})

    def attach_dispute(self, dispute_id: str) -> Order:
        if self.open_dispute_id:
            raise Conflict("a dispute is already open on this order", code="DISPUTE_ALREADY_OPEN",
                           details={"dispute_id": self.open_dispute_id})
        return replace(self, open_dispute_id=dispute_id)

    def item_ids(self) -> set[str]:
        return {i["item_id"] for i in self.items}

    # ---- persistence shape ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored document (everything but the version)."""
        return {
            "order_id": self.order_id, "buyer_id": self.buyer_id, "seller_id": self.seller_id,
            "items": [dict(i) for i in self.items], "total": self.total.to_dict(),
            "estimated_delivery_at": fmt(self.estimated_delivery_at), "created_at": fmt(self.created_at),
            "escrow": self.escrow.to_dict(), "status": self.status.value,
            "shipment": self.shipment.to_dict() if self.shipment else None,
            "delivered_at": fmt(self.delivered_at), "open_dispute_id": self.open_dispute_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], version: int | None) -> Order:
        return cls(
            order_id=d["order_id"], buyer_id=d["buyer_id"], seller_id=d["seller_id"],
            items=tuple(d["items"]), total=Money.from_dict(d["total"]),
            estimated_delivery_at=parse(d["estimated_delivery_at"]), created_at=parse(d["created_at"]),
            escrow=Escrow.from_dict(d["escrow"]), status=OrderStatus(d["status"]),
            shipment=Shipment.from_dict(d.get("shipment")), delivered_at=parse_opt(d.get("delivered_at")),
            open_dispute_id=d.get("open_dispute_id"), version=version,
        )
