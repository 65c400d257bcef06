"""One contract, two adapters: the in-memory fake and DynamoDB (PynamoDB over moto) must agree."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.catalog import Reason, Solution
from chalicelib.domain.disputes import Dispute, QueueFilter
from chalicelib.domain.errors import ConcurrentModification, Conflict, InvalidInput, RuleViolation
from chalicelib.domain.evidence import Evidence
from chalicelib.domain.messages import Message
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderItem
from chalicelib.domain.policy import Policy
from chalicelib.ports import OrderExists, OutboxRecord
from tests.support import T0, FakeClock

POLICY = Policy()


class Relay:
    """Stands in for the outbox relay: remembers what each commit handed over."""

    def __init__(self) -> None:
        self.handed: list[OutboxRecord] = []

    def try_deliver(self, records: list[OutboxRecord]) -> int:
        self.handed += records
        return 0


class Repo:
    """The contract in the words of the old repository: each call is one unit of work."""

    def __init__(self, uow: Any, outbox: Any) -> None:
        self.uow = uow
        self.outbox = outbox

    def _one(self, stage: Any) -> Any:
        with self.uow() as uow:
            result = stage(uow)
            uow.commit()
            return result

    def get_order(self, order_id):
        with self.uow() as uow:
            return uow.orders.get(order_id)

    def order_fingerprint(self, order_id):
        with self.uow() as uow:
            return uow.orders.fingerprint(order_id)

    def add_order(self, o, fp):
        return self._one(lambda uow: uow.orders.add(o, fp))

    def save_order(self, o):
        return self._one(lambda uow: uow.orders.save(o))

    def get_orders(self, order_ids):
        with self.uow() as uow:
            return uow.orders.get_many(order_ids)

    def get_dispute(self, dispute_id):
        with self.uow() as uow:
            return uow.disputes.get(dispute_id)

    def save_dispute(self, d, o=None):
        def stage(uow):
            saved_order = uow.orders.save(o) if o is not None else None
            return uow.disputes.save(d), saved_order
        return self._one(stage)

    def list_orders(self, role, party, limit, cursor):
        with self.uow() as uow:
            return uow.orders.list_for(role, party, limit, cursor)

    def list_disputes(self, role, party, status, limit, cursor):
        with self.uow() as uow:
            return uow.disputes.list_for(role, party, status, limit, cursor)

    def escalated_disputes(self, overdue, now, limit, cursor):
        with self.uow() as uow:
            return uow.disputes.escalated(QueueFilter(overdue=overdue), now, limit, cursor)

    def add_message(self, m):
        return self._one(lambda uow: uow.messages.add(m))

    def list_messages(self, dispute_id, limit, cursor):
        with self.uow() as uow:
            return uow.messages.list(dispute_id, limit, cursor)

    def add_evidence(self, e, limit):
        return self._one(lambda uow: uow.evidence.add(e, limit))

    def update_evidence(self, e, from_statuses):
        return self._one(lambda uow: uow.evidence.save(e, from_statuses))

    def list_evidence(self, dispute_id):
        with self.uow() as uow:
            return uow.evidence.list(dispute_id)

    def orders_due_for_release(self, now, limit):
        """Every page, in order (one request each)."""
        found, cursor = [], None
        while True:
            with self.uow() as uow:
                page, cursor = uow.orders.due_for_release(now, limit, cursor)
            found += page
            if cursor is None:
                return found


@pytest.fixture(params=["memory", "dynamodb"])
def repo(request):
    relay, clock = Relay(), FakeClock()
    if request.param == "memory":
        from chalicelib.adapters.memory import FakeUnitOfWork, InMemoryOutbox, InMemoryState

        state = InMemoryState(POLICY)
        r = Repo(lambda: FakeUnitOfWork(state, relay, clock), InMemoryOutbox(state))
    else:
        from pynamodb.connection import Connection

        from chalicelib.adapters.dynamodb import DynamoOutbox, DynamoUnitOfWork, make_tables

        request.getfixturevalue("aws")
        tables = make_tables(request.getfixturevalue("settings").tables, "us-east-1")
        connection = Connection(region="us-east-1")
        r = Repo(lambda: DynamoUnitOfWork(tables, connection, POLICY, relay, clock), DynamoOutbox(tables))
    r.relay = relay
    return r


def order(order_id="o-1", buyer="b-1", seller="s-1", at=T0) -> Order:
    return Order.register(order_id=order_id, buyer_id=buyer, seller_id=seller,
                          items=[OrderItem("i-1", "Lamp", 1, Money(1000, "EUR"))],
                          total=Money(1000, "EUR"), estimated_delivery_at=T0 + timedelta(days=10), now=at)


def dispute_for(o: Order, at=T0) -> Dispute:
    return Dispute.open(order_id=o.order_id, buyer_id=o.buyer_id, seller_id=o.seller_id, order_total=o.total,
                        reason=Reason.NOT_RECEIVED, description="Never arrived at all", requested=Solution.REFUND_FULL,
                        amount=None, item_ids=[], now=at, policy=POLICY)


def test_an_order_is_stored_once_with_its_fingerprint(repo):
    stored = repo.add_order(order(), "fp-1")
    assert stored.version == 1 and repo.get_order("o-1") == stored
    assert repo.order_fingerprint("o-1") == "fp-1"
    with pytest.raises(OrderExists):
        repo.add_order(order(), "fp-2")
    assert repo.order_fingerprint("o-1") == "fp-1"
    assert repo.get_order("missing") is None


def test_orders_are_read_together_by_id_and_a_missing_one_is_left_out(repo):
    first, second = repo.add_order(order("o-1"), "fp-1"), repo.add_order(order("o-2"), "fp-2")
    assert repo.get_orders(["o-2", "missing", "o-1", "o-2"]) == {"o-1": first, "o-2": second}
    assert repo.get_orders([]) == {}


def test_a_stale_order_write_is_refused(repo):
    stored = repo.add_order(order(), "fp")
    shipped = repo.save_order(stored.ship("CP", "CN1", T0))
    assert shipped.version == 2
    with pytest.raises(ConcurrentModification):
        repo.save_order(stored.ship("DHL", "X", T0))
    assert repo.get_order("o-1").shipment.carrier == "CP"
    assert repo.order_fingerprint("o-1") == "fp"


def test_a_dispute_and_its_order_are_written_together_or_not_at_all(repo):
    o = repo.add_order(order(), "fp")
    d = dispute_for(o)
    saved, saved_order = repo.save_dispute(d, o.attach_dispute(d.dispute_id))
    assert saved.version == 1 and saved_order.version == 2
    assert repo.get_order("o-1").open_dispute_id == d.dispute_id

    # A second dispute raced against the first: the order's version no longer matches.
    rival = dispute_for(o)
    with pytest.raises(ConcurrentModification):
        repo.save_dispute(rival, o.attach_dispute(rival.dispute_id))
    assert repo.get_dispute(rival.dispute_id) is None
    assert repo.get_order("o-1").open_dispute_id == d.dispute_id


def test_a_stale_dispute_write_is_refused(repo):
    o = repo.add_order(order(), "fp")
    d = dispute_for(o)
    saved, _ = repo.save_dispute(d, o.attach_dispute(d.dispute_id))
    first = repo.get_dispute(d.dispute_id)
    second = repo.get_dispute(d.dispute_id)
    first.cancel(first.actor_for("b-1", False), None, T0, POLICY)
    repo.save_dispute(first)
    second.reject(second.actor_for("s-1", False), "no", T0, POLICY)
    with pytest.raises(ConcurrentModification):
        repo.save_dispute(second)
    assert repo.get_dispute(d.dispute_id).status.value == "CANCELLED"


def test_lists_are_newest_first_per_party_and_paginate(repo):
    for i in range(5):
        repo.add_order(order(f"o-{i}", at=T0 + timedelta(minutes=i)), "fp")
    repo.add_order(order("other", buyer="b-2", at=T0), "fp")
    seen, cursor = [], None
    while True:
        items, cursor = repo.list_orders("buyer", "b-1", 2, cursor)
        seen += [o.order_id for o in items]
        if cursor is None:
            break
    assert seen == ["o-4", "o-3", "o-2", "o-1", "o-0"]
    assert [o.order_id for o in repo.list_orders("seller", "s-1", 10, None)[0]][:1] == ["o-4"]


def test_a_forged_cursor_is_invalid_input(repo):
    with pytest.raises(InvalidInput):
        repo.list_orders("buyer", "b-1", 2, "not-a-cursor!")


def test_disputes_list_by_party_and_status_and_the_escalated_queue_is_oldest_first(repo):
    ids = []
    for i in range(3):
        o = repo.add_order(order(f"o-{i}"), "fp")
        d = dispute_for(o, at=T0 + timedelta(minutes=i))
        repo.save_dispute(d, o.attach_dispute(d.dispute_id))
        ids.append(d.dispute_id)
    for i, dispute_id in enumerate(reversed(ids)):
        d = repo.get_dispute(dispute_id)
        d.reject(d.actor_for("s-1", False), "no", T0, POLICY)
        d.escalate(d.actor_for("b-1", False), None, T0 + timedelta(hours=i), POLICY)
        repo.save_dispute(d)
    assert [d.dispute_id for d in repo.list_disputes("buyer", "b-1", None, 10, None)[0]] == list(reversed(ids))
    assert repo.list_disputes("seller", "s-1", "AWAITING_SELLER", 10, None)[0] == []
    assert len(repo.list_disputes("seller", "s-1", "ESCALATED", 10, None)[0]) == 3
    queue = [d.dispute_id for d in repo.escalated_disputes(None, T0, 10, None)[0]]
    assert queue == list(reversed(ids))
    target = T0 + POLICY.mediation_sla  # the first escalation's mediation target
    overdue = repo.escalated_disputes(True, target, 10, None)[0]
    assert [d.dispute_id for d in overdue] == [ids[-1]]
    assert [d.dispute_id for d in repo.escalated_disputes(False, target, 10, None)[0]] == list(reversed(ids[:-1]))
    flagged = repo.get_dispute(ids[0])  # the latest escalation, flagged before its target (the sandbox)
    flagged.expire("MEDIATION", T0, POLICY, early=True)
    repo.save_dispute(flagged)
    assert [d.dispute_id for d in repo.escalated_disputes(True, target, 10, None)[0]] == [ids[-1], ids[0]]
    assert [d.dispute_id for d in repo.escalated_disputes(False, target, 10, None)[0]] == [ids[1]]
    assert all(d.is_overdue(target) for d in repo.escalated_disputes(True, target, 10, None)[0])


def open_dispute(repo) -> Dispute:
    o = repo.add_order(order(), "fp")
    d = dispute_for(o)
    saved, _ = repo.save_dispute(d, o.attach_dispute(d.dispute_id))
    return saved


def test_messages_come_back_oldest_first_in_pages(repo):
    did = open_dispute(repo).dispute_id
    for i in range(3):
        repo.add_message(Message.new(did, "b-1", "buyer", f"m{i}", T0 + timedelta(seconds=i)))
    first, cursor = repo.list_messages(did, 2, None)
    rest, end = repo.list_messages(did, 2, cursor)
    assert [m.body for m in first + rest] == ["m0", "m1", "m2"] and end is None


def test_nothing_is_added_to_a_closed_dispute_even_by_a_request_that_read_it_open(repo):
    d = open_dispute(repo)
    stale_view = repo.get_dispute(d.dispute_id)
    d.cancel(d.actor_for("b-1", False), None, T0, POLICY)
    repo.save_dispute(d)
    assert stale_view.is_open  # what a concurrent request still believes
    with pytest.raises(Conflict):
        repo.add_message(Message.new(d.dispute_id, "b-1", "buyer", "late", T0))
    with pytest.raises(Conflict):
        repo.add_evidence(Evidence.slot(d.dispute_id, "buyer", "b-1", "a.jpg", "image/jpeg", 10, T0), 10)
    assert repo.list_messages(d.dispute_id, 10, None)[0] == [] and repo.list_evidence(d.dispute_id) == []


def test_a_party_gets_ten_places_and_cannot_ask_for_slots_forever(repo):
    did = open_dispute(repo).dispute_id

    def slot():
        return Evidence.slot(did, "buyer", "b-1", "a.jpg", "image/jpeg", 10, T0)

    slots = [slot() for _ in range(10)]
    for e in slots:
        repo.add_evidence(e, 10)
    with pytest.raises(RuleViolation):
        repo.add_evidence(slot(), 10)
    for _ in range(2):  # rejected files give their place back...
        for e in slots:
            repo.update_evidence(e.rejected("TYPE_MISMATCH", T0), ["PENDING_UPLOAD"])
        slots = [slot() for _ in range(10)]
        for e in slots:
            repo.add_evidence(e, 10)
    for e in slots:
        repo.update_evidence(e.rejected("TYPE_MISMATCH", T0), ["PENDING_UPLOAD"])
    with pytest.raises(RuleViolation):  # ...but not forever: 30 slots in all
        repo.add_evidence(slot(), 10)


def test_orders_due_for_release_are_found_without_scanning(repo):
    due = repo.add_order(order("due"), "fp")
    repo.save_order(due.ship("CP", "CN1", T0))
    later = repo.add_order(order("later"), "fp")
    repo.save_order(later.ship("CP", "CN2", T0 + timedelta(days=30)))
    repo.add_order(order("unshipped"), "fp")
    found = repo.orders_due_for_release(T0 + POLICY.protection, 10)
    assert [o.order_id for o in found] == ["due"]
    released = repo.save_order(replace(found[0]).auto_release(T0 + POLICY.protection, POLICY))
    assert repo.orders_due_for_release(T0 + POLICY.protection, 10) == []
    assert released.escrow.status.value == "RELEASED"


def test_orders_due_for_release_come_in_pages_each_read_once(repo):
    for i in range(7):
        o = repo.add_order(order(f"due-{i}"), "fp")
        repo.save_order(o.ship("CP", f"CN{i}", T0 + timedelta(minutes=i)))
    found = repo.orders_due_for_release(T0 + POLICY.protection + timedelta(hours=1), 2)
    assert sorted(o.order_id for o in found) == [f"due-{i}" for i in range(7)]


def test_a_dispute_its_order_and_its_outbox_commit_together_and_the_outbox_is_handed_over_after(repo):
    o = repo.add_order(order(), "fp")
    handed = repo.relay.handed
    # The seller's ship-by clock, and a check of the seller's standing (an order registered) that
    # the relay leaves for the reconciler.
    assert [(r.kind, r.payload.get("action") or r.payload.get("seller_id")) for r in handed] == [
        ("TIMER", "SHIP_BY"), ("STANDING", "s-1")]
    d = dispute_for(o)
    repo.save_dispute(d, o.attach_dispute(d.dispute_id))
    kinds = sorted(r.kind for r in handed[2:])
    assert kinds == ["EVENT", "EVENT", "TIMER"]  # opened + offer made; the seller's timer
    owed = repo.outbox.pending(T0 + timedelta(days=1), 10)
    assert sorted(r.outbox_id for r in owed) == sorted(r.outbox_id for r in handed)

    rival = dispute_for(o)  # refused: nothing of it is written, its outbox included
    with pytest.raises(ConcurrentModification):
        repo.save_dispute(rival, o.attach_dispute(rival.dispute_id))
    assert len(repo.outbox.pending(T0 + timedelta(days=1), 10)) == 5 and len(handed) == 5


def test_an_accepted_photo_counts_for_the_checklist_without_making_the_dispute_stale(repo):
    d = open_dispute(repo)
    d2 = dispute_for(repo.add_order(order("o-2"), "fp"))
    assert repo.get_dispute(d.dispute_id).evidence_checklist()["satisfied"] is True  # NOT_RECEIVED
    slot = Evidence.slot(d.dispute_id, "buyer", "b-1", "a.jpg", "image/jpeg", 10, T0)
    repo.add_evidence(slot, 10)
    before = repo.get_dispute(d.dispute_id)
    repo.update_evidence(slot.accepted("ab" * 32, True, T0), ["PENDING_UPLOAD"])
    after = repo.get_dispute(d.dispute_id)
    assert after.buyer_visual_evidence == 1 and after.version == before.version
    before.reject(before.actor_for("s-1", False), "no", T0, POLICY)  # a write from the older read
    repo.save_dispute(before)
    assert repo.get_dispute(d.dispute_id).buyer_visual_evidence == 1
    assert repo.get_dispute(d2.dispute_id) is None


@pytest.mark.parametrize("role, content_type", [("buyer", "image/jpeg"), ("seller", "application/pdf")])
def test_a_file_is_not_accepted_into_a_dispute_that_closed_while_it_was_checked(repo, role, content_type):
    d = open_dispute(repo)
    slot = Evidence.slot(d.dispute_id, role, f"{role[0]}-1", "a", content_type, 10, T0)
    repo.add_evidence(slot, 10)
    repo.update_evidence(slot.processing(T0), ["PENDING_UPLOAD"])
    d.cancel(d.actor_for("b-1", False), None, T0, POLICY)
    repo.save_dispute(d)
    with pytest.raises(Conflict) as refused:
        repo.update_evidence(slot.accepted("ab" * 32, True, T0, "cd" * 32), ["PENDING_UPLOAD", "PROCESSING"])
    assert refused.value.code == "DISPUTE_CLOSED"
    assert [e.status for e in repo.list_evidence(d.dispute_id)] == ["PROCESSING"]
    assert repo.get_dispute(d.dispute_id).buyer_visual_evidence == 0
    repo.update_evidence(slot.rejected("DISPUTE_CLOSED", T0), ["PENDING_UPLOAD", "PROCESSING"])  # a rejection is
    assert [e.rejection_reason for e in repo.list_evidence(d.dispute_id)] == ["DISPUTE_CLOSED"]  # recorded


def test_a_file_stuck_processing_is_found_by_the_sweep_after_its_limit(repo):
    from chalicelib.domain.evidence import PROCESSING_LIMIT

    d = open_dispute(repo)
    slot = Evidence.slot(d.dispute_id, "buyer", "b-1", "a.jpg", "image/jpeg", 10, T0)
    repo.add_evidence(slot, 10)
    arrived = T0 + timedelta(minutes=1)
    repo.update_evidence(slot.processing(arrived), ["PENDING_UPLOAD"])
    with repo.uow() as uow:
        assert uow.evidence.expired(arrived + timedelta(minutes=16), 10) == []  # past the upload window only
        found = uow.evidence.expired(arrived + PROCESSING_LIMIT + timedelta(seconds=1), 10)
    assert [(e.evidence_id, e.status) for e in found] == [(slot.evidence_id, "PROCESSING")]
    failed = found[0].timed_out(arrived + PROCESSING_LIMIT)
    assert (failed.status, failed.rejection_reason) == ("REJECTED", "PROCESSING_FAILED")
    repo.update_evidence(failed, ["PROCESSING"])
    with repo.uow() as uow:
        assert uow.evidence.expired(arrived + timedelta(days=1), 10) == []


def test_each_partys_quota_is_kept_on_the_dispute_and_survives_its_writes(repo):
    d = open_dispute(repo)
    slots = [Evidence.slot(d.dispute_id, "buyer", "b-1", f"{i}.pdf", "application/pdf", 10, T0) for i in range(3)]
    for slot in slots:
        repo.add_evidence(slot, 10)
    repo.add_evidence(Evidence.slot(d.dispute_id, "seller", "s-1", "s.pdf", "application/pdf", 10, T0), 10)
    repo.update_evidence(slots[0].rejected("UNRECOGNIZED_CONTENT", T0), ["PENDING_UPLOAD"])  # frees its place
    before = repo.get_dispute(d.dispute_id)
    assert (before.evidence_used, before.evidence_created) == ({"buyer": 2, "seller": 1}, {"buyer": 3, "seller": 1})
    before.reject(before.actor_for("s-1", False), "no", T0, POLICY)
    repo.save_dispute(before)  # the dispute's own write leaves the counters as they are
    after = repo.get_dispute(d.dispute_id)
    assert (after.evidence_used, after.evidence_created) == ({"buyer": 2, "seller": 1}, {"buyer": 3, "seller": 1})
    assert after.may_take_evidence_slot(after.actor_for("b-1", False))


# ---- moderation: standing counters, fact markers, rules ---------------------------------------------
def test_facts_add_up_per_item_and_a_fact_written_twice_is_refused(repo):
    from chalicelib.domain import standing as st

    facts = [*st.order_registered("o-1", "b-1", "s-1", T0), st.defect("o-1", "b-1", "s-1", T0),
             *st.order_registered("o-2", "b-2", "s-1", T0)]
    repo._one(lambda uow: uow.moderation.record(facts))
    with repo.uow() as uow:
        days = uow.moderation.buckets(st.seller_key("s-1"), "D#2026-11-01", "D#2026-11-30")
        months = uow.moderation.buckets(st.seller_key("s-1"), "M#2026-01", "M#2026-12")
    member = st.defect_member("b-1", "o-1")
    for found, bucket in ((days, st.day_bucket(T0.date())), (months, st.month_bucket(T0.date()))):
        # the counters on the bucket's own item, the defect's entry on its member shard beside it
        assert [(b.key, b.counts, b.members) for b in found] == [
            (bucket, {"orders": 2, "defects": 1}, frozenset()),
            (st.member_bucket(bucket, member), {}, frozenset({member}))]
    with pytest.raises(ConcurrentModification):
        repo._one(lambda uow: uow.moderation.record([st.defect("o-1", "b-1", "s-1", T0)]))
    with repo.uow() as uow:
        assert uow.moderation.buckets(st.seller_key("s-1"), "D#2026-11-01", "D#2026-11-01")[0].counts["defects"] == 1


def test_a_level_is_published_once_from_the_level_it_replaces(repo):
    from chalicelib.domain import standing as st

    def published() -> st.Level:
        with repo.uow() as uow:
            return st.published_level(uow.moderation.buckets(st.seller_key("s-1"), "D#2026-01-01", st.LEVEL_KEY))

    assert published() is st.Level.NOT_ENOUGH_DATA
    repo._one(lambda uow: uow.moderation.publish_level("s-1", "NOT_ENOUGH_DATA", "GOOD"))
    assert published() is st.Level.GOOD
    with pytest.raises(ConcurrentModification):  # another reader published GOOD first
        repo._one(lambda uow: uow.moderation.publish_level("s-1", "NOT_ENOUGH_DATA", "GOOD"))
    repo._one(lambda uow: uow.moderation.publish_level("s-1", "GOOD", "WATCH"))
    assert published() is st.Level.WATCH


def test_a_rule_is_versioned_and_a_stale_save_is_refused(repo):
    from chalicelib.domain.rules import Rule

    body = {"description": "Escalate counterfeits", "mode": "DRY_RUN", "priority": 3,
            "when": {"reasons": ["COUNTERFEIT"], "max_amount": {"amount": 100, "currency": "EUR"}}, "then": "ESCALATE"}
    first = Rule.define("r-1", **body, previous=None, now=T0, by="admin-1")
    repo._one(lambda uow: uow.moderation.save_rule(first, None))
    second = Rule.define("r-1", **{**body, "mode": "ACTIVE"}, previous=first, now=T0, by="admin-1")
    repo._one(lambda uow: uow.moderation.save_rule(second, 1))
    with pytest.raises(ConcurrentModification):
        repo._one(lambda uow: uow.moderation.save_rule(second, 1))
    with repo.uow() as uow:
        assert uow.moderation.rules() == [second] and uow.moderation.rule("r-1") == second
        assert uow.moderation.rule("r-2") is None
        assert uow.moderation.report("r-1", 2) == {"evaluated": 0, "matched": 0, "decided_by_people": 0,
                                                   "agreed": 0, "disagreed": 0}


def test_orders_left_unprocessed_by_dynamodb_are_asked_for_again_after_a_pause_then_one_by_one(
        aws, settings, monkeypatch):
    """DynamoDB may leave keys of a BatchGetItem unprocessed (throttling): moto never does, so the
    answer of its one request is cut here. 150 orders: two requests of at most 100 keys; keys left
    over are asked for again after a growing pause, and those still left after the last round are
    read one by one; every order is found, none twice."""
    from pynamodb.connection import Connection

    from chalicelib.adapters.dynamodb import DynamoOutbox, DynamoUnitOfWork, make_tables, repositories

    tables = make_tables(settings.tables, "us-east-1")
    repo = Repo(lambda: DynamoUnitOfWork(tables, Connection(region="us-east-1"), POLICY, Relay(), FakeClock()),
                DynamoOutbox(tables))
    ids = [f"o-{i:03}" for i in range(150)]
    for i in ids:
        repo.add_order(order(i), "fp")
    real = repositories._batch_get_page
    sizes: list[int] = []
    pauses: list[float] = []

    def throttled(model, keys):
        sizes.append(len(keys))
        items, left = real(model, keys)
        assert left == []
        return items[:1], [k for k in keys if k["order_id"]["S"] != items[0]["order_id"]["S"]]

    monkeypatch.setattr(repositories, "_batch_get_page", throttled)
    monkeypatch.setattr(repositories.time, "sleep", pauses.append)
    assert repo.get_orders(ids) == {i: repo.get_order(i) for i in ids}
    rounds = repositories.BATCH_GET_ROUNDS
    assert sizes == [100 - n for n in range(rounds)] + [50 - n for n in range(rounds)]
    assert len(pauses) == 2 * (rounds - 1)
    caps = [repositories.BATCH_GET_PAUSE * 2 ** n for n in range(1, rounds)] * 2
    assert all(0 <= p <= cap for p, cap in zip(pauses, caps, strict=True))


def test_the_pynamodb_batch_step_the_order_reads_use_is_still_there():
    """get_many calls PynamoDB's one-request step (private): this fails if an upgrade moves it."""
    from pynamodb.models import Model

    assert callable(getattr(Model, "_batch_get_page", None))
