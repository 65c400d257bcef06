"""The console's edge, wrapped once around every page as chalicelib/api/routing.py is around every JSON
route: the session (who), the CSRF token on every POST, ids checked, errors turned into a page in
plain words, and the security headers on every answer. Handlers only call the use cases and say
which template to render; they never see a cookie."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, unquote, urlencode, urlsplit

from chalice.app import Blueprint, Response

from ..api.routing import require_ids, route_not_found
from ..domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, RuleViolation, Unauthenticated
from ..domain.identity import Identity
from ..logs import logger, start_invocation
from . import forms
from .session import FORM_COOKIE, NEXT_COOKIE, SESSION_COOKIE, Session, Sessions, cookies, same_token

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
FORM = "application/x-www-form-urlencoded"
STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, 400), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
    (RuleViolation, 422),
)


@functools.cache
def templates() -> Environment:
    """Jinja2 with autoescape on for every template: what a party wrote is always text. Loaded on
    the first page (a timer or the evidence function never imports it)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["major"] = forms.major_units
    return env


# Where sign-in may send a moderator back to: a console path and its query, nothing else (no scheme,
# no host, no //, no backslash, no dot segment, no sign-in page itself).
NEXT_PATH = re.compile(r"/console/[A-Za-z0-9_\-/.]*(\?[A-Za-z0-9_\-.=&%+]*)?")
NOT_NEXT = ("/console/sign-in", "/console/login", "/console/callback", "/console/sign-out", "/console/signed-out")


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a console page to go back to after signing in, else None."""
    if not value or len(value) > 512 or not NEXT_PATH.fullmatch(value):
        return None
    path = value.split("?", 1)[0]
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")) or path.startswith(NOT_NEXT):
        return None
    return value


def next_cookie(sessions: Sessions, value: str, base: str) -> str:
    """The page asked for, kept across the sign-in (Lax: a link from elsewhere is the usual start)."""
    return sessions.cookie(NEXT_COOKIE, quote(value, safe=""), max_age=900, same_site="Lax", base=base)


def asked_for(ctx: Ctx) -> str | None:
    """The page to land on after signing in: ``?next=`` or the one the sign-in redirect kept."""
    return safe_next(ctx.query.get("next")) or safe_next(unquote(ctx.cookies.get(NEXT_COOKIE, "")))


def origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a link, for the CSP's img-src."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(image_origins: frozenset[str] = frozenset(), form_targets: frozenset[str] = frozenset()
                     ) -> dict[str, str]:
    """No inline script, no eval, nothing framed; images only from the evidence links' origins."""
    images = " ".join(sorted(image_origins)) or "'none'"
    forms_to = " ".join(["'self'", *sorted(form_targets)])
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; "
           f"img-src {images}; form-action {forms_to}; frame-ancestors 'none'; base-uri 'none'")
    return {"Content-Security-Policy": csp, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
            "Cross-Origin-Opener-Policy": "same-origin"}


@dataclass
class Html:
    """A page to render: a template, its values, and the status."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    images: frozenset[str] = frozenset()  # origins the page shows images from (evidence links)
    cookies: list[str] = field(default_factory=list)


@dataclass
class Redirect:
    """POST-redirect-GET: 303 to a console path (or an outside address: the hosted UI)."""

    to: str
    cookies: list[str] = field(default_factory=list)
    outside: bool = False


Answer = Html | Redirect


@dataclass
class Ctx:
    """What a page handler sees."""

    session: Session | None
    form: dict[str, str]
    query: dict[str, str]
    base: str  # the path prefix of the API's stage ("" locally, "/api" on API Gateway's own URL)
    host: str
    cookies: dict[str, str] = field(default_factory=dict)  # only the sign-in reads one itself

    @property
    def who(self) -> Identity:
        assert self.session is not None, "signed-in pages only"
        return self.session.identity


@dataclass
class Console:
    """Registers the console's pages on a blueprint with the edge behaviour around them."""

    blueprint: Blueprint
    sessions: Callable[[], Sessions | None]  # None: the console is not configured in this stage
    sign_in_path: Callable[[], str | None]  # where an anonymous visitor is sent; None: nowhere
    form_targets: Callable[[], frozenset[str]] = lambda: frozenset()
    error_page: Callable[[Ctx, DomainError, dict[str, str]], Html | None] = lambda ctx, exc, params: None

    def page(self, path: str, method: str = "GET", signed_in: bool = True, available: Callable[[], bool] = lambda: True
             ) -> Callable[[Callable[..., Answer]], Callable[..., Response]]:
        def register(handler: Callable[..., Answer]) -> Callable[..., Response]:
            @functools.wraps(handler)
            def view(**params: str) -> Response:
                return self._handle(path, method, signed_in, available, handler, params)

            types = [FORM] if method == "POST" else ["*/*"]
            self.blueprint.route(path, methods=[method], content_types=types)(view)
            return view

        return register

    def _handle(self, path: str, method: str, signed_in: bool, available: Callable[[], bool],
                handler: Callable[..., Answer], params: dict[str, str]) -> Response:
        request = self.blueprint.current_request
        start_invocation(method=method, route=path, **{k: v for k, v in params.items() if k.endswith("_id")})
        sessions = self.sessions()
        if sessions is None or not available():
            return route_not_found()  # as any unknown route answers
        jar = cookies(request.headers.get("cookie"))
        session = sessions.read(jar.get(SESSION_COOKIE))
        ctx = Ctx(session=session, form={}, query=dict(request.query_params or {}), base=_stage_prefix(request),
                  host=str(request.headers.get("host") or ""), cookies=jar)
        if session is not None:
            logger.append_keys(caller=session.sub)
        try:
            if signed_in and session is None:
                return self._respond(ctx, self._to_sign_in(ctx, _wanted(path, method, params, ctx.query), sessions))
            if method == "POST":
                ctx.form = forms.parse(cast(bytes | None, request.raw_body))
                expected = session.csrf if signed_in and session is not None else jar.get(FORM_COOKIE, "")
                if not same_token(expected, ctx.form.get("csrf_token")):
                    return self._respond(ctx, Html("problem.html", {
                        "title": "This form has expired",
                        "words": "Nothing was changed. Reload the page and send the form again."}, status=403))
            require_ids(params)
            return self._respond(ctx, handler(ctx, **params))
        except DomainError as exc:
            logger.info("refused", code=exc.code)
            status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
            page = self.error_page(ctx, exc, params) if ctx.session is not None else None
            if page is None:
                page = Html("problem.html", {"title": "That did not work", "words": exc.message, "code": exc.code})
            page.status = status
            return self._respond(ctx, page)
        except Exception:  # noqa: BLE001 - the page's one place an unexpected failure becomes a 500
            logger.exception("unhandled error in the console")
            return self._respond(ctx, Html("problem.html", {"title": "Something went wrong on our side",
                                                            "words": "Nothing was changed. Try again shortly."},
                                           status=500))

    def _to_sign_in(self, ctx: Ctx, wanted: str | None, sessions: Sessions) -> Answer:
        target = self.sign_in_path()
        if target is None:
            return Html("problem.html", {"title": "Sign-in is not configured",
                                         "words": "This stage has no way to sign in to the console."}, status=401)
        kept = [next_cookie(sessions, wanted, ctx.base)] if wanted else []
        return Redirect(target, cookies=kept)

    def _respond(self, ctx: Ctx, answer: Answer) -> Response:
        headers: dict[str, Any] = security_headers(getattr(answer, "images", frozenset()), self.form_targets())
        if answer.cookies:
            headers["Set-Cookie"] = answer.cookies if len(answer.cookies) > 1 else answer.cookies[0]
        if isinstance(answer, Redirect):
            headers["Location"] = answer.to if answer.outside else ctx.base + answer.to
            headers["Content-Type"] = "text/html; charset=utf-8"
            logger.info("response", status=303)
            return Response(body="", status_code=303, headers=headers)
        values = {**answer.values, "base": ctx.base, "session": ctx.session,
                  "csrf_token": ctx.session.csrf if ctx.session is not None else answer.values.get("csrf_token", "")}
        body = templates().get_template(answer.template).render(**values)
        headers["Content-Type"] = "text/html; charset=utf-8"
        logger.info("response", status=answer.status)
        return Response(body=body, status_code=answer.status, headers=headers)


def _wanted(path: str, method: str, params: dict[str, str], query: dict[str, str]) -> str | None:
    """The page to come back to after signing in: the page itself for a GET; for a form
    (its text is not kept), the case it was sent from, or the queue."""
    if method != "GET":
        return safe_next("/console/disputes/" + quote(params["dispute_id"], safe="")) if "dispute_id" in params else None
    here = path
    for name, value in params.items():
        here = here.replace("{" + name + "}", quote(value, safe=""))
    if query:
        here += "?" + urlencode(query)
    here = here if here.startswith("/console/") else here.replace("/console", "/console/", 1)
    return None if here == "/console/" else safe_next(here)


def _stage_prefix(request: Any) -> str:
    """API Gateway's own URL puts the stage before the route (``/api/console``); the context's
    ``path`` has it, the route does not. Locally, and behind a custom domain, it is empty."""
    context = getattr(request, "context", None) or {}
    full, resource = str(context.get("path") or ""), str(context.get("resourcePath") or "")
    for name, value in (getattr(request, "uri_params", None) or {}).items():
        resource = resource.replace("{" + name + "}", value)
    full = full.rstrip("/") or "/"
    if resource and full.endswith(resource) and full != resource:
        return full[: -len(resource)]
    return ""


def static_file(name: str) -> tuple[str, str] | None:
    """(text, content type) of one of the console's own static files, or None."""
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    target = HERE / "static" / name
    if "/" in name or target.suffix not in kinds or not target.is_file():
        return None
    return _read(str(target)), kinds[target.suffix]


@functools.cache
def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")
