"""The console's pages in-process (chalice.test over moto): who gets in, what a form without its
token changes (nothing), the development sign-in only where it may exist, the hosted UI's round
trip, and no second path to a state change beside the API's use cases."""
from __future__ import annotations

import ast
import html
import inspect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib.config import HostedUi
from tests.integration.api import SELLER as SELLER_WHO
from tests.integration.api import Api
from tests.support import order_body, token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PAGES = ["/console", "/console/disputes/{dispute_id}"]
POSTS = ["/console/next", "/console/disputes/{dispute_id}/messages", "/console/disputes/{dispute_id}/notes",
         "/console/disputes/{dispute_id}/claim", "/console/disputes/{dispute_id}/release",
         "/console/disputes/{dispute_id}/decision", "/console/disputes/{dispute_id}/decision/confirm",
         "/console/refunds/o-1/r-1/retry", "/console/sign-out"]
DECISION = {"outcome": "REJECTED", "rationale": "The photo shows the item as listed.", "body": "hello there",
            "note": "a note"}


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


def session_cookie(wired: Any, sub: str = "m-1", groups: frozenset[str] = frozenset({"moderators"})) -> tuple[str, str]:
    """(Cookie header, CSRF token) of a session the console issued."""
    from chalicelib.domain.identity import Identity

    value, session = wired.sessions.issue(Identity(sub, groups))
    return f"console_session={value}", session.csrf


def set_cookies(r: Any) -> list[str]:
    value = r.headers.get("Set-Cookie") or []
    return [value] if isinstance(value, str) else list(value)


def post_form(client: Any, path: str, fields: dict[str, str], cookie: str = "") -> Any:
    return client.http.post(path, headers={**FORM, **({"Cookie": cookie} if cookie else {})}, body=urlencode(fields))


def test_every_page_without_a_session_sends_to_the_sign_in_and_changes_nothing(api: Api, client: Any,
                                                                                wired: Any) -> None:
    wired.settings = replace(wired.settings, sandbox=True)
    d = api.escalated()
    before = api.snapshot(dispute_id=d["dispute_id"])
    for template in PAGES + POSTS:
        path = template.format(dispute_id=d["dispute_id"])
        r = client.http.get(path) if template in PAGES else post_form(client, path, DECISION)
        assert (r.status_code, r.headers["Location"]) == (303, "/console/sign-in"), path
    # A party's (or anyone's) bearer token is not a session: the console does not read it.
    r = client.http.post(f"/console/disputes/{d['dispute_id']}/decision/confirm",
                         headers={**FORM, "Authorization": f"Bearer {token('m-1', ('moderators',))}"},
                         body=urlencode({**DECISION, "csrf_token": "x"}))
    assert r.status_code == 303
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_a_form_without_its_sessions_csrf_token_is_refused_and_changes_nothing(api: Api, client: Any,
                                                                               wired: Any) -> None:
    d = api.escalated()
    before = api.snapshot(dispute_id=d["dispute_id"])
    cookie, csrf = session_cookie(wired)
    _, other_sessions_token = session_cookie(wired)
    for path in POSTS:
        path = path.format(dispute_id=d["dispute_id"])
        for given in ({}, {"csrf_token": ""}, {"csrf_token": other_sessions_token}):
            r = post_form(client, path, {**DECISION, **given}, cookie)
            assert r.status_code == 403, (path, given)
            assert "text/html" in r.headers["Content-Type"]
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_a_forged_or_expired_session_is_no_session(api: Api, client: Any, wired: Any, clock: Any) -> None:
    import jwt

    forged = jwt.encode({"sub": "m-1", "groups": ["moderators"], "csrf": "x", "exp": 2**31,
                         "aud": "buyer-protection-console-session"}, "k" * 48, algorithm="HS256")
    assert client.http.get("/console", headers={"Cookie": f"console_session={forged}"}).status_code != 200
    cookie, _ = session_cookie(wired)
    assert client.http.get("/console", headers={"Cookie": cookie}).status_code == 200
    clock.advance(seconds=wired.settings.console.session_seconds + 1)
    assert client.http.get("/console", headers={"Cookie": cookie}).status_code != 200


def test_the_development_sign_in_exists_only_with_a_sandbox(client: Any, wired: Any) -> None:
    r = client.http.get("/console/sign-in")
    assert r.status_code == 404 and json.loads(r.body)["error"]["code"] == "ROUTE_NOT_FOUND"
    assert post_form(client, "/console/sign-in", {"moderator_id": "m-1"}).status_code == 404

    wired.settings = replace(wired.settings, sandbox=True)
    page = client.http.get("/console/sign-in")
    assert page.status_code == 200
    html = page.body.decode()
    assert re.search(r'<input id="moderator_id" name="moderator_id" type="text"', html)
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert form_token is not None
    cookie = page.headers["Set-Cookie"].split(";")[0]
    refused = post_form(client, "/console/sign-in", {"moderator_id": "m-1", "csrf_token": "forged"}, cookie)
    assert refused.status_code == 403 and not any(c.startswith("console_session") for c in set_cookies(refused))
    signed = post_form(client, "/console/sign-in", {"moderator_id": "m-1", "csrf_token": form_token.group(1)}, cookie)
    assert signed.status_code == 303 and signed.headers["Location"] == "/console/"
    assert re.search(r"console_session=[^;]+; Path=/console; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict",
                     " ".join(set_cookies(signed)))


def test_every_console_post_calls_a_use_case_an_api_route_calls() -> None:
    """No second path to a state change: each page that changes something calls one of the
    ``services`` methods app.py's JSON routes call, and nothing else that writes."""
    import app as app_module
    from chalicelib.console import pages

    api_calls = set(re.findall(r"services\(\)\.(\w+\.\w+)\(", inspect.getsource(app_module)))
    posts = {path: methods["POST"] for path, methods in app_module.app.routes.items()
             if path.startswith("/console") and "POST" in methods}
    # Sessions, not state; and the decision's review step, which only reads (the confirmation decides).
    writes = {"/console/sign-in", "/console/sign-out", "/console/disputes/{dispute_id}/decision"}
    for path, entry in posts.items():
        source = inspect.getsource(vars(entry.view_function)["__wrapped__"])
        called = set(re.findall(r"services\.(\w+\.\w+)\(", source))
        assert path in writes or called, f"{path} calls no use case"
        assert called <= api_calls, f"{path} calls {called - api_calls}, which no API route calls"
    tree = ast.parse(inspect.getsource(pages))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("uow", "disputes_table")]


# ---- the hosted UI (deployed stages) -----------------------------------------------------------------
class TokenEndpoint(BaseHTTPRequestHandler):
    """Stands in for the user pool's /oauth2/token: answers with the ID token the test set."""

    id_token = ""
    seen: list[dict[str, list[str]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        TokenEndpoint.seen.append(parse_qs(self.rfile.read(length).decode()))
        body = json.dumps({"id_token": TokenEndpoint.id_token, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hosted(wired: Any) -> Iterator[HostedUi]:
    from chalicelib.adapters.auth import TokenVerifier

    server = HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ui = HostedUi(f"http://127.0.0.1:{server.server_address[1]}", "console-client")
    wired.settings = replace(wired.settings, console=replace(wired.settings.console, hosted_ui=ui))
    wired.console_verifier = TokenVerifier(replace(wired.settings.auth, audience=ui.client_id))
    TokenEndpoint.seen = []
    try:
        yield ui
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def start_login(client: Any) -> tuple[dict[str, str], str]:
    r = client.http.get("/console/login", headers={"Host": "console.example"})
    assert r.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    return query, set_cookies(r)[0].split(";")[0]


def test_the_hosted_ui_round_trip_signs_a_moderator_in_with_pkce_state_and_nonce(client: Any, hosted: HostedUi) -> None:
    import base64
    import hashlib

    assert client.http.get("/console").headers["Location"] == "/console/login"
    query, cookie = start_login(client)
    assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
    assert query["client_id"] == "console-client" and query["redirect_uri"] == "https://console.example/console/callback"
    TokenEndpoint.id_token = token("m-9", ("moderators",), aud="console-client", nonce=query["nonce"])
    r = client.http.get(f"/console/callback?code=abc&state={query['state']}",
                        headers={"Cookie": cookie, "Host": "console.example"})
    assert r.status_code == 200 and 'http-equiv="refresh"' in r.body.decode()
    session = [c for c in set_cookies(r) if c.startswith("console_session=")][0]
    sent = TokenEndpoint.seen[0]
    verifier = sent["code_verifier"][0]
    assert base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode() == \
        query["code_challenge"]
    assert sent["grant_type"] == ["authorization_code"] and sent["code"] == ["abc"]
    queue = client.http.get("/console", headers={"Cookie": session.split(";")[0]})
    assert queue.status_code == 200 and "m-9" in queue.body.decode()


@pytest.mark.parametrize("case", ["party", "wrong nonce", "wrong state", "other client", "no cookie"])
def test_a_hosted_ui_sign_in_that_does_not_hold_gives_no_session(client: Any, hosted: HostedUi, case: str) -> None:
    query, cookie = start_login(client)
    claims: dict[str, Any] = {"aud": "console-client", "nonce": query["nonce"]}
    groups: tuple[str, ...] = ("moderators",)
    state = query["state"]
    if case == "party":
        groups = ()
    elif case == "wrong nonce":
        claims["nonce"] = "other"
    elif case == "wrong state":
        state = "other"
    elif case == "other client":
        claims["aud"] = "the-mobile-apps-client"
    elif case == "no cookie":
        cookie = ""
    TokenEndpoint.id_token = token("b-1", groups, **claims)
    r = client.http.get(f"/console/callback?code=abc&state={state}", headers={"Cookie": cookie, "Host": "c.example"})
    assert r.status_code in (401, 403)
    assert not any(c.startswith("console_session=e") for c in set_cookies(r))


def test_a_moderator_who_is_a_party_of_the_order_cannot_decide_it_from_the_console(api: Api, client: Any,
                                                                                   wired: Any) -> None:
    d = api.escalated()
    before = api.snapshot(dispute_id=d["dispute_id"])
    cookie, csrf = session_cookie(wired, sub="b-1")  # the order's buyer, also in moderators
    for step in ("decision", "decision/confirm"):
        r = post_form(client, f"/console/disputes/{d['dispute_id']}/{step}", {**DECISION, "csrf_token": csrf}, cookie)
        assert r.status_code == 403, step
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_a_decision_reviewed_then_confirmed_resolves_the_case_as_the_api_would(api: Api, client: Any,
                                                                               wired: Any) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    form = {"outcome": "REFUND_PARTIAL", "amount": "3.50", "fault": "", "csrf_token": csrf,
            "rationale": "Half the set was missing.", "expected_version": str(d["version"])}
    review = post_form(client, f"/console/disputes/{d['dispute_id']}/decision", form, cookie)
    assert review.status_code == 200 and "3.50 USD" in review.body.decode() and "seller" in review.body.decode()
    assert api.get(f"/disputes/{d['dispute_id']}").json_body["status"] == "ESCALATED", "the review decides nothing"
    done = post_form(client, f"/console/disputes/{d['dispute_id']}/decision/confirm", form, cookie)
    assert (done.status_code, done.headers["Location"]) == (303, f"/console/disputes/{d['dispute_id']}?notice=decided")
    resolution = api.get(f"/disputes/{d['dispute_id']}").json_body["resolution"]
    assert (resolution["outcome"], resolution["amount"]["amount"], resolution["fault"]) == ("REFUND_PARTIAL", 350,
                                                                                           "SELLER")
    decided = api.snapshot(dispute_id=d["dispute_id"])
    again = post_form(client, f"/console/disputes/{d['dispute_id']}/decision/confirm", form, cookie)
    # Decided once: the same confirmation again (a double click) is that decision, not a second one.
    assert (again.status_code, again.headers["Location"]) == (303, done.headers["Location"]), "decided once"
    assert api.snapshot(dispute_id=d["dispute_id"]) == decided, "decided once"


def test_the_queue_page_filters_as_the_api_does_and_refuses_an_unknown_value(api: Api, client: Any,
                                                                             wired: Any) -> None:
    d = api.escalated()
    cookie, _ = session_cookie(wired, sub="m-3")

    def page(query: str) -> Any:
        return client.http.get(f"/console?{query}", headers={"Cookie": cookie})

    shown = page("overdue=false&assigned=none&reason=NOT_AS_DESCRIBED&notice=none-left")
    assert shown.status_code == 200 and d["dispute_id"] in shown.body.decode()
    assert "No case is waiting" in shown.body.decode()
    assert d["dispute_id"] not in page("reason=WRONG_ITEM").body.decode()
    assert d["dispute_id"] not in page("assigned=me").body.decode()
    refused = page("assigned=everyone")
    assert refused.status_code == 400 and "assigned must be one of me, none, others" in refused.body.decode()


# ---- review 2: what a moderator working a queue found -------------------------------------------------
def case_html(client: Any, cookie: str, dispute_id: str) -> str:
    r = client.http.get(f"/console/disputes/{dispute_id}", headers={"Cookie": cookie})
    assert r.status_code == 200
    return str(r.body.decode())


def decide_in_console(client: Any, cookie: str, csrf: str, dispute_id: str, **fields: str) -> Any:
    form = {"outcome": "REFUND_PARTIAL", "amount": "3.50", "fault": "", "csrf_token": csrf,
            "rationale": "Half the set was missing.", **fields}
    return post_form(client, f"/console/disputes/{dispute_id}/decision/confirm", form, cookie)


def test_a_decimal_comma_amount_is_refused_saying_to_use_a_point_and_changes_nothing(api: Api, client: Any,
                                                                                   wired: Any) -> None:
    d = api.escalated()
    before = api.snapshot(dispute_id=d["dispute_id"])
    cookie, csrf = session_cookie(wired, sub="m-2")
    for step in ("decision", "decision/confirm"):
        r = post_form(client, f"/console/disputes/{d['dispute_id']}/{step}",
                      {"outcome": "REFUND_PARTIAL", "amount": "8,00", "csrf_token": csrf,
                       "rationale": "Eight back for the scratch."}, cookie)
        assert r.status_code == 400, step
        assert "use a point for decimals: 8.00" in r.body.decode() and "800" not in r.body.decode()
    assert api.snapshot(dispute_id=d["dispute_id"]) == before


def test_a_rationale_sent_with_crlf_line_breaks_counts_and_is_stored_with_lf(api: Api, client: Any,
                                                                            wired: Any) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    rationale = "\r\n".join(["a" * 99] * 40) + "\r\n"  # 4000 characters as the textarea counts them
    review = post_form(client, f"/console/disputes/{d['dispute_id']}/decision",
                       {"outcome": "REFUND_FULL", "rationale": rationale, "csrf_token": csrf}, cookie)
    assert review.status_code == 200 and 'id="confirm-rationale"' in review.body.decode()
    done = decide_in_console(client, cookie, csrf, d["dispute_id"], outcome="REFUND_FULL", amount="",
                             rationale=rationale)
    assert done.status_code == 303
    stored = api.get(f"/disputes/{d['dispute_id']}").json_body["resolution"]["rationale"]
    assert "\r" not in stored and len(stored) == 4000


def test_the_timeline_shows_each_entrys_details_as_text_and_the_checklist_what_is_missing(api: Api, client: Any,
                                                                                        wired: Any) -> None:
    api.delivered_order()
    d = api.open_dispute()
    api.post(f"/disputes/{d['dispute_id']}/reject", SELLER_WHO, {"message": "<b>Colour</b> is as listed"})
    offer = api.post(f"/disputes/{d['dispute_id']}/offers", SELLER_WHO,
                     {"type": "REFUND_PARTIAL", "amount": {"amount": 300, "currency": "USD"},
                      "message": "Three <i>back</i>?"})
    assert offer.status_code in (200, 201), offer.json_body
    api.post(f"/disputes/{d['dispute_id']}/escalate", SELLER_WHO, {"message": "We cannot agree & that is that"})
    cookie, _ = session_cookie(wired, sub="m-2")
    html = case_html(client, cookie, d["dispute_id"])
    timeline = html[html.index('id="timeline"'):]
    assert "&lt;b&gt;Colour&lt;/b&gt; is as listed" in timeline, "the seller's refusal, as text"
    assert "Three &lt;i&gt;back&lt;/i&gt;?" in timeline and "3.00 USD" in timeline and "refund partial" in timeline
    assert "We cannot agree &amp; that is that" in timeline
    assert "<b>Colour" not in html and "<i>back" not in html
    missing = re.search(r'id="checklist-missing">([^<]*)<', html)
    suggested = re.search(r'id="checklist-suggested">([^<]*)<', html)
    assert missing and "photo" in missing.group(1).lower()
    assert suggested and "refund" in suggested.group(1).lower()


def test_a_decided_case_shows_its_decision_the_refund_and_what_the_escrow_has_pending(api: Api, client: Any,
                                                                                     wired: Any) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    assert decide_in_console(client, cookie, csrf, d["dispute_id"], fault="CARRIER",
                             rationale="Half the <set> was missing.").status_code == 303
    html = case_html(client, cookie, d["dispute_id"])
    card = html[html.index('id="decision-card"'):html.index("</section>", html.index('id="decision-card"'))]
    assert "refund partial" in card and "3.50 USD" in card and "carrier" in card
    assert "Half the &lt;set&gt; was missing." in card and "m-2" in card
    refund = api.get(f"/disputes/{d['dispute_id']}").json_body["refund"]
    assert f"{refund['status'].lower()} after {refund['attempts']} attempt(s)" in card
    assert "refund pending" in html
    # Which moderator decided is the case team's to read: a party's timeline does not say.
    assert "moderator_id" not in str(api.get(f"/disputes/{d['dispute_id']}").json_body["timeline"])


def test_a_return_decision_not_yet_paid_shows_its_decision_from_the_timeline(api: Api, client: Any,
                                                                            wired: Any) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    done = decide_in_console(client, cookie, csrf, d["dispute_id"], outcome="RETURN_AND_REFUND", amount="",
                             rationale="Send it back and get it all back.")
    assert done.status_code == 303, done.body
    assert api.get(f"/disputes/{d['dispute_id']}").json_body["resolution"] is None
    html = case_html(client, cookie, d["dispute_id"])
    card = html[html.index('id="decision-card"'):]
    assert "return and refund" in card and "the refund is paid once the item is back" in card
    assert "Send it back and get it all back." in card and "m-2" in card


def test_a_return_decision_completed_by_the_sellers_receipt_stays_the_moderators_decision(
        api: Api, client: Any, wired: Any) -> None:
    from tests.integration.api import BUYER, SELLER

    d = api.escalated()
    did = d["dispute_id"]
    cookie, csrf = session_cookie(wired, sub="m-2")
    assert decide_in_console(client, cookie, csrf, did, outcome="RETURN_AND_REFUND", amount="",
                             rationale="Send it back and get it all back.").status_code == 303
    decided_at = next(t["at"] for t in api.get(f"/disputes/{did}").json_body["timeline"]
                      if t["event"] == "dispute.decided")
    wired.clock.advance(hours=2)
    assert api.post(f"/disputes/{did}/return-shipment", BUYER, {"carrier": "CP", "tracking_number": "RR1"}).status_code == 200
    wired.clock.advance(hours=3)
    done = api.post(f"/disputes/{did}/confirm-return", SELLER, {}).json_body
    assert done["resolution"]["decided_by"] == "seller"
    received_at = done["resolution"]["resolved_at"]
    assert received_at != decided_at
    html_ = case_html(client, cookie, did)
    card = html_[html_.index('id="decision-card"'):html_.index("</section>", html_.index('id="decision-card"'))]
    outcome = re.search(r'id="decision-outcome">([^<]*)<', card)
    assert outcome and outcome.group(1) == "return and refund", card
    assert 'id="decision-rationale">Send it back and get it all back.<' in card
    assert re.search(rf'id="decision-by">m-2, <time datetime="{decided_at}">', card), card
    assert re.search(rf'id="decision-then">refund paid on return receipt <time datetime="{received_at}">', card), card
    assert "seller confirmed the returned item arrived" not in card and "seller" not in \
        card.split('id="decision-by">', 1)[1].split("</dd>", 1)[0]
    status = html_.split('<p class="status">', 1)[1].split("</p>", 1)[0]
    assert "RETURN_AND_REFUND" in status and "decided by m-2" in status and "refund paid on return receipt" in status
    assert "decided by seller" not in status
    # The same moderator's confirmation sent again is that decision, not someone else's.
    again = decide_in_console(client, cookie, csrf, did, outcome="RETURN_AND_REFUND", amount="",
                              rationale="Send it back and get it all back.")
    assert (again.status_code, again.headers["Location"]) == (303, f"/console/disputes/{did}?notice=decided")


def test_a_resubmitted_confirmation_lands_on_the_decision_and_anyone_elses_is_told_who_decided(
        api: Api, client: Any, wired: Any) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    assert decide_in_console(client, cookie, csrf, d["dispute_id"]).status_code == 303
    after = api.snapshot(dispute_id=d["dispute_id"])
    again = decide_in_console(client, cookie, csrf, d["dispute_id"])
    assert (again.status_code, again.headers["Location"]) == (303, f"/console/disputes/{d['dispute_id']}?notice=decided")
    other_cookie, other_csrf = session_cookie(wired, sub="m-3")
    for who, outcome in (((other_cookie, other_csrf), "REFUND_PARTIAL"), ((cookie, csrf), "REJECTED")):
        refused = decide_in_console(client, who[0], who[1], d["dispute_id"], outcome=outcome)
        assert refused.status_code == 409
        assert re.search(r"Already decided by m-2 at \d{4}-\d\d-\d\d \d\d:\d\d UTC", refused.body.decode())
    assert api.snapshot(dispute_id=d["dispute_id"]) == after


@pytest.mark.parametrize(("outcome", "amount", "words"), [
    ("RETURN_AND_REFUND", "", "Nothing is paid now. The buyer ships the item back; the full refund of 20.00 USD is paid "
                              "only once the item is back"),
    ("REJECTED", "", "The buyer gets no refund: the order's money (20.00 USD) is paid to the seller now."),
    ("REFUND_PARTIAL", "3.50", "Paid now: 3.50 USD back to the buyer, and the rest (16.50 USD) to the seller."),
    ("REFUND_FULL", "", "Paid now: the whole 20.00 USD back to the buyer; the seller gets nothing.")])
def test_the_confirmation_says_what_each_outcome_pays_and_when(api: Api, client: Any, wired: Any, outcome: str,
                                                               amount: str, words: str) -> None:
    d = api.escalated()
    cookie, csrf = session_cookie(wired, sub="m-2")
    review = post_form(client, f"/console/disputes/{d['dispute_id']}/decision",
                       {"outcome": outcome, "amount": amount, "csrf_token": csrf,
                        "rationale": "A rationale long enough."}, cookie)
    assert review.status_code == 200
    said = " ".join(review.body.decode().split())
    assert words in said
    assert ("paid at once" in said) is False


def test_the_page_asked_for_before_signing_in_is_where_the_sign_in_lands(api: Api, client: Any,
                                                                        wired: Any) -> None:
    wired.settings = replace(wired.settings, sandbox=True)
    d = api.escalated()
    asked = client.http.get(f"/console/disputes/{d['dispute_id']}")
    assert asked.headers["Location"] == "/console/sign-in"
    kept = [c for c in set_cookies(asked) if c.startswith("console_next=")]
    assert kept and "SameSite=Lax" in kept[0] and "HttpOnly" in kept[0]
    page = client.http.get("/console/sign-in", headers={"Cookie": kept[0].split(";")[0]})
    html = page.body.decode()
    assert f'name="next" value="/console/disputes/{d["dispute_id"]}"' in html
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert form_token is not None
    form_cookie = page.headers["Set-Cookie"].split(";")[0]

    def sign_in(next_path: str) -> str:
        r = post_form(client, "/console/sign-in", {"moderator_id": "m-1", "csrf_token": form_token.group(1),
                                                   "next": next_path}, form_cookie)
        assert r.status_code == 303
        return str(r.headers["Location"])

    assert sign_in(f"/console/disputes/{d['dispute_id']}") == f"/console/disputes/{d['dispute_id']}"
    assert sign_in("/console/?assigned=me") == "/console/?assigned=me"
    for unsafe in ("https://evil.example/console/", "//evil.example/console/", "/console/..//evil.example",
                   "/console\\..\\x", "/api/disputes", "/console/../disputes", "javascript:alert(1)",
                   "/console/sign-out", "/console/%2F%2Fevil", " /console/"):
        assert sign_in(unsafe) == "/console/", unsafe
    # A form sent with an expired session comes back to its case (its text is not kept).
    posted = post_form(client, f"/console/disputes/{d['dispute_id']}/notes", {"note": "x"})
    assert [c for c in set_cookies(posted) if c.startswith("console_next=")][0].startswith(
        f"console_next=%2Fconsole%2Fdisputes%2F{d['dispute_id']};")


def test_the_hosted_ui_round_trip_lands_on_the_page_asked_for(client: Any, hosted: HostedUi) -> None:
    r = client.http.get("/console/login?next=/console/disputes/d-42", headers={"Host": "console.example"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    cookie = set_cookies(r)[0].split(";")[0]
    TokenEndpoint.id_token = token("m-9", ("moderators",), aud="console-client", nonce=query["nonce"])
    done = client.http.get(f"/console/callback?code=abc&state={query['state']}",
                           headers={"Cookie": cookie, "Host": "console.example"})
    assert done.status_code == 200
    assert 'content="0; url=/console/disputes/d-42"' in done.body.decode()
    r = client.http.get("/console/login?next=//evil.example/", headers={"Host": "console.example"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    TokenEndpoint.id_token = token("m-9", ("moderators",), aud="console-client", nonce=query["nonce"])
    done = client.http.get(f"/console/callback?code=abc&state={query['state']}",
                           headers={"Cookie": set_cookies(r)[0].split(";")[0], "Host": "console.example"})
    assert 'content="0; url=/console/"' in done.body.decode()


def test_the_queue_shows_totals_a_first_page_link_and_a_bad_filter_in_words(api: Api, client: Any, wired: Any,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.console import pages

    api.escalated()
    api.delivered_order("o-2", total=4250)
    second = api.open_dispute("o-2")
    api.post(f"/disputes/{second['dispute_id']}/reject", SELLER_WHO, {"message": "No"})
    api.post(f"/disputes/{second['dispute_id']}/escalate", SELLER_WHO, {})
    monkeypatch.setattr(pages, "QUEUE_PAGE", 1)
    cookie, _ = session_cookie(wired, sub="m-3")
    first = client.http.get("/console?reason=NOT_AS_DESCRIBED", headers={"Cookie": cookie}).body.decode()
    assert "Order total" in first and 'id="first-page"' not in first
    cursor = re.search(r'href="/console/\?cursor=([^"&]+)', first)
    assert cursor is not None
    nxt = client.http.get(f"/console/?cursor={cursor.group(1)}&reason=NOT_AS_DESCRIBED",
                          headers={"Cookie": cookie}).body.decode()
    assert 'href="/console/?reason=NOT_AS_DESCRIBED" id="first-page">First page</a>' in nxt
    assert "20.00 USD" in first + nxt and "42.50 USD" in first + nxt
    bad = client.http.get("/console?reason=EVERYTHING", headers={"Cookie": cookie})
    assert bad.status_code == 400
    assert "The queue cannot be filtered that way" in bad.body.decode()
    assert '<a href="/console/" id="back">Show the whole queue, unfiltered</a>' in bad.body.decode()


def test_a_case_another_moderator_holds_says_why_there_is_no_message_box(api: Api, client: Any,
                                                                        wired: Any) -> None:
    d = api.escalated()
    holder, holder_csrf = session_cookie(wired, sub="m-1")
    assert post_form(client, f"/console/disputes/{d['dispute_id']}/claim", {"csrf_token": holder_csrf},
                     holder).status_code == 303
    cookie, _ = session_cookie(wired, sub="m-3")
    html = case_html(client, cookie, d["dispute_id"])
    assert 'id="message-body"' not in html
    assert re.search(r'id="no-message-box">m-1 holds this case, so only they can write to the parties', html)
    assert 'id="no-message-box"' not in case_html(client, holder, d["dispute_id"])


def test_the_queue_and_the_case_show_the_sellers_standing_and_the_buyers_signals(api: Api, client: Any,
                                                                                wired: Any) -> None:
    d = api.escalated()
    cookie, _ = session_cookie(wired, sub="m-3")
    case = client.http.get(f"/console/disputes/{d['dispute_id']}", headers={"Cookie": cookie})
    text = case.body.decode()
    assert case.status_code == 200 and 'id="standing"' in text
    # too few orders for a rate: the counts, not an alarming percentage
    assert re.search(r'id="seller-level">not enough data: 0 defects in 1 order</dd>', text), text
    assert re.search(r'id="buyer-flag">none: 0 disputes lost', text)
    assert 'id="scans"' in text and "delivered" in text.split('id="scans"', 1)[1][:200]
    queue = client.http.get("/console", headers={"Cookie": cookie})
    assert queue.status_code == 200 and d["dispute_id"] in queue.body.decode()
    assert "frequent disputer" not in queue.body.decode()  # a buyer with nothing lost carries no badge


def test_the_rules_page_lists_each_rule_with_its_report_and_shows_a_description_as_text(api: Api, client: Any,
                                                                                        wired: Any) -> None:
    rule = {"description": "<b>Counterfeits</b> to a person", "mode": "DRY_RUN", "priority": 1,
            "when": {"reasons": ["NOT_AS_DESCRIBED"]}, "then": "ESCALATE"}
    admin = ("a-1", "moderation-admins")
    assert api.call("PUT", "/moderation/rules/counterfeits", admin, rule).status_code == 200
    api.escalated()  # opened after the rule: evaluated, matched, escalated by people
    cookie, _ = session_cookie(wired, sub="m-3")
    page = client.http.get("/console/rules", headers={"Cookie": cookie})
    text = page.body.decode()
    assert page.status_code == 200 and "counterfeits" in text
    assert "&lt;b&gt;Counterfeits&lt;/b&gt;" in text and "<b>Counterfeits" not in text
    row = text.split("counterfeits", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<td>(\d+)</td>", row) == ["1", "1", "0", "0", "0"]  # still open: not decided yet


def test_the_timeline_and_the_decision_name_the_rule_that_escalated_or_refunded_a_case(client: Any,
                                                                                      wired: Any) -> None:
    from tests.integration.test_standing import delivered_and_disputed
    from tests.support import auth, dumps

    admin = auth("a-1", "moderation-admins")
    rule = {"description": "to a person", "mode": "ACTIVE", "priority": 1, "then": "ESCALATE",
            "when": {"reasons": ["NOT_AS_DESCRIBED"]}}
    assert client.http.put("/moderation/rules/esc-nad", headers=admin, body=dumps(rule)).status_code == 200
    escalated = delivered_and_disputed(client, "o-r1").json_body
    assert escalated["status"] == "ESCALATED"
    assert client.http.put("/moderation/rules/esc-nad", headers=admin, body=dumps(
        {**rule, "mode": "OFF", "expected_version": 1})).status_code == 200
    assert client.http.put("/moderation/rules/refund-nad", headers=admin, body=dumps(
        {**rule, "then": "REFUND_FULL"})).status_code == 200
    refunded = delivered_and_disputed(client, "o-r2", buyer="b-2", seller="s-2").json_body
    assert refunded["resolution"]["rule"] == {"rule_id": "refund-nad", "version": 1}
    cookie, _ = session_cookie(wired, sub="m-3")
    for d, event, named in ((escalated, "escalated", "by rule esc-nad (v1)"),
                            (refunded, "resolved", "by rule refund-nad (v1)")):
        text = client.http.get(f"/console/disputes/{d['dispute_id']}", headers={"Cookie": cookie}).body.decode()
        timeline = text.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
        entry = next(li for li in timeline.split("<li>") if f"</strong> {event}" in li)
        assert f"<dt>rule</dt><dd>{named}</dd>" in entry, entry
    decided = client.http.get(f"/console/disputes/{refunded['dispute_id']}", headers={"Cookie": cookie}).body.decode()
    assert re.search(r'id="decision-by">rule refund-nad \(v1\),', decided), decided


def test_back_from_the_confirmation_keeps_the_decision_as_typed_and_changes_nothing(api: Api, client: Any,
                                                                                   wired: Any) -> None:
    d = api.escalated()
    before = api.snapshot(dispute_id=d["dispute_id"])
    cookie, csrf = session_cookie(wired, sub="m-2")
    form = {"outcome": "REFUND_PARTIAL", "amount": "3.50", "fault": "BUYER", "csrf_token": csrf,
            "rationale": "Half the set was <missing>,\nsee the photo.", "expected_version": str(d["version"])}
    review = post_form(client, f"/console/disputes/{d['dispute_id']}/decision", form, cookie)
    text = review.body.decode()
    assert review.status_code == 200 and 'action="/console/sign-out"' in text  # signing out from here too
    back_form = text.split('id="back-form"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', back_form))
    assert fields["back"] == "1" and fields["outcome"] == "REFUND_PARTIAL" and fields["amount"] == "3.50"
    assert fields["fault"] == "BUYER" and fields["csrf_token"] == csrf
    back = post_form(client, f"/console/disputes/{d['dispute_id']}/decision",
                     {k: html.unescape(v) for k, v in fields.items()}, cookie)
    page = back.body.decode()
    assert back.status_code == 200 and 'id="decision"' in page
    assert '<option value="REFUND_PARTIAL" selected>' in page and '<option value="BUYER" selected>' in page
    assert 'id="amount" name="amount" type="text" inputmode="decimal" autocomplete="off" ' \
           'aria-describedby="amount-error" value="3.50"' in page
    assert ">Half the set was &lt;missing&gt;,\nsee the photo.</textarea>" in page
    assert api.snapshot(dispute_id=d["dispute_id"]) == before, "going back decides nothing"


def _refund_needing_a_person(api: Api, wired: Any, order_id: str, status: str, reason: str) -> str:
    """An order whose one refund needs a person for ``reason``, left ``status``: written as the
    ledger writes it (the provider's paths to each state are the payments tests')."""
    from datetime import timedelta

    from chalicelib.domain.money import Money

    api.delivered_order(order_id)
    now = wired.clock.now()
    with wired.services.payments.uow() as uow:
        order = uow.orders.get(order_id)
        ledger, refund = order.ledger.request_refund(Money(500, "USD"), now, now + timedelta(days=7), "DISPUTE")
        rid = refund.refund_id
        if status == "FAILED":  # a reason of its own, else the last automatic attempt failed
            ledger = ledger.refund_failed(rid, 1, reason if reason != "ATTEMPTS_EXHAUSTED" else "card_declined",
                                          now, max_attempts=1)
        elif status == "SUCCEEDED":
            ledger = ledger.refund_settled(rid, 1, "re_1", now).flag(rid, reason, now)
        else:
            ledger = ledger.flag(rid, reason, now)
        assert ledger.refund(rid).attention_reason == reason and ledger.refund(rid).status == status
        uow.orders.save(replace(order, ledger=ledger))
        uow.commit()
    return rid


def _refund_card(text: str, refund_id: str) -> str:
    start = text.index(f'id="refund-{refund_id}"')
    return text[start:text.index("</li>", start)]


@pytest.mark.parametrize(("status", "reason", "said", "retry", "check_first"), [
    ("FAILED", "ATTEMPTS_EXHAUSTED", "Every automatic attempt failed", True, False),
    ("FAILED", "OUTCOME_UNKNOWN", "it may have paid", True, True),
    ("FAILED", "charge_already_refunded", "the charge was already refunded", True, True),
    ("FAILED", "NO_PAYMENT_REFERENCE", "no payment reference", True, False),
    ("SUCCEEDED", "PAID_TWICE", "Paid twice?", False, True),
    ("SUCCEEDED", "NEWER_ATTEMPT_LIVE", "the newer one could not be cancelled", False, True),
    ("PENDING", "NOTICE_MISMATCH", "a signed notice of this refund for another amount", False, True),
])
def test_a_refund_needing_a_person_says_why_and_offers_a_retry_only_where_the_server_takes_one(
        api: Api, client: Any, wired: Any, status: str, reason: str, said: str, retry: bool,
        check_first: bool) -> None:
    refund_id = _refund_needing_a_person(api, wired, "o-1", status, reason)
    cookie, csrf = session_cookie(wired)
    card = _refund_card(client.http.get("/console/", headers={"Cookie": cookie}).body.decode(), refund_id)
    assert said in card and f"({reason})" in card, card
    assert ("Retry refund" in card) is retry, card
    # Beside the button where a new attempt could pay twice; without one, what to do instead.
    assert ("Check with the payment provider first: a new attempt could pay twice" in card) is (retry and check_first)
    if status == "SUCCEEDED":
        assert "Paid: there is nothing to retry" in card and "recover any second payment" in card
    elif not retry:
        assert "nothing to retry unless it fails. Check with the payment provider." in card
    # The button is there exactly when the server takes the retry (the same use case as the API's).
    before = api.snapshot()
    r = post_form(client, f"/console/refunds/o-1/{refund_id}/retry", {"csrf_token": csrf}, cookie)
    if retry:
        assert (r.status_code, r.headers["Location"]) == (303, "/console/?notice=retried"), r.body
    else:
        assert r.status_code == 409 and "REFUND_NOT_FAILED" in r.body.decode()
        assert api.snapshot() == before


def test_the_refunds_needing_a_person_page_on_with_their_own_cursor(api: Api, client: Any, wired: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.console import pages

    monkeypatch.setattr(pages, "QUEUE_PAGE", 2)
    ids = [_refund_needing_a_person(api, wired, f"o-{n}", "FAILED", "ATTEMPTS_EXHAUSTED") for n in range(3)]
    cookie, _ = session_cookie(wired)
    seen: list[str] = []
    path: str | None = "/console/"
    while path is not None:
        text = client.http.get(path, headers={"Cookie": cookie}).body.decode()
        seen += [i for i in ids if f'id="refund-{i}"' in text]
        more = re.search(r'href="([^"]*)" id="more-refunds"', text)
        path = html.unescape(more.group(1)) if more else None
        assert len(seen) <= 3
    assert sorted(seen) == sorted(ids), "every refund needing a person is reachable from the queue"
    assert 'id="first-refunds"' in text


def test_every_reason_a_refund_needs_a_person_is_said_in_words() -> None:
    from chalicelib.console.pages import REFUND_TROUBLE
    from chalicelib.domain import ledger

    reasons = ledger.NEEDS_A_PERSON | {ledger.ATTEMPTS_EXHAUSTED, ledger.PAID_TWICE, ledger.NOTICE_MISMATCH,
                                       ledger.NEWER_ATTEMPT_LIVE}
    assert reasons <= set(REFUND_TROUBLE)
    assert ledger.COULD_PAY_TWICE <= reasons and ledger.ATTEMPTS_EXHAUSTED not in ledger.COULD_PAY_TWICE
    from chalicelib.console.pages import refund_card

    order = {"order_id": "o-1", "available_actions": []}
    assert refund_card(order, {"refund_id": "r-1", "attention_reason": None})["why"].startswith("No reason was recorded")
    assert refund_card(order, {"refund_id": "r-1", "attention_reason": "card_lost"})["why"] == \
        "The payment provider answered: card_lost."


RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: what follows it, to the end of its paragraph, reads backwards


class _Texts(HTMLParser):
    """Each text of the page with the attributes of the element that holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[dict[str, str | None]] = [{}]
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "img", "input", "meta", "link"):
            self.open.append({"tag": tag, **dict(attrs)})

    def handle_endtag(self, tag: str) -> None:
        if len(self.open) > 1:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.found.append((data, self.open[-1]))


def test_a_partys_text_is_isolated_so_bidi_controls_cannot_reorder_what_surrounds_it(
        api: Api, client: Any, wired: Any) -> None:
    from tests.integration.api import BUYER, SELLER, SERVICE

    items = [{"item_id": "i-1", "title": f"{RLO}Red dress", "quantity": 1, "unit_price": {"amount": 2000, "currency": "USD"}}]
    assert api.post("/orders", SERVICE, order_body("o-1", items=items)).status_code == 201
    shipped = api.post("/orders/o-1/shipment", SELLER, {"carrier": f"{RLO}CP", "tracking_number": f"CN1{RLO}"})
    assert shipped.status_code == 200, shipped.json_body
    assert api.post("/orders/o-1/tracking-events", SERVICE, {"status": "DELIVERED", "occurred_at": shipped.json_body[
        "shipment"]["shipped_at"]}).status_code == 200
    d = api.open_dispute(description=f"Ordered red {RLO}<b>received blue</b>")
    did = d["dispute_id"]
    assert api.post(f"/disputes/{did}/messages", BUYER, {"body": f"Look {RLO}at the photo"}).status_code == 201
    assert api.post(f"/disputes/{did}/reject", SELLER, {"message": f"As listed {RLO}red"}).status_code == 200
    assert api.post(f"/disputes/{did}/escalate", SELLER, {}).status_code == 200
    cookie, _ = session_cookie(wired)
    page = case_html(client, cookie, did)
    assert "&lt;b&gt;received blue&lt;/b&gt;" in page and "<b>received" not in page  # still text
    parser = _Texts()
    parser.feed(page)
    holding = [(text, where) for text, where in parser.found if RLO in text]
    # the title, carrier and tracking (order and timeline), description, message, refusal
    assert len(holding) >= 7, holding
    for text, where in holding:
        assert "party-text" in str(where.get("class")).split() and where.get("dir") == "auto", (text, where)
    css = client.http.get("/console/static/console.css").body.decode()
    rule = re.search(r"\.party-text \{([^}]*)\}", css)
    assert rule and "unicode-bidi: isolate" in rule.group(1)
