"""The local HTTP server: Chalice's own, with every answer it gives itself in this API's error
shape, as the deployed API Gateway gives them (infra/resources.py GATEWAY_RESPONSES): an unknown
path is 404 ROUTE_NOT_FOUND (Chalice's emulation answers 403 and echoes the Authorization header
back), any method http.server does not know 405 METHOD_NOT_ALLOWED (never a 501), and a HEAD
answer never carries a body; a malformed request gets JSON, not http.server's HTML page. (A known
path with another method reaches the app, which answers 405 itself: chalicelib/http.py.)"""
from __future__ import annotations

import json
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGatewayException,
)

from chalicelib.http import error_body


class RequestHandler(ChaliceRequestHandler):
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the body
    # back ~40 ms on every response (an artefact of the local server, not of the service).
    disable_nagle_algorithm = True

    def _framing_refused(self) -> bool:
        """A body this server cannot delimit for sure (chunked, two lengths, a length that is no
        number) is refused and the connection closed: read wrongly, its rest would be taken for
        the next request on the connection (request smuggling)."""
        lengths = self.headers.get_all("Content-Length") or []
        if "Transfer-Encoding" in self.headers or len(lengths) > 1 or any(not v.strip().isdigit() for v in lengths):
            self.send_error(400)
            return True
        return False

    def _generic_handle(self) -> None:
        if not self._framing_refused():
            super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _method_not_allowed(self) -> None:
        if self._framing_refused():
            return
        self._parse_payload()  # read the body: left unread, it would be taken for the next request
        self._send_http_response(405, {}, _json(error_body("METHOD_NOT_ALLOWED", f"{self.command} is not supported")))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or header), as API Gateway's are
        answered: JSON in the API's shape, never HTML; the connection is closed after."""
        self.close_connection = True
        body = _json(error_body("REQUEST_REFUSED", f"the HTTP request is malformed ({code})"))
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        if isinstance(error, ForbiddenError):  # the local gateway's "no route matches this path"
            self._send_http_response(404, {}, _json(error_body("ROUTE_NOT_FOUND", "no route has this method and path")))
        else:
            super()._send_error_response(error)

    def _send_http_response(self, code: int, headers: Any, body: str | bytes | None) -> None:
        if self.command == "HEAD":
            headers.pop("Content-Type", None)
            body = None  # a HEAD answer has no body: one would be read as the next response
        super()._send_http_response(code, headers, body)

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 to any method without a do_<METHOD>; every other method
        # (TRACE, CONNECT, QUERY, ...) gets a 405 here instead.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def create_server(app: Chalice, config: Config, host: str, port: int) -> Any:
    """What chalice.local.create_local_server does, with the handler above."""
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler)
