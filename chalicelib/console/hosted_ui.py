"""Signing moderators in with the Cognito hosted UI (deployed stages): the authorization code grant
with PKCE (S256), a state and a nonce, the code exchanged here, server-side, for the ID token. The
console's app client is a public client (no secret): PKCE is what binds the code to this sign-in."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..config import HostedUi
from ..domain.errors import Unauthenticated

EXCHANGE_TIMEOUT_SECONDS = 10
SCOPES = "openid email profile"


@dataclass(frozen=True)
class SignIn:
    """One round trip through the hosted UI: what goes out, and what must come back."""

    state: str
    nonce: str
    verifier: str

    @classmethod
    def start(cls) -> SignIn:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64))

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "nonce": self.nonce, "verifier": self.verifier}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignIn | None:
        values = [d.get(k) for k in ("state", "nonce", "verifier")]
        if not all(isinstance(v, str) and v for v in values):
            return None
        return cls(*(str(v) for v in values))


def authorize_url(ui: HostedUi, sign_in: SignIn, redirect_uri: str) -> str:
    return f"{ui.domain}/oauth2/authorize?" + urlencode({
        "response_type": "code", "client_id": ui.client_id, "redirect_uri": redirect_uri, "scope": SCOPES,
        "state": sign_in.state, "nonce": sign_in.nonce, "code_challenge": sign_in.challenge,
        "code_challenge_method": "S256"})


def exchange(ui: HostedUi, code: str, sign_in: SignIn, redirect_uri: str) -> str:
    """The ID token for an authorization code, from the user pool's token endpoint."""
    import urllib.error
    import urllib.request

    body = urlencode({"grant_type": "authorization_code", "client_id": ui.client_id, "code": code,
                      "redirect_uri": redirect_uri, "code_verifier": sign_in.verifier}).encode()
    request = urllib.request.Request(f"{ui.domain}/oauth2/token", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=EXCHANGE_TIMEOUT_SECONDS) as answer:
            tokens = json.loads(answer.read(256 * 1024))
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise Unauthenticated("the sign-in could not be completed", details={"why": type(exc).__name__}) from exc
    id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
    if not isinstance(id_token, str):
        raise Unauthenticated("the sign-in could not be completed", details={"why": "NoIdToken"})
    return id_token
