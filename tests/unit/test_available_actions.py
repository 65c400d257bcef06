"""`available_actions` tells the truth: over random states of an order and its dispute, for the
buyer, the seller and a moderator, every action listed succeeds and every action not listed is
refused (and changes nothing). The list is derived from the one transition table; this test
holds it to what the use cases really do."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import app  # its routes declare the actions (api/routing.py ACTIONS)
from chalicelib.api import requests as parse
from chalicelib.api.routing import action_for
from chalicelib.domain.catalog import Decision, Reason, ReturnProblem, Solution
from chalicelib.domain.disputes import TRANSITIONS, Actor
from chalicelib.domain.errors import DomainError, RuleViolation
from chalicelib.domain.identity import Identity
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderCommand, ScanStatus
from chalicelib.services import access
from chalicelib.services import commands as c
from chalicelib.services.disputes import (
    AcceptOffer,
    Cancel,
    ClaimCase,
    ConfirmReturn,
    ContestReturn,
    Decide,
    Escalate,
    MakeOffer,
    OpenDispute,
    RejectRequest,
    ReleaseCase,
    ShipReturn,
)
from tests.support import order_body
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, World, jpeg, new_world

CALLERS = {"buyer": BUYER, "seller": SELLER, "moderator": MODERATOR}
OTHER_MODERATOR = Identity("m-2", frozenset({"moderators"}))
# Giving back a case one does not hold answers 200 and changes nothing (API.md 1.2): never listed.
HARMLESS_NO_OPS = {("release", ())}
MOVES = ["ship", "deliver", "open_photo_reason", "open_not_received", "open_return", "open_resend", "reject",
         "counter", "buyer_accepts", "seller_accepts", "seller_escalates", "buyer_photo", "buyer_escalates",
         "decide_refund", "decide_return", "decide_rejected", "ship_return", "confirm_return", "contest_return",
         "cancel", "time_passes", "timers_fire", "money_settles", "money_fails", "buyer_takes_slots",
         "seller_takes_slots", "slots_expire", "moderator_claims", "other_moderator_claims", "lease_passes"]


def first_dispute(w: World) -> str | None:
    order = w.state.orders["o-1"][0]
    if order.open_dispute_id:
        return order.open_dispute_id
    ids = [d.dispute_id for d in w.state.disputes.values()]
    return ids[-1] if ids else None


def play(w: World, move: str) -> None:
    """One step of the story; a refusal is fine (the state just does not move)."""
    s, did = w.services, first_dispute(w)
    d = w.state.disputes.get(did) if did else None
    open_offer = next((o.offer_id for o in d.offers if o.status == "OPEN"), "") if d else ""

    def dispute(reason: Reason, solution: Solution) -> None:
        s.disputes.open(BUYER, OpenDispute("o-1", reason, "Something is wrong with it", solution,
                                             Money(500, "USD") if solution is Solution.REFUND_PARTIAL else None, ()))

    steps: dict[str, Callable[[], Any]] = {
        "ship": lambda: s.orders.ship(SELLER, c.ShipOrder("o-1", "CP", "CN1")),
        "deliver": lambda: s.orders.record_scan(SERVICE, c.RecordScan("o-1", ScanStatus.DELIVERED, w.clock.now())),
        "open_photo_reason": lambda: dispute(Reason.NOT_AS_DESCRIBED, Solution.REFUND_PARTIAL),
        "open_not_received": lambda: dispute(Reason.NOT_RECEIVED, Solution.REFUND_FULL),
        "open_return": lambda: dispute(Reason.DAMAGED_OR_DEFECTIVE, Solution.RETURN_AND_REFUND),
        "open_resend": lambda: dispute(Reason.DAMAGED_OR_DEFECTIVE, Solution.RESEND),
        "reject": lambda: s.disputes.reject(SELLER, RejectRequest(did or "", None, "No")),
        "counter": lambda: s.disputes.make_offer(SELLER, MakeOffer(did or "", None, Solution.REFUND_PARTIAL,
                                                                      Money(300, "USD"), None)),
        "buyer_accepts": lambda: s.disputes.accept_offer(BUYER, AcceptOffer(did or "", None, open_offer)),
        "seller_accepts": lambda: s.disputes.accept_offer(SELLER, AcceptOffer(did or "", None, open_offer)),
        "seller_escalates": lambda: s.disputes.escalate(SELLER, Escalate(did or "", None, None)),
        "buyer_photo": lambda: w.upload_photo(did or ""),
        "buyer_escalates": lambda: s.disputes.escalate(BUYER, Escalate(did or "", None, None)),
        "decide_refund": lambda: s.disputes.decide(MODERATOR, Decide(did or "", None, Decision.REFUND_FULL, None,
                                                                        "Because of the photos")),
        "decide_return": lambda: s.disputes.decide(MODERATOR, Decide(did or "", None, Decision.RETURN_AND_REFUND, None,
                                                                        "Send it back please")),
        "decide_rejected": lambda: s.disputes.decide(MODERATOR, Decide(did or "", None, Decision.REJECTED, None,
                                                                          "As listed, no refund")),
        "ship_return": lambda: s.disputes.ship_return(BUYER, ShipReturn(did or "", None, "CP", "R1")),
        "confirm_return": lambda: s.disputes.confirm_return(SELLER, ConfirmReturn(did or "", None)),
        "contest_return": lambda: s.disputes.contest_return(SELLER, ContestReturn(did or "", None, ReturnProblem.EMPTY_BOX,
                                                                                     "Nothing inside")),
        "cancel": lambda: s.disputes.cancel(BUYER, Cancel(did or "", None, None)),
        "time_passes": lambda: w.clock.advance(days=3),
        "timers_fire": lambda: fire_due(w),
        "money_settles": lambda: w.payments.settle_due(now=float("inf")),
        "money_fails": lambda: w.payments.fail_next(1),
        # Upload slots never used: twice reaches the quota; expired, they give their places back.
        "buyer_takes_slots": lambda: take_slots(w, BUYER, did or "", 5),
        "seller_takes_slots": lambda: take_slots(w, SELLER, did or "", 5),
        "slots_expire": lambda: expire_slots(w),
        # The case team: the moderator under test, or a colleague, holds the case for a while.
        "moderator_claims": lambda: s.disputes.claim(MODERATOR, ClaimCase(did or "")),
        "other_moderator_claims": lambda: s.disputes.claim(OTHER_MODERATOR, ClaimCase(did or "")),
        "lease_passes": lambda: w.clock.advance(seconds=w.policy.claim_lease.total_seconds()),
    }
    try:
        steps[move]()
    except (DomainError, AssertionError):
        pass


def take_slots(w: World, who: Identity, dispute_id: str, n: int) -> None:
    for _ in range(n):
        w.services.evidence.request_upload(who, c.RequestUpload(dispute_id, "a.pdf", "application/pdf", 100))


def expire_slots(w: World) -> None:
    w.clock.advance(minutes=20)
    w.services.evidence.expire_uploads()


def fire_due(w: World) -> None:
    """Every timer started so far that is due, in the order they were started (again, if fired before)."""
    for timer in list(w.timers.started):
        if timer.due_at is None or timer.due_at <= w.clock.now():
            try:
                w.services.timers.fired("EXPIRE", timer.message())
            except DomainError:
                pass


def catalogue(w: World, who: Identity) -> dict[tuple[str, tuple[tuple[str, str], ...]], Callable[[], Any]]:
    """Every action that exists on this order and its dispute, as the call an app would make."""
    s, did = w.services, first_dispute(w)
    order = w.state.orders["o-1"][0]
    reasons = order.eligibility(w.clock.now(), w.policy).reasons or (Reason.NOT_RECEIVED,)
    out: dict[tuple[str, tuple[tuple[str, str], ...]], Callable[[], Any]] = {
        ("ship", ()): lambda: s.orders.ship(who, c.ShipOrder("o-1", "CP", "CN2")),
        ("confirm_receipt", ()): lambda: s.orders.confirm_receipt(who, c.ConfirmReceipt("o-1")),
        ("open_dispute", ()): lambda: s.disputes.open(who, OpenDispute("o-1", reasons[0], "It is all wrong here",
                                                                          Solution.REFUND_FULL, None, ())),
    }
    for r in order.refunds:
        out[("retry_refund", (("refund_id", r.refund_id),))] = retry(s, who, r.refund_id)
    if did is None:
        return out
    d = w.state.disputes[did]
    out.update({
        ("make_offer", ()): lambda: s.disputes.make_offer(who, MakeOffer(did, None, Solution.REFUND_FULL, None, None)),
        ("reject", ()): lambda: s.disputes.reject(who, RejectRequest(did, None, "No, it is as listed")),
        ("escalate", ()): lambda: s.disputes.escalate(who, Escalate(did, None, None)),
        ("cancel", ()): lambda: s.disputes.cancel(who, Cancel(did, None, None)),
        ("decide", ()): lambda: s.disputes.decide(who, Decide(did, None, Decision.REFUND_FULL, None, "Decided on the facts")),
        ("ship_return", ()): lambda: s.disputes.ship_return(who, ShipReturn(did, None, "CP", "R2")),
        ("confirm_return", ()): lambda: s.disputes.confirm_return(who, ConfirmReturn(did, None)),
        ("contest_return", ()): lambda: s.disputes.contest_return(who, ContestReturn(did, None, ReturnProblem.WRONG_ITEM,
                                                                                        "Not what I sent")),
        ("upload_evidence", ()): lambda: s.evidence.request_upload(who, c.RequestUpload(did, "a.jpg", "image/jpeg",
                                                                                         len(jpeg()))),
        ("post_message", ()): lambda: s.messages.post(who, c.PostMessage(did, "Hello there")),
        ("claim", ()): lambda: s.disputes.claim(who, ClaimCase(did)),
        ("release", ()): lambda: s.disputes.release(who, ReleaseCase(did)),
        ("add_note", ()): lambda: s.notes.add(who, c.AddNote(did, "Checked the seller's listing")),
    })
    for offer in d.offers:
        out[("accept_offer", (("offer_id", offer.offer_id),))] = accept(s, who, did, offer.offer_id)
    return out


def retry(s: Any, who: Identity, refund_id: str) -> Callable[[], Any]:
    return lambda: s.payments.retry(who, "o-1", refund_id)


def accept(s: Any, who: Identity, dispute_id: str, offer_id: str) -> Callable[[], Any]:
    return lambda: s.disputes.accept_offer(who, AcceptOffer(dispute_id, None, offer_id))


def listed(w: World, who: Identity) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """What the caller is offered, by the name of the route that performs each (its declaration)."""
    order = w.state.orders["o-1"][0]
    allowed = access.order_actions(who, order, w.clock.now(), w.policy)
    did = first_dispute(w)
    if did is not None:
        allowed += access.dispute_actions(who, w.state.disputes[did], w.policy, w.clock.now())
    return {(action_for(key).name, tuple(sorted(ids.items()))) for key, ids in allowed}


def stored(w: World) -> dict[str, Any]:
    s = w.state
    return copy.deepcopy({"orders": s.orders, "disputes": s.disputes, "messages": s.messages, "notes": s.notes,
                          "counters": s.counters, "markers": s.markers, "rules": s.rules,
                          "evidence": s.evidence, "outbox": s.outbox})


def restore(w: World, saved: dict[str, Any]) -> None:
    for name, value in copy.deepcopy(saved).items():
        setattr(w.state, name, value)


STARTS = [[], ["ship"], ["ship", "deliver"], ["ship", "deliver", "open_photo_reason"],
          ["ship", "deliver", "open_return"], ["ship", "deliver", "open_resend"],
          ["ship", "time_passes", "open_not_received"], ["time_passes", "open_not_received"],
          ["ship", "deliver", "open_photo_reason", "reject", "seller_escalates"],
          ["ship", "deliver", "open_return", "seller_accepts"],
          ["ship", "deliver", "open_return", "seller_accepts", "ship_return"],
          ["money_fails", "ship", "deliver", "open_photo_reason", "seller_accepts", "money_settles"],
          ["ship", "deliver", "open_photo_reason", "buyer_takes_slots", "buyer_takes_slots"],
          ["ship", "deliver", "open_return", "seller_takes_slots", "buyer_takes_slots", "buyer_takes_slots",
           "slots_expire"],
          ["ship", "deliver", "open_photo_reason"] + ["buyer_takes_slots", "buyer_takes_slots", "slots_expire"] * 3]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(STARTS), moves=st.lists(st.sampled_from(MOVES), max_size=10))
def test_every_listed_action_succeeds_and_every_other_is_refused(start: list[str], moves: list[str]) -> None:
    w = new_world()
    moves = start + moves
    with w.payments:
        w.services.orders.register(SERVICE, parse.register_order(order_body(
            estimated_delivery_at="2026-11-03T00:00:00Z", ship_by="2026-11-30T00:00:00Z")))
        for move in moves:
            play(w, move)
        saved = stored(w)
        for role, who in CALLERS.items():
            offered = listed(w, who)
            actions = catalogue(w, who)
            assert offered <= set(actions), f"{role} is offered actions that do not exist: {offered - set(actions)}"
            for key, act in actions.items():
                try:
                    act()
                    outcome = None
                except DomainError as exc:
                    outcome = exc
                if key in offered:
                    assert outcome is None, f"{role}: listed {key} was refused: {outcome!r} after {moves}"
                elif key in HARMLESS_NO_OPS and outcome is None:  # the contract answers 200 and changes nothing
                    assert stored(w) == saved, f"{role}: unlisted {key} changed the state"
                else:
                    assert outcome is not None, f"{role}: {key} is not listed but succeeded after {moves}"
                    assert stored(w) == saved, f"{role}: refused {key} changed the state"
                restore(w, saved)


def test_upload_evidence_is_listed_until_the_party_has_no_place_left() -> None:
    w = new_world()
    with w.payments:
        w.services.orders.register(SERVICE, parse.register_order(order_body(
            estimated_delivery_at="2026-11-03T00:00:00Z", ship_by="2026-11-30T00:00:00Z")))
        for move in ["ship", "deliver", "open_photo_reason", "buyer_takes_slots"]:
            play(w, move)
        did = first_dispute(w) or ""
        take_slots(w, BUYER, did, 4)
        assert ("upload_evidence", ()) in listed(w, BUYER)
        take_slots(w, BUYER, did, 1)  # the tenth place
        assert ("upload_evidence", ()) not in listed(w, BUYER) and ("upload_evidence", ()) in listed(w, SELLER)
        with pytest.raises(RuleViolation) as full:
            take_slots(w, BUYER, did, 1)
        assert full.value.code == "EVIDENCE_LIMIT_REACHED"
        play(w, "slots_expire")  # unused slots expire and give their places back
        assert ("upload_evidence", ()) in listed(w, BUYER)
        for _ in range(2):  # 30 slots asked for in all: no more, even with places free
            take_slots(w, BUYER, did, 10)
            play(w, "slots_expire")
        assert w.state.disputes[did].evidence_created["buyer"] == 30
        assert ("upload_evidence", ()) not in listed(w, BUYER)
        with pytest.raises(RuleViolation):
            take_slots(w, BUYER, did, 1)


def test_every_command_a_person_gives_and_every_grant_is_the_action_of_exactly_one_route() -> None:
    """available_actions is drawn from the routes' declarations: none may be missing or doubled."""
    given_by_people = {command for (command, _), actors in TRANSITIONS.items()
                       if set(actors) & {Actor.BUYER, Actor.SELLER, Actor.MODERATOR}}
    declared = [key for methods in app.routes.values() for route in methods.values()
                for key in vars(route.view_function).get("actions", ())]
    assert len(declared) == len(set(declared)), "an action is declared by two routes"
    assert set(declared) == given_by_people | set(OrderCommand) | set(access.Grant)
    for key in declared:
        route = action_for(key)
        view = app.routes[route.path][route.method]
        assert view.view_name == route.name and vars(view.view_function)["body_schema"] is route.schema
