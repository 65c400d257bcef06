"""The local HTTP server: Chalice's own, with every answer it gives itself in this API's error
shape, as the deployed API Gateway gives them (infra/template/api.py GATEWAY_RESPONSES): an unknown
path is 404 ROUTE_NOT_FOUND (Chalice's emulation answers 403 and echoes the Authorization header
back), any method http.server does not know 405 METHOD_NOT_ALLOWED with Allow (never a 501), and
a malformed request gets JSON, not http.server's HTML page. A known path with another method reaches the app,
which answers 405 METHOD_NOT_ALLOWED with Allow itself (chalicelib/api/routing.py); OPTIONS too (no CORS
preflight: the API has no browser clients). HEAD is answered as GET, without the body. A chunked
request body is decoded (bounded); a body whose length is ambiguous is refused."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    ForbiddenError,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    RouteMatcher,
    ThreadedHTTPServer,
)

from chalicelib.api.routing import MAX_BODY_BYTES, ROUTE_NOT_FOUND_MESSAGE, error_body

MAX_CHUNK_LINE = 1024  # a chunk-size line (hex size and extensions) or a trailer line
MAX_TRAILERS = 32
HEX = frozenset(b"0123456789abcdefABCDEF")
# Connections the kernel queues before the server accepts them. http.server's default (5) reset
# 3 of 25 clients connecting at once; this is the usual SOMAXCONN (the kernel caps it anyway).
LISTEN_BACKLOG = 4096


class Server(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG


class Unreadable(Exception):
    """A request body that cannot be read as sent: answered, and the connection closed."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def malformed_chunk(what: str) -> Unreadable:
    return Unreadable(400, "REQUEST_REFUSED", f"the chunked body is malformed ({what})")


class Gateway(LocalGateway):
    def _has_user_defined_options_method(self, lambda_event: Any) -> bool:
        # No automatic CORS preflight: OPTIONS reaches the app, which answers it as any method the
        # path lacks (405 METHOD_NOT_ALLOWED with Allow).
        return True


class RequestHandler(ChaliceRequestHandler):
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the body
    # back ~40 ms on every response (an artefact of the local server, not of the service).
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        self.local_gateway = Gateway(app_object, config)
        self.app_object = app_object
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)  # handles the connection

    def _framing_refused(self) -> bool:
        """A body this server cannot delimit for sure (a Transfer-Encoding beside a length, or other
        than a single `chunked`; two lengths; a length that is no number) is refused and the
        connection closed: read wrongly, its rest would be taken for the next request on the
        connection (request smuggling)."""
        lengths = [v.strip(" \t") for v in self.headers.get_all("Content-Length") or []]
        codings = [v.strip(" \t") for v in self.headers.get_all("Transfer-Encoding") or []]
        if self.headers.defects:  # a header line the parser could not read (`Transfer-Encoding : chunked`)
            refused = True
        elif codings:
            refused = bool(lengths) or len(codings) > 1 or codings[0].lower() != "chunked"
        else:
            refused = len(lengths) > 1 or any(not (v.isascii() and v.isdigit()) for v in lengths)
        if refused:
            self.send_error(400)
            return True
        if lengths and int(lengths[0]) > MAX_BODY_BYTES:  # never read (nor allocate) what is refused anyway
            self._refuse(400, error_body("BODY_TOO_LARGE", "request body is too large", {"max_bytes": MAX_BODY_BYTES}))
            return True
        return False

    def _parse_payload(self) -> tuple[dict[str, Any], bytes | None]:
        if "Transfer-Encoding" not in self.headers:
            return super()._parse_payload()
        body = self._read_chunked()
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        headers["Content-Length"] = str(len(body))  # what API Gateway hands the function: the whole body
        return headers, body or None

    def _read_chunked(self) -> bytes:
        """The chunked body (RFC 9112 7.1), at most MAX_BODY_BYTES; every line must end in CRLF."""
        body = bytearray()
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if not line.endswith(b"\r\n"):
                raise malformed_chunk("a chunk size line")
            size = line[:-2].split(b";", 1)[0].strip(b" \t")
            if not size or len(size) > 16 or not set(size) <= HEX:
                raise malformed_chunk("a chunk size")
            length = int(size, 16)
            if length == 0:
                break
            if len(body) + length > MAX_BODY_BYTES:
                raise Unreadable(400, "BODY_TOO_LARGE", "request body is too large", {"max_bytes": MAX_BODY_BYTES})
            data = self.rfile.read(length)
            if len(data) != length or self.rfile.read(2) != b"\r\n":
                raise malformed_chunk("a chunk shorter than its size")
            body += data
        for _ in range(MAX_TRAILERS):
            line = self.rfile.readline(MAX_CHUNK_LINE + 1)
            if line == b"\r\n":
                return bytes(body)
            if not line.endswith(b"\r\n"):
                raise malformed_chunk("a trailer")
        raise malformed_chunk("too many trailers")

    def _generic_handle(self) -> None:
        if self._framing_refused():
            return
        try:
            headers, body = self._parse_payload()
        except Unreadable as exc:
            self._refuse(exc.status, error_body(exc.code, exc.message, exc.details))
            return
        try:
            # HEAD is GET without the body (_send_http_response drops it).
            method = "GET" if self.command == "HEAD" else self.command
            response = self.local_gateway.handle_request(method=method, path=self.path, headers=headers, body=body)
            out = response["headers"].copy()
            out.update(response["multiValueHeaders"])
            self._send_http_response(response["statusCode"], out, self._handle_binary(response)["body"])
        except LocalGatewayException as e:
            self._send_error_response(e)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def _method_not_allowed(self) -> None:
        if self._framing_refused():
            return
        try:
            self._parse_payload()  # read the body: left unread, it would be taken for the next request
        except Unreadable as exc:
            self._refuse(exc.status, error_body(exc.code, exc.message, exc.details))
            return
        try:
            route = RouteMatcher(list(self.app_object.routes)).match_route(self.path).route
        except ValueError:
            self._send_http_response(404, {}, _json(error_body("ROUTE_NOT_FOUND", ROUTE_NOT_FOUND_MESSAGE)))
            return
        allowed = list(self.app_object.routes[route])  # the order the app's own 405 names them in
        message = f"{self.command} is not supported here; use {', '.join(allowed)}"
        self._send_http_response(405, {"Allow": ", ".join(allowed), "Content-Type": "application/json"},
                                 _json(error_body("METHOD_NOT_ALLOWED", message, {"allowed": allowed})))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line or header), as API Gateway's are
        answered: JSON in the API's shape, never HTML; the connection is closed after."""
        self._refuse(code, error_body("REQUEST_REFUSED", f"the HTTP request is malformed ({code})"))

    def _refuse(self, code: int, payload: dict[str, Any]) -> None:
        """Answer and close the connection: what is left of the request is never read as another."""
        self.close_connection = True
        body = _json(payload)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        if isinstance(error, ForbiddenError):  # the local gateway's "no route matches this path"
            self._send_http_response(404, {}, _json(error_body("ROUTE_NOT_FOUND", ROUTE_NOT_FOUND_MESSAGE)))
        else:
            super()._send_error_response(error)

    def _send_http_response(self, code: int, headers: Any, body: str | bytes | None) -> None:
        if self.command == "HEAD":
            # The GET answer's status and headers, without its body: one would be read as the next response.
            data = body.encode() if isinstance(body, str) else body or b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
            headers.pop("Content-Length", None)
            self._send_headers(headers)
            return
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
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler, server_cls=Server)
