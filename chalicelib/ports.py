"""The ports the use cases depend on. Each has a fake (adapters/memory.py) and a real adapter."""
from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .domain.disputes import Dispute, QueueFilter
from .domain.evidence import Evidence
from .domain.ledger import PayRefund
from .domain.messages import Message
from .domain.money import Money
from .domain.notes import Note
from .domain.orders import Order
from .domain.rules import Rule
from .domain.standing import Bucket, Fact
from .domain.timers import TimerCommand

Page = tuple[list, str | None]  # items, next cursor


@dataclass(frozen=True)
class OutboxRecord:
    """Work for the outside world (start/stop a timer, publish an event), written in the same
    transaction as the change that caused it and deleted once done: nothing is lost between a
    commit and a crash."""

    outbox_id: str
    kind: str  # TIMER | EVENT | REFUND
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def timer(cls, command: TimerCommand, now: datetime) -> OutboxRecord:
        return cls(str(uuid.uuid4()), "TIMER", command.to_dict(), now)

    @classmethod
    def refund(cls, pay: PayRefund, now: datetime) -> OutboxRecord:
        """Send one attempt of a refund; the provider deduplicates on ``<refund_id>:<attempt>``."""
        return cls(f"{pay.refund_id}:{pay.attempt}:{uuid.uuid4().hex[:8]}", "REFUND",
                   {"order_id": pay.order_id, "refund_id": pay.refund_id, "attempt": pay.attempt}, now)

    @classmethod
    def event(cls, detail_type: str, detail: dict[str, Any], now: datetime) -> OutboxRecord:
        event_id = str(uuid.uuid4())
        return cls(event_id, "EVENT", {"detail_type": detail_type, "detail": {**detail, "event_id": event_id}}, now)


class OrderExists(Exception):
    """An order with this id is already stored."""


# ---- repositories: one per aggregate. Reads return what is stored now; writes are staged on the
# unit of work that owns the repository and happen all together, or not at all, at its commit.
class OrderRepository(Protocol):
    def get(self, order_id: str) -> Order | None: ...
    def fingerprint(self, order_id: str) -> str | None: ...
    def add(self, order: Order, fingerprint: str) -> Order:
        """Stage a new order (OrderExists at commit if the id is taken); returns it as stored."""
        ...
    def save(self, order: Order) -> Order:
        """Stage a versioned write; returns the order as it will be stored (version + 1)."""
        ...
    def list_for(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page: ...
    def due_for_release(self, now: datetime, limit: int, cursor: str | None = None) -> Page:
        """One page of the orders whose escrow is due by ``now`` (one request), and where the next
        page starts (None: that was the last). An order released meanwhile is not read again."""
        ...
    def needing_attention(self, limit: int, cursor: str | None) -> Page:
        """Orders with a refund every automatic attempt failed, oldest first."""
        ...


class DisputeRepository(Protocol):
    def get(self, dispute_id: str) -> Dispute | None: ...
    def save(self, dispute: Dispute, claimant: str | None = None) -> Dispute:
        """Stage a versioned write with the events and timer commands the dispute recorded;
        returns the dispute as it will be stored. With ``claimant``, the commit also fails with
        CASE_CLAIMED if another moderator's claim holds by then."""
        ...
    def list_for(self, role: str, party_id: str, status: str | None, limit: int, cursor: str | None) -> Page: ...
    def escalated(self, which: QueueFilter, now: datetime, limit: int, cursor: str | None) -> Page:
        """ESCALATED disputes ``which`` matches at ``now``, oldest escalation first."""
        ...
    def claim(self, dispute: Dispute, now: datetime) -> None:
        """Stage ``dispute.assignment``; the commit fails with CASE_CLAIMED if another
        moderator's claim holds by then, INVALID_STATE if the case left the queue."""
        ...
    def release(self, dispute: Dispute, moderator_id: str) -> None:
        """Stage the end of ``moderator_id``'s claim (CASE_CLAIMED at commit if it was taken over)."""
        ...


class MessageRepository(Protocol):
    def add(self, message: Message, claimant: str | None = None) -> None:
        """Stage a message; the commit fails with DISPUTE_CLOSED if the dispute closed meanwhile
        (and, with ``claimant``, with CASE_CLAIMED if another moderator's claim holds)."""
        ...
    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page: ...


class NoteRepository(Protocol):
    def add(self, note: Note) -> None: ...
    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page: ...


class EvidenceRepository(Protocol):
    def get(self, dispute_id: str, evidence_id: str) -> Evidence | None: ...
    def list(self, dispute_id: str) -> list[Evidence]: ...
    def add(self, evidence: Evidence, max_per_party: int) -> None:
        """Stage a new slot, taking one of the party's places (EVIDENCE_LIMIT_REACHED at commit
        when none is left, DISPUTE_CLOSED when the dispute closed)."""
        ...
    def save(self, evidence: Evidence, from_statuses: Iterable[str]) -> None:
        """Stage a status move, only from one of ``from_statuses`` (ConcurrentModification at
        commit otherwise); an ACCEPTED file only while the dispute is open (DISPUTE_CLOSED at
        commit otherwise); leaving a counted status gives the place back, and a buyer's accepted
        photo or video is counted on the dispute for its evidence checklist."""
        ...
    def expired(self, now: datetime, limit: int) -> builtins.list[Evidence]:
        """Unfinished slots whose ``attention_at`` has passed (unused, or stuck processing)."""
        ...


class ModerationRepository(Protocol):
    """Seller standing and buyer signals (counter items per party per day or month, a marker per
    fact) and the auto-resolution rules with their report counters: one table, read by key ranges."""

    def buckets(self, party: str, first: str, last: str) -> builtins.list[Bucket]:
        """The party's counter items with keys from ``first`` to ``last`` (one Query)."""
        ...
    def publish_level(self, seller_id: str, was: str, level: str) -> None:
        """Stage the seller's published level: ``level``, if it is still ``was`` at commit
        (VERSION_CONFLICT otherwise: another reader published the change)."""
        ...
    def record(self, facts: builtins.list[Fact]) -> None:
        """Stage the facts: a marker each (refused at commit if it exists: the change happened
        already) and their counters, added up per item."""
        ...
    def rules(self) -> builtins.list[Rule]: ...
    def rule(self, rule_id: str) -> Rule | None: ...
    def save_rule(self, rule: Rule, previous_version: int | None) -> None:
        """Stage a rule's new version (VERSION_CONFLICT at commit if another was saved meanwhile)."""
        ...
    def report(self, rule_id: str, version: int) -> dict[str, int]: ...


class OutboxStore(Protocol):
    """The outbox as the relay sees it: what is owed, and done."""

    def pending(self, created_before: datetime, limit: int) -> list[OutboxRecord]: ...
    def delete(self, outbox_ids: Iterable[str]) -> None:
        """Forget delivered records, in as few requests as the store allows."""
        ...

    def requeue(self, record: OutboxRecord, at: datetime) -> None: ...
    def delete_refund(self, record: OutboxRecord) -> bool:
        """Forget the REFUND record ``record.outbox_id`` only if it owes ``record.payload`` (one
        request). True when forgotten or already gone; False when it owes something else (kept)."""
        ...


class RefundQueue(Protocol):
    """Where a commit hands the refunds it owes to the worker that sends them (SQS deployed and in
    `make dev`; a list in the unit tests). A message may arrive twice: sending is idempotent."""

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        """Hand every message over, in as few requests as the queue allows; raises if any was not."""
        ...


class EvidenceStore(Protocol):
    """Where evidence files live (S3): uploads land by presigned POST, served by presigned GET."""

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]: ...
    def size(self, key: str) -> int | None: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes, content_type: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def download_url(self, key: str, file_name: str, expires_in: int, content_type: str, inline: bool) -> str:
        """A presigned GET that answers with ``content_type`` and, unless ``inline``, as an attachment."""
        ...


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


# ---- payments ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundOrder:
    """One attempt to send a refund back to the buyer's payment.

    ``idempotency_key`` is what the provider deduplicates on: the same key never moves money
    twice. It is ``<refund_id>:<attempt>``; a new attempt is only made once the previous one has
    definitively failed, so the buyer is paid once whatever happens.
    """

    refund_id: str
    attempt: int
    order_id: str
    payment_reference: str | None  # the charge a refund goes back to (e.g. a Stripe PaymentIntent "pi_...")
    amount: Money

    @property
    def idempotency_key(self) -> str:
        return f"{self.refund_id}:{self.attempt}"


REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED = "PENDING", "SUCCEEDED", "FAILED"
REFUND_STATUSES = (REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED)
MAX_ATTEMPT = 1000  # far beyond any retry policy; a bigger number in a notice is not one of ours


def attempt_number(value: object) -> int:
    """An attempt number as a provider carries it back (a JSON integer, or metadata text of
    digits); ValueError for anything else (``1e400``, ``1.5``, ``true``, `` 1``), never a guess."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ATTEMPT)):
        value = int(value)
    if type(value) is not int or not 1 <= value <= MAX_ATTEMPT:
        raise ValueError(f"not an attempt number: {str(value)[:20]!r}")
    return value


@dataclass(frozen=True)
class RefundReceipt:
    """What a provider says of one refund attempt: PENDING (accepted, not settled yet),
    SUCCEEDED (the money left) or FAILED (it will not; ``failure_reason`` says why)."""

    status: str
    provider_refund_id: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class SettlementNotice:
    """A provider telling us, asynchronously (a webhook), how a refund attempt stands."""

    event_id: str  # the provider's event id, for logs and deduplication
    refund_id: str  # ours, carried by the provider in the refund's metadata
    attempt: int
    provider_refund_id: str
    status: str  # PENDING | SUCCEEDED | FAILED
    amount: Money
    failure_reason: str | None = None
    order_id: str = ""  # ours too, carried in the refund's metadata

    def __post_init__(self) -> None:
        # Whatever adapter read it, a notice that is not one of ours in shape never reaches the ledger.
        attempt_number(self.attempt)
        if self.status not in REFUND_STATUSES:
            raise ValueError(f"not a refund status: {self.status!r}")


class PaymentUnavailable(Exception):
    """The provider could not be reached, timed out, or answered something we cannot read.
    Nothing is known about the attempt: retry it with the same idempotency key."""


class InvalidWebhook(Exception):
    """A webhook whose signature or payload does not verify: never acted upon."""


class PaymentProvider(Protocol):
    """Where refunds are paid. Every call is safe to repeat with the same ``RefundOrder``."""

    name: str

    def refund(self, order: RefundOrder) -> RefundReceipt:
        """Ask for the refund (idempotent on ``order.idempotency_key``); raise PaymentUnavailable
        when the outcome is unknown."""
        ...

    def lookup(self, order: RefundOrder) -> RefundReceipt | None:
        """The provider's current view of that attempt, or None if it never saw it."""
        ...

    def cancel(self, order: RefundOrder) -> RefundReceipt | None:
        """Cancel that attempt if the provider still allows it; its view afterwards (FAILED once
        cancelled, PENDING or SUCCEEDED when it could not be), or None if it never saw it."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> SettlementNotice | None:
        """Verify and read a webhook; None for events that are not about our refunds; raise
        InvalidWebhook when the signature or payload does not verify."""
        ...
