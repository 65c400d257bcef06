"""Use cases the timers drive: a deadline reminds or expires, and the outbox reconciler."""
from __future__ import annotations

from ..domain.errors import ConcurrentModification, Conflict
from ..domain.policy import Policy
from ..ports import Clock, EventPublisher
from ..relay import OutboxRelay
from .base import UnitOfWorkFactory, UseCases
from .disputes import save_with_order


class Timers(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, relay: OutboxRelay,
                 publisher: EventPublisher) -> None:
        super().__init__(uow, clock, policy)
        self.relay = relay
        self.publisher = publisher

    def fired(self, kind: str, dispute_id: str, action: str) -> str:
        """A deadline timer reports in. Returns what it did: expired, reminded, or stale (the
        dispute left that phase first: a party won the race, or the timer was not stopped)."""
        if kind == "REMIND":
            return self._remind(dispute_id, action)
        for _ in range(3):
            try:
                with self.uow() as uow:
                    dispute = uow.disputes.get(dispute_id)
                    if dispute is None:
                        return "stale"
                    was_open = dispute.is_open
                    dispute.expire(action, self.clock.now(), self.policy)
                    save_with_order(uow, dispute, was_open)
                    uow.commit()
                return "expired"
            except ConcurrentModification:
                continue  # a party acted in the same instant: re-read, the domain decides again
            except Conflict as exc:
                if exc.code == "NOT_DUE":
                    raise  # woke too early by our clock: let the queue redeliver it
                return "stale"
        raise ConcurrentModification("the dispute kept changing under its timer")

    def _remind(self, dispute_id: str, action: str) -> str:
        with self.uow() as uow:
            dispute = uow.disputes.get(dispute_id)
            pending = [d for d in dispute.deadlines(self.policy) if d["action"] == action] if dispute else []
            if dispute is None or not pending:
                return "stale"
            # Deterministic id: a redelivered timer message publishes a duplicate subscribers can drop.
            detail = {**uow.side_event(dispute, "system", pending[0]), "event_id": f"{dispute_id}:{action}:reminder"}
        self.publisher.publish("dispute.deadline_approaching", detail)
        return "reminded"

    def drain_outbox(self) -> tuple[int, int]:
        """The reconciler: deliver what a crash or an outage left in the outbox."""
        return self.relay.drain(self.clock.now())
