"""`make token SUB=... GROUPS=...`: print a bearer token the local API accepts, and nothing else."""
from __future__ import annotations

import argparse
import sys
import time

import jwt

from local.keys import AUDIENCE, ISSUER, ensure_keypair


def make_token(sub: str, groups: list[str], ttl_seconds: int = 12 * 3600) -> str:
    private, _ = ensure_keypair()
    now = int(time.time())
    claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_seconds, "token_use": "id"}
    if groups:
        claims["cognito:groups"] = groups
    return jwt.encode(claims, private.read_text(), algorithm="RS256")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sub", required=True)
    parser.add_argument("--groups", default="")
    parser.add_argument("--ttl", type=int, default=12 * 3600)
    args = parser.parse_args(argv)
    if not args.sub.strip():
        print("SUB is required: make token SUB=<user id> [GROUPS=moderators,services]", file=sys.stderr)
        return 2
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    print(make_token(args.sub.strip(), groups, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
