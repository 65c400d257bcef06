"""`available_actions` tells the truth: in every state a breadth-first walk of the dispute reaches,
and over random stories of an order and its dispute (money, timers, upload quotas, claims), for
the buyer, the seller and a moderator, every action listed succeeds through its route and every
action not listed is refused (and changes nothing). The actions tried are every route that
declares one (tests/unit/walk.py): a new action is covered with no edit here. The list is derived
from the one transition table; this test holds it to what the routes really do."""
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
from chalicelib.domain.disputes import TRANSITIONS, Actor, Status
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
    ShipReturn,
)
from tests.support import order_body
from tests.unit import walk
from tests.unit.walk import Key
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, World, new_world

CALLERS = {"buyer": BUYER, "seller": SELLER, "moderator": MODERATOR}
OTHER_MODERATOR = Identity("m-2", frozenset({"moderators"}))
# Giving back a case one does not hold answers 200 and changes nothing (API.md 1.2): never listed.
HARMLESS_NO_OPS = {("release", ())}
# The stories' moves: these, with their particular bodies (a counter-offer, each decision, the
# sandbox of time, money, quotas and claims), and every route's transition by each person with its
# sample body ("<route> by <person>", drawn from app.py: a new action needs no move written here).
MOVES = ["ship", "deliver", "open_photo_reason", "open_not_received", "open_return", "open_resend", "reject",
         "counter", "buyer_accepts", "seller_accepts", "seller_escalates", "buyer_photo", "buyer_escalates",
         "decide_refund", "decide_return", "decide_rejected", "ship_return", "confirm_return", "contest_return",
         "cancel", "time_passes", "timers_fire", "money_settles", "money_fails", "buyer_takes_slots",
         "seller_takes_slots", "slots_expire", "moderator_claims", "other_moderator_claims", "lease_passes",
         *(f"{route.name} by {person}" for route in walk.command_routes() for person in walk.PEOPLE)]


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
    if " by " in move:
        name, person = move.split(" by ")
        ids = {"order_id": "o-1", "dispute_id": did or "", "offer_id": open_offer}
        steps[move] = lambda: walk.call(w, walk.PEOPLE[person], walk.route_named(name), ids)
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


def listed(w: World, who: Identity) -> set[Key]:
    return walk.listed(w, who, first_dispute(w))


def stored(w: World) -> dict[str, Any]:
    s = w.state
    return copy.deepcopy({"orders": s.orders, "disputes": s.disputes, "messages": s.messages, "notes": s.notes,
                          "counters": s.counters, "markers": s.markers, "rules": s.rules,
                          "evidence": s.evidence, "outbox": s.outbox})


def restore(w: World, saved: dict[str, Any]) -> None:
    for name, value in copy.deepcopy(saved).items():
        setattr(w.state, name, value)


def opening_body(w: World) -> dict[str, Any]:
    """A dispute the order may have now: its first eligible reason (the schema's first may not be)."""
    reasons = w.state.orders["o-1"][0].eligibility(w.clock.now(), w.policy).reasons or (Reason.NOT_RECEIVED,)
    return {"reason": reasons[0].value, "description": "It is all wrong here", "requested": {"type": "REFUND_FULL"}}


def offers_tell_the_truth(w: World, dispute_id: str | None, story: str) -> None:
    """For the buyer, the seller and a moderator: every action listed succeeds through its route (and
    a transition moves the dispute as its declared command says), every other one is refused and
    changes nothing. Every action that exists is tried: each route declaring one (walk.catalogue)."""
    saved = stored(w)
    for role, who in CALLERS.items():
        offered = listed(w, who)
        actions = walk.catalogue(w, dispute_id)
        assert offered <= set(actions), f"{role} is offered actions that do not exist: {offered - set(actions)}"
        for key, ids in actions.items():
            route = walk.route_named(key[0])
            before = w.state.disputes[dispute_id].status if dispute_id else None
            try:
                walk.call(w, who, route, ids, opening_body(w) if route.name == "open_dispute" else None)
                outcome = None
            except DomainError as exc:
                outcome = exc
            if key in offered:
                assert outcome is None, f"{role}: listed {key} was refused: {outcome!r} {story}"
                if route.commands and before is not None and dispute_id is not None:
                    after = w.state.disputes[dispute_id].status
                    assert after in walk.leads_to(route, before, walk.ACTOR_OF[role]), \
                        f"{role}: {key} moved the dispute from {before.value} to {after.value} {story}"
            elif key in HARMLESS_NO_OPS and outcome is None:  # the contract answers 200 and changes nothing
                assert stored(w) == saved, f"{role}: unlisted {key} changed the state"
            else:
                assert outcome is not None, f"{role}: {key} is not listed but succeeded {story}"
                assert stored(w) == saved, f"{role}: refused {key} changed the state"
            restore(w, saved)


def test_in_every_state_the_walk_reaches_every_listed_action_succeeds_and_every_other_is_refused() -> None:
    """The bounded breadth-first walk of tests/unit/walk.py: every state a dispute reaches, within
    its depth, by the transitions it offers (from each opening), each (state, person) checked. An
    action added to the app is walked and checked with no edit here."""
    nodes = walk.walk()
    assert {node.status for node in nodes} == set(Status), "the walk misses a state of the dispute"
    for node in nodes:
        with walk.replay(node.opening, node.path) as (w, ctx):
            offers_tell_the_truth(w, ctx["dispute_id"], f"in {node}")


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
        offers_tell_the_truth(w, first_dispute(w), f"after {moves}")


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
