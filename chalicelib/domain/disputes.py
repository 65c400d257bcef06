"""The dispute aggregate and its one transition table.

Every state change, whether a party asked for it through the API, a moderator decided it or a
timer expired, goes through ``Dispute._transition`` and the ``TRANSITIONS`` table below.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from .catalog import Decision, Fault, Outcome, Reason, ReturnProblem, Solution
from .errors import Conflict, Forbidden, NotFound, RuleViolation
from .evidence import checklist, has_free_place
from .jsontypes import JSONObject, JSONValue
from .ledger import Refund, RefundStatus, retry_delay
from .money import Money
from .policy import Policy
from .rules import RuleSuggestion
from .timefmt import fmt, parse, parse_opt, utc
from .timers import START, STOP, TimerCommand


class Status(str, Enum):
    AWAITING_SELLER = "AWAITING_SELLER"
    NEGOTIATING = "NEGOTIATING"
    ESCALATED = "ESCALATED"
    AWAITING_RETURN = "AWAITING_RETURN"
    RETURN_IN_TRANSIT = "RETURN_IN_TRANSIT"
    RESOLVED = "RESOLVED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({Status.RESOLVED, Status.CANCELLED})
NEGOTIABLE = frozenset({Status.AWAITING_SELLER, Status.NEGOTIATING})


# Every event a dispute's timeline can hold: the name in `timeline[].event` and, for all but the
# refund entries, the `detail-type` of the event published with it. openapi.yaml enumerates them.
TIMELINE_EVENTS = (
    "dispute.opened", "dispute.offer_made", "dispute.offer_accepted", "dispute.request_rejected",
    "dispute.escalated", "dispute.cancelled", "dispute.decided", "dispute.return_shipped",
    "dispute.return_contested", "dispute.return_received", "dispute.deadline_expired", "dispute.resolved",
    "dispute.refund_pending", "dispute.refund_succeeded", "dispute.refund_failed",
)
# The entries of a refund's moves: this prefix and the refund's status (refund_timeline).
REFUND_EVENT_PREFIX = "dispute.refund_"


class Actor(str, Enum):
    BUYER = "buyer"
    SELLER = "seller"
    MODERATOR = "moderator"
    SYSTEM = "system"  # the timers


class Command(str, Enum):
    MAKE_OFFER = "MAKE_OFFER"
    ACCEPT_REFUND = "ACCEPT_REFUND"
    ACCEPT_RESEND = "ACCEPT_RESEND"
    ACCEPT_RETURN = "ACCEPT_RETURN"
    REJECT = "REJECT"
    ESCALATE = "ESCALATE"
    CANCEL = "CANCEL"
    DECIDE = "DECIDE"
    DECIDE_RETURN = "DECIDE_RETURN"
    SHIP_RETURN = "SHIP_RETURN"
    CONFIRM_RETURN = "CONFIRM_RETURN"
    CLOSE_FOR_SELLER = "CLOSE_FOR_SELLER"
    CONTEST_RETURN = "CONTEST_RETURN"
    FLAG_OVERDUE = "FLAG_OVERDUE"
    RULE_REFUND = "RULE_REFUND"
    RULE_ESCALATE = "RULE_ESCALATE"


S, A, C = Status, Actor, Command
# The one transition table: (command, from state) -> {actor allowed: state after}.
# SYSTEM rows are the timers' expiry effects: seller silence accepts the buyer's request on the
# seller's behalf, a stalled negotiation escalates, a return never shipped closes for the seller,
# a return never confirmed is treated as received.
TRANSITIONS: dict[tuple[Command, Status], dict[Actor, Status]] = {
    (C.MAKE_OFFER, S.AWAITING_SELLER): {A.BUYER: S.AWAITING_SELLER, A.SELLER: S.NEGOTIATING},
    (C.MAKE_OFFER, S.NEGOTIATING): {A.BUYER: S.NEGOTIATING, A.SELLER: S.NEGOTIATING},
    (C.ACCEPT_REFUND, S.AWAITING_SELLER): {A.SELLER: S.RESOLVED, A.SYSTEM: S.RESOLVED},
    (C.ACCEPT_REFUND, S.NEGOTIATING): {A.BUYER: S.RESOLVED, A.SELLER: S.RESOLVED},
    (C.ACCEPT_RESEND, S.AWAITING_SELLER): {A.SELLER: S.RESOLVED, A.SYSTEM: S.RESOLVED},
    (C.ACCEPT_RESEND, S.NEGOTIATING): {A.BUYER: S.RESOLVED, A.SELLER: S.RESOLVED},
    (C.ACCEPT_RETURN, S.AWAITING_SELLER): {A.SELLER: S.AWAITING_RETURN, A.SYSTEM: S.AWAITING_RETURN},
    (C.ACCEPT_RETURN, S.NEGOTIATING): {A.BUYER: S.AWAITING_RETURN, A.SELLER: S.AWAITING_RETURN},
    (C.REJECT, S.AWAITING_SELLER): {A.SELLER: S.NEGOTIATING},
    (C.ESCALATE, S.NEGOTIATING): {A.BUYER: S.ESCALATED, A.SELLER: S.ESCALATED, A.SYSTEM: S.ESCALATED},
    (C.CANCEL, S.AWAITING_SELLER): {A.BUYER: S.CANCELLED},
    (C.CANCEL, S.NEGOTIATING): {A.BUYER: S.CANCELLED},
    (C.CANCEL, S.ESCALATED): {A.BUYER: S.CANCELLED},
    (C.CANCEL, S.AWAITING_RETURN): {A.BUYER: S.CANCELLED},
    (C.DECIDE, S.ESCALATED): {A.MODERATOR: S.RESOLVED},
    (C.DECIDE_RETURN, S.ESCALATED): {A.MODERATOR: S.AWAITING_RETURN},
    (C.FLAG_OVERDUE, S.ESCALATED): {A.SYSTEM: S.ESCALATED},
    (C.SHIP_RETURN, S.AWAITING_RETURN): {A.BUYER: S.RETURN_IN_TRANSIT},
    (C.CLOSE_FOR_SELLER, S.AWAITING_RETURN): {A.SYSTEM: S.RESOLVED},
    (C.CONFIRM_RETURN, S.RETURN_IN_TRANSIT): {A.SELLER: S.RESOLVED, A.SYSTEM: S.RESOLVED},
    # The seller says the return is not what was sold (empty box, wrong item, never scanned):
    # instead of paying by default at the receipt deadline, a moderator decides.
    (C.CONTEST_RETURN, S.RETURN_IN_TRANSIT): {A.SELLER: S.ESCALATED},
    # An ACTIVE auto-resolution rule, as the dispute opens: a full refund, or straight to a moderator.
    (C.RULE_REFUND, S.AWAITING_SELLER): {A.SYSTEM: S.RESOLVED},
    (C.RULE_ESCALATE, S.AWAITING_SELLER): {A.SYSTEM: S.ESCALATED},
}
del S, A, C


@dataclass(frozen=True)
class Phase:
    """A waiting step: who must act, how long they have, and what happens if they do not."""

    action: str
    actor: str
    on_expiry: str
    duration: str  # name of the Policy field


PHASES: dict[Status, Phase] = {
    Status.AWAITING_SELLER: Phase("SELLER_RESPONSE", "seller", "GRANT_BUYER_REQUEST", "seller_response"),
    Status.NEGOTIATING: Phase("NEGOTIATION", "buyer", "ESCALATE", "negotiation"),
    Status.ESCALATED: Phase("MEDIATION", "moderator", "FLAG_OVERDUE", "mediation_sla"),
    Status.AWAITING_RETURN: Phase("RETURN_SHIPMENT", "buyer", "CLOSE_REJECTED", "return_shipment"),
    Status.RETURN_IN_TRANSIT: Phase("RETURN_RECEIPT", "seller", "PAY_REFUND", "return_receipt"),
}

# A solution, once agreed, becomes this command.
ACCEPT_COMMAND = {
    Solution.REFUND_FULL: Command.ACCEPT_REFUND,
    Solution.REFUND_PARTIAL: Command.ACCEPT_REFUND,
    Solution.RESEND: Command.ACCEPT_RESEND,
    Solution.RETURN_AND_REFUND: Command.ACCEPT_RETURN,
}


def checked_amount(kind: str, amount: Money | None, total: Money) -> Money | None:
    """The money a solution or outcome moves back to the buyer, validated against the order total."""
    if kind == "REFUND_PARTIAL":
        if amount is None:
            raise RuleViolation("REFUND_PARTIAL needs an amount", code="INVALID_AMOUNT")
        amount.require_partial_of(total)
        return amount
    refunds_all = kind in ("REFUND_FULL", "RETURN_AND_REFUND")
    if amount is not None and not (refunds_all and amount == total):
        raise RuleViolation(f"{kind} takes no amount" + (" (or exactly the order total)" if refunds_all else ""),
                            code="INVALID_AMOUNT", details={"total": total.to_dict()})
    return total if refunds_all else None


class OfferStatus(str, Enum):
    OPEN = "OPEN"  # waiting for the other side
    ACCEPTED = "ACCEPTED"
    SUPERSEDED = "SUPERSEDED"  # its author made another offer
    WITHDRAWN = "WITHDRAWN"  # the negotiation ended otherwise


@dataclass
class Offer:
    offer_id: str
    by: str
    type: Solution
    amount: Money | None
    message: str | None
    status: OfferStatus
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"offer_id": self.offer_id, "by": self.by, "type": self.type.value,
                "amount": self.amount.to_dict() if self.amount else None, "message": self.message,
                "status": self.status.value, "created_at": fmt(self.created_at)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Offer:
        return cls(offer_id=d["offer_id"], by=d["by"], type=Solution(d["type"]),
                   amount=Money.from_dict(d["amount"]) if d.get("amount") else None, message=d.get("message"),
                   status=OfferStatus(d["status"]), created_at=parse(d["created_at"]))


@dataclass(frozen=True)
class RuleRef:
    """The auto-resolution rule (and its version) that resolved a dispute."""

    rule_id: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "version": self.version}


@dataclass(frozen=True)
class Resolution:
    """How a dispute ended: by whom, why, whose fault, and the money it gives back."""

    outcome: Outcome
    amount: Money | None  # what it refunds (REFUND_FULL, REFUND_PARTIAL)
    decided_by: Actor
    rationale: str
    resolved_at: datetime
    fault: Fault = Fault.NONE
    rule: RuleRef | None = None  # the rule that decided it, if one did

    def to_dict(self) -> dict[str, Any]:
        """The stored shape (``rule`` only when a rule decided)."""
        return {"outcome": self.outcome.value, "amount": _m(self.amount), "decided_by": self.decided_by.value,
                "rationale": self.rationale, "resolved_at": fmt(self.resolved_at), "fault": self.fault.value,
                **({"rule": self.rule.to_dict()} if self.rule else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Resolution | None:
        if not d:
            return None
        rule = d.get("rule")
        return cls(Outcome(d["outcome"]), Money.from_dict(d["amount"]) if d.get("amount") else None,
                   Actor(d["decided_by"]), d["rationale"], parse(d["resolved_at"]), Fault(d.get("fault") or "NONE"),
                   RuleRef(rule["rule_id"], int(rule["version"])) if rule else None)


@dataclass(frozen=True)
class ReturnShipment:
    """The parcel the buyer sends the item back in."""

    carrier: str
    tracking_number: str
    shipped_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"carrier": self.carrier, "tracking_number": self.tracking_number, "shipped_at": fmt(self.shipped_at)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ReturnShipment | None:
        return None if not d else cls(d["carrier"], d["tracking_number"], parse(d["shipped_at"]))


@dataclass(frozen=True)
class Assignment:
    """A moderator's claim on an escalated case, for a lease: while it lasts, only they decide
    or write to the parties. Kept beside the dispute's versioned document (a claim is no change
    the parties see, so it never makes their ``expected_version`` stale)."""

    moderator_id: str
    claimed_at: datetime
    expires_at: datetime

    def holds(self, now: datetime) -> bool:
        return now < self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {"moderator_id": self.moderator_id, "claimed_at": fmt(self.claimed_at),
                "expires_at": fmt(self.expires_at)}


def case_claimed(a: Assignment) -> Conflict:
    return Conflict(f"moderator {a.moderator_id} holds this case until {fmt(a.expires_at)}", code="CASE_CLAIMED",
                    details={"moderator_id": a.moderator_id, "expires_at": fmt(a.expires_at)})


@dataclass(frozen=True)
class QueueFilter:
    """Which escalated cases a moderator lists: ``overdue`` True/False/None; ``assigned`` me
    (held by ``moderator_id``), none (nobody holds it) or others; one ``reason``; and without the
    cases ``not_party_of`` is a party of. The DynamoDB adapter says the same as conditions."""

    moderator_id: str = ""
    overdue: bool | None = None
    assigned: str | None = None  # me | none | others
    reason: str | None = None
    not_party_of: str | None = None

    def matches(self, d: Dispute, now: datetime) -> bool:
        held = d.holder(now)
        holder = held.moderator_id if held else None
        assigned = {None: True, "none": holder is None, "me": holder == self.moderator_id,
                    "others": holder is not None and holder != self.moderator_id}[self.assigned]
        return (d.status is Status.ESCALATED and assigned
                and (self.overdue is None or d.is_overdue(now) == self.overdue)
                and (self.reason is None or d.reason.value == self.reason)
                and (self.not_party_of is None or self.not_party_of not in (d.buyer_id, d.seller_id)))


ASSIGNED_FILTERS = ("me", "none", "others")


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a dispute's history: when, by whom, which of ``TIMELINE_EVENTS``, and its
    details (stored and shown as ``{"at", "actor", "event", "details"}``)."""

    at: datetime
    actor: Actor
    event: str
    details: JSONObject

    @classmethod
    def new(cls, now: datetime, actor: Actor, event: str, details: JSONObject) -> TimelineEntry:
        """A step happening now (whole seconds, as stored): ``event`` must be one of TIMELINE_EVENTS."""
        if event not in TIMELINE_EVENTS:
            raise ValueError(f"{event} is not in TIMELINE_EVENTS")
        return cls(utc(now), actor, event, details)

    def party_details(self) -> dict[str, JSONValue]:
        """The details as a party (or a subscriber forwarding to parties) may see them."""
        return party_details(self.details)

    def to_dict(self) -> dict[str, JSONValue]:
        return {"at": fmt(self.at), "actor": self.actor.value, "event": self.event, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimelineEntry:
        return cls(parse(d["at"]), Actor(d["actor"]), str(d["event"]), dict(d.get("details") or {}))


@dataclass(frozen=True)
class Recorded:
    """A new timeline entry, published as an event of the same name (see ``TIMELINE_EVENTS``)."""

    entry: TimelineEntry


DisputeEffect = TimerCommand | Recorded


@dataclass
class Dispute:
    dispute_id: str
    order_id: str
    buyer_id: str
    seller_id: str
    reason: Reason
    description: str
    item_ids: list[str]
    order_total: Money
    created_at: datetime
    updated_at: datetime
    status: Status = Status.AWAITING_SELLER
    offers: list[Offer] = field(default_factory=list)
    resolution: Resolution | None = None
    # The refund its resolution owes: a reference only. The order's ledger is the refund's one
    # record; where the dispute is shown, its refund is read from there (services DisputeView).
    refund_id: str | None = None
    return_shipment: ReturnShipment | None = None
    phase_due_at: datetime | None = None
    escalated_at: datetime | None = None
    mediation_overdue: bool = False
    timeline: list[TimelineEntry] = field(default_factory=list)
    version: int | None = None
    # Accepted photos and videos of the buyer, counted as they are accepted (the evidence
    # checklist reads this instead of listing the files).
    buyer_visual_evidence: int = 0
    # Each party's upload places taken now and slots ever asked for (role -> count), kept on the
    # dispute's item by the evidence writes beside their quota, so a read of the dispute knows
    # whether another slot would be refused.
    evidence_used: dict[str, int] = field(default_factory=dict)
    evidence_created: dict[str, int] = field(default_factory=dict)
    # The moderator holding the case (stored beside the document; see Assignment).
    assignment: Assignment | None = None
    # The fault a resolution still to come will carry: a moderator's return decision, or a
    # return agreed by the parties (the refund is paid once the item is back).
    pending_fault: Fault | None = None
    # When its order was placed: every standing fact of the dispute counts on that day.
    order_placed_at: datetime | None = None
    # What matching DRY_RUN rules would have done (moderators only): [{rule_id, version, would}].
    rule_suggestions: list[RuleSuggestion] = field(default_factory=list)
    # What a change asks of the outside world, never stored on the dispute itself (as
    # ``Order.effects``): the timeline entries to publish, and the phase timers to stop and start.
    # The repository takes them when the dispute is saved; the unit of work commits them.
    effects: list[DisputeEffect] = field(default_factory=list, compare=False, repr=False)

    # ---- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, *, order_id: str, buyer_id: str, seller_id: str, order_total: Money, reason: Reason,
             description: str, requested: Solution, amount: Money | None, item_ids: list[str],
             now: datetime, policy: Policy, order_placed_at: datetime | None = None) -> Dispute:
        """The buyer's complaint; their requested solution is the first offer."""
        d = cls(dispute_id=str(uuid.uuid4()), order_id=order_id, buyer_id=buyer_id, seller_id=seller_id,
                reason=reason, description=description, item_ids=item_ids, order_total=order_total,
                created_at=now, updated_at=now, order_placed_at=order_placed_at or now)
        d._enter_phase(Status.AWAITING_SELLER, now, policy, first=True)
        d._record(now, Actor.BUYER, "dispute.opened", {"reason": reason.value})
        d._add_offer(Actor.BUYER, requested, amount, description, now)
        return d

    # ---- the party actions ----------------------------------------------------------------
    def make_offer(self, actor: Actor, kind: Solution, amount: Money | None, message: str | None,
                   now: datetime, policy: Policy) -> Offer:
        target = self._allowed(Command.MAKE_OFFER, actor)
        if sum(1 for o in self.offers if o.by == actor.value) >= policy.max_offers_per_side:
            raise RuleViolation(f"at most {policy.max_offers_per_side} offers per side",
                                code="OFFER_LIMIT_REACHED", details={"limit": policy.max_offers_per_side})
        offer = self._add_offer(actor, kind, amount, message, now)
        self._transition(target, now, policy)
        return offer

    def accept(self, actor: Actor, offer_id: str, now: datetime, policy: Policy) -> None:
        offer = self._offer(offer_id)
        if actor.value == offer.by:
            raise Forbidden("you cannot accept your own offer", code="NOT_YOUR_ACTION")
        if offer.status is not OfferStatus.OPEN:
            raise Conflict(f"the offer is {offer.status.value}", code="OFFER_NOT_OPEN",
                           details={"status": offer.status.value})
        self._agree(actor, offer, now, policy)

    def reject(self, actor: Actor, message: str, now: datetime, policy: Policy) -> None:
        target = self._allowed(Command.REJECT, actor)
        self._record(now, actor, "dispute.request_rejected", {"message": message})
        self._transition(target, now, policy)

    def escalate(self, actor: Actor, message: str | None, now: datetime, policy: Policy) -> None:
        """Ask the platform to decide. A buyer must first meet the evidence checklist (a stalled
        negotiation still escalates by itself: the deadline does not wait for photos)."""
        target = self._allowed(Command.ESCALATE, actor)
        missing = self.evidence_checklist()["missing"]
        if actor is Actor.BUYER and missing:
            raise RuleViolation("upload the evidence this reason needs before escalating", code="EVIDENCE_REQUIRED",
                                details={"missing": list(missing)})
        self.escalated_at = now
        self._record(now, actor, "dispute.escalated", {"message": message} if message else {})
        self._transition(target, now, policy)

    def cancel(self, actor: Actor, message: str | None, now: datetime, policy: Policy) -> None:
        target = self._allowed(Command.CANCEL, actor)
        self._record(now, actor, "dispute.cancelled", {"message": message} if message else {})
        self._transition(target, now, policy)

    def decide(self, outcome: Decision, amount: Money | None, rationale: str, now: datetime, policy: Policy, *,
               by: str, fault: Fault | None = None) -> None:
        """A moderator's decision, always with a written rationale and whose fault it was (by
        default the seller's when the buyer gets money back, nobody's when refused)."""
        outcome = Decision(outcome)
        command = Command.DECIDE_RETURN if outcome is Decision.RETURN_AND_REFUND else Command.DECIDE
        target = self._allowed(command, Actor.MODERATOR)
        self.require_not_held_by_other(by, now)
        if command is Command.DECIDE_RETURN:
            self._check_solution(Solution.RETURN_AND_REFUND)  # decisions obey the rules offers obey
        refund = checked_amount(outcome.value, amount, self.order_total)
        fault = fault or default_fault(outcome.value)
        # Which moderator decided (the case team reads it; views.dispute keeps it from the parties).
        self._record(now, Actor.MODERATOR, "dispute.decided", {"outcome": outcome.value, "amount": _m(refund),
                                                                "rationale": rationale, "fault": fault.value,
                                                                "moderator_id": by})
        if command is Command.DECIDE_RETURN:
            self.pending_fault = fault
            self._transition(target, now, policy)  # the full refund is paid when the item is back
            return
        self._resolve(Outcome(outcome.value), refund, Actor.MODERATOR, rationale, now, target, policy, fault)

    def apply_rule(self, rule_id: str, version: int, then: str, description: str, now: datetime,
                   policy: Policy) -> None:
        """An ACTIVE auto-resolution rule acts as the dispute opens, through the transition table:
        REFUND_FULL resolves it like a decision (the order's total, the seller's fault, the same
        ledger), ESCALATE sends it to the moderators' queue."""
        named: JSONObject = {"rule_id": rule_id, "version": version}
        if then == "ESCALATE":
            target = self._allowed(Command.RULE_ESCALATE, Actor.SYSTEM)
            self.escalated_at = now
            self._record(now, Actor.SYSTEM, "dispute.escalated", {"rule": named})
            self._transition(target, now, policy)
            return
        target = self._allowed(Command.RULE_REFUND, Actor.SYSTEM)
        rationale = f"auto-resolution rule {rule_id} (version {version}): {description}"
        self._resolve(Outcome.REFUND_FULL, self.order_total, Actor.SYSTEM, rationale, now, target, policy,
                      default_fault(Outcome.REFUND_FULL.value))
        assert self.resolution is not None
        self.resolution = replace(self.resolution, rule=RuleRef(rule_id, version))

    # ---- the case team's ownership of an escalated case ----------------------------------
    def holder(self, now: datetime) -> Assignment | None:
        """The moderator's claim that still holds, if any (an expired claim holds nothing)."""
        return self.assignment if self.assignment is not None and self.assignment.holds(now) else None

    def require_not_held_by_other(self, moderator_id: str, now: datetime) -> None:
        held = self.holder(now)
        if held is not None and held.moderator_id != moderator_id:
            raise case_claimed(held)

    def claim(self, moderator_id: str, now: datetime, policy: Policy) -> Assignment:
        """Take the case, or renew one's own claim, for the lease (escalated cases only)."""
        if self.status is not Status.ESCALATED:
            raise Conflict("only an escalated case can be claimed", code="INVALID_STATE",
                           details={"status": self.status.value})
        self.require_not_held_by_other(moderator_id, now)
        held = self.holder(now)
        self.assignment = Assignment(moderator_id, held.claimed_at if held else now, now + policy.claim_lease)
        return self.assignment

    def release(self, moderator_id: str, now: datetime) -> bool:
        """Give the case back; False when there was nothing of the caller's to give back."""
        self.require_not_held_by_other(moderator_id, now)
        if self.holder(now) is None:
            return False
        self.assignment = None
        return True

    def may_claim(self, moderator_id: str, now: datetime) -> bool:
        held = self.holder(now)
        return self.status is Status.ESCALATED and (held is None or held.moderator_id == moderator_id)

    def ship_return(self, actor: Actor, carrier: str, tracking_number: str, now: datetime, policy: Policy) -> None:
        target = self._allowed(Command.SHIP_RETURN, actor)
        self.return_shipment = ReturnShipment(carrier, tracking_number, now)
        self._record(now, actor, "dispute.return_shipped", {"carrier": carrier, "tracking_number": tracking_number})
        self._transition(target, now, policy)

    def contest_return(self, actor: Actor, reason: ReturnProblem, message: str, now: datetime, policy: Policy) -> None:
        """The seller contests the return before its receipt deadline: a moderator decides, with
        the seller's evidence, instead of the refund being paid by default."""
        target = self._allowed(Command.CONTEST_RETURN, actor)
        self.escalated_at = now
        self.mediation_overdue = False  # a new mediation, with its own target
        self._record(now, actor, "dispute.return_contested", {"reason": ReturnProblem(reason).value, "message": message})
        self._transition(target, now, policy)

    def confirm_return(self, actor: Actor, now: datetime, policy: Policy) -> None:
        target = self._allowed(Command.CONFIRM_RETURN, actor)
        why = "the seller confirmed the returned item arrived" if actor is Actor.SELLER else \
            "the seller did not confirm receipt of the return in time"
        self._record(now, actor, "dispute.return_received", {})
        # Never confirmed in time: the seller's failure; confirmed: what was agreed or decided.
        fault = Fault.SELLER if actor is Actor.SYSTEM else (self.pending_fault or Fault.SELLER)
        self._resolve(Outcome.REFUND_FULL, self.order_total, actor, why, now, target, policy, fault)

    # ---- the timers -----------------------------------------------------------------------
    def expire(self, action: str, now: datetime, policy: Policy, early: bool = False) -> None:
        """A phase deadline passed: apply its default outcome, through the same transitions.
        ``early``: the sandbox makes it pass now, before its due date."""
        phase = self.pending_phase()
        if phase is None or phase.action != action:
            raise Conflict(f"no {action} deadline is pending", code="INVALID_STATE",
                           details={"status": self.status.value})
        if not early and self.phase_due_at is not None and now + policy.timer_tolerance < self.phase_due_at:
            raise Conflict(f"the {action} deadline has not passed", code="NOT_DUE",
                           details={"due_at": fmt(self.phase_due_at)})
        self._record(now, Actor.SYSTEM, "dispute.deadline_expired", {"action": action})
        if action == "SELLER_RESPONSE":
            offer = next(o for o in self.offers if o.by == "buyer" and o.status is OfferStatus.OPEN)
            self._agree(Actor.SYSTEM, offer, now, policy)
        elif action == "NEGOTIATION":
            self.escalate(Actor.SYSTEM, None, now, policy)
        elif action == "MEDIATION":
            target = self._allowed(Command.FLAG_OVERDUE, Actor.SYSTEM)
            self.mediation_overdue = True
            self._transition(target, now, policy)
        elif action == "RETURN_SHIPMENT":
            target = self._allowed(Command.CLOSE_FOR_SELLER, Actor.SYSTEM)
            self._resolve(Outcome.REJECTED, None, Actor.SYSTEM, "the buyer did not ship the return in time",
                          now, target, policy, Fault.NONE)
        elif action == "RETURN_RECEIPT":
            self.confirm_return(Actor.SYSTEM, now, policy)

    # ---- derived views --------------------------------------------------------------------
    def actor_for(self, sub: str | None, is_moderator: bool) -> Actor | None:
        """The caller's part: ``sub`` is a person's id (None for a service, never a party)."""
        if sub is None:
            return Actor.MODERATOR if is_moderator else None
        if sub == self.buyer_id:
            return Actor.BUYER
        if sub == self.seller_id:
            return Actor.SELLER
        return Actor.MODERATOR if is_moderator else None

    def pending_phase(self) -> Phase | None:
        """The phase whose deadline has yet to expire: none once the dispute ended, nor once its
        mediation was flagged overdue (that flag is the mediation deadline's whole effect)."""
        if self.status is Status.ESCALATED and self.mediation_overdue:
            return None
        return PHASES.get(self.status)

    def is_overdue(self, now: datetime) -> bool:
        """The one rule of an overdue mediation: escalated, and flagged by its timer (or the
        sandbox) or past its target. The moderation queue's ``overdue`` filter says the same."""
        if self.status is not Status.ESCALATED:
            return False
        return self.mediation_overdue or (self.phase_due_at is not None and now >= self.phase_due_at)

    def may_take_evidence_slot(self, actor: Actor) -> bool:
        """A party of an open dispute with a free place of their quota (the limit the evidence
        write enforces)."""
        if not self.is_open or actor not in (Actor.BUYER, Actor.SELLER):
            return False
        return has_free_place(self.evidence_used.get(actor.value, 0), self.evidence_created.get(actor.value, 0))

    def evidence_checklist(self) -> dict[str, Any]:
        return checklist(self.reason, self.buyer_visual_evidence)

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def seller_at_fault(self) -> bool:
        """Resolved with the seller at fault: a defect of theirs (seller standing)."""
        return self.status is Status.RESOLVED and self.resolution is not None and self.resolution.fault is Fault.SELLER

    def settlement(self) -> tuple[str | None, Money | None, str | None]:
        """What the order must do now that the dispute ended: (outcome, refund, refund_id). No
        outcome (cancelled) leaves the order protected; RESEND keeps the money held for the
        replacement; otherwise the refund is owed and the rest goes to the seller."""
        if self.status is not Status.RESOLVED or self.resolution is None:
            return None, None, None
        outcome = self.resolution.outcome.value
        if self.refund_id is None or self.resolution.amount is None:
            return outcome, None, None
        return outcome, self.resolution.amount, self.refund_id

    def deadlines(self, policy: Policy, now: datetime, refund: Refund | None = None) -> list[dict[str, Any]]:
        """Every pending action: who must act, by when, and what happens by default. ``refund``:
        the order's refund this dispute owes (its settlement is the platform's to wait for)."""
        out: list[dict[str, Any]] = []
        phase = PHASES.get(self.status)
        if phase is not None and self.phase_due_at is not None:
            actor = phase.actor
            if self.status is Status.NEGOTIATING:
                actor = self._whose_turn()
            out.append({"action": phase.action, "actor": actor, "due_at": fmt(self.phase_due_at),
                        "on_expiry": phase.on_expiry,
                        **({"overdue": True} if self.is_overdue(now) else {})})
        if refund is not None and refund.status is RefundStatus.PENDING:
            due = refund.settle_by or refund.created_at + policy.refund_settlement
            out.append({"action": "REFUND_SETTLEMENT", "actor": "platform", "due_at": fmt(due),
                        "on_expiry": "ALARM_AND_RETRY"})
        elif refund is not None and refund.awaits_retry(refund.attempt):
            # Failed, and the machine tries again after its backoff (Order.refund_failed starts that
            # timer when the failure is recorded: the refund's last move).
            failed_at = refund.history[-1].at if refund.history else refund.updated_at
            out.append({"action": "REFUND_RETRY", "actor": "platform",
                        "due_at": fmt(failed_at + retry_delay(policy.refund_retry, refund.attempt)),
                        "on_expiry": "RETRY_REFUND"})
        return out

    def allowed(self, actor: Actor, policy: Policy) -> list[tuple[Command, str | None]]:
        """What ``actor`` may do now, read from the one transition table and the same guards the
        actions check: (command, offer id for an acceptance)."""
        out: list[tuple[Command, str | None]] = []
        for (command, status), actors in TRANSITIONS.items():
            if status is not self.status or actor not in actors or command in ACCEPT_COMMAND.values():
                continue
            if command is Command.MAKE_OFFER and sum(1 for o in self.offers if o.by == actor.value) \
                    >= policy.max_offers_per_side:
                continue
            if command is Command.ESCALATE and actor is Actor.BUYER and self.evidence_checklist()["missing"]:
                continue
            if command is Command.DECIDE_RETURN and self.reason is Reason.NOT_RECEIVED:
                continue
            out.append((command, None))
        for offer in self.offers:
            actors = TRANSITIONS.get((ACCEPT_COMMAND[offer.type], self.status), {})
            if offer.status is OfferStatus.OPEN and offer.by != actor.value and actor in actors:
                out.append((ACCEPT_COMMAND[offer.type], offer.offer_id))
        return out

    @staticmethod
    def authorize(command: Command, actor: Actor) -> None:
        """403 if ``actor`` may never give ``command``, whatever the dispute's state: asked before
        anything about the state (a stale version, a wrong phase) is said to them."""
        if not any(actor in actors for (cmd, _), actors in TRANSITIONS.items() if cmd is command):
            raise Forbidden(f"{actor.value} cannot {command.value.lower().replace('_', ' ')}", code="NOT_YOUR_ACTION")

    # ---- internals ------------------------------------------------------------------------
    def _allowed(self, command: Command, actor: Actor) -> Status:
        """The state after ``command`` by ``actor``, or the refusal openapi.yaml names."""
        self.authorize(command, actor)
        actors = TRANSITIONS.get((command, self.status))
        if actors is None or actor not in actors:
            raise Conflict(f"not possible while the dispute is {self.status.value}", code="INVALID_STATE",
                           details={"status": self.status.value})
        return actors[actor]

    def _agree(self, actor: Actor, offer: Offer, now: datetime, policy: Policy) -> None:
        target = self._allowed(ACCEPT_COMMAND[offer.type], actor)
        offer.status = OfferStatus.ACCEPTED
        self._record(now, actor, "dispute.offer_accepted", {"offer_id": offer.offer_id, "type": offer.type.value})
        refund = checked_amount(offer.type.value, offer.amount, self.order_total)
        fault = Fault.SELLER if actor is Actor.SYSTEM else self._agreement_fault(offer, actor, now, policy)
        if offer.type is Solution.RETURN_AND_REFUND:
            self.pending_fault = fault
            self._transition(target, now, policy)  # the full refund is paid when the item is back
            return
        outcome = Outcome.RESEND if offer.type is Solution.RESEND else Outcome(offer.type.value)
        why = ("the seller did not respond in time" if actor is Actor.SYSTEM
               else f"the {actor.value} accepted the {offer.by}'s offer")
        self._resolve(outcome, refund, actor, why, now, target, policy, fault)

    def _agreement_fault(self, offer: Offer, actor: Actor, now: datetime, policy: Policy) -> Fault:
        """An agreement is no defect when the seller settled early: offered it, or accepted it,
        within the early-settlement period of the dispute's opening."""
        deadline = self.created_at + policy.early_settlement
        early = (offer.by == Actor.SELLER.value and offer.created_at <= deadline) or \
            (actor is Actor.SELLER and now <= deadline)
        return Fault.NONE if early else Fault.SELLER

    def _resolve(self, outcome: Outcome, refund: Money | None, by: Actor, rationale: str, now: datetime,
                 target: Status, policy: Policy, fault: Fault) -> None:
        self.resolution = Resolution(outcome, refund if outcome in (Outcome.REFUND_FULL, Outcome.REFUND_PARTIAL)
                                     else None, by, rationale, now, fault)
        self.pending_fault = None
        if outcome in (Outcome.REFUND_FULL, Outcome.REFUND_PARTIAL) and refund is not None:
            # The refund is recorded with the resolution, in the same write: paying it out is
            # a separate, idempotent step keyed by refund_id, so it can never be lost or doubled.
            # The order records it (Order.settle_dispute) under this id, for the resolution's amount.
            self.refund_id = str(uuid.uuid4())
        self._record(now, by, "dispute.resolved", {"outcome": outcome.value, "amount": _m(refund),
                                                   "fault": fault.value})
        self._transition(target, now, policy)

    def _transition(self, target: Status, now: datetime, policy: Policy) -> None:
        if target is not self.status and self.status is Status.ESCALATED:
            self.assignment = None  # a case that left the queue is nobody's any more
        if target is not self.status:
            if self.status in NEGOTIABLE and target not in NEGOTIABLE:
                for o in self.offers:
                    if o.status is OfferStatus.OPEN:
                        o.status = OfferStatus.WITHDRAWN
            self._enter_phase(target, now, policy)
        self.updated_at = now

    def _enter_phase(self, status: Status, now: datetime, policy: Policy, first: bool = False) -> None:
        old = None if first else PHASES.get(self.status)
        if old is not None:
            self.effects.append(TimerCommand(STOP, self.dispute_id, old.action, refs={"dispute_id": self.dispute_id}))
        self.status = status
        phase = PHASES.get(status)
        self.phase_due_at = None if phase is None else now + _duration(policy, phase.duration)
        if phase is not None and self.phase_due_at is not None:
            remind_at = self.phase_due_at - policy.reminder_before
            self.effects.append(TimerCommand(
                START, self.dispute_id, phase.action, due_at=self.phase_due_at, refs={"dispute_id": self.dispute_id},
                # Parties get a reminder before their deadline, if there is time for one.
                remind_at=remind_at if phase.actor in ("buyer", "seller") and remind_at > now else None))

    def _add_offer(self, actor: Actor, kind: Solution, amount: Money | None, message: str | None,
                   now: datetime) -> Offer:
        self._check_solution(kind)
        refunds = checked_amount(kind.value, amount, self.order_total)  # what it would refund
        for o in self.offers:
            if o.by == actor.value and o.status is OfferStatus.OPEN:
                o.status = OfferStatus.SUPERSEDED
        offer = Offer(offer_id=str(uuid.uuid4()), by=actor.value, type=kind,
                      amount=amount if kind is Solution.REFUND_PARTIAL else None, message=message,
                      status=OfferStatus.OPEN, created_at=now)
        self.offers.append(offer)
        # The timeline shows what it would refund, as offers[].amount does (the total for full refunds).
        self._record(now, actor, "dispute.offer_made", {"offer_id": offer.offer_id, "type": kind.value,
                                                        "amount": _m(refunds)})
        return offer

    def _check_solution(self, kind: Solution) -> None:
        if self.reason is Reason.NOT_RECEIVED and kind is Solution.RETURN_AND_REFUND:
            raise RuleViolation("an item never received cannot be returned", code="SOLUTION_NOT_ALLOWED")

    def _offer(self, offer_id: str) -> Offer:
        for o in self.offers:
            if o.offer_id == offer_id:
                return o
        raise NotFound("no such offer on this dispute", code="OFFER_NOT_FOUND")

    def _whose_turn(self) -> str:
        """In negotiation, the party that did not make the last move (an offer or a refusal)."""
        moves = [e.actor for e in self.timeline if e.event in ("dispute.offer_made", "dispute.request_rejected")]
        return "buyer" if moves and moves[-1] is Actor.SELLER else "seller"

    def _record(self, now: datetime, actor: Actor, event: str, details: JSONObject) -> None:
        entry = TimelineEntry.new(now, actor, event, details)
        self.timeline.append(entry)
        self.effects.append(Recorded(entry))

    # ---- persistence shape ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored document (everything but the version)."""
        return {
            "dispute_id": self.dispute_id, "order_id": self.order_id, "buyer_id": self.buyer_id,
            "seller_id": self.seller_id, "reason": self.reason.value, "description": self.description,
            "item_ids": list(self.item_ids), "order_total": self.order_total.to_dict(),
            "status": self.status.value, "offers": [o.to_dict() for o in self.offers],
            "resolution": self.resolution.to_dict() if self.resolution else None, "refund_id": self.refund_id,
            "return_shipment": self.return_shipment.to_dict() if self.return_shipment else None,
            "phase_due_at": fmt(self.phase_due_at), "escalated_at": fmt(self.escalated_at),
            "mediation_overdue": self.mediation_overdue, "timeline": [e.to_dict() for e in self.timeline],
            "pending_fault": self.pending_fault.value if self.pending_fault else None,
            "order_placed_at": fmt(self.order_placed_at), "rule_suggestions": [s.to_dict() for s in self.rule_suggestions],
            "created_at": fmt(self.created_at), "updated_at": fmt(self.updated_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], version: int | None, buyer_visual_evidence: int = 0,
                  evidence_used: dict[str, int] | None = None,
                  evidence_created: dict[str, int] | None = None, assignment: Assignment | None = None) -> Dispute:
        return cls(
            dispute_id=d["dispute_id"], order_id=d["order_id"], buyer_id=d["buyer_id"], seller_id=d["seller_id"],
            reason=Reason(d["reason"]), description=d["description"], item_ids=list(d.get("item_ids") or []),
            order_total=Money.from_dict(d["order_total"]), status=Status(d["status"]),
            offers=[Offer.from_dict(o) for o in d.get("offers") or []], resolution=Resolution.from_dict(d.get("resolution")),
            refund_id=_refund_id(d), return_shipment=ReturnShipment.from_dict(d.get("return_shipment")),
            phase_due_at=parse_opt(d.get("phase_due_at")), escalated_at=parse_opt(d.get("escalated_at")),
            mediation_overdue=bool(d.get("mediation_overdue")),
            timeline=[TimelineEntry.from_dict(e) for e in d.get("timeline") or []],
            created_at=parse(d["created_at"]), updated_at=parse(d["updated_at"]), version=version,
            buyer_visual_evidence=buyer_visual_evidence, evidence_used=dict(evidence_used or {}),
            evidence_created=dict(evidence_created or {}), assignment=assignment,
            pending_fault=Fault(d["pending_fault"]) if d.get("pending_fault") else None,
            order_placed_at=parse_opt(d.get("order_placed_at")) or parse(d["created_at"]),
            rule_suggestions=[RuleSuggestion.from_dict(s) for s in d.get("rule_suggestions") or []],
        )


# Timeline details only the case team reads: never shown to a party, never in a published event.
CASE_TEAM_DETAILS = frozenset({"moderator_id"})


def refund_timeline(refund: Refund) -> list[TimelineEntry]:
    """The timeline entries of the refund a dispute owes, from the order's record of its moves
    (the order publishes the money events: these are shown, never published)."""
    return [TimelineEntry.new(m.at, Actor.SYSTEM, f"{REFUND_EVENT_PREFIX}{m.status.value.lower()}",
                              {"refund_id": refund.refund_id, "attempt": m.attempt, "failure_reason": m.failure_reason})
            for m in refund.history]


def _refund_id(d: dict[str, Any]) -> str | None:
    """Items stored before the order's ledger became the refund's only record carried a copy of
    it (a ``refund`` map); deployed tables still hold such items, so their reference is read there."""
    if d.get("refund_id"):
        return str(d["refund_id"])
    copy = d.get("refund")
    return str(copy["refund_id"]) if copy else None


def party_details(details: JSONObject) -> dict[str, JSONValue]:
    """A timeline entry's details as a party (or a subscriber forwarding to parties) may see them."""
    return {k: v for k, v in details.items() if k not in CASE_TEAM_DETAILS}


def default_fault(outcome: str) -> Fault:
    """A moderator's decision that gives the buyer money back is the seller's fault unless said
    otherwise; a refusal is nobody's."""
    return Fault.NONE if outcome == Outcome.REJECTED.value else Fault.SELLER


def _m(money: Money | None) -> dict[str, Any] | None:
    return None if money is None else money.to_dict()


def _duration(policy: Policy, name: str) -> timedelta:
    value = getattr(policy, name)
    assert isinstance(value, timedelta)
    return value
