"""The PynamoDB models: tables, keys and indexes. Each model is declared once below, bound to no
table; ``make_tables`` builds one fresh set of subclasses per stage (table names and region), so
nothing is rebound or reset at run time, and the code that uses them is typed by the models."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

_M = TypeVar("_M", bound=Model)

RELEASE_SHARDS = 8  # spreads the auto-release index over partitions; the sweep reads each shard
EVIDENCE_SHARDS = 4
OUTBOX_SHARDS = 8
# Table name per logical table, the names the stack and `make dev` give them by default.
DEFAULT_TABLES = {"orders": "orders", "disputes": "disputes", "messages": "messages", "notes": "notes",
                  "moderation": "moderation",
                  "outbox": "outbox", "evidence": "evidence", "idempotency": "idempotency"}


def _gsi(name: str, hash_attr: str, range_attr: str, keys_only: bool = False) -> GlobalSecondaryIndex[_M]:
    """A GSI with the given key attributes (PynamoDB wants one class per index) of the model it is
    declared on (``_M``)."""
    meta = type("Meta", (), {"index_name": name,
                              "projection": KeysOnlyProjection() if keys_only else AllProjection()})
    attrs: dict[str, Any] = {"Meta": meta, hash_attr: UnicodeAttribute(hash_key=True),
                             range_attr: UnicodeAttribute(range_key=True)}
    index: GlobalSecondaryIndex[_M] = type(f"Index_{name}", (GlobalSecondaryIndex,), attrs)()
    return index


# ---- the models: their keys, attributes and indexes, bound to no table (see make_tables) ------------
class OrderModel(Model):
    order_id = UnicodeAttribute(hash_key=True)
    buyer_id = UnicodeAttribute()
    seller_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    # Set only while escrow is held and its release date is known: a sparse index for the sweep.
    release_shard = UnicodeAttribute(null=True)
    release_at = UnicodeAttribute(null=True)
    # Set only while a refund needs a person (every automatic attempt failed): a sparse
    # index moderators work from, oldest first.
    attention_queue = UnicodeAttribute(null=True)
    attention_since = UnicodeAttribute(null=True)
    doc: MapAttribute[str, Any] = MapAttribute()  # type: ignore[no-untyped-call]
    version = VersionAttribute()

    by_buyer: GlobalSecondaryIndex[OrderModel] = _gsi("by_buyer", "buyer_id", "created_at")
    by_seller: GlobalSecondaryIndex[OrderModel] = _gsi("by_seller", "seller_id", "created_at")
    due_for_release: GlobalSecondaryIndex[OrderModel] = _gsi("due_for_release", "release_shard", "release_at")
    needing_attention: GlobalSecondaryIndex[OrderModel] = _gsi("needing_attention", "attention_queue", "attention_since")


class DisputeModel(Model):
    dispute_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    seller_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    # Set only while ESCALATED: the moderation queue is a sparse index, oldest escalation first.
    moderation_queue = UnicodeAttribute(null=True)
    escalated_at = UnicodeAttribute(null=True)
    # Counted by the evidence writes, never by the dispute's own (see mapping.dispute_update).
    buyer_visual_evidence = NumberAttribute(null=True)
    # Each party's evidence quota, as its counter item (EvidenceQuotaModel) holds it.
    buyer_evidence_used = NumberAttribute(null=True)
    buyer_evidence_created = NumberAttribute(null=True)
    seller_evidence_used = NumberAttribute(null=True)
    seller_evidence_created = NumberAttribute(null=True)
    # The moderator's claim (DisputeCounterModel writes it; the queue index projects it).
    claim_moderator = UnicodeAttribute(null=True)
    claimed_at = UnicodeAttribute(null=True)
    claim_expires_at = UnicodeAttribute(null=True)
    doc: MapAttribute[str, Any] = MapAttribute()  # type: ignore[no-untyped-call]
    version = VersionAttribute()

    by_buyer: GlobalSecondaryIndex[DisputeModel] = _gsi("by_buyer", "buyer_id", "created_at")
    by_seller: GlobalSecondaryIndex[DisputeModel] = _gsi("by_seller", "seller_id", "created_at")
    escalated: GlobalSecondaryIndex[DisputeModel] = _gsi("escalated", "moderation_queue", "escalated_at")


class MessageModel(Model):
    dispute_id = UnicodeAttribute(hash_key=True)
    message_key = UnicodeAttribute(range_key=True)
    message_id = UnicodeAttribute()
    author_id = UnicodeAttribute()
    author_role = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()


class NoteModel(Model):
    """A moderator's internal note: its own table, read by moderators' routes only."""

    dispute_id = UnicodeAttribute(hash_key=True)
    note_key = UnicodeAttribute(range_key=True)
    note_id = UnicodeAttribute()
    author_id = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()


class ModerationModel(Model):
    """Seller standing, buyer signals and the rules, in one table read by key ranges:
    ``S#<seller>``/``B#<buyer>`` + ``D#<day>`` or ``M#<month>``: a party's counters;
    ``F#<fact id>`` + ``F``: a fact's marker (what it added); ``RULES`` + ``<rule id>``: a rule;
    ``R#<rule id>`` + ``V#<version>``: that version's report counters; ``CASES`` + ``<opened at>#<dispute id>``:
    a dispute's record for rule previews (``doc``: as it opened, ``ended``: how it ended)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    orders = NumberAttribute(null=True)
    disputes = NumberAttribute(null=True)
    defects = NumberAttribute(null=True)
    disputes_opened = NumberAttribute(null=True)
    won = NumberAttribute(null=True)
    lost = NumberAttribute(null=True)
    cancelled = NumberAttribute(null=True)
    against = NumberAttribute(null=True)
    evaluated = NumberAttribute(null=True)
    matched = NumberAttribute(null=True)
    decided_by_people = NumberAttribute(null=True)
    agreed = NumberAttribute(null=True)
    disagreed = NumberAttribute(null=True)
    members = UnicodeSetAttribute(null=True)  # a seller's defects: [buyer, order] as JSON
    rule_version = NumberAttribute(null=True)
    reversals = NumberAttribute(null=True)  # on a fact's marker: 1 once the fact was subtracted
    doc: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]
    ended: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]  # a dispute's record: its end


class OutboxModel(Model):
    """Pending work for the outside world; see ports.OutboxRecord. Deleted once done."""

    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    payload: MapAttribute[str, Any] = MapAttribute()  # type: ignore[no-untyped-call]
    created_at = UnicodeAttribute()
    shard = UnicodeAttribute()

    pending: GlobalSecondaryIndex[OutboxModel] = _gsi("pending", "shard", "created_at")


class EvidenceModel(Model):
    """One upload slot and what became of it. The party's quota counters live in the same
    table (range key ``#quota#<role>``); evidence ids (UUIDs) sort after them."""

    dispute_id = UnicodeAttribute(hash_key=True)
    evidence_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute(null=True)
    doc: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]
    # Set only while an upload is awaited or processed (``Evidence.attention_at``): a sparse
    # index for the sweep that expires unused slots and fails stuck ones.
    pending_shard = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)

    awaiting_upload: GlobalSecondaryIndex[EvidenceModel] = _gsi("awaiting_upload", "pending_shard", "expires_at")


class EvidenceQuotaModel(Model):
    """How many of a party's places in a dispute are taken (same table as the evidence)."""

    dispute_id = UnicodeAttribute(hash_key=True)
    evidence_id = UnicodeAttribute(range_key=True)
    used = NumberAttribute(default=0)  # places taken now (pending, processing, accepted)
    created = NumberAttribute(default=0)  # slots ever asked for: rejected ones free a place, not this


class DisputeCounterModel(Model):
    """Counters on a dispute's item that are no part of its versioned document: an accepted
    photo must not make a party's ``expected_version`` stale."""

    dispute_id = UnicodeAttribute(hash_key=True)
    buyer_visual_evidence = NumberAttribute(default=0)
    # A copy of each party's quota, written in the quota's transaction: a read of the dispute
    # knows whether another upload slot would be refused (available_actions).
    buyer_evidence_used = NumberAttribute(default=0)
    buyer_evidence_created = NumberAttribute(default=0)
    seller_evidence_used = NumberAttribute(default=0)
    seller_evidence_created = NumberAttribute(default=0)
    # A moderator's claim on the case: taken and given back by conditional writes of its own,
    # outside the version (a claim is no change the parties see).
    claim_moderator = UnicodeAttribute(null=True)
    claimed_at = UnicodeAttribute(null=True)
    claim_expires_at = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # only read in conditions (the case is still ESCALATED)


class IdempotencyRecordModel(Model):
    """The Powertools idempotency table's key schema (Powertools reads and writes the items)."""

    id = UnicodeAttribute(hash_key=True)
    expiration = NumberAttribute(null=True)  # the TTL attribute


@dataclass(frozen=True)
class Tables:
    """The model classes of one stage: each a subclass of the model above, bound to its table."""

    orders: type[OrderModel]
    disputes: type[DisputeModel]
    messages: type[MessageModel]
    notes: type[NoteModel]
    moderation: type[ModerationModel]
    outbox: type[OutboxModel]
    evidence: type[EvidenceModel]
    quota: type[EvidenceQuotaModel]  # the evidence table seen as per-party counters
    dispute_counters: type[DisputeCounterModel]  # the disputes table seen as counters kept outside the dispute's version
    idempotency: type[IdempotencyRecordModel]

    def all(self) -> list[type[Model]]:
        """Every model that owns a table (the counters live in the evidence and dispute tables)."""
        return [getattr(self, f.name) for f in fields(self) if f.name not in ("quota", "dispute_counters")]


def make_tables(names: dict[str, str], region_name: str) -> Tables:
    """Model classes for tables ``names`` (logical name -> table name) in ``region_name``."""

    def bound(model: type[_M], table: str) -> type[_M]:
        meta = type("Meta", (), {"table_name": names[table], "region": region_name, "billing_mode": "PAY_PER_REQUEST"})
        # PynamoDB gives the subclass its own copy of each index, pointing at the subclass.
        return cast("type[_M]", type(model.__name__, (model,), {"Meta": meta, "__module__": model.__module__,
                                                                  "__qualname__": model.__qualname__}))

    return Tables(orders=bound(OrderModel, "orders"), disputes=bound(DisputeModel, "disputes"),
                  messages=bound(MessageModel, "messages"), notes=bound(NoteModel, "notes"),
                  moderation=bound(ModerationModel, "moderation"), outbox=bound(OutboxModel, "outbox"),
                  evidence=bound(EvidenceModel, "evidence"), quota=bound(EvidenceQuotaModel, "evidence"),
                  dispute_counters=bound(DisputeCounterModel, "disputes"),
                  idempotency=bound(IdempotencyRecordModel, "idempotency"))


def create_tables(tables: Tables, wait: bool = False) -> None:
    """Create every table (local runs and tests; the deployed stack comes from infra/)."""
    for model in tables.all():
        if not model.exists():
            model.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")
