"""Delivers outbox records: starts and stops timers, publishes events, hands refunds to the
refund queue; and the refund worker that sends them.

Called right after a commit for low latency, and by the scheduled reconciler (``drain``) for
whatever a crash or an outage left behind. Every delivery is idempotent (timers have
deterministic names; events carry their ``event_id``; a refund attempt its idempotency key), so
delivering twice is harmless.

A refund is never sent inside the request that owes it: the commit's REFUND record is handed to
the refund queue (one SQS request) and stays in the outbox until the worker has sent it (or
learned that it need not be). The worker (``RefundWorker``, the pay-refunds function) sends it
and deletes the record; while the provider cannot be reached the record stays, and the
reconciler hands it to the queue again.

A REFUND record's ``created_at`` is the time it was last handed to the queue (or last tried by
the worker): the reconciler hands it over again only once ``REFUND_LEASE`` has passed since, so a
message still waiting in the queue or being worked on is not copied every run.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from .domain.timers import TimerCommand
from .logs import logger
from .metrics import REFUNDS_UNSENT, count
from .ports import Clock, EventPublisher, OutboxKind, OutboxRecord, OutboxStore, RefundQueue, Timers

REFUND = OutboxKind.REFUND
CANCEL = "cancel"  # a refund message's ``op``: cancel a newer attempt (else: send the attempt)
# How long a REFUND record handed to the refund queue (or left by the worker) is the queue's: the
# reconciler does not hand it over again before. Longer than the refund queue's visibility
# timeout (infra/template/messaging.py, 180 s; tests/deploy check it), so a message being worked
# on has either been done or come back to the queue by then.
REFUND_LEASE = timedelta(minutes=5)


def refund_message(record: OutboxRecord) -> dict[str, Any]:
    """What the refund queue carries: the attempt to send, and the outbox record that owes it."""
    return {**record.payload, "outbox_id": record.outbox_id}


def cancel_message(order_id: str, refund_id: str, attempt: int) -> dict[str, Any]:
    """What the refund queue carries to have the worker cancel a refund's newer ``attempt`` (a
    webhook learned that an older one paid): no outbox record, the ledger says if it is owed."""
    return {"op": CANCEL, "order_id": order_id, "refund_id": refund_id, "attempt": attempt}


class OutboxRelay:
    def __init__(self, outbox: OutboxStore, timers: Timers, publisher: EventPublisher, refunds: RefundQueue) -> None:
        self.outbox = outbox
        self.timers = timers
        self.publisher = publisher
        self.refunds = refunds

    def _send(self, record: OutboxRecord) -> None:
        if record.kind is OutboxKind.TIMER:
            command = TimerCommand.from_dict(record.payload)
            (self.timers.start if command.op == "START" else self.timers.stop)(command)
        else:
            self.publisher.publish(record.payload["detail_type"], record.payload["detail"])

    def try_deliver(self, records: Iterable[OutboxRecord], requeue_at: datetime | None = None) -> int:
        """Deliver what can be delivered now; failures stay in the outbox for ``drain`` (moved to
        the back of it with ``requeue_at``, so a record that keeps failing never blocks others).
        Refunds are handed to the refund queue in one request and stay in the outbox until the
        worker has sent them (the reconciler moves those it handed over to the back too)."""
        failed, delivered, refunds = 0, [], []
        for record in records:
            if record.kind is OutboxKind.STANDING:
                continue  # evaluated by the reconciler's standing check (services/timers.py), not here
            if record.kind == REFUND:
                refunds.append(record)
                continue
            try:
                self._send(record)
                delivered.append(record.outbox_id)
            except Exception:  # noqa: BLE001 - the committed change stands; the reconciler retries
                failed += 1
                logger.exception("outbox delivery failed; left for the reconciler", outbox_id=record.outbox_id,
                                 kind=record.kind, created_at=record.created_at.isoformat())
                if requeue_at is not None:
                    self.outbox.requeue(record, requeue_at)
        if refunds:
            try:
                self.refunds.enqueue([refund_message(r) for r in refunds])
            except Exception:  # noqa: BLE001 - the refund stays owed in the outbox; the reconciler hands it over
                failed += len(refunds)
                logger.exception("refunds not handed to the refund queue; left for the reconciler",
                                 outbox_ids=[r.outbox_id for r in refunds])
            if requeue_at is not None:  # handed over (or not): not again before the next grace
                for record in refunds:
                    self.outbox.requeue(record, requeue_at)
        if delivered:
            try:
                self.outbox.delete(delivered)
            except Exception:  # noqa: BLE001 - delivered twice later is harmless (see above)
                logger.exception("delivered outbox records not deleted; the reconciler delivers them again",
                                 outbox_ids=delivered)
        return failed

    def drain(self, now: datetime, grace: timedelta = timedelta(seconds=30), limit: int = 200,
              refund_lease: timedelta = REFUND_LEASE) -> tuple[int, int]:
        """Deliver records older than ``grace`` (younger ones are still being delivered by their
        request), and refunds last handed over (or tried) longer than ``refund_lease`` ago (younger
        ones are the queue's or the worker's). Returns (delivered, failed)."""
        records = [r for r in self.outbox.pending(now - grace, limit) if r.kind is not OutboxKind.STANDING
                   and (r.kind != REFUND or r.created_at <= now - refund_lease)]
        failed = self.try_deliver(records, requeue_at=now)
        return len(records) - failed, failed


def owes(record_id: str, refund_id: str, attempt: int) -> bool:
    """Whether the outbox record ``record_id`` is the one that owes this attempt of this refund
    (``OutboxRecord.refund`` names it ``<refund_id>:<attempt>:<random>``)."""
    return record_id.startswith(f"{refund_id}:{attempt}:")


class RefundWorker:
    """Sends the refunds the queue hands over, one message at a time (the pay-refunds function,
    and `make dev`'s dispatcher). ``send`` is ``Payments.send``: idempotent, so a message that
    arrives twice, or two workers at once, pay once (same idempotency key at the provider).
    A message only ever forgets the outbox record that owes its own attempt: one naming another
    refund's record is refused, and the record is deleted only while its payload is the message's."""

    def __init__(self, outbox: OutboxStore, send: Callable[[str, str, int], object], clock: Clock,
                 stop: Callable[[str, str], str]) -> None:
        """``stop``: ``Payments.stop_newer_attempt``, for a message whose ``op`` is ``cancel`` (a
        webhook learned that an older attempt paid while a newer one was out)."""
        self.outbox = outbox
        self.send = send
        self.clock = clock
        self.stop = stop

    def handle(self, message: Mapping[str, Any]) -> str:
        """Send one attempt, then forget its outbox record. While the provider cannot be reached
        (or answers garbage) the record stays, moved to the back of the outbox, and
        ``RefundsUnsent`` is counted (its alarm watches for an outage): the reconciler hands it to
        the queue again after ``REFUND_LEASE``, with the same idempotency key. Raises only when
        even that could not be recorded: the queue then delivers the message again."""
        order_id, refund_id, attempt = str(message["order_id"]), str(message["refund_id"]), int(message["attempt"])
        if message.get("op") == CANCEL:  # no outbox record: the ledger says whether one is still owed
            return self.stop(order_id, refund_id)
        outbox_id = str(message["outbox_id"])
        payload = {"order_id": order_id, "refund_id": refund_id, "attempt": attempt}
        if not owes(outbox_id, refund_id, attempt):
            logger.error("refund message names another refund's outbox record: refused", outbox_id=outbox_id,
                         refund_id=refund_id, attempt=attempt)
            return "refused"
        try:
            outcome = self.send(order_id, refund_id, attempt)
        except Exception:  # noqa: BLE001 - unknown outcome: sent again later with the same key
            logger.exception("refund not sent; left in the outbox for the reconciler", outbox_id=outbox_id,
                             refund_id=refund_id, attempt=attempt)
            now = self.clock.now()
            self.outbox.requeue(OutboxRecord(outbox_id, REFUND, payload, now), now)
            count(REFUNDS_UNSENT)  # its alarm: the provider has been unreachable for a while
            return "left"
        if not self.outbox.delete_refund(OutboxRecord(outbox_id, REFUND, payload, self.clock.now())):
            logger.error("refund message does not match the outbox record it names: record kept", outbox_id=outbox_id,
                         refund_id=refund_id, attempt=attempt)
        return str(outcome)
