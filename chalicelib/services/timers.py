"""Use cases the timers drive: a deadline reminds or expires, and the outbox reconciler."""
from __future__ import annotations

from typing import Any

from ..domain.errors import ConcurrentModification, Conflict
from ..domain.policy import Policy
from ..domain.timers import REFUND_RETRY, REFUND_SETTLEMENT, SHIP_BY
from ..metrics import count
from ..ports import Clock, EventPublisher
from ..relay import OutboxRelay
from .base import Fired, UnitOfWorkFactory, UseCases, retry_on_conflict
from .disputes import save_with_order
from .orders import Orders
from .payments import Payments


class Timers(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, relay: OutboxRelay,
                 publisher: EventPublisher, orders: Orders, payments: Payments) -> None:
        super().__init__(uow, clock, policy)
        self.relay = relay
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
        """The reconciler: deliver what a crash or an outage left in the outbox."""
        return self.relay.drain(self.clock.now())
