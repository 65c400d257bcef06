"""Bearer-token verification: signature, expiry, issuer and audience, with PyJWT.

Two kinds of caller, both signed by the same issuer (the stack's Cognito user pool):
- people: ID tokens of the mobile apps' client (``aud`` = that client), with their groups;
- the platform's services (checkout, carrier tracking): access tokens from the client-credentials
  grant, with no ``aud`` but ``client_id`` and scopes on this service's resource server
  (``<resource server>/orders.write``): the scopes decide what such a service may do. A person-
  style ID token in the ``services`` group (the API's version 1 contract, and `make token
  GROUPS=services`) stays a service with every service scope.

In AWS the keys are the Cognito user pool's JWKS; locally, a PEM public key made by `make dev`.
The service verifies tokens itself so every environment answers the same way (API Gateway's and
`chalice local`'s authorizers differ).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization

from ..config import AuthSettings
from ..domain.errors import Unauthenticated
from ..domain.identity import SERVICE_SCOPES, Identity

ALGORITHMS = ["RS256"]
# Verified tokens kept per warm container (least recently used dropped first): a client sends the
# same token on every request for its lifetime, and decoding it again is most of a GET's own CPU.
VERIFIED_CACHE_SIZE = 1024


class TokenVerifier:
    def __init__(self, settings: AuthSettings, now: Callable[[], float] = time.time,
                 cache_size: int = VERIFIED_CACHE_SIZE) -> None:
        self._settings = settings
        self._now = now
        # Keyed by the whole token string (its signature included): a token that differs in any
        # byte is verified from scratch. An entry is trusted only until the token's own expiry.
        self._verified: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # An unknown key id makes PyJWT fetch the key set again: at most once per cooldown, and never
        # for long, so tokens with made-up key ids cannot turn requests into fetches or stall them.
        self._jwks = (jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=3600, timeout=5,
                                      cooldown_duration=300) if settings.jwks_url else None)
        # Parsed once: PEM parsing costs more than verifying a signature.
        self._public_key = (serialization.load_pem_public_key(settings.public_key_pem.encode())
                            if settings.public_key_pem else None)

    def _key(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        return self._public_key

    def verify(self, authorization: str | None) -> Identity:
        """The caller's identity from an ``Authorization: Bearer`` header, or Unauthenticated."""
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        token = token.strip()
        now = self._now()
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None and now < hit[1]:
                self._verified.move_to_end(token)
                return hit[0]
            if hit is not None:
                del self._verified[token]  # expired: verified again (and refused) below
        identity, expires_at = self._decode(token)
        if now < expires_at:
            with self._lock:
                self._verified[token] = (identity, expires_at)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return identity

    def verify_sign_in(self, id_token: str, nonce: str) -> tuple[Identity, int]:
        """A person's ID token from a hosted-UI sign-in (the console's): the same checks, an ID
        token only, and the ``nonce`` the sign-in sent; the identity and when the token expires."""
        claims = self._claims(id_token)
        if claims.get("token_use") != "id":
            raise Unauthenticated("invalid token", details={"why": "UnknownTokenUse"})
        identity, expires_at = self._from_claims(claims)
        if not nonce or claims.get("nonce") != nonce:
            raise Unauthenticated("invalid token", details={"why": "InvalidNonce"})
        return identity, int(expires_at)

    def _decode(self, token: str) -> tuple[Identity, float]:
        """The identity and the expiry (epoch seconds) of a token verified from scratch."""
        return self._from_claims(self._claims(token))

    def _claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature, issuer and expiry verify."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key(token), algorithms=ALGORITHMS, issuer=self._settings.issuer,
                leeway=30, options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated("invalid token", details={"why": type(exc).__name__}) from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("token has no subject")
        return claims

    def _from_claims(self, claims: dict[str, Any]) -> tuple[Identity, float]:
        expires_at = float(claims["exp"])  # required and checked numeric by PyJWT
        if claims.get("token_use") == "access":
            return self._service(claims), expires_at
        if claims.get("token_use") != "id":  # Cognito marks each token; anything else is not one of its
            raise Unauthenticated("invalid token", details={"why": "UnknownTokenUse"})
        audience = claims.get("aud")
        if self._settings.audience not in (audience if isinstance(audience, list) else [audience]):
            raise Unauthenticated("invalid token", details={"why": "InvalidAudienceError"})
        groups = claims.get("cognito:groups") or []
        if isinstance(groups, str):
            groups = [groups]
        return Identity(sub=claims["sub"], groups=frozenset(g for g in groups if isinstance(g, str))), expires_at

    def _service(self, claims: dict[str, Any]) -> Identity:
        """A client-credentials access token: its scopes on our resource server, nothing else."""
        prefix = f"{self._settings.resource_server}/"
        scope = claims.get("scope")
        granted = frozenset(s.removeprefix(prefix) for s in (scope.split() if isinstance(scope, str) else [])
                            if s.startswith(prefix) and s.removeprefix(prefix) in SERVICE_SCOPES)
        if not granted or not isinstance(claims.get("client_id"), str):
            raise Unauthenticated("invalid token", details={"why": "NoServiceScope"})
        return Identity(sub=claims["sub"], groups=frozenset(), scopes=granted)
