"""Use cases the timers drive: a deadline reminds or expires, and the outbox reconciler."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..domain.errors import ConcurrentModification, Conflict
from ..domain.policy import Policy
from ..domain.timers import REFUND_RETRY, REFUND_SETTLEMENT, SHIP_BY
from ..logs import logger
from ..metrics import count
from ..ports import Clock, EventPublisher, OutboxKind
from ..relay import OutboxRelay
from .base import Fired, UnitOfWorkFactory, UseCases, retry_on_conflict
from .disputes import save_with_order
from .moderation import Moderation
from .orders import Orders
from .payments import Payments


class Timers(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, relay: OutboxRelay,
                 publisher: EventPublisher, orders: Orders, payments: Payments, moderation: Moderation) -> None:
        super().__init__(uow, clock, policy)
        self.relay = relay
        self.moderation = moderation
        self.publisher = publisher
        self.orders = orders
        self.payments = payments

    def fired(self, kind: str, timer: dict[str, Any]) -> Fired:
        """A timer reports in (the message statemachines/deadline_timer.asl.json sends). Returns
        what it did: expired, reminded, refunded, overdue, retried, or stale (its subject moved on
        first: a party won the race, or the timer was not stopped)."""
        action, round_ = timer["action"], int(timer.get("round") or 0)
        if action == SHIP_BY:
            return self.orders.ship_by_passed(timer["order_id"], round_)
        if action in (REFUND_SETTLEMENT, REFUND_RETRY):
            return self.payments.timer(action, timer["order_id"], timer["refund_id"], round_)
        return self._dispute(kind, timer["dispute_id"], action)

    def _dispute(self, kind: str, dispute_id: str, action: str) -> Fired:
        if kind == "REMIND":
            return self._remind(dispute_id, action)
        def attempt() -> Fired:
            with self.uow() as uow:
                dispute = uow.disputes.get(dispute_id)
                if dispute is None:
                    return Fired.STALE
                was_open, was_overdue = dispute.is_open, dispute.mediation_overdue
                dispute.expire(action, self.clock.now(), self.policy)
                save_with_order(uow, dispute, was_open, self.policy)
                uow.commit()
            if dispute.mediation_overdue and not was_overdue:
                count("MediationOverdue")  # alarmed on (infra/template/operations.py)
            return Fired.EXPIRED

        try:  # a party acting in the same instant: re-read, the domain decides again
            return retry_on_conflict(attempt, "the dispute kept changing under its timer")
        except ConcurrentModification:
            raise
        except Conflict as exc:
            if exc.code == "NOT_DUE":
                raise  # woke too early by our clock: let the queue redeliver it
            return Fired.STALE

    def _remind(self, dispute_id: str, action: str) -> Fired:
        with self.uow() as uow:
            dispute = uow.disputes.get(dispute_id)
            pending = [d for d in dispute.deadlines(self.policy, self.clock.now()) if d["action"] == action] if dispute else []
            if dispute is None or not pending:
                return Fired.STALE
            # Deterministic id: a redelivered timer message publishes a duplicate subscribers can drop.
            detail = {**uow.side_event(dispute, "system", pending[0]), "event_id": f"{dispute_id}:{action}:reminder"}
        self.publisher.publish("dispute.deadline_approaching", detail)
        return Fired.REMINDED

    def drain_outbox(self) -> tuple[int, int]:
        """The reconciler: deliver what a crash or an outage left in the outbox, then evaluate
        the standing of the sellers whose facts changed (a level change is published once:
        ``Moderation.current_standing``). Returns the records delivered and failed (the standing
        checks are logged apart)."""
        now = self.clock.now()
        delivered, failed = self.relay.drain(now)
        checked, unchecked = self.check_standing(now)
        if checked or unchecked:
            logger.info("standing evaluated", records=checked, failed=unchecked)
        return delivered, failed

    def check_standing(self, now: datetime, grace: timedelta = timedelta(seconds=30),
                       limit: int = 200) -> tuple[int, int]:
        """Each seller named by the STANDING records older than ``grace`` evaluated once; its
        records deleted once it was (a failure leaves them for the next pass)."""
        outbox = self.relay.outbox
        due: dict[str, list[str]] = {}
        for record in outbox.pending(now - grace, limit):
            if record.kind is OutboxKind.STANDING:
                due.setdefault(str(record.payload["seller_id"]), []).append(record.outbox_id)
        done: list[str] = []
        failed = 0
        for seller_id, ids in due.items():
            try:
                self.moderation.current_standing(seller_id)
                done += ids
            except Exception:  # noqa: BLE001 - evaluated again at the next pass
                failed += len(ids)
                logger.exception("standing not evaluated; left for the next pass", seller_id=seller_id)
        if done:
            outbox.delete(done)
        return len(done), failed
