"""`make dev` under load for a few minutes: concurrent clients playing whole disputes.

Starts the local stack (the module `make dev` runs) on free ports of 127.0.0.1, opens a burst of
connections at once (none may be reset), then SOAK_CLIENTS clients (default 8), each on its own
kept-alive connection, play whole disputes back to back for SOAK_SECONDS (default 120): an order
registered, shipped and delivered, a dispute opened, then one of four endings (a full refund
agreed, a partial refund agreed, the dispute cancelled and receipt confirmed, a counter-offer
escalated and decided by a moderator). Every answer is checked against the status the contract
gives; a 5xx or a reset connection stops the bench. Afterwards every refund is waited for and
every order's ledger must balance (held = refunded + refund pending + released + still held) with
the amounts its ending promises.

Reported: disputes played, requests, the memory (RSS) of the stack at the start of the load and
at its end with the growth per dispute, and the p50 latency of the last third of the run over the
first third (a ratio of the same run: does the service slow down as its tables grow?).

    python -m bench.soak        (part of make bench; SOAK_SECONDS=30 for a short run)
"""
from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.local_overhead import start, stop, token, wait_ready
from bench.report import expect, spread, write

SECONDS = float(os.environ.get("SOAK_SECONDS", "120"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
BURST = 50  # connections opened at the same instant before the load
SETTLE_WAIT = 300.0  # refunds settle in about a second each; bounded, generous for a loaded machine
ENDINGS = ("refund_full", "refund_partial", "cancelled", "decided")
TOTAL, PARTIAL, DECIDED = 2500, 500, 700


class Failure(Exception):
    """An answer the contract does not allow (a 5xx, a reset, an unexpected status)."""


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (Linux /proc), or None where there is no /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class Client:
    """One app on its own kept-alive connection, recording every request's latency."""

    def __init__(self, base: str, tokens: dict[str, str], latencies: list[tuple[float, float]]) -> None:
        self.base, self.tokens, self.latencies = base, tokens, latencies
        self.http = requests.Session()
        self.requests = 0

    def call(self, method: str, path: str, who: str, body: dict[str, Any] | None, status: int) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            r = self.http.request(method, f"{self.base}{path}", json=body, timeout=120,
                                  headers={"Authorization": f"Bearer {self.tokens[who]}"})
        except requests.ConnectionError as exc:  # a reset or refused connection
            raise Failure(f"{method} {path}: connection failed: {exc!r}") from exc
        self.latencies.append((time.monotonic(), (time.perf_counter() - started) * 1000))
        self.requests += 1
        if r.status_code >= 500 or r.status_code != status:
            raise Failure(f"{method} {path} answered {r.status_code}, expected {status}: {r.text[:300]}")
        return r.json() if r.content else {}

    def dispute(self, n: int, ending: str) -> str:
        """One whole dispute to its ending; the order's id."""
        order_id = f"soak-{n}-{uuid.uuid4().hex[:8]}"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.call("POST", "/orders", "service", {
            "order_id": order_id, "buyer_id": "b-soak", "seller_id": "s-soak", "estimated_delivery_at": now,
            "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                       "unit_price": {"amount": TOTAL, "currency": "USD"}}],
            "total": {"amount": TOTAL, "currency": "USD"}}, 201)
        shipped = self.call("POST", f"/orders/{order_id}/shipment", "seller", {"carrier": "CP", "tracking_number": "1"},
                            200)
        self.call("POST", f"/orders/{order_id}/tracking-events", "service",
                  {"status": "DELIVERED", "occurred_at": shipped["shipment"]["shipped_at"]}, 200)
        requested = ({"type": "REFUND_PARTIAL", "amount": {"amount": PARTIAL, "currency": "USD"}}
                     if ending == "refund_partial" else {"type": "REFUND_FULL"})
        d = self.call("POST", f"/orders/{order_id}/disputes", "buyer", {
            "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue", "requested": requested}, 201)
        did = d["dispute_id"]
        self.call("POST", f"/disputes/{did}/messages", "buyer", {"body": "Photos to follow."}, 201)
        self.call("GET", f"/disputes/{did}", "seller", None, 200)
        if ending in ("refund_full", "refund_partial"):
            self.call("POST", f"/disputes/{did}/offers/{d['offers'][0]['offer_id']}/accept", "seller", {}, 200)
        elif ending == "cancelled":
            self.call("POST", f"/disputes/{did}/cancel", "buyer", {}, 200)
            self.call("POST", f"/orders/{order_id}/confirm-receipt", "buyer", {}, 200)
        else:
            self.call("POST", f"/disputes/{did}/offers", "seller",
                      {"type": "REFUND_PARTIAL", "amount": {"amount": 1000, "currency": "USD"}}, 201)
            self.call("POST", f"/disputes/{did}/escalate", "seller", {}, 200)
            self.call("GET", "/moderation/disputes?limit=5", "moderator", None, 200)
            self.call("POST", f"/disputes/{did}/decision", "moderator", {
                "outcome": "REFUND_PARTIAL", "amount": {"amount": DECIDED, "currency": "USD"},
                "rationale": "The photos show a blue dress."}, 200)
        self.call("GET", f"/orders/{order_id}", "buyer", None, 200)
        return order_id


def burst(base: str, n: int) -> int:
    """``n`` new connections at the same instant, each asking for /health: how many failed."""
    gate = threading.Barrier(n)
    failed: list[str] = []

    def one() -> None:
        gate.wait()
        try:
            if requests.get(f"{base}/health", timeout=120, headers={"Connection": "close"}).status_code != 200:
                failed.append("status")
        except requests.RequestException as exc:
            failed.append(repr(exc))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(failed)


def expected_escrow(ending: str) -> tuple[int, int]:
    """(refunded, released) once the ending has played out."""
    return {"refund_full": (TOTAL, 0), "refund_partial": (PARTIAL, TOTAL - PARTIAL), "cancelled": (0, TOTAL),
            "decided": (DECIDED, TOTAL - DECIDED)}[ending]


def settled_ledgers(client: Client, played: list[tuple[str, str]]) -> int:
    """Waits (bounded) until no refund is pending; checks every ledger. How many were checked."""
    deadline = time.monotonic() + SETTLE_WAIT
    for order_id, ending in played:
        while True:
            escrow = client.call("GET", f"/orders/{order_id}", "buyer", None, 200)["escrow"]
            amounts = {k: escrow[k]["amount"] for k in ("held", "refunded", "refund_pending", "released", "still_held")}
            expect(amounts["held"] == amounts["refunded"] + amounts["refund_pending"] + amounts["released"]
                   + amounts["still_held"] and min(amounts.values()) >= 0, f"{order_id} does not balance: {amounts}")
            if amounts["refund_pending"] == 0:
                break
            expect(time.monotonic() < deadline, f"{order_id}: a refund still pending after {SETTLE_WAIT} s: {amounts}")
            time.sleep(0.5)
        expect((amounts["refunded"], amounts["released"]) == expected_escrow(ending) and amounts["still_held"] == 0,
               f"{order_id} ({ending}) ended with {amounts}")
    return len(played)


def main() -> int:
    os.environ.setdefault("SIMULATED_SETTLE_SECONDS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        proc, env, base, _ = start(state)
        try:
            wait_ready(proc, base, state)
            tokens = {"service": token(env, "checkout", "services"), "buyer": token(env, "b-soak"),
                      "seller": token(env, "s-soak"), "moderator": token(env, "m-soak", "moderators")}
            reset = burst(base, BURST)
            expect(reset == 0, f"{reset} of {BURST} connections opened at once failed")
            latencies: list[tuple[float, float]] = []
            clients = [Client(base, tokens, latencies) for _ in range(CLIENTS)]
            clients[0].dispute(0, "decided")  # warm-up: every route's first import and first item
            rss_start = rss_mb(proc.pid)
            played: list[tuple[str, str]] = []
            errors: list[str] = []
            counter = itertools.count(1)
            began = time.monotonic()
            until = began + SECONDS

            def play(client: Client) -> None:
                while time.monotonic() < until and not errors:
                    n = next(counter)
                    ending = ENDINGS[n % len(ENDINGS)]
                    try:
                        played.append((client.dispute(n, ending), ending))
                    except Failure as exc:
                        errors.append(str(exc))

            threads = [threading.Thread(target=play, args=(c,), name=f"client-{i}") for i, c in enumerate(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - began
            rss_end = rss_mb(proc.pid)
            expect(not errors, f"{len(errors)} failures, the first: {errors[:1]}")
            checked = settled_ledgers(clients[0], played)
            expect(proc.poll() is None, "the stack died under load")
        finally:
            ctrl_c = stop(proc)
        expect(ctrl_c is not None and "stopped: " in (state / "dev.log").read_text(), "Ctrl-C did not stop the stack")
    third = (until - began) / 3
    early = [ms for at, ms in latencies if at < began + third]
    late = [ms for at, ms in latencies if at >= began + 2 * third]
    ratio = round(statistics.median(late) / statistics.median(early), 2) if early and late else None
    growth = round(rss_end - rss_start, 1) if rss_start is not None and rss_end is not None else None
    write("soak",
          method=("make dev's stack on free ports of 127.0.0.1; a burst of simultaneous connections; then concurrent "
                  "clients, each on a kept-alive connection, playing whole disputes back to back (four endings in "
                  "turn); every answer checked; afterwards every refund waited for and every ledger checked"),
          repetitions={"seconds": SECONDS, "clients": CLIENTS, "burst_connections": BURST},
          results={"disputes": len(played), "requests": sum(c.requests for c in clients),
                   "disputes_per_second": round(len(played) / elapsed, 2), "server_errors": 0, "resets": 0,
                   "ledgers_balanced": checked, "request_ms": spread([ms for _, ms in latencies], 1),
                   "rss_mb_at_start": rss_start, "rss_mb_at_end": rss_end, "rss_growth_mb": growth,
                   "rss_growth_kb_per_dispute": round(growth * 1024 / len(played), 1) if growth and played else None},
          ratio_late_over_early_p50=ratio,
          goal="no reset, no 5xx, every ledger balanced with its ending's amounts; the ratio near 1 (no slow-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
