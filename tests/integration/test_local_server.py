"""The answers the local server gives itself (no route, no such method, HEAD) are in the API's
error shape and never echo the caller's token, over a real socket, as `make dev` serves them."""
from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any

import pytest

from tests.contract import check
from tests.support import auth


def send(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    check(method, path, r.status, r.getheader("Content-Type"), data)
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def test_an_unknown_path_is_a_404_in_the_error_shape_that_never_echoes_the_token(server: tuple[str, int]) -> None:
    token = auth("b-1")["Authorization"]
    conn = http.client.HTTPConnection(*server, timeout=30)
    for headers in ({}, {"Authorization": token}):
        status, hdrs, body = send(conn, "GET", "/no-such-route", headers)
        assert status == 404 and hdrs["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "ROUTE_NOT_FOUND"
        assert token.split()[-1].encode() not in body and b"Authorization" not in body
    conn.close()


def test_a_method_the_path_lacks_is_a_405_naming_those_it_has(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    status, hdrs, body = send(conn, "PUT", "/orders", auth("svc", "services"), b"{}")
    assert status == 405 and hdrs["allow"] == "POST, GET"
    assert json.loads(body)["error"] == {"code": "METHOD_NOT_ALLOWED", "message": "PUT is not supported here; use POST, GET",
                                         "details": {"allowed": ["POST", "GET"]}}
    for method in ("TRACE", "CONNECT", "QUERY"):  # methods http.server has no handler for: Allow all the same
        status, hdrs, body = send(conn, method, "/orders")
        assert (status, hdrs.get("allow")) == (405, "POST, GET"), method
        assert json.loads(body)["error"]["details"] == {"allowed": ["POST", "GET"]}
    status, hdrs, body = send(conn, "TRACE", "/no-such-route")
    assert status == 404 and json.loads(body)["error"]["code"] == "ROUTE_NOT_FOUND"
    conn.close()


def test_many_clients_connecting_at_once_are_queued_not_reset_then_all_answered(wired: Any) -> None:
    """http.server's listen backlog of 5 reset 3 of 25 clients connecting at once. Here the server
    accepts nobody until 50 clients have connected: each connection must complete in the kernel's
    queue (with a backlog of 5, the sixth on would wait for an accept that never comes)."""
    from chalice.config import Config

    from app import app
    from local.http_server import create_server

    original = app.__class__
    httpd = create_server(app, Config.create(chalice_stage="dev", app_name=app.app_name), "127.0.0.1", 0)
    address = httpd.server.server_address[:2]
    clients: list[socket.socket] = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    try:
        for _ in range(50):
            # A queued connection completes at once; one beyond the backlog is never accepted.
            clients.append(socket.create_connection(address, timeout=5))
        thread.start()
        for c in clients:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for c in clients:
            c.settimeout(120)
            data = b""
            while chunk := c.recv(65536):
                data += chunk
            assert data.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK", data[:200]
    finally:
        for c in clients:
            c.close()
        if thread.is_alive():
            httpd.shutdown()
        httpd.server.server_close()
        thread.join(timeout=30)
        app.__class__ = original


def test_head_answers_as_get_without_a_body_and_the_connection_stays_usable(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    for path, expected in (("/health", 200), ("/orders/o-1", 404), ("/no-such-route", 404),
                           ("/orders/o-1/shipment", 405)):
        status, hdrs, body = send(conn, "HEAD", path, auth("b-1"))
        assert (status, body) == (expected, b""), path
        get_status, _, get_body = send(conn, "GET", path, auth("b-1"))
        assert get_status == status and int(hdrs["content-length"]) == len(get_body), path
        # The next answer on the same connection is read whole and intact.
        status, _, body = send(conn, "GET", "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
    conn.close()


def test_options_is_answered_as_any_method_the_path_lacks(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    for path, allowed in (("/orders", ["POST", "GET"]), ("/orders/o-1", ["GET"]), ("/health", ["GET"])):
        status, hdrs, body = send(conn, "OPTIONS", path, auth("b-1"))
        assert (status, hdrs["allow"], hdrs["content-type"]) == (405, ", ".join(allowed), "application/json"), path
        assert json.loads(body)["error"] == {"code": "METHOD_NOT_ALLOWED", "details": {"allowed": allowed},
                                             "message": f"OPTIONS is not supported here; use {', '.join(allowed)}"}
    status, _, body = send(conn, "OPTIONS", "/no-such-route")
    assert status == 404 and json.loads(body)["error"]["code"] == "ROUTE_NOT_FOUND"
    conn.close()


def test_without_a_sandbox_the_local_server_answers_its_routes_as_unknown_ones(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    _, _, unknown = send(conn, "GET", "/no-such-route")
    for method, headers, body in (("POST", {}, b"{}"), ("GET", auth("b-1"), None), ("HEAD", auth("b-1"), None),
                                  ("OPTIONS", {}, None), ("PUT", auth("b-1"), b"{"),
                                  ("POST", {**auth("b-1"), "Content-Type": "application/xml"}, b"<x/>")):
        status, hdrs, answer = send(conn, method, "/sandbox/orders/o-1/carrier-scans", headers, body)
        assert status == 404 and "allow" not in hdrs, method
        assert answer == (b"" if method == "HEAD" else unknown), method
    conn.close()


def test_a_get_with_a_content_type_is_not_a_415(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    status, _, body = send(conn, "GET", "/orders/o-1", {**auth("b-1"), "Content-Type": "application/xml"})
    assert status == 404 and json.loads(body)["error"]["code"] == "ORDER_NOT_FOUND"
    conn.close()


def test_a_body_that_is_not_json_is_a_415_in_the_error_shape_and_stores_nothing(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    headers = {**auth("svc", "services"), "Content-Type": "application/xml"}
    status, _, body = send(conn, "POST", "/orders", headers, b"<order/>")
    assert status == 415 and json.loads(body)["error"]["code"] == "UNSUPPORTED_CONTENT_TYPE"
    status, _, _ = send(conn, "GET", "/orders/o-1", auth("svc", "services"))
    assert status == 404
    conn.close()


def test_deployed_api_gateway_answers_in_the_same_shape_without_echoing_anything() -> None:
    from infra.template import cloudformation

    definition = cloudformation("dev", ["APIHandler"])["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    answers = definition["x-amazon-apigateway-gateway-responses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "UNSUPPORTED_MEDIA_TYPE", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(answers)
    assert answers["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    for kind, props in answers.items():
        template = props["responseTemplates"]["application/json"]
        assert "$" not in template, f"{kind} must not interpolate the request (the token would come back)"
        check("GET", "/no-such-route", 404, "application/json", template.encode())


def test_a_refused_method_with_a_body_leaves_the_connection_clean_for_the_next_request(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    status, _, body = send(conn, "TRACE", "/orders", {"Content-Type": "application/json"}, b'{"left": "unread?"}')
    assert status == 405 and json.loads(body)["error"]["code"] == "METHOD_NOT_ALLOWED"
    status, _, body = send(conn, "GET", "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    conn.close()


def test_a_malformed_request_is_answered_in_json_not_html(server: tuple[str, int]) -> None:
    import socket

    with socket.create_connection(server, timeout=30) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 431 " in head.split(b"\r\n")[0]
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "REQUEST_REFUSED"


def _exchange(server: tuple[str, int], data: bytes) -> bytes:
    import socket

    with socket.create_connection(server, timeout=30) as raw:
        raw.sendall(data)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    return answer


def _chunked(payload: bytes, size: int) -> bytes:
    chunks = [payload[i:i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


SMUGGLED = b"GET /no-such-route-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("framing", [
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}" + SMUGGLED + b"\r\n0\r\n\r\n",  # data beyond the chunk's size
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",  # a size that is no hex number
    b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n",  # a bare LF
    b"Content-Length: 0\r\nContent-Length: 38\r\n\r\n",
    b"Content-Length: abc\r\n\r\n",
    b"Content-Length: -5\r\n\r\n",
    b"Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",  # a header line the parser drops
    b"Transfer-Encoding: \x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",  # only spaces and tabs are white space
    b"Content-Length: \x0c2\r\n\r\n{}",
])
@pytest.mark.parametrize("method", [b"POST", b"TRACE"])
def test_a_body_of_uncertain_length_is_refused_and_nothing_is_smuggled(server: tuple[str, int], framing: bytes,
                                                                        method: bytes) -> None:
    answer = _exchange(server, method + b" /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       + framing + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.") == 1, answer[:600]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "REQUEST_REFUSED"


def test_a_chunked_body_is_decoded_and_processed_exactly_once(server: tuple[str, int]) -> None:
    from tests.support import order_body

    payload = json.dumps(order_body()).encode()
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in auth("svc", "services").items()) + b"\r\n")
    body = _chunked(payload, 7).replace(b"\r\n", b";ext=1\r\n", 1)  # a chunk extension is ignored
    then = b"GET /orders/o-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"".join(
        b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in auth("b-1").items()) + b"\r\n"
    answer = _exchange(server, head + body + then)
    assert answer.count(b"HTTP/1.1 ") == 2, answer[:800]
    first, _, rest = answer.partition(b"HTTP/1.1 200 ")
    assert first.startswith(b"HTTP/1.1 201 ") and b'"order_id":"o-1"' in first, answer[:800]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["version"] == 1


def test_a_chunked_body_over_the_limit_is_refused_and_the_connection_closed(server: tuple[str, int]) -> None:
    from chalicelib.api.routing import MAX_BODY_BYTES

    head = b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = _exchange(server, head + _chunked(b"x" * (MAX_BODY_BYTES + 1), 8192) + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.") == 1, answer[:600]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "BODY_TOO_LARGE"


def test_a_declared_length_over_the_limit_is_refused_before_anything_is_read(server: tuple[str, int]) -> None:
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000000000\r\n\r\n{}")
    answer = _exchange(server, head)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.") == 1, answer[:600]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "BODY_TOO_LARGE"
