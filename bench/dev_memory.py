"""`make dev` memory over a long session: disputes played over HTTP with short timers, the server's
resident memory read after every hundred (the whole process group: moto, the app, the dispatcher).
Each dispute: an order registered, shipped, delivered; a dispute opened; then in turn the seller
accepts (a refund, settled by the simulated provider), the seller stays silent (the 2 s deadline
expires and grants it), or the buyer cancels. Every answer is checked.

    make bench        (or: DEV_MEMORY_DISPUTES=300 python -m bench.dev_memory; the default is 500)
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import expect, write

DISPUTES = int(os.environ.get("DEV_MEMORY_DISPUTES", "500"))
EVERY = 100
FAST = {"SELLER_RESPONSE_SECONDS": "2", "NEGOTIATION_SECONDS": "2", "REMINDER_BEFORE_SECONDS": "1",
        "SIMULATED_SETTLE_SECONDS": "1", "TRACKING_GRACE_SECONDS": "2", "POWERTOOLS_LOG_LEVEL": "WARNING"}


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the group, in MiB."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # pgrp, the 5th field of /proc/<pid>/stat
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return round(total / 1024, 1)


def play(base: str, s: Any, tokens: dict[str, str], i: int) -> None:
    def call(method: str, path: str, who: str, body: Any, status: int, race: bool = False) -> dict[str, Any]:
        r = s.request(method, f"{base}{path}", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {tokens[who]}"})
        # ``race``: a party acts as the 2 s deadline expires; losing to the timer is a right answer.
        lost = race and r.status_code == 409 and r.json()["error"]["code"] in ("VERSION_CONFLICT", "INVALID_STATE",
                                                                       "OFFER_NOT_OPEN")
        expect(r.status_code == status or lost, f"{method} {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json())

    order_id = f"soak-{i}"
    call("POST", "/orders", "service", {
        "order_id": order_id, "buyer_id": "b-soak", "seller_id": "s-soak",
        "items": [{"item_id": "i-1", "title": "Lamp", "quantity": 1, "unit_price": {"amount": 2000, "currency": "USD"}}],
        "total": {"amount": 2000, "currency": "USD"}, "estimated_delivery_at": "2030-01-01T00:00:00Z"}, 201)
    shipped = call("POST", f"/orders/{order_id}/shipment", "seller", {"carrier": "CP", "tracking_number": "CN1"}, 200)
    call("POST", f"/orders/{order_id}/tracking-events", "service",
         {"status": "DELIVERED", "occurred_at": shipped["shipment"]["shipped_at"]}, 200)
    d = call("POST", f"/orders/{order_id}/disputes", "buyer", {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}, 201)
    did = d["dispute_id"]
    if i % 3 == 0:
        call("POST", f"/disputes/{did}/offers/{d['offers'][0]['offer_id']}/accept", "seller", {}, 200, race=True)
    elif i % 3 == 2:
        call("POST", f"/disputes/{did}/cancel", "buyer", {"message": "Sorted it out"}, 200, race=True)
    # else: the seller stays silent and the deadline's timer decides


def main() -> None:
    import requests

    from tests.functional.make_dev import make_token, running_make_dev

    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as state, running_make_dev(Path(state), FAST) as server:
        base, env, pgid = server["base"], server["env"], server["proc"].pid
        tokens = {"buyer": make_token(env, "b-soak"), "seller": make_token(env, "s-soak"),
                  "service": make_token(env, "svc-soak", scopes="orders.write,tracking.write")}
        started = time.monotonic()
        samples.append({"disputes": 0, "rss_mb": group_rss_mb(pgid), "seconds": 0.0})
        with requests.Session() as s:
            for i in range(1, DISPUTES + 1):
                play(base, s, tokens, i)
                if i % EVERY == 0:
                    samples.append({"disputes": i, "rss_mb": group_rss_mb(pgid),
                                    "seconds": round(time.monotonic() - started, 1)})
            time.sleep(5)  # the last deadlines expire and refunds settle
            last = s.get(f"{base}/disputes?role=buyer&limit=50", timeout=60,
                         headers={"Authorization": f"Bearer {tokens['buyer']}"}).json()["items"]
            expect(all(x["status"] != "AWAITING_SELLER" for x in last[10:]),
                   "deadlines did not expire: the timers are not running")
    growth = [round(b["rss_mb"] - a["rss_mb"], 1) for a, b in zip(samples, samples[1:], strict=False)]
    write("dev_memory", "`make dev` as a process (short timers), disputes played over HTTP one after another, the "
          "resident memory of its process group read after every hundred; every answer checked",
          {"disputes": DISPUTES, "sampled_every": EVERY}, {"samples": samples, "growth_mb_per_100": growth},
          goal="no growth after the first 100 disputes beyond what the emulator stores; under 1 GB in all",
          before_fix=("before moto's Step Functions executions were bounded (local/emulator.py): +32.4, +38.0, +33.6 MB "
                      "per 100 disputes; before its transactions were: +155 MB for 50 disputes, +417 MB for the next "
                      "50, +680 MB for the next 50 (moto's transactions deep-copied every table they touched)"))


if __name__ == "__main__":
    main()
