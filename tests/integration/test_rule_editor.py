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


def previewed(client: Any, cookie: str, fields: dict[str, str]) -> dict[str, str]:
    """The form's fields with the digest its preview gave the save button (the save refuses any other)."""
    shown = post(client, "/console/rules/preview", cookie, fields)
    assert shown.status_code == 200, shown.body.decode()
    found = re.search(r'name="previewed" value="([0-9a-f]{64})"', shown.body.decode())
    assert found is not None
    return {**fields, "previewed": found.group(1)}


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

    saved = post(client, "/console/rules/save", cookie, previewed(client, cookie, rule_form(csrf)))
    assert saved.status_code == 303 and "/console/rules?notice=saved" in saved.headers["Location"]
    stored = client.http.get("/moderation/rules", headers=auth("m-1", "moderators")).json_body["items"]
    assert [(r["rule_id"], r["version"], r["mode"], r["when"], r["then"]) for r in stored] == [
        ("refund-nad", 1, "DRY_RUN", {"reasons": ["NOT_AS_DESCRIBED"]}, "REFUND_FULL")]
    page = client.http.get("/console/rules?notice=saved", headers={"Cookie": cookie}).body.decode()
    assert 'href="/console/rules/refund-nad/edit"' in page and "&lt;b&gt;not as described" in page
    edit = client.http.get("/console/rules/refund-nad/edit", headers={"Cookie": cookie}).body.decode()
    assert 'name="expected_version" value="1"' in edit and 'name="reasons.NOT_AS_DESCRIBED" value="on" checked' in edit
    # two edits previewed from that page; the first saved makes version 2, the second is refused
    first = previewed(client, cookie, rule_form(csrf, editing="1", expected_version="1", mode="ACTIVE"))
    second = previewed(client, cookie, rule_form(csrf, editing="1", expected_version="1", mode="OFF"))
    assert post(client, "/console/rules/save", cookie, first).status_code == 303
    stale = post(client, "/console/rules/save", cookie, second)
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


def stored_rules(client: Any) -> list[tuple[str, int, str, dict[str, Any], str]]:
    return [(r["rule_id"], r["version"], r["mode"], r["when"], r["then"])
            for r in client.http.get("/moderation/rules", headers=auth("m-1", "moderators")).json_body["items"]]


def test_a_save_of_anything_but_the_previewed_rule_is_refused_and_every_dispute_needs_its_box(
        client: Any, wired: Any, history: dict[str, str]) -> None:
    cookie, csrf = cookie_of(wired, ADMIN)
    shown = previewed(client, cookie, rule_form(csrf))  # a dry run on one reason, previewed
    # changed on the preview page (ACTIVE, every condition unticked) and saved without a new preview
    changed = {**shown, "mode": "ACTIVE", "reasons.NOT_AS_DESCRIBED": ""}
    refused = post(client, "/console/rules/save", cookie, changed)
    text = refused.body.decode()
    assert refused.status_code == 409 and "Check this preview before saving" in text and "Nothing was saved" in text
    assert stored_rules(client) == []
    # the answer is the preview of the form as it is now, with its own digest and the box to confirm
    again = re.search(r'name="previewed" value="([0-9a-f]{64})"', text)
    assert again is not None and again.group(1) != shown["previewed"]
    assert numbers(text)["matched"] == 3 and 'id="every-dispute"' in text and 'name="confirm_every_dispute"' in text
    unconfirmed = post(client, "/console/rules/save", cookie, {**changed, "previewed": again.group(1)})
    assert unconfirmed.status_code == 400 and "Confirm a rule that acts on every dispute" in unconfirmed.body.decode()
    assert stored_rules(client) == []
    # a digest from another session is no digest
    other_cookie, other_csrf = cookie_of(wired, ("a-2", frozenset({"moderation-admins"})))
    foreign = post(client, "/console/rules/save", other_cookie, {**changed, "csrf_token": other_csrf,
                                                                  "previewed": again.group(1),
                                                                  "confirm_every_dispute": "on"})
    assert foreign.status_code == 409 and stored_rules(client) == []
    confirmed = post(client, "/console/rules/save", cookie, {**changed, "previewed": again.group(1),
                                                             "confirm_every_dispute": "on"})
    assert confirmed.status_code == 303, confirmed.body.decode()
    assert stored_rules(client) == [("refund-nad", 1, "ACTIVE", {}, "REFUND_FULL")]


def test_a_new_rule_with_an_existing_id_is_refused_saying_to_edit_it_and_the_rule_is_unchanged(
        client: Any, wired: Any) -> None:
    admin = auth("a-1", "moderation-admins")
    assert client.http.put("/moderation/rules/refund-nad", headers=admin, body=dumps(
        {"description": "to a person", "mode": "DRY_RUN", "priority": 1, "then": "ESCALATE"})).status_code == 200
    cookie, csrf = cookie_of(wired, ADMIN)
    new = client.http.get("/console/rules/new", headers={"Cookie": cookie}).body.decode()
    assert 'name="expected_version" value="0"' in new
    for path, fields in (("/console/rules/preview", rule_form(csrf, expected_version="0")),
                         ("/console/rules/save", rule_form(csrf)),  # sent without a version: new all the same
                         ("/console/rules/save", rule_form(csrf, expected_version="1"))):
        answer = post(client, path, cookie, fields)
        text = answer.body.decode()
        assert answer.status_code == 409, (path, text)
        assert "A rule with this id exists" in text and "version 1" in text and "<code>VERSION_CONFLICT</code>" in text
        assert 'href="/console/rules/refund-nad/edit"' in text and 'id="save-button"' not in text
    assert stored_rules(client) == [("refund-nad", 1, "DRY_RUN", {}, "ESCALATE")]


def test_a_rule_changed_meanwhile_is_said_in_the_rules_words_and_the_form_applies_on_top_of_it(
        client: Any, wired: Any) -> None:
    admin = auth("a-1", "moderation-admins")
    body = {"description": "to a person", "mode": "DRY_RUN", "priority": 1, "then": "ESCALATE"}
    assert client.http.put("/moderation/rules/refund-nad", headers=admin, body=dumps(body)).status_code == 200
    cookie, csrf = cookie_of(wired, ADMIN)
    edit = client.http.get("/console/rules/refund-nad/edit", headers={"Cookie": cookie}).body.decode()
    assert 'name="expected_version" value="1"' in edit
    shown = previewed(client, cookie, rule_form(csrf, editing="1", expected_version="1"))
    # someone else saves version 2 (through the API) meanwhile
    assert client.http.put("/moderation/rules/refund-nad", headers=admin, body=dumps(
        {**body, "description": "Someone else's\nwords", "when": {"max_amount": {"amount": 5000, "currency": "USD"}},
         "expected_version": 1})).status_code == 200
    stale = post(client, "/console/rules/save", cookie, shown)
    text = stale.body.decode()
    assert stale.status_code == 409 and "<code>VERSION_CONFLICT</code>" in text
    assert "This rule was changed by someone else since you opened it" in text and "now version 2" in text
    assert "The case moved on" not in text
    current = text.split('id="current-rule"', 1)[1].split("</section>", 1)[0]
    assert "version 2" in current and "Someone else&#39;s\nwords" in current and "50.00 USD" in current
    assert 'name="expected_version" value="2"' in text and 'name="expected_version" value="1"' not in text
    assert [(v, w) for _, v, _, w, _ in stored_rules(client)] == [(2, {"max_amount": {"amount": 5000,
                                                                                      "currency": "USD"}})]
    # sent again from that form (previewed, then saved), it applies on top of version 2
    retry = previewed(client, cookie, rule_form(csrf, editing="1", expected_version="2"))
    assert post(client, "/console/rules/save", cookie, retry).status_code == 303
    assert stored_rules(client) == [("refund-nad", 3, "DRY_RUN", {"reasons": ["NOT_AS_DESCRIBED"]}, "REFUND_FULL")]


def test_the_rules_list_says_amounts_choices_and_line_breaks_as_the_form_does(client: Any, wired: Any) -> None:
    admin = auth("a-1", "moderation-admins")
    assert client.http.put("/moderation/rules/small", headers=admin, body=dumps({
        "description": "Line one\nLine <i>two</i>", "mode": "DRY_RUN", "priority": 1, "then": "ESCALATE",
        "when": {"max_amount": {"amount": 5000, "currency": "USD"}, "reasons": ["NOT_AS_DESCRIBED"],
                 "seller_levels": ["AT_RISK"], "buyer_flags": ["FREQUENT_DISPUTER"], "no_carrier_scan_days": 7}})
    ).status_code == 200
    cookie, _ = cookie_of(wired, MODERATOR)
    text = client.http.get("/console/rules", headers={"Cookie": cookie}).body.decode()
    when = text.split('class="rule-when">', 1)[1].split("</td>", 1)[0]
    assert "order total at most: 50.00 USD" in when and "minor units" not in when and "5000" not in when
    assert "reasons: not as described" in when and "seller level: at risk" in when
    assert "buyer flag: frequent disputer" in when and "no carrier scan for at least: 7 days" in when
    assert '<span class="rule-text">Line one\nLine &lt;i&gt;two&lt;/i&gt;</span>' in text
    css = client.http.get("/console/static/console.css").body.decode()
    assert re.search(r"\.rule-text \{[^}]*white-space: pre-line", css)


def test_the_editors_smaller_refusals_are_clear(client: Any, wired: Any) -> None:
    cookie, csrf = cookie_of(wired, MODERATOR)
    forbidden = client.http.get("/console/rules/new", headers={"Cookie": cookie})
    assert forbidden.status_code == 403 and "<code>NOT_YOUR_ACTION</code>" in forbidden.body.decode()
    cookie, csrf = cookie_of(wired, ADMIN)
    for path in ("/console/rules/preview", "/console/rules/save"):
        blank = post(client, path, cookie, rule_form(csrf, priority=""))
        assert blank.status_code == 400 and "priority: give a whole number" in blank.body.decode()
        yen = post(client, path, cookie, rule_form(csrf, max_amount="8.5", currency="JPY"))
        assert yen.status_code == 400 and "JPY has no minor units: give a whole amount" in yen.body.decode()
    assert stored_rules(client) == []
    # the form's rule-id pattern is the server's: what one accepts the other does
    page = client.http.get("/console/rules/new", headers={"Cookie": cookie}).body.decode()
    found = re.search(r'id="rule_id"[^>]*pattern="([^"]+)"', page)
    assert found is not None
    pattern = re.compile(found.group(1).replace("&#34;", '"'))
    for candidate, ok in (("r.v2:x@y|z-1_a", True), ("no spaces", False), ("a/b", False), ("ünï", False)):
        assert bool(pattern.fullmatch(candidate)) is ok, candidate
        answer = post(client, "/console/rules/preview", cookie, rule_form(csrf, rule_id=candidate))
        assert (answer.status_code == 200) is ok, (candidate, answer.body.decode())


def test_a_preview_at_the_limit_of_live_rules_is_allowed_and_only_the_save_is_refused(client: Any,
                                                                                   wired: Any) -> None:
    admin = auth("a-1", "moderation-admins")
    limit = wired.services.moderation.policy.max_live_rules
    for i in range(limit):
        assert client.http.put(f"/moderation/rules/live-{i}", headers=admin, body=dumps(
            {"description": "live", "mode": "DRY_RUN", "priority": i, "then": "ESCALATE"})).status_code == 200
    cookie, csrf = cookie_of(wired, ADMIN)
    shown = previewed(client, cookie, rule_form(csrf, rule_id="one-more"))
    saved = post(client, "/console/rules/save", cookie, shown)
    assert saved.status_code == 422 and "<code>RULE_LIMIT_REACHED</code>" in saved.body.decode()
    assert "one-more" not in [r[0] for r in stored_rules(client)] and len(stored_rules(client)) == limit
