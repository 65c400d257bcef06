"""`make token SUB=... [GROUPS=...] [SCOPES=...]`: print a bearer token the local API accepts, and
nothing else. Shaped like Cognito's: a person's ID token (audience = the mobile apps' client, with
groups: `moderators`, `moderation-admins` (rules), or `services` for a platform service signing in as a user, as version 1 of
the API has it), or with SCOPES a platform service's client-credentials access token (scopes on
the `buyer-protection` resource server, no audience)."""
from __future__ import annotations

import argparse
import sys
import time

import jwt

from chalicelib.config import AuthSettings
from chalicelib.domain.identity import SERVICE_SCOPES
from local.keys import AUDIENCE, ISSUER, ensure_keypair


def make_token(sub: str, groups: list[str], ttl_seconds: int = 12 * 3600) -> str:
    private, _ = ensure_keypair()
    now = int(time.time())
    claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_seconds, "token_use": "id"}
    if groups:
        claims["cognito:groups"] = groups
    return jwt.encode(claims, private.read_text(), algorithm="RS256")


def make_service_token(client_id: str, scopes: list[str], ttl_seconds: int = 3600) -> str:
    private, _ = ensure_keypair()
    now = int(time.time())
    granted = " ".join(f"{AuthSettings.resource_server}/{scope}" for scope in scopes)
    claims = {"sub": client_id, "client_id": client_id, "iss": ISSUER, "iat": now, "exp": now + ttl_seconds,
              "token_use": "access", "scope": granted}
    return jwt.encode(claims, private.read_text(), algorithm="RS256")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sub", required=True)
    parser.add_argument("--groups", default="")
    parser.add_argument("--scopes", default="")
    parser.add_argument("--ttl", type=int, default=None)
    args = parser.parse_args(argv)
    usage = ("make token SUB=<user id> [GROUPS=moderators,services]  |  "
             f"make token SUB=<service> SCOPES={','.join(SERVICE_SCOPES)}")
    if not args.sub.strip():
        print(f"SUB is required: {usage}", file=sys.stderr)
        return 2
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SERVICE_SCOPES]
    if unknown or (scopes and groups):
        print(f"a token has groups or scopes, not both, and scopes are {', '.join(SERVICE_SCOPES)}: {usage}",
              file=sys.stderr)
        return 2
    if scopes:
        print(make_service_token(args.sub.strip(), scopes, args.ttl or 3600))
    else:
        print(make_token(args.sub.strip(), groups, args.ttl or 12 * 3600))
    return 0


if __name__ == "__main__":
    sys.exit(main())
