"""DynamoDB through PynamoDB: the tables, their indexes, and the repository over them.

Every aggregate carries a VersionAttribute, so every write is conditional; a dispute that moves
money is written in one transaction with its order. No request path scans a table.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..domain.disputes import TERMINAL, Dispute, Status
from ..domain.errors import ConcurrentModification, Conflict, InvalidInput, RuleViolation
from ..domain.evidence import COUNTED, PENDING_UPLOAD, SLOTS_PER_PLACE, Evidence
from ..domain.messages import Message
from ..domain.orders import Order
from ..domain.policy import Policy
from ..domain.timefmt import fmt, parse
from ..ports import OrderExists, OutboxRecord, Page

RELEASE_SHARDS = 8  # spreads the auto-release index over partitions; the sweep reads each shard
OPEN_STATUSES = tuple(status.value for status in Status if status not in TERMINAL)


def _gsi(name: str, hash_attr: str, range_attr: str, keys_only: bool = False) -> type[GlobalSecondaryIndex]:
    """A GSI class with the given key attributes (PynamoDB wants one class per index)."""
    meta = type("Meta", (), {"index_name": name,
                              "projection": KeysOnlyProjection() if keys_only else AllProjection()})
    attrs: dict[str, Any] = {"Meta": meta, hash_attr: UnicodeAttribute(hash_key=True),
                             range_attr: UnicodeAttribute(range_key=True)}
    return type(f"Index_{name}", (GlobalSecondaryIndex,), attrs)


class OrderModel(Model):
    class Meta:
        table_name = "orders"
        billing_mode = "PAY_PER_REQUEST"

    order_id = UnicodeAttribute(hash_key=True)
    buyer_id = UnicodeAttribute()
    seller_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    fingerprint = UnicodeAttribute()
    # Set only while escrow is held and its release date is known: a sparse index for the sweep.
    release_shard = UnicodeAttribute(null=True)
    release_at = UnicodeAttribute(null=True)
    doc = MapAttribute()
    version = VersionAttribute()

    by_buyer = _gsi("by_buyer", "buyer_id", "created_at")()
    by_seller = _gsi("by_seller", "seller_id", "created_at")()
    due_for_release = _gsi("due_for_release", "release_shard", "release_at")()


class DisputeModel(Model):
    class Meta:
        table_name = "disputes"
        billing_mode = "PAY_PER_REQUEST"

    dispute_id = UnicodeAttribute(hash_key=True)
    order_id = UnicodeAttribute()
    buyer_id = UnicodeAttribute()
    seller_id = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    # Set only while ESCALATED: the moderation queue is a sparse index, oldest escalation first.
    moderation_queue = UnicodeAttribute(null=True)
    escalated_at = UnicodeAttribute(null=True)
    doc = MapAttribute()
    version = VersionAttribute()

    by_buyer = _gsi("by_buyer", "buyer_id", "created_at")()
    by_seller = _gsi("by_seller", "seller_id", "created_at")()
    escalated = _gsi("escalated", "moderation_queue", "escalated_at")()


class MessageModel(Model):
    class Meta:
        table_name = "messages"
        billing_mode = "PAY_PER_REQUEST"

    dispute_id = UnicodeAttribute(hash_key=True)
    message_key = UnicodeAttribute(range_key=True)
    message_id = UnicodeAttribute()
    author_id = UnicodeAttribute()
    author_role = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()


class OutboxModel(Model):
    """Pending work for the outside world; see ports.OutboxRecord. Deleted once done."""

    class Meta:
        table_name = "outbox"
        billing_mode = "PAY_PER_REQUEST"

    outbox_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    payload = MapAttribute()
    created_at = UnicodeAttribute()
    shard = UnicodeAttribute()

    pending = _gsi("pending", "shard", "created_at")()


class EvidenceModel(Model):
    """One upload slot and what became of it. The party's quota counters live in the same
    table (range key ``#quota#<role>``, see EvidenceQuotaModel); evidence ids sort after them."""

    class Meta:
        table_name = "evidence"
        billing_mode = "PAY_PER_REQUEST"

    dispute_id = UnicodeAttribute(hash_key=True)
    evidence_id = UnicodeAttribute(range_key=True)
    status = UnicodeAttribute(null=True)
    doc = MapAttribute(null=True)
    # Set only while an upload is awaited: a sparse index for the sweep that expires slots.
    pending_shard = UnicodeAttribute(null=True)
    expires_at = UnicodeAttribute(null=True)

    awaiting_upload = _gsi("awaiting_upload", "pending_shard", "expires_at")()


class EvidenceQuotaModel(Model):
    """How many of a party's places in a dispute are taken (same table as the evidence)."""

    class Meta:
        table_name = "evidence"

    dispute_id = UnicodeAttribute(hash_key=True)
    evidence_id = UnicodeAttribute(range_key=True)
    used = NumberAttribute(default=0)  # places taken now (pending, processing, accepted)
    created = NumberAttribute(default=0)  # slots ever asked for: rejected ones free a place, not this


MODELS: tuple[type[Model], ...] = (OrderModel, DisputeModel, MessageModel, OutboxModel, EvidenceModel)
EVIDENCE_SHARDS = 4
OUTBOX_SHARDS = 8


def bind_models(tables: dict[str, str], region: str) -> None:
    """Point the models at this stage's tables; called once by bootstrap, never at import."""
    for model in (*MODELS, EvidenceQuotaModel):
        name = tables[EvidenceModel.__name__ if model is EvidenceQuotaModel else model.__name__]
        if (model.Meta.table_name, getattr(model.Meta, "region", None)) != (name, region):
            model.Meta.table_name = name
            model.Meta.region = region
            model._connection = None  # PynamoDB caches a connection per model class


def create_tables(wait: bool = False) -> None:
    """Create every table (local runs and tests; the deployed stack comes from infra/)."""
    for model in MODELS:
        if not model.exists():
            model.create_table(wait=wait, billing_mode="PAY_PER_REQUEST")


def _is_condition_failure(exc: Exception) -> bool:
    if isinstance(exc, TransactWriteError):
        return any(r is not None and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons)
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def _shard(key: str, shards: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % shards


def _outbox_model(record: OutboxRecord) -> OutboxModel:
    return OutboxModel(record.outbox_id, kind=record.kind, payload=record.payload, created_at=fmt(record.created_at),
                       shard=f"P#{_shard(record.outbox_id, OUTBOX_SHARDS)}")


def _require_open(tx: TransactWrite, dispute_id: str) -> None:
    """Part of a transaction: the dispute is still open when the write commits (a message or a
    file cannot slip in after the dispute closed)."""
    tx.condition_check(DisputeModel, dispute_id, condition=DisputeModel.status.is_in(*OPEN_STATUSES))


def _closed() -> Conflict:
    return Conflict("the dispute is closed", code="DISPUTE_CLOSED")


def _connection() -> Connection:
    """The (cached) low-level connection of the models, reused for transactions: a new one per
    transaction would build a new botocore client, and load its service model, every time."""
    return DisputeModel._get_connection().connection


def _version(version: int | None) -> dict[str, int]:
    """PynamoDB refuses version=None; leaving it out makes the write conditional on a new item."""
    return {} if version is None else {"version": version}


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None, expected_keys: Iterable[str]) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(key, dict) or set(key) != set(expected_keys):
            raise ValueError(cursor)
        for value in key.values():
            if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
                raise ValueError(cursor)
        return key
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc


class DynamoRepository:
    """The Repository port over the PynamoDB models."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # ---- orders ---------------------------------------------------------------------------
    def _release_fields(self, order: Order) -> tuple[str | None, str | None]:
        release_at = order.release_at(self.policy)
        if release_at is None:
            return None, None
        return f"HELD#{_shard(order.order_id, RELEASE_SHARDS)}", fmt(release_at)

    def _order_update(self, order: Order) -> tuple[OrderModel, list[Any]]:
        """The versioned update that stores ``order`` (its registration fingerprint untouched)."""
        shard, release_at = self._release_fields(order)
        actions = [OrderModel.doc.set(order.to_dict())]
        if shard:
            actions += [OrderModel.release_shard.set(shard), OrderModel.release_at.set(release_at)]
        else:
            actions += [OrderModel.release_shard.remove(), OrderModel.release_at.remove()]
        return OrderModel(order.order_id, **_version(order.version)), actions

    @staticmethod
    def _order_from(m: OrderModel) -> Order:
        return Order.from_dict(m.doc.as_dict(), m.version)

    def get_order(self, order_id: str) -> Order | None:
        m = self._get(OrderModel, order_id)
        return None if m is None else self._order_from(m)

    def order_fingerprint(self, order_id: str) -> str | None:
        m = self._get(OrderModel, order_id)
        return None if m is None else m.fingerprint

    def add_order(self, order: Order, fingerprint: str) -> Order:
        shard, release_at = self._release_fields(order)
        m = OrderModel(order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id,
                       created_at=fmt(order.created_at), fingerprint=fingerprint, release_shard=shard,
                       release_at=release_at, doc=order.to_dict())
        try:
            m.save()  # version is None: PynamoDB conditions the put on the item not existing
        except PutError as exc:
            if _is_condition_failure(exc):
                raise OrderExists(order.order_id) from exc
            raise
        return self._order_from(m)

    def save_order(self, order: Order) -> Order:
        m, actions = self._order_update(order)
        try:
            m.update(actions=actions)
        except UpdateError as exc:
            if _is_condition_failure(exc):
                raise ConcurrentModification("the order changed meanwhile") from exc
            raise
        return self._order_from(m)

    # ---- disputes -------------------------------------------------------------------------
    def _dispute_model(self, d: Dispute) -> DisputeModel:
        escalated = d.status is Status.ESCALATED
        return DisputeModel(
            d.dispute_id, order_id=d.order_id, buyer_id=d.buyer_id, seller_id=d.seller_id, status=d.status.value,
            created_at=fmt(d.created_at),
            moderation_queue="ESCALATED" if escalated else None,
            escalated_at=fmt(d.escalated_at) if escalated else None,
            doc=d.to_dict(), **_version(d.version),
        )

    @staticmethod
    def _dispute_from(m: DisputeModel) -> Dispute:
        return Dispute.from_dict(m.doc.as_dict(), m.version)

    def get_dispute(self, dispute_id: str) -> Dispute | None:
        m = self._get(DisputeModel, dispute_id)
        return None if m is None else self._dispute_from(m)

    def save_dispute(self, dispute: Dispute, order: Order | None = None,
                     outbox: Iterable[OutboxRecord] = ()) -> tuple[Dispute, Order | None]:
        dm = self._dispute_model(dispute)
        records = list(outbox)
        try:
            if order is None and not records:
                dm.save()
                return Dispute.from_dict(dispute.to_dict(), (dispute.version or 0) + 1), None
            # All or nothing: the dispute, the escrow of its order, and the work it leaves for the
            # outside world (timers, events) commit together.
            with TransactWrite(connection=_connection()) as tx:
                tx.save(dm)
                if order is not None:
                    om, actions = self._order_update(order)
                    tx.update(om, actions=actions)
                for record in records:
                    tx.save(_outbox_model(record), condition=OutboxModel.outbox_id.does_not_exist())
        except (PutError, TransactWriteError) as exc:
            if _is_condition_failure(exc):
                raise ConcurrentModification("the dispute or its order changed meanwhile") from exc
            raise
        saved = Dispute.from_dict(dispute.to_dict(), (dispute.version or 0) + 1)
        return saved, None if order is None else replace(order, version=(order.version or 0) + 1)

    def _query_page(self, index: Any, hash_value: str, key_names: tuple[str, ...], limit: int,
                    cursor: str | None, forward: bool, **kwargs: Any) -> tuple[list[Any], str | None]:
        start = _decode_cursor(cursor, key_names)
        result = index.query(hash_value, limit=limit, last_evaluated_key=start, scan_index_forward=forward,
                             **kwargs)
        try:
            models = list(result)
        except Exception as exc:  # noqa: BLE001 - a forged cursor is DynamoDB's ValidationException
            if getattr(exc, "cause_response_code", None) == "ValidationException":
                raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc
            raise
        more = len(models) == limit and result.last_evaluated_key
        return models, _encode_cursor(result.last_evaluated_key) if more else None

    def list_orders(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page:
        index = OrderModel.by_buyer if role == "buyer" else OrderModel.by_seller
        models, nxt = self._query_page(index, party_id, ("order_id", f"{role}_id", "created_at"), limit, cursor,
                                       forward=False)
        return [self._order_from(m) for m in models], nxt

    def list_disputes(self, role: str, party_id: str, status: str | None, limit: int,
                      cursor: str | None) -> Page:
        index = DisputeModel.by_buyer if role == "buyer" else DisputeModel.by_seller
        extra = {"filter_condition": DisputeModel.status == status} if status else {}
        models, nxt = self._query_page(index, party_id, ("dispute_id", f"{role}_id", "created_at"), limit,
                                       cursor, forward=False, **extra)
        return [self._dispute_from(m) for m in models], nxt

    def escalated_disputes(self, escalated_before: datetime | None, limit: int, cursor: str | None) -> Page:
        extra = {"range_key_condition": DisputeModel.escalated_at <= fmt(escalated_before)} \
            if escalated_before else {}
        models, nxt = self._query_page(DisputeModel.escalated, "ESCALATED",
                                       ("dispute_id", "moderation_queue", "escalated_at"), limit, cursor,
                                       forward=True, **extra)
        return [self._dispute_from(m) for m in models], nxt

    # ---- messages -------------------------------------------------------------------------
    def add_message(self, message: Message, outbox: Iterable[OutboxRecord] = ()) -> None:
        try:
            with TransactWrite(connection=_connection()) as tx:
                _require_open(tx, message.dispute_id)
                tx.save(MessageModel(message.dispute_id, message.sort_key, message_id=message.message_id,
                                     author_id=message.author_id, author_role=message.author_role, body=message.body,
                                     created_at=fmt(message.created_at)))
                for record in outbox:
                    tx.save(_outbox_model(record))
        except TransactWriteError as exc:
            if _is_condition_failure(exc):
                raise _closed() from exc
            raise

    def list_messages(self, dispute_id: str, limit: int, cursor: str | None) -> Page:
        models, nxt = self._query_page(MessageModel, dispute_id, ("dispute_id", "message_key"), limit, cursor,
                                       forward=True)
        return [Message.from_dict({**m.attribute_values}) for m in models], nxt

    # ---- escrow ---------------------------------------------------------------------------
    def orders_due_for_release(self, now: datetime, limit: int) -> list[Order]:
        out: list[Order] = []
        for shard in range(RELEASE_SHARDS):
            for m in OrderModel.due_for_release.query(f"HELD#{shard}", OrderModel.release_at <= fmt(now),
                                                      limit=limit):
                out.append(self._order_from(m))
        return sorted(out, key=lambda o: o.release_at(self.policy) or now)[:limit]

    # ---- outbox ---------------------------------------------------------------------------
    def pending_outbox(self, created_before: datetime, limit: int) -> list[OutboxRecord]:
        out: list[OutboxRecord] = []
        for shard in range(OUTBOX_SHARDS):
            for m in OutboxModel.pending.query(f"P#{shard}", OutboxModel.created_at <= fmt(created_before),
                                               limit=limit):
                out.append(OutboxRecord(m.outbox_id, m.kind, m.payload.as_dict(), parse(m.created_at)))
        return sorted(out, key=lambda r: r.created_at)[:limit]

    def delete_outbox(self, outbox_id: str) -> None:
        OutboxModel(outbox_id).delete()

    def requeue_outbox(self, record: OutboxRecord, at: datetime) -> None:
        try:
            OutboxModel(record.outbox_id).update(actions=[OutboxModel.created_at.set(fmt(at))],
                                                 condition=OutboxModel.outbox_id.exists())
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise  # else: delivered and deleted meanwhile

    # ---- evidence -------------------------------------------------------------------------
    @staticmethod
    def _evidence_model(e: Evidence) -> EvidenceModel:
        pending = e.status == PENDING_UPLOAD
        return EvidenceModel(e.dispute_id, e.evidence_id, status=e.status, doc=e.to_dict(),
                             pending_shard=f"E#{_shard(e.evidence_id, EVIDENCE_SHARDS)}" if pending else None,
                             expires_at=fmt(e.expires_at) if pending else None)

    def add_evidence(self, evidence: Evidence, max_per_party: int) -> None:
        quota = EvidenceQuotaModel(evidence.dispute_id, f"#quota#{evidence.uploaded_by}")
        quota_ok = ((EvidenceQuotaModel.used.does_not_exist() | (EvidenceQuotaModel.used < max_per_party))
                    & (EvidenceQuotaModel.created.does_not_exist()
                       | (EvidenceQuotaModel.created < max_per_party * SLOTS_PER_PLACE)))
        try:
            with TransactWrite(connection=_connection()) as tx:
                _require_open(tx, evidence.dispute_id)
                # The quota is the lock: two slots asked for at once cannot both take the tenth place.
                tx.update(quota, actions=[EvidenceQuotaModel.used.add(1), EvidenceQuotaModel.created.add(1)],
                          condition=quota_ok)
                tx.save(self._evidence_model(evidence), condition=EvidenceModel.evidence_id.does_not_exist())
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons or []
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                raise _closed() from exc
            if _is_condition_failure(exc):
                raise RuleViolation(f"at most {max_per_party} files per party", code="EVIDENCE_LIMIT_REACHED",
                                    details={"limit": max_per_party}) from exc
            raise

    def get_evidence(self, dispute_id: str, evidence_id: str) -> Evidence | None:
        try:
            m = EvidenceModel.get(dispute_id, evidence_id, consistent_read=True)
        except EvidenceModel.DoesNotExist:
            return None
        return Evidence.from_dict(m.doc.as_dict()) if m.doc else None

    def list_evidence(self, dispute_id: str) -> list[Evidence]:
        # Evidence ids are UUIDs ("0"-"f"); quota counters ("#quota#...") sort before them.
        return [Evidence.from_dict(m.doc.as_dict())
                for m in EvidenceModel.query(dispute_id, EvidenceModel.evidence_id >= "0", consistent_read=True)]

    def update_evidence(self, evidence: Evidence, from_statuses: Iterable[str],
                        outbox: Iterable[OutboxRecord] = ()) -> None:
        """Move a slot on, only from one of ``from_statuses``: of two processors of one upload,
        one wins. Leaving the counted statuses gives the party's place back."""
        previous = list(from_statuses)
        condition = EvidenceModel.status.is_in(*previous)
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(self._evidence_model(evidence), condition=condition)
                if evidence.status not in COUNTED and all(s in COUNTED for s in previous):
                    tx.update(EvidenceQuotaModel(evidence.dispute_id, f"#quota#{evidence.uploaded_by}"),
                              actions=[EvidenceQuotaModel.used.add(-1)])
                for record in outbox:
                    tx.save(_outbox_model(record))
        except TransactWriteError as exc:
            if _is_condition_failure(exc):
                raise ConcurrentModification("the evidence was processed meanwhile") from exc
            raise

    def expired_uploads(self, now: datetime, limit: int) -> list[Evidence]:
        out: list[Evidence] = []
        for shard in range(EVIDENCE_SHARDS):
            for m in EvidenceModel.awaiting_upload.query(f"E#{shard}", EvidenceModel.expires_at < fmt(now),
                                                         limit=limit):
                out.append(Evidence.from_dict(m.doc.as_dict()))
        return out[:limit]

    @staticmethod
    def _get(model: type[Model], key: str) -> Any:
        try:
            return model.get(key, consistent_read=True)
        except model.DoesNotExist:
            return None


class IdempotencyRecordModel(Model):
    """The Powertools idempotency table's key schema (Powertools reads and writes the items)."""

    class Meta:
        table_name = "idempotency"
        billing_mode = "PAY_PER_REQUEST"

    id = UnicodeAttribute(hash_key=True)
    expiration = NumberAttribute(null=True)  # the TTL attribute


def create_idempotency_table(table_name: str) -> None:
    IdempotencyRecordModel.Meta.table_name = table_name
    IdempotencyRecordModel.Meta.region = OrderModel.Meta.region
    IdempotencyRecordModel._connection = None
    if not IdempotencyRecordModel.exists():
        IdempotencyRecordModel.create_table(billing_mode="PAY_PER_REQUEST")
