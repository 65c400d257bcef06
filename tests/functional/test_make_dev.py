"""`make dev` as a process, over real HTTP: the whole stack a developer runs, then Ctrl-C."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    state = tmp_path_factory.mktemp("local-state")
    port, moto_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "MOTO_PORT": str(moto_port), "LOCAL_STATE_DIR": str(state),
           "SWEEP_INTERVAL_SECONDS": "1", "PROTECTION_SECONDS": "3", "PYTHONUNBUFFERED": "1"}
    for var in ("AWS_ENDPOINT_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_PUBLIC_KEY", "AUTH_PUBLIC_KEY_FILE"):
        env.pop(var, None)
    log = open(state / "dev.log", "w+")
    proc = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"make dev did not become ready:\n{log.read()[-4000:]}")
        time.sleep(0.3)
    yield {"base": base, "proc": proc, "env": env, "log": log, "ports": (port, moto_port)}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def make_token(env: dict, sub: str, groups: str = "") -> str:
    out = subprocess.run(["make", "--no-print-directory", "-s", "token", f"SUB={sub}", f"GROUPS={groups}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_make_dev_plays_a_whole_dispute_over_http_and_stops_on_ctrl_c(dev_server):
    base, env = dev_server["base"], dev_server["env"]
    tokens = {who: make_token(env, sub, groups) for who, sub, groups in [
        ("service", "checkout", "services"), ("buyer", "b-1", ""), ("seller", "s-1", ""),
        ("moderator", "m-1", "moderators")]}
    assert all(t.count(".") == 2 and "\n" not in t for t in tokens.values()), "make token prints only a token"

    def call(method: str, path: str, who: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, f"{base}{path}", json=body, timeout=10,
                                headers={"Authorization": f"Bearer {tokens[who]}"})

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    order = {"order_id": "o-http", "buyer_id": "b-1", "seller_id": "s-1",
             "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                        "unit_price": {"amount": 1999, "currency": "USD"}}],
             "total": {"amount": 1999, "currency": "USD"}, "estimated_delivery_at": now}
    assert call("POST", "/orders", "service", order).status_code == 201
    assert call("POST", "/orders/o-http/shipment", "seller", {"carrier": "CP", "tracking_number": "CN1"}).ok
    assert call("POST", "/orders/o-http/tracking-events", "service", {"status": "DELIVERED", "occurred_at": now}).ok
    r = call("POST", "/orders/o-http/disputes", "buyer", {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}})
    assert r.status_code == 201, r.text
    did = r.json()["dispute_id"]
    assert call("POST", f"/disputes/{did}/reject", "seller", {"message": "It is red"}).json()["status"] == "NEGOTIATING"
    assert call("POST", f"/disputes/{did}/escalate", "buyer", {}).json()["status"] == "ESCALATED"
    assert [d["dispute_id"] for d in call("GET", "/moderation/disputes", "moderator").json()["items"]] == [did]
    r = call("POST", f"/disputes/{did}/decision", "moderator",
             {"outcome": "REFUND_FULL", "rationale": "Photos show a blue dress; the listing is red."})
    assert r.status_code == 200 and r.json()["resolution"]["outcome"] == "REFUND_FULL"
    assert call("GET", "/orders/o-http", "buyer").json()["escrow"]["status"] == "REFUNDED"
    # Tokens make token did not sign are refused.
    assert requests.get(f"{base}/orders/o-http", headers={"Authorization": "Bearer x.y.z"}, timeout=5).status_code == 401

    # The dispatcher runs the scheduled auto-release (every second here, protection 3 s).
    order2 = {**order, "order_id": "o-sweep"}
    assert call("POST", "/orders", "service", order2).status_code == 201
    assert call("POST", "/orders/o-sweep/shipment", "seller", {"carrier": "CP", "tracking_number": "CN2"}).ok
    deadline = time.monotonic() + 20
    while call("GET", "/orders/o-sweep", "seller").json()["escrow"]["status"] != "RELEASED":
        assert time.monotonic() < deadline, "escrow was not auto-released"
        time.sleep(0.5)

    proc = dev_server["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) is not None
    for port in dev_server["ports"]:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after Ctrl-C"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
