"""One unit of work per business transaction.

A use case loads aggregates through the repositories of a unit of work, changes them with the
domain's rules, stages their writes, and calls ``commit()`` once. The commit writes every staged
aggregate together with the outbox (the events and timer commands the change left for the outside
world) in one atomic write, then hands the outbox to the relay. That sequence exists here only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Protocol

from ..domain import standing as st
from ..domain.disputes import Dispute, Recorded, TimelineEntry, party_details
from ..domain.jsontypes import JSONObject
from ..domain.ledger import PayRefund
from ..domain.orders import Defect, DefectReversed, Order
from ..domain.policy import Policy
from ..domain.rules import ended_case, report_facts
from ..domain.timefmt import fmt
from ..domain.timers import TimerCommand
from ..metrics import count_committed
from ..ports import (
    Changes,
    Clock,
    DisputeRepository,
    EvidenceRepository,
    MessageRepository,
    ModerationRepository,
    NoteRepository,
    OrderRepository,
    OutboxKind,
    OutboxRecord,
    Seen,
)


class Relay(Protocol):
    def try_deliver(self, records: list[OutboxRecord]) -> int: ...


def event_detail(d: Dispute, entry: TimelineEntry, version: int) -> dict[str, Any]:
    """What subscribers (push notifications, analytics) get with every dispute event."""
    return _detail(d, fmt(entry.at), entry.actor.value, entry.details, version)


def _detail(d: Dispute, at: str | None, actor: str, details: JSONObject, version: int) -> dict[str, Any]:
    return {"dispute_id": d.dispute_id, "order_id": d.order_id, "buyer_id": d.buyer_id, "seller_id": d.seller_id,
            "status": d.status.value, "version": version, "at": at, "actor": actor,
            "details": party_details(details)}


class UnitOfWork(ABC):
    orders: OrderRepository
    disputes: DisputeRepository
    messages: MessageRepository
    notes: NoteRepository
    evidence: EvidenceRepository
    moderation: ModerationRepository

    def __init__(self, relay: Relay, clock: Clock, policy: Policy) -> None:
        self.relay = relay
        self.clock = clock
        self.policy = policy
        # The repositories stage their writes and the aggregates they saved here.
        self.changes = Changes(clock)
        self._outbox: list[OutboxRecord] = []
        self._facts: list[st.Fact] = []
        # Disputes' records for rule previews: dispute id -> [opened at, as it opened, its end].
        self._cases: dict[str, list[Any]] = {}
        self._reversals: list[tuple[str, str]] = []  # facts to subtract: (marker, seller id)

    def __enter__(self) -> UnitOfWork:
        self._reset()
        return self

    def __exit__(self, *exc: object) -> None:
        self._reset()  # whatever was not committed is dropped

    def _reset(self) -> None:
        self.changes.clear()
        self._outbox, self._facts, self._cases, self._reversals = [], [], {}, []

    # ---- what the saved aggregates recorded: one collect path -----------------------------
    def _collect(self, seen: Seen) -> None:
        """Move what an aggregate recorded (timers, money to send, events) into this unit's
        outbox, and the standing facts it makes true."""
        now = self.clock.now()
        aggregate = seen.aggregate
        if isinstance(aggregate, Order) and seen.registered:
            self.record(st.order_registered(aggregate.order_id, aggregate.buyer_id, aggregate.seller_id,
                                            aggregate.created_at))
        entries: list[TimelineEntry] = []
        for effect in aggregate.effects:
            if isinstance(effect, TimerCommand):
                self._outbox.append(OutboxRecord.timer(effect, now))
            elif isinstance(effect, PayRefund):
                self._outbox.append(OutboxRecord.refund(effect, now))
            elif isinstance(effect, Defect):
                self.record([st.defect(aggregate.order_id, aggregate.buyer_id, aggregate.seller_id,
                                       aggregate.created_at)])
            elif isinstance(effect, DefectReversed):
                self._reversals.append((st.defect(aggregate.order_id, aggregate.buyer_id, aggregate.seller_id,
                                                  aggregate.created_at).fact_id, aggregate.seller_id))
            elif isinstance(effect, Recorded):
                entries.append(effect.entry)
            else:
                self.publish(effect.detail_type, {**effect.details, "at": fmt(now)})
        if isinstance(aggregate, Dispute):
            d = aggregate
            self._outbox += [OutboxRecord.event(e.event, event_detail(d, e, d.version or 0), now) for e in entries]
            self.record(st.dispute_facts(d.dispute_id, d.order_id, d.buyer_id, d.seller_id,
                                         d.order_placed_at or d.created_at, entries))
            self.record(report_facts(d, entries))
            if any(e.event in ("dispute.resolved", "dispute.cancelled") for e in entries):
                self._cases.setdefault(d.dispute_id, [d.created_at, None, None])[2] = ended_case(d)

    def case_opened(self, dispute_id: str, opened_at: datetime, opened: dict[str, Any]) -> None:
        """A dispute's record for rule previews (rules.opened_case), written with this commit; its
        end, if it ends in the same change (an ACTIVE rule), goes in the same item."""
        self._cases.setdefault(dispute_id, [opened_at, None, None])[1] = opened

    def record(self, facts: list[st.Fact]) -> None:
        """Standing facts, written with this unit's commit (see ``_stage_facts``)."""
        self._facts += facts

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        """An event that is no transition (a message, a file, a payment), committed with the change."""
        self._outbox.append(OutboxRecord.event(detail_type, detail, self.clock.now()))

    def side_event(self, dispute: Dispute, actor: str, details: JSONObject) -> dict[str, Any]:
        """The detail of an event about a dispute that is no transition of it."""
        return _detail(dispute, fmt(self.clock.now()), actor, details, dispute.version or 0)

    # ---- the one commit -------------------------------------------------------------------
    def commit(self) -> None:
        """Write everything staged and the outbox atomically, then deliver the outbox (best
        effort: what fails stays in the outbox for the scheduled reconciler)."""
        published, self._outbox = self._outbox, []
        for seen in self.changes.seen:
            self._collect(seen)
        self._outbox += published
        self._stage_facts()
        staged, outbox = self.changes.writes, self._outbox
        self.changes.clear()
        self._outbox = []
        if staged or outbox:
            self._write(staged, outbox)
        if outbox:
            self.relay.try_deliver(outbox)
        # Written: the facts are true now (a refused or failed write counts nothing).
        count_committed((r.payload["detail_type"], r.payload["detail"]) for r in outbox if r.kind is OutboxKind.EVENT)

    def _stage_facts(self) -> None:
        """Each fact once, with the change that makes it true: every fact comes from a versioned
        transition that happens once (a registration, a dispute's opening or end, an order's
        defect, which the order itself records), so its marker cannot exist yet and never
        refuses the change (docs/RULES.md 11). No read: a change costs no request more."""
        facts, self._facts = self._facts, []
        if facts:
            self.moderation.record(list({f.fact_id: f for f in facts}.values()))
        reversals, self._reversals = self._reversals, []
        if reversals:
            self.moderation.reverse([fact_id for fact_id, _ in reversals])
        # A seller whose orders or defects change may change level: the reconciler evaluates it after this
        # commit and publishes a change (seller.standing_changed), at no read in this request.
        now = self.clock.now()
        sellers = {f.seller_id for f in facts if f.seller_id and st.moves_level(f)} | {s for _, s in reversals}
        self._outbox += [OutboxRecord.standing(seller_id, now) for seller_id in sorted(sellers)]
        cases, self._cases = self._cases, {}
        for dispute_id, (opened_at, opened, ended) in cases.items():
            self.moderation.stage_case(dispute_id, opened_at, opened, ended)

    @abstractmethod
    def _write(self, staged: list[Any], outbox: list[OutboxRecord]) -> None:
        """All or nothing; a refused condition raises the domain error its write names."""

    def now(self) -> datetime:
        return self.clock.now()
