"""The case team over HTTP and DynamoDB (moto): claims decided by conditional writes (one winner
among threads), notes no party can read, fault on the resolution, the queue's filters."""
from __future__ import annotations

import json
import threading
from typing import Any

import boto3

from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Identity
from chalicelib.services.disputes import ClaimCase
from tests.integration.api import BUYER, MODERATOR, SELLER, Api
from tests.integration.test_payments_over_http import run_at_once
from tests.support import auth, pay_refunds

OTHER = ("m-2", "moderators")
RATIONALE = "The photos show a blue dress; the listing says red."
SECRET = "NOTE-41c9: seller's warehouse confirmed the wrong colour"


def case(api: Api, order_id: str = "o-1") -> str:
    api.delivered_order(order_id)
    d = api.open_dispute(order_id)
    assert api.post(f"/disputes/{d['dispute_id']}/reject", SELLER, {"message": "As listed"}).status_code == 200
    assert api.post(f"/disputes/{d['dispute_id']}/escalate", SELLER, {}).status_code == 200
    return str(d["dispute_id"])


def test_a_claimed_case_is_decided_by_its_holder_only_and_others_are_told_who_holds_it(client: Any,
                                                                                       wired: Any) -> None:
    api = Api(client)
    did = case(api)
    mine = api.post(f"/disputes/{did}/claim", MODERATOR, {})
    assert mine.status_code == 200, mine.json_body
    assignment = mine.json_body["assignment"]
    assert assignment["moderator_id"] == "m-1" and assignment["expires_at"] > assignment["claimed_at"]
    assert {a["action"] for a in mine.json_body["available_actions"]} >= {"decide", "release", "add_note"}

    before = api.snapshot("o-1", did)
    for path, body in ((f"/disputes/{did}/claim", {}),
                       (f"/disputes/{did}/decision", {"outcome": "REJECTED", "rationale": RATIONALE}),
                       (f"/disputes/{did}/messages", {"body": "Looking at it"}),
                       (f"/disputes/{did}/release", {})):
        r = api.post(path, OTHER, body)
        assert r.status_code == 409, (path, r.json_body)
        assert r.json_body["error"]["code"] == "CASE_CLAIMED"
        assert r.json_body["error"]["details"] == {"moderator_id": "m-1", "expires_at": assignment["expires_at"]}
    assert api.snapshot("o-1", did) == before
    seen_by_other = api.get(f"/disputes/{did}", OTHER).json_body
    assert seen_by_other["assignment"] == assignment
    assert {a["action"] for a in seen_by_other["available_actions"]} == {"add_note"}
    for party in (BUYER, SELLER):
        assert "assignment" not in api.get(f"/disputes/{did}", party).json_body

    decided = api.post(f"/disputes/{did}/decision", MODERATOR, {
        "outcome": "REFUND_PARTIAL", "amount": {"amount": 800, "currency": "USD"}, "rationale": RATIONALE,
        "fault": "CARRIER"})
    assert decided.status_code == 200, decided.json_body
    assert decided.json_body["assignment"] is None
    assert decided.json_body["resolution"]["fault"] == "CARRIER"
    assert pay_refunds() == 1
    wired.payments.settle_due(now=float("inf"))
    shown = api.get(f"/disputes/{did}", BUYER).json_body
    assert shown["resolution"]["fault"] == "CARRIER" and shown["refund"]["status"] == "SUCCEEDED"


def test_only_one_of_many_moderators_claiming_at_once_wins(client: Any, wired: Any) -> None:
    api = Api(client)
    did = case(api)
    moderators = [auth(f"m-{n}", "moderators") for n in range(10, 16)]
    answers = run_at_once(len(moderators), iter_call(lambda h: client.http.post(
        f"/disputes/{did}/claim", headers=h, body="{}"), moderators))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] + [409] * (len(moderators) - 1), [r.json_body for r in answers]
    winner = next(r for r in answers if r.status_code == 200).json_body["assignment"]["moderator_id"]
    assert all(r.json_body["error"]["details"]["moderator_id"] == winner for r in answers if r.status_code == 409)
    assert api.get(f"/disputes/{did}", MODERATOR).json_body["assignment"]["moderator_id"] == winner


def test_moderators_asking_for_the_next_case_at_once_get_distinct_cases(client: Any, wired: Any) -> None:
    api = Api(client)
    cases = {case(api, f"o-{n}") for n in range(1, 4)}
    moderators = [auth(f"m-{n}", "moderators") for n in range(20, 26)]
    answers = run_at_once(len(moderators), iter_call(lambda h: client.http.post(
        "/moderation/next", headers=h, body="{}"), moderators))
    got = [r.json_body["dispute_id"] for r in answers if r.status_code == 200]
    assert sorted(got) == sorted(cases), [r.status_code for r in answers]
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 204, 204, 204]
    assert all(not r.body for r in answers if r.status_code == 204)


def test_a_decision_racing_a_claim_is_refused_by_the_write_itself(client: Any, wired: Any) -> None:
    api = Api(client)
    did = case(api)
    disputes = wired.services.disputes
    with disputes.uow() as uow:  # read: nobody holds the case
        d = uow.disputes.get(did)
        assert d.holder(wired.clock.now()) is None
        disputes.claim(_who("m-2"), ClaimCase(did))  # a colleague claims meanwhile
        d.decide("REJECTED", None, RATIONALE, wired.clock.now(), disputes.policy, by="m-1")
        uow.disputes.save(d, claimant="m-1")
        try:
            uow.commit()
            raise AssertionError("the decision was written over a colleague's claim")
        except Conflict as exc:
            assert exc.code == "CASE_CLAIMED" and exc.details["moderator_id"] == "m-2"
    assert api.get(f"/disputes/{did}", MODERATOR).json_body["status"] == "ESCALATED"


def test_notes_are_for_moderators_and_never_reach_a_party(client: Any, wired: Any) -> None:
    api = Api(client)
    did = case(api)
    r = api.post(f"/disputes/{did}/notes", MODERATOR, {"body": SECRET})
    assert r.status_code == 201, r.json_body
    assert {k: r.json_body[k] for k in ("dispute_id", "author_id", "body")} == {
        "dispute_id": did, "author_id": "m-1", "body": SECRET}
    assert [n["body"] for n in api.get(f"/disputes/{did}/notes", OTHER).json_body["items"]] == [SECRET]
    for party in (BUYER, SELLER):
        for method, body in (("GET", None), ("POST", {"body": "me too"})):
            refused = api.call(method, f"/disputes/{did}/notes", party, body)
            assert (refused.status_code, refused.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION")
    stranger = api.get(f"/disputes/{did}/notes", ("x-1",))
    assert stranger.status_code == 404
    assert api.post(f"/disputes/{did}/notes", MODERATOR, {"body": "   "}).status_code == 400
    assert api.post(f"/disputes/{did}/notes", MODERATOR, {"body": "x" * 4001}).status_code == 400
    assert len(api.get(f"/disputes/{did}/notes", MODERATOR).json_body["items"]) == 1

    api.post(f"/disputes/{did}/decision", MODERATOR, {"outcome": "REFUND_FULL", "rationale": RATIONALE})
    assert pay_refunds() == 1
    wired.payments.settle_due(now=float("inf"))
    seen = [api.get(p, who).json_body for who in (BUYER, SELLER) for p in (
        f"/disputes/{did}", f"/disputes/{did}/messages", f"/disputes/{did}/evidence", "/orders/o-1",
        "/disputes?role=buyer", "/disputes?role=seller")]
    events = _published(wired)
    assert SECRET not in json.dumps(seen) and SECRET not in json.dumps(events)
    assert events, "the decision published events: the check above looked at something"


def test_the_queue_filters_by_holder_and_reason_and_refuses_unknown_values(client: Any, wired: Any) -> None:
    api = Api(client)
    mine, theirs, free = (case(api, f"o-{n}") for n in range(1, 4))
    assert api.post(f"/disputes/{mine}/claim", MODERATOR, {}).status_code == 200
    assert api.post(f"/disputes/{theirs}/claim", OTHER, {}).status_code == 200

    def queue(query: str) -> list[str]:
        r = api.get(f"/moderation/disputes?{query}", MODERATOR)
        assert r.status_code == 200, r.json_body
        return sorted(d["dispute_id"] for d in r.json_body["items"])

    assert queue("assigned=me") == [mine]
    assert queue("assigned=others") == [theirs]
    assert queue("assigned=none") == [free]
    assert queue("reason=NOT_AS_DESCRIBED&assigned=none") == [free]
    assert queue("reason=NOT_RECEIVED") == []
    items = api.get("/moderation/disputes", MODERATOR).json_body["items"]
    assert {d["dispute_id"]: (d["assignment"] or {}).get("moderator_id") for d in items} == {
        mine: "m-1", theirs: "m-2", free: None}
    for bad in ("assigned=mine", "reason=BROKEN", "assigned="):
        r = api.get(f"/moderation/disputes?{bad}", MODERATOR)
        assert (r.status_code, r.json_body["error"]["code"]) == (400, "INVALID_QUERY"), (bad, r.json_body)


def test_next_case_is_204_when_nothing_waits_and_never_offers_a_moderators_own_case(client: Any) -> None:
    api = Api(client)
    r = api.post("/moderation/next", MODERATOR, {})
    assert (r.status_code, r.body) == (204, b"")
    case(api)
    seller_moderator = ("s-1", "moderators")  # a moderator who is the seller of the only case
    assert api.post("/moderation/next", seller_moderator, {}).status_code == 204
    assert api.post("/moderation/next", BUYER, {}).status_code == 403


def iter_call(call: Any, headers: list[dict[str, str]]) -> Any:
    """A callable for run_at_once: each thread takes the next caller's headers."""
    pending = list(headers)
    lock = threading.Lock()

    def run() -> Any:
        with lock:
            h = pending.pop()
        return call(h)
    return run


def _who(sub: str) -> Identity:
    return Identity(sub, frozenset({"moderators"}))


def _published(wired: Any) -> list[Any]:
    """Every event the bus received (the stack's tap queue holds a copy of each)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    out: list[Any] = []
    while True:
        got = sqs.receive_message(QueueUrl=wired.aws_env["EVENTS_TAP_QUEUE_URL"], MaxNumberOfMessages=10)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out += [json.loads(m["Body"]) for m in messages]
