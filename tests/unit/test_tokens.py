"""People present Cognito ID tokens of the mobile apps' client; services present client-credentials
access tokens whose scopes on our resource server are all they may do."""
from __future__ import annotations

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
