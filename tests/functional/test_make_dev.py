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

from tests.contract import check
from tests.functional.make_dev import ROOT, free_port, make_token, running_make_dev

FAST = {"SWEEP_INTERVAL_SECONDS": "1", "PROTECTION_SECONDS": "3",
        # Escrow is never released before the buyer's window closes: keep that short too.
        "DISPUTE_WINDOW_SECONDS": "20", "TRACKING_GRACE_SECONDS": "2", "SIMULATED_SETTLE_SECONDS": "1",
        "SELLER_RESPONSE_SECONDS": "5", "NEGOTIATION_SECONDS": "5"}


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    with running_make_dev(tmp_path_factory.mktemp("local-state"), FAST) as server:
        yield server


@pytest.fixture(scope="module")
def http(dev_server):
    """call(method, path, who, body) against the running service, with tokens from make token."""
    base, env = dev_server["base"], dev_server["env"]
    tokens = {who: make_token(env, sub, groups, scopes) for who, sub, groups, scopes in [
        ("service", "checkout", "", "orders.write,tracking.write"), ("buyer", "b-1", "", ""),
        ("seller", "s-1", "", ""), ("moderator", "m-1", "moderators", "")]}
    assert all(t.count(".") == 2 and "\n" not in t for t in tokens.values()), "make token prints only a token"

    def call(method: str, path: str, who: str, body: dict | None = None) -> requests.Response:
        r = requests.request(method, f"{base}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {tokens[who]}"})
        check(method, path, r.status_code, r.headers.get("Content-Type"), r.content)
        return r

    return call


def delivered_order(call, order_id: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    order = {"order_id": order_id, "buyer_id": "b-1", "seller_id": "s-1",
             "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                        "unit_price": {"amount": 1999, "currency": "USD"}}],
             "total": {"amount": 1999, "currency": "USD"}, "estimated_delivery_at": now}
    assert call("POST", "/orders", "service", order).status_code == 201
    shipped = call("POST", f"/orders/{order_id}/shipment", "seller", {"carrier": "CP", "tracking_number": "CN1"})
    assert shipped.ok, shipped.text
    # Delivered when the server stamped the shipment (a scan before it is refused, and our own
    # clock may have read the previous second).
    delivered = call("POST", f"/orders/{order_id}/tracking-events", "service",
                     {"status": "DELIVERED", "occurred_at": shipped.json()["shipment"]["shipped_at"]})
    assert delivered.ok, delivered.text
    return order


def open_dispute(call, order_id: str) -> str:
    r = call("POST", f"/orders/{order_id}/disputes", "buyer", {
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}})
    assert r.status_code == 201, r.text
    return r.json()["dispute_id"]


def wait_for(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_make_dev_plays_a_whole_dispute_over_http(dev_server, http):
    base, call = dev_server["base"], http
    order = delivered_order(call, "o-http")
    did = open_dispute(call, "o-http")
    assert call("POST", f"/disputes/{did}/reject", "seller", {"message": "It is red"}).json()["status"] == "NEGOTIATING"
    assert call("POST", f"/disputes/{did}/escalate", "seller", {}).json()["status"] == "ESCALATED"
    assert [d["dispute_id"] for d in call("GET", "/moderation/disputes", "moderator").json()["items"]] == [did]
    r = call("POST", f"/disputes/{did}/decision", "moderator",
             {"outcome": "REFUND_FULL", "rationale": "Photos show a blue dress; the listing is red."})
    assert r.status_code == 200 and r.json()["resolution"]["outcome"] == "REFUND_FULL"
    # The simulated card refund settles by itself a moment later, as a real one would.
    wait_for(lambda: call("GET", "/orders/o-http", "buyer").json()["escrow"]["status"] == "REFUNDED")
    # Tokens make token did not sign are refused.
    assert requests.get(f"{base}/orders/o-http", headers={"Authorization": "Bearer x.y.z"}, timeout=5).status_code == 401

    # The dispatcher runs the scheduled auto-release (every second here, protection 3 s).
    order2 = {**order, "order_id": "o-sweep"}
    assert call("POST", "/orders", "service", order2).status_code == 201
    assert call("POST", "/orders/o-sweep/shipment", "seller", {"carrier": "CP", "tracking_number": "CN2"}).ok
    wait_for(lambda: call("GET", "/orders/o-sweep", "seller").json()["escrow"]["status"] == "RELEASED", timeout=90)


def test_a_partial_refund_is_paid_within_seconds_and_the_escrow_adds_up(http):
    delivered_order(http, "o-refund")
    did = open_dispute(http, "o-refund")  # the buyer asks for 500 of 1999 back
    offer = http("GET", f"/disputes/{did}", "seller").json()["offers"][0]["offer_id"]
    d = http("POST", f"/disputes/{did}/offers/{offer}/accept", "seller", {}).json()
    assert d["refund"]["status"] == "PENDING"
    wait_for(lambda: http("GET", f"/disputes/{did}", "buyer").json()["refund"]["status"] == "SUCCEEDED")
    escrow = http("GET", "/orders/o-refund", "buyer").json()["escrow"]
    assert (escrow["refunded"]["amount"], escrow["released"]["amount"], escrow["refund_pending"]["amount"]) == (
        500, 1499, 0)
    assert escrow["refunded"]["amount"] + escrow["released"]["amount"] == 1999 and escrow["status"] == "SETTLED"


def test_an_order_not_shipped_by_its_ship_by_date_is_refunded_within_seconds(http):
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    order = {"order_id": "o-unshipped", "buyer_id": "b-1", "seller_id": "s-1", "ship_by": soon,
             "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                        "unit_price": {"amount": 1999, "currency": "USD"}}],
             "total": {"amount": 1999, "currency": "USD"}, "estimated_delivery_at": soon}
    assert http("POST", "/orders", "service", order).status_code == 201
    wait_for(lambda: http("GET", "/orders/o-unshipped", "buyer").json()["escrow"]["status"] == "REFUNDED")
    refunds = http("GET", "/orders/o-unshipped", "buyer").json()["refunds"]
    assert [(r["cause"], r["status"], r["amount"]["amount"]) for r in refunds] == [("NOT_SHIPPED", "SUCCEEDED", 1999)]


def test_a_dispute_nobody_answers_is_resolved_for_the_buyer_within_seconds(http):
    delivered_order(http, "o-silent")
    did = open_dispute(http, "o-silent")
    wait_for(lambda: http("GET", f"/disputes/{did}", "buyer").json()["status"] == "RESOLVED")
    d = http("GET", f"/disputes/{did}", "buyer").json()
    assert d["resolution"]["decided_by"] == "system" and d["resolution"]["outcome"] == "REFUND_PARTIAL"


def test_a_stalled_negotiation_is_escalated_within_seconds(http):
    delivered_order(http, "o-stalled")
    did = open_dispute(http, "o-stalled")
    assert http("POST", f"/disputes/{did}/reject", "seller", {"message": "It is red"}).json()["status"] == "NEGOTIATING"
    wait_for(lambda: http("GET", f"/disputes/{did}", "buyer").json()["status"] == "ESCALATED")
    queue = http("GET", "/moderation/disputes", "moderator").json()["items"]
    assert did in [q["dispute_id"] for q in queue]


def test_a_photo_posted_to_its_upload_slot_is_accepted_within_seconds(http):
    import io

    from PIL import Image

    from tests.media import jpeg

    delivered_order(http, "o-photo")
    did = open_dispute(http, "o-photo")
    photo = jpeg((800, 600), gps=True)
    r = http("POST", f"/disputes/{did}/evidence", "buyer",
             {"file_name": "blue-dress.jpg", "content_type": "image/jpeg", "size_bytes": len(photo)})
    assert r.status_code == 201, r.text
    slot = r.json()
    # What `curl -F key=... -F policy=... ... -F file=@photo.jpg <url>` does.
    posted = requests.post(slot["upload"]["url"], data=slot["upload"]["fields"],
                           files={"file": ("blue-dress.jpg", photo, "image/jpeg")}, timeout=10)
    assert posted.status_code in (200, 204), posted.text

    def listed() -> dict:
        return http("GET", f"/disputes/{did}/evidence", "seller").json()["items"][0]

    wait_for(lambda: listed()["status"] == "ACCEPTED", timeout=20)
    e = listed()
    served = requests.get(e["download_url"], timeout=10)
    assert served.status_code == 200 and not Image.open(io.BytesIO(served.content)).getexif()
    assert requests.get(e["thumbnail_url"], timeout=10).status_code == 200


def test_fuzzing_every_operation_of_the_openapi_document_finds_no_server_error(dev_server):
    """schemathesis generates requests from openapi.yaml (valid and invalid, every method):
    whatever they hold, the answer is never a 5xx, and always one the document describes: a
    status it lists for the operation, its content type, its schema."""
    token = make_token(dev_server["env"], "b-1")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", str(ROOT / "openapi.yaml"), "--url", dev_server["base"],
         "-H", f"Authorization: Bearer {token}", "--max-examples", "8",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
         "--seed", "20261123", "--no-color"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Server error" not in result.stdout


def test_the_sandbox_of_make_dev_expires_a_deadline_and_settles_a_refund_now(http):
    delivered_order(http, "o-sandbox")
    did = open_dispute(http, "o-sandbox")
    r = http("POST", f"/sandbox/disputes/{did}/expire-deadline", "buyer", {})
    assert r.status_code == 200 and r.json()["status"] == "RESOLVED", r.text  # the seller's silence, now
    refund_id = r.json()["refund"]["refund_id"]
    r = http("POST", f"/sandbox/orders/o-sandbox/refunds/{refund_id}/settle", "buyer", {"outcome": "FAILED"})
    if r.status_code == 409:  # the simulated provider settled it by itself first: that is fine too
        assert r.json()["error"]["code"] == "REFUND_NOT_PENDING"
    else:
        assert r.status_code == 200 and r.json()["refunds"][0]["status"] == "FAILED", r.text


@pytest.mark.parametrize("which", ["PORT", "MOTO_PORT"])
def test_a_taken_port_is_a_one_line_error_naming_it(which):
    """Nothing starts, nothing hangs: make dev says which port is taken and exits non-zero."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        env = {**os.environ, "PORT": str(free_port()), "MOTO_PORT": str(free_port()), which: str(taken)}
        env.pop("AWS_ENDPOINT_URL", None)
        done = subprocess.run(["make", "--no-print-directory", "dev"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("make dev:")]
    assert len(errors) == 1 and f"port {taken}" in errors[0] and which in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_make_dev_says_when_it_is_ready_and_where(dev_server):
    dev_server["log"].seek(0)
    lines = dev_server["log"].read().splitlines()
    ready = [line for line in lines if line.startswith("ready: ")]
    assert ready and dev_server["base"] in ready[0]
    # Before: nothing said that a restart loses every order and dispute.
    assert "note: the data lives in memory only (emulated AWS): it is not kept across restarts" in lines


def test_ctrl_c_stops_everything_make_dev_started(dev_server):
    proc = dev_server["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=30) is not None
    dev_server["log"].seek(0)
    assert "stopped: the API and the emulated AWS are down" in dev_server["log"].read()
    for port in dev_server["ports"]:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after Ctrl-C"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
