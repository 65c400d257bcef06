"""Auto-resolution rules: data that moderation admins write, versioned, OFF | DRY_RUN | ACTIVE.

A rule is evaluated once, when a dispute opens, and only if its current version was saved by then.
The first matching ACTIVE rule (lowest ``priority``, then ``rule_id``) acts through the dispute's
own transitions (``Dispute.apply_rule``); matching DRY_RUN rules only leave a suggestion on the
dispute, which its end is later compared with (``agreement``). docs/RULES.md says the same.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from .catalog import Reason
from .errors import RuleViolation
from .money import Money
from .standing import Fact, Flag, Level
from .timefmt import fmt, parse

if TYPE_CHECKING:
    from .disputes import Resolution, TimelineEntry


class Mode(str, Enum):
    OFF = "OFF"
    DRY_RUN = "DRY_RUN"
    ACTIVE = "ACTIVE"


class Then(str, Enum):
    REFUND_FULL = "REFUND_FULL"
    ESCALATE = "ESCALATE"


@dataclass(frozen=True)
class RuleSuggestion:
    """What a matching DRY_RUN rule would have done to a dispute as it opened (moderators only)."""

    rule_id: str
    version: int
    would: Then

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "version": self.version, "would": self.would.value}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleSuggestion:
        return cls(d["rule_id"], int(d["version"]), Then(d["would"]))


MAX_SCAN_DAYS = 365


@dataclass(frozen=True)
class When:
    """Every condition given must hold; none given matches every dispute."""

    reasons: tuple[Reason, ...] | None = None
    max_amount: Money | None = None
    no_carrier_scan_days: int | None = None
    seller_levels: tuple[Level, ...] | None = None
    buyer_flags: tuple[Flag, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.reasons is not None:
            out["reasons"] = [r.value for r in self.reasons]
        if self.max_amount is not None:
            out["max_amount"] = self.max_amount.to_dict()
        if self.no_carrier_scan_days is not None:
            out["no_carrier_scan_days"] = self.no_carrier_scan_days
        if self.seller_levels is not None:
            out["seller_levels"] = [x.value for x in self.seller_levels]
        if self.buyer_flags is not None:
            out["buyer_flags"] = [x.value for x in self.buyer_flags]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> When:
        return cls(
            reasons=tuple(Reason(r) for r in d["reasons"]) if d.get("reasons") is not None else None,
            max_amount=Money.from_dict(d["max_amount"], "when.max_amount") if d.get("max_amount") else None,
            no_carrier_scan_days=int(d["no_carrier_scan_days"]) if d.get("no_carrier_scan_days") is not None else None,
            seller_levels=tuple(Level(x) for x in d["seller_levels"]) if d.get("seller_levels") is not None else None,
            buyer_flags=tuple(Flag(x) for x in d["buyer_flags"]) if d.get("buyer_flags") is not None else None)

    @property
    def needs_standing(self) -> bool:
        return self.seller_levels is not None

    @property
    def needs_signals(self) -> bool:
        return self.buyer_flags is not None


@dataclass(frozen=True)
class Case:
    """What a rule looks at when a dispute opens."""

    reason: Reason
    total: Money  # what a REFUND_FULL pays: the order's total
    still_held: Money  # what escrow holds of it now
    days_without_scan: int  # since the parcel was last seen (a scan, else its shipment, else the order)
    seller_level: Level | None = None  # None: not read (no rule asks)
    buyer_flag: Flag | None = None


def days_without_scan(last_seen: datetime, now: datetime) -> int:
    return max(0, (now - last_seen) // timedelta(days=1))


@dataclass(frozen=True)
class Rule:
    rule_id: str
    version: int
    description: str
    mode: Mode
    priority: int
    when: When
    then: Then
    saved_at: datetime
    saved_by: str

    @classmethod
    def define(cls, rule_id: str, description: str, mode: str, priority: int, when: dict[str, Any], then: str,
               previous: Rule | None, now: datetime, by: str) -> Rule:
        """A new version of ``rule_id``: the version goes up by one on every change; saving what
        is already there keeps it."""
        rule = cls(rule_id=rule_id, version=(previous.version + 1) if previous else 1, description=description,
                   mode=Mode(mode), priority=priority, when=When.from_dict(when), then=Then(then), saved_at=now,
                   saved_by=by)
        rule.validate()
        if previous is not None and previous.same_as(rule):
            return previous
        return rule

    def validate(self) -> None:
        """What the schema cannot say. A rule never pays more than its order holds: REFUND_FULL
        pays the order's own total, only while escrow holds all of it, and ``max_amount`` caps
        that total (a positive amount; orders in another currency never match it)."""
        w = self.when
        if w.max_amount is not None and w.max_amount.amount <= 0:
            raise _invalid("when.max_amount must be more than 0", "when.max_amount")
        for name in ("reasons", "seller_levels", "buyer_flags"):
            values = getattr(w, name)
            if values is not None and (not values or len(set(values)) != len(values)):
                raise _invalid(f"when.{name} must list distinct values, at least one", f"when.{name}")
        if w.no_carrier_scan_days is not None and not 1 <= w.no_carrier_scan_days <= MAX_SCAN_DAYS:
            raise _invalid(f"when.no_carrier_scan_days must be 1-{MAX_SCAN_DAYS}", "when.no_carrier_scan_days")

    def same_as(self, other: Rule) -> bool:
        return (self.description, self.mode, self.priority, self.when, self.then) == \
            (other.description, other.mode, other.priority, other.when, other.then)

    def applies_to(self, opened_at: datetime) -> bool:
        """Only disputes opened after this version was saved (a rule never reaches back)."""
        return self.mode is not Mode.OFF and self.saved_at <= opened_at

    def matches(self, case: Case) -> bool:
        w = self.when
        if w.reasons is not None and case.reason not in w.reasons:
            return False
        if w.max_amount is not None and (case.total.currency != w.max_amount.currency
                                         or case.total.amount > w.max_amount.amount):
            return False
        if w.no_carrier_scan_days is not None and case.days_without_scan < w.no_carrier_scan_days:
            return False
        if w.seller_levels is not None and case.seller_level not in w.seller_levels:
            return False
        if w.buyer_flags is not None and case.buyer_flag not in w.buyer_flags:
            return False
        # The refund is the order's total: only while escrow holds all of it.
        return not (self.then is Then.REFUND_FULL and case.still_held.amount < case.total.amount)

    @property
    def sort_key(self) -> tuple[int, str]:
        return self.priority, self.rule_id

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "version": self.version, "description": self.description,
                "mode": self.mode.value, "priority": self.priority, "when": self.when.to_dict(),
                "then": self.then.value, "saved_at": fmt(self.saved_at), "saved_by": self.saved_by}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        return cls(rule_id=d["rule_id"], version=int(d["version"]), description=d["description"],
                   mode=Mode(d["mode"]), priority=int(d["priority"]), when=When.from_dict(d.get("when") or {}),
                   then=Then(d["then"]), saved_at=parse(d["saved_at"]), saved_by=d["saved_by"])


def _invalid(message: str, field_name: str) -> RuleViolation:
    return RuleViolation(message, code="INVALID_RULE", details={"field": field_name})


def require_live_room(rules: Iterable[Rule], rule: Rule, limit: int) -> None:
    """At most ``limit`` rules not OFF: each is counted in the write that opens a dispute."""
    live = {r.rule_id for r in rules if r.mode is not Mode.OFF and r.rule_id != rule.rule_id}
    if rule.mode is not Mode.OFF and len(live) >= limit:
        raise RuleViolation(f"at most {limit} rules may be DRY_RUN or ACTIVE", code="RULE_LIMIT_REACHED",
                            details={"limit": limit})


@dataclass
class Evaluation:
    """What the rules make of one opening dispute."""

    evaluated: list[Rule] = field(default_factory=list)
    matched: list[Rule] = field(default_factory=list)
    acting: Rule | None = None
    suggestions: list[RuleSuggestion] = field(default_factory=list)


def evaluate(rules: Iterable[Rule], case: Case, opened_at: datetime) -> Evaluation:
    out = Evaluation()
    for rule in sorted((r for r in rules if r.applies_to(opened_at)), key=lambda r: r.sort_key):
        out.evaluated.append(rule)
        if not rule.matches(case):
            continue
        out.matched.append(rule)
        if rule.mode is Mode.DRY_RUN:
            out.suggestions.append(RuleSuggestion(rule.rule_id, rule.version, rule.then))
        elif out.acting is None:
            out.acting = rule
    return out


def needs(rules: Iterable[Rule], opened_at: datetime) -> tuple[bool, bool]:
    """Whether any rule that may apply reads the seller's standing, the buyer's signals."""
    live = [r for r in rules if r.applies_to(opened_at)]
    return any(r.when.needs_standing for r in live), any(r.when.needs_signals for r in live)


REPORT_COUNTS = ("evaluated", "matched", "decided_by_people", "agreed", "disagreed")
PEOPLE = ("buyer", "seller", "moderator")


def agreement(would: str, outcome: str | None, decided_by: str | None, escalated: bool) -> dict[str, int]:
    """How a suggestion compares with how its case ended (``outcome`` and ``decided_by`` of its
    resolution; None: it has none): counted when people decided it (a party's agreement or a
    moderator's decision, not a timer or a rule). REFUND_FULL agrees with a full refund; ESCALATE
    agrees when the case went to a moderator."""
    if outcome is None or decided_by not in PEOPLE:
        return {}
    if would == Then.ESCALATE.value:
        agreed = escalated
    else:
        agreed = outcome == "REFUND_FULL"
    return {"decided_by_people": 1, "agreed" if agreed else "disagreed": 1}


def report_facts(dispute: Any, events: Iterable[TimelineEntry]) -> list[Fact]:
    """A dispute's end, compared with each suggestion its opening recorded (the rule's report)."""
    if not dispute.rule_suggestions or not any(e.event in ("dispute.resolved", "dispute.cancelled")
                                               for e in events):
        return []
    out = []
    for s in dispute.rule_suggestions:
        end = ended_case(dispute)
        counts = agreement(s.would.value, end["outcome"], end["decided_by"], end["escalated"])
        if counts:
            out.append(rule_fact(s.rule_id, s.version, f"ended:{dispute.dispute_id}", counts))
    return out


def rule_fact(rule_id: str, version: int, why: str, counts: dict[str, int]) -> Fact:
    return Fact(f"rule:{rule_id}:{why}", rule_key(rule_id), date.min, counts, bucket=version_bucket(version))


def evaluation_facts(evaluation: Evaluation, dispute_id: str) -> list[Fact]:
    matched = {r.rule_id for r in evaluation.matched}
    return [rule_fact(r.rule_id, r.version, f"opened:{dispute_id}",
                      {"evaluated": 1, **({"matched": 1} if r.rule_id in matched else {})})
            for r in evaluation.evaluated]


def rule_key(rule_id: str) -> str:
    return f"R#{rule_id}"


def version_bucket(version: int) -> str:
    return f"V#{version:08d}"


# ---- the preview of a rule being edited -----------------------------------------------------------
# A rule being edited is tried against the most recent disputes: those opened in the last
# ``PREVIEW_DAYS`` days, at most ``PREVIEW_LIMIT`` of them (newest first). Each dispute leaves a
# small record of what a rule looks at (``opened_case``) as it opens, and of how it ended
# (``ended_case``) as it ends, in the same writes: the preview reads those records with one Query.
PREVIEW_DAYS = 30
PREVIEW_LIMIT = 200


def opened_case(dispute_id: str, seller_id: str, buyer_id: str, reason: Reason, total: Money, still_held: Money,
                last_seen: datetime, opened_at: datetime) -> dict[str, Any]:
    """What a rule looked at when the dispute opened (the seller's level and the buyer's flag are
    read afresh by a preview: they are figures of now, not of then)."""
    return {"dispute_id": dispute_id, "seller_id": seller_id, "buyer_id": buyer_id, "reason": reason.value,
            "total": total.to_dict(), "still_held": still_held.to_dict(), "last_seen": fmt(last_seen),
            "opened_at": fmt(opened_at)}


def ended_case(dispute: Any) -> dict[str, Any]:
    """How the dispute ended: who resolved it (None: cancelled) and whether a moderator saw it."""
    resolution: Resolution | None = dispute.resolution
    return {"outcome": resolution.outcome.value if resolution else None,
            "decided_by": resolution.decided_by.value if resolution else None,
            "escalated": dispute.escalated_at is not None}


@dataclass(frozen=True)
class PastCase:
    """A recent dispute as a preview sees it: what a rule looked at as it opened, and its end."""

    dispute_id: str
    seller_id: str
    buyer_id: str
    opened_at: datetime
    reason: Reason
    total: Money
    still_held: Money
    last_seen: datetime
    end: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, opened: dict[str, Any], end: dict[str, Any] | None) -> PastCase:
        return cls(dispute_id=opened["dispute_id"], seller_id=opened["seller_id"], buyer_id=opened["buyer_id"],
                   opened_at=parse(opened["opened_at"]), reason=Reason(opened["reason"]),
                   total=Money.from_dict(opened["total"], "total"),
                   still_held=Money.from_dict(opened["still_held"], "still_held"),
                   last_seen=parse(opened["last_seen"]), end=end)

    def case(self, seller_level: Level | None, buyer_flag: Flag | None) -> Case:
        return Case(reason=self.reason, total=self.total, still_held=self.still_held,
                    days_without_scan=days_without_scan(self.last_seen, self.opened_at),
                    seller_level=seller_level, buyer_flag=buyer_flag)


@dataclass(frozen=True)
class Preview:
    """How a rule would have done on the recent disputes: ``considered`` of them (opened since
    ``since``, at most ``limit``), ``matched``, and of the matched ones that people resolved,
    how many ``agreed`` with the rule's ``then`` (as its report counts them)."""

    since: datetime
    days: int
    limit: int
    considered: int
    matched: int
    decided_by_people: int
    agreed: int
    disagreed: int

    def to_dict(self) -> dict[str, Any]:
        return {"since": fmt(self.since), "days": self.days, "limit": self.limit, "considered": self.considered,
                "matched": self.matched, "decided_by_people": self.decided_by_people, "agreed": self.agreed,
                "disagreed": self.disagreed}


def preview(rule: Rule, cases: Iterable[PastCase], since: datetime, level_of: Any, flag_of: Any,
            days: int = PREVIEW_DAYS, limit: int = PREVIEW_LIMIT) -> Preview:
    """``rule`` (whatever its mode) tried on ``cases``; ``level_of(seller_id)`` and
    ``flag_of(buyer_id)`` are asked only when the rule has a condition on them."""
    considered = matched = people = agreed = disagreed = 0
    for past in cases:
        considered += 1
        level = level_of(past.seller_id) if rule.when.needs_standing else None
        flag = flag_of(past.buyer_id) if rule.when.needs_signals else None
        if not rule.matches(past.case(level, flag)):
            continue
        matched += 1
        end = past.end or {}
        counts = agreement(rule.then.value, end.get("outcome"), end.get("decided_by"), bool(end.get("escalated")))
        people += counts.get("decided_by_people", 0)
        agreed += counts.get("agreed", 0)
        disagreed += counts.get("disagreed", 0)
    return Preview(since, days, limit, considered, matched, people, agreed, disagreed)


CASES = "CASES"  # the partition of the disputes' records for previews, newest last


def case_key(opened_at: datetime, dispute_id: str) -> str:
    return f"{fmt(opened_at)}#{dispute_id}"
