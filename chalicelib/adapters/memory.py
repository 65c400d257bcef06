"""In-memory repository: the fake the unit tests use, held to the same contract as DynamoDB."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from ..domain.disputes import Dispute, Status, TimerCommand
from ..domain.errors import ConcurrentModification, Conflict, InvalidInput, RuleViolation
from ..domain.evidence import COUNTED, PENDING_UPLOAD, SLOTS_PER_PLACE, Evidence
from ..domain.messages import Message
from ..domain.orders import Order
from ..domain.policy import Policy
from ..ports import OrderExists, OutboxRecord, Page


def _page(items: list, limit: int, cursor: str | None) -> Page:
    try:
        start = int(cursor) if cursor else 0
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc
    chunk = items[start:start + limit]
    nxt = str(start + limit) if start + limit < len(items) else None
    return chunk, nxt


class InMemoryRepository:
    def __init__(self, policy: Policy | None = None) -> None:
        self.orders: dict[str, tuple[Order, str]] = {}
        self.disputes: dict[str, Dispute] = {}
        self.messages: dict[str, list[Message]] = {}
        self.outbox: dict[str, OutboxRecord] = {}
        self.evidence: dict[tuple[str, str], Evidence] = {}
        self.policy = policy or Policy()

    # orders
    def get_order(self, order_id: str) -> Order | None:
        entry = self.orders.get(order_id)
        return entry[0] if entry else None

    def order_fingerprint(self, order_id: str) -> str | None:
        entry = self.orders.get(order_id)
        return entry[1] if entry else None

    def add_order(self, order: Order, fingerprint: str) -> Order:
        if order.order_id in self.orders:
            raise OrderExists(order.order_id)
        stored = replace(order, version=1)
        self.orders[order.order_id] = (stored, fingerprint)
        return stored

    def save_order(self, order: Order) -> Order:
        self._check_order(order)
        stored = replace(order, version=(order.version or 0) + 1)
        self.orders[order.order_id] = (stored, self.orders[order.order_id][1])
        return stored

    def _check_order(self, order: Order) -> None:
        current = self.get_order(order.order_id)
        if current is None or current.version != order.version:
            raise ConcurrentModification("the order changed meanwhile")

    # disputes
    def get_dispute(self, dispute_id: str) -> Dispute | None:
        d = self.disputes.get(dispute_id)
        return None if d is None else copy.deepcopy(d)

    def save_dispute(self, dispute: Dispute, order: Order | None = None,
                     outbox: Iterable[OutboxRecord] = ()) -> tuple[Dispute, Order | None]:
        current = self.disputes.get(dispute.dispute_id)
        if (current.version if current else None) != dispute.version:
            raise ConcurrentModification("the dispute changed meanwhile")
        if order is not None:
            self._check_order(order)
        stored = copy.deepcopy(dispute)
        stored.version = (dispute.version or 0) + 1
        stored.new_events, stored.timer_commands = [], []
        self.disputes[dispute.dispute_id] = stored
        self.outbox.update((r.outbox_id, r) for r in outbox)
        saved_order = self.save_order(order) if order is not None else None
        return copy.deepcopy(stored), saved_order

    def list_orders(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page:
        mine = [o for o, _ in self.orders.values() if getattr(o, f"{role}_id") == party_id]
        mine.sort(key=lambda o: (o.created_at, o.order_id), reverse=True)
        return _page(mine, limit, cursor)

    def list_disputes(self, role: str, party_id: str, status: str | None, limit: int,
                      cursor: str | None) -> Page:
        mine = [copy.deepcopy(d) for d in self.disputes.values() if getattr(d, f"{role}_id") == party_id
                and (status is None or d.status.value == status)]
        mine.sort(key=lambda d: (d.created_at, d.dispute_id), reverse=True)
        return _page(mine, limit, cursor)

    def escalated_disputes(self, escalated_before: datetime | None, limit: int, cursor: str | None) -> Page:
        queue = [copy.deepcopy(d) for d in self.disputes.values() if d.status is Status.ESCALATED
                 and d.escalated_at is not None and (escalated_before is None or d.escalated_at <= escalated_before)]
        queue.sort(key=lambda d: (d.escalated_at, d.dispute_id))
        return _page(queue, limit, cursor)

    # messages
    def _require_open(self, dispute_id: str) -> None:
        d = self.disputes.get(dispute_id)
        if d is None or not d.is_open:
            raise Conflict("the dispute is closed", code="DISPUTE_CLOSED")

    def add_message(self, message: Message, outbox: Iterable[OutboxRecord] = ()) -> None:
        self._require_open(message.dispute_id)
        self.messages.setdefault(message.dispute_id, []).append(message)
        self.outbox.update((r.outbox_id, r) for r in outbox)

    def list_messages(self, dispute_id: str, limit: int, cursor: str | None) -> Page:
        thread = sorted(self.messages.get(dispute_id, []), key=lambda m: m.sort_key)
        return _page(thread, limit, cursor)

    # escrow
    def orders_due_for_release(self, now: datetime, limit: int) -> list[Order]:
        due = [o for o, _ in self.orders.values()
               if (at := o.release_at(self.policy)) is not None and at <= now]
        return sorted(due, key=lambda o: o.release_at(self.policy) or now)[:limit]

    # outbox
    def pending_outbox(self, created_before: datetime, limit: int) -> list[OutboxRecord]:
        return sorted((r for r in self.outbox.values() if r.created_at <= created_before),
                      key=lambda r: r.created_at)[:limit]

    def delete_outbox(self, outbox_id: str) -> None:
        self.outbox.pop(outbox_id, None)

    def requeue_outbox(self, record: OutboxRecord, at: datetime) -> None:
        if record.outbox_id in self.outbox:
            self.outbox[record.outbox_id] = replace(record, created_at=at)

    # evidence
    def add_evidence(self, evidence: Evidence, max_per_party: int) -> None:
        self._require_open(evidence.dispute_id)
        mine = [e for e in self.evidence.values()
                if e.dispute_id == evidence.dispute_id and e.uploaded_by == evidence.uploaded_by]
        used = sum(1 for e in mine if e.status in COUNTED)
        if used >= max_per_party or len(mine) >= max_per_party * SLOTS_PER_PLACE:
            raise RuleViolation(f"at most {max_per_party} files per party", code="EVIDENCE_LIMIT_REACHED",
                                details={"limit": max_per_party})
        self.evidence[(evidence.dispute_id, evidence.evidence_id)] = evidence

    def get_evidence(self, dispute_id: str, evidence_id: str) -> Evidence | None:
        return self.evidence.get((dispute_id, evidence_id))

    def list_evidence(self, dispute_id: str) -> list[Evidence]:
        return sorted((e for e in self.evidence.values() if e.dispute_id == dispute_id), key=lambda e: e.evidence_id)

    def update_evidence(self, evidence: Evidence, from_statuses: Iterable[str],
                        outbox: Iterable[OutboxRecord] = ()) -> None:
        current = self.evidence.get((evidence.dispute_id, evidence.evidence_id))
        if current is None or current.status not in set(from_statuses):
            raise ConcurrentModification("the evidence was processed meanwhile")
        self.evidence[(evidence.dispute_id, evidence.evidence_id)] = evidence
        self.outbox.update((r.outbox_id, r) for r in outbox)

    def expired_uploads(self, now: datetime, limit: int) -> list[Evidence]:
        return [e for e in self.evidence.values() if e.status == PENDING_UPLOAD and e.expires_at < now][:limit]


class RecordingTimers:
    """Timers fake: remembers what was started and stopped; can be told to fail."""

    def __init__(self) -> None:
        self.started: list[TimerCommand] = []
        self.stopped: list[TimerCommand] = []
        self.fail_next: int = 0

    def _maybe_fail(self) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected Step Functions outage")

    def start(self, command: TimerCommand) -> None:
        self._maybe_fail()
        self.started.append(command)

    def stop(self, command: TimerCommand) -> None:
        self._maybe_fail()
        self.stopped.append(command)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def publish(self, detail_type: str, detail: dict) -> None:
        self.events.append((detail_type, detail))
