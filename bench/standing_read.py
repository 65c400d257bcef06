"""What reading a big seller's standing costs, against reading one dispute, on the same stack.

Starts `make dev`'s stack on free ports, seeds two sellers with 10,000 orders, 1,000 disputes and
300 defects each over the last year (the counter items their facts would have written): one with
few orders in the last 90 days, so the long window is read (the costliest case, three Queries),
one with 5,000 (one Query); plays one dispute, then reads, interleaved, both standings (a
moderator) and `GET /disputes/{id}` (its buyer) through the local API. Every answer is checked.
Reported: p50 of each and the ratios standing / dispute. The number of requests is what is held
fixed (tests/integration/test_standing.py); the times are reported, not gated.

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
# seller -> orders in the last 90 days: few (the long window: three Queries), or many (one Query).
SELLERS = {"s-quiet": 10, "s-busy": 5_000}


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
            today = datetime.now(UTC).date()
            seeded = {seller: seed_seller(dynamodb, table, seller, today, recent_orders=recent)
                      for seller, recent in SELLERS.items()}

            def read(path: str, who: str) -> tuple[float, dict]:
                started = time.perf_counter()
                r = http.get(f"{base}{path}", headers={"Authorization": f"Bearer {tokens[who]}"}, timeout=30)
                elapsed = time.perf_counter() - started
                expect(r.status_code == 200, f"GET {path} answered {r.status_code}: {r.text[:300]}")
                return elapsed, r.json()

            def standing(seller: str) -> float:
                elapsed, body = read(f"/sellers/{seller}/standing", "moderator")
                s = seeded[seller]
                expected = (s.orders, s.disputes, s.defects, 365) if seller == "s-quiet" else \
                    (SELLERS[seller], 0, 0, 90)
                expect((body["orders"], body["disputes"], body["defects"], body["window_days"]) == expected,
                       f"wrong standing: {body}")
                return elapsed

            def dispute() -> float:
                elapsed, body = read(f"/disputes/{did}", "buyer")
                expect(body["dispute_id"] == did, "wrong dispute")
                return elapsed

            for _ in range(WARMUP):
                standing("s-quiet"), standing("s-busy"), dispute()
            quiet_ms: list[float] = []
            busy_ms: list[float] = []
            dispute_ms: list[float] = []
            for _ in range(ROUNDS):  # interleaved: drift on a busy machine hits all alike
                quiet_ms.append(standing("s-quiet") * 1000)
                busy_ms.append(standing("s-busy") * 1000)
                dispute_ms.append(dispute() * 1000)
        finally:
            stop(proc)
    quiet, busy, d = spread(quiet_ms), spread(busy_ms), spread(dispute_ms)
    write("standing_read",
          method=("make dev's stack on free ports; two sellers seeded with 10,000 orders, 1,000 disputes and 300 "
                  "defects of 40 buyers over a year, 10 or 5,000 of the orders in the last 90 days; "
                  "GET /sellers/{id}/standing of each and GET /disputes/{id} through the local API, interleaved, "
                  "kept-alive connections, wall-clock milliseconds per request"),
          repetitions={"warmup": WARMUP, "rounds": ROUNDS},
          results={"standing_long_window_ms": quiet, "standing_short_window_ms": busy, "get_dispute_ms": d},
          ratio_long_window_over_dispute_p50=round(quiet["median"] / d["median"], 2),
          ratio_short_window_over_dispute_p50=round(busy["median"] / d["median"], 2),
          requests="at most 3 Queries (long window) or 1 (short), counted in tests/integration/test_standing.py",
          note=("the emulator answers a Query by walking the whole partition (a year of day items and the months), "
                "so the ratio here overstates what DynamoDB, which reads only the key range, would cost"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
