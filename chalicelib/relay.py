"""Delivers outbox records: starts and stops timers, publishes events, then deletes the record.

Called right after a commit for low latency, and by the scheduled reconciler (``drain``) for
whatever a crash or an outage left behind. Every delivery is idempotent (timers have
deterministic names; events carry their ``event_id``), so delivering twice is harmless.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from .domain.timers import TimerCommand
from .logs import logger
from .ports import EventPublisher, OutboxRecord, OutboxStore, Timers


class OutboxRelay:
    def __init__(self, outbox: OutboxStore, timers: Timers, publisher: EventPublisher) -> None:
        self.outbox = outbox
        # Set once the use cases exist (they need the relay too): sends one refund attempt.
        self.pay: Callable[[str, str, int], object] | None = None
        self.timers = timers
        self.publisher = publisher

    def _send(self, record: OutboxRecord) -> None:
        if record.kind == "TIMER":
            command = TimerCommand.from_dict(record.payload)
            (self.timers.start if command.op == "START" else self.timers.stop)(command)
        elif record.kind == "REFUND":
            assert self.pay is not None, "the payments use cases are wired before any refund is owed"
            p = record.payload
            self.pay(p["order_id"], p["refund_id"], int(p["attempt"]))  # raises while the provider is unreachable
        else:
            self.publisher.publish(record.payload["detail_type"], record.payload["detail"])

    def try_deliver(self, records: Iterable[OutboxRecord], requeue_at: datetime | None = None) -> int:
        """Deliver what can be delivered now; failures stay in the outbox for ``drain`` (moved to
        the back of it with ``requeue_at``, so a record that keeps failing never blocks others)."""
        failed, delivered = 0, []
        for record in records:
            try:
                self._send(record)
                delivered.append(record.outbox_id)
            except Exception:  # noqa: BLE001 - the committed change stands; the reconciler retries
                failed += 1
                logger.exception("outbox delivery failed; left for the reconciler", outbox_id=record.outbox_id,
                                 kind=record.kind, created_at=record.created_at.isoformat())
                if requeue_at is not None:
                    self.outbox.requeue(record, requeue_at)
        if delivered:
            try:
                self.outbox.delete(delivered)
            except Exception:  # noqa: BLE001 - delivered twice later is harmless (see above)
                logger.exception("delivered outbox records not deleted; the reconciler delivers them again",
                                 outbox_ids=delivered)
        return failed

    def drain(self, now: datetime, grace: timedelta = timedelta(seconds=30), limit: int = 200) -> tuple[int, int]:
        """Deliver records older than ``grace`` (younger ones are still being delivered by their
        request). Returns (delivered, failed)."""
        records = self.outbox.pending(now - grace, limit)
        failed = self.try_deliver(records, requeue_at=now)
        return len(records) - failed, failed
