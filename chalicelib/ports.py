"""The ports the use cases depend on. Each has a fake (adapters/memory.py) and a real adapter."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .domain.disputes import Dispute, TimerCommand
from .domain.evidence import Evidence
from .domain.messages import Message
from .domain.orders import Order

Page = tuple[list, str | None]  # items, next cursor


@dataclass(frozen=True)
class OutboxRecord:
    """Work for the outside world (start/stop a timer, publish an event), written in the same
    transaction as the change that caused it and deleted once done: nothing is lost between a
    commit and a crash."""

    outbox_id: str
    kind: str  # TIMER | EVENT
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def timer(cls, command: TimerCommand, now: datetime) -> OutboxRecord:
        return cls(str(uuid.uuid4()), "TIMER", command.to_dict(), now)

    @classmethod
    def event(cls, detail_type: str, detail: dict[str, Any], now: datetime) -> OutboxRecord:
        event_id = str(uuid.uuid4())
        return cls(event_id, "EVENT", {"detail_type": detail_type, "detail": {**detail, "event_id": event_id}}, now)


class OrderExists(Exception):
    """An order with this id is already stored."""


class Repository(Protocol):
    """Orders, disputes and messages. Every save is conditional on the aggregate's version and
    raises ConcurrentModification when someone else wrote first."""

    def get_order(self, order_id: str) -> Order | None: ...
    def order_fingerprint(self, order_id: str) -> str | None: ...
    def add_order(self, order: Order, fingerprint: str) -> Order: ...
    def save_order(self, order: Order) -> Order: ...
    def get_dispute(self, dispute_id: str) -> Dispute | None: ...
    def save_dispute(self, dispute: Dispute, order: Order | None = None,
                     outbox: Iterable[OutboxRecord] = ()) -> tuple[Dispute, Order | None]: ...
    def list_orders(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page: ...
    def list_disputes(self, role: str, party_id: str, status: str | None, limit: int,
                      cursor: str | None) -> Page: ...
    def escalated_disputes(self, escalated_before: datetime | None, limit: int, cursor: str | None) -> Page: ...
    def add_message(self, message: Message, outbox: Iterable[OutboxRecord] = ()) -> None: ...
    def list_messages(self, dispute_id: str, limit: int, cursor: str | None) -> Page: ...
    def orders_due_for_release(self, now: datetime, limit: int) -> list[Order]: ...
    def pending_outbox(self, created_before: datetime, limit: int) -> list[OutboxRecord]: ...
    def delete_outbox(self, outbox_id: str) -> None: ...
    def add_evidence(self, evidence: Evidence, max_per_party: int) -> None: ...
    def get_evidence(self, dispute_id: str, evidence_id: str) -> Evidence | None: ...
    def list_evidence(self, dispute_id: str) -> list[Evidence]: ...
    def update_evidence(self, evidence: Evidence, from_statuses: Iterable[str],
                        outbox: Iterable[OutboxRecord] = ()) -> None: ...
    def expired_uploads(self, now: datetime, limit: int) -> list[Evidence]: ...


class EvidenceStore(Protocol):
    """Where evidence files live (S3): uploads land by presigned POST, served by presigned GET."""

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]: ...
    def size(self, key: str) -> int | None: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes, content_type: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def download_url(self, key: str, file_name: str, expires_in: int) -> str: ...


class Timers(Protocol):
    def start(self, command: TimerCommand) -> None: ...
    def stop(self, command: TimerCommand) -> None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)
