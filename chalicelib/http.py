"""The HTTP edge: authentication, body parsing and validation, Idempotency-Key, error mapping and
request logging, wrapped once around every route. Errors become the API's error body here only."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, cast

import fastjsonschema
from chalice.app import Chalice, Response

from .domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
    sent_code,
)
from .domain.identity import Identity
from .logs import logger, start_invocation
from .ports import PaymentUnavailable
from .schemas import ID, TIMESTAMP

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


_validators: dict[int, Callable[[Any], Any]] = {}


class IdempotencyStoreUnavailable(Exception):
    """The Idempotency-Key store cannot be read or written: 503, the client tries again."""


def _validator(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """The schema compiled once per process. (fastjsonschema is the engine of Powertools'
    validation utility, whose ``validate`` compiles the schema again on every call: ~6 ms.)"""
    compiled = _validators.get(id(schema))
    if compiled is None:
        compiled = _validators[id(schema)] = fastjsonschema.compile(schema)
    return compiled


def _require_unicode(value: Any, path: str = "body") -> None:
    """JSON lets a string carry half a surrogate pair ("\\ud800"); it is not text, and nothing
    downstream (DynamoDB, the response) can encode it: refused here, naming the field."""
    pending = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                pending += [(key, where), (child, f"{where}.{key}" if isinstance(key, str) else where)]
        elif isinstance(item, list):
            pending += [(child, f"{where}[{i}]") for i, child in enumerate(item)]
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInput(f"{where.removeprefix('body.')} is not valid Unicode text", code="INVALID_TEXT",
                                   details={"field": where.removeprefix("body.")}) from exc


_LISTED = re.compile(r"[\[{](.*)[\]}]")
# What a pattern of chalicelib/schemas.py asks for, in words.
PATTERNS: dict[str, str] = {
    "\\S": "must not be blank",
    str(ID["pattern"]): "may contain only letters, digits and . _ : @ | -",
    "^[A-Z]{3}$": "must be three capital letters (an ISO 4217 currency code)",
    "^[A-Za-z0-9_]+$": "may contain only letters, digits and _",
    "^[^/\\\\\\x00-\\x1f]+$": "must not contain /, \\ or control characters",
    str(TIMESTAMP["pattern"]): "must be an RFC 3339 timestamp with a zone, e.g. 2026-11-23T10:00:00Z",
}
TYPES = {"string": "a string", "integer": "a whole number", "number": "a number", "object": "an object",
         "array": "a list", "boolean": "true or false", "null": "null"}


def _plural(n: Any, one: str) -> str:
    return f"{n} {one}{'' if n == 1 else 's'}"


def _rule_in_words(rule: str | None, value: Any) -> str:
    """One phrasing per JSON-schema rule kind (``value`` is the rule's value in the schema)."""
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(TYPES.get(str(k), str(k)) for k in kinds)
    if rule == "pattern":
        return PATTERNS.get(str(value), "is not in the expected format")
    if rule == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {_plural(value, 'character')} long"
    if rule == "maxLength":
        return f"must be at most {_plural(value, 'character')} long"
    if rule == "minimum":
        return f"must be at least {value}"
    if rule == "maximum":
        return f"must be at most {value}"
    if rule == "exclusiveMinimum":
        return f"must be more than {value}"
    if rule == "exclusiveMaximum":
        return f"must be less than {value}"
    if rule == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {_plural(value, 'item')}"
    if rule == "maxItems":
        return f"must have at most {_plural(value, 'item')}"
    if rule == "uniqueItems":
        return "must not repeat an item"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in value)
    if rule == "const":
        return f"must be {value}"
    if rule == "format":
        return f"must be a valid {value}"
    if rule in ("minProperties", "maxProperties"):
        return f"must have {'at least' if rule == 'minProperties' else 'at most'} {_plural(value, 'field')}"
    return "is not valid"


def plain(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """The validator's complaint in plain words and the field it is about, with its path
    (``items[0].quantity``), never the validator's own vocabulary (``data.items[0].quantity must
    be bigger than or equal to 1``)."""
    where = (exc.name or "data").removeprefix("data").lstrip(".")
    listed = _LISTED.search(exc.message or "")
    names = [n.strip(" '\"") for n in listed.group(1).split(",")] if listed else []
    if exc.rule in ("additionalProperties", "required") and names:
        fields = [".".join(filter(None, (where, name))) for name in names]
        what = "unknown" if exc.rule == "additionalProperties" else "missing required"
        return f"{what} field{'s' if len(fields) > 1 else ''}: {', '.join(fields)}", fields[0]
    return f"{where or 'the body'} {_rule_in_words(exc.rule, exc.rule_definition)}", where or "body"


def validate(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """A request body against its route's schema (chalicelib/schemas.py), or 400 VALIDATION_ERROR
    in plain words. The console's forms are checked with the same schemas."""
    try:
        _validator(schema)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        message, field_name = plain(exc)
        raise InvalidInput(message, code="VALIDATION_ERROR", details={"field": field_name, "rule": exc.rule}) from exc


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


# Path parameters are ids of this API (chalicelib/schemas.py ID); any other value names nothing,
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
              query: tuple[str, ...] = ()) -> Callable[[Callable[..., Reply]], Callable[..., Response]]:
        """``query``: the query parameters the route takes (openapi.yaml lists the same); any
        other is 400 INVALID_QUERY."""
        assert public or not raw, "a raw route verifies its caller itself: it must be public"

        def register(handler: Callable[..., Reply]) -> Callable[..., Response]:
            @functools.wraps(handler)
            def view(**params: str) -> Response:
                return self._handle(path, method, schema, public, handler, params, raw, query)

            view.body_schema = schema  # type: ignore[attr-defined]  # read by the OpenAPI test
            view.query_parameters = query  # type: ignore[attr-defined]  # read by the OpenAPI test
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
        _require_unicode(body)
        if schema is not None:
            validate(body, schema)
        return body

    @staticmethod
    def _json(status: int, payload: Any) -> Response:
        logger.info("response", status=status)
        if status == 204:  # No Content: no body at all
            return Response(body="", status_code=204)
        return Response(payload, status_code=status, headers={"Content-Type": "application/json"})
