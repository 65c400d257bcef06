"""Bearer-token verification: signature, expiry, issuer and audience, with PyJWT.

In AWS the keys are the Cognito user pool's JWKS; locally, a PEM public key made by `make dev`.
The service verifies tokens itself so every environment answers the same way (API Gateway's and
`chalice local`'s authorizers differ).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from ..config import AuthSettings
from ..domain.errors import Unauthenticated

ALGORITHMS = ["RS256"]


@dataclass(frozen=True)
class Identity:
    sub: str
    groups: frozenset[str]

    @property
    def is_moderator(self) -> bool:
        return "moderators" in self.groups

    @property
    def is_service(self) -> bool:
        return "services" in self.groups


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
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
        try:
            claims = jwt.decode(
                token.strip(), self._key(token.strip()), algorithms=ALGORITHMS, audience=self._settings.audience,
                issuer=self._settings.issuer, leeway=30, options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated("invalid token", details={"why": type(exc).__name__}) from exc
        groups = claims.get("cognito:groups") or []
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("token has no subject")
        return Identity(sub=claims["sub"], groups=frozenset(g for g in groups if isinstance(g, str)))
