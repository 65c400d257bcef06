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


def test_full_refund_offers_show_the_amount_they_refund_and_returns_show_their_tracking(api: Api) -> None:
    api.delivered_order()
    d = api.open_dispute(requested={"type": "RETURN_AND_REFUND"}, reason="DAMAGED_OR_DEFECTIVE")
    assert d["offers"][0]["amount"] == {"amount": 2000, "currency": "USD"}
    r = api.post(f"/disputes/{d['dispute_id']}/offers", SELLER, {"type": "RESEND"})
    assert r.json_body["offer"]["amount"] is None  # a replacement refunds nothing
    r = api.post(f"/disputes/{d['dispute_id']}/offers", BUYER, {"type": "REFUND_FULL"})
    assert r.json_body["offer"]["amount"] == {"amount": 2000, "currency": "USD"}


def test_the_sandbox_is_not_there_unless_the_stage_has_one(api: Api) -> None:
    api.delivered_order()
    d = api.open_dispute()
    r = api.post(f"/sandbox/disputes/{d['dispute_id']}/expire-deadline", BUYER, {})
    assert r.status_code == 404 and r.json_body["error"]["code"] == "NOT_FOUND"
    assert api.get(f"/disputes/{d['dispute_id']}").json_body["status"] == "AWAITING_SELLER"
