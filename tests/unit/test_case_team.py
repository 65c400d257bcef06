"""The case team's work over the fakes: claims on escalated cases (one winner), internal notes
that no party ever sees, and the fault every resolution records (docs/RULES.md's table)."""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import app  # noqa: F401  (its routes declare the actions views list: api/routing.py ACTIONS)
from chalicelib.api import requests as parse
from chalicelib.api import views
from chalicelib.domain.catalog import Decision, Fault, Reason, Solution
from chalicelib.domain.disputes import QueueFilter, Status
from chalicelib.domain.errors import Conflict, Forbidden
from chalicelib.domain.identity import Identity
from chalicelib.domain.money import Money
from chalicelib.domain.orders import ScanStatus
from chalicelib.domain.policy import Policy
from chalicelib.domain.timefmt import fmt
from chalicelib.services import commands as c
from chalicelib.services.disputes import (
    AcceptOffer,
    Cancel,
    ClaimCase,
    ConfirmReturn,
    Decide,
    Escalate,
    MakeOffer,
    OpenDispute,
    ReleaseCase,
    ShipReturn,
)
from tests.support import order_body
from tests.unit.world import BUYER, MODERATOR, SELLER, SERVICE, World, new_world

OTHER = Identity("m-2", frozenset({"moderators"}))
PAGE = c.PageRequest(100, None)
RATIONALE = "The photos show a different colour from the listing."


def decide(w: World, who: Identity, did: str, outcome: str = "REFUND_FULL", fault: Fault | None = None,
           amount: Any = None) -> Any:
    return w.services.disputes.decide(who, Decide(did, None, Decision(outcome), amount, RATIONALE, fault))


def refused(run: Callable[[], Any]) -> Any:
    with pytest.raises((Conflict, Forbidden)) as err:
        run()
    return err.value


# ---- claims ---------------------------------------------------------------------------------------
def test_a_claim_holds_the_case_for_the_lease_and_others_are_told_who_holds_it(world: World) -> None:
    did = world.escalated()["dispute_id"]
    d = world.services.disputes.claim(MODERATOR, ClaimCase(did))
    assert d.assignment is not None and d.assignment.moderator_id == MODERATOR.sub
    assert d.assignment.expires_at == world.clock.now() + world.policy.claim_lease
    before = world.snapshot()
    err = refused(lambda: world.services.disputes.claim(OTHER, ClaimCase(did)))
    assert (err.code, err.details) == ("CASE_CLAIMED", {"moderator_id": MODERATOR.sub,
                                                        "expires_at": fmt(d.assignment.expires_at)})
    assert world.snapshot() == before


def test_claiming_again_renews_ones_own_claim_and_keeps_when_it_was_taken(world: World) -> None:
    did = world.escalated()["dispute_id"]
    first = world.services.disputes.claim(MODERATOR, ClaimCase(did)).assignment
    world.clock.advance(minutes=20)
    again = world.services.disputes.claim(MODERATOR, ClaimCase(did)).assignment
    assert first is not None and again is not None
    assert again.claimed_at == first.claimed_at and again.expires_at == world.clock.now() + world.policy.claim_lease


def test_an_expired_claim_holds_nothing_and_another_moderator_takes_the_case_over(world: World) -> None:
    did = world.escalated()["dispute_id"]
    world.services.disputes.claim(MODERATOR, ClaimCase(did))
    world.clock.advance(seconds=world.policy.claim_lease.total_seconds())
    d = world.services.disputes.claim(OTHER, ClaimCase(did))
    assert d.assignment is not None and d.assignment.moderator_id == OTHER.sub
    err = refused(lambda: world.services.disputes.release(MODERATOR, ReleaseCase(did)))
    assert err.code == "CASE_CLAIMED"


def test_only_an_escalated_case_can_be_claimed(world: World) -> None:
    did = world.negotiating()["dispute_id"]
    before = world.snapshot()
    assert refused(lambda: world.services.disputes.claim(MODERATOR, ClaimCase(did))).code == "INVALID_STATE"
    assert world.snapshot() == before


def test_a_moderator_who_is_a_party_of_the_order_cannot_take_its_case(world: World) -> None:
    did = world.escalated()["dispute_id"]
    seller_moderator = Identity(SELLER.sub, frozenset({"moderators"}))
    for act in (lambda: world.services.disputes.claim(seller_moderator, ClaimCase(did)),
                lambda: world.services.notes.add(seller_moderator, c.AddNote(did, "my own case")),
                lambda: world.services.notes.list(seller_moderator, did, PAGE)):
        assert refused(act).code == "NOT_YOUR_ACTION"
    assert world.services.disputes.next_case(seller_moderator) is None  # never offered their own case


def test_releasing_gives_the_case_back_and_releasing_what_one_does_not_hold_changes_nothing(world: World) -> None:
    did = world.escalated()["dispute_id"]
    before = world.snapshot()
    assert world.services.disputes.release(MODERATOR, ReleaseCase(did)).assignment is None
    assert world.snapshot() == before
    world.services.disputes.claim(MODERATOR, ClaimCase(did))
    held = world.snapshot()
    assert refused(lambda: world.services.disputes.release(OTHER, ReleaseCase(did))).code == "CASE_CLAIMED"
    assert world.snapshot() == held
    assert world.services.disputes.release(MODERATOR, ReleaseCase(did)).assignment is None
    assert world.dispute(did).assignment is None
    assert world.services.disputes.claim(OTHER, ClaimCase(did)).assignment is not None


def test_while_another_moderator_holds_the_case_a_decision_or_message_is_refused_and_changes_nothing(
        world: World) -> None:
    did = world.escalated()["dispute_id"]
    world.services.disputes.claim(OTHER, ClaimCase(did))
    before = world.snapshot()
    for act in (lambda: decide(world, MODERATOR, did),
                lambda: world.services.messages.post(MODERATOR, c.PostMessage(did, "We are looking at it"))):
        assert refused(act).code == "CASE_CLAIMED"
        assert world.snapshot() == before
    # The parties still write; the holder decides, which ends the claim.
    world.services.messages.post(BUYER, c.PostMessage(did, "Any news?"))
    d = decide(world, OTHER, did)
    assert d.status is Status.RESOLVED and d.assignment is None and world.dispute(did).assignment is None


def test_an_unclaimed_case_is_decided_directly(world: World) -> None:
    did = world.escalated()["dispute_id"]
    assert decide(world, MODERATOR, did, "REJECTED").status is Status.RESOLVED


def test_a_claim_raced_by_a_write_that_lands_first_is_refused_at_commit(world: World) -> None:
    """The claim is checked by the write, not only by the read before it."""
    did = world.escalated()["dispute_id"]
    svc = world.services.disputes
    with svc.uow() as uow:  # the decision has read the case: nobody held it
        d = uow.disputes.get(did)
        assert d is not None and d.holder(world.clock.now()) is None
        svc.claim(OTHER, ClaimCase(did))  # meanwhile a colleague takes it
        d.decide(Decision.REFUND_FULL, None, RATIONALE, world.clock.now(), world.policy, by=MODERATOR.sub)
        uow.disputes.save(d, claimant=MODERATOR.sub)
        with pytest.raises(Conflict) as err:
            uow.commit()
    assert err.value.code == "CASE_CLAIMED"
    assert world.dispute(did).status is Status.ESCALATED


def test_next_case_takes_the_oldest_case_nobody_holds(world: World) -> None:
    first = world.escalated()["dispute_id"]
    world.clock.advance(hours=1)
    second = escalate_another(world, "o-2")
    world.services.disputes.claim(OTHER, ClaimCase(first))
    got = world.services.disputes.next_case(MODERATOR)
    assert got is not None and got.dispute_id == second
    assert world.services.disputes.next_case(MODERATOR) is None  # both held now
    world.clock.advance(seconds=world.policy.claim_lease.total_seconds())
    again = world.services.disputes.next_case(MODERATOR)
    assert again is not None and again.dispute_id == first  # the oldest, its claim expired


def test_moderators_asking_for_the_next_case_at_once_never_get_the_same_one() -> None:
    w = new_world()
    with w.payments:
        cases = [w.escalated()["dispute_id"]] + [escalate_another(w, f"o-{n}") for n in range(2, 5)]
        moderators = [Identity(f"m-{n}", frozenset({"moderators"})) for n in range(10, 18)]
        got: dict[str, str | None] = {}
        start = threading.Barrier(len(moderators))

        def take(who: Identity) -> None:
            start.wait()
            d = w.services.disputes.next_case(who)
            got[who.sub] = d.dispute_id if d else None

        threads = [threading.Thread(target=take, args=(m,)) for m in moderators]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = [d for d in got.values() if d is not None]
        assert sorted(taken) == sorted(cases), got  # every case once, nobody twice
        holders = {w.dispute(did).assignment.moderator_id for did in cases}  # type: ignore[union-attr]
        assert holders == {who for who, did in got.items() if did is not None}


def test_the_queue_filters_by_holder_and_reason(world: World) -> None:
    mine = world.escalated()["dispute_id"]
    world.clock.advance(minutes=1)
    theirs = escalate_another(world, "o-2")
    world.clock.advance(minutes=1)
    free = escalate_another(world, "o-3")
    world.services.disputes.claim(MODERATOR, ClaimCase(mine))
    world.services.disputes.claim(OTHER, ClaimCase(theirs))

    def queue(**kw: Any) -> list[str]:
        items, _ = world.services.disputes.moderation_queue(MODERATOR, QueueFilter(**kw), PAGE)
        return [d.dispute_id for d in items]

    assert queue() == [mine, theirs, free]
    assert (queue(assigned="me"), queue(assigned="others"), queue(assigned="none")) == ([mine], [theirs], [free])
    assert queue(reason="NOT_AS_DESCRIBED") == [mine, theirs, free] and queue(reason="NOT_RECEIVED") == []


def escalate_another(w: World, order_id: str) -> str:
    """One more escalated case, on a new order of the same buyer and seller."""
    w.services.orders.register(SERVICE, parse.register_order(order_body(order_id)))
    w.services.orders.ship(SELLER, c.ShipOrder(order_id, "CP", "CN9"))
    w.services.orders.record_scan(SERVICE, c.RecordScan(order_id, ScanStatus.DELIVERED, w.clock.now()))
    d = w.services.disputes.open(BUYER, OpenDispute(order_id, Reason.NOT_AS_DESCRIBED, "Ordered red, received blue",
                                                      Solution.REFUND_FULL, None, ()))
    w.services.disputes.make_offer(SELLER, MakeOffer(d.dispute_id, None, Solution.REFUND_PARTIAL, _money(300), None))
    w.services.disputes.escalate(SELLER, Escalate(d.dispute_id, None, None))
    return d.dispute_id


def _money(amount: int) -> Money:
    return Money(amount, "USD")


# ---- notes ----------------------------------------------------------------------------------------
SECRET = "NOTE-7f3a: the seller has three other open cases"


def test_notes_are_the_case_teams_and_never_reach_a_party_in_any_shape(world: World) -> None:
    did = world.escalated()["dispute_id"]
    note = world.services.notes.add(MODERATOR, c.AddNote(did, SECRET))
    assert (note.author_id, note.body) == (MODERATOR.sub, SECRET)
    items, _ = world.services.notes.list(OTHER, did, PAGE)
    assert [n.body for n in items] == [SECRET]
    for party in (BUYER, SELLER):
        for act in (lambda p=party: world.services.notes.add(p, c.AddNote(did, "mine")),
                    lambda p=party: world.services.notes.list(p, did, PAGE)):
            assert refused(act).code == "NOT_YOUR_ACTION"
    decide(world, MODERATOR, did)
    world.settle_payments()
    now, policy = world.clock.now(), world.policy
    seen: list[Any] = [world.publisher.events, [r.payload for r in world.state.outbox.values()]]
    for who in (BUYER, SELLER, MODERATOR):
        seen.append(views.dispute(world.services.disputes.get(who, did), now, policy, who))
        seen.append(views.order(world.services.orders.get(who, "o-1"), now, policy, who))
        seen.append([views.message(m) for m in world.services.messages.list(who, did, PAGE)[0]])
        seen.append([views.evidence(e, now, links) for e, links in world.services.evidence.list(who, did)])
    assert SECRET not in json.dumps(seen, default=str)


def test_a_note_body_is_checked_and_the_case_may_be_in_any_state(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    assert world.services.notes.add(MODERATOR, c.AddNote(did, "Seller asked for more time")).dispute_id == did


# ---- fault: every way a dispute ends (docs/RULES.md's table) ---------------------------------------
RULES = Path(__file__).resolve().parents[2] / "docs" / "RULES.md"


def fault_table() -> dict[str, str]:
    text = RULES.read_text()
    table = text.split("| how the dispute ended | fault |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[1:]]
    return {re.sub(r"\s+", " ", how.strip()): fault.strip().strip("`") for how, fault in rows}


def resolved_fault(w: World, did: str) -> str:
    d = w.dispute(did)
    if d.status is Status.CANCELLED:
        assert d.resolution is None
        return Fault.NONE.value
    assert d.status is Status.RESOLVED and d.resolution is not None
    return str(d.resolution.to_dict()["fault"])


def by_moderator(outcome: str, then: Callable[[World, str], None] = lambda w, did: None) -> Callable[[World], str]:
    def play(w: World) -> str:
        did = w.escalated()["dispute_id"]
        decide(w, MODERATOR, did, outcome, amount=_money(500) if outcome == "REFUND_PARTIAL" else None)
        then(w, did)
        return did
    return play


def confirm_return(w: World, did: str) -> None:
    w.services.disputes.ship_return(BUYER, ShipReturn(did, None, "CP", "RT1"))
    w.services.disputes.confirm_return(SELLER, ConfirmReturn(did, None))


def silence(w: World) -> str:
    did = w.awaiting_seller()["dispute_id"]
    w.services.sandbox.expire_deadline(BUYER, did)
    return did


def return_never_confirmed(w: World) -> str:
    did = w.return_in_transit()["dispute_id"]
    w.services.sandbox.expire_deadline(BUYER, did)
    return did


def agreement(days_later: float, by_seller_offer: bool = False) -> Callable[[World], str]:
    def play(w: World) -> str:
        ctx = w.awaiting_seller()
        did = ctx["dispute_id"]
        if by_seller_offer:  # the seller's counter-offer, made at once, accepted by the buyer later
            _, offer = w.services.disputes.make_offer(SELLER, MakeOffer(did, None, Solution.REFUND_PARTIAL,
                                                                          _money(300), None))
            w.clock.advance(days=days_later)
            w.services.disputes.accept_offer(BUYER, AcceptOffer(did, None, offer.offer_id))
        else:
            w.clock.advance(days=days_later)
            w.services.disputes.accept_offer(SELLER, AcceptOffer(did, None, ctx["offer_id"]))
        return did
    return play


def return_never_shipped(w: World) -> str:
    did = w.awaiting_return()["dispute_id"]
    w.services.sandbox.expire_deadline(BUYER, did)
    return did


def cancelled(w: World) -> str:
    did = w.awaiting_seller()["dispute_id"]
    w.services.disputes.cancel(BUYER, Cancel(did, None, None))
    return did


# Each row of the table, played through the use cases (several plays where a row names several ways).
PLAYS: dict[str, list[Callable[[World], str]]] = {
    "a moderator's `REFUND_FULL`, `REFUND_PARTIAL` or `RETURN_AND_REFUND` without a `fault`":
        [by_moderator("REFUND_FULL"), by_moderator("REFUND_PARTIAL"), by_moderator("RETURN_AND_REFUND", confirm_return)],
    "a moderator's `REJECTED` without a `fault`": [by_moderator("REJECTED")],
    "the seller did not answer in time (the buyer's request granted)": [silence],
    "the seller did not confirm a return's receipt in time (refunded)": [return_never_confirmed],
    "an agreement paying a refund or a resend that the seller offered or accepted within 72 hours "
    "(`early_settlement`) of the opening": [agreement(0), agreement(2.9), agreement(5, by_seller_offer=True)],
    "an agreement paying a refund or a resend, later": [agreement(3.1)],
    "the buyer did not ship the return in time (`REJECTED`)": [return_never_shipped],
    "the buyer cancelled (no resolution)": [cancelled],
}


def test_the_fault_table_names_every_way_a_dispute_ends_that_the_tests_play() -> None:
    assert set(fault_table()) == set(PLAYS)


@pytest.mark.parametrize("row", sorted(PLAYS))
def test_each_way_a_dispute_ends_records_the_fault_the_table_says(row: str) -> None:
    for play in PLAYS[row]:
        w = new_world()
        with w.payments:
            assert resolved_fault(w, play(w)) == fault_table()[row], row


@pytest.mark.parametrize("fault", list(Fault))
def test_a_moderator_may_name_any_fault_and_it_is_shown_to_both_parties(fault: Fault) -> None:
    w = new_world()
    with w.payments:
        did = w.escalated()["dispute_id"]
        decide(w, MODERATOR, did, "REFUND_FULL", fault)
        for who in (BUYER, SELLER):
            shown = views.dispute(w.services.disputes.get(who, did), w.clock.now(), w.policy, who)
            assert shown["resolution"]["fault"] == fault.value and "assignment" not in shown


def test_a_decided_return_carries_the_moderators_fault_to_the_refund() -> None:
    w = new_world()
    with w.payments:
        did = w.escalated()["dispute_id"]
        decide(w, MODERATOR, did, "RETURN_AND_REFUND", Fault.CARRIER)
        confirm_return(w, did)
        assert resolved_fault(w, did) == "CARRIER"


def test_the_early_settlement_period_is_a_setting() -> None:
    w = new_world(Policy(refund_max_attempts=3, early_settlement=timedelta(days=10)))
    with w.payments:
        assert resolved_fault(w, agreement(5)(w)) == "NONE"


def test_which_moderator_decided_is_the_case_teams_and_never_in_an_event(world: World) -> None:
    did = world.escalated()["dispute_id"]
    decide(world, MODERATOR, did, "REJECTED")
    now = world.clock.now()
    entry = next(e for e in world.dispute(did).timeline if e.event == "dispute.decided")
    assert entry.details["moderator_id"] == MODERATOR.sub  # recorded, for the case team
    shown = {who.sub: views.dispute(world.services.disputes.get(who, did), now, world.policy, who)
             for who in (BUYER, SELLER, OTHER)}
    decided = {sub: next(e for e in d["timeline"] if e["event"] == "dispute.decided")["details"]
               for sub, d in shown.items()}
    assert decided[OTHER.sub]["moderator_id"] == MODERATOR.sub
    assert "moderator_id" not in decided[BUYER.sub] and "moderator_id" not in decided[SELLER.sub]
    published = [e for e in world.publisher.events if "dispute.decided" in json.dumps(e)]
    assert published and MODERATOR.sub not in json.dumps(published)
