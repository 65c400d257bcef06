"""The answers the local server gives itself (no route, no such method, HEAD) are in the API's
error shape and never echo the caller's token, over a real socket, as `make dev` serves them."""
from __future__ import annotations

import http.client
import json

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
    status, _, body = send(conn, "TRACE", "/orders")
    assert status == 405 and json.loads(body)["error"]["code"] == "METHOD_NOT_ALLOWED"
    conn.close()


def test_head_answers_without_a_body_and_the_connection_stays_usable(server: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*server, timeout=30)
    for path in ("/health", "/orders/o-1", "/no-such-route"):
        status, _, body = send(conn, "HEAD", path, auth("b-1"))
        assert body == b"" and status in (404, 405)
        # The next answer on the same connection is read whole and intact.
        status, _, body = send(conn, "GET", "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
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
    from infra.resources import cloudformation

    resources = cloudformation("dev", ["APIHandler"])["Resources"]
    answers = {r["Properties"]["ResponseType"]: r["Properties"] for r in resources.values()
               if r.get("Type") == "AWS::ApiGateway::GatewayResponse"}
    assert {"MISSING_AUTHENTICATION_TOKEN", "UNSUPPORTED_MEDIA_TYPE", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(answers)
    assert answers["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for kind, props in answers.items():
        template = props["ResponseTemplates"]["application/json"]
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


@pytest.mark.parametrize("framing", [
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"Content-Length: 0\r\nContent-Length: 38\r\n\r\n",
    b"Content-Length: abc\r\n\r\n",
    b"Content-Length: -5\r\n\r\n",
])
@pytest.mark.parametrize("method", [b"POST", b"TRACE"])
def test_a_body_of_uncertain_length_is_refused_and_nothing_is_smuggled(server: tuple[str, int], framing: bytes,
                                                                        method: bytes) -> None:
    import socket

    smuggled = b"GET /no-such-route-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(server, timeout=30) as raw:
        raw.sendall(method + b" /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + smuggled)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.") == 1, answer[:600]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "REQUEST_REFUSED"
