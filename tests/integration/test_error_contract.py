"""The error contract and the fields apps need, over HTTP: each a gap a mobile developer met."""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api import BUYER, MODERATOR, SELLER, SERVICE, Api
from tests.support import order_body


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


@pytest.mark.parametrize("where", ["description", "requested"])
def test_half_a_surrogate_pair_in_any_string_is_a_400_naming_the_field_and_stores_nothing(api: Api, where: str) -> None:
    api.delivered_order()
    raw = ('{"reason": "NOT_AS_DESCRIBED", "description": "Ordered red \\ud800 received blue", '
           '"requested": {"type": "REFUND_FULL"}}')
    if where == "requested":
        raw = ('{"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue", '
               '"requested": {"type": "REFUND_FULL", "\\udfff": 1}}')
    r = api.post("/orders/o-1/disputes", BUYER, raw)
    assert r.status_code == 400 and r.json_body["error"]["code"] == "INVALID_TEXT", r.json_body
    assert r.json_body["error"]["details"]["field"] == where
    assert api.get("/disputes?role=buyer").json_body["items"] == []


def test_validation_messages_name_the_field_in_plain_words(api: Api) -> None:
    api.delivered_order()
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, got blue",
                                                 "requested": {"type": "REFUND_FULL"}, "note": "hi"})
    assert r.status_code == 400
    assert r.json_body["error"]["message"] == "unknown field: note"
    assert r.json_body["error"]["details"]["field"] == "note"
    r = api.post("/orders/o-1/disputes", BUYER, {"reason": "NOT_AS_DESCRIBED", "requested": {"type": "REFUND_FULL"}})
    assert r.json_body["error"]["message"] == "missing required field: description"
    assert "data" not in r.json_body["error"]["message"]


def test_a_currency_that_is_not_iso_4217_is_refused_and_nothing_is_stored(api: Api) -> None:
    for code in ("ABC", "XTS", "XAU"):
        r = api.post("/orders", SERVICE, order_body(currency=code))
        assert r.status_code == 400 and r.json_body["error"]["code"] == "INVALID_CURRENCY", (code, r.json_body)
    assert api.get("/orders/o-1").status_code == 404
    assert api.post("/orders", SERVICE, order_body(currency="JPY")).status_code == 201


def test_overdue_false_lists_only_the_cases_within_the_mediation_target(api: Api, clock: Any) -> None:
    did = api.escalated()["dispute_id"]

    def queue(flag: str) -> list[str]:
        return [d["dispute_id"] for d in api.get(f"/moderation/disputes?overdue={flag}", MODERATOR).json_body["items"]]

    assert (queue("false"), queue("true")) == ([did], [])
    clock.advance(days=15)  # past the 14-day mediation target
    assert (queue("false"), queue("true")) == ([], [did])
    assert [d["dispute_id"] for d in api.get("/moderation/disputes", MODERATOR).json_body["items"]] == [did]
    assert api.get("/moderation/disputes?overdue=maybe", MODERATOR).status_code == 400


def test_an_unknown_status_filter_is_a_400(api: Api) -> None:
    r = api.get("/disputes?role=buyer&status=resolved")
    assert r.status_code == 400 and r.json_body["error"]["details"]["parameter"] == "status"


def _routes() -> list[tuple[str, str, tuple[str, ...]]]:
    from app import app

    return sorted((method, path, getattr(entry.view_function, "query_parameters", ()))
                  for path, methods in app.routes.items() for method, entry in methods.items()
                  # Without a sandbox those are unknown routes (above); the console's HTML pages
                  # (openapi.yaml x-console-pages) keep their own query, notices included.
                  if not path.startswith(("/sandbox/", "/console")))


@pytest.mark.parametrize("method, path, declared", _routes())
def test_a_query_parameter_the_route_does_not_take_is_a_400_invalid_query_and_changes_nothing(
        api: Api, wired: Any, method: str, path: str, declared: tuple[str, ...]) -> None:
    """Before: ignored, so ``/disputes?state=RESOLVED`` (a typo of ``status``) listed every dispute."""
    ids = api.escalated()
    concrete = path.format(order_id="o-1", dispute_id=ids["dispute_id"], offer_id="x", refund_id="x", seller_id="s-1",
                           buyer_id="b-1", rule_id="r-1")
    before = (api.get("/orders/o-1").json_body, api.get(f"/disputes/{ids['dispute_id']}").json_body)
    who = SERVICE if path in ("/orders", "/orders/{order_id}/tracking-events") and method == "POST" else (
        MODERATOR if path.startswith("/moderation") or path.endswith("/decision") else BUYER)
    r = api.call(method, f"{concrete}?nosuch=1", who, {} if method in ("POST", "PUT") else None)
    assert r.status_code == 400, (r.status_code, r.json_body)
    assert r.json_body["error"]["code"] == "INVALID_QUERY" and r.json_body["error"]["details"] == {
        "parameter": "nosuch", "allowed": list(declared)}
    assert (api.get("/orders/o-1").json_body, api.get(f"/disputes/{ids['dispute_id']}").json_body) == before


# Every query parameter openapi.yaml lists, with a value the route accepts (cursor: see the paging tests).
QUERY_VALUES = {"role": ["buyer", "seller"], "status": ["ESCALATED"], "limit": ["1", "100"], "overdue": ["true"],
                "reason": ["NOT_RECEIVED"], "assigned": ["me", "none", "others"]}
MODERATORS_ONLY = ("/moderation/", "/notes")


@pytest.mark.parametrize("path", sorted({path for method, path, declared in _routes() if declared}))
def test_every_documented_query_parameter_of_every_route_still_works(api: Api, path: str) -> None:
    import yaml

    from tests.integration.test_openapi import SPEC_PATH

    spec = yaml.safe_load(SPEC_PATH.read_text())
    op = spec["paths"][path]["get"]
    names = [(spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p)["name"]
             for p in op.get("parameters", [])]
    assert names, path
    concrete = path.format(dispute_id=api.escalated()["dispute_id"])
    who = MODERATOR if any(part in path for part in MODERATORS_ONLY) else BUYER
    for name in names:
        for value in QUERY_VALUES.get(name, []):
            r = api.get(f"{concrete}?{name}={value}", who)
            assert r.status_code == 200, (path, name, value, r.json_body)
    together = "&".join(f"{n}={QUERY_VALUES[n][0]}" for n in names if n in QUERY_VALUES)
    assert api.get(f"{concrete}?{together}", who).status_code == 200


def test_full_refund_offers_show_the_amount_they_refund_and_returns_show_their_tracking(api: Api) -> None:
    api.delivered_order()
    d = api.open_dispute(requested={"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
    assert d["offers"][0]["amount"] == {"amount": 2000, "currency": "USD"}
    r = api.post(f"/disputes/{d['dispute_id']}/offers", SELLER, {"type": "RESEND"})
    assert r.json_body["offer"]["amount"] is None  # a replacement refunds nothing
    r = api.post(f"/disputes/{d['dispute_id']}/offers", BUYER, {"type": "REFUND_FULL"})
    assert r.json_body["offer"]["amount"] == {"amount": 2000, "currency": "USD"}


UNKNOWN_ROUTE = {"error": {"code": "ROUTE_NOT_FOUND", "message": "no route has this method and path", "details": {}}}
SANDBOX_ROUTES = ("/sandbox/disputes/{dispute_id}/expire-deadline", "/sandbox/orders/o-1/carrier-scans",
                  "/sandbox/orders/o-1/refunds/r-1/settle")


def test_the_unknown_route_body_is_the_deployed_gateways() -> None:
    from infra.template.api import GATEWAY_RESPONSES

    status, code, message = GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]
    assert (status, {"error": {"code": code, "message": message, "details": {}}}) == (404, UNKNOWN_ROUTE)


@pytest.mark.parametrize("route", SANDBOX_ROUTES)
def test_without_a_sandbox_its_routes_answer_exactly_as_an_unknown_route(api: Api, route: str) -> None:
    api.delivered_order()
    d = api.open_dispute()
    path = route.format(dispute_id=d["dispute_id"])
    before = api.snapshot(dispute_id=d["dispute_id"])
    xml = {"Content-Type": "application/xml"}
    attempts = [("POST", BUYER, {}, None), ("POST", None, {}, None), ("POST", BUYER, "{not json", None),
                ("POST", BUYER, {"unknown": 1}, None), ("GET", BUYER, None, None), ("PUT", BUYER, {}, None),
                ("DELETE", None, None, None), ("POST", BUYER, "<x/>", xml), ("GET", None, None, xml)]
    for method, who, body, headers in attempts:
        r = api.call(method, path, who, body, headers)
        assert (r.status_code, r.json_body) == (404, UNKNOWN_ROUTE), (method, who, body, headers, r.body)
        assert r.headers["Content-Type"] == "application/json" and "Allow" not in r.headers
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_with_a_sandbox_its_routes_are_there(api: Api, wired: Any) -> None:
    from dataclasses import replace

    wired.settings = replace(wired.settings, sandbox=True)
    wired.services.sandbox.enabled = True
    api.delivered_order()
    d = api.open_dispute()
    path = f"/sandbox/disputes/{d['dispute_id']}/expire-deadline"
    assert api.post(path, None, {}).status_code == 401
    assert api.get(path).status_code == 405
    r = api.post(path, BUYER, {})
    assert r.status_code == 200 and r.json_body["status"] != "AWAITING_SELLER", r.json_body


NO_SUCH = {"ORDER_NOT_FOUND": ("GET", "/orders/nope", BUYER), "DISPUTE_NOT_FOUND": ("GET", "/disputes/nope", BUYER),
           "OFFER_NOT_FOUND": ("POST", "/disputes/{dispute_id}/offers/nope/accept", BUYER),
           "REFUND_NOT_FOUND": ("POST", "/orders/o-1/refunds/nope/retry", MODERATOR)}


@pytest.mark.parametrize("method, path, who, code", [
    ("POST", "/orders//shipment", SELLER, "ORDER_NOT_FOUND"),
    ("POST", "/orders//disputes", BUYER, "ORDER_NOT_FOUND"),
    ("POST", "/orders//confirm-receipt", BUYER, "ORDER_NOT_FOUND"),
    ("GET", "/disputes//messages", BUYER, "DISPUTE_NOT_FOUND"),
    ("GET", "/disputes//evidence", BUYER, "DISPUTE_NOT_FOUND"),
    ("POST", "/disputes//offers/x/accept", BUYER, "DISPUTE_NOT_FOUND"),
    ("POST", "/disputes/{dispute_id}/offers//accept", BUYER, "OFFER_NOT_FOUND"),
    ("POST", "/orders//refunds/r-1/retry", MODERATOR, "ORDER_NOT_FOUND"),
    ("POST", "/orders/o-1/refunds//retry", MODERATOR, "REFUND_NOT_FOUND"),
    ("GET", "/orders/" + "o" * 129, BUYER, "ORDER_NOT_FOUND"),
    ("GET", "/orders/" + "o" * 3000, BUYER, "ORDER_NOT_FOUND"),
    ("POST", "/orders/" + "o" * 2100 + "/shipment", SELLER, "ORDER_NOT_FOUND"),
    ("GET", "/disputes/" + "d" * 2100 + "/messages", BUYER, "DISPUTE_NOT_FOUND"),
    ("GET", "/disputes/d%20x", BUYER, "DISPUTE_NOT_FOUND"),
    ("POST", "/disputes/{dispute_id}/offers/" + "x" * 300 + "/accept", BUYER, "OFFER_NOT_FOUND"),
])
def test_a_path_id_no_id_can_be_is_a_404_of_its_route_never_a_500(api: Api, method: str, path: str,
                                                                    who: tuple[str, ...], code: str) -> None:
    api.delivered_order()
    d = api.open_dispute()
    body = {"carrier": "CP", "tracking_number": "CN1"} if path.endswith("/shipment") else {}
    r = api.call(method, path.format(dispute_id=d["dispute_id"]), who, body if method == "POST" else None)
    assert r.status_code == 404 and r.json_body["error"]["code"] == code, r.body
    # The same answer as for an id that fits but does not exist.
    ref_method, ref_path, ref_who = NO_SUCH[code]
    same = api.call(ref_method, ref_path.format(dispute_id=d["dispute_id"]), ref_who, {} if ref_method == "POST" else None)
    assert (same.status_code, same.json_body) == (r.status_code, r.json_body), same.body


def test_path_ids_of_the_document_are_the_ids_the_edge_accepts() -> None:
    from chalicelib.api import schemas
    from tests.contract import document

    for name in ("OrderId", "DisputeId", "OfferId", "RefundId"):
        schema = document()["components"]["parameters"][name]["schema"]
        assert schema == {"type": "string", "minLength": 1, "maxLength": 128, "pattern": schemas.ID["pattern"]}


def test_a_get_route_ignores_the_content_type_it_has_no_body_for(api: Api) -> None:
    xml = {"Content-Type": "application/xml"}
    r = api.call("GET", "/orders/o-1", BUYER, None, xml)
    assert r.status_code == 404 and r.json_body["error"]["code"] == "ORDER_NOT_FOUND", r.body
    api.delivered_order()
    assert api.call("GET", "/orders/o-1", BUYER, None, xml).status_code == 200
    assert api.call("GET", "/health", None, None, xml).status_code == 200
    assert api.call("GET", "/disputes?role=buyer", BUYER, None, {"Content-Type": "image/png"}).status_code == 200
    # A POST still needs a body it can read as JSON.
    r = api.call("POST", "/orders/o-1/confirm-receipt", BUYER, "<x/>", xml)
    assert r.status_code == 415 and r.json_body["error"]["code"] == "UNSUPPORTED_CONTENT_TYPE"


def _order(**changes: Any) -> dict[str, Any]:
    body = order_body()
    for path, value in changes.items():
        *parents, last = path.split("__")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return body


DISPUTE = {"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue", "requested": {"type": "REFUND_FULL"}}


@pytest.mark.parametrize("route, body, message, field", [
    ("/orders", _order(total__amount="12"), "total.amount must be a whole number", "total.amount"),
    ("/disputes", {**DISPUTE, "requested": []}, "requested must be an object", "requested"),
    ("/disputes", {**DISPUTE, "description": " " * 12}, "description must not be blank", "description"),
    ("/orders", _order(order_id="o 1"), "order_id may contain only letters, digits and . _ : @ | -", "order_id"),
    ("/orders", _order(total__currency="usd"), "total.currency must be three capital letters (an ISO 4217 currency code)",
     "total.currency"),
    # Before: "must be at least 20 characters long", which says nothing of what a timestamp is.
    ("/orders", _order(estimated_delivery_at="tomorrow"), "estimated_delivery_at must be an RFC 3339 timestamp "
     "with a zone, e.g. 2026-11-23T10:00:00Z", "estimated_delivery_at"),
    ("/orders", _order(ship_by="2026-11-23T10:00:00" + "0" * 40), "ship_by must be an RFC 3339 timestamp with a "
     "zone, e.g. 2026-11-23T10:00:00Z", "ship_by"),
    ("/orders", _order(estimated_delivery_at="2026-11-23 10:00"), "estimated_delivery_at must be an RFC 3339 "
     "timestamp with a zone, e.g. 2026-11-23T10:00:00Z", "estimated_delivery_at"),
    ("/orders", _order(items__0__title="t" * 501), "items[0].title must be at most 500 characters long",
     "items[0].title"),
    ("/orders", _order(items__0__quantity=0), "items[0].quantity must be at least 1", "items[0].quantity"),
    ("/orders", _order(total__amount=10**12 + 1), "total.amount must be at most 1000000000000", "total.amount"),
    ("/orders", _order(items=[]), "items must not be empty", "items"),
    ("/orders", _order(items=[order_body()["items"][0]] * 101), "items must have at most 100 items", "items"),
    ("/disputes", {**DISPUTE, "reason": "LATE"}, "reason must be one of NOT_RECEIVED, NOT_AS_DESCRIBED, "
     "DAMAGED_OR_DEFECTIVE, WRONG_ITEM, MISSING_PARTS, COUNTERFEIT", "reason"),
    ("/disputes", {**DISPUTE, "item_ids": ["i-1", "i-1"]}, "item_ids must not repeat an item", "item_ids"),
])
def test_each_validation_rule_is_said_in_plain_words_naming_the_field(api: Api, route: str, body: dict[str, Any],
                                                                      message: str, field: str) -> None:
    if route == "/disputes":
        api.delivered_order()
        r = api.post("/orders/o-1/disputes", BUYER, body)
    else:
        r = api.post("/orders", SERVICE, body)
    assert r.status_code == 400 and r.json_body["error"]["code"] == "VALIDATION_ERROR", r.body
    assert (r.json_body["error"]["message"], r.json_body["error"]["details"]["field"]) == (message, field)


@pytest.mark.parametrize("changes, field", [
    ({"total__currency": "ABC"}, "total.currency"),
    ({"items__0__unit_price__currency": "XTS"}, "items[0].unit_price.currency"),
])
def test_an_unknown_currency_names_its_field(api: Api, changes: dict[str, Any], field: str) -> None:
    r = api.post("/orders", SERVICE, _order(**changes))
    assert r.status_code == 400 and r.json_body["error"]["code"] == "INVALID_CURRENCY", r.body
    assert r.json_body["error"]["details"]["field"] == field and field in r.json_body["error"]["message"]
