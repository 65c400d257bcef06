"""The CPU time one inspection may spend, sized to the evidence function's share of a CPU.

Lambda gives a function CPU in proportion to its memory: a full vCPU at 1,769 MB, so the evidence
function's 512 MB is about 0.29 of one. A file that takes 7 s of a core there takes about 25 s,
close to its 30 s timeout; a timeout is retried by the queue and ends in the dead-letter queue.
So an inspection runs on a CPU-time budget (``time.thread_time``: the CPU of the thread that
inspects, whatever else the process runs), checked at the inspectors' checkpoints: pypdf's every
object parsed and stream decoded, between the steps of a photo, every box of a video. A file over
it is refused (INSPECTION_BUDGET_EXCEEDED), recorded like any other rejection, never retried.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

CODE = "INSPECTION_BUDGET_EXCEEDED"
FULL_VCPU_MB = 1769  # Lambda: a function of this much memory has one vCPU's worth of CPU
# The function the budget is sized for (.chalice/config.json, evidence-uploaded; a deploy test
# checks they agree).
EVIDENCE_MEMORY_MB = 512
EVIDENCE_TIMEOUT_SECONDS = 30
# Half of the timeout for the inspection's CPU, at the function's share: the download, the upload
# of the cleaned copy, the commits and a slow neighbour get the other half.
SHARE_OF_TIMEOUT = 0.5


class OverBudget(Exception):
    """The inspection used its CPU time: the file is refused with CODE."""

    code = CODE


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.thread_time() + seconds
        self.exceeded = False


_BUDGET: ContextVar[_Budget | None] = ContextVar("inspection_cpu_budget", default=None)


def cpu_share(memory_mb: int) -> float:
    """The fraction of one vCPU a Lambda function of ``memory_mb`` gets (at most 1: more memory
    brings more vCPUs, which one inspection's single thread cannot use)."""
    return min(1.0, memory_mb / FULL_VCPU_MB)


def cpu_seconds(memory_mb: int = EVIDENCE_MEMORY_MB, timeout_seconds: float = EVIDENCE_TIMEOUT_SECONDS) -> float:
    """The CPU seconds an inspection may use in a function of this memory and timeout."""
    return round(cpu_share(memory_mb) * timeout_seconds * SHARE_OF_TIMEOUT, 2)


def configured(override: float | None = None, memory_mb: int | None = None) -> float:
    """The budget of this process: ``override`` (INSPECTION_CPU_SECONDS) if set, else sized to the
    function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, which Lambda sets; the evidence function's
    otherwise, so `make dev` refuses what the deployed function would). config.py reads both."""
    if override:
        return override
    return cpu_seconds(memory_mb or EVIDENCE_MEMORY_MB)


@contextmanager
def limited(seconds: float | None) -> Iterator[_Budget | None]:
    """Inspect within ``seconds`` of CPU (None: no budget); ``check()`` raises past it."""
    budget = None if seconds is None else _Budget(seconds)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def check() -> None:
    """A checkpoint: OverBudget once the CPU time is used up (and at every later checkpoint, so a
    library that swallows the first one cannot carry on)."""
    budget = _BUDGET.get()
    if budget is not None and (budget.exceeded or time.thread_time() > budget.deadline):
        budget.exceeded = True
        raise OverBudget(CODE)


def exceeded() -> bool:
    """Whether the current budget ran out (checked once more now)."""
    try:
        check()
    except OverBudget:
        return True
    return False
