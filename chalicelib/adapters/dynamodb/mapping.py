"""Aggregates to items and back. The domain never sees a model; the models never see a rule."""
from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from pynamodb.attributes import MapAttribute
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from ...domain.disputes import Assignment, Dispute, Status
from ...domain.evidence import Evidence
from ...domain.messages import Message
from ...domain.notes import Note
from ...domain.orders import Order
from ...domain.policy import Policy
from ...domain.timefmt import fmt, parse
from ...ports import OutboxKind, OutboxRecord
from .models import (
    EVIDENCE_SHARDS,
    OUTBOX_SHARDS,
    RELEASE_SHARDS,
    DisputeModel,
    EvidenceModel,
    MessageModel,
    NoteModel,
    OrderModel,
    OutboxModel,
    Tables,
)

_M = TypeVar("_M", bound=Model)


def shard(key: str, shards: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % shards


def versioned(model: type[_M], key: str, version: int | None) -> _M:
    """``model``'s item ``key`` at ``version``. PynamoDB refuses version=None; leaving it out
    makes the write conditional on a new item."""
    return model(key) if version is None else model(key, version=version)


def as_dict(doc: MapAttribute[str, Any]) -> dict[str, Any]:
    """A raw map attribute's value as plain data (PynamoDB's ``as_dict`` is untyped)."""
    value: dict[str, Any] = doc.as_dict()  # type: ignore[no-untyped-call]
    return value


# ---- orders -----------------------------------------------------------------------------------
def release_fields(order: Order, policy: Policy) -> tuple[str, str] | None:
    """The sparse auto-release index (shard, release date): set only while the order waits for
    its release date."""
    release_at = order.release_at(policy)
    if release_at is None:
        return None
    return f"HELD#{shard(order.order_id, RELEASE_SHARDS)}", fmt(release_at)


def attention_since(order: Order) -> str | None:
    """The sparse index of refunds that need a person: since when the oldest one does."""
    stuck = [r.updated_at for r in order.refunds if r.needs_attention]
    return fmt(min(stuck)) if stuck else None


def new_order_item(t: Tables, order: Order, fingerprint: str, policy: Policy) -> OrderModel:
    release_shard, release_at = release_fields(order, policy) or (None, None)
    return t.orders(order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id,
                    created_at=fmt(order.created_at), fingerprint=fingerprint, release_shard=release_shard,
                    release_at=release_at, doc=order.to_dict())


def order_update(t: Tables, order: Order, policy: Policy) -> tuple[OrderModel, list[Action]]:
    """The versioned update that stores ``order`` (its registration fingerprint untouched)."""
    m = t.orders
    release = release_fields(order, policy)
    actions: list[Action] = [m.doc.set(order.to_dict())]
    if release:
        actions += [m.release_shard.set(release[0]), m.release_at.set(release[1])]
    else:
        actions += [m.release_shard.remove(), m.release_at.remove()]
    since = attention_since(order)
    if since:
        actions += [m.attention_queue.set("REFUNDS"), m.attention_since.set(since)]
    else:
        actions += [m.attention_queue.remove(), m.attention_since.remove()]
    return versioned(m, order.order_id, order.version), actions


def order_from(item: OrderModel) -> Order:
    return Order.from_dict(as_dict(item.doc), item.version)


# ---- disputes ---------------------------------------------------------------------------------
def dispute_update(t: Tables, d: Dispute) -> tuple[DisputeModel, list[Action]]:
    """The versioned update that stores ``d``. An update, not a put: the counters other writes
    keep on the same item (see DisputeCounterModel) survive it."""
    m = t.disputes
    escalated = d.status is Status.ESCALATED
    actions: list[Action] = [m.order_id.set(d.order_id), m.buyer_id.set(d.buyer_id), m.seller_id.set(d.seller_id),
                             m.status.set(d.status.value), m.created_at.set(fmt(d.created_at)),
                             m.doc.set(d.to_dict())]
    if escalated:
        assert d.escalated_at is not None, "an escalated dispute has its escalation time"
        # The claim is the claim writes' business while the case is in the queue.
        actions += [m.moderation_queue.set("ESCALATED"), m.escalated_at.set(fmt(d.escalated_at))]
    else:
        actions += [m.moderation_queue.remove(), m.escalated_at.remove(), m.claim_moderator.remove(),
                    m.claimed_at.remove(), m.claim_expires_at.remove()]
    return versioned(m, d.dispute_id, d.version), actions


def assignment_from(item: DisputeModel) -> Assignment | None:
    if not (item.claim_moderator and item.claimed_at and item.claim_expires_at):
        return None
    return Assignment(item.claim_moderator, parse(item.claimed_at), parse(item.claim_expires_at))


def dispute_from(item: DisputeModel) -> Dispute:
    roles = ("buyer", "seller")
    return Dispute.from_dict(as_dict(item.doc), item.version, int(item.buyer_visual_evidence or 0),
                             evidence_used={r: int(getattr(item, f"{r}_evidence_used") or 0) for r in roles},
                             evidence_created={r: int(getattr(item, f"{r}_evidence_created") or 0) for r in roles},
                             assignment=assignment_from(item))


# ---- messages, evidence, outbox ---------------------------------------------------------------
def message_item(t: Tables, message: Message) -> MessageModel:
    return t.messages(message.dispute_id, message.sort_key, message_id=message.message_id,
                      author_id=message.author_id, author_role=message.author_role, body=message.body,
                      created_at=fmt(message.created_at))


def message_from(item: MessageModel) -> Message:
    return Message(item.dispute_id, item.message_id, item.author_id, item.author_role, item.body,
                   parse(item.created_at))


def note_item(t: Tables, note: Note) -> NoteModel:
    return t.notes(note.dispute_id, note.sort_key, note_id=note.note_id, author_id=note.author_id, body=note.body,
                   created_at=fmt(note.created_at))


def note_from(item: NoteModel) -> Note:
    return Note(item.dispute_id, item.note_id, item.author_id, item.body, parse(item.created_at))


def evidence_item(t: Tables, e: Evidence) -> EvidenceModel:
    due = e.attention_at  # awaiting an upload, or processing: in the sweep's sparse index until final
    return t.evidence(e.dispute_id, e.evidence_id, status=e.status, doc=e.to_dict(),
                      pending_shard=f"E#{shard(e.evidence_id, EVIDENCE_SHARDS)}" if due else None,
                      expires_at=fmt(due) if due else None)


def evidence_from(item: EvidenceModel) -> Evidence:
    return Evidence.from_dict(as_dict(item.doc))


def outbox_item(t: Tables, record: OutboxRecord) -> OutboxModel:
    return t.outbox(record.outbox_id, kind=record.kind.value, payload=record.payload, created_at=fmt(record.created_at),
                    shard=f"P#{shard(record.outbox_id, OUTBOX_SHARDS)}")


def outbox_from(item: OutboxModel) -> OutboxRecord:
    return OutboxRecord(item.outbox_id, OutboxKind(item.kind), as_dict(item.payload), parse(item.created_at))
