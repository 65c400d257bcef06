"""Every response a test receives is checked against openapi.yaml, strictly (openapi-core): the
document is what client generators and the apps' own contract tests read, so a field, a status
or a null it does not describe is a bug of the document or of the server."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

ROOT = Path(__file__).resolve().parents[1]
HOST = "http://127.0.0.1:8000"  # the document's server; only the path and method select the operation


class ContractViolation(AssertionError):
    pass


@functools.cache
def document() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


@functools.cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(document())


@functools.cache
def _error_validator() -> OAS30Validator:
    spec = document()
    return OAS30Validator({**spec["components"]["schemas"]["Error"], "components": spec["components"]})


def check(method: str, url: str, status: int, content_type: str | None, body: bytes) -> None:
    """Raise ContractViolation unless the response is one the document describes for this
    operation. A method and path the document has no operation for must answer in the error
    shape (unknown routes are part of the contract too)."""
    parts = urlsplit(url)
    if parts.path == "/console" or parts.path.startswith("/console/"):
        _check_console_page(method, url, status, content_type, body)
        return
    args = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    ctype = (content_type or "").split(";")[0].strip() or "application/json"
    request = MockRequest(HOST, method, parts.path, args=args)
    response = MockResponse(body, status_code=status, content_type=ctype)
    try:
        _openapi().validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        if method.upper() == "HEAD":
            if body:
                raise ContractViolation(f"HEAD {url} answered with a body") from None
            return
        try:
            _error_validator().validate(json.loads(body))
        except Exception as exc:
            raise ContractViolation(f"{method} {url} -> {status}: not in the error shape: {body[:300]!r}") from exc
    except Exception as exc:
        raise ContractViolation(f"{method} {url} -> {status}: {exc}\n{_cause(exc)}\nbody: {body[:600]!r}") from exc


def _check_console_page(method: str, url: str, status: int, content_type: str | None, body: bytes) -> None:
    """The console's pages (openapi.yaml x-console-pages): HTML, a 303 after a POST or to sign in,
    or an unknown route's 404 in the error shape; never a 5xx."""
    ctype = (content_type or "").split(";")[0].strip()
    if status == 404 and ctype == "application/json":
        _error_validator().validate(json.loads(body))
        return
    if status >= 500 or not (status == 303 or ctype in ("text/html", "text/css", "text/javascript")):
        raise ContractViolation(f"{method} {url} -> {status} {ctype}: not what a console page answers")


def _cause(exc: BaseException) -> str:
    seen: list[str] = []
    while exc is not None and len(seen) < 6:
        seen.append(f"{type(exc).__name__}: {exc}")
        for detail in getattr(exc, "schema_errors", ()) or ():
            seen.append(f"  - {getattr(detail, 'message', detail)} at {list(getattr(detail, 'path', []))}")
        exc = exc.__cause__  # type: ignore[assignment]
    return "\n".join(seen)


def checked_chalice_client(http: Any) -> Any:
    """Wrap chalice.test's HTTP client so that every response is checked."""
    request = http.request

    def checked(method: str, path: str, headers: dict[str, str] | None = None, body: bytes | str = b"") -> Any:
        response = request(method, path, headers=headers, body=body)
        ctype = {k.lower(): v for k, v in (response.headers or {}).items()}.get("content-type")
        check(method, path, response.status_code, ctype, response.body or b"")
        return response

    http.request = checked
    return http
