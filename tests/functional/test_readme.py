"""The README's curl session, played as a newcomer plays it: one step at a time, pasted into one
shell opened in the repository, with a person's pause between steps, against a fresh `make dev`
with its default durations; then its Sandbox block, in the same shell. Each step must succeed, and
every answer the README shows must hold: its HTTP status, its codes and other literal values
(strings, numbers, booleans, arrays, each in the object that holds it; ids, times and sizes differ
on every run), and the moderation queue must hold the session's dispute."""
from __future__ import annotations

import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import readme_session
from tests.functional.make_dev import ROOT, running_make_dev
from tests.readme_session import Step

PAUSE_SECONDS = 1.5  # a person reading the answer before the next step
STEP_SECONDS = 120  # generous: a loaded machine, and the steps that wait for S3 or the refund
# Each curl also writes its HTTP status, apart from what the step prints or captures
# (on a line of its own: an answer's body has no final newline.)
CURL_STATUS = f"curl() {{ command curl -w '%{{stderr}}\\n{readme_session.STATUS_MARK} %{{http_code}}\\n' \"$@\"; }}"


def readme_blocks() -> dict[str, list[Step]]:
    return {name: readme_session.steps(block)
            for name, block in readme_session.blocks((ROOT / "docs" / "WALKTHROUGH.md").read_text()).items()}


class Shell:
    """One bash, fed steps on its standard input, as a terminal would be."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash"], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def run(self, command: str) -> tuple[int, str]:
        marker = f"step-done-{uuid.uuid4().hex}"
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n__rc=$?; printf '\\n{marker} %s\\n' \"$__rc\"\n")
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + STEP_SECONDS
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"step still running after {STEP_SECONDS} s:\n{command}\n{''.join(out)[-2000:]}")
            if line.startswith(marker):
                return int(line.split()[1]), "".join(out)
            out.append(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


def test_the_readme_session_parses_into_steps_with_their_answers() -> None:
    steps = readme_blocks()["session"]
    shown = [s for s in steps if s.shown]
    assert len(steps) >= 18 and len(shown) >= 15
    assert all(s.expected() or s.status() == 204 for s in shown), [s.command for s in shown if not s.expected()]


def play(shell: Shell, server: dict[str, Any], block: str, steps: list[Step]) -> None:
    for number, step in enumerate(steps, 1):
        # The README names make dev's default address; this one runs on a free port.
        command = step.command.replace("API=http://127.0.0.1:8000", f"API={server['base']}")
        rc, out = shell.run(command)
        where = f"{block} step {number}:\n{step.command}\n--- answered:\n{out[-3000:]}"
        assert rc == 0, where
        assert "curl: (" not in out and "Traceback" not in out, where
        shown = step.status()
        if shown == 204:
            assert out.strip().splitlines()[-1] == "204", where
        elif shown is not None:
            answered = readme_session.statuses(out)
            assert answered and answered[-1] == shown, f"{where}\n--- the README shows {shown}, got {answered}"
        lost = readme_session.missing(step.expected(), out)
        assert lost == [], f"{where}\n--- the README shows, the service did not answer: {lost}"
        if "/moderation/disputes" in step.command:  # the queue holds the session's dispute
            _, session_id = shell.run('printf "%s\\n" "$ID"')
            queued = [d["dispute_id"] for a in readme_session.answers(out) for d in a.get("items", [])]
            assert session_id.strip() and session_id.strip() in queued, where
        time.sleep(PAUSE_SECONDS)


def test_the_readme_session_then_its_sandbox_work_step_by_step_against_make_dev(tmp_path: Path) -> None:
    blocks = readme_blocks()
    with running_make_dev(tmp_path, {}) as server:
        shell = Shell(dict(server["env"]))
        try:
            assert shell.run(CURL_STATUS)[0] == 0
            play(shell, server, "session", blocks["session"])
            play(shell, server, "sandbox", blocks["sandbox"])  # after the session, in the same shell
        finally:
            shell.close()
