"""Who may call what, as far as the HTTP edge decides it: every route of the app, as app.py declares it.

- no token -> 401 with the API's error body, on every route but ``GET /health`` (public);
- every route that performs a transition of the dispute (its ``action=``), drawn from the route
  table and the domain's TRANSITIONS: whoever the transitions name gives it (2xx, and the dispute
  moves as declared), other parties and moderators get 403, strangers and services 404;
- the service layer's refusals reach the caller as the API's 403 and 404 (one example of each):
  404 exactly as if the id did not exist, and a refused POST leaves every resource as it was
  (compared through GETs by the buyer, before and after);
- lists over HTTP show a non-party nothing.

Which caller may do what on which resource (every use case x buyer, seller, stranger, moderator,
service) is proven at the service level, over the fakes: tests/unit/test_access.py.
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.domain.catalog import Solution
from chalicelib.domain.disputes import Status
from tests.support import auth, dumps, order_body, service_auth
from tests.unit import walk

BUYER, SELLER, STRANGER, MODERATOR, SERVICE, ANONYMOUS = "buyer", "seller", "stranger", "moderator", "service", "none"
CALLERS = (BUYER, SELLER, STRANGER, MODERATOR, SERVICE, ANONYMOUS)
SIGNED_IN = (BUYER, SELLER, STRANGER, MODERATOR, SERVICE)


def headers(caller: str) -> dict[str, str]:
    return {
        BUYER: lambda: auth("b-1"),
        SELLER: lambda: auth("s-1"),
        STRANGER: lambda: auth("x-1"),
        MODERATOR: lambda: auth("m-1", "moderators"),
        SERVICE: lambda: service_auth("svc"),
        ANONYMOUS: lambda: {"Content-Type": "application/json"},
    }[caller]()


def call(client: Any, method: str, path: str, caller: str, body: dict[str, Any] | None = None) -> Any:
    payload = dumps(body if body is not None else {}).encode() if method in ("POST", "PUT") else b""
    return client.http.request(method, path, headers=headers(caller), body=payload)


def ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    return response.json_body


# ---- states -----------------------------------------------------------------------------------
# Each returns the ids a route's path needs; "order_id"/"dispute_id" also name what to snapshot.
Ctx = dict[str, str]
DELIVERED_AT_T0 = {"status": "DELIVERED", "occurred_at": "2026-11-01T12:00:00Z"}


def awaiting_seller(client: Any) -> Ctx:
    """A dispute in AWAITING_SELLER; the buyer's request is the open offer ``offer_id``."""
    ok(call(client, "POST", "/orders", SERVICE, order_body()), 201)
    ok(call(client, "POST", "/orders/o-1/shipment", SELLER, {"carrier": "CP", "tracking_number": "CN123"}), 200)
    ok(call(client, "POST", "/orders/o-1/tracking-events", SERVICE, DELIVERED_AT_T0), 200)
    d = ok(call(client, "POST", "/orders/o-1/disputes", BUYER, {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}), 201)
    assert d["status"] == "AWAITING_SELLER"
    return {"order_id": "o-1", "dispute_id": d["dispute_id"], "offer_id": d["offers"][0]["offer_id"]}


def opened(client: Any, requested: Solution, amount: int | None) -> Ctx:
    """A dispute in AWAITING_SELLER on a delivered order, the buyer asking for ``requested``."""
    ok(call(client, "POST", "/orders", SERVICE, order_body()), 201)
    ok(call(client, "POST", "/orders/o-1/shipment", SELLER, {"carrier": "CP", "tracking_number": "CN123"}), 200)
    ok(call(client, "POST", "/orders/o-1/tracking-events", SERVICE, DELIVERED_AT_T0), 200)
    money = {"amount": {"amount": amount, "currency": "USD"}} if amount is not None else {}
    d = ok(call(client, "POST", "/orders/o-1/disputes", BUYER, {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": requested.value, **money}}), 201)
    return {"order_id": "o-1", "dispute_id": d["dispute_id"]}


RULE = {"description": "Escalate counterfeits at once", "mode": "ACTIVE", "priority": 5,
        "when": {"reasons": ["COUNTERFEIT"]}, "then": "ESCALATE"}
IDS = {"refund_id": "r-1", "seller_id": "s-1", "buyer_id": "b-1", "rule_id": "counterfeits"}


# ---- the routes ---------------------------------------------------------------------------------
# Every route of the app (tests/unit/walk.py reads app.py's route table), with a valid body of its
# schema: only the missing token is wrong. A route added to app.py is in these tests as it is.
ROUTES = walk.routes()


def snapshot(client: Any, ctx: Ctx) -> dict[str, tuple[int, Any]]:
    """Everything the buyer can read about the order and dispute."""
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


# ---- no token -----------------------------------------------------------------------------------
@pytest.mark.parametrize("row", ROUTES, ids=str)
def test_without_a_token_every_route_but_health_is_401_and_changes_nothing(client: Any, row: walk.Route) -> None:
    """Against real ids, with a valid body: only the missing token stands in the way."""
    ctx = awaiting_seller(client) if row.path != "/health" else {}
    path = row.path.format(**ctx, **IDS)
    before = snapshot(client, ctx) if row.method in ("POST", "PUT") else None

    r = call(client, row.method, path, ANONYMOUS, walk.sample_body(row.schema))

    if row.path == "/health":
        assert (r.status_code, r.json_body) == (200, {"status": "ok"}), r.body
        return
    if row.path == "/payments/webhook":  # no token by design: an unsigned body is refused instead
        assert r.status_code == 400 and r.json_body["error"]["code"] == "INVALID_WEBHOOK", r.body
        assert snapshot(client, ctx) == before
        return
    if row.path.startswith("/sandbox/"):  # no sandbox in this stage: no such route, token or not
        assert (r.status_code, r.json_body["error"]["code"]) == (404, "ROUTE_NOT_FOUND"), r.body
        assert snapshot(client, ctx) == before
        return
    assert r.status_code == 401, f"{row} without a token: {r.status_code} {r.body!r}"
    assert_error_shape(r.json_body)
    if before is not None:
        assert snapshot(client, ctx) == before, f"{row} without a token changed state"


@pytest.mark.parametrize("caller", SIGNED_IN)
def test_the_routes_without_a_resource_or_a_use_case_answer_every_signed_in_caller(client: Any, caller: str) -> None:
    for path in ("/health", "/message-templates"):
        r = call(client, "GET", path, caller)
        assert r.status_code == 200, (path, r.body)
        assert not (isinstance(r.json_body, dict) and "error" in r.json_body), r.json_body


# ---- the routes that perform a transition, derived from TRANSITIONS -------------------------------
def reach(client: Any, aws: dict[str, str], node: walk.Node) -> Ctx:
    """The state the walk over the fakes reached (tests/unit/walk.py), reached again over HTTP."""
    ctx = opened(client, *walk.OPENINGS[node.opening])
    for step in node.path:
        if step.route == walk.PHOTO:
            from app import app
            from tests.integration.api import Api
            from tests.integration.evidence import Uploads
            from tests.media import jpeg

            assert Uploads(Api(client), app, aws).upload(ctx["dispute_id"], jpeg())["status"] == "ACCEPTED"
            continue
        route = walk.route_named(step.route)
        r = call(client, route.method, route_path(client, route, ctx, step.offer), step.caller,
                 walk.sample_body(route.schema))
        assert r.status_code in (200, 201), (str(node), step, r.body)
    return ctx


def route_path(client: Any, route: walk.Route, ctx: Ctx, offer: int | None, **ids: str) -> str:
    offers = ok(call(client, "GET", f"/disputes/{ctx['dispute_id']}", BUYER), 200)["offers"]
    return route.path.format(**{**ctx, **ids}, **({"offer_id": offers[offer]["offer_id"]} if offer is not None else {}))


def offered_to_someone(node: walk.Node, route: walk.Route) -> int | None:
    return node.offer_for(route, *walk.PEOPLE)


@pytest.mark.parametrize("route", walk.command_routes(), ids=str)
def test_who_the_transitions_do_not_name_is_refused_over_http_and_nothing_changes(
        client: Any, aws: dict[str, str], route: walk.Route) -> None:
    """In the shallowest state where someone may give it: a party or moderator its commands'
    transitions do not name gets 403 NOT_YOUR_ACTION; a stranger or a service gets 404 exactly as
    for a dispute nobody has."""
    node = walk.first_node(route)
    offer = offered_to_someone(node, route)
    ctx = reach(client, aws, node)
    path = route_path(client, route, ctx, offer)
    unknown = route_path(client, route, ctx, offer, dispute_id=f"dispute-{uuid.uuid4()}")
    body = walk.sample_body(route.schema)
    before = snapshot(client, ctx)
    for caller in SIGNED_IN:
        if caller in walk.PEOPLE and walk.ACTOR_OF[caller] in walk.givers(route):
            continue
        r = call(client, route.method, path, caller, body)
        if caller in walk.PEOPLE:
            assert (r.status_code, r.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION"), (caller, r.body)
        else:
            nobody = call(client, route.method, unknown, caller, body)
            assert (r.status_code, r.json_body) == (nobody.status_code, nobody.json_body), caller
            assert r.status_code == 404, (caller, r.body)
        assert_error_shape(r.json_body)
    assert snapshot(client, ctx) == before


@pytest.mark.parametrize(("route", "caller"), [pytest.param(r, c, id=f"{r}[{c}]") for r in walk.command_routes()
                                               for c in walk.PEOPLE if walk.ACTOR_OF[c] in walk.givers(r)])
def test_who_the_transitions_name_gives_it_over_http_and_the_dispute_moves_as_declared(
        client: Any, aws: dict[str, str], route: walk.Route, caller: str) -> None:
    node = walk.first_node(route, (caller,))
    ctx = reach(client, aws, node)
    path = route_path(client, route, ctx, node.offer_for(route, caller))

    r = call(client, route.method, path, caller, walk.sample_body(route.schema))

    assert r.status_code in (200, 201), r.body
    assert Status(r.json_body["status"]) in walk.leads_to(route, node.status, walk.ACTOR_OF[caller]), r.body


# ---- the service layer's refusals, as HTTP answers ----------------------------------------------
def test_a_stranger_is_told_a_dispute_does_not_exist_exactly_as_for_an_unknown_id(client: Any) -> None:
    ctx = awaiting_seller(client)

    r = call(client, "GET", f"/disputes/{ctx['dispute_id']}", STRANGER)

    assert r.status_code == 404, r.body
    assert_error_shape(r.json_body)
    missing = call(client, "GET", f"/disputes/dispute-{uuid.uuid4()}", STRANGER)
    assert (missing.status_code, missing.json_body) == (r.status_code, r.json_body)


def test_a_seller_cancelling_the_buyers_dispute_is_403_and_changes_nothing(client: Any) -> None:
    ctx = awaiting_seller(client)
    before = snapshot(client, ctx)

    r = call(client, "POST", f"/disputes/{ctx['dispute_id']}/cancel", SELLER, {})

    assert r.status_code == 403, r.body
    assert_error_shape(r.json_body)
    assert r.json_body["error"]["code"] == "NOT_YOUR_ACTION"
    assert snapshot(client, ctx) == before


def test_a_non_partys_lists_are_empty(client: Any) -> None:
    ctx = awaiting_seller(client)
    assert [d["dispute_id"] for d in ok(call(client, "GET", "/disputes", BUYER), 200)["items"]] == [ctx["dispute_id"]]
    for caller in (STRANGER, MODERATOR, SERVICE):
        for path in ("/orders", "/orders?role=seller", "/disputes", "/disputes?role=seller"):
            body = ok(call(client, "GET", path, caller), 200)
            assert body["items"] == [], f"{caller} sees others' items at {path}: {body}"


# ---- moderation intelligence ------------------------------------------------------------------
def test_a_seller_reading_another_sellers_standing_is_404_as_for_nobody(client: Any) -> None:
    awaiting_seller(client)
    mine = ok(call(client, "GET", "/sellers/s-1/standing", SELLER), 200)
    assert (mine["orders"], mine["disputes"], mine["level"]) == (1, 1, "NOT_ENOUGH_DATA")
    r = call(client, "GET", "/sellers/s-2/standing", SELLER)
    assert (r.status_code, r.json_body["error"]["code"]) == (404, "SELLER_NOT_FOUND")
    for caller in (BUYER, STRANGER, SERVICE):
        r = call(client, "GET", "/sellers/s-1/standing", caller)
        assert (r.status_code, r.json_body["error"]["code"]) == (404, "SELLER_NOT_FOUND"), caller
    assert ok(call(client, "GET", "/sellers/s-1/standing", MODERATOR), 200)["orders"] == 1


def test_a_buyer_reading_signals_is_404_even_their_own(client: Any) -> None:
    awaiting_seller(client)
    for caller in (BUYER, SELLER, STRANGER, SERVICE):
        r = call(client, "GET", "/buyers/b-1/signals", caller)
        assert (r.status_code, r.json_body["error"]["code"]) == (404, "BUYER_NOT_FOUND"), caller
    signals = ok(call(client, "GET", "/buyers/b-1/signals", MODERATOR), 200)
    assert (signals["orders"], signals["disputes_opened"], signals["flag"]) == (1, 1, "NONE")


def test_a_moderator_editing_rules_without_moderation_admins_is_403_and_nothing_is_stored(client: Any) -> None:
    r = call(client, "PUT", "/moderation/rules/counterfeits", MODERATOR, RULE)
    assert (r.status_code, r.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION")
    assert ok(call(client, "GET", "/moderation/rules", MODERATOR), 200)["items"] == []
    admin = {**auth("admin-1", "moderation-admins")}
    saved = client.http.request("PUT", "/moderation/rules/counterfeits", headers=admin, body=dumps(RULE).encode())
    assert saved.status_code == 200 and saved.json_body["version"] == 1, saved.body
    assert [x["rule_id"] for x in ok(call(client, "GET", "/moderation/rules", MODERATOR), 200)["items"]] == \
        ["counterfeits"]
    for caller in (BUYER, SELLER, STRANGER, SERVICE):
        assert call(client, "GET", "/moderation/rules", caller).status_code == 403, caller
    for caller in (MODERATOR, BUYER, SELLER, STRANGER, SERVICE):  # a preview is an admin's, as a save is
        r = call(client, "POST", "/moderation/rules/counterfeits/preview", caller, RULE)
        assert (r.status_code, r.json_body["error"]["code"]) == (403, "NOT_YOUR_ACTION"), caller
    shown = ok(client.http.request("POST", "/moderation/rules/counterfeits/preview", headers=admin,
                                   body=dumps({**RULE, "priority": 7}).encode()), 200)
    assert shown["rule"]["version"] == 2 and shown["preview"]["considered"] == 0
    assert [x["version"] for x in ok(call(client, "GET", "/moderation/rules", MODERATOR), 200)["items"]] == [1]
