"""People present Cognito ID tokens of the mobile apps' client; services present client-credentials
access tokens whose scopes on our resource server are all they may do."""
from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib.adapters.auth import TokenVerifier
from chalicelib.config import AuthSettings
from chalicelib.domain.errors import Unauthenticated
from tests.support import AUDIENCE, ISSUER, keypair, service_token, token


@pytest.fixture(scope="module")
def verifier() -> TokenVerifier:
    return TokenVerifier(AuthSettings(issuer=ISSUER, audience=AUDIENCE, public_key_pem=keypair()[1]))


def bearer(raw: str) -> str:
    return f"Bearer {raw}"


def test_a_person_has_groups_and_no_scopes(verifier):
    who = verifier.verify(bearer(token("m-1", ("moderators",))))
    assert (who.sub, who.is_moderator, who.is_service, who.scopes) == ("m-1", True, False, frozenset())


def test_an_id_token_in_the_services_group_is_a_service_as_version_1_of_the_api_says(verifier):
    who = verifier.verify(bearer(token("checkout", ("services",))))
    assert who.is_service and who.may("orders.write") and who.may("tracking.write") and not who.is_moderator


def test_a_person_outside_the_services_group_may_do_nothing_a_service_does(verifier):
    who = verifier.verify(bearer(token("b-1", ("moderators",))))
    assert not who.is_service and not who.may("orders.write") and not who.may("tracking.write")


def test_a_service_has_exactly_its_scopes(verifier):
    who = verifier.verify(bearer(service_token("checkout-client", ("orders.write",))))
    assert (who.sub, who.groups, who.scopes) == ("checkout-client", frozenset(), frozenset({"orders.write"}))
    assert who.may("orders.write") and not who.may("tracking.write")


@pytest.mark.parametrize("raw", [
    service_token("c", ("orders.write",), resource_server="another-api"),  # someone else's scope
    service_token("c", ("admin",)),  # a scope this service never grants
    service_token("c", ("orders.write",), client_id=None),  # not a client-credentials token
    service_token("c", ("orders.write",), iss="https://elsewhere.test/pool"),
    token("b-1", aud="another-client"),  # an ID token of another app client
    token("b-1", token_use="access"),  # a user's access token carries no service scope
    token("b-1", token_use=None),  # not marked as Cognito marks its tokens
    token("b-1", token_use="refresh"),
])
def test_tokens_that_grant_nothing_here_are_refused(verifier, raw):
    with pytest.raises(Unauthenticated):
        verifier.verify(bearer(raw))


def test_made_up_key_ids_never_turn_requests_into_key_set_fetches():
    """In AWS the keys come from the pool's JWKS URL: a token naming an unknown key id makes the
    verifier fetch the set again at most once per cooldown, not once per request."""
    import json
    import threading
    import time
    import uuid
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from unittest import mock

    from jwt.algorithms import RSAAlgorithm

    from tests.support import keypair

    jwk = {**json.loads(RSAAlgorithm.to_jwk(RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(keypair()[1]))),
           "kid": "pool-key", "alg": "RS256", "use": "sig"}
    fetches = []

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            fetches.append(self.path)
            body = json.dumps({"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
        verifier = TokenVerifier(AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=url))
        assert verifier.verify(bearer(token("b-1", headers={"kid": "pool-key"}))).sub == "b-1"
        for _ in range(20):
            with pytest.raises(Unauthenticated):
                verifier.verify(bearer(token("b-1", headers={"kid": uuid.uuid4().hex})))
        assert verifier.verify(bearer(token("b-2", headers={"kid": "pool-key"}))).sub == "b-2"
        assert len(fetches) == 1, fetches  # made-up ids within the cooldown of the first fetch: none
        # Two minutes on (past PyJWT's default 30 s cooldown, within ours): still no new fetch.
        started = time.monotonic()
        with mock.patch("jwt.jwks_client.time.monotonic", lambda: started + 120):
            with pytest.raises(Unauthenticated):
                verifier.verify(bearer(token("b-1", headers={"kid": uuid.uuid4().hex})))
        assert len(fetches) == 1, fetches
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def counted_verifier(monkeypatch: pytest.MonkeyPatch, size: int = 8) -> tuple[TokenVerifier, Clock, list[str]]:
    import jwt  # what chalicelib.adapters.auth decodes with

    decoded: list[str] = []
    original = jwt.decode

    def decode(raw: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(raw)
        return original(raw, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", decode)
    clock = Clock()
    v = TokenVerifier(AuthSettings(issuer=ISSUER, audience=AUDIENCE, public_key_pem=keypair()[1]), now=clock,
                      cache_size=size)
    return v, clock, decoded


def test_a_verified_token_is_not_decoded_again_within_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    v, clock, decoded = counted_verifier(monkeypatch)
    raw = token("b-1", ("moderators",))
    first = v.verify(bearer(raw))
    clock.now += 3000  # the token lives an hour
    assert v.verify(bearer(raw)) == first and v.verify(f"bearer  {raw} ") == first
    assert decoded == [raw]


def test_a_cached_token_past_its_expiry_is_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    v, clock, decoded = counted_verifier(monkeypatch)
    raw = token("b-1", exp=int(time.time()) + 60)
    v.verify(bearer(raw))
    clock.now += 61  # past the token's expiry: its entry is not trusted (PyJWT decides, with its leeway)
    v.verify(bearer(raw))
    assert decoded == [raw, raw]


def test_a_token_verified_inside_the_leeway_after_its_expiry_is_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    v, _, decoded = counted_verifier(monkeypatch)
    raw = token("b-1", exp=int(time.time()) - 5)  # PyJWT's 30 s leeway still accepts it
    v.verify(bearer(raw))
    v.verify(bearer(raw))
    assert decoded == [raw, raw]


def test_a_token_that_differs_in_one_byte_is_verified_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    v, _, decoded = counted_verifier(monkeypatch)
    raw = token("b-1")
    v.verify(bearer(raw))
    forged = raw[:-2] + ("A" if raw[-2] != "A" else "B") + raw[-1]
    with pytest.raises(Unauthenticated):
        v.verify(bearer(forged))
    assert decoded == [raw, forged]


def test_the_cache_is_bounded_and_drops_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    v, _, decoded = counted_verifier(monkeypatch, size=2)
    a, b, c = token("a"), token("b"), token("c")
    for raw in (a, b, a, c, a, b):  # c pushes out b (a was used since), then b comes back
        v.verify(bearer(raw))
    assert decoded == [a, b, c, b]
