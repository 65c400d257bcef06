"""The README's curl session, played as a newcomer plays it: one step at a time, pasted into one
shell opened in the repository, with a person's pause between steps, against a fresh `make dev`
with its default durations. Each step must succeed, and every answer the README shows must hold:
its codes, statuses and other literal values (ids, times and sizes differ on every run)."""
from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.functional.make_dev import ROOT, running_make_dev

SECTION = "## A whole dispute with curl"
PAUSE_SECONDS = 1.5  # a person reading the answer before the next step
STEP_SECONDS = 120  # generous: a loaded machine, and the steps that wait for S3 or the refund
# Values the README shows that differ on every run.
VARYING_KEYS = {"order_id", "dispute_id", "offer_id", "evidence_id", "refund_id", "message_id", "sha256", "path",
                "policy", "key", "url", "download_url", "thumbnail_url", "x-amz-signature"}


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)  # the answer lines the README shows after it

    def expected(self) -> list[str]:
        """The `"key":"value"` pairs of the shown answer that are the same on every run."""
        text = " ".join(line.lstrip("# ").strip() for line in self.shown)
        pairs = re.findall(r'"([\w-]+)":"([^"]*)"', text)
        return [f'"{k}":"{v}"' for k, v in pairs
                if k not in VARYING_KEYS and "..." not in v and not re.match(r"\d{4}-\d\d-\d\dT", v)]

    def status(self) -> int | None:
        first = self.shown[0] if self.shown else ""
        m = re.match(r"#\s+(\d{3})\b", first)
        return int(m.group(1)) if m else None


def readme_steps() -> list[Step]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index(SECTION):].split("```sh\n", 1)[1].split("```", 1)[0]
    steps: list[Step] = []
    current: list[str] = []
    showing = False
    for line in block.splitlines():
        if line.startswith("#"):
            if current:
                steps.append(Step("\n".join(current)))
                current = []
            # An answer starts with its status; its continuation lines are indented.
            if re.match(r"#\s+\d{3}\b", line) or (showing and line.startswith("#  ")):
                steps[-1].shown.append(line)
                showing = True
            else:
                showing = False
        elif line.strip():
            current.append(line)
            showing = False
        elif current:
            steps.append(Step("\n".join(current)))
            current = []
    if current:
        steps.append(Step("\n".join(current)))
    return steps


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
    steps = readme_steps()
    shown = [s for s in steps if s.shown]
    assert len(steps) >= 18 and len(shown) >= 15
    assert all(s.expected() or s.status() == 204 for s in shown), [s.command for s in shown if not s.expected()]


def test_the_readme_session_works_step_by_step_against_make_dev(tmp_path: Path) -> None:
    steps = readme_steps()
    with running_make_dev(tmp_path, {}) as server:
        env = dict(server["env"])
        shell = Shell(env)
        try:
            for number, step in enumerate(steps, 1):
                # The README names make dev's default address; this one runs on a free port.
                command = step.command.replace("API=http://127.0.0.1:8000", f"API={server['base']}")
                rc, out = shell.run(command)
                where = f"step {number}:\n{step.command}\n--- answered:\n{out[-3000:]}"
                assert rc == 0, where
                assert "curl: (" not in out and "Traceback" not in out, where
                if step.status() == 204:
                    assert out.strip().splitlines()[-1] == "204", where
                compact = re.sub(r'"\s*:\s*', '":', out)
                missing = [pair for pair in step.expected() if pair not in compact]
                assert missing == [], f"{where}\n--- the README shows, the service did not answer: {missing}"
                time.sleep(PAUSE_SECONDS)
        finally:
            shell.close()
