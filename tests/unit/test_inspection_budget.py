"""The CPU-time budget of an inspection (chalicelib/inspection/budget.py): a file past it is
refused with INSPECTION_BUDGET_EXCEEDED, whatever its type; the same file within the budget is
served. Tiny budgets, never timing assertions."""
from __future__ import annotations

import pytest

from chalicelib.config import inspection_budget_inputs
from chalicelib.inspection import REASONS, budget, inspect, install
from tests import media

MAX = 60 * 1024 * 1024
NO_TIME = 1e-9  # spent before the first checkpoint


@pytest.fixture(autouse=True)
def hooks() -> None:
    install()  # what the evidence function's wiring does (bootstrap.inspector)


FILES = [("JPEG", media.jpeg((640, 480), gps=True), "image/jpeg"), ("PNG", media.png((200, 200)), "image/png"),
         ("PDF", media.pdf_with_javascript(), "application/pdf"), ("MP4", media.mp4(), "video/mp4")]


@pytest.mark.parametrize("label, data, content_type", FILES, ids=[f[0] for f in FILES])
def test_a_file_over_the_budget_is_refused_with_its_own_code(label: str, data: bytes, content_type: str) -> None:
    within = inspect(data, content_type, len(data), MAX, cpu_seconds=60.0)
    assert within.rejection is None and within.clean, label  # the same file, with time to check it
    over = inspect(data, content_type, len(data), MAX, cpu_seconds=NO_TIME)
    assert (over.rejection, over.clean, over.thumbnail) == (budget.CODE, None, None)
    assert over.sha256 == within.sha256


def test_the_code_has_a_message_for_the_app_and_checks_before_it_still_apply() -> None:
    assert budget.CODE == "INSPECTION_BUDGET_EXCEEDED" and budget.CODE in REASONS
    # What is refused before any parsing keeps its own code, budget or not.
    assert inspect(b"text", "image/jpeg", 4, MAX, cpu_seconds=NO_TIME).rejection == "UNRECOGNIZED_CONTENT"
    assert inspect(b"", "image/jpeg", 0, MAX, cpu_seconds=NO_TIME).rejection == "EMPTY_FILE"


def test_a_budget_used_up_stays_used_up_even_if_a_library_swallowed_the_error() -> None:
    with budget.limited(NO_TIME):
        with pytest.raises(budget.OverBudget):
            budget.check()
        try:
            budget.check()
        except budget.OverBudget:
            pass  # what pypdf may do with an error raised inside it
        assert budget.exceeded()
    with budget.limited(None):  # no budget: never over
        budget.check()
        assert not budget.exceeded()


def test_the_budget_is_half_the_timeout_at_the_functions_share_of_a_cpu() -> None:
    # Lambda: one vCPU at 1,769 MB, so the evidence function's 512 MB has about 0.29 of one.
    assert budget.cpu_share(512) == pytest.approx(0.289, abs=0.001) and budget.cpu_share(4096) == 1.0
    assert budget.cpu_seconds(512, 30) == pytest.approx(4.34, abs=0.01)
    configured = lambda env: budget.configured(*inspection_budget_inputs(env))  # noqa: E731
    assert configured({}) == budget.cpu_seconds(budget.EVIDENCE_MEMORY_MB, budget.EVIDENCE_TIMEOUT_SECONDS)
    assert configured({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}) == budget.cpu_seconds(1024)
    assert configured({"INSPECTION_CPU_SECONDS": "0.5", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}) == 0.5


def test_the_evidence_function_is_deployed_with_the_memory_and_timeout_the_budget_is_sized_for() -> None:
    import json
    from pathlib import Path

    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    stages = [config] + list(config["stages"].values())
    for stage in stages:
        function = stage.get("lambda_functions", {}).get("evidence-uploaded")
        if function is None:
            continue
        assert function["lambda_memory_size"] == budget.EVIDENCE_MEMORY_MB
        assert function["lambda_timeout"] == budget.EVIDENCE_TIMEOUT_SECONDS
    # The worst the budget allows, at that share, ends well inside the timeout.
    share = budget.cpu_share(budget.EVIDENCE_MEMORY_MB)
    assert budget.cpu_seconds() / share <= budget.EVIDENCE_TIMEOUT_SECONDS * 0.5 + 0.1
