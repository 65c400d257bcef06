"""In-memory adapters: the fakes the service tests use, held to the same contract as DynamoDB
(tests/integration/test_repository_contract.py runs one suite against both)."""
from __future__ import annotations

import builtins
import copy
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..domain.disputes import Dispute, QueueFilter, Status
from ..domain.errors import ConcurrentModification, Conflict, InvalidInput, RuleViolation
from ..domain.evidence import ACCEPTED, COUNTED, Evidence, download_name, has_free_place
from ..domain.messages import Message
from ..domain.notes import Note
from ..domain.orders import Order
from ..domain.policy import Policy
from ..domain.rules import REPORT_COUNTS, Rule, case_key, rule_key, version_bucket
from ..domain.standing import LEVEL_KEY, Bucket, Fact, Level, merge, reversal, seller_key
from ..domain.timefmt import fmt
from ..domain.timers import TimerCommand
from ..ports import Changes, Clock, OrderExists, OutboxRecord, Page, T
from ..services.unit_of_work import Relay, UnitOfWork


def _page(items: list[T], limit: int, cursor: str | None) -> Page[T]:
    try:
        start = int(cursor) if cursor else 0
    except ValueError as exc:
        raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc
    chunk = items[start:start + limit]
    nxt = str(start + limit) if start + limit < len(items) else None
    return chunk, nxt


@dataclass
class InMemoryState:
    """What the tables would hold."""

    policy: Policy = field(default_factory=Policy)
    orders: dict[str, tuple[Order, str]] = field(default_factory=dict)
    disputes: dict[str, Dispute] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)
    notes: dict[str, list[Note]] = field(default_factory=dict)
    outbox: dict[str, OutboxRecord] = field(default_factory=dict)
    evidence: dict[tuple[str, str], Evidence] = field(default_factory=dict)
    # The moderation table: counters per (party, bucket), a marker per fact, the rules.
    counters: dict[tuple[str, str], tuple[dict[str, int], set[str]]] = field(default_factory=dict)
    markers: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    cases: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    reads: int = 0  # requests a real table would have served, for the query-count tests

    def count_places(self, evidence: Evidence, used: int, created: int = 0) -> None:
        """The party's quota as the dispute's item keeps it (see DynamoEvidence)."""
        d = self.disputes.get(evidence.dispute_id)
        if d is not None:
            role = evidence.uploaded_by
            d.evidence_used[role] = d.evidence_used.get(role, 0) + used
            d.evidence_created[role] = d.evidence_created.get(role, 0) + created

    def require_open(self, dispute_id: str) -> None:
        d = self.disputes.get(dispute_id)
        if d is None or not d.is_open:
            raise Conflict("the dispute is closed", code="DISPUTE_CLOSED")

    def require_unclaimed(self, dispute_id: str, claimant: str | None, now: datetime) -> None:
        """No other moderator's claim holds (what DynamoDB's claim condition says)."""
        d = self.disputes.get(dispute_id)
        if claimant is not None and d is not None:
            d.require_not_held_by_other(claimant, now)


@dataclass
class FakeWrite:
    check: Callable[[], None]
    apply: Callable[[], None]


class _Repo:
    def __init__(self, state: InMemoryState, changes: Changes) -> None:
        self.state = state
        self.changes = changes

    def _read(self) -> None:
        self.state.reads += 1


class InMemoryOrders(_Repo):
    def get(self, order_id: str) -> Order | None:
        self._read()
        entry = self.state.orders.get(order_id)
        return entry[0] if entry else None

    def get_many(self, order_ids: Iterable[str]) -> dict[str, Order]:
        self._read()
        return {i: self.state.orders[i][0] for i in order_ids if i in self.state.orders}

    def fingerprint(self, order_id: str) -> str | None:
        self._read()
        entry = self.state.orders.get(order_id)
        return entry[1] if entry else None

    def add(self, order: Order, fingerprint: str) -> Order:
        stored = self.changes.saw_order(replace(order, version=None), registered=True)

        def check() -> None:
            if order.order_id in self.state.orders:
                raise OrderExists(order.order_id)

        self.changes.stage(FakeWrite(check, lambda: self.state.orders.__setitem__(order.order_id, (stored, fingerprint))))
        return stored

    def save(self, order: Order) -> Order:
        stored = self.changes.saw_order(order)

        def check() -> None:
            current = self.state.orders.get(order.order_id)
            if current is None or current[0].version != order.version:
                raise ConcurrentModification("the order changed meanwhile")

        def apply() -> None:
            self.state.orders[order.order_id] = (stored, self.state.orders[order.order_id][1])

        self.changes.stage(FakeWrite(check, apply))
        return stored

    def list_for(self, role: str, party_id: str, limit: int, cursor: str | None) -> Page[Order]:
        self._read()
        mine = [o for o, _ in self.state.orders.values() if getattr(o, f"{role}_id") == party_id]
        mine.sort(key=lambda o: (o.created_at, o.order_id), reverse=True)
        return _page(mine, limit, cursor)

    def needing_attention(self, limit: int, cursor: str | None) -> Page[Order]:
        self._read()
        stuck = [o for o, _ in self.state.orders.values() if any(r.needs_attention for r in o.refunds)]
        stuck.sort(key=lambda o: (min(r.updated_at for r in o.refunds if r.needs_attention), o.order_id))
        return _page(stuck, limit, cursor)

    def due_for_release(self, now: datetime, limit: int, cursor: str | None = None) -> Page[Order]:
        policy = self.state.policy
        due = sorted((fmt(at), o.order_id, o) for o, _ in self.state.orders.values()
                     if (at := o.release_at(policy)) is not None and at <= now)
        after = tuple(json.loads(cursor)) if cursor else None
        page = [entry for entry in due if after is None or entry[:2] > after][:limit]
        more = len(page) == limit
        return [o for _, _, o in page], json.dumps(page[-1][:2]) if more else None


class InMemoryDisputes(_Repo):
    def get(self, dispute_id: str) -> Dispute | None:
        self._read()
        d = self.state.disputes.get(dispute_id)
        return None if d is None else copy.deepcopy(d)

    def save(self, dispute: Dispute, claimant: str | None = None) -> Dispute:
        expected, version = dispute.version, (dispute.version or 0) + 1
        dispute.version = version
        self.changes.saw_dispute(dispute)
        stored = copy.deepcopy(dispute)
        now = self.changes.now()

        def check() -> None:
            current = self.state.disputes.get(dispute.dispute_id)
            self.state.require_unclaimed(dispute.dispute_id, claimant, now)
            if (current.version if current else None) != expected:
                raise ConcurrentModification("the dispute changed meanwhile")

        def apply() -> None:
            current = self.state.disputes.get(dispute.dispute_id)
            # Like DynamoDB: a dispute write leaves the claim to the claim writes (ended when the
            # case leaves the queue), and the evidence counters to the evidence writes.
            keep = current is not None and stored.status is Status.ESCALATED
            stored.assignment = current.assignment if keep and current is not None else None
            stored.buyer_visual_evidence = current.buyer_visual_evidence if current else 0
            stored.evidence_used = dict(current.evidence_used) if current else {}
            stored.evidence_created = dict(current.evidence_created) if current else {}
            self.state.disputes[dispute.dispute_id] = stored

        self.changes.stage(FakeWrite(check, apply))
        dispute.version = version
        return dispute

    def list_for(self, role: str, party_id: str, status: str | None, limit: int, cursor: str | None) -> Page[Dispute]:
        self._read()
        mine = [copy.deepcopy(d) for d in self.state.disputes.values() if getattr(d, f"{role}_id") == party_id
                and (status is None or d.status.value == status)]
        mine.sort(key=lambda d: (d.created_at, d.dispute_id), reverse=True)
        return _page(mine, limit, cursor)

    def escalated(self, which: QueueFilter, now: datetime, limit: int, cursor: str | None) -> Page[Dispute]:
        self._read()
        queue = [copy.deepcopy(d) for d in self.state.disputes.values()
                 if d.escalated_at is not None and which.matches(d, now)]
        queue.sort(key=lambda d: (d.escalated_at or d.created_at, d.dispute_id))
        return _page(queue, limit, cursor)

    def claim(self, dispute: Dispute, now: datetime) -> None:
        assignment = dispute.assignment

        def check() -> None:
            current = self.state.disputes.get(dispute.dispute_id)
            if current is None or current.status is not Status.ESCALATED:
                raise Conflict("only an escalated case can be claimed", code="INVALID_STATE",
                               details={"status": current.status.value if current else None})
            if assignment is not None:
                current.require_not_held_by_other(assignment.moderator_id, now)

        def apply() -> None:
            self.state.disputes[dispute.dispute_id].assignment = assignment

        self.changes.stage(FakeWrite(check, apply))

    def release(self, dispute: Dispute, moderator_id: str) -> None:
        now = self.changes.now()

        def check() -> None:
            current = self.state.disputes.get(dispute.dispute_id)
            if current is not None:
                current.require_not_held_by_other(moderator_id, now)

        def apply() -> None:
            current = self.state.disputes[dispute.dispute_id]
            if current.assignment is not None and current.assignment.moderator_id == moderator_id:
                current.assignment = None

        self.changes.stage(FakeWrite(check, apply))


class InMemoryMessages(_Repo):
    def add(self, message: Message, claimant: str | None = None) -> None:
        now = self.changes.now()

        def check() -> None:
            self.state.require_open(message.dispute_id)
            self.state.require_unclaimed(message.dispute_id, claimant, now)

        self.changes.stage(FakeWrite(check, lambda: self.state.messages.setdefault(message.dispute_id, []).append(message)))

    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Message]:
        self._read()
        thread = sorted(self.state.messages.get(dispute_id, []), key=lambda m: m.sort_key)
        return _page(thread, limit, cursor)


class InMemoryNotes(_Repo):
    def add(self, note: Note) -> None:
        self.changes.stage(FakeWrite(lambda: None, lambda: self.state.notes.setdefault(note.dispute_id, []).append(note)))

    def list(self, dispute_id: str, limit: int, cursor: str | None) -> Page[Note]:
        self._read()
        return _page(sorted(self.state.notes.get(dispute_id, []), key=lambda n: n.sort_key), limit, cursor)


class InMemoryEvidence(_Repo):
    def get(self, dispute_id: str, evidence_id: str) -> Evidence | None:
        self._read()
        return self.state.evidence.get((dispute_id, evidence_id))

    def list(self, dispute_id: str) -> list[Evidence]:
        self._read()
        return sorted((e for e in self.state.evidence.values() if e.dispute_id == dispute_id),
                      key=lambda e: e.evidence_id)

    def add(self, evidence: Evidence, max_per_party: int) -> None:
        def check() -> None:
            self.state.require_open(evidence.dispute_id)
            mine = [e for e in self.state.evidence.values()
                    if e.dispute_id == evidence.dispute_id and e.uploaded_by == evidence.uploaded_by]
            used = sum(1 for e in mine if e.status in COUNTED)
            if not has_free_place(used, len(mine), max_per_party):
                raise RuleViolation(f"at most {max_per_party} files per party", code="EVIDENCE_LIMIT_REACHED",
                                    details={"limit": max_per_party})

        def apply() -> None:
            self.state.evidence[(evidence.dispute_id, evidence.evidence_id)] = evidence
            self.state.count_places(evidence, used=1, created=1)

        self.changes.stage(FakeWrite(check, apply))

    def save(self, evidence: Evidence, from_statuses: Iterable[str]) -> None:
        allowed = set(from_statuses)
        key = (evidence.dispute_id, evidence.evidence_id)

        def check() -> None:
            current = self.state.evidence.get(key)
            if current is None or current.status not in allowed:
                raise ConcurrentModification("the evidence was processed meanwhile")
            if evidence.status == ACCEPTED:
                self.state.require_open(evidence.dispute_id)

        def apply() -> None:
            previous = self.state.evidence[key]
            self.state.evidence[key] = evidence
            if previous.status in COUNTED and evidence.status not in COUNTED:
                self.state.count_places(evidence, used=-1)  # a rejected or expired file frees its place
            dispute = self.state.disputes.get(evidence.dispute_id)
            if evidence.satisfies_checklist and dispute is not None:
                dispute.buyer_visual_evidence += 1

        self.changes.stage(FakeWrite(check, apply))

    def expired(self, now: datetime, limit: int) -> builtins.list[Evidence]:
        return [e for e in self.state.evidence.values()
                if (due := e.attention_at) is not None and due < now][:limit]


class InMemoryModeration(_Repo):
    def buckets(self, party: str, first: str, last: str) -> builtins.list[Bucket]:
        self._read()
        return [Bucket(bucket, dict(counts), frozenset(members))
                for (p, bucket), (counts, members) in sorted(self.state.counters.items())
                if p == party and first <= bucket <= last]

    def publish_level(self, seller_id: str, was: str, level: str) -> None:
        key = (seller_key(seller_id), LEVEL_KEY)

        def check() -> None:
            members = self.state.counters.get(key, ({}, set()))[1]
            if (next(iter(members)) if members else Level.NOT_ENOUGH_DATA.value) != was:
                raise ConcurrentModification("the level was published meanwhile")

        self.changes.stage(FakeWrite(check, lambda: self.state.counters.__setitem__(key, ({}, {level}))))

    def record(self, facts: builtins.list[Fact]) -> None:
        marked = [f for f in facts if f.marked]

        def check() -> None:
            if any(f.fact_id in self.state.markers for f in marked):
                raise ConcurrentModification("a fact of this change was counted already")

        def apply() -> None:
            for f in marked:
                self.state.markers[f.fact_id] = f.marker()
            for key, m in merge(facts).items():
                counts, members = self.state.counters.setdefault(key, ({}, set()))
                for name, value in m.counts.items():
                    counts[name] = counts.get(name, 0) + value
                members.update(m.members)

        self.changes.stage(FakeWrite(check, apply))

    def reverse(self, fact_ids: builtins.list[str]) -> None:
        for fact_id in fact_ids:
            self._read()
            found = self.state.markers.get(fact_id)
            if found is None:
                continue
            marker = copy.deepcopy(found)

            def check(fact_id: str = fact_id) -> None:
                if self.state.markers.get(fact_id, {}).get("reversals"):
                    raise ConcurrentModification("this fact was subtracted already")

            def apply(fact_id: str = fact_id, marker: dict[str, Any] = marker) -> None:
                self.state.markers[fact_id] = {**self.state.markers[fact_id], "reversals": 1}
                for key, m in reversal(marker).items():
                    counts, members = self.state.counters.setdefault(key, ({}, set()))
                    for name, value in m.counts.items():
                        counts[name] = counts.get(name, 0) + value
                    members.difference_update(m.members)

            self.changes.stage(FakeWrite(check, apply))

    def rules(self) -> builtins.list[Rule]:
        self._read()
        return sorted(self.state.rules.values(), key=lambda r: r.rule_id)

    def rule(self, rule_id: str) -> Rule | None:
        self._read()
        return self.state.rules.get(rule_id)

    def save_rule(self, rule: Rule, previous_version: int | None) -> None:
        def check() -> None:
            current = self.state.rules.get(rule.rule_id)
            if (current.version if current else None) != previous_version:
                raise ConcurrentModification("the rule changed meanwhile")

        self.changes.stage(FakeWrite(check, lambda: self.state.rules.__setitem__(rule.rule_id, rule)))

    def report(self, rule_id: str, version: int) -> dict[str, int]:
        self._read()
        counts = self.state.counters.get((rule_key(rule_id), version_bucket(version)), ({}, set()))[0]
        return {name: counts.get(name, 0) for name in REPORT_COUNTS}


    def stage_case(self, dispute_id: str, opened_at: datetime, opened: dict[str, Any] | None,
                   ended: dict[str, Any] | None) -> None:
        key = case_key(opened_at, dispute_id)

        def check() -> None:
            if opened is not None and key in self.state.cases:
                raise ConcurrentModification("the case record changed meanwhile")

        def apply() -> None:
            was = self.state.cases.get(key, (None, None))
            self.state.cases[key] = (copy.deepcopy(opened) if opened is not None else was[0],
                                     copy.deepcopy(ended) if ended is not None else was[1])

        if opened is not None or ended is not None:
            self.changes.stage(FakeWrite(check, apply))

    def recent_cases(self, since: datetime, limit: int) -> builtins.list[tuple[dict[str, Any], dict[str, Any] | None]]:
        self._read()
        low = fmt(since) or ""
        keys = sorted((k for k in self.state.cases if k >= low), reverse=True)[:limit]
        return [(copy.deepcopy(opened), copy.deepcopy(ended)) for k in keys
                for opened, ended in [self.state.cases[k]] if opened is not None]


class InMemoryOutbox:
    def __init__(self, state: InMemoryState) -> None:
        self.state = state

    def pending(self, created_before: datetime, limit: int) -> list[OutboxRecord]:
        with self.state.lock:
            return sorted((r for r in self.state.outbox.values() if r.created_at <= created_before),
                          key=lambda r: r.created_at)[:limit]

    def delete(self, outbox_ids: Iterable[str]) -> None:
        with self.state.lock:
            for outbox_id in outbox_ids:
                self.state.outbox.pop(outbox_id, None)

    def requeue(self, record: OutboxRecord, at: datetime) -> None:
        with self.state.lock:
            stored = self.state.outbox.get(record.outbox_id)
            if stored is not None:  # like DynamoDB's UpdateItem: only the time changes
                self.state.outbox[record.outbox_id] = replace(stored, created_at=at)

    def delete_refund(self, record: OutboxRecord) -> bool:
        with self.state.lock:
            stored = self.state.outbox.get(record.outbox_id)
            if stored is not None and (stored.kind, stored.payload) != (record.kind, record.payload):
                return False
            self.state.outbox.pop(record.outbox_id, None)
            return True


class InMemoryRefundQueue:
    """The refund queue as a list: the unit tests run the worker when they choose (``take``)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail = False  # set: the queue refuses what is handed to it (an SQS outage)

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        if self.fail:
            raise RuntimeError("the refund queue is unreachable")
        self.messages += [dict(m) for m in messages]

    def take(self) -> list[dict[str, Any]]:
        taken, self.messages = self.messages, []
        return taken


class FakeUnitOfWork(UnitOfWork):
    """Checks every staged write, then applies them all: the atomicity of a transaction."""

    def __init__(self, state: InMemoryState, relay: Relay, clock: Clock) -> None:
        super().__init__(relay, clock, state.policy)
        self.state = state
        self.orders = InMemoryOrders(state, self.changes)
        self.disputes = InMemoryDisputes(state, self.changes)
        self.messages = InMemoryMessages(state, self.changes)
        self.notes = InMemoryNotes(state, self.changes)
        self.evidence = InMemoryEvidence(state, self.changes)
        self.moderation = InMemoryModeration(state, self.changes)

    def _write(self, staged: list[Any], outbox: list[OutboxRecord]) -> None:
        with self.state.lock:
            for write in staged:
                write.check()
            for write in staged:
                write.apply()
            self.state.outbox.update((r.outbox_id, r) for r in outbox)


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
        self.events: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.events.append((detail_type, detail))


class MemoryEvidenceStore:
    """The evidence bucket as a dict (service tests); links name the key they point at."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        return {"url": "memory://evidence", "fields": {"key": key, "Content-Type": content_type}}

    def size(self, key: str) -> int | None:
        entry = self.objects.get(key)
        return None if entry is None else len(entry[0])

    def read(self, key: str) -> bytes:
        return self.objects[key][0]

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = (data, content_type)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def download_url(self, key: str, file_name: str, expires_in: int, content_type: str, inline: bool) -> str:
        return f"memory://evidence/{key}?name={download_name(file_name, content_type)}&type={content_type}&inline={inline}"
