"""Use cases of the order aggregate: registration, logistics, and its escrow."""
from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from ..domain.errors import ConcurrentModification, Conflict, InvalidInput, NotFound
from ..domain.identity import REGISTER_ORDERS, REPORT_SCANS, Identity
from ..domain.orders import Order, OrderCommand
from ..ports import OrderExists, Page
from . import access
from .base import Fired, UseCases
from .commands import ConfirmReceipt, PageRequest, RecordScan, RegisterOrder, ShipOrder

TIMESTAMP_RANGE = timedelta(days=3650)  # client timestamps further than this from now are typos


def within_range(value: datetime, field: str, now: datetime) -> datetime:
    """Beyond ten years from now a client timestamp is a typo, and would overflow the deadlines
    computed from it."""
    if abs(value - now) > TIMESTAMP_RANGE:
        raise InvalidInput(f"{field} is not within ten years of now", code="VALIDATION_ERROR", details={"field": field})
    return value


class Orders(UseCases):
    def register(self, who: Identity, cmd: RegisterOrder) -> tuple[Order, bool]:
        """Checkout registers a paid order. Replaying the same body returns the stored order."""
        access.require_scope(who, REGISTER_ORDERS, "only the checkout service registers orders")
        now = self.clock.now()
        order = Order.register(
            order_id=cmd.order_id, buyer_id=cmd.buyer_id, seller_id=cmd.seller_id, items=list(cmd.items),
            total=cmd.total, estimated_delivery_at=within_range(cmd.estimated_delivery_at, "estimated_delivery_at", now),
            now=now, ship_by=within_range(cmd.ship_by, "ship_by", now) if cmd.ship_by else None,
            payment=cmd.payment, policy=self.policy)
        try:
            with self.uow() as uow:
                stored = uow.orders.add(order, cmd.fingerprint)
                uow.commit()
                return stored, True
        except OrderExists as exc:
            with self.uow() as uow:
                if uow.orders.fingerprint(order.order_id) != cmd.fingerprint:
                    raise Conflict("an order with this order_id exists with other details", code="ORDER_EXISTS") from exc
                existing = uow.orders.get(order.order_id)
                assert existing is not None
                return existing, False

    def get(self, who: Identity, order_id: str) -> Order:
        with self.uow() as uow:
            return access.visible_order(who, uow.orders.get(order_id))

    def list(self, who: Identity, role: str, page: PageRequest) -> Page[Order]:
        if who.party_id is None:
            return [], None  # a service is nobody's buyer or seller: it has no orders of its own
        with self.uow() as uow:
            return uow.orders.list_for(role, who.party_id, page.limit, page.cursor)

    def ship(self, who: Identity, cmd: ShipOrder) -> Order:
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(cmd.order_id))
            access.require_order_role(who, order, OrderCommand.SHIP, "only the seller ships the order")
            saved = uow.orders.save(order.ship(cmd.carrier, cmd.tracking_number, self.clock.now()))
            uow.commit()
            return saved

    def record_scan(self, who: Identity, cmd: RecordScan) -> Order:
        with self.uow() as uow:
            order = uow.orders.get(cmd.order_id)
            if not who.may(REPORT_SCANS):
                access.visible_order(who, order)  # 404 for strangers, then 403 for parties
                access.require(False, "only the carrier-tracking service reports scans")
            if order is None:
                raise NotFound("no such order", code="ORDER_NOT_FOUND")
            occurred = within_range(cmd.occurred_at, "occurred_at", self.clock.now())
            saved = uow.orders.save(order.record_scan(cmd.status, occurred, self.clock.now(), self.policy))
            uow.commit()
            return saved

    def confirm_receipt(self, who: Identity, cmd: ConfirmReceipt) -> Order:
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(cmd.order_id))
            access.require_order_role(who, order, OrderCommand.CONFIRM_RECEIPT, "only the buyer confirms receipt")
            saved = uow.orders.save(order.confirm_receipt(self.clock.now()))
            uow.commit()
            return saved

    def ship_by_passed(self, order_id: str, round_: int) -> Fired:
        """The ship-by timer: nothing shipped by the ship-by date, so the buyer is refunded."""
        try:
            with self.uow() as uow:
                order = uow.orders.get(order_id)
                if order is None or order.shipment_round != round_:
                    return Fired.STALE
                uow.orders.save(order.refund_unshipped(self.clock.now(), self.policy))
                uow.commit()
                return Fired.REFUNDED
        except ConcurrentModification:
            raise  # the order moved (shipped?) at this instant: redelivered, it decides again
        except Conflict as exc:
            if exc.code == "NOT_DUE":
                raise  # woke too early by our clock: let the queue redeliver it
            return Fired.STALE  # shipped, or a dispute holds the money

    def release_due_escrow(self, limit: int = 100) -> builtins.list[str]:
        """The scheduled sweep: protection ended and no dispute is open, so the seller is paid."""
        now = self.clock.now()
        released: builtins.list[str] = []
        cursor: str | None = None
        while True:  # page by page, each read once (a released order leaves the index)
            with self.uow() as uow:
                batch, cursor = uow.orders.due_for_release(now, limit, cursor)
            for order in batch:
                try:
                    with self.uow() as uow:
                        uow.orders.save(order.auto_release(now, self.policy))
                        uow.commit()
                    released.append(order.order_id)
                except (Conflict, ConcurrentModification):
                    pass  # a dispute opened or the order moved meanwhile; the next sweep re-reads it
            if cursor is None:
                return released
