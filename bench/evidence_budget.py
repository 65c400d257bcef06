"""Evidence inspection under Lambda's CPU share: the worst inputs against the function's timeout.

Lambda gives a function CPU in proportion to its memory: the evidence function's 512 MB is about
0.29 of a vCPU (chalicelib/inspection/budget.py). Each worst-case input of bench/evidence_memory.py
is inspected in a fresh process pinned to one core (``os.sched_setaffinity``) and held to that
share by a duty cycle (the parent stops it with SIGSTOP for 71 ms of every 100 ms), with the
budget the evidence function runs with. Reported per input: the outcome, the CPU seconds
(``thread_time``) and the wall seconds of ``inspect()`` alone (the imports and the read are done
before the quota starts). The goal: the slowest input, accepted or refused, ends within half of
the 30 s timeout, and what the budget refuses is refused with INSPECTION_BUDGET_EXCEEDED.

    make bench        (or: python -m bench.evidence_budget)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.evidence_memory import maker
from bench.report import expect, write

PERIOD = 0.1  # seconds of one duty cycle
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
from chalicelib.domain.evidence import LIMITS
from chalicelib.config import inspection_budget_inputs
from chalicelib.inspection import budget, inspect, install
install()
path, content_type = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
print("ready", flush=True)
sys.stdin.readline()
wall, cpu = time.perf_counter(), time.thread_time()
result = inspect(data, content_type, len(data), LIMITS[content_type], cpu_seconds=budget.configured(*inspection_budget_inputs()))
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.thread_time() - cpu,
                  "rejection": result.rejection, "served": len(result.clean or b"")}), flush=True)
"""


def throttled(path: str, content_type: str, share: float) -> dict[str, Any]:
    """Inspect one file in a child held to ``share`` of one core."""
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}
    env.pop("INSPECTION_CPU_SECONDS", None)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path, content_type], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        expect(proc.stdout.readline().strip() == "ready", "the inspecting child did not start")
        os.sched_setaffinity(proc.pid, {sorted(os.sched_getaffinity(0))[-1]})
        proc.stdin.write("\n")
        proc.stdin.flush()
        running = PERIOD * share
        while proc.poll() is None:
            time.sleep(running)
            try:
                os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(PERIOD - running)
            finally:
                try:
                    os.kill(proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        out = proc.stdout.read().strip().splitlines()
        expect(proc.wait() == 0 and bool(out), f"the inspecting child failed on {path}")
        return dict(json.loads(out[-1]))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def main() -> int:
    from chalicelib.inspection import budget

    share = budget.cpu_share(budget.EVIDENCE_MEMORY_MB)
    limit = budget.configured(memory_mb=budget.EVIDENCE_MEMORY_MB)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (label, content_type, expected) in enumerate(maker("--list")):
            path = os.path.join(tmp, "input")
            maker("--make", str(n), path)
            r = throttled(path, content_type, share)
            outcome = r["rejection"] or "ACCEPTED"
            # Within the budget the file gets its own outcome; past it, the budget's code.
            expect(outcome in ((expected or "ACCEPTED"), budget.CODE), f"{label}: expected {expected}, got {outcome}")
            expect(outcome != "ACCEPTED" or r["served"] > 0, f"{label}: accepted with nothing to serve")
            rows.append({"input": label, "content_type": content_type, "outcome": outcome,
                         "outcome_unlimited": expected or "ACCEPTED", "cpu_seconds": round(r["cpu"], 3),
                         "wall_seconds": round(r["wall"], 3), "share_measured": round(r["cpu"] / r["wall"], 3)
                         if r["wall"] > 0.05 else None})
            print(f"{label:60} {outcome:28} cpu {r['cpu']:6.2f} s  wall {r['wall']:6.2f} s", flush=True)
    accepted = [r for r in rows if r["outcome"] == "ACCEPTED"]
    timeout = budget.EVIDENCE_TIMEOUT_SECONDS
    for r in rows:  # what the CPU used takes at Lambda's share: the machine's other load left out
        r["lambda_seconds"] = round(r["cpu_seconds"] / share, 2)
    worst = max(rows, key=lambda r: r["cpu_seconds"])
    worst_accepted = max(accepted, key=lambda r: r["cpu_seconds"])
    write("evidence_budget",
          method=("each worst-case input of bench/evidence_memory.py inspected in a fresh process pinned to one core "
                  "and held to Lambda's CPU share at 512 MB by a duty cycle (SIGSTOP/SIGCONT every 100 ms), with "
                  "the evidence function's CPU budget; inspect() alone timed (wall: perf_counter, CPU: thread_time). "
                  "lambda_seconds = CPU / share: the wall time at that share on a machine with nothing else running "
                  "(the measured wall also holds this shared machine's other load)"),
          repetitions={"inputs": len(rows), "runs_per_input": 1},
          results={"rows": rows, "worst": worst, "worst_accepted": worst_accepted,
                   "refused_over_budget": [r["input"] for r in rows if r["outcome"] == budget.CODE]},
          cpu_share=round(share, 3), budget_cpu_seconds=limit, timeout_seconds=timeout,
          ratio_worst_over_timeout=round(worst["lambda_seconds"] / timeout, 2),
          ratio_worst_accepted_over_timeout=round(worst_accepted["lambda_seconds"] / timeout, 2),
          before=("no budget: nothing bounded an inspection's CPU time, so a file's cost was bounded only by the "
                  "size, page, object and pixel limits; at 0.29 of a vCPU the function's timeout was the only stop"),
          goal="every input ends within half of the timeout (ratio at most 0.5) at the function's CPU share")
    return 0


if __name__ == "__main__":
    sys.exit(main())
