"""Use cases of the dispute aggregate: opening, the parties' and moderators' actions, reading."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain import rules
from ..domain.catalog import Decision, Fault, Reason, ReturnProblem, Solution
from ..domain.disputes import (
    REFUND_EVENT_PREFIX,
    Actor,
    Assignment,
    Command,
    Dispute,
    Offer,
    QueueFilter,
    Resolution,
    Status,
    TimelineEntry,
    refund_timeline,
)
from ..domain.errors import ConcurrentModification, Conflict, RuleViolation
from ..domain.identity import Identity
from ..domain.ledger import Refund
from ..domain.money import Money
from ..domain.orders import Order, OrderCommand
from ..domain.policy import Policy
from ..logs import logger
from ..metrics import count
from ..ports import Page
from . import access
from .base import UseCases
from .commands import PageRequest
from .moderation import read_signals, read_standing
from .unit_of_work import UnitOfWork


# ---- the typed commands of the dispute's use cases (api/requests.py builds them from the body) ----
@dataclass(frozen=True)
class OpenDispute:
    order_id: str
    reason: Reason
    description: str
    requested: Solution
    amount: Money | None
    item_ids: tuple[str, ...]


@dataclass(frozen=True)
class DisputeAction:
    """Any action on a dispute; ``expected_version`` guards against acting on a stale view."""

    dispute_id: str
    expected_version: int | None


@dataclass(frozen=True)
class MakeOffer(DisputeAction):
    type: Solution
    amount: Money | None
    message: str | None


@dataclass(frozen=True)
class AcceptOffer(DisputeAction):
    offer_id: str


@dataclass(frozen=True)
class RejectRequest(DisputeAction):
    message: str


@dataclass(frozen=True)
class Escalate(DisputeAction):
    message: str | None


@dataclass(frozen=True)
class Cancel(DisputeAction):
    message: str | None


@dataclass(frozen=True)
class Decide(DisputeAction):
    outcome: Decision
    amount: Money | None
    rationale: str
    fault: Fault | None = None  # None: the outcome's default (domain.disputes.default_fault)


@dataclass(frozen=True)
class ClaimCase:
    """Take an escalated case, or renew one's own claim."""

    dispute_id: str


@dataclass(frozen=True)
class ReleaseCase:
    dispute_id: str


@dataclass(frozen=True)
class ShipReturn(DisputeAction):
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class ContestReturn(DisputeAction):
    reason: ReturnProblem
    message: str


@dataclass(frozen=True)
class ConfirmReturn(DisputeAction):
    """The seller confirms the returned item arrived."""


Change = Callable[[Dispute, Actor, datetime], Any]


@dataclass(frozen=True)
class DisputeView:
    """A dispute as it is shown: the dispute, and the refund its resolution owes as the order's
    ledger holds it (None: it owes none). The ledger is the refund's only record; what the dispute
    shows of it (the refund, its settlement deadline, its timeline entries, when the case last
    moved) is derived here. The few facts every reader of a dispute asks for are at hand here."""

    dispute: Dispute
    refund: Refund | None = None

    @property
    def dispute_id(self) -> str:
        return self.dispute.dispute_id

    @property
    def order_id(self) -> str:
        return self.dispute.order_id

    @property
    def status(self) -> Status:
        return self.dispute.status

    @property
    def version(self) -> int | None:
        return self.dispute.version

    @property
    def resolution(self) -> Resolution | None:
        return self.dispute.resolution

    @property
    def assignment(self) -> Assignment | None:
        return self.dispute.assignment

    @property
    def offers(self) -> list[Offer]:
        return self.dispute.offers

    @property
    def updated_at(self) -> datetime:
        """The later of the dispute's last change and its refund's last move."""
        moved = self.refund_moved_at
        return self.dispute.updated_at if moved is None else max(self.dispute.updated_at, moved)

    @property
    def refund_moved_at(self) -> datetime | None:
        """When the refund's status or attempt last moved (when it was asked for, if never). A
        dispute stored while it kept a copy of its refund holds that copy's moves in its own
        timeline, and its order's refund has no record of them: those count too."""
        if self.refund is None:
            return None
        kept = (e.at for e in self.dispute.timeline if e.event.startswith(REFUND_EVENT_PREFIX))
        return max([self.refund.last_moved_at, *kept])

    @property
    def timeline(self) -> list[TimelineEntry]:
        """The dispute's timeline with its refund's moves, in time order."""
        if self.refund is None:
            return list(self.dispute.timeline)
        return sorted([*self.dispute.timeline, *refund_timeline(self.refund)], key=lambda e: e.at)

    def deadlines(self, policy: Policy, now: datetime) -> list[dict[str, Any]]:
        return self.dispute.deadlines(policy, now, self.refund)


def owed_refund(dispute: Dispute, order: Order | None) -> Refund | None:
    """The refund ``dispute`` owes, as ``order`` (its order) records it. A reference the order
    does not hold (or holds for another dispute) shows no refund, and is logged and counted."""
    if dispute.refund_id is None or order is None:
        return None
    refund = order.ledger.refund(dispute.refund_id) if order.ledger.has_refund(dispute.refund_id) else None
    if refund is None or refund.dispute_id not in (None, dispute.dispute_id):
        logger.error("a dispute's refund is not on its order", dispute_id=dispute.dispute_id,
                     order_id=order.order_id, refund_id=dispute.refund_id)
        count("DisputeRefundsMissing")
        return None
    return refund


def shown(uow: UnitOfWork, dispute: Dispute) -> DisputeView:
    """``dispute`` with its refund: its order is read only when it owes one (one GetItem)."""
    if dispute.refund_id is None:
        return DisputeView(dispute)
    return DisputeView(dispute, owed_refund(dispute, uow.orders.get(dispute.order_id)))


def shown_page(uow: UnitOfWork, disputes: Iterable[Dispute]) -> list[DisputeView]:
    """A page of disputes with their refunds: the orders of those that owe one, in one read
    (one BatchGetItem; none when the page owes no refund)."""
    disputes = list(disputes)
    order_ids = sorted({d.order_id for d in disputes if d.refund_id is not None})
    orders = uow.orders.get_many(order_ids) if order_ids else {}
    return [DisputeView(d, owed_refund(d, orders.get(d.order_id))) for d in disputes]


class Disputes(UseCases):
    # ---- opening and reading --------------------------------------------------------------
    def open(self, who: Identity, cmd: OpenDispute) -> DisputeView:
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(cmd.order_id))
            access.require_order_role(who, order, OrderCommand.OPEN_DISPUTE, "only the buyer opens a dispute")
            now = self.clock.now()
            order.check_can_open(cmd.reason, now, self.policy)
            unknown = sorted(set(cmd.item_ids) - order.item_ids())
            if unknown:
                raise RuleViolation("item_ids are not items of this order", code="UNKNOWN_ITEM",
                                    details={"unknown_item_ids": unknown})
            dispute = Dispute.open(
                order_id=order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id, order_total=order.total,
                reason=cmd.reason, description=cmd.description, requested=cmd.requested, amount=cmd.amount,
                item_ids=list(cmd.item_ids), now=now, policy=self.policy, order_placed_at=order.created_at)
            attached = order.attach_dispute(dispute.dispute_id)
            last_seen = attached.shipment.last_seen if attached.shipment else attached.created_at
            uow.case_opened(dispute.dispute_id, now, rules.opened_case(
                dispute.dispute_id, order.seller_id, order.buyer_id, dispute.reason, order.total,
                attached.escrow.still_held, last_seen, now))
            self._apply_rules(uow, dispute, attached, now)
            if not dispute.is_open:  # an ACTIVE rule refunded it: the order settles in the same write
                outcome, refund, refund_id = dispute.settlement()
                attached = attached.settle_dispute(dispute.dispute_id, outcome, refund, refund_id, now, self.policy,
                                                   dispute.seller_at_fault)
            uow.orders.save(attached)
            saved = uow.disputes.save(dispute)
            uow.commit()
            return DisputeView(saved, owed_refund(saved, attached))

    def _apply_rules(self, uow: UnitOfWork, dispute: Dispute, order: Order, now: datetime) -> None:
        """The auto-resolution rules whose current version was saved by now: the first matching
        ACTIVE one acts through the dispute's transitions; DRY_RUN ones leave suggestions."""
        rules_ = [r for r in uow.moderation.rules() if r.applies_to(now)]
        if not rules_:
            return
        with_standing, with_signals = rules.needs(rules_, now)
        last_seen = order.shipment.last_seen if order.shipment else order.created_at
        case = rules.Case(
            reason=dispute.reason, total=order.total, still_held=order.escrow.still_held,
            days_without_scan=rules.days_without_scan(last_seen, now),
            seller_level=read_standing(uow.moderation, order.seller_id, now, self.policy)[0].level if with_standing
            else None,
            buyer_flag=read_signals(uow.moderation, order.buyer_id, now, self.policy).flag if with_signals else None)
        evaluation = rules.evaluate(rules_, case, now)
        dispute.rule_suggestions = evaluation.suggestions
        uow.record(rules.evaluation_facts(evaluation, dispute.dispute_id))
        acting = evaluation.acting
        if acting is not None:
            dispute.apply_rule(acting.rule_id, acting.version, acting.then.value, acting.description, now, self.policy)

    def get(self, who: Identity, dispute_id: str) -> DisputeView:
        with self.uow() as uow:
            return shown(uow, access.visible_dispute(who, uow.disputes.get(dispute_id))[0])

    def list(self, who: Identity, role: str, status: str | None, page: PageRequest) -> Page[DisputeView]:
        if who.party_id is None:
            return [], None  # a service is nobody's buyer or seller: it has no disputes of its own
        with self.uow() as uow:
            items, cursor = uow.disputes.list_for(role, who.party_id, status, page.limit, page.cursor)
            return shown_page(uow, items), cursor

    def moderation_queue(self, who: Identity, which: QueueFilter, page: PageRequest) -> Page[DisputeView]:
        """The escalated cases ``which`` keeps (QueueFilter: overdue, held by whom, reason),
        oldest escalation first."""
        access.require_moderator(who, "only moderators see the moderation queue")
        with self.uow() as uow:
            items, cursor = uow.disputes.escalated(QueueFilter(who.sub, which.overdue, which.assigned, which.reason),
                                                   self.clock.now(), page.limit, page.cursor)
            return shown_page(uow, items), cursor

    # ---- the case team's ownership of escalated cases -------------------------------------
    def claim(self, who: Identity, cmd: ClaimCase) -> DisputeView:
        """Take the case (or renew one's claim) for the lease; exactly one moderator wins a race:
        the claim's write is conditioned on no other claim holding."""
        with self.uow() as uow:
            dispute = self._moderated(who, uow.disputes.get(cmd.dispute_id))
            dispute.claim(who.sub, self.clock.now(), self.policy)
            uow.disputes.claim(dispute, self.clock.now())
            uow.commit()
            return DisputeView(dispute)  # an escalated case: it owes no refund

    def release(self, who: Identity, cmd: ReleaseCase) -> DisputeView:
        """Give the case back; nothing to do when the caller does not hold it and nobody else does."""
        with self.uow() as uow:
            dispute = self._moderated(who, uow.disputes.get(cmd.dispute_id))
            if dispute.release(who.sub, self.clock.now()):
                uow.disputes.release(dispute, who.sub)
                uow.commit()
            return shown(uow, dispute)

    def next_case(self, who: Identity, attempts: int = 5, batch: int = 10) -> DisputeView | None:
        """Claim the oldest escalated case nobody holds and the caller is no party of. A case
        another moderator takes meanwhile is skipped (its claim write is refused), so two
        moderators asking at once never get the same one."""
        access.require_moderator(who, "only moderators take cases")
        which = QueueFilter(who.sub, assigned="none", not_party_of=who.sub)
        cursor: str | None = None
        for _ in range(attempts):
            with self.uow() as uow:
                candidates, cursor = uow.disputes.escalated(which, self.clock.now(), batch, cursor)
            for candidate in candidates:
                try:
                    return self.claim(who, ClaimCase(candidate.dispute_id))
                except Conflict:  # taken or decided meanwhile (CASE_CLAIMED, INVALID_STATE)
                    continue
            if cursor is None:
                return None
        return None

    def _moderated(self, who: Identity, dispute: Dispute | None) -> Dispute:
        """The dispute, for a moderator who is no party of it (404 for strangers, 403 for parties)."""
        dispute, actor = access.visible_dispute(who, dispute)
        access.require(actor is Actor.MODERATOR, "only a moderator who is no party of the order takes the case")
        return dispute

    # ---- actions --------------------------------------------------------------------------
    def make_offer(self, who: Identity, cmd: MakeOffer) -> tuple[DisputeView, Offer]:
        made: dict[str, Offer] = {}

        def offer(d: Dispute, a: Actor, now: datetime) -> None:
            made["offer"] = d.make_offer(a, cmd.type, cmd.amount, cmd.message, now, self.policy)

        dispute = self._act(who, cmd, Command.MAKE_OFFER, offer)
        return dispute, made["offer"]

    def accept_offer(self, who: Identity, cmd: AcceptOffer) -> DisputeView:
        return self._act(who, cmd, Command.ACCEPT_REFUND, lambda d, a, now: d.accept(a, cmd.offer_id, now, self.policy))

    def reject(self, who: Identity, cmd: RejectRequest) -> DisputeView:
        return self._act(who, cmd, Command.REJECT, lambda d, a, now: d.reject(a, cmd.message, now, self.policy))

    def escalate(self, who: Identity, cmd: Escalate) -> DisputeView:
        return self._act(who, cmd, Command.ESCALATE, lambda d, a, now: d.escalate(a, cmd.message, now, self.policy))

    def cancel(self, who: Identity, cmd: Cancel) -> DisputeView:
        return self._act(who, cmd, Command.CANCEL, lambda d, a, now: d.cancel(a, cmd.message, now, self.policy))

    def decide(self, who: Identity, cmd: Decide) -> DisputeView:
        def decide(d: Dispute, a: Actor, now: datetime) -> None:
            d.decide(cmd.outcome, cmd.amount, cmd.rationale, now, self.policy, by=who.sub, fault=cmd.fault)

        # The claim is checked again by the write itself: a case taken meanwhile is not decided.
        return self._act(who, cmd, Command.DECIDE, decide, claimant=who.sub)

    def ship_return(self, who: Identity, cmd: ShipReturn) -> DisputeView:
        return self._act(who, cmd, Command.SHIP_RETURN,
                         lambda d, a, now: d.ship_return(a, cmd.carrier, cmd.tracking_number, now, self.policy))

    def contest_return(self, who: Identity, cmd: ContestReturn) -> DisputeView:
        return self._act(who, cmd, Command.CONTEST_RETURN,
                         lambda d, a, now: d.contest_return(a, cmd.reason, cmd.message, now, self.policy))

    def confirm_return(self, who: Identity, cmd: ConfirmReturn) -> DisputeView:
        return self._act(who, cmd, Command.CONFIRM_RETURN, lambda d, a, now: d.confirm_return(a, now, self.policy))

    # ---- the one path every change takes --------------------------------------------------
    def _act(self, who: Identity, cmd: DisputeAction, command: Command, change: Change,
             claimant: str | None = None) -> DisputeView:
        """Who (404, then 403), then which version (409), then the domain's rules for the state."""
        with self.uow() as uow:
            dispute, actor = access.visible_dispute(who, uow.disputes.get(cmd.dispute_id))
            Dispute.authorize(command, actor)
            if cmd.expected_version is not None and cmd.expected_version != dispute.version:
                raise ConcurrentModification("the dispute has moved on", details={"current_version": dispute.version})
            was_open = dispute.is_open
            change(dispute, actor, self.clock.now())
            saved = save_with_order(uow, dispute, was_open, self.policy, claimant)
            uow.commit()
            return saved


def save_with_order(uow: UnitOfWork, dispute: Dispute, was_open: bool, policy: Policy,
                    claimant: str | None = None) -> DisputeView:
    """Stage a changed dispute; when it has just ended, settle its order in the same commit (the
    refund it owes, if any, is shown from that order: no read of its own)."""
    settled: Order | None = None
    if was_open and not dispute.is_open:
        order = uow.orders.get(dispute.order_id)
        assert order is not None, "a dispute's order is never deleted"
        outcome, refund, refund_id = dispute.settlement()
        settled = order.settle_dispute(dispute.dispute_id, outcome, refund, refund_id, uow.now(), policy,
                                       dispute.seller_at_fault)
        uow.orders.save(settled)
    saved = uow.disputes.save(dispute, claimant)
    return DisputeView(saved, owed_refund(saved, settled))
