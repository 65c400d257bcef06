"""Each function loads only what it runs. Every entry point of app.py gets its first invocation in
a fresh process (tests/integration/entry_points.py) over a moto server in another process; the
heavy packages it holds afterwards are exactly the ones its work needs: the inspectors (Pillow,
pypdf) in the evidence function only, token verification (PyJWT, cryptography) in the API only,
the Stripe SDK only where a webhook is verified or a refund sent."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import AUDIENCE, ISSUER, keypair, token

ROOT = Path(__file__).resolve().parent.parent.parent
NONE: list[str] = []
EXPECTED = {
    "api": ["cryptography", "jwt"],
    "webhook": ["stripe"],
    "pay-refunds": ["stripe"],
    "timer-fired": NONE,
    "drain-outbox": NONE,
    "release-escrow": NONE,
    # pypdf loads cryptography as its AES provider: the evidence function opens PDFs encrypted with
    # an empty user password (the PDF_ENCRYPTED rule); PyJWT stays out.
    "evidence-uploaded": ["PIL", "cryptography", "pypdf"],
    "expire-evidence": NONE,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, str]]:
    """A moto server process with the app's resources, and the environment a function gets."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                 "POWERTOOLS_LOG_LEVEL": "WARNING", "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE,
                 "AUTH_PUBLIC_KEY": keypair()[1], "PAYMENT_PROVIDER": "stripe", "STRIPE_API_KEY": "sk_test_unused",
                 "STRIPE_WEBHOOK_SECRET": "whsec_unused", "STRIPE_API_BASE": "http://127.0.0.1:9"})
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                              env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"{base['AWS_ENDPOINT_URL']}/moto-api/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "the moto server did not start"
                time.sleep(0.2)
        provisioned = subprocess.run(
            [sys.executable, "-c", "import json\nfrom chalicelib.config import Settings\n"
             "from local.provision import provision\nprint(json.dumps(provision(Settings.from_env())))"],
            cwd=ROOT, env=base, capture_output=True, text=True, timeout=300)
        assert provisioned.returncode == 0, provisioned.stderr[-3000:]
        yield {**base, **json.loads(provisioned.stdout.strip().splitlines()[-1])}
    finally:
        stop(server)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_function_holds_only_the_heavy_packages_its_first_invocation_used(emulator: dict[str, str],
                                                                           case: str) -> None:
    env = {**emulator, "TOKEN": token("b-1")}
    child = subprocess.Popen([sys.executable, "-m", "tests.integration.entry_points", case], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=300)
    finally:
        stop(child)
    assert child.returncode == 0, err[-3000:]
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["provider"] == "stripe" and seen["imported"] == EXPECTED[case]
