"""The ports the use cases depend on. Each has a fake (adapters/memory.py) and a real adapter."""
from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol, TypeAlias, TypeVar

from .domain.disputes import Dispute, QueueFilter
from .domain.evidence import Evidence
from .domain.ledger import PayRefund, RefundStatus
from .domain.messages import Message
from .domain.money import Money
from .domain.notes import Note
from .domain.orders import Order
from .domain.rules import Rule
from .domain.standing import Bucket, Fact
from .domain.timers import TimerCommand

T = TypeVar("T")
Page: TypeAlias = tuple[list[T], str | None]  # one page of items, and where the next starts (None: the last)


class OutboxKind(str, Enum):
    TIMER = "TIMER"  # start or stop a timer
    EVENT = "EVENT"  # publish an event
    REFUND = "REFUND"  # send one attempt of a refund
    STANDING = "STANDING"  # a seller's standing to evaluate (the reconciler publishes a level change)


@dataclass(frozen=True)
class OutboxRecord:
    """Work for the outside world (start/stop a timer, publish an event), written in the same
    transaction as the change that caused it and deleted once done: nothing is lost between a
    commit and a crash."""

    outbox_id: str
    kind: OutboxKind
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def timer(cls, command: TimerCommand, now: datetime) -> OutboxRecord:
        return cls(str(uuid.uuid4()), OutboxKind.TIMER, command.to_dict(), now)

    @classmethod
    def refund(cls, pay: PayRefund, now: datetime) -> OutboxRecord:
        """Send one attempt of a refund; the provider deduplicates on ``<refund_id>:<attempt>``."""
        return cls(f"{pay.refund_id}:{pay.attempt}:{uuid.uuid4().hex[:8]}", OutboxKind.REFUND,
                   {"order_id": pay.order_id, "refund_id": pay.refund_id, "attempt": pay.attempt}, now)

    @classmethod
    def standing(cls, seller_id: str, now: datetime) -> OutboxRecord:
        """A fact of the seller's changed: the reconciler evaluates its level (off the request)."""
        return cls(str(uuid.uuid4()), OutboxKind.STANDING, {"seller_id": seller_id}, now)

    @classmethod
    def event(cls, detail_type: str, detail: dict[str, Any], now: datetime) -> OutboxRecord:
        event_id = str(uuid.uuid4())
        return cls(event_id, OutboxKind.EVENT, {"detail_type": detail_type, "detail": {**detail, "event_id": event_id}}, now)


@dataclass(frozen=True)
class Seen:
    """An aggregate as a repository saved it, its effects still on it (the commit collects them).
    ``registered``: a new order (its registration is a standing fact)."""

    aggregate: Order | Dispute
    registered: bool = False


class Changes:
    """What one unit of work will write, gathered by its repositories: the writes they staged, in
    order, and the aggregates they saved (``seen``), whose effects the unit of work collects at
    its commit. The repositories write here; they never call into the unit of work."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.writes: list[Any] = []
        self.seen: list[Seen] = []

    def stage(self, write: Any) -> None:
        self.writes.append(write)

    def saw_order(self, order: Order, registered: bool = False) -> Order:
        """The order as stored: its effects stay here, the version moves on."""
        self.seen.append(Seen(order, registered))
        return replace(order, version=(order.version or 0) + 1, effects=())

    def saw_dispute(self, dispute: Dispute) -> Dispute:
        """Takes the effects the dispute recorded (its version already the stored one)."""
        self.seen.append(Seen(replace(dispute, effects=list(dispute.effects))))
        dispute.effects.clear()
        return dispute

    def now(self) -> datetime:
        return self.clock.now()

    def clear(self) -> None:
        self.writes, self.seen = [], []


class OrderExists(Exception):
    """An order with this id is already stored."""


# ---- repositories: one per aggregate. Reads return what is stored now; writes are staged on the
# unit of work that owns the repository and happen all together, or not at all, at its commit.
class OrderRepository(Protocol):
    def get(self, order_id: str) -> Order | None: ...
    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        """The orders stored under these ids, by id, in one request (a missing one is left out)."""
        ...
    def fingerprint(self, order_id: str) -> str | None: ...
    def add(self, order: Order, fingerprint: str) -> Order:
        """Stage a new order (OrderExists at commit if the id is taken); returns it as stored."""
        ...
    def save(self, order: Order) -> Order:
        """Stage a versioned write; returns the order as it will be stored (version + 1)."""
        ...
    def list_for(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page[Order]: ...
    def due_for_release(self, now: datetime, limit: int, cursor: str | None = None) -> Page[Order]:
        """One page of the orders whose escrow is due by ``now`` (one request), and where the next
        page starts (None: that was the last). An order released meanwhile is not read again."""
        ...
    def needing_attention(self, limit: int, cursor: str | None) -> Page[Order]:
        """Orders with a refund every automatic attempt failed, oldest first."""
        ...


class DisputeRepository(Protocol):
    def get(self, dispute_id: str) -> Dispute | None: ...
    def save(self, dispute: Dispute, claimant: str | None = None) -> Dispute:
        """Stage a versioned write with the events and timer commands the dispute recorded;
        returns the dispute as it will be stored. With ``claimant``, the commit also fails with
        CASE_CLAIMED if another moderator's claim holds by then."""
        ...
    def list_for(self, role: str, party_id: str, status: str | None, limit: int, cursor: str | None) -> Page[Dispute]: ...
    def escalated(self, which: QueueFilter, now: datetime, limit: int, cursor: str | None) -> Page[Dispute]:
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
    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Message]: ...


class NoteRepository(Protocol):
    def add(self, note: Note) -> None: ...
    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Note]: ...


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
    def reverse(self, fact_ids: builtins.list[str]) -> None:
        """Stage the subtraction of each fact, read from its marker (one read each): its counters
        and its defect entry, and the marker marked reversed (refused at commit if it is already:
        a fact is subtracted once). A fact without a marker subtracts nothing."""
        ...
    def rules(self) -> builtins.list[Rule]: ...
    def rule(self, rule_id: str) -> Rule | None: ...
    def save_rule(self, rule: Rule, previous_version: int | None) -> None:
        """Stage a rule's new version (VERSION_CONFLICT at commit if another was saved meanwhile)."""
        ...
    def report(self, rule_id: str, version: int) -> dict[str, int]: ...
    def stage_case(self, dispute_id: str, opened_at: datetime, opened: dict[str, Any] | None,
                   ended: dict[str, Any] | None) -> None:
        """Stage a dispute's record for rule previews: what a rule looked at as it opened
        (``opened``) and/or how it ended (``ended``); one write of one item."""
        ...
    def recent_cases(self, since: datetime, limit: int) -> builtins.list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """The records of disputes opened since ``since``, newest first, at most ``limit``
        (one Query): (opened, ended or None); a record without its opening is left out."""
        ...


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


# What a provider may say of an attempt: the domain's refund statuses (domain/ledger.py).
REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED = RefundStatus.PENDING, RefundStatus.SUCCEEDED, RefundStatus.FAILED
REFUND_STATUSES = tuple(RefundStatus)
MAX_ATTEMPT = 1000  # far beyond any retry policy; a bigger number in a notice is not one of ours


def refund_status(value: object) -> RefundStatus:
    """A refund status as a provider's answer carries it; ValueError for anything else."""
    if isinstance(value, str) and value in REFUND_STATUSES:
        return RefundStatus(value)
    raise ValueError(f"not a refund status: {str(value)[:20]!r}")


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

    status: RefundStatus
    provider_refund_id: str | None = None
    failure_reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", refund_status(self.status))


@dataclass(frozen=True)
class SettlementNotice:
    """A provider telling us, asynchronously (a webhook), how a refund attempt stands."""

    event_id: str  # the provider's event id, for logs and deduplication
    refund_id: str  # ours, carried by the provider in the refund's metadata
    attempt: int
    provider_refund_id: str
    status: RefundStatus
    amount: Money
    failure_reason: str | None = None
    order_id: str = ""  # ours too, carried in the refund's metadata

    def __post_init__(self) -> None:
        # Whatever adapter read it, a notice that is not one of ours in shape never reaches the ledger.
        attempt_number(self.attempt)
        object.__setattr__(self, "status", refund_status(self.status))


class PaymentUnavailable(Exception):
    """The provider could not be reached, timed out, or answered something we cannot read.
    Nothing is known about the attempt: retry it with the same idempotency key."""


class InvalidWebhook(Exception):
    """A webhook whose signature or payload does not verify: never acted upon."""


class SettlementSimulator(Protocol):
    """A provider's capability to settle a refund's waiting attempt on request, as its webhook
    would (the simulated provider has it, for the sandbox; a real one has not)."""

    def settle_now(self, refund_id: str, attempt: int, failure_reason: str | None = None) -> list[SettlementNotice]:
        """Settle (or fail, with ``failure_reason``) that attempt now; [] when none is waiting."""
        ...


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

    def settlement_simulator(self) -> SettlementSimulator | None:
        """The capability to settle refunds on request, if this provider has it."""
        ...
