"""The console's pages in-process (chalice.test over moto): who gets in, what a form without its
token changes (nothing), the development sign-in only where it may exist, the hosted UI's round
trip, and no second path to a state change beside the API's use cases."""
from __future__ import annotations

import ast
import inspect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib.config import HostedUi
from tests.integration.api import Api
from tests.support import token

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
    again = post_form(client, f"/console/disputes/{d['dispute_id']}/decision/confirm", form, cookie)
    assert again.status_code == 409, "decided once"


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


def test_the_queue_and_the_case_show_the_sellers_standing_and_the_buyers_signals(api: Api, client: Any,
                                                                                wired: Any) -> None:
    d = api.escalated()
    cookie, _ = session_cookie(wired, sub="m-3")
    case = client.http.get(f"/console/disputes/{d['dispute_id']}", headers={"Cookie": cookie})
    text = case.body.decode()
    assert case.status_code == 200 and 'id="standing"' in text
    assert re.search(r'id="seller-level">not enough data: defect rate 0\.00 %', text), text
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
