"""`make dev` as a process: started on free ports with its own state, always stopped."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_make_dev(state: Path, overrides: dict[str, str]) -> Iterator[dict[str, Any]]:
    """`make dev` on free ports with its own state, ready to serve; stopped (Ctrl-C, then kill)
    whatever happens."""
    port, moto_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "MOTO_PORT": str(moto_port), "LOCAL_STATE_DIR": str(state),
           "PYTHONUNBUFFERED": "1", **overrides}
    for var in ("AWS_ENDPOINT_URL", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_PUBLIC_KEY", "AUTH_PUBLIC_KEY_FILE"):
        env.pop(var, None)
    log = open(state / "dev.log", "w+")
    proc = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        # Generous: the first run on a busy machine imports and provisions for a while. Any
        # requests error (refused, reset, a slow first answer) only means "not ready yet".
        deadline = time.monotonic() + 300
        while True:
            try:
                if requests.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"make dev did not become ready:\n{log.read()[-4000:]}")
            time.sleep(0.3)
        yield {"base": base, "proc": proc, "env": env, "log": log, "ports": (port, moto_port)}
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen) -> None:
    """Stop `make dev` and everything it started, whatever happened: Ctrl-C first, then kill."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def make_token(env: dict, sub: str, groups: str = "", scopes: str = "") -> str:
    out = subprocess.run(["make", "--no-print-directory", "-s", "token", f"SUB={sub}", f"GROUPS={groups}",
                          f"SCOPES={scopes}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()
