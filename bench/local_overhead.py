"""What `make dev` adds to a read, against the emulated database alone.

Starts the local stack (the same module `make dev` runs) on free ports, plays an order and a
dispute into it, then reads that dispute again and again, interleaved: `GET /disputes/{id}`
through the local API (token check, one GetItem, the view, JSON) and a bare DynamoDB GetItem of
the same item on the same emulator, both over kept-alive connections. Every answer is checked.
Reported: p50 of each and the ratio API / GetItem (goal at most 2.0: local latency should be the
service's work, not an artefact of the local server); the CPU the stack burns while idle; then
the time Ctrl-C takes to stop it all; and the time `make dev` takes to refuse a taken port.

    python -m bench.local_overhead        (part of make bench)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import requests

from bench.report import expect, spread, write

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 30
ROUNDS = 400
IDLE_SECONDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(env: dict[str, str], sub: str, groups: str = "") -> str:
    out = subprocess.run([sys.executable, "-m", "local.token", "--sub", sub, "--groups", groups], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def start(state: Path) -> tuple[subprocess.Popen[bytes], dict[str, str], str, str]:
    port, moto_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "MOTO_PORT": str(moto_port), "LOCAL_STATE_DIR": str(state),
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    for var in ("AWS_ENDPOINT_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_PUBLIC_KEY", "AUTH_PUBLIC_KEY_FILE"):
        env.pop(var, None)
    log = open(state / "dev.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "local.devserver"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, env, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}"


def stop(proc: subprocess.Popen[bytes]) -> float | None:
    """Ctrl-C, as a developer stops it; the seconds until everything is down (None: it had to be
    killed)."""
    took = None
    if proc.poll() is None:
        try:
            start = time.perf_counter()
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
            took = time.perf_counter() - start
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    return took


def wait_ready(proc: subprocess.Popen[bytes], base: str, state: Path) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        expect(proc.poll() is None and time.monotonic() < deadline,
               f"the local stack did not start:\n{(state / 'dev.log').read_text()[-3000:]}")
        time.sleep(0.3)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (Linux /proc), or None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float = IDLE_SECONDS) -> float | None:
    """The share of one core the stack burns while nobody calls it."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    after = cpu_seconds(pid)
    return None if before is None or after is None else round(100 * (after - before) / seconds, 1)


def a_dispute(http: requests.Session, base: str, tokens: dict[str, str]) -> str:
    def call(method: str, path: str, who: str, body: dict[str, Any], status: int) -> dict[str, Any]:
        r = http.request(method, f"{base}{path}", json=body, timeout=30,
                         headers={"Authorization": f"Bearer {tokens[who]}"})
        expect(r.status_code == status, f"{method} {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    call("POST", "/orders", "service", {
        "order_id": "o-bench", "buyer_id": "b-1", "seller_id": "s-1", "estimated_delivery_at": now,
        "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1, "unit_price": {"amount": 1999, "currency": "USD"}}],
        "total": {"amount": 1999, "currency": "USD"}}, 201)
    shipped = call("POST", "/orders/o-bench/shipment", "seller", {"carrier": "CP", "tracking_number": "CN1"}, 200)
    call("POST", "/orders/o-bench/tracking-events", "service",
         {"status": "DELIVERED", "occurred_at": shipped["shipment"]["shipped_at"]}, 200)
    opened = call("POST", "/orders/o-bench/disputes", "buyer", {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}, 201)
    return str(opened["dispute_id"])


def taken_port_exit(which: str, state: Path) -> float:
    """Seconds from `make dev`'s start to its exit when ``which`` (PORT or MOTO_PORT) is taken by
    another program; its answer must be one line naming the port, and a non-zero exit."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        env = {**os.environ, "PORT": str(free_port()), "MOTO_PORT": str(free_port()), which: str(taken),
               "LOCAL_STATE_DIR": str(state)}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "local.devserver"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
        took = time.perf_counter() - started
    said = (done.stdout + done.stderr).strip().splitlines()
    expect(done.returncode != 0 and len(said) == 1 and str(taken) in said[0] and "Traceback" not in said[0],
           f"a taken {which} was answered {done.returncode}: {said}")
    return took


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        taken = {which: round(taken_port_exit(which, Path(tmp)), 2) for which in ("PORT", "MOTO_PORT")}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        proc, env, base, endpoint = start(state)
        try:
            wait_ready(proc, base, state)
            tokens = {"service": token(env, "checkout", "services"), "buyer": token(env, "b-1"),
                      "seller": token(env, "s-1")}
            http = requests.Session()
            did = a_dispute(http, base, tokens)
            idle = idle_cpu_percent(proc.pid)
            dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                    aws_access_key_id="bench", aws_secret_access_key="bench")
            table = next(t for t in dynamodb.list_tables()["TableNames"] if t.endswith("disputes"))
            headers = {"Authorization": f"Bearer {tokens['buyer']}"}

            def api_read() -> float:
                start = time.perf_counter()
                r = http.get(f"{base}/disputes/{did}", headers=headers, timeout=30)
                elapsed = time.perf_counter() - start
                expect(r.status_code == 200 and r.json()["dispute_id"] == did, f"GET answered {r.status_code}")
                return elapsed

            def bare_read() -> float:
                start = time.perf_counter()
                item = dynamodb.get_item(TableName=table, Key={"dispute_id": {"S": did}}).get("Item")
                elapsed = time.perf_counter() - start
                expect(item is not None and item["dispute_id"]["S"] == did, "GetItem found nothing")
                return elapsed

            for _ in range(WARMUP):
                api_read(), bare_read()
            api: list[float] = []
            bare: list[float] = []
            for _ in range(ROUNDS):  # interleaved: drift on a busy machine hits both alike
                api.append(api_read() * 1000)
                bare.append(bare_read() * 1000)
        finally:
            ctrl_c = stop(proc)
        expect(ctrl_c is not None and "stopped: " in (state / "dev.log").read_text(), "Ctrl-C did not stop the stack")
    api_ms, bare_ms = spread(api), spread(bare)
    ratio = round(api_ms["median"] / bare_ms["median"], 2)
    write("local_overhead",
          method=("make dev's stack on free ports; one dispute; GET /disputes/{id} through the local API and a bare "
                  "DynamoDB GetItem of the same item on the same emulator, interleaved, kept-alive connections, "
                  "wall-clock milliseconds per request"),
          repetitions={"warmup": WARMUP, "rounds": ROUNDS},
          results={"get_dispute_via_api_ms": api_ms, "bare_getitem_ms": bare_ms},
          ratio_api_over_getitem_p50=ratio, goal="at most 2.0",
          idle_cpu_percent_of_a_core=idle, idle_seconds=IDLE_SECONDS,
          ctrl_c_seconds=round(ctrl_c or 0, 2), ctrl_c_goal="at most 2 s from SIGINT to every part stopped",
          taken_port_exit_seconds=taken, taken_port_goal="a one-line error naming the port, exit non-zero, within 2 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
