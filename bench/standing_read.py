"""What reading a big seller's standing costs, against reading one dispute, on the same stack.

Starts `make dev`'s stack on free ports, seeds a seller with 10,000 orders, 1,000 disputes and
300 defects over the last year (the counter items their facts would have written, few orders in
the last 90 days, so the long window is read: the costliest case, three Queries), plays one
dispute, then reads, interleaved, `GET /sellers/{id}/standing` (a moderator) and
`GET /disputes/{id}` (its buyer) through the local API. Every answer is checked. Reported: p50 of
each and the ratio standing / dispute (goal at most 3.0: a standing is a few small Queries, never
a walk over the seller's orders).

    python -m bench.standing_read        (part of make bench)
"""
from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import requests

from bench.local_overhead import a_dispute, start, stop, token, wait_ready
from bench.report import expect, spread, write
from tests.standing_seed import seed_seller

WARMUP = 20
ROUNDS = 200
SELLER = "s-big"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        proc, env, base, endpoint = start(state)
        try:
            wait_ready(proc, base, state)
            tokens = {"service": token(env, "checkout", "services"), "buyer": token(env, "b-1"),
                      "seller": token(env, "s-1"), "moderator": token(env, "m-1", "moderators")}
            http = requests.Session()
            did = a_dispute(http, base, tokens)
            dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                    aws_access_key_id="bench", aws_secret_access_key="bench")
            table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("moderation"))
            seeded = seed_seller(dynamodb, table, SELLER, datetime.now(UTC).date())

            def read(path: str, who: str) -> tuple[float, dict]:
                started = time.perf_counter()
                r = http.get(f"{base}{path}", headers={"Authorization": f"Bearer {tokens[who]}"}, timeout=30)
                elapsed = time.perf_counter() - started
                expect(r.status_code == 200, f"GET {path} answered {r.status_code}: {r.text[:300]}")
                return elapsed, r.json()

            def standing() -> float:
                elapsed, body = read(f"/sellers/{SELLER}/standing", "moderator")
                expect((body["orders"], body["disputes"], body["defects"], body["window_days"]) ==
                       (seeded.orders, seeded.disputes, seeded.defects, 365), f"wrong standing: {body}")
                return elapsed

            def dispute() -> float:
                elapsed, body = read(f"/disputes/{did}", "buyer")
                expect(body["dispute_id"] == did, "wrong dispute")
                return elapsed

            for _ in range(WARMUP):
                standing(), dispute()
            standing_ms: list[float] = []
            dispute_ms: list[float] = []
            for _ in range(ROUNDS):  # interleaved: drift on a busy machine hits both alike
                standing_ms.append(standing() * 1000)
                dispute_ms.append(dispute() * 1000)
        finally:
            stop(proc)
    s, d = spread(standing_ms), spread(dispute_ms)
    ratio = round(s["median"] / d["median"], 2)
    write("standing_read",
          method=("make dev's stack on free ports; a seller seeded with 10,000 orders, 1,000 disputes and 300 defects "
                  "of 40 buyers over a year (few in the last 90 days: the long window, three Queries); "
                  "GET /sellers/{id}/standing and GET /disputes/{id} through the local API, interleaved, "
                  "kept-alive connections, wall-clock milliseconds per request"),
          repetitions={"warmup": WARMUP, "rounds": ROUNDS},
          results={"standing_ms": s, "get_dispute_ms": d},
          ratio_standing_over_dispute_p50=ratio, goal="at most 3.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
