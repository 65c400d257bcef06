"""Who may call what: every route of the app x every kind of caller, against API.md's rules.

- no token -> 401 (only ``GET /health`` is public);
- not a party of the order/dispute and no moderator -> 404, exactly as if it did not exist;
- a party (or a moderator) calling an action that is not theirs -> 403;
- group-only routes without a resource (``POST /orders``, ``GET /moderation/disputes``) -> 403;
- services may report tracking events on any order, but see no order/dispute they are not party to;
- the allowed callers get the success code, from a state in which the action is possible.

Each cell builds its own state. Refusals carry API.md's error body, and a refused POST leaves
every resource as it was (compared through GETs by the buyer, before and after).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from tests.support import auth, dumps, order_body

BUYER, SELLER, STRANGER, MODERATOR, SERVICE, ANONYMOUS = "buyer", "seller", "stranger", "moderator", "service", "none"
CALLERS = (BUYER, SELLER, STRANGER, MODERATOR, SERVICE, ANONYMOUS)


def headers(caller: str) -> dict[str, str]:
    return {
        BUYER: lambda: auth("b-1"),
        SELLER: lambda: auth("s-1"),
        STRANGER: lambda: auth("x-1"),
        MODERATOR: lambda: auth("m-1", "moderators"),
        SERVICE: lambda: auth("svc", "services"),
        ANONYMOUS: lambda: {"Content-Type": "application/json"},
    }[caller]()


def call(client: Any, method: str, path: str, caller: str, body: dict[str, Any] | None = None) -> Any:
    payload = dumps(body if body is not None else {}).encode() if method == "POST" else b""
    return client.http.request(method, path, headers=headers(caller), body=payload)


def ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    return response.json_body


# ---- states -----------------------------------------------------------------------------------
# Each returns the ids the route's path needs; "order_id"/"dispute_id" also name what to snapshot.
Ctx = dict[str, str]
DELIVERED_AT_T0 = {"status": "DELIVERED", "occurred_at": "2026-11-01T12:00:00Z"}


def nothing(client: Any) -> Ctx:
    return {"order_id": "o-1"}  # POST /orders will try to create it


def registered(client: Any) -> Ctx:
    ok(call(client, "POST", "/orders", SERVICE, order_body()), 201)
    return {"order_id": "o-1"}


def shipped(client: Any) -> Ctx:
    ctx = registered(client)
    ok(call(client, "POST", "/orders/o-1/shipment", SELLER, {"carrier": "CP", "tracking_number": "CN123"}), 200)
    return ctx


def delivered(client: Any) -> Ctx:
    ctx = shipped(client)
    ok(call(client, "POST", "/orders/o-1/tracking-events", SERVICE, DELIVERED_AT_T0), 200)
    return ctx


def awaiting_seller(client: Any, requested: dict[str, Any] | None = None) -> Ctx:
    """A dispute in AWAITING_SELLER; the buyer's request is the open offer ``offer_id``."""
    ctx = delivered(client)
    d = ok(call(client, "POST", "/orders/o-1/disputes", BUYER, {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": requested or {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}), 201)
    assert d["status"] == "AWAITING_SELLER"
    return {**ctx, "dispute_id": d["dispute_id"], "offer_id": d["offers"][0]["offer_id"]}


def negotiating(client: Any) -> Ctx:
    """NEGOTIATING, with the seller's counter-offer open as ``offer_id``."""
    ctx = awaiting_seller(client)
    d = ok(call(client, "POST", f"/disputes/{ctx['dispute_id']}/offers", SELLER,
                {"type": "REFUND_PARTIAL", "amount": {"amount": 1000, "currency": "USD"}}), 201)
    assert d["status"] == "NEGOTIATING"
    return {**ctx, "offer_id": d["offer"]["offer_id"]}


def negotiating_with_photo(client: Any) -> Ctx:
    """NEGOTIATING, with the buyer's photo accepted (what a buyer needs to escalate)."""
    from app import app
    from chalicelib import bootstrap
    from tests.integration.api import Api
    from tests.integration.evidence import Uploads, jpeg

    ctx = negotiating(client)
    env = bootstrap.container().aws_env  # type: ignore[attr-defined]
    assert Uploads(Api(client), app, env).upload(ctx["dispute_id"], jpeg())["status"] == "ACCEPTED"
    return ctx


def with_evidence(client: Any) -> Ctx:
    """AWAITING_SELLER, with one accepted photo from the buyer."""
    from app import app
    from chalicelib import bootstrap
    from tests.integration.api import Api
    from tests.integration.evidence import Uploads, jpeg

    ctx = awaiting_seller(client)
    env = bootstrap.container().aws_env  # type: ignore[attr-defined]
    Uploads(Api(client), app, env).upload(ctx["dispute_id"], jpeg())
    return ctx


def escalated(client: Any) -> Ctx:
    ctx = negotiating(client)
    d = ok(call(client, "POST", f"/disputes/{ctx['dispute_id']}/escalate", SELLER, {}), 200)
    assert d["status"] == "ESCALATED"
    return ctx


def awaiting_return(client: Any) -> Ctx:
    ctx = awaiting_seller(client, {"type": "RETURN_AND_REFUND"})
    d = ok(call(client, "POST", f"/disputes/{ctx['dispute_id']}/offers/{ctx['offer_id']}/accept", SELLER, {}), 200)
    assert d["status"] == "AWAITING_RETURN"
    return ctx


def return_in_transit(client: Any) -> Ctx:
    ctx = awaiting_return(client)
    d = ok(call(client, "POST", f"/disputes/{ctx['dispute_id']}/return-shipment", BUYER,
                {"carrier": "CP", "tracking_number": "RT123"}), 200)
    assert d["status"] == "RETURN_IN_TRANSIT"
    return ctx


def counterparty_offer(client: Any, caller: str) -> Ctx:
    """For accept: an open offer by the caller's counterparty (the seller's for everyone but the seller)."""
    return awaiting_seller(client) if caller == SELLER else negotiating(client)


# ---- the matrix -------------------------------------------------------------------------------
OK200, OK201 = 200, 201


def expect(**by_caller: int) -> dict[str, int]:
    """Statuses per caller; a caller left out gets API.md's defaults: 401 without a token."""
    out = {ANONYMOUS: 401, **by_caller}
    assert set(out) == set(CALLERS), f"row misses callers: {set(CALLERS) - set(out)}"
    return out


SIGNED_IN_OK = dict(buyer=OK200, seller=OK200, stranger=OK200, moderator=OK200, service=OK200)
READ_BY_PARTIES = dict(buyer=OK200, seller=OK200, moderator=OK200, stranger=404, service=404)


def only(allowed: dict[str, int], *, strangers: int = 404, service: int = 404) -> dict[str, int]:
    """An action on a resource: allowed callers succeed, other parties and moderators get 403,
    strangers (and services, which are no party) get 404."""
    row = {BUYER: 403, SELLER: 403, MODERATOR: 403, STRANGER: strangers, SERVICE: service}
    row.update(allowed)
    return row


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    setup: Callable[..., Ctx]
    statuses: dict[str, int]
    body: dict[str, Any] | Callable[[str], dict[str, Any]] = field(default_factory=dict)
    per_caller_setup: bool = False  # setup(client, caller) rather than setup(client)

    def body_for(self, caller: str) -> dict[str, Any]:
        return self.body(caller) if callable(self.body) else self.body


MATRIX: tuple[Row, ...] = (
    Row("GET", "/health", nothing, {c: OK200 for c in CALLERS}),
    Row("POST", "/orders", nothing,
        expect(service=OK201, buyer=403, seller=403, stranger=403, moderator=403), body=order_body()),
    Row("GET", "/orders", awaiting_seller, expect(**SIGNED_IN_OK)),
    Row("GET", "/orders/{order_id}", awaiting_seller, expect(**READ_BY_PARTIES)),
    Row("POST", "/orders/{order_id}/shipment", registered, expect(**only({SELLER: OK200})),
        body={"carrier": "CP", "tracking_number": "CN123"}),
    Row("POST", "/orders/{order_id}/tracking-events", shipped,
        expect(**only({SERVICE: OK200})), body=DELIVERED_AT_T0),
    Row("POST", "/orders/{order_id}/confirm-receipt", shipped, expect(**only({BUYER: OK200}))),
    Row("POST", "/orders/{order_id}/disputes", delivered, expect(**only({BUYER: OK201})), body={
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}),
    Row("GET", "/disputes", awaiting_seller, expect(**SIGNED_IN_OK)),
    Row("GET", "/disputes/{dispute_id}", awaiting_seller, expect(**READ_BY_PARTIES)),
    Row("POST", "/disputes/{dispute_id}/offers", awaiting_seller,
        expect(**only({BUYER: OK201, SELLER: OK201})),
        body=lambda c: {"type": "REFUND_FULL"} if c != SELLER else
        {"type": "REFUND_PARTIAL", "amount": {"amount": 1000, "currency": "USD"}}),
    Row("POST", "/disputes/{dispute_id}/offers/{offer_id}/accept", counterparty_offer,
        expect(**only({BUYER: OK200, SELLER: OK200})), per_caller_setup=True),
    Row("POST", "/disputes/{dispute_id}/reject", awaiting_seller, expect(**only({SELLER: OK200})),
        body={"message": "The photo shows the red dress I sent"}),
    Row("POST", "/disputes/{dispute_id}/escalate", negotiating_with_photo,
        expect(**only({BUYER: OK200, SELLER: OK200})), body={"message": "We cannot agree"}),
    Row("POST", "/disputes/{dispute_id}/cancel", awaiting_seller, expect(**only({BUYER: OK200}))),
    Row("POST", "/disputes/{dispute_id}/return-shipment", awaiting_return, expect(**only({BUYER: OK200})),
        body={"carrier": "CP", "tracking_number": "RT123"}),
    Row("POST", "/disputes/{dispute_id}/confirm-return", return_in_transit, expect(**only({SELLER: OK200}))),
    Row("POST", "/disputes/{dispute_id}/evidence", awaiting_seller,
        expect(**only({BUYER: OK201, SELLER: OK201})),
        body={"file_name": "photo.jpg", "content_type": "image/jpeg", "size_bytes": 1234}),
    Row("GET", "/disputes/{dispute_id}/evidence", with_evidence, expect(**READ_BY_PARTIES)),
    Row("POST", "/disputes/{dispute_id}/messages", awaiting_seller,
        expect(**only({BUYER: OK201, SELLER: OK201, MODERATOR: OK201})), body={"body": "Hello there"}),
    Row("GET", "/disputes/{dispute_id}/messages", awaiting_seller, expect(**READ_BY_PARTIES)),
    Row("GET", "/moderation/disputes", escalated,
        expect(moderator=OK200, buyer=403, seller=403, stranger=403, service=403)),
    Row("POST", "/disputes/{dispute_id}/decision", escalated, expect(**only({MODERATOR: OK200})),
        body={"outcome": "REFUND_FULL", "rationale": "The photos show a blue dress, not a red one"}),
    Row("GET", "/message-templates", nothing, expect(**SIGNED_IN_OK)),
)

# Lists answer "the caller's" items: someone who is no party must not see the order or dispute.
NON_PARTIES = (STRANGER, MODERATOR, SERVICE)


def test_the_matrix_covers_every_route_of_the_app_and_nothing_else() -> None:
    from app import app

    routes = {(method, path) for path, methods in app.routes.items() for method in methods}
    rows = [(r.method, r.path) for r in MATRIX]
    assert len(rows) == len(set(rows)), "a route has two rows"
    assert set(rows) - routes == set(), "rows for routes the app does not have"
    assert routes - set(rows) == set(), "routes without a row in the authorization matrix"


CELLS = [pytest.param(row, caller, id=f"{row.method} {row.path} [{caller}]") for row in MATRIX for caller in CALLERS]


def snapshot(client: Any, ctx: Ctx) -> dict[str, tuple[int, Any]]:
    """Everything the buyer can read about the cell's order and dispute."""
    paths = [f"/orders/{ctx['order_id']}", "/orders?role=buyer", "/disputes?role=buyer"]
    if "dispute_id" in ctx:
        paths += [f"/disputes/{ctx['dispute_id']}", f"/disputes/{ctx['dispute_id']}/messages"]
    out = {}
    for p in paths:
        r = call(client, "GET", p, BUYER)
        out[p] = (r.status_code, r.json_body)
    return out


def assert_error_shape(body: Any) -> None:
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body


@pytest.mark.parametrize(("row", "caller"), CELLS)
def test_authorization(client: Any, row: Row, caller: str) -> None:
    ctx = row.setup(client, caller) if row.per_caller_setup else row.setup(client)
    path = row.path.format(**ctx)
    body = row.body_for(caller)
    want = row.statuses[caller]
    before = snapshot(client, ctx) if row.method == "POST" and want >= 400 else None

    r = call(client, row.method, path, caller, body)

    assert r.status_code == want, f"{row.method} {path} as {caller}: {r.status_code} {r.body!r}"
    if want < 400:
        assert not (isinstance(r.json_body, dict) and "error" in r.json_body), r.json_body
        if row.method == "GET" and row.path in ("/orders", "/disputes") and caller in NON_PARTIES:
            assert r.json_body["items"] == [], f"{caller} sees others' items: {r.json_body}"
        return

    assert_error_shape(r.json_body)
    if want == 404:
        # "as if it did not exist": the same answer as for ids nobody has.
        unknown = {k: f"{k[:-3]}-{uuid.uuid4()}" for k in ctx}
        missing = call(client, row.method, row.path.format(**unknown), caller, body)
        assert (missing.status_code, missing.json_body) == (r.status_code, r.json_body)
    if before is not None:
        assert snapshot(client, ctx) == before, f"refused {row.method} {path} as {caller} changed state"


@pytest.mark.parametrize("caller", [BUYER, SELLER])
def test_a_party_cannot_accept_its_own_offer(client: Any, caller: str) -> None:
    """Accept is 'the other party's' action: accepting one's own open offer is not theirs (403)."""
    ctx = negotiating(client) if caller == SELLER else awaiting_seller(client)
    before = snapshot(client, ctx)
    r = call(client, "POST", f"/disputes/{ctx['dispute_id']}/offers/{ctx['offer_id']}/accept", caller, {})
    assert r.status_code == 403, r.body
    assert_error_shape(r.json_body)
    assert snapshot(client, ctx) == before
