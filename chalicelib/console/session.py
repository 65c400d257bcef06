"""The console's session: a cookie that carries a moderator's verified identity, signed by the
service (PyJWT, HS256) so that nothing but the service can make or change one, and expiring.

It never holds more than a moderator's ID token proves: the subject and the groups that token (or,
locally, the development sign-in) verified, and never longer than that token was valid. It also
carries the session's CSRF token: every console form sends it back, and a POST whose token is not
the session's changes nothing (a synchronizer token bound to the session; SameSite=Strict is the
second lock). The same signer seals the short-lived state of a hosted-UI sign-in (PKCE verifier,
state, nonce) in its own cookie, under another audience so that one can never pass for the other.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from ..domain.identity import Identity
from ..ports import Clock

SESSION_COOKIE = "console_session"
SIGN_IN_COOKIE = "console_sign_in"  # the hosted UI's round trip (state, nonce, PKCE verifier)
FORM_COOKIE = "console_form"  # the development sign-in form's own CSRF token (double submit)
COOKIE_PATH = "/console"
SESSION_AUDIENCE = "buyer-protection-console-session"
SIGN_IN_AUDIENCE = "buyer-protection-console-sign-in"
ALGORITHM = "HS256"
SIGN_IN_SECONDS = 600  # time to get through the hosted UI


@dataclass(frozen=True)
class Session:
    sub: str
    groups: frozenset[str]
    csrf: str
    expires_at: int  # seconds since the epoch

    @property
    def identity(self) -> Identity:
        return Identity(sub=self.sub, groups=self.groups)


class Sessions:
    """Makes and reads session cookies with one server-side key."""

    def __init__(self, key: str, lifetime_seconds: int, clock: Clock) -> None:
        if len(key) < 32:
            raise ValueError("the console's session key must be at least 32 characters")
        self._key = key
        self._lifetime = lifetime_seconds
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def issue(self, identity: Identity, not_after: int | None = None) -> tuple[str, Session]:
        """A new session (and its cookie value) for a verified moderator; it ends after the
        configured lifetime or when the token it came from does, whichever is first."""
        expires = self._now() + self._lifetime
        if not_after is not None:
            expires = min(expires, not_after)
        session = Session(identity.sub, frozenset(identity.groups), secrets.token_urlsafe(32), expires)
        import jwt  # PyJWT: loaded by the functions that serve the console only

        claims = {"sub": session.sub, "groups": sorted(session.groups), "csrf": session.csrf, "exp": expires,
                  "iat": self._now(), "aud": SESSION_AUDIENCE}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), session

    def read(self, value: str | None) -> Session | None:
        """The session a cookie value holds, or None if it is absent, forged, altered or expired."""
        claims = self._unseal(value, SESSION_AUDIENCE)
        if claims is None:
            return None
        groups, csrf = claims.get("groups"), claims.get("csrf")
        if not (isinstance(claims.get("sub"), str) and isinstance(groups, list) and isinstance(csrf, str)):
            return None
        return Session(claims["sub"], frozenset(g for g in groups if isinstance(g, str)), csrf, int(claims["exp"]))

    def seal(self, payload: dict[str, Any]) -> str:
        """The hosted UI round trip's state, signed, for SIGN_IN_SECONDS."""
        import jwt

        return jwt.encode({**payload, "aud": SIGN_IN_AUDIENCE, "exp": self._now() + SIGN_IN_SECONDS}, self._key,
                          algorithm=ALGORITHM)

    def unseal(self, value: str | None) -> dict[str, Any] | None:
        return self._unseal(value, SIGN_IN_AUDIENCE)

    def _unseal(self, value: str | None, audience: str) -> dict[str, Any] | None:
        if not value:
            return None
        import jwt

        try:
            # Expiry is checked against the service's clock (injected; tests move it), not PyJWT's.
            claims: dict[str, Any] = jwt.decode(value, self._key, algorithms=[ALGORITHM], audience=audience,
                                                options={"require": ["exp", "aud"], "verify_exp": False})
        except jwt.PyJWTError:
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= self._now():
            return None
        return claims

    def cookie(self, name: str, value: str, max_age: int | None = None, same_site: str = "Strict",
               base: str = "") -> str:
        """A Set-Cookie value: HttpOnly (no script reads it), Secure (browsers keep it on https and
        on http://127.0.0.1 and localhost, which they count as secure), SameSite=Strict (never sent
        by a request another site starts), only under the console's path (``base``: the API stage's
        prefix, ``/api`` on API Gateway's own URL). The hosted UI's round-trip cookie alone is Lax:
        the user pool's redirect back is a navigation from another site."""
        age = self._lifetime if max_age is None else max_age
        return f"{name}={value}; Path={base}{COOKIE_PATH}; Max-Age={age}; HttpOnly; Secure; SameSite={same_site}"

    @staticmethod
    def new_form_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def expired(name: str, base: str = "") -> str:
        return f"{name}=; Path={base}{COOKIE_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def cookies(header: str | None) -> dict[str, str]:
    """The request's cookies by name; a malformed Cookie header counts as none."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
