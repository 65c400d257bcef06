"""One repository per aggregate over the PynamoDB models. Reads go to the table at once; writes
are staged on the unit of work (see unit_of_work.py) and happen at its commit."""
from __future__ import annotations

import builtins
import itertools
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from ...domain.disputes import TERMINAL, Dispute, QueueFilter, Status, case_claimed
from ...domain.errors import ConcurrentModification, Conflict, RuleViolation
from ...domain.evidence import ACCEPTED, COUNTED, SLOTS_PER_PLACE, Evidence
from ...domain.messages import Message
from ...domain.notes import Note
from ...domain.orders import Order
from ...domain.policy import Policy
from ...domain.rules import CASES, REPORT_COUNTS, Rule, case_key, rule_key, version_bucket
from ...domain.standing import LEVEL_KEY, Bucket, Fact, Level, merge, reversal, seller_key
from ...domain.timefmt import fmt
from ...ports import Changes, OrderExists, OutboxRecord, Page
from . import mapping
from .models import (
    EVIDENCE_SHARDS,
    OUTBOX_SHARDS,
    RELEASE_SHARDS,
    DisputeCounterModel,
    DisputeModel,
    EvidenceQuotaModel,
    Tables,
)
from .pagination import query_page, query_shards
from .transactions import Write

_M = TypeVar("_M", bound=Model)
# BatchGetItem: at most 100 keys a request; unprocessed keys asked for again at most 4 more times,
# after pauses drawn up to 0.05 s, 0.1 s, 0.2 s, 0.4 s (then key by key).
BATCH_GET_KEYS = 100
BATCH_GET_ROUNDS = 5
BATCH_GET_PAUSE = 0.025
OPEN_STATUSES = tuple(status.value for status in Status if status not in TERMINAL)


def _get(model: type[_M], hash_key: str, range_key: str | None = None) -> _M | None:
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except model.DoesNotExist:
        return None


def _batch_get_page(model: type[_M], keys: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One BatchGetItem request: the raw items, and the keys DynamoDB left unprocessed. PynamoDB's
    one-request step (``Model._batch_get_page``; tests/integration/test_repository_contract.py
    fails if it is renamed)."""
    page: Callable[..., tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]] = model._batch_get_page
    items, unprocessed = page(keys, consistent_read=True, attributes_to_get=None)
    return items or [], unprocessed or []


def _stale(what: str) -> ConcurrentModification:
    return ConcurrentModification(f"the {what} changed meanwhile")


def _closed() -> Conflict:
    return Conflict("the dispute is closed", code="DISPUTE_CLOSED")


class _Repo:
    def __init__(self, tables: Tables, changes: Changes, policy: Policy) -> None:
        self.t = tables
        self.changes = changes
        self.policy = policy

    def _dispute_open(self, dispute_id: str, claimant: str | None = None) -> Write:
        """Part of a transaction: the dispute is still open when the write commits (a message or a
        file cannot slip in after the dispute closed); with ``claimant``, no other moderator's
        claim holds either."""
        m = self.t.disputes
        condition = m.status.is_in(*OPEN_STATUSES)
        if claimant is None:
            return Write("check", m, _closed, key=(dispute_id,), condition=condition)
        now = self.changes.now()
        return Write("check", m, self._claim_refusal(dispute_id, claimant, now, _closed), key=(dispute_id,),
                     condition=condition & _free_for(m, claimant, now))

    def _claim_refusal(self, dispute_id: str, moderator_id: str, now: datetime,
                       otherwise: Callable[[], Exception]) -> Callable[[], Exception]:
        """What a refused claim-conditioned write means: CASE_CLAIMED when another moderator's
        claim holds now (read again: the condition does not say which part failed), else ``otherwise``."""
        def refused() -> Exception:
            item = _get(self.t.disputes, dispute_id)
            current = None if item is None else mapping.dispute_from(item)
            held = None if current is None else current.holder(now)
            if held is not None and held.moderator_id != moderator_id:
                return case_claimed(held)
            return otherwise()
        return refused


def _free_for(model: type[DisputeModel] | type[DisputeCounterModel], moderator_id: str, now: datetime) -> Condition:
    """No claim but ``moderator_id``'s holds at ``now`` (Dispute.require_not_held_by_other)."""
    free: Condition = (model.claim_moderator.does_not_exist() | (model.claim_moderator == moderator_id)
                       | (model.claim_expires_at <= fmt(now)))
    return free


def _queue_condition(m: type[DisputeModel], which: QueueFilter, now: datetime) -> Condition | None:
    """QueueFilter.matches as a filter on the queue index (every item in it is ESCALATED)."""
    at = fmt(now)
    held = m.claim_moderator.exists() & (m.claim_expires_at > at)
    me = which.moderator_id
    parts = []
    if which.assigned == "none":
        parts.append(m.claim_moderator.does_not_exist() | (m.claim_expires_at <= at))
    elif which.assigned == "me":
        parts.append(held & (m.claim_moderator == me))
    elif which.assigned == "others":
        parts.append(held & (m.claim_moderator != me))
    # Dispute.is_overdue: flagged, or its mediation target (phase_due_at) passed.
    flagged, passed = m.doc["mediation_overdue"] == True, m.doc["phase_due_at"] <= at  # noqa: E712
    if which.overdue is True:
        parts.append(flagged | passed)
    elif which.overdue is False:
        parts.append(~flagged & ~passed)
    if which.reason is not None:
        parts.append(m.doc["reason"] == which.reason)
    if which.not_party_of is not None:
        parts.append((m.buyer_id != which.not_party_of) & (m.seller_id != which.not_party_of))
    condition: Condition | None = None
    for part in parts:
        condition = part if condition is None else condition & part
    return condition


class DynamoOrders(_Repo):
    def get(self, order_id: str) -> Order | None:
        item = _get(self.t.orders, order_id)
        return None if item is None else mapping.order_from(item)

    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        """One BatchGetItem per 100 keys. What DynamoDB leaves unprocessed (throttling) is asked for
        again after an exponential, jittered pause, a few times (PynamoDB's own ``batch_get`` asks
        again at once, without end); what is still left is read key by key."""
        model, ids = self.t.orders, list(dict.fromkeys(order_ids))
        found: dict[str, Order] = {}
        for start in range(0, len(ids), BATCH_GET_KEYS):
            keys = [{"order_id": {"S": i}} for i in ids[start:start + BATCH_GET_KEYS]]
            for attempt in range(BATCH_GET_ROUNDS):
                if attempt:
                    time.sleep(random.uniform(0, BATCH_GET_PAUSE * 2 ** attempt))
                items, keys = _batch_get_page(model, keys)
                for raw in items:
                    order = mapping.order_from(model.from_raw_data(raw))
                    found[order.order_id] = order
                if not keys:
                    break
            for key in keys:
                item = _get(model, key["order_id"]["S"])
                if item is not None:
                    order = mapping.order_from(item)
                    found[order.order_id] = order
        return found

    def fingerprint(self, order_id: str) -> str | None:
        item = _get(self.t.orders, order_id)
        return None if item is None else str(item.fingerprint)

    def add(self, order: Order, fingerprint: str) -> Order:
        # version is None: PynamoDB conditions the put on the item not existing
        self.changes.stage(Write("put", mapping.new_order_item(self.t, order, fingerprint, self.policy),
                                 lambda: OrderExists(order.order_id)))
        return self.changes.saw_order(replace(order, version=None), registered=True)

    def save(self, order: Order) -> Order:
        item, actions = mapping.order_update(self.t, order, self.policy)
        self.changes.stage(Write("update", item, lambda: _stale("order"), actions=actions))
        return self.changes.saw_order(order)

    def list_for(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page[Order]:
        index = self.t.orders.by_buyer if role == "buyer" else self.t.orders.by_seller
        items, nxt = query_page(index, party_id, ("order_id", f"{role}_id", "created_at"), limit, cursor, forward=False)
        return [mapping.order_from(i) for i in items], nxt

    def needing_attention(self, limit: int, cursor: str | None) -> Page[Order]:
        m = self.t.orders
        items, nxt = query_page(m.needing_attention, "REFUNDS", ("order_id", "attention_queue", "attention_since"),
                                limit, cursor, forward=True)
        return [mapping.order_from(i) for i in items], nxt

    def due_for_release(self, now: datetime, limit: int, cursor: str | None = None) -> Page[Order]:
        # The cursor is (shard, DynamoDB's LastEvaluatedKey in it): the sweep reads each shard once,
        # page after page, never from its start again (4.55 items read per release at 1,000 due of
        # 10,000 when every pass re-read every shard; 1.0 now).
        shard, start = json.loads(cursor) if cursor else (0, None)
        m = self.t.orders
        result = m.due_for_release.query(f"HELD#{shard}", m.release_at <= fmt(now), limit=limit,
                                         last_evaluated_key=start)
        items = [mapping.order_from(i) for i in result]
        if len(items) == limit and result.last_evaluated_key:
            return items, json.dumps([shard, result.last_evaluated_key])
        return items, json.dumps([shard + 1, None]) if shard + 1 < RELEASE_SHARDS else None


class DynamoDisputes(_Repo):
    def get(self, dispute_id: str) -> Dispute | None:
        item = _get(self.t.disputes, dispute_id)
        return None if item is None else mapping.dispute_from(item)

    def save(self, dispute: Dispute, claimant: str | None = None) -> Dispute:
        item, actions = mapping.dispute_update(self.t, dispute)
        if claimant is None:
            self.changes.stage(Write("update", item, lambda: _stale("dispute"), actions=actions))
        else:
            now = self.changes.now()
            self.changes.stage(Write("update", item, self._claim_refusal(dispute.dispute_id, claimant, now,
                                                                     lambda: _stale("dispute")),
                                 actions=actions, condition=_free_for(self.t.disputes, claimant, now)))
        dispute.version = (dispute.version or 0) + 1
        return self.changes.saw_dispute(dispute)

    def list_for(self, role: str, party_id: str, status: str | None, limit: int, cursor: str | None) -> Page[Dispute]:
        m = self.t.disputes
        index = m.by_buyer if role == "buyer" else m.by_seller
        items, nxt = query_page(index, party_id, ("dispute_id", f"{role}_id", "created_at"), limit, cursor,
                                forward=False, filter_condition=(m.status == status) if status else None)
        return [mapping.dispute_from(i) for i in items], nxt

    def escalated(self, which: QueueFilter, now: datetime, limit: int, cursor: str | None) -> Page[Dispute]:
        m = self.t.disputes
        items, nxt = query_page(m.escalated, "ESCALATED", ("dispute_id", "moderation_queue", "escalated_at"), limit,
                                cursor, forward=True, filter_condition=_queue_condition(m, which, now))
        return [mapping.dispute_from(i) for i in items], nxt

    def claim(self, dispute: Dispute, now: datetime) -> None:
        a = dispute.assignment
        assert a is not None, "Dispute.claim sets the assignment"
        c = self.t.dispute_counters

        def not_escalated() -> Exception:
            return Conflict("only an escalated case can be claimed", code="INVALID_STATE")

        self.changes.stage(Write(
            "update", c(dispute.dispute_id), self._claim_refusal(dispute.dispute_id, a.moderator_id, now, not_escalated),
            actions=[c.claim_moderator.set(a.moderator_id), c.claimed_at.set(fmt(a.claimed_at)),
                     c.claim_expires_at.set(fmt(a.expires_at))],
            condition=(c.status == Status.ESCALATED.value) & _free_for(c, a.moderator_id, now)))

    def release(self, dispute: Dispute, moderator_id: str) -> None:
        c = self.t.dispute_counters
        now = self.changes.now()
        self.changes.stage(Write(
            "update", c(dispute.dispute_id), self._claim_refusal(dispute.dispute_id, moderator_id, now,
                                                                 lambda: _stale("claim")),
            actions=[c.claim_moderator.remove(), c.claimed_at.remove(), c.claim_expires_at.remove()],
            condition=c.claim_moderator == moderator_id))


class DynamoMessages(_Repo):
    def add(self, message: Message, claimant: str | None = None) -> None:
        self.changes.stage(self._dispute_open(message.dispute_id, claimant))
        self.changes.stage(Write("put", mapping.message_item(self.t, message), lambda: _stale("message")))

    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Message]:
        items, nxt = query_page(self.t.messages, dispute_id, ("dispute_id", "message_key"), limit, cursor, forward=True)
        return [mapping.message_from(i) for i in items], nxt


class DynamoNotes(_Repo):
    def add(self, note: Note) -> None:
        self.changes.stage(Write("put", mapping.note_item(self.t, note), lambda: _stale("note"),
                             condition=self.t.notes.note_key.does_not_exist()))

    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Note]:
        items, nxt = query_page(self.t.notes, dispute_id, ("dispute_id", "note_key"), limit, cursor, forward=True)
        return [mapping.note_from(i) for i in items], nxt


class DynamoEvidence(_Repo):
    def get(self, dispute_id: str, evidence_id: str) -> Evidence | None:
        item = _get(self.t.evidence, dispute_id, evidence_id)
        return None if item is None or not item.doc else mapping.evidence_from(item)

    def list(self, dispute_id: str) -> list[Evidence]:
        # Evidence ids are UUIDs ("0"-"f"); quota counters ("#quota#...") sort before them.
        m = self.t.evidence
        return [mapping.evidence_from(i) for i in m.query(dispute_id, m.evidence_id >= "0", consistent_read=True)]

    def _quota(self, e: Evidence) -> EvidenceQuotaModel:
        return self.t.quota(e.dispute_id, f"#quota#{e.uploaded_by}")

    def _count_places(self, e: Evidence, used: int, created: int, only_open: bool = True) -> Write:
        """The party's quota counters on the dispute's item (Dispute.evidence_used/created)."""
        c = self.t.dispute_counters
        actions = [getattr(c, f"{e.uploaded_by}_evidence_used").add(used)]
        if created:
            actions.append(getattr(c, f"{e.uploaded_by}_evidence_created").add(created))
        return Write("update", c(e.dispute_id), _closed, actions=actions,
                     condition=self.t.disputes.status.is_in(*OPEN_STATUSES) if only_open else None)

    def add(self, evidence: Evidence, max_per_party: int) -> None:
        q = self.t.quota
        quota_ok = ((q.used.does_not_exist() | (q.used < max_per_party))
                    & (q.created.does_not_exist() | (q.created < max_per_party * SLOTS_PER_PLACE)))
        full = RuleViolation(f"at most {max_per_party} files per party", code="EVIDENCE_LIMIT_REACHED",
                             details={"limit": max_per_party})
        # The quota's copy on the dispute's item, whose condition is the open check (one write
        # per item in a transaction); staged first, so a closed dispute is said before a full quota.
        self.changes.stage(self._count_places(evidence, 1, 1))
        # The quota is the lock: two slots asked for at once cannot both take the tenth place.
        self.changes.stage(Write("update", self._quota(evidence), lambda: full, condition=quota_ok,
                             actions=[q.used.add(1), q.created.add(1)]))
        self.changes.stage(Write("put", mapping.evidence_item(self.t, evidence), lambda: _stale("evidence"),
                             condition=self.t.evidence.evidence_id.does_not_exist()))

    def save(self, evidence: Evidence, from_statuses: Iterable[str]) -> None:
        previous = list(from_statuses)
        if evidence.status == ACCEPTED and not evidence.satisfies_checklist:
            self.changes.stage(self._dispute_open(evidence.dispute_id))  # accepted into an open dispute only
        self.changes.stage(Write("put", mapping.evidence_item(self.t, evidence), lambda: _stale("evidence"),
                             condition=self.t.evidence.status.is_in(*previous)))
        if evidence.status not in COUNTED and all(s in COUNTED for s in previous):
            self.changes.stage(Write("update", self._quota(evidence), lambda: _stale("evidence quota"),
                                 actions=[self.t.quota.used.add(-1)]))
            self.changes.stage(self._count_places(evidence, -1, 0, only_open=False))
        if evidence.satisfies_checklist:
            # One write per item in a transaction: the counter's own condition is the open check.
            c = self.t.dispute_counters
            self.changes.stage(Write("update", c(evidence.dispute_id), _closed, actions=[c.buyer_visual_evidence.add(1)],
                                 condition=self.t.disputes.status.is_in(*OPEN_STATUSES)))

    def expired(self, now: datetime, limit: int) -> builtins.list[Evidence]:
        m = self.t.evidence
        items = query_shards(m.awaiting_upload, "E#", EVIDENCE_SHARDS, m.expires_at < fmt(now), limit)
        return [mapping.evidence_from(i) for i in items[:limit]]


RULES = "RULES"
MARKER = "F"


class DynamoModeration(_Repo):
    def buckets(self, party: str, first: str, last: str) -> builtins.list[Bucket]:
        m = self.t.moderation
        out = []
        for item in m.query(party, m.sk.between(first, last)):
            counts = {name: int(getattr(item, name)) for name in COUNTER_NAMES if getattr(item, name) is not None}
            out.append(Bucket(item.sk, counts, frozenset(item.members or ())))
        return out

    def publish_level(self, seller_id: str, was: str, level: str) -> None:
        m = self.t.moderation
        condition = m.members.contains(was) if was != Level.NOT_ENOUGH_DATA.value else \
            (m.members.does_not_exist() | m.members.contains(was))
        self.changes.stage(Write("update", m(seller_key(seller_id), LEVEL_KEY), lambda: _stale("level"),
                             actions=[m.members.set({level})], condition=condition))

    def record(self, facts: builtins.list[Fact]) -> None:
        m = self.t.moderation
        for f in facts:
            if f.marked:
                self.changes.stage(Write("put", m(f"F#{f.fact_id}", MARKER, doc=f.marker()),
                                     lambda: ConcurrentModification("a fact of this change was counted already"),
                                     condition=m.pk.does_not_exist()))
        for (party, bucket), merged in merge(facts).items():
            actions = [getattr(m, name).add(value) for name, value in merged.counts.items()]
            if merged.members:
                actions.append(m.members.add(set(merged.members)))
            self.changes.stage(Write("update", m(party, bucket), lambda: _stale("counters"), actions=actions))

    def reverse(self, fact_ids: builtins.list[str]) -> None:
        m = self.t.moderation
        for fact_id in fact_ids:
            marker = _get(m, f"F#{fact_id}", MARKER)
            if marker is None or marker.doc is None:
                continue
            self.changes.stage(Write("update", m(f"F#{fact_id}", MARKER),
                                 lambda: ConcurrentModification("this fact was subtracted already"),
                                 actions=[m.reversals.set(1)],
                                 condition=m.pk.exists() & m.reversals.does_not_exist()))
            for (party, bucket), merged in reversal(mapping.as_dict(marker.doc)).items():
                actions = [getattr(m, name).add(value) for name, value in merged.counts.items()]
                if merged.members:
                    actions.append(m.members.delete(set(merged.members)))
                self.changes.stage(Write("update", m(party, bucket), lambda: _stale("counters"), actions=actions))

    def rules(self) -> builtins.list[Rule]:
        m = self.t.moderation
        return [Rule.from_dict(mapping.as_dict(item.doc)) for item in m.query(RULES, consistent_read=True)]

    def rule(self, rule_id: str) -> Rule | None:
        item = _get(self.t.moderation, RULES, rule_id)
        return None if item is None else Rule.from_dict(mapping.as_dict(item.doc))

    def save_rule(self, rule: Rule, previous_version: int | None) -> None:
        m = self.t.moderation
        condition = m.pk.does_not_exist() if previous_version is None else m.rule_version == previous_version
        self.changes.stage(Write("put", m(RULES, rule.rule_id, rule_version=rule.version, doc=rule.to_dict()),
                             lambda: _stale("rule"), condition=condition))

    def report(self, rule_id: str, version: int) -> dict[str, int]:
        item = _get(self.t.moderation, rule_key(rule_id), version_bucket(version))
        return {name: int(getattr(item, name) or 0) if item is not None else 0 for name in REPORT_COUNTS}


    def stage_case(self, dispute_id: str, opened_at: datetime, opened: dict[str, Any] | None,
                   ended: dict[str, Any] | None) -> None:
        m = self.t.moderation
        key = (CASES, case_key(opened_at, dispute_id))
        if opened is not None:  # a new record (with its end, when a rule resolved it at once)
            self.changes.stage(Write("put", m(*key, doc=opened, ended=ended), lambda: _stale("case record"),
                                 condition=m.pk.does_not_exist()))
        elif ended is not None:  # an end: a dispute opened before records were kept gets an end alone
            self.changes.stage(Write("update", m(*key), lambda: _stale("case record"), actions=[m.ended.set(ended)]))

    def recent_cases(self, since: datetime, limit: int) -> builtins.list[tuple[dict[str, Any], dict[str, Any] | None]]:
        m = self.t.moderation
        items = m.query(CASES, m.sk >= fmt(since), scan_index_forward=False, limit=limit, page_size=limit)
        return [(mapping.as_dict(item.doc), mapping.as_dict(item.ended) if item.ended is not None else None)
                for item in itertools.islice(items, limit) if item.doc is not None]


COUNTER_NAMES = ("orders", "disputes", "defects", "disputes_opened", "won", "lost", "cancelled", "against",
                 *REPORT_COUNTS)


class DynamoOutbox:
    """The outbox table as the relay sees it."""

    def __init__(self, tables: Tables) -> None:
        self.t = tables

    def pending(self, created_before: datetime, limit: int) -> list[OutboxRecord]:
        m = self.t.outbox
        items = query_shards(m.pending, "P#", OUTBOX_SHARDS, m.created_at <= fmt(created_before), limit)
        return sorted(map(mapping.outbox_from, items), key=lambda r: r.created_at)[:limit]

    def delete(self, outbox_ids: Iterable[str]) -> None:
        # One BatchWriteItem per 25 records (PynamoDB retries what DynamoDB leaves unprocessed),
        # not one DeleteItem each: a decision's commit leaves up to a dozen records.
        with self.t.outbox.batch_write() as batch:
            for outbox_id in outbox_ids:
                batch.delete(self.t.outbox(outbox_id))

    def requeue(self, record: OutboxRecord, at: datetime) -> None:
        m = self.t.outbox
        try:
            m(record.outbox_id).update(actions=[m.created_at.set(fmt(at))], condition=m.outbox_id.exists())
        except Exception as exc:  # noqa: BLE001 - only "already gone" is expected here
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise  # else: delivered and deleted meanwhile

    def delete_refund(self, record: OutboxRecord) -> bool:
        # One DeleteItem, on condition that the record is gone already or owes this very attempt.
        m = self.t.outbox
        owes = m.kind == record.kind
        for key, value in record.payload.items():
            owes &= m.payload[key] == value
        try:
            m(record.outbox_id).delete(condition=m.outbox_id.does_not_exist() | owes)
        except Exception as exc:  # noqa: BLE001 - only "owes something else" is expected here
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            return False
        return True
