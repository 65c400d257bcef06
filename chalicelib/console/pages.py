"""The case team's console: HTML pages served by the same app as the API, over the same use cases
and access rules (every change goes through the ``services`` method the JSON route calls, with
the body that route validates). Handlers parse, call, and name a template; chalicelib/console/web.py
does the rest."""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from ..api import requests as parse
from ..api import schemas, views
from ..api.routing import Request, route_not_found
from ..api.validation import validate
from ..bootstrap import container
from ..domain.catalog import Fault
from ..domain.disputes import ASSIGNED_FILTERS, Command, Dispute, QueueFilter, default_fault
from ..domain.errors import ConcurrentModification, Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unauthenticated
from ..domain.identity import Identity
from ..domain.ledger import (
    AMOUNT_OR_CURRENCY_MISMATCH,
    ATTEMPTS_EXHAUSTED,
    COULD_PAY_TWICE,
    EARLIER_ATTEMPT_PENDING,
    NEWER_ATTEMPT_LIVE,
    NOTICE_MISMATCH,
    PAID_TWICE,
)
from ..domain.money import Money
from ..domain.rules import PREVIEW_DAYS, PREVIEW_LIMIT, Mode, Preview, Rule, Then
from ..domain.standing import Flag, Level
from ..domain.timefmt import parse as parse_time
from ..services import access
from ..services import commands as c
from ..services.commands import PageRequest
from ..services.disputes import ClaimCase, Decide, DisputeView, ReleaseCase
from . import forms, hosted_ui
from .session import FORM_COOKIE, NEXT_COOKIE, SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_SECONDS, Sessions, same_token
from .web import STATUS, Console, Ctx, Html, Redirect, asked_for, origin, safe_next, security_headers, static_file

blueprint = Blueprint(__name__)
AT_RISK = timedelta(days=1)  # a case due within a day is marked at risk in the queue
QUEUE_PAGE = 20
THREAD_PAGE = 100
OUTCOMES = tuple(schemas.DECISION["properties"]["outcome"]["enum"])  # what the decision route takes
FAULTS = tuple(f.value for f in Fault)


def _sessions() -> Sessions | None:
    return container().sessions


def _sign_in_path() -> str | None:
    settings = container().settings
    if settings.sandbox:
        return "/console/sign-in"
    return "/console/login" if settings.console.hosted() else None


def _form_targets() -> frozenset[str]:
    hosted = container().settings.console.hosted()
    return frozenset({hosted.domain}) if hosted else frozenset()


def _case_on_error(ctx: Ctx, exc: DomainError, params: dict[str, str]) -> Html | None:
    """An action on a case that was refused: the case page again, the answer on top in plain
    words, and what the moderator typed kept in the form."""
    dispute_id = params.get("dispute_id")
    if dispute_id is None:
        return None
    try:
        page = case_page(ctx, dispute_id)
    except DomainError:
        return None
    page.values["problem"] = in_words(exc)
    page.values["typed"] = ctx.form
    return page


console = Console(blueprint, sessions=_sessions, sign_in_path=_sign_in_path, form_targets=_form_targets,
                  error_page=_case_on_error)


def _claimed(exc: DomainError) -> dict[str, str]:
    d = exc.details or {}
    return {"title": "Another moderator holds this case",
            "words": f"{d.get('moderator_id', 'Someone')} holds it until {_clock(d.get('expires_at'))}. "
                     "Nothing was changed. Take another case, or come back when the claim ends."}


def _moved_on(exc: DomainError) -> dict[str, str]:
    return {"title": "The case moved on while you were deciding",
            "words": "Something happened on this case since you opened it (see the timeline). Nothing was "
                     "changed: read the case again and decide again."}


def _invalid_state(exc: DomainError) -> dict[str, str]:
    d = exc.details or {}
    if d.get("decided_by"):
        return {"title": "This case was already decided",
                "words": f"Already decided by {d['decided_by']} at {_clock(d.get('decided_at'))}. Nothing was "
                         "changed: the decision is on the case."}
    return {"title": "The case cannot take this action now", "words": f"{exc.message}. Nothing was changed."}


# The refusals a moderator meets at work, in words; any other is the API's own message.
WORDS: dict[str, Callable[[DomainError], dict[str, str]]] = {
    "CASE_CLAIMED": _claimed, "VERSION_CONFLICT": _moved_on, "INVALID_STATE": _invalid_state}


def in_words(exc: DomainError) -> dict[str, str]:
    """The API's refusal as a moderator reads it."""
    explain = WORDS.get(exc.code)
    said = explain(exc) if explain is not None else {"title": "That was not accepted",
                                                       "words": f"{exc.message}. Nothing was changed."}
    return {**said, "code": exc.code}  # the API's own code beside the words, as support reads it


def _clock(value: Any) -> str:
    try:
        return parse_time(str(value)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return "later"


def _now() -> datetime:
    return container().clock.now()


def _dispute_view(ctx: Ctx, shown: DisputeView, insights: Any = None) -> dict[str, Any]:
    """``shown``: the dispute and its refund (services.disputes.DisputeView). ``insights``: the
    seller's standing and the buyer's signals, read once per party per page."""
    return views.dispute(shown, _now(), container().settings.policy, ctx.who,
                         insights.of(shown.dispute) if insights is not None else None)


def _order_view(ctx: Ctx, order: Any) -> dict[str, Any]:
    return views.order(order, _now(), container().settings.policy, ctx.who)


# What each timeline entry's details are called on the page, in the order shown. Every value is
# rendered as text (autoescaped); money as "8.00 USD".
DETAIL_LABELS = (
    ("outcome", "outcome"), ("type", "offer"), ("amount", "amount"), ("fault", "fault"), ("reason", "reason"),
    ("action", "deadline missed"), ("carrier", "carrier"), ("tracking_number", "tracking"),
    ("attempt", "attempt"), ("failure_reason", "failure"), ("moderator_id", "by"), ("message", "message"),
    ("rationale", "rationale"), ("rule", "rule"))
PARTY_TEXT = frozenset({"message", "rationale", "failure_reason", "carrier", "tracking_number"})


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "rule_id" in value:  # the rule that acted: "by rule r1 (v2)"
        return f"by rule {value['rule_id']} (v{value.get('version', '?')})"
    if isinstance(value, dict) and "amount" in value and "currency" in value:
        return f"{forms.major_units(int(value['amount']), str(value['currency']))} {value['currency']}"
    return str(value).replace("_", " ").lower() if isinstance(value, str) and value.isupper() else str(value)


def timeline_entries(dispute: dict[str, Any]) -> list[dict[str, Any]]:
    """The timeline with each entry's details as (label, text, is party text) rows; an offer's
    message comes from the offer it made; the rule that escalated or refunded, "by rule r1 (v2)"."""
    offers = {o["offer_id"]: o for o in dispute["offers"]}
    by_rule = (dispute.get("resolution") or {}).get("rule")  # a rule's refund names it on its resolution
    entries = []
    for t in dispute["timeline"]:
        details = dict(t.get("details") or {})
        if by_rule and t["event"] == "dispute.resolved" and t["actor"] == "system":
            details.setdefault("rule", by_rule)
        offer = offers.get(str(details.get("offer_id", "")))
        if offer is not None and offer.get("message") and t["event"] == "dispute.offer_made":
            details.setdefault("message", offer["message"])
        rows = [{"label": label, "text": _shown(details[key]), "party": key in PARTY_TEXT}
                for key, label in DETAIL_LABELS if details.get(key) not in (None, "", {})]
        entries.append({**t, "rows": rows})
    return entries


def decision_of(dispute: dict[str, Any]) -> dict[str, Any] | None:
    """The case's decision, and who made it (a moderator's id when a moderator did). A moderator's
    ``dispute.decided`` entry is the decision whenever one exists: a return and refund resolves
    only later, when the seller confirms the item is back (or the receipt or shipping deadline
    passes), and that resolution is shown as what followed (``then``), never as who decided.
    Otherwise the resolution (agreed by the parties, or a rule's: "rule r1 (v2)")."""
    decided = next((t for t in reversed(dispute["timeline"]) if t["event"] == "dispute.decided"), None)
    r = dispute.get("resolution")
    if decided is not None:
        details, moderator = decided["details"], decided["details"].get("moderator_id")
        then = None
        if r is not None and r["decided_by"] != "moderator":  # what became of a return and refund
            returned = any(t["event"] == "dispute.return_received" and t["at"] >= decided["at"]
                           for t in dispute["timeline"])
            then = {"outcome": r["outcome"], "rationale": r["rationale"], "at": r["resolved_at"],
                    "paid_on_return": returned and r["outcome"] == "REFUND_FULL"}
        return {"outcome": details.get("outcome"), "amount": (r or {}).get("amount") or details.get("amount"),
                "fault": details.get("fault") or (r or {}).get("fault"), "rationale": details.get("rationale"),
                "by": moderator or "a moderator", "moderator_id": moderator, "at": decided["at"],
                "decided_at": decided["at"], "pending": r is None, "then": then}
    if r is None:
        return None
    rule = r.get("rule")  # a rule's refund: decided by that rule's version
    return {"outcome": r["outcome"], "amount": r["amount"], "fault": r["fault"], "rationale": r["rationale"],
            "by": f"rule {rule['rule_id']} (v{rule['version']})" if rule else r["decided_by"], "moderator_id": None,
            "at": r["resolved_at"], "decided_at": r["resolved_at"], "pending": False, "then": None}


# Why a refund needs a person (its attention_reason), as a moderator reads it.
REFUND_TROUBLE = {
    ATTEMPTS_EXHAUSTED: "Every automatic attempt failed. No money moved: the buyer is still owed it.",
    "NO_PAYMENT_REFERENCE": "The order has no payment reference: the payment provider has no charge to refund "
                            "it from. No money moved.",
    "OUTCOME_UNKNOWN": "The payment provider cannot say what became of an attempt sent more than a day ago: "
                       "it may have paid.",
    EARLIER_ATTEMPT_PENDING: "An earlier attempt is still pending (or unaccounted for) at the payment provider: "
                             "it may yet pay. The new attempt was not sent.",
    AMOUNT_OR_CURRENCY_MISMATCH: "The payment provider holds a refund of this attempt for another amount or "
                                 "currency: it may have paid.",
    "charge_already_refunded": "The payment provider says the charge was already refunded: the money may be "
                               "back with the buyer already.",
    "amount_too_large": "The payment provider says less is left to refund on the charge than this refund: part "
                        "of it may be back with the buyer already.",
    NOTICE_MISMATCH: "The payment provider sent a signed notice of this refund for another amount.",
    PAID_TWICE: "Paid twice? A second attempt succeeded at the payment provider after another had.",
    NEWER_ATTEMPT_LIVE: "An older attempt paid late while a newer one was out, and the newer one could not be "
                        "cancelled: it may pay too.",
}


def refund_card(order: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    """A refund needing a person as the queue shows it: why, in words; a retry only where the
    server takes one (the order's ``available_actions``: a failed refund); and where money may
    have left already, to check with the payment provider first."""
    reason = refund.get("attention_reason")
    path = f"/orders/{order['order_id']}/refunds/{refund['refund_id']}/retry"
    return {"order": order, "refund": refund, "reason": reason,
            "why": REFUND_TROUBLE.get(str(reason), f"The payment provider answered: {_shown(reason)}."
                                      if reason else "No reason was recorded: check it at the payment provider."),
            "retry": any(a["method"] == "POST" and a["path"] == path for a in order["available_actions"]),
            "check_first": reason in COULD_PAY_TWICE}


def _mark(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``overdue`` / ``at_risk`` for the queue, from the mediation deadline the API shows."""
    mediation = next((d for d in item["deadlines"] if d["action"] == "MEDIATION"), None)
    due = parse_time(mediation["due_at"]) if mediation else None
    return {**item, "overdue": bool(mediation and mediation.get("overdue")),
            "at_risk": bool(mediation and due and not mediation.get("overdue") and due - now <= AT_RISK),
            "due_at": mediation["due_at"] if mediation else None}


# ---- signing in -------------------------------------------------------------------------------
@console.page("/console/sign-in", signed_in=False, available=lambda: container().settings.sandbox)
def sign_in_form(ctx: Ctx) -> Html | Redirect:
    """The development sign-in (make dev and SANDBOX stages only): any moderator id."""
    jar_token = Sessions.new_form_token()
    return Html("sign_in.html", {"csrf_token": jar_token, "moderator_id": "", "next": asked_for(ctx) or ""},
                cookies=[_signer().cookie(FORM_COOKIE, jar_token, max_age=3600, base=ctx.base)])


@console.page("/console/sign-in", "POST", signed_in=False, available=lambda: container().settings.sandbox)
def sign_in(ctx: Ctx) -> Html | Redirect:
    moderator_id = ctx.form.get("moderator_id", "").strip()
    validate({"moderator_id": moderator_id}, {"type": "object", "properties": {"moderator_id": schemas.ID}})
    groups = {"moderators", "moderation-admins"} if ctx.form.get("moderation_admin") else {"moderators"}
    value, _ = _signer().issue(Identity(sub=moderator_id, groups=frozenset(groups)))
    # Back to the page asked for (a console path only: anything else is the queue).
    return Redirect(safe_next(ctx.form.get("next")) or "/console/", cookies=[
        _signer().cookie(SESSION_COOKIE, value, base=ctx.base), Sessions.expired(FORM_COOKIE, ctx.base),
        Sessions.expired(NEXT_COOKIE, ctx.base)])


def _signer() -> Sessions:
    """The console's session signer (the edge answers 404 before any page runs without one)."""
    sessions = container().sessions
    assert sessions is not None, "console pages run only with a session key"
    return sessions


def _hosted() -> bool:
    return container().settings.console.hosted() is not None


def _callback_url(ctx: Ctx) -> str:
    return f"https://{ctx.host}{ctx.base}/console/callback"


@console.page("/console/login", signed_in=False, available=_hosted)
def login(ctx: Ctx) -> Redirect:
    """To the Cognito hosted UI, with a new state, nonce and PKCE verifier kept in a sealed cookie."""
    ui = container().settings.console.hosted()
    assert ui is not None
    started = hosted_ui.SignIn.start()
    # The page asked for travels sealed with the state: only what this login checked comes back.
    kept = {**started.to_dict(), "next": asked_for(ctx) or "/console/"}
    cookie = _signer().cookie(SIGN_IN_COOKIE, _signer().seal(kept), max_age=SIGN_IN_SECONDS,
                              same_site="Lax", base=ctx.base)
    return Redirect(hosted_ui.authorize_url(ui, started, _callback_url(ctx)), cookies=[cookie], outside=True)


@console.page("/console/callback", signed_in=False, available=_hosted)
def callback(ctx: Ctx) -> Html:
    """The hosted UI's redirect: state checked, code exchanged server-side, ID token verified
    (signature, issuer, the console client's audience, nonce), and only a moderator signed in."""
    ui, verifier = container().settings.console.hosted(), container().console_verifier
    assert ui is not None and verifier is not None
    sealed = _signer().unseal(ctx.cookies.get(SIGN_IN_COOKIE))
    started = hosted_ui.SignIn.from_dict(sealed or {})
    if started is None or not same_token(started.state, ctx.query.get("state")) or not ctx.query.get("code"):
        raise Unauthenticated("this sign-in has expired or was not started here: sign in again")
    id_token = hosted_ui.exchange(ui, ctx.query["code"], started, _callback_url(ctx))
    identity, expires = verifier.verify_sign_in(id_token, started.nonce)
    if not identity.is_moderator:  # a party's account gets nothing from the console
        raise Forbidden("the console is for the case team (the moderators group) only", code="NOT_YOUR_ACTION")
    value, _ = _signer().issue(identity, not_after=expires)
    # A page, not a redirect: the chain that brought us here started on the user pool's site, so a
    # SameSite=Strict cookie would not go with a redirect; the page's own refresh is same-site.
    to = safe_next(str((sealed or {}).get("next") or "")) or "/console/"
    return Html("signed_in.html", {"to": to}, cookies=[
        _signer().cookie(SESSION_COOKIE, value, max_age=max(0, expires - int(_now().timestamp())), base=ctx.base),
        Sessions.expired(SIGN_IN_COOKIE, ctx.base), Sessions.expired(NEXT_COOKIE, ctx.base)])


@console.page("/console/sign-out", "POST")
def sign_out(ctx: Ctx) -> Redirect:
    hosted = container().settings.console.hosted()
    cleared = [Sessions.expired(SESSION_COOKIE, ctx.base)]
    if hosted and not container().settings.sandbox:
        return Redirect(hosted.logout_url(ctx.host, ctx.base), cookies=cleared, outside=True)
    return Redirect("/console/signed-out", cookies=cleared)


@console.page("/console/signed-out", signed_in=False)
def signed_out(ctx: Ctx) -> Html:
    return Html("problem.html", {"title": "Signed out", "words": "You are signed out of the console.",
                                 "sign_in": _sign_in_path()})


# ---- auto-resolution rules ------------------------------------------------------------------------
RULE_CHOICES = {"reasons": views.REASONS, "seller_levels": tuple(x.value for x in Level),
                "buyer_flags": tuple(x.value for x in Flag)}
# The server's rule-id pattern as the form's ``pattern`` attribute (a browser compiles it with the
# ``v`` flag, where ``|`` and ``-`` in a class are escaped).
RULE_ID_PATTERN = str(schemas.ID["pattern"]).strip("^$").replace("|", "\\|").replace("-]", "\\-]")
RULE_LABELS = {"reasons": "reasons", "seller_levels": "seller level", "buyer_flags": "buyer flag",
               "max_amount": "order total at most", "no_carrier_scan_days": "no carrier scan for at least"}
EVERY_DISPUTE = "confirm_every_dispute"  # the preview's box: an ACTIVE rule with no condition


def _words(value: str) -> str:
    return value.replace("_", " ").lower()


def rule_conditions(when: dict[str, Any]) -> list[dict[str, str]]:
    """A rule's ``when`` as the form says it: an amount in major units with its currency, reasons,
    levels and flags in words; empty: the rule matches every dispute."""
    shown = []
    for key, value in when.items():
        if isinstance(value, dict):
            text = f"{forms.major_units(int(value['amount']), str(value['currency']))} {value['currency']}"
        elif key == "no_carrier_scan_days":
            text = f"{value} days"
        elif isinstance(value, list):
            text = ", ".join(_words(str(v)) for v in value)
        else:
            text = str(value)
        shown.append({"label": RULE_LABELS.get(key, key.replace("_", " ")), "text": text})
    return shown


def _rule_shown(r: Rule) -> dict[str, Any]:
    return {**views.rule(r), "conditions": rule_conditions(r.when.to_dict())}


@console.page("/console/rules")
def rules(ctx: Ctx) -> Html:
    """The auto-resolution rules by priority, each with its current version's report (how its
    dry-run suggestions compare with how people resolved the matched cases); moderation admins
    get the way to edit each one and to write a new one."""
    moderation = container().services.moderation
    shown = [{**_rule_shown(r), "report": views.rule_report(*moderation.report(ctx.who, r.rule_id))}
             for r in moderation.rules(ctx.who)]
    return Html("rules.html", {"rules": shown, "can_edit": ctx.who.is_moderation_admin,
                               "notice": ctx.query.get("notice", "")})


def _rule_form(ctx: Ctx, typed: dict[str, str], editing: bool, status: int = 200, problem: Any = None,
               preview: Any = None, current: Any = None) -> Html:
    fields = ("rule_id", "description", "mode", "priority", "then", "max_amount", "currency",
              "no_carrier_scan_days", "expected_version", EVERY_DISPUTE,
              *(f"{name}.{v}" for name, values in RULE_CHOICES.items() for v in values))
    return Html("rule_edit.html", {
        "typed": {**dict.fromkeys(fields, ""), **typed}, "editing": editing, "problem": problem, "preview": preview,
        "choices": RULE_CHOICES, "rule_id_pattern": RULE_ID_PATTERN, "current": current,
        "modes": tuple(m.value for m in Mode), "thens": tuple(t.value for t in Then),
        "preview_days": PREVIEW_DAYS, "preview_limit": PREVIEW_LIMIT}, status=status)


def _typed_rule(r: Rule) -> dict[str, str]:
    """A stored rule as the form's fields."""
    w = r.when.to_dict()
    typed = {"rule_id": r.rule_id, "description": r.description, "mode": r.mode.value, "priority": str(r.priority),
             "then": r.then.value, "expected_version": str(r.version)}
    for name in RULE_CHOICES:
        for value in w.get(name, ()):
            typed[f"{name}.{value}"] = "on"
    if "max_amount" in w:
        m = w["max_amount"]
        typed["max_amount"], typed["currency"] = forms.major_units(m["amount"], m["currency"]), m["currency"]
    if "no_carrier_scan_days" in w:
        typed["no_carrier_scan_days"] = str(w["no_carrier_scan_days"])
    return typed


def _rule_request(ctx: Ctx) -> tuple[str, dict[str, Any]]:
    """The form as the PUT route's rule id and body, checked by the route's own schema. A new rule
    (the form without ``editing``) is sent with ``expected_version`` 0: an id that exists is refused
    (``VERSION_CONFLICT``), never replaced; an edit sends the version it was opened at."""
    rule_id = ctx.form.get("rule_id", "").strip()
    validate({"rule_id": rule_id}, {"type": "object", "properties": {"rule_id": schemas.ID}})
    body = forms.rule_body(ctx.form)
    if not ctx.form.get("editing"):
        body["expected_version"] = 0
    elif "expected_version" not in body:
        raise InvalidInput("expected_version: an edit sends the version it was opened at", code="VALIDATION_ERROR",
                           details={"field": "expected_version"})
    validate(body, schemas.RULE)
    return rule_id, body


def preview_digest(ctx: Ctx, rule_id: str, body: dict[str, Any]) -> str:
    """What was previewed, as an HMAC keyed with the session's own secret token: the save button
    carries it, and a save of anything else is refused."""
    assert ctx.session is not None, "signed-in pages only"
    text = json.dumps({"rule_id": rule_id, **body}, sort_keys=True, separators=(",", ":"))
    return hmac.new(ctx.session.csrf.encode(), text.encode(), hashlib.sha256).hexdigest()


def _every_dispute(body: dict[str, Any]) -> bool:
    return body.get("mode") == Mode.ACTIVE.value and not body.get("when")


def _previewed(ctx: Ctx, rule_id: str, body: dict[str, Any], preview: Preview, status: int = 200,
               problem: Any = None) -> Html:
    """The form with the rule's preview, its digest for the save, and (an ACTIVE rule with no
    condition) the box that confirms it acts on every dispute."""
    page = _rule_form(ctx, ctx.form, editing=bool(ctx.form.get("editing")), status=status, problem=problem,
                      preview={**preview.to_dict(), "digest": preview_digest(ctx, rule_id, body),
                               "every_dispute": _every_dispute(body)})
    return page


def _rule_conflict(ctx: Ctx, exc: DomainError) -> Html:
    """A rule that moved on: said in the rule's words, with the rule as it is now beside the form;
    an edit's ``expected_version`` becomes the current one, so sending it again applies on top."""
    rule_id = ctx.form.get("rule_id", "").strip()
    current = next((r for r in container().services.moderation.rules(ctx.who) if r.rule_id == rule_id), None)
    version = current.version if current else int((exc.details or {}).get("current_version", 0))
    typed = dict(ctx.form)
    if ctx.form.get("editing"):
        typed["expected_version"] = str(version)
        said = {"title": "This rule was changed by someone else since you opened it",
                "words": f"It is now version {version} (shown beside). Nothing was saved. Your form now applies on "
                         "top of that version: check it, preview it again and save."}
    else:
        said = {"title": "A rule with this id exists",
                "words": f"A rule with the id {rule_id} exists (version {version}): edit it, or choose another id. "
                         "Nothing was saved.", "edit": rule_id}
    return _rule_form(ctx, typed, editing=bool(ctx.form.get("editing")), status=409,
                      problem={**said, "code": exc.code}, current=_rule_shown(current) if current else None)


def _rule_refused(ctx: Ctx, exc: DomainError) -> Html:
    """The form again with what was typed, the refusal in words and the API's code."""
    if isinstance(exc, (Forbidden, Unauthenticated)):
        raise exc
    if isinstance(exc, ConcurrentModification):
        return _rule_conflict(ctx, exc)
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 400)
    editing = bool(ctx.form.get("editing"))
    return _rule_form(ctx, ctx.form, editing=editing, status=status, problem=in_words(exc))


@console.page("/console/rules/new")
def new_rule(ctx: Ctx) -> Html:
    access.require(ctx.who.is_moderation_admin, "only moderation admins change the rules")
    return _rule_form(ctx, {"mode": "DRY_RUN", "priority": "10", "then": "ESCALATE", "expected_version": "0"},
                      editing=False)


@console.page("/console/rules/{rule_id}/edit")
def edit_rule(ctx: Ctx, rule_id: str) -> Html:
    access.require(ctx.who.is_moderation_admin, "only moderation admins change the rules")
    rule = next((r for r in container().services.moderation.rules(ctx.who) if r.rule_id == rule_id), None)
    if rule is None:
        raise NotFound("no such rule", code="RULE_NOT_FOUND")
    return _rule_form(ctx, _typed_rule(rule), editing=True)


@console.page("/console/rules/preview", "POST")
def preview_rule(ctx: Ctx) -> Html:
    """Step one: the rule checked as a save checks it (but for the room among the live rules: a
    preview stores nothing), and tried on the recent disputes."""
    try:
        rule_id, body = _rule_request(ctx)
        _, preview = container().services.moderation.preview(ctx.who, parse.save_rule(body, rule_id))
        return _previewed(ctx, rule_id, body, preview)
    except DomainError as exc:
        return _rule_refused(ctx, exc)


STALE_PREVIEW = {"title": "Check this preview before saving", "code": "",
                 "words": "The form is not the rule that was previewed (a field changed since, or it was never "
                          "previewed). Nothing was saved. Below is the preview of the rule as it is now: check it, "
                          "then save."}
UNCONFIRMED = {"title": "Confirm a rule that acts on every dispute", "code": "",
               "words": "This ACTIVE rule has no condition: it would act on every dispute opened from now on. "
                        "Nothing was saved. Tick the box under the preview to confirm, or add a condition."}


@console.page("/console/rules/save", "POST")
def save_rule(ctx: Ctx) -> Html | Redirect:
    """Step two: the rule previewed, unchanged since (its digest), saved by the use case of
    ``PUT /moderation/rules/{rule_id}``; an ACTIVE rule with no condition only with its box ticked."""
    try:
        rule_id, body = _rule_request(ctx)
        services, cmd = container().services, parse.save_rule(body, rule_id)
        # The console's own refusals (the API has no preview step), so no API code: not what was
        # previewed, or an ACTIVE rule for every dispute unconfirmed. Nothing is saved; the answer
        # is the preview of the form as it is now (a rule the use case refuses is refused as ever).
        unchanged = hmac.compare_digest(ctx.form.get("previewed", ""), preview_digest(ctx, rule_id, body))
        if not unchanged or (_every_dispute(body) and not ctx.form.get(EVERY_DISPUTE)):
            _, preview = services.moderation.preview(ctx.who, cmd)
            return _previewed(ctx, rule_id, body, preview, status=409 if not unchanged else 400,
                              problem=STALE_PREVIEW if not unchanged else UNCONFIRMED)
        rule = services.moderation.save_rule(ctx.who, cmd)
    except DomainError as exc:
        return _rule_refused(ctx, exc)
    return Redirect(f"/console/rules?notice=saved#rule-{rule.rule_id}")


# ---- the queue --------------------------------------------------------------------------------
@console.page("/console")
def queue(ctx: Ctx) -> Html:
    """Escalated cases oldest first, with the refunds that need a person beside them. The filters
    are the API's (``GET /moderation/disputes``), read by the same rules; one it refuses (a typed
    or stale link) is said in words, with the way back to the whole queue."""
    try:
        return _queue(ctx)
    except InvalidInput as exc:
        if exc.code != "INVALID_QUERY":
            raise
        return Html("problem.html", {"title": "The queue cannot be filtered that way",
                                     "words": f"{exc.message}. Nothing was changed.",
                                     "back": ("/console/", "Show the whole queue, unfiltered")}, status=400)


def _queue(ctx: Ctx) -> Html:
    req = Request(identity=ctx.who, query={k: v for k, v in ctx.query.items() if v != ""},
                  declared=("overdue", "assigned", "reason", "cursor"))
    which = QueueFilter(overdue=req.flag("overdue"), assigned=req.choice("assigned", ASSIGNED_FILTERS),
                        reason=req.choice("reason", views.REASONS))
    services = container().services
    items, next_cursor = services.disputes.moderation_queue(ctx.who, which, PageRequest(QUEUE_PAGE, req.cursor()))
    now = _now()
    insights = container().services.moderation.insights(ctx.who)
    cases = [{**_mark(_dispute_view(ctx, d, insights), now), "order_total": d.dispute.order_total.to_dict()} for d in items]
    # The refunds needing a person page with their own cursor (GET /moderation/refunds's).
    refunds_cursor = ctx.query.get("refunds") or None
    orders, more_refunds = services.payments.needing_attention(ctx.who, QUEUE_PAGE, refunds_cursor)
    refunds = [refund_card(view, r) for view in (_order_view(ctx, o) for o in orders)
               for r in view["refunds"] if r["needs_attention"]]
    filters = {"overdue": req.query.get("overdue", ""), "assigned": which.assigned or "", "reason": which.reason or ""}
    return Html("queue.html", {"cases": cases, "next_cursor": next_cursor, "refunds": refunds, "now": now,
                               "filters": filters, "filter_query": urlencode({k: v for k, v in filters.items() if v}),
                               "reasons": views.REASONS, "notice": ctx.query.get("notice", ""),
                               "paged": bool(req.query.get("cursor")), "more_refunds": more_refunds,
                               "refunds_paged": bool(refunds_cursor)})


@console.page("/console/next", "POST")
def next_case(ctx: Ctx) -> Redirect:
    """Take the oldest case nobody holds (the API's ``POST /moderation/next``)."""
    dispute = container().services.disputes.next_case(ctx.who)
    if dispute is None:
        return Redirect("/console/?notice=none-left")
    return Redirect(f"/console/disputes/{dispute.dispute_id}?notice=claimed")


@console.page("/console/refunds/{order_id}/{refund_id}/retry", "POST")
def retry_refund(ctx: Ctx, order_id: str, refund_id: str) -> Redirect:
    container().services.payments.retry(ctx.who, order_id, refund_id)
    return Redirect("/console/?notice=retried")


# ---- a case -----------------------------------------------------------------------------------
def case_page(ctx: Ctx, dispute_id: str) -> Html:
    services, now = container().services, _now()
    found, insights = services.disputes.get(ctx.who, dispute_id), services.moderation.insights(ctx.who)
    dispute = _dispute_view(ctx, found, insights)
    # The standing's counts, read with it: too few orders for a rate are said as counts.
    standing = insights.sellers.get(found.dispute.seller_id)
    order = _order_view(ctx, services.orders.get(ctx.who, dispute["order_id"]))
    evidence = [views.evidence(e, now, links) for e, links in services.evidence.list(ctx.who, dispute_id)]
    messages, more_messages = services.messages.list(ctx.who, dispute_id, PageRequest(THREAD_PAGE, None))
    notes, more_notes = services.notes.list(ctx.who, dispute_id, PageRequest(THREAD_PAGE, None))
    images = frozenset(o for e in evidence for o in (origin(e["thumbnail_url"]), origin(e["download_url"])) if o)
    total: dict[str, Any] = order["total"]
    actions = {a["action"] for a in dispute["available_actions"]}
    return Html("case.html", {
        "d": dispute, "order": order, "evidence": evidence, "messages": [views.message(m) for m in messages],
        "more_messages": bool(more_messages), "notes": [views.note(n) for n in notes], "more_notes": bool(more_notes),
        "now": now, "me": ctx.who.sub, "actions": actions, "outcomes": OUTCOMES,
        "faults": FAULTS, "total_major": forms.major_units(total["amount"], total["currency"]),
        "exponent": forms.exponent(total["currency"]), "problem": None, "typed": {},
        "notice": ctx.query.get("notice", ""), "timeline": timeline_entries(dispute),
        "decision": decision_of(dispute),
        "seller_counts": {"orders": standing.orders, "defects": standing.defects} if standing else None,
    }, images=images)


@console.page("/console/disputes/{dispute_id}")
def case(ctx: Ctx, dispute_id: str) -> Html:
    return case_page(ctx, dispute_id)


@console.page("/console/disputes/{dispute_id}/messages", "POST")
def post_message(ctx: Ctx, dispute_id: str) -> Redirect:
    body = {"body": ctx.form.get("body", "")}
    validate(body, schemas.MESSAGE)
    container().services.messages.post(ctx.who, parse.command(c.PostMessage, body, dispute_id=dispute_id))
    return Redirect(f"/console/disputes/{dispute_id}?notice=message#messages")


@console.page("/console/disputes/{dispute_id}/notes", "POST")
def add_note(ctx: Ctx, dispute_id: str) -> Redirect:
    body = {"body": ctx.form.get("note", "")}
    validate(body, schemas.NOTE)
    container().services.notes.add(ctx.who, parse.command(c.AddNote, body, dispute_id=dispute_id))
    return Redirect(f"/console/disputes/{dispute_id}?notice=note#notes")


@console.page("/console/disputes/{dispute_id}/claim", "POST")
def claim(ctx: Ctx, dispute_id: str) -> Redirect:
    container().services.disputes.claim(ctx.who, ClaimCase(dispute_id))
    return Redirect(f"/console/disputes/{dispute_id}?notice=claimed")


@console.page("/console/disputes/{dispute_id}/release", "POST")
def release(ctx: Ctx, dispute_id: str) -> Redirect:
    container().services.disputes.release(ctx.who, ReleaseCase(dispute_id))
    return Redirect(f"/console/disputes/{dispute_id}?notice=released")


def _decision(ctx: Ctx, dispute_id: str) -> tuple[Decide, dict[str, Any], Money]:
    """The decision form as the API's decision command, checked as the route checks it, and the
    partial amount against the order total (the domain's rule) before anyone confirms."""
    services = container().services
    shown = services.disputes.get(ctx.who, dispute_id)
    dispute = shown.dispute
    _require_undecided(ctx, shown)
    # Refused now, in the order and for the reason the decision itself would be: a party (403),
    # another moderator's claim (409 CASE_CLAIMED), a case no longer escalated (409), the body (400),
    # the amount (422).
    actor = dispute.actor_for(ctx.who.sub, ctx.who.is_moderator)
    assert actor is not None, "disputes.get returned it: the caller sees it"
    Dispute.authorize(Command.DECIDE, actor)
    dispute.require_not_held_by_other(ctx.who.sub, _now())
    if "decide" not in {a["action"] for a in _dispute_view(ctx, shown)["available_actions"]}:
        raise Conflict("this case cannot be decided now", code="INVALID_STATE",
                       details={"status": dispute.status.value})
    total = dispute.order_total
    body = forms.decision_body(ctx.form, total.currency)
    validate(body, schemas.DECISION)
    cmd = parse.command(Decide, body, dispute_id=dispute_id)
    if cmd.amount is not None:
        cmd.amount.require_partial_of(total)
    return cmd, body, total


class AlreadyYours(Exception):
    """The same moderator sent the same decision again (a double click, a resubmitted page)."""


def _require_undecided(ctx: Ctx, dispute: DisputeView) -> None:
    """A case decided already: the same decision again from the one who made it is that decision
    (AlreadyYours); anyone else's, or another outcome, is refused saying who decided and when."""
    if dispute.status.value == "ESCALATED":
        return
    decided = decision_of(_dispute_view(ctx, dispute))
    if decided is None:
        return  # not decided, only not escalated: the usual refusal follows
    if decided["moderator_id"] == ctx.who.sub and decided["outcome"] == ctx.form.get("outcome"):
        raise AlreadyYours
    raise Conflict(f"this case was already decided by {decided['by']} at {_clock(decided['decided_at'])}",
                   code="INVALID_STATE", details={"status": dispute.status.value, "decided_by": decided["by"],
                                                  "decided_at": decided["decided_at"]})


@console.page("/console/disputes/{dispute_id}/decision", "POST")
def review_decision(ctx: Ctx, dispute_id: str) -> Html | Redirect:
    """Step one: the decision repeated in plain words, with one button to confirm it. From the
    confirmation, ``back`` returns to the case with the decision's fields as typed (nothing sent)."""
    if ctx.form.get("back"):
        page = case_page(ctx, dispute_id)
        page.values["typed"] = {k: ctx.form.get(k, "") for k in ("outcome", "amount", "fault", "rationale")}
        return page
    try:
        cmd, body, total = _decision(ctx, dispute_id)
    except AlreadyYours:
        return Redirect(f"/console/disputes/{dispute_id}?notice=decided")
    amount = cmd.amount or (total if cmd.outcome in views.FULL_REFUNDS else None)
    return Html("confirm.html", {
        "dispute_id": dispute_id, "outcome": cmd.outcome.value, "rationale": cmd.rationale,
        "fault": ctx.form.get("fault", ""), "fault_shown": (cmd.fault or default_fault(cmd.outcome)).value,
        "typed_amount": ctx.form.get("amount", "") if cmd.amount else "",
        "amount": None if amount is None else f"{forms.major_units(amount.amount, amount.currency)} {amount.currency}",
        "expected_version": body.get("expected_version", ""),
        "total": f"{forms.major_units(total.amount, total.currency)} {total.currency}",
        "rest": None if cmd.amount is None else
        f"{forms.major_units(total.amount - cmd.amount.amount, total.currency)} {total.currency}",
    })


@console.page("/console/disputes/{dispute_id}/decision/confirm", "POST")
def confirm_decision(ctx: Ctx, dispute_id: str) -> Redirect:
    """Step two: the same decision, sent to the same use case as the API's decision route."""
    try:
        cmd, _, _ = _decision(ctx, dispute_id)
    except AlreadyYours:  # a double click or a resubmitted confirmation: the decision is made
        return Redirect(f"/console/disputes/{dispute_id}?notice=decided")
    try:
        container().services.disputes.decide(ctx.who, cmd)
    except DomainError:
        # Two clicks at once: the first decided while this one was on its way.
        try:
            _require_undecided(ctx, container().services.disputes.get(ctx.who, dispute_id))
        except AlreadyYours:
            return Redirect(f"/console/disputes/{dispute_id}?notice=decided")
        raise
    return Redirect(f"/console/disputes/{dispute_id}?notice=decided")


# ---- the one static script and style sheet -------------------------------------------------------
@blueprint.route("/console/static/{name}", methods=["GET"])
def static(name: str) -> Response:
    found = static_file(name)
    if found is None or container().sessions is None:
        return route_not_found()
    text, kind = found
    return Response(body=text, status_code=200, headers={**security_headers(), "Content-Type": kind,
                                                         "Cache-Control": "no-cache"})


__all__ = ["blueprint"]
