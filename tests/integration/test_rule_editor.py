"""The console's rule editor over DynamoDB (moto): a moderation admin previews a rule on the recent
disputes and saves it through the use case of ``PUT /moderation/rules/{rule_id}``; a moderator
reads the rules and gets no edit form; refusals are the API's, in words and with its code; the
preview reads a fixed, bounded number of items."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.domain.rules import PREVIEW_DAYS, PREVIEW_LIMIT
from tests.integration.test_standing import delivered_and_disputed
from tests.support import auth, dumps, dynamodb_requests

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ADMIN = ("a-1", frozenset({"moderation-admins"}))
MODERATOR = ("m-1", frozenset({"moderators"}))


def cookie_of(wired: Any, who: tuple[str, frozenset[str]]) -> tuple[str, str]:
    from chalicelib.domain.identity import Identity

    value, session = wired.sessions.issue(Identity(*who))
    return f"console_session={value}", session.csrf


def post(client: Any, path: str, cookie: str, fields: dict[str, str]) -> Any:
    return client.http.post(path, headers={**FORM, "Cookie": cookie}, body=urlencode(fields))


def rule_form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf, "rule_id": "refund-nad", "description": "Refund <b>not as described</b>",
            "mode": "DRY_RUN", "priority": "5", "then": "REFUND_FULL", "reasons.NOT_AS_DESCRIBED": "on", **fields}


@pytest.fixture
def history(client: Any, wired: Any) -> dict[str, str]:
    """Three recent disputes: one a moderator refunded in full, one rejected by a moderator, one open."""
    ids = {}
    for order_id, outcome in (("o-1", "REFUND_FULL"), ("o-2", "REJECTED"), ("o-3", None)):
        buyer, seller = ("b-1", "s-1") if order_id != "o-3" else ("b-2", "s-2")
        did = delivered_and_disputed(client, order_id, buyer, seller).json_body["dispute_id"]
        ids[order_id] = did
        if outcome is None:
            continue
        assert client.http.post(f"/disputes/{did}/reject", headers=auth(seller),
                                body=dumps({"message": "It was as listed"})).status_code == 200
        assert client.http.post(f"/disputes/{did}/escalate", headers=auth(seller), body=dumps({})).status_code == 200
        decided = client.http.post(f"/disputes/{did}/decision", headers=auth("m-9", "moderators"), body=dumps(
            {"outcome": outcome, "rationale": "Decided on the evidence given."}))
        assert decided.status_code == 200, decided.body
    return ids


def numbers(text: str) -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r'id="preview-(\w+)">(\d+)<', text)}


def test_an_admin_previews_then_saves_a_rule_and_the_rules_page_shows_it_as_text(client: Any, wired: Any,
                                                                                 history: dict[str, str]) -> None:
    cookie, csrf = cookie_of(wired, ADMIN)
    new = client.http.get("/console/rules/new", headers={"Cookie": cookie})
    assert new.status_code == 200 and 'id="rule-form"' in new.body.decode()
    with dynamodb_requests() as seen:
        shown = post(client, "/console/rules/preview", cookie, rule_form(csrf))
    text = shown.body.decode()
    assert shown.status_code == 200, text
    # all three considered; all three match; two resolved by people, one in full (agreed), one rejected
    assert numbers(text) == {"considered": 3, "matched": 3, "people": 2, "agreed": 1, "disagreed": 1}
    assert seen == ["Query", "Query"]  # the rules, then the recent disputes' records: no scan, no per-case read
    assert 'id="save-button"' in text and wired.services.moderation.rules(wired_identity()) == []
    assert "&lt;b&gt;not as described&lt;/b&gt;" in text and "<b>not as" not in text
    escalate = numbers(post(client, "/console/rules/preview", cookie, rule_form(csrf, then="ESCALATE")).body.decode())
    assert escalate == {"considered": 3, "matched": 3, "people": 2, "agreed": 2, "disagreed": 0}
    other = numbers(post(client, "/console/rules/preview", cookie, rule_form(
        csrf, **{"reasons.NOT_AS_DESCRIBED": "", "reasons.WRONG_ITEM": "on"})).body.decode())
    assert other == {"considered": 3, "matched": 0, "people": 0, "agreed": 0, "disagreed": 0}

    saved = post(client, "/console/rules/save", cookie, rule_form(csrf))
    assert saved.status_code == 303 and "/console/rules?notice=saved" in saved.headers["Location"]
    stored = client.http.get("/moderation/rules", headers=auth("m-1", "moderators")).json_body["items"]
    assert [(r["rule_id"], r["version"], r["mode"], r["when"], r["then"]) for r in stored] == [
        ("refund-nad", 1, "DRY_RUN", {"reasons": ["NOT_AS_DESCRIBED"]}, "REFUND_FULL")]
    page = client.http.get("/console/rules?notice=saved", headers={"Cookie": cookie}).body.decode()
    assert 'href="/console/rules/refund-nad/edit"' in page and "&lt;b&gt;not as described" in page
    edit = client.http.get("/console/rules/refund-nad/edit", headers={"Cookie": cookie}).body.decode()
    assert 'name="expected_version" value="1"' in edit and 'name="reasons.NOT_AS_DESCRIBED" value="on" checked' in edit
    # an edit from that page makes version 2; sent again from the stale page, it is refused
    assert post(client, "/console/rules/save", cookie, rule_form(
        csrf, editing="1", expected_version="1", mode="ACTIVE")).status_code == 303
    stale = post(client, "/console/rules/save", cookie, rule_form(csrf, editing="1", expected_version="1",
                                                                   mode="OFF"))
    assert stale.status_code == 409 and "VERSION_CONFLICT" in stale.body.decode()
    assert [r["version"] for r in client.http.get("/moderation/rules", headers=auth("m-1", "moderators"))
            .json_body["items"]] == [2]


def wired_identity() -> Any:
    from chalicelib.domain.identity import Identity

    return Identity(*MODERATOR)


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"max_amount": "0", "currency": "USD"}, 422, "INVALID_RULE"),  # a rule that could pay nothing
    ({"max_amount": "10.00", "currency": "XXY"}, 400, "INVALID_CURRENCY"),
    ({"max_amount": "8,00", "currency": "USD"}, 400, "VALIDATION_ERROR"),
    ({"no_carrier_scan_days": "400"}, 400, "VALIDATION_ERROR"),
    ({"mode": "SOMETIMES"}, 400, "VALIDATION_ERROR"),
    ({"description": "   "}, 400, "VALIDATION_ERROR"),
    ({"rule_id": "no spaces"}, 400, "VALIDATION_ERROR"),
])
def test_a_rule_the_api_refuses_is_refused_in_words_with_its_code_and_nothing_is_stored(
        client: Any, wired: Any, fields: dict[str, str], status: int, code: str) -> None:
    cookie, csrf = cookie_of(wired, ADMIN)
    for path in ("/console/rules/preview", "/console/rules/save"):
        answer = post(client, path, cookie, rule_form(csrf, **fields))
        text = answer.body.decode()
        assert answer.status_code == status, text
        assert f"<code>{code}</code>" in text and 'id="problem"' in text and 'id="save-button"' not in text
    assert client.http.get("/moderation/rules", headers=auth("m-1", "moderators")).json_body["items"] == []


def test_a_moderator_reads_the_rules_but_gets_no_edit_form_and_cannot_save(client: Any, wired: Any) -> None:
    admin = auth("a-1", "moderation-admins")
    assert client.http.put("/moderation/rules/r1", headers=admin, body=dumps(
        {"description": "to a person", "mode": "DRY_RUN", "priority": 1, "then": "ESCALATE"})).status_code == 200
    cookie, csrf = cookie_of(wired, MODERATOR)
    page = client.http.get("/console/rules", headers={"Cookie": cookie}).body.decode()
    assert 'id="rule-r1"' in page and "/edit" not in page and 'id="new-rule"' not in page
    assert client.http.get("/console/rules/new", headers={"Cookie": cookie}).status_code == 403
    assert client.http.get("/console/rules/r1/edit", headers={"Cookie": cookie}).status_code == 403
    for path in ("/console/rules/preview", "/console/rules/save"):
        refused = post(client, path, cookie, rule_form(csrf, rule_id="r1", mode="ACTIVE"))
        assert refused.status_code == 403 and 'id="rule-form"' not in refused.body.decode()
    stored = client.http.get("/moderation/rules", headers=admin).json_body["items"]
    assert [(r["version"], r["mode"]) for r in stored] == [(1, "DRY_RUN")]


def test_a_preview_on_the_sellers_level_reads_each_seller_once_and_the_records_are_bounded(
        client: Any, wired: Any, history: dict[str, str]) -> None:
    cookie, csrf = cookie_of(wired, ADMIN)
    with dynamodb_requests() as seen:
        shown = post(client, "/console/rules/preview", cookie, rule_form(csrf, **{"seller_levels.NOT_ENOUGH_DATA": "on"}))
    assert numbers(shown.body.decode())["matched"] == 3
    # the rules, the records, then two sellers (three key ranges each: few orders)
    assert seen == ["Query"] * (2 + 2 * 3)
    with wired.services.moderation.uow() as uow:
        newest = uow.moderation.recent_cases(wired.clock.now().replace(year=2000), 2)
    # newest first: all three opened at the same second here, so by dispute id after that
    assert [opened["dispute_id"] for opened, _ in newest] == sorted(history.values(), reverse=True)[:2]
    assert f"the newest {PREVIEW_LIMIT} at most" in shown.body.decode()
    wired.clock.advance(days=PREVIEW_DAYS, minutes=1)  # all three opened more than the window ago
    cookie, csrf = cookie_of(wired, ADMIN)  # a session of now
    later = post(client, "/console/rules/preview", cookie, rule_form(csrf)).body.decode()
    assert numbers(later)["considered"] == 0 and f"in the last {PREVIEW_DAYS} days" in later
