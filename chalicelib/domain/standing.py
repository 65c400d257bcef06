"""Seller standing and buyer signals: the facts that feed them and the levels read from them.

A fact (an order registered, a dispute opened or ended, a defect) is applied once, to counters per
party per day of the fact's *order* (and per month, for sellers' long window), in the same write as
the change that makes it true. Its marker (``fact_id``) records what it added, so it is counted
once and could be subtracted again. Reading a standing sums a bounded number of those counters:
see ``Windows``. docs/RULES.md "Seller standing and buyer signals" says the same in words.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from .catalog import Fault
from .policy import Policy
from .timefmt import fmt

if TYPE_CHECKING:
    from .disputes import TimelineEntry


class Level(str, Enum):
    GOOD = "GOOD"
    WATCH = "WATCH"
    AT_RISK = "AT_RISK"
    NOT_ENOUGH_DATA = "NOT_ENOUGH_DATA"


class Flag(str, Enum):
    NONE = "NONE"
    FREQUENT_DISPUTER = "FREQUENT_DISPUTER"


SELLER_COUNTS = ("orders", "disputes", "defects")
BUYER_COUNTS = ("orders", "disputes_opened", "won", "lost", "cancelled", "against")


def seller_key(seller_id: str) -> str:
    return f"S#{seller_id}"


def buyer_key(buyer_id: str) -> str:
    return f"B#{buyer_id}"


def day_bucket(day: date) -> str:
    return f"D#{day.isoformat()}"


# The level last published for a seller, kept beside their day items so the first key range of a
# standing read returns it too (it sorts after every day).
LEVEL_KEY = "D#~level"


def month_bucket(day: date) -> str:
    return f"M#{day.year:04d}-{day.month:02d}"


# A seller's defects are kept as a set of [buyer, order] entries (distinct buyers are counted from
# them), spread over ``MEMBER_SHARDS`` items per day or month beside the counters' item, by a
# stable hash of the entry: no item of a big seller nears DynamoDB's 400 KB (an entry is about 60
# bytes: a shard holds some 6,000, so a month some 100,000 defects). A range read returns the
# shards with their bucket (``<bucket>#<nn>`` sorts right after ``<bucket>``).
MEMBER_SHARDS = 16
SHARD_END = "#~"  # after every shard of a bucket


def member_bucket(bucket: str, member: str) -> str:
    """The item of ``bucket`` that keeps ``member``."""
    shard = int.from_bytes(hashlib.sha256(member.encode()).digest()[:4], "big") % MEMBER_SHARDS
    return f"{bucket}#{shard:02d}"


def bucket_of(key: str) -> str:
    """The day or month an item belongs to (a member shard's, or the counters' own)."""
    return "#".join(key.split("#", 2)[:2])


def defect_member(buyer_id: str, order_id: str) -> str:
    """One defect in a counter's set: whose order it was (distinct buyers are read from these)."""
    return json.dumps([buyer_id, order_id], separators=(",", ":"))


@dataclass(frozen=True)
class Fact:
    """What one change adds to a party's counters. ``fact_id`` is what makes it once: derived
    from a versioned transition that happens once (an order's registration, a dispute's opening
    or end), or, for a defect, from the order (at most one defect per order)."""

    fact_id: str
    party: str  # seller_key(...) or buyer_key(...)
    day: date  # the order's date
    counts: dict[str, int]
    member: str | None = None  # a defect's entry in the counters' set
    monthly: bool = False  # sellers also count per month (their long window)
    seller_id: str | None = None  # set on a seller's facts: a level may change
    # A rule's report counters: one bucket, no marker (they ride a dispute's opening or end,
    # which happen once, and are never subtracted).
    bucket: str | None = None

    @property
    def buckets(self) -> tuple[str, ...]:
        if self.bucket is not None:
            return (self.bucket,)
        return (day_bucket(self.day), month_bucket(self.day)) if self.monthly else (day_bucket(self.day),)

    @property
    def marked(self) -> bool:
        return self.bucket is None

    def marker(self) -> dict[str, Any]:
        """What the marker keeps: enough to subtract the fact again."""
        return {"party": self.party, "buckets": list(self.buckets), "counts": dict(self.counts),
                "member": self.member}


# ---- which facts a change makes true -------------------------------------------------------------
def moves_level(fact: Fact) -> bool:
    """Whether a seller's fact can change its level: the level reads orders and defects only
    (disputes opened move the dispute rate, which no level reads)."""
    return bool(fact.seller_id) and bool({"orders", "defects"} & set(fact.counts))


def order_registered(order_id: str, buyer_id: str, seller_id: str, placed: datetime) -> list[Fact]:
    day = placed.date()
    return [Fact(f"registered:{order_id}:seller", seller_key(seller_id), day, {"orders": 1}, monthly=True,
                 seller_id=seller_id),
            Fact(f"registered:{order_id}:buyer", buyer_key(buyer_id), day, {"orders": 1})]


def dispute_opened(dispute_id: str, buyer_id: str, seller_id: str, placed: datetime) -> list[Fact]:
    day = placed.date()
    return [Fact(f"opened:{dispute_id}:seller", seller_key(seller_id), day, {"disputes": 1}, monthly=True,
                 seller_id=seller_id),
            Fact(f"opened:{dispute_id}:buyer", buyer_key(buyer_id), day, {"disputes_opened": 1})]


def defect(order_id: str, buyer_id: str, seller_id: str, placed: datetime) -> Fact:
    return Fact(f"defect:{order_id}", seller_key(seller_id), placed.date(), {"defects": 1},
                member=defect_member(buyer_id, order_id), monthly=True, seller_id=seller_id)


def dispute_ended(dispute_id: str, buyer_id: str, placed: datetime, outcome: str | None, fault: str) -> list[Fact]:
    """A dispute resolved (``outcome``) or cancelled (None): the buyer's record. (A defect of the
    seller's is the order's fact: ``orders.Defect``, once per order.)"""
    if outcome is None:
        counts = {"cancelled": 1}
    else:
        counts = {"lost": 1} if outcome == "REJECTED" else {"won": 1}
        if outcome == "REJECTED" or fault == Fault.BUYER.value:
            counts["against"] = 1  # lost, or the buyer's own fault: counted once
    return [Fact(f"ended:{dispute_id}:buyer", buyer_key(buyer_id), placed.date(), counts)]


def dispute_facts(dispute_id: str, order_id: str, buyer_id: str, seller_id: str, placed: datetime,
                  events: Iterable[TimelineEntry]) -> list[Fact]:
    """The facts a dispute's new timeline entries make true (opened, resolved, cancelled)."""
    out: list[Fact] = []
    for e in events:
        if e.event == "dispute.opened":
            out += dispute_opened(dispute_id, buyer_id, seller_id, placed)
        elif e.event == "dispute.resolved":
            out += dispute_ended(dispute_id, buyer_id, placed, str(e.details["outcome"]),
                                 str(e.details.get("fault", Fault.NONE.value)))
        elif e.event == "dispute.cancelled":
            out += dispute_ended(dispute_id, buyer_id, placed, None, Fault.NONE.value)
    return out


def reversal(marker: dict[str, Any]) -> dict[tuple[str, str], Merged]:
    """What subtracting a fact changes, from its marker: each bucket's counts negated, and its
    defect entry (``Merged.members``) to be removed from the shard that keeps it."""
    out: dict[tuple[str, str], Merged] = {}
    party, member = str(marker["party"]), marker.get("member")
    for bucket in marker["buckets"]:
        out[(party, bucket)] = Merged({name: -int(value) for name, value in marker["counts"].items()})
        if member:
            out.setdefault((party, member_bucket(bucket, member)), Merged()).members.add(member)
    return out


@dataclass
class Merged:
    """Facts of one write, added up per counter item (a transaction touches an item once)."""

    counts: dict[str, int] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)


def merge(facts: Iterable[Fact], sign: int = 1) -> dict[tuple[str, str], Merged]:
    """The counters' changes per item (``sign`` -1: a reversal's); a member goes to its shard."""
    out: dict[tuple[str, str], Merged] = {}
    for f in facts:
        for bucket in f.buckets:
            m = out.setdefault((f.party, bucket), Merged())
            for name, value in f.counts.items():
                m.counts[name] = m.counts.get(name, 0) + sign * value
            if f.member:
                out.setdefault((f.party, member_bucket(bucket, f.member)), Merged()).members.add(f.member)
    return out


# ---- reading counters back -----------------------------------------------------------------------
@dataclass
class Totals:
    """Counters summed over some buckets."""

    counts: dict[str, int] = field(default_factory=dict)
    members: set[str] = field(default_factory=set)

    def add(self, counts: dict[str, int], members: Iterable[str] = ()) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(value)
        self.members.update(members)

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)

    def distinct_buyers(self) -> int:
        return len({json.loads(m)[0] for m in self.members})


@dataclass(frozen=True)
class Bucket:
    key: str  # D#yyyy-mm-dd or M#yyyy-mm
    counts: dict[str, int]
    members: frozenset[str] = frozenset()


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _month_end(d: date) -> date:
    nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


@dataclass(frozen=True)
class Windows:
    """Which counter items a standing needs, as at most three key ranges of one party:
    ``recent`` (days from the first of the month before the short window, to today), and when
    the long window is needed, ``old_days`` and ``months`` for the rest of it."""

    today: date
    short_start: date
    long_start: date

    @classmethod
    def at(cls, now: datetime, policy: Policy) -> Windows:
        today = now.date()
        return cls(today, today - timedelta(days=policy.standing_window_days - 1),
                   today - timedelta(days=policy.standing_long_window_days - 1))

    @property
    def recent(self) -> tuple[str, str]:
        """Through the last published level's item (no fact is dated after today)."""
        return day_bucket(_month_start(self.short_start - timedelta(days=1))), LEVEL_KEY

    def older(self) -> list[tuple[str, str]]:
        """Key ranges covering the long window before ``recent``'s first day."""
        first_read = _month_start(self.short_start - timedelta(days=1))
        last = first_read - timedelta(days=1)
        if self.long_start > last:
            return []
        if _month_start(self.long_start) == _month_start(last):
            return [(day_bucket(self.long_start), day_bucket(last) + SHARD_END)]
        ranges = [(day_bucket(self.long_start), day_bucket(_month_end(self.long_start)) + SHARD_END)]
        first_month = _month_end(self.long_start) + timedelta(days=1)
        if first_month <= last:
            ranges.append((month_bucket(first_month), month_bucket(last) + SHARD_END))
        return ranges

    def sum(self, buckets: Iterable[Bucket], start: date) -> Totals:
        """Day buckets from ``start`` to today, and every month bucket given."""
        totals = Totals()
        low, high = day_bucket(start), day_bucket(self.today)
        for b in buckets:
            if b.key.startswith("M#") or low <= bucket_of(b.key) <= high:
                totals.add(b.counts, b.members)
        return totals


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


@dataclass(frozen=True)
class Standing:
    seller_id: str
    as_of: datetime
    window_days: int
    orders: int
    disputes: int
    defects: int
    defective_buyers: int
    level: Level

    @property
    def defect_rate(self) -> float:
        return _rate(self.defects, self.orders)

    @property
    def dispute_rate(self) -> float:
        return _rate(self.disputes, self.orders)

    def to_dict(self) -> dict[str, Any]:
        return {"seller_id": self.seller_id, "as_of": fmt(self.as_of), "window_days": self.window_days,
                "orders": self.orders, "disputes": self.disputes, "defects": self.defects,
                "defect_rate": self.defect_rate, "dispute_rate": self.dispute_rate,
                "defective_buyers": self.defective_buyers, "level": self.level.value}


def level_of(orders: int, defects: int, defective_buyers: int, policy: Policy) -> Level:
    """The contract's levels; the thresholds are settings (Policy, docs/RULES.md)."""
    if orders < policy.standing_min_orders:
        return Level.NOT_ENOUGH_DATA
    rate = defects / orders
    if rate > policy.at_risk_defect_rate and defective_buyers >= policy.at_risk_buyers:
        return Level.AT_RISK
    if rate > policy.watch_defect_rate and defective_buyers >= policy.watch_buyers:
        return Level.WATCH
    return Level.GOOD


def standing(seller_id: str, now: datetime, policy: Policy, recent: list[Bucket],
             older: list[Bucket] | None) -> Standing:
    """The standing from the counters ``Windows`` named: the short window, or, with fewer than
    the minimum orders in it, the long one (``older`` None: not read, the short window is enough)."""
    w = Windows.at(now, policy)
    totals = w.sum(recent, w.short_start)
    days = policy.standing_window_days
    if totals.get("orders") < policy.standing_min_orders and older is not None:
        totals = w.sum([*recent, *older], w.long_start)
        days = policy.standing_long_window_days
    orders, defects, buyers = totals.get("orders"), totals.get("defects"), totals.distinct_buyers()
    return Standing(seller_id, now, days, orders, totals.get("disputes"), defects, buyers,
                    level_of(orders, defects, buyers, policy))


def published_level(recent: list[Bucket]) -> Level:
    """The level last published for the seller (``seller.standing_changed``); at first, no data."""
    for b in recent:
        if b.key == LEVEL_KEY and b.members:
            return Level(next(iter(b.members)))
    return Level.NOT_ENOUGH_DATA


def needs_long_window(recent: list[Bucket], now: datetime, policy: Policy) -> bool:
    w = Windows.at(now, policy)
    return w.sum(recent, w.short_start).get("orders") < policy.standing_min_orders


@dataclass(frozen=True)
class Signals:
    buyer_id: str
    as_of: datetime
    window_days: int
    orders: int
    disputes_opened: int
    won: int
    lost: int
    cancelled: int
    against: int
    flag: Flag

    def to_dict(self) -> dict[str, Any]:
        return {"buyer_id": self.buyer_id, "as_of": fmt(self.as_of), "window_days": self.window_days,
                "orders": self.orders, "disputes_opened": self.disputes_opened, "won": self.won, "lost": self.lost,
                "cancelled": self.cancelled, "flag": self.flag.value}


def signals_range(now: datetime, policy: Policy) -> tuple[str, str]:
    today = now.date()
    return day_bucket(today - timedelta(days=policy.signals_window_days - 1)), day_bucket(today)


def signals(buyer_id: str, now: datetime, policy: Policy, buckets: list[Bucket]) -> Signals:
    """Informative only: FREQUENT_DISPUTER when at least the threshold of disputes were lost or
    ended with the buyer at fault (disputes the buyer won never count against them)."""
    low, high = signals_range(now, policy)
    t = Totals()
    for b in buckets:
        if low <= b.key <= high:
            t.add(b.counts)
    against = t.get("against")
    flag = Flag.FREQUENT_DISPUTER if against >= policy.frequent_disputer_losses else Flag.NONE
    return Signals(buyer_id, now, policy.signals_window_days, t.get("orders"), t.get("disputes_opened"),
                   t.get("won"), t.get("lost"), t.get("cancelled"), against, flag)
