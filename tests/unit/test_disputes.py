"""The dispute's rules and its transition table, without AWS."""
from datetime import timedelta

import pytest

from chalicelib.domain.catalog import Reason, Solution
from chalicelib.domain.disputes import PHASES, TRANSITIONS, Actor, Command, Dispute, Status
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, RuleViolation
from chalicelib.domain.money import Money
from chalicelib.domain.policy import Policy
from chalicelib.domain.timefmt import fmt
from chalicelib.domain.timers import TimerCommand
from tests.support import T0

POLICY = Policy()
USD = "USD"
B, S, M, SYS = Actor.BUYER, Actor.SELLER, Actor.MODERATOR, Actor.SYSTEM


def opened(reason=Reason.NOT_AS_DESCRIBED, requested=Solution.REFUND_PARTIAL, amount=500) -> Dispute:
    return Dispute.open(order_id="o-1", buyer_id="b-1", seller_id="s-1", order_total=Money(2000, USD),
                        reason=reason, description="Ordered red, received blue", requested=requested,
                        amount=Money(amount, USD) if requested is Solution.REFUND_PARTIAL else None,
                        item_ids=[], now=T0, policy=POLICY)


def negotiating() -> Dispute:
    d = opened()
    d.buyer_visual_evidence = 1  # the buyer's photo is in: escalation is open to them
    d.reject(S, "The colour is as shown", T0, POLICY)
    return d


def escalated() -> Dispute:
    d = negotiating()
    d.escalate(B, None, T0, POLICY)
    return d


def test_opening_awaits_the_seller_with_the_buyers_request_as_first_offer():
    d = opened()
    assert d.status is Status.AWAITING_SELLER
    assert [(o.by, o.type, o.status) for o in d.offers] == [("buyer", Solution.REFUND_PARTIAL, "OPEN")]
    assert d.deadlines(POLICY, T0) == [{"action": "SELLER_RESPONSE", "actor": "seller", "due_at": "2026-11-08T12:00:00Z",
                                    "on_expiry": "GRANT_BUYER_REQUEST"}]


@pytest.mark.parametrize("amount", [0, 2000, 2500])
def test_a_partial_refund_must_be_more_than_nothing_and_less_than_the_total(amount):
    with pytest.raises(RuleViolation) as err:
        opened(amount=amount)
    assert err.value.code == "INVALID_AMOUNT"


def test_a_partial_refund_in_another_currency_is_refused():
    with pytest.raises(RuleViolation) as err:
        Dispute.open(order_id="o", buyer_id="b", seller_id="s", order_total=Money(2000, USD),
                     reason=Reason.MISSING_PARTS, description="x" * 10, requested=Solution.REFUND_PARTIAL,
                     amount=Money(500, "EUR"), item_ids=[], now=T0, policy=POLICY)
    assert err.value.code == "INVALID_AMOUNT"


def test_an_item_never_received_cannot_be_returned():
    with pytest.raises(RuleViolation):
        opened(reason=Reason.NOT_RECEIVED, requested=Solution.RETURN_AND_REFUND)


def test_seller_accepting_the_request_resolves_with_that_refund():
    d = opened()
    d.accept(S, d.offers[0].offer_id, T0, POLICY)
    assert d.status is Status.RESOLVED
    assert d.resolution.to_dict()["outcome"] == "REFUND_PARTIAL" and d.resolution.to_dict()["decided_by"] == "seller"
    assert d.settlement()[:2] == ("REFUND_PARTIAL", Money(500, USD))
    # Only the reference: the order records the refund (status, attempts) under this id.
    assert d.refund_id is not None and d.settlement() == ("REFUND_PARTIAL", Money(500, USD), d.refund_id)


def test_a_party_cannot_accept_its_own_offer():
    d = opened()
    with pytest.raises(Forbidden):
        d.accept(B, d.offers[0].offer_id, T0, POLICY)


def test_a_seller_counter_offer_starts_negotiation_and_each_side_keeps_one_open_offer():
    d = opened()
    first = d.make_offer(S, Solution.REFUND_PARTIAL, Money(200, USD), "Half?", T0, POLICY)
    assert d.status is Status.NEGOTIATING
    second = d.make_offer(S, Solution.REFUND_PARTIAL, Money(300, USD), None, T0, POLICY)
    assert first.status == "SUPERSEDED" and second.status == "OPEN"
    assert d.deadlines(POLICY, T0)[0]["action"] == "NEGOTIATION"
    assert d.deadlines(POLICY, T0)[0]["actor"] == "buyer"  # the seller's offer waits on the buyer


def test_at_most_three_offers_per_side():
    d = opened()  # the request is the buyer's first
    d.make_offer(B, Solution.REFUND_FULL, None, None, T0, POLICY)
    d.make_offer(B, Solution.REFUND_PARTIAL, Money(900, USD), None, T0, POLICY)
    with pytest.raises(RuleViolation) as err:
        d.make_offer(B, Solution.REFUND_FULL, None, None, T0, POLICY)
    assert err.value.code == "OFFER_LIMIT_REACHED"


def test_accepting_a_superseded_offer_is_a_conflict():
    d = opened()
    old = d.offers[0].offer_id
    d.make_offer(B, Solution.REFUND_FULL, None, None, T0, POLICY)
    with pytest.raises(Conflict) as err:
        d.accept(S, old, T0, POLICY)
    assert err.value.code == "OFFER_NOT_OPEN"
    with pytest.raises(NotFound):
        d.accept(S, "nope", T0, POLICY)


def test_accepting_return_and_refund_waits_for_the_return_then_pays_on_receipt():
    d = negotiating()
    offer = d.make_offer(S, Solution.RETURN_AND_REFUND, None, None, T0, POLICY)
    d.accept(B, offer.offer_id, T0, POLICY)
    assert d.status is Status.AWAITING_RETURN and d.deadlines(POLICY, T0)[0]["action"] == "RETURN_SHIPMENT"
    d.ship_return(B, "CP", "RR1", T0, POLICY)
    assert d.status is Status.RETURN_IN_TRANSIT and d.deadlines(POLICY, T0)[0]["actor"] == "seller"
    d.confirm_return(S, T0, POLICY)
    assert d.status is Status.RESOLVED and d.resolution.to_dict()["outcome"] == "REFUND_FULL"
    assert d.settlement()[1] == Money(2000, USD)


def test_accepting_resend_resolves_and_keeps_the_escrow_held():
    d = negotiating()
    offer = d.make_offer(S, Solution.RESEND, None, "Sending another", T0, POLICY)
    d.accept(B, offer.offer_id, T0, POLICY)
    assert d.resolution.to_dict()["outcome"] == "RESEND" and d.settlement() == ("RESEND", None, None) and d.refund_id is None


def test_escalation_is_only_from_negotiation():
    with pytest.raises(Conflict) as err:
        opened().escalate(B, None, T0, POLICY)
    assert err.value.code == "INVALID_STATE"
    d = escalated()
    assert d.status is Status.ESCALATED and d.escalated_at == T0
    assert all(o.status != "OPEN" for o in d.offers)  # nothing left to accept once the platform decides


def test_only_moderators_decide_and_a_decision_needs_escalation():
    d = escalated()
    with pytest.raises(Forbidden):
        d._allowed(Command.DECIDE, B)
    with pytest.raises(Conflict):
        negotiating().decide("REJECTED", None, "Photos show the listed colour.", T0, POLICY, by="m-1")
    d.decide("REFUND_PARTIAL", Money(700, USD), "Colour differs slightly from the listing.", T0, POLICY, by="m-1")
    assert d.resolution.to_dict() == {"outcome": "REFUND_PARTIAL", "amount": {"amount": 700, "currency": USD},
                            "decided_by": "moderator", "rationale": "Colour differs slightly from the listing.",
                            "resolved_at": "2026-11-01T12:00:00Z", "fault": "SELLER"}


def test_a_rejected_decision_releases_everything_to_the_seller():
    d = escalated()
    d.decide("REJECTED", None, "Tracking shows delivery to the buyer's door.", T0, POLICY, by="m-1")
    assert d.settlement() == ("REJECTED", None, None) and d.refund_id is None


def test_the_seller_cannot_cancel_and_the_buyer_cannot_cancel_twice():
    d = opened()
    with pytest.raises(Forbidden):
        d.cancel(S, None, T0, POLICY)
    d.cancel(B, "Parcel arrived after all", T0, POLICY)
    assert d.status is Status.CANCELLED and d.settlement() == (None, None, None)
    with pytest.raises(Conflict):
        d.cancel(B, None, T0, POLICY)


def test_seller_silence_grants_the_buyers_request():
    d = opened()
    with pytest.raises(Conflict):
        d.expire("SELLER_RESPONSE", T0 + timedelta(days=6), POLICY)
    d.expire("SELLER_RESPONSE", T0 + timedelta(days=7), POLICY)
    assert d.status is Status.RESOLVED and d.resolution.to_dict()["decided_by"] == "system"
    assert d.settlement()[:2] == ("REFUND_PARTIAL", Money(500, USD))


def test_a_stalled_negotiation_escalates():
    d = negotiating()
    d.expire("NEGOTIATION", T0 + timedelta(days=7), POLICY)
    assert d.status is Status.ESCALATED


def test_an_overdue_mediation_is_flagged_never_decided():
    d = escalated()
    d.expire("MEDIATION", T0 + timedelta(days=14), POLICY)
    assert d.status is Status.ESCALATED and d.mediation_overdue and d.resolution is None
    assert d.deadlines(POLICY, T0 + timedelta(days=14))[0]["overdue"] is True


def test_a_contested_return_is_a_new_mediation_not_yet_overdue():
    d = escalated()
    d.expire("MEDIATION", T0 + timedelta(days=14), POLICY)
    d.decide("RETURN_AND_REFUND", None, "Item must come back for inspection.", T0 + timedelta(days=15), POLICY, by="m-1")
    d.ship_return(B, "CP", "RR1", T0 + timedelta(days=16), POLICY)
    d.contest_return(S, "EMPTY_BOX", "The box came back empty", T0 + timedelta(days=17), POLICY)
    assert d.status is Status.ESCALATED and not d.mediation_overdue
    assert "overdue" not in d.deadlines(POLICY, T0 + timedelta(days=17))[0]


def test_a_return_never_shipped_closes_for_the_seller_and_one_never_confirmed_pays_the_buyer():
    d = escalated()
    d.decide("RETURN_AND_REFUND", None, "Item must come back for inspection.", T0, POLICY, by="m-1")
    later = T0 + timedelta(days=10)
    d.expire("RETURN_SHIPMENT", later, POLICY)
    assert d.resolution.to_dict()["outcome"] == "REJECTED"

    d = escalated()
    d.decide("RETURN_AND_REFUND", None, "Item must come back for inspection.", T0, POLICY, by="m-1")
    d.ship_return(B, "CP", "RR1", T0, POLICY)
    d.expire("RETURN_RECEIPT", later, POLICY)
    assert d.resolution.to_dict()["outcome"] == "REFUND_FULL" and d.resolution.to_dict()["decided_by"] == "system"


def test_a_timer_for_a_phase_already_left_is_a_conflict():
    d = opened()
    d.accept(S, d.offers[0].offer_id, T0, POLICY)
    with pytest.raises(Conflict):
        d.expire("SELLER_RESPONSE", T0 + timedelta(days=8), POLICY)


# Who may ever give each command: the transition table's actors, stated once, by hand. The access
# tests draw each route's callers from TRANSITIONS (tests/unit/walk.py); this holds TRANSITIONS to it.
GIVEN_BY = {
    Command.MAKE_OFFER: {B, S},
    Command.ACCEPT_REFUND: {B, S, SYS},
    Command.ACCEPT_RESEND: {B, S, SYS},
    Command.ACCEPT_RETURN: {B, S, SYS},
    Command.REJECT: {S},
    Command.ESCALATE: {B, S, SYS},
    Command.CANCEL: {B},
    Command.DECIDE: {M},
    Command.DECIDE_RETURN: {M},
    Command.SHIP_RETURN: {B},
    Command.CONFIRM_RETURN: {S, SYS},
    Command.CONTEST_RETURN: {S},
    Command.CLOSE_FOR_SELLER: {SYS},
    Command.FLAG_OVERDUE: {SYS},
    Command.RULE_REFUND: {SYS},
    Command.RULE_ESCALATE: {SYS},
}


def test_who_may_give_each_command_is_what_the_transition_table_says():
    actors = {command: {a for (c, _), by in TRANSITIONS.items() if c is command for a in by} for command in Command}
    assert actors == GIVEN_BY


@pytest.mark.parametrize("command", list(Command))
def test_anyone_else_is_refused_before_the_state_is_looked_at(command):
    for actor in Actor:
        if actor in GIVEN_BY[command]:
            Dispute.authorize(command, actor)
        else:
            with pytest.raises(Forbidden) as err:
                Dispute.authorize(command, actor)
            assert err.value.code == "NOT_YOUR_ACTION"


def test_every_waiting_state_has_a_phase_and_every_state_is_reachable():
    reachable = {Status.AWAITING_SELLER} | {to for actors in TRANSITIONS.values() for to in actors.values()}
    assert reachable == set(Status)
    assert set(PHASES) == set(Status) - {Status.RESOLVED, Status.CANCELLED}
    assert not any(frm in (Status.RESOLVED, Status.CANCELLED) for _, frm in TRANSITIONS)


def test_the_timeline_records_every_step_and_the_dispute_round_trips():
    d = escalated()
    d.decide("REJECTED", None, "Tracking shows delivery to the buyer's door.", T0, POLICY, by="m-1")
    events = [e.event for e in d.timeline]
    assert events == ["dispute.opened", "dispute.offer_made", "dispute.request_rejected", "dispute.escalated",
                      "dispute.decided", "dispute.resolved"]
    again = Dispute.from_dict(d.to_dict(), 3)
    assert again.to_dict() == d.to_dict() and again.timeline == d.timeline and again.version == 3


def test_a_timeline_entry_is_stored_as_a_plain_map_of_at_actor_event_details():
    d = opened()
    d.reject(S, "The colour is as shown", T0 + timedelta(seconds=1, microseconds=5), POLICY)
    assert d.to_dict()["timeline"][-1] == {"at": "2026-11-01T12:00:01Z", "actor": "seller",
                                           "event": "dispute.request_rejected",
                                           "details": {"message": "The colour is as shown"}}
    with pytest.raises(ValueError):
        d._record(T0, S, "dispute.unheard_of", {})


def timers(d: Dispute) -> list[TimerCommand]:
    return [e for e in d.effects if isinstance(e, TimerCommand)]


def commands(d: Dispute) -> list[tuple[str, str]]:
    return [(c.op, c.action) for c in timers(d)]


def test_each_phase_asks_for_its_timer_and_leaving_it_stops_that_timer():
    d = opened()
    d.buyer_visual_evidence = 1
    assert commands(d) == [("START", "SELLER_RESPONSE")]
    start = timers(d)[0]
    assert start.due_at == T0 + POLICY.seller_response and start.remind_at == start.due_at - POLICY.reminder_before
    d.effects.clear()
    d.reject(S, "no", T0, POLICY)
    assert commands(d) == [("STOP", "SELLER_RESPONSE"), ("START", "NEGOTIATION")]
    d.effects.clear()
    d.make_offer(B, Solution.REFUND_FULL, None, None, T0, POLICY)  # no phase change, no timer change
    assert commands(d) == []
    d.escalate(B, None, T0, POLICY)
    mediation = timers(d)[-1]
    assert commands(d) == [("STOP", "NEGOTIATION"), ("START", "MEDIATION")]
    assert mediation.remind_at is None  # moderators work from the overdue queue, not reminders
    d.effects.clear()
    d.decide("REJECTED", None, "Tracking shows delivery.", T0, POLICY, by="m-1")
    assert commands(d) == [("STOP", "MEDIATION")]


def test_no_reminder_when_the_deadline_is_closer_than_the_reminder_lead():
    short = Policy(seller_response=timedelta(hours=12))
    d = Dispute.open(order_id="o", buyer_id="b", seller_id="s", order_total=Money(2000, USD), reason=Reason.WRONG_ITEM,
                     description="Blue, not red", requested=Solution.REFUND_FULL, amount=None, item_ids=[], now=T0,
                     policy=short)
    assert timers(d)[0].remind_at is None


def test_a_timer_waking_a_moment_early_still_expires_the_phase():
    d = opened()
    d.expire("SELLER_RESPONSE", T0 + POLICY.seller_response - timedelta(seconds=1), POLICY)
    assert d.status is Status.RESOLVED


def test_a_buyer_cannot_escalate_a_photo_reason_without_an_accepted_photo():
    d = opened()
    d.reject(S, "The colour is as shown", T0, POLICY)
    with pytest.raises(RuleViolation) as err:
        d.escalate(B, None, T0, POLICY)
    assert err.value.code == "EVIDENCE_REQUIRED" and d.status is Status.NEGOTIATING
    d.escalate(Actor.SELLER, None, T0, POLICY)  # the seller (or the deadline) still can
    assert d.status is Status.ESCALATED


def test_the_offer_made_entry_shows_the_amount_the_offer_refunds():
    d = opened(requested=Solution.REFUND_FULL)
    d.make_offer(S, Solution.REFUND_PARTIAL, Money(300, USD), None, T0, POLICY)
    d.make_offer(B, Solution.RESEND, None, None, T0, POLICY)
    made = [e.details["amount"] for e in d.timeline if e.event == "dispute.offer_made"]
    assert made == [{"amount": 2000, "currency": USD}, {"amount": 300, "currency": USD}, None]


def test_a_flagged_mediation_has_no_deadline_left_to_expire():
    d = escalated()
    d.expire("MEDIATION", T0 + timedelta(days=14), POLICY)
    entries = len(d.timeline)
    assert d.pending_phase() is None
    with pytest.raises(Conflict) as again:
        d.expire("MEDIATION", T0 + timedelta(days=15), POLICY)
    assert again.value.code == "INVALID_STATE" and len(d.timeline) == entries


def test_overdue_is_one_rule_the_flag_or_the_target_passed():
    d = escalated()
    due = d.phase_due_at
    assert due is not None and not d.is_overdue(due - timedelta(seconds=1)) and d.is_overdue(due)
    assert "overdue" not in d.deadlines(POLICY, due - timedelta(seconds=1))[0]
    assert d.deadlines(POLICY, due)[0]["overdue"] is True  # its timer not yet fired
    d.expire("MEDIATION", T0, POLICY, early=True)  # the sandbox: flagged before the target
    assert d.is_overdue(T0) and d.deadlines(POLICY, T0)[0]["overdue"] is True


def test_only_an_early_expiry_skips_the_not_due_check_and_it_is_recorded_at_that_time():
    d = opened()
    with pytest.raises(Conflict) as early:
        d.expire("SELLER_RESPONSE", T0 + timedelta(hours=1), POLICY)
    assert early.value.code == "NOT_DUE"
    d.expire("SELLER_RESPONSE", T0 + timedelta(hours=1), POLICY, early=True)
    assert d.status is Status.RESOLVED and d.updated_at == T0 + timedelta(hours=1)
    assert {fmt(e.at) for e in d.timeline[2:]} == {"2026-11-01T13:00:00Z"}


def test_a_dispute_stored_with_a_copy_of_its_refund_reads_its_reference_from_that_copy():
    """Deployed tables hold disputes written while the dispute kept a copy of its refund."""
    d = opened()
    d.accept(S, d.offers[0].offer_id, T0, POLICY)
    doc = d.to_dict()
    assert "refund" not in doc and doc["refund_id"] == d.refund_id
    old = {k: v for k, v in doc.items() if k != "refund_id"}
    old["refund"] = {"refund_id": d.refund_id, "amount": {"amount": 500, "currency": USD}, "status": "SUCCEEDED",
                     "attempts": 1, "failure_reason": None, "created_at": "2026-11-01T12:00:00Z",
                     "updated_at": "2026-11-01T12:00:00Z"}
    read = Dispute.from_dict(old, 3)
    assert read.refund_id == d.refund_id and read.settlement() == d.settlement()
