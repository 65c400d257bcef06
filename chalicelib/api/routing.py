"""The HTTP edge: authentication, body parsing and validation, Idempotency-Key, error mapping and
request logging, wrapped once around every route. Errors become the API's error body here only."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping, TypeVar, cast

from chalice.app import Chalice, Response

from ..domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
    sent_code,
)
from ..domain.identity import Identity
from ..logs import logger, start_invocation
from ..ports import PaymentUnavailable
from . import requests
from .schemas import ID
from .validation import require_unicode, validate

T = TypeVar("T")
STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, 400), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
    (RuleViolation, 422),
)
MAX_BODY_BYTES = 64 * 1024
ACCEPTED_CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain"]
MAX_IDEMPOTENCY_KEY = 255
# An Idempotency-Key is printable ASCII (a header value; UUIDs, ULIDs): openapi.yaml states this pattern.
IDEMPOTENCY_KEY_PATTERN = "^[\\x20-\\x7E]+$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class IdempotencyStoreUnavailable(Exception):
    """The Idempotency-Key store cannot be read or written: 503, the client tries again."""


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": sent_code(code), "message": message, "details": dict(details or {})}}


# What an unknown route answers, here and in the local server, as API Gateway does when deployed.
ROUTE_NOT_FOUND_MESSAGE = "no route has this method and path"


def route_not_found() -> Response:
    return Response(error_body("ROUTE_NOT_FOUND", ROUTE_NOT_FOUND_MESSAGE), status_code=404,
                    headers={"Content-Type": "application/json"})


def error_response(exc: DomainError) -> Response:
    status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
    try:
        body = error_body(exc.code, exc.message, exc.details)
    except ValueError:  # a code the domain keeps to itself (errors.INTERNAL_CODES) reached the edge: a bug
        logger.exception("internal code reached the edge", code=exc.code)
        return Response(error_body("INTERNAL_ERROR", "something went wrong on our side"), status_code=500,
                        headers={"Content-Type": "application/json"})
    return Response(body, status_code=status, headers={"Content-Type": "application/json"})


# Path parameters are ids of this API (api/schemas.py ID); any other value names nothing,
# and never reaches a store (DynamoDB refuses an empty key, or one over 2048 bytes).
PATH_ID = re.compile(str(ID["pattern"]).removesuffix("$").removesuffix("+") + f"{{{ID['minLength']},{ID['maxLength']}}}$")
NOT_FOUND_BY_PARAMETER = {"order_id": ("ORDER_NOT_FOUND", "no such order"),
                          "dispute_id": ("DISPUTE_NOT_FOUND", "no such dispute"),
                          "offer_id": ("OFFER_NOT_FOUND", "no such offer on this dispute"),
                          "refund_id": ("REFUND_NOT_FOUND", "no such refund"),
                          "seller_id": ("SELLER_NOT_FOUND", "no such seller"),
                          "buyer_id": ("BUYER_NOT_FOUND", "no such buyer"),
                          "rule_id": ("RULE_NOT_FOUND", "no such rule")}


def require_ids(params: Mapping[str, str]) -> None:
    """404, as for an id that does not exist, for a path parameter no id can have."""
    for name, value in params.items():
        if not (isinstance(value, str) and PATH_ID.fullmatch(value)):
            code, message = NOT_FOUND_BY_PARAMETER[name]
            raise NotFound(message, code=code)


def require_known_query(query: Mapping[str, Any], declared: tuple[str, ...]) -> None:
    """400 INVALID_QUERY for a query parameter the route does not take (a typo, ``?filter=``
    instead of ``?status=``): silently ignoring it would answer another question than the one asked."""
    unknown = sorted(set(query) - set(declared))
    if unknown:
        allowed = f"; this route takes {', '.join(declared)}" if declared else "; this route takes none"
        raise InvalidInput(f"unknown query parameter: {unknown[0]}{allowed}", code="INVALID_QUERY",
                           details={"parameter": unknown[0], "allowed": list(declared)})


@dataclass
class Request:
    """What a route handler sees: who calls, the validated body and the query string (only the
    parameters its route declares: the edge refused any other)."""

    identity: Identity
    body: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    declared: tuple[str, ...] = ()

    def command(self, cls: type[T], **ids: str) -> T:
        """The body as the typed command ``cls``, with the path's ``ids`` (api/requests.py)."""
        return requests.command(cls, self.body, **ids)

    def _get(self, name: str, default: str | None = None) -> str | None:
        assert name in self.declared, f"?{name} is read but not declared on its route (Api.route query=...)"
        return self.query.get(name, default)

    def limit(self) -> int:
        raw = self._get("limit") or "20"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
            # A malformed value, not an unknown one: the code it has always had.
            raise InvalidInput("limit must be an integer from 1 to 100", details={"parameter": "limit"})
        return int(raw)

    def cursor(self) -> str | None:
        return self._get("cursor") or None

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
        value = self._get(name, default)
        if value is not None and value not in allowed:
            raise InvalidInput(f"{name} must be one of {', '.join(allowed)}", code="INVALID_QUERY",
                               details={"parameter": name, "allowed": list(allowed)})
        return value

    def role(self) -> str:
        """``?role=buyer|seller``: which side of the caller's orders or disputes to list."""
        return self.choice("role", ("buyer", "seller"), "buyer") or "buyer"

    def flag(self, name: str) -> bool | None:
        """``?name=true|false``; None when absent."""
        value = self.choice(name, ("true", "false"))
        return None if value is None else value == "true"


@dataclass
class RawRequest:
    """What a public route that verifies its own caller (a provider's signed webhook) sees."""

    body: bytes
    headers: dict[str, str]


Reply = tuple[int, Any]
IdempotentRunner = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """An action an app offers (``available_actions``): the route that performs it. Declared once,
    by the route itself (``Api.route(..., action=...)``); its name is the handler's name."""

    name: str
    method: str
    path: str
    schema: dict[str, Any] | None

    @property
    def required(self) -> list[str]:
        """The body fields a request must carry: the schema's own ``required`` list."""
        return list((self.schema or {}).get("required", []))


# What the access rules list (a command of a domain transition table, or an access grant) -> the
# route that performs it. Filled as app.py declares its routes: the one place an action is named.
ACTIONS: dict[Enum, Action] = {}


def action_for(key: Enum) -> Action:
    try:
        return ACTIONS[key]
    except KeyError:
        raise LookupError(f"no route declares {key!r} as its action (app.py declares them on import)") from None


SANDBOX_PREFIX = "/sandbox/"
# GET routes have no body: any Content-Type passes (Chalice checks it on every method otherwise).
ANY_CONTENT_TYPE = ["*/*"]

# The answers Chalice gives itself before a view runs, as this API's errors.
CHALICE_ERRORS = {"MethodNotAllowedError": "METHOD_NOT_ALLOWED", "UnsupportedMediaType": "UNSUPPORTED_CONTENT_TYPE"}


def _in_error_shape(request: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(request)
    return _chalice_error_in_shape(request, response)


def _chalice_error_in_shape(request: Any, response: Response) -> Response:
    body = response.body
    if not (isinstance(body, dict) and body.get("Code") in CHALICE_ERRORS):
        return response
    headers: dict[str, Any] = {**(response.headers or {}), "Content-Type": "application/json"}
    if body["Code"] == "MethodNotAllowedError":
        allowed = [m.strip() for m in str(headers.get("Allow", "")).split(",") if m.strip()]
        payload = error_body("METHOD_NOT_ALLOWED", f"{request.method} is not supported here; use {', '.join(allowed)}",
                             {"allowed": allowed})
    else:
        payload = error_body("UNSUPPORTED_CONTENT_TYPE", "send a JSON body", {"allowed": ACCEPTED_CONTENT_TYPES})
    return Response(payload, status_code=response.status_code, headers=headers)


class Api:
    """Registers routes on the Chalice app with the API's edge behaviour (openapi.yaml) around them."""

    def __init__(self, app: Chalice, verifier: Callable[[], Any], idempotent: Callable[[], IdempotentRunner],
                 idempotency_config: Callable[[], Any], sandbox: Callable[[], bool] = lambda: False):
        self.app = app
        self._verifier = verifier
        self._idempotent = idempotent
        self._idempotency_config = idempotency_config
        self._sandbox = sandbox
        app.register_middleware(self._edge, "http")

    def _edge(self, request: Any, get_response: Callable[[Any], Response]) -> Response:
        """Before anything else (method, token, content type, body): without a sandbox, its routes
        answer exactly as an unknown route does."""
        resource = str((getattr(request, "context", None) or {}).get("resourcePath") or "")
        if resource.startswith(SANDBOX_PREFIX) and not self._sandbox():
            return route_not_found()
        return _in_error_shape(request, get_response)

    def route(self, path: str, method: str = "GET", schema: dict[str, Any] | None = None,
              public: bool = False, raw: bool = False,
              query: tuple[str, ...] = (),
              action: Enum | tuple[Enum, ...] = ()) -> Callable[[Callable[..., Reply]], Callable[..., Response]]:
        """``query``: the query parameters the route takes (openapi.yaml lists the same); any
        other is 400 INVALID_QUERY. ``action``: what the access rules call what this route does
        (a command of a transition table, or an access grant): the route becomes the action an app
        is offered for it, named after its handler."""
        assert public or not raw, "a raw route verifies its caller itself: it must be public"
        keys = action if isinstance(action, tuple) else (action,)

        def register(handler: Callable[..., Reply]) -> Callable[..., Response]:
            for key in keys:
                assert key not in ACTIONS, f"{key} is already the action of {ACTIONS[key].name}"
                ACTIONS[key] = Action(handler.__name__, method, path, schema)
            @functools.wraps(handler)
            def view(**params: str) -> Response:
                return self._handle(path, method, schema, public, handler, params, raw, query)

            view.body_schema = schema  # type: ignore[attr-defined]  # read by the OpenAPI test
            view.query_parameters = query  # type: ignore[attr-defined]  # read by the OpenAPI test
            view.actions = keys  # type: ignore[attr-defined]  # read by the tests of available_actions
            # JSON is parsed whatever Content-Type says (curl's default is form-encoded), so the
            # apps get this API's error body rather than API Gateway's bare 415.
            content_types = ANY_CONTENT_TYPE if method in ("GET", "HEAD") else ACCEPTED_CONTENT_TYPES
            self.app.route(path, methods=[method], content_types=content_types)(view)
            return view

        return register

    def _handle(self, path: str, method: str, schema: dict[str, Any] | None, public: bool,
                handler: Callable[..., Reply], params: dict[str, str], raw: bool = False,
                declared: tuple[str, ...] = ()) -> Response:
        request = self.app.current_request
        assert request is not None, "Chalice sets the request before calling a route"
        start_invocation(method=method, route=path, **{k: v for k, v in params.items() if k.endswith("_id")})
        try:
            if raw:  # no bearer token: the handler verifies the body's signature itself
                raw_body = cast(bytes | None, request.raw_body) or b""
                if len(raw_body) > MAX_BODY_BYTES:
                    raise InvalidInput("request body is too large", code="BODY_TOO_LARGE",
                                       details={"max_bytes": MAX_BODY_BYTES})
                require_ids(params)
                require_known_query(request.query_params or {}, declared)
                status, payload = handler(RawRequest(raw_body, {k.lower(): v for k, v in request.headers.items()}),
                                          **params)
                return self._json(status, payload)
            if public:
                require_ids(params)
                require_known_query(request.query_params or {}, declared)
                status, payload = handler(**params)
                return self._json(status, payload)
            identity = self._verifier().verify(request.headers.get("authorization"))
            logger.append_keys(caller=identity.sub)
            require_ids(params)
            query = dict(request.query_params or {})
            require_known_query(query, declared)
            body = self._body(cast(bytes | None, request.raw_body), schema) if method in ("POST", "PUT") else {}
            req = Request(identity=identity, body=body, query=query, declared=declared)
            key = request.headers.get("idempotency-key")
            if method == "POST" and key:
                return self._idempotently(identity, path, params, key, body, lambda: handler(req, **params))
            status, payload = handler(req, **params)
            return self._json(status, payload)
        except DomainError as exc:
            logger.info("refused", code=exc.code)
            return error_response(exc)
        except IdempotencyStoreUnavailable:
            logger.exception("idempotency store failed")
            return self._json(503, error_body("SERVICE_UNAVAILABLE", "try again shortly"))
        except PaymentUnavailable:  # e.g. the provider's keys are unreadable: the provider sends it again
            logger.exception("payment provider unavailable")
            return self._json(503, error_body("SERVICE_UNAVAILABLE", "try again shortly"))
        except Exception:  # noqa: BLE001 - the one place an unexpected failure becomes a 500
            logger.exception("unhandled error")
            return self._json(500, error_body("INTERNAL_ERROR", "something went wrong on our side"))

    def _idempotently(self, who: Identity, path: str, params: dict[str, str], key: str, body: dict[str, Any],
                      run: Callable[[], Reply]) -> Response:
        if len(key) > MAX_IDEMPOTENCY_KEY or not _IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidInput(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters",
                               details={"header": "Idempotency-Key"})

        def first_time() -> dict[str, Any]:
            status, payload = run()
            return {"status": status, "body": payload}

        context = getattr(self.app, "lambda_context", None)
        if context is not None:
            # Lets Powertools expire an in-progress record when this invocation times out.
            self._idempotency_config().register_lambda_context(context)
        scoped = {"sub": who.sub, "route": path, "params": params, "key": key, "body": body}
        # Powertools' idempotency loads with the first keyed request, not with every function.
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        try:
            stored = self._idempotent()(request=scoped, run=first_time)
        except IdempotencyValidationError as exc:
            raise Conflict("this Idempotency-Key was used with another request body",
                           code="IDEMPOTENCY_KEY_REUSED") from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise Conflict("a request with this Idempotency-Key is still in progress",
                           code="IDEMPOTENCY_KEY_IN_PROGRESS") from exc
        except IdempotencyPersistenceLayerError as exc:
            raise IdempotencyStoreUnavailable() from exc
        return self._json(stored["status"], stored["body"])

    @staticmethod
    def _body(raw: bytes | None, schema: dict[str, Any] | None) -> dict[str, Any]:
        if raw and len(raw) > MAX_BODY_BYTES:
            raise InvalidInput("request body is too large", code="BODY_TOO_LARGE",
                               details={"max_bytes": MAX_BODY_BYTES})
        if not raw or not raw.strip():
            body: Any = {}
        else:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise InvalidInput("request body is not valid JSON", code="MALFORMED_JSON") from exc
        if not isinstance(body, dict):
            raise InvalidInput("request body must be a JSON object", code="MALFORMED_JSON")
        require_unicode(body)
        if schema is not None:
            validate(body, schema)
        return body

    @staticmethod
    def _json(status: int, payload: Any) -> Response:
        logger.info("response", status=status)
        if status == 204:  # No Content: no body at all
            return Response(body="", status_code=204)
        return Response(payload, status_code=status, headers={"Content-Type": "application/json"})
