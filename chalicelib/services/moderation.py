"""Use cases of moderation intelligence: seller standing, buyer signals, auto-resolution rules.

Standing and signals are read from counters the other use cases' commits keep (the unit of work
records the facts): a bounded number of key-range reads per party, never a scan or a read per order.
"""
from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..domain import standing as st
from ..domain.disputes import Actor, Dispute
from ..domain.errors import ConcurrentModification, NotFound
from ..domain.identity import Identity
from ..domain.orders import Order
from ..domain.policy import Policy
from ..domain.rules import PREVIEW_DAYS, PREVIEW_LIMIT, PastCase, Preview, Rule, preview, require_live_room
from ..domain.timefmt import fmt
from ..ports import ModerationRepository
from . import access
from .base import UseCases
from .commands import SaveRule
from .unit_of_work import UnitOfWork


def read_standing(repo: ModerationRepository, seller_id: str, now: datetime, policy: Policy
                  ) -> tuple[st.Standing, st.Level]:
    """The standing and the level last published. At most three Queries: the recent days (and
    the published level), and for a seller with few orders, the rest of the long window (its
    first days and whole months)."""
    party, w = st.seller_key(seller_id), st.Windows.at(now, policy)
    recent = repo.buckets(party, *w.recent)
    older = None
    if st.needs_long_window(recent, now, policy):
        older = [b for first, last in w.older() for b in repo.buckets(party, first, last)]
    return st.standing(seller_id, now, policy, recent, older), st.published_level(recent)


def read_signals(repo: ModerationRepository, buyer_id: str, now: datetime, policy: Policy) -> st.Signals:
    """One Query over the buyer's days in the window."""
    return st.signals(buyer_id, now, policy, repo.buckets(st.buyer_key(buyer_id), *st.signals_range(now, policy)))


@dataclass
class Insights:
    """What moderators see beside a case: the seller's standing and the buyer's signals, read
    once per party per request however many cases of theirs a page shows."""

    uses: Moderation
    who: Identity
    sellers: dict[str, st.Standing] = field(default_factory=dict)
    buyers: dict[str, st.Signals] = field(default_factory=dict)

    def of(self, d: Dispute) -> dict[str, Any] | None:
        """The figures for ``d``, or None for a caller who sees it as a party (or not at all)."""
        if d.actor_for(self.who.party_id, self.who.is_moderator) is not Actor.MODERATOR:
            return None
        now, policy = self.uses.clock.now(), self.uses.policy
        if d.seller_id not in self.sellers:
            self.sellers[d.seller_id] = self.uses.current_standing(d.seller_id)
        if d.buyer_id not in self.buyers:
            with self.uses.uow() as uow:
                self.buyers[d.buyer_id] = read_signals(uow.moderation, d.buyer_id, now, policy)
        s, b = self.sellers[d.seller_id], self.buyers[d.buyer_id]
        return {"seller_standing": {"level": s.level.value, "defect_rate": s.defect_rate},
                "buyer_signals": {"flag": b.flag.value, "lost": b.lost}}


class Moderation(UseCases):
    def standing(self, who: Identity, seller_id: str) -> st.Standing:
        """Moderators, and the seller for themself; anyone else is told there is no such seller."""
        if not (who.is_moderator or (who.party_id is not None and who.party_id == seller_id)):
            raise NotFound("no such seller", code="SELLER_NOT_FOUND")
        return self.current_standing(seller_id)

    def current_standing(self, seller_id: str) -> st.Standing:
        """The standing now. A level other than the one last published is published here
        (``seller.standing_changed``), with the level, in one commit. Called by the reconciler for
        the sellers whose orders or defects a write changed (services/timers.py), and where a
        standing is read (this route, moderators' views of the seller's cases, the rules), so the
        writes that make facts true cost no read (docs/RULES.md 11)."""
        now = self.clock.now()
        with self.uow() as uow:
            standing, was = read_standing(uow.moderation, seller_id, now, self.policy)
            if standing.level is not was:
                uow.moderation.publish_level(seller_id, was.value, standing.level.value)
                uow.publish("seller.standing_changed", {"seller_id": seller_id, "from": was.value,
                                                        "to": standing.level.value, "as_of": fmt(now)})
                try:
                    uow.commit()
                except ConcurrentModification:
                    pass  # another reader published this change at the same instant
        return standing

    def signals(self, who: Identity, buyer_id: str) -> st.Signals:
        """Moderators only; anyone else is told there is no such buyer."""
        if not who.is_moderator:
            raise NotFound("no such buyer", code="BUYER_NOT_FOUND")
        with self.uow() as uow:
            return read_signals(uow.moderation, buyer_id, self.clock.now(), self.policy)

    def reverse_defect(self, who: Identity, order_id: str) -> Order:
        """Subtract the defect counted for an order (its resolution's fault corrected, or its
        never-shipped refund reversed): moderation admins only; once (a second time is refused
        INVALID_STATE, and two at once: one loses the order's version)."""
        access.require(who.is_moderation_admin, "only moderation admins correct the standing")
        with self.uow() as uow:
            order = uow.orders.get(order_id)
            if order is None:
                raise NotFound("no such order", code="ORDER_NOT_FOUND")
            saved = uow.orders.save(order.reverse_defect())
            uow.commit()
            return saved

    def insights(self, who: Identity) -> Insights:
        return Insights(self, who)

    # ---- auto-resolution rules ------------------------------------------------------------
    def rules(self, who: Identity) -> builtins.list[Rule]:
        access.require(who.is_moderator or who.is_moderation_admin, "only moderators read the rules")
        with self.uow() as uow:
            return sorted(uow.moderation.rules(), key=lambda r: r.sort_key)

    def _define(self, uow: UnitOfWork, who: Identity, cmd: SaveRule, room: bool = True
                ) -> tuple[Rule, Rule | None, builtins.list[Rule]]:
        """The rule ``cmd`` describes, validated as a save validates it (INVALID_RULE,
        INVALID_CURRENCY, RULE_LIMIT_REACHED, VERSION_CONFLICT), with the version it replaces;
        ``room=False`` (a preview, which stores nothing) skips the live rules' limit."""
        access.require(who.is_moderation_admin, "only moderation admins change the rules")
        rules = uow.moderation.rules()
        previous = next((r for r in rules if r.rule_id == cmd.rule_id), None)
        current = previous.version if previous else 0
        if cmd.expected_version is not None and cmd.expected_version != current:
            raise ConcurrentModification("the rule has moved on", details={"current_version": current})
        rule = Rule.define(cmd.rule_id, cmd.description, cmd.mode, cmd.priority, cmd.when, cmd.then, previous,
                           self.clock.now(), who.sub)
        if room and rule is not previous:
            require_live_room(rules, rule, self.policy.max_live_rules)
        return rule, previous, rules

    def save_rule(self, who: Identity, cmd: SaveRule) -> Rule:
        """A new version of the rule (validated: nothing is stored when it is refused); it applies
        to disputes opened from now on."""
        with self.uow() as uow:
            rule, previous, _ = self._define(uow, who, cmd)
            if rule is previous:
                return rule
            uow.moderation.save_rule(rule, previous.version if previous else None)
            uow.commit()
            return rule

    def preview(self, who: Identity, cmd: SaveRule) -> tuple[Rule, Preview]:
        """The rule ``cmd`` describes, validated as ``save_rule`` would but for the live rules'
        limit (nothing is stored, so a preview at the limit is allowed; its save is refused), tried
        on the recent disputes: those opened in the last ``PREVIEW_DAYS`` days, at most
        ``PREVIEW_LIMIT`` (one Query of their records). A condition on the seller's level or
        the buyer's flag reads today's figures, once per distinct seller (at most three Queries)
        and buyer (one Query) of those disputes."""
        now = self.clock.now()
        since = now - timedelta(days=PREVIEW_DAYS)
        with self.uow() as uow:
            rule, _, _ = self._define(uow, who, cmd, room=False)
            cases = [PastCase.from_dict(opened, ended)
                     for opened, ended in uow.moderation.recent_cases(since, PREVIEW_LIMIT)]
            levels: dict[str, st.Level] = {}
            flags: dict[str, st.Flag] = {}

            def level_of(seller_id: str) -> st.Level:
                if seller_id not in levels:
                    levels[seller_id] = read_standing(uow.moderation, seller_id, now, self.policy)[0].level
                return levels[seller_id]

            def flag_of(buyer_id: str) -> st.Flag:
                if buyer_id not in flags:
                    flags[buyer_id] = read_signals(uow.moderation, buyer_id, now, self.policy).flag
                return flags[buyer_id]

            return rule, preview(rule, cases, since, level_of, flag_of)

    def report(self, who: Identity, rule_id: str) -> tuple[Rule, dict[str, int]]:
        access.require(who.is_moderator or who.is_moderation_admin, "only moderators read the rules")
        with self.uow() as uow:
            rule = uow.moderation.rule(rule_id)
            if rule is None:
                raise NotFound("no such rule", code="RULE_NOT_FOUND")
            return rule, uow.moderation.report(rule_id, rule.version)
