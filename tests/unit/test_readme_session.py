"""The README's steps and the literals its answers promise, read from the README itself (the
functional test plays them against `make dev`; this checks what it will look for)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import readme_session as r

README = (Path(__file__).resolve().parents[2] / "docs" / "WALKTHROUGH.md").read_text()
BLOCKS = {name: r.steps(block) for name, block in r.blocks(README).items()}


def step(block: str, fragment: str) -> r.Step:
    return next(s for s in BLOCKS[block] if fragment in s.command and s.shown)


def test_numbers_booleans_and_arrays_are_promised_where_they_stand() -> None:
    settled = step("session", 'grep -q \'"SETTLED"\'').expected()
    assert ((("escrow", "refunded", "amount"), 800) in settled and (("escrow", "released", "amount"), 1199) in settled
            and (("refunds", "attempts"), 1) in settled and (("escrow", "status"), "SETTLED") in settled)
    delivered = step("session", "tracking-events").expected()
    assert (("dispute_eligibility", "can_open"), True) in delivered
    assert (("dispute_eligibility", "reasons"), ["NOT_AS_DESCRIBED", "DAMAGED_OR_DEFECTIVE", "WRONG_ITEM",
                                                 "MISSING_PARTS", "COUNTERFEIT"]) in delivered
    assert (("dispute_eligibility", "why_not"), None) in delivered
    escalated = step("session", "/escalate").expected()
    assert (("evidence_checklist", "satisfied"), True) in escalated and (("evidence_checklist", "missing"), []) in escalated
    decided = step("session", "/decision").expected()
    assert (("resolution", "amount", "amount"), 800) in decided and (("refund", "status"), "PENDING") in decided


def test_what_differs_on_every_run_is_not_promised() -> None:
    promised = [lit for block in BLOCKS.values() for s in block for lit in s.expected()]
    keys = {path[-1] for path, _ in promised}
    assert keys.isdisjoint(r.VARYING_KEYS)
    assert not any(isinstance(v, str) and ("..." in v or v[:2] == "20") for _, v in promised)


def test_each_shown_answer_has_its_status_and_the_queue_step_is_found() -> None:
    shown = [(s.status(), s.command.split()[0]) for s in BLOCKS["session"] if s.shown]
    assert [status for status, _ in shown] == [201, 200, 200, 201, 201, 201, 201, 204, 200, 200, 200, 200, 200,
                                               409, 404, 401]
    queue = [n for n, s in enumerate(BLOCKS["session"], 1) if "/moderation/disputes" in s.command]
    assert queue == [13] and BLOCKS["session"][12].status() == 200


def test_the_sandbox_block_makes_its_own_order_and_dispute() -> None:
    sandbox = BLOCKS["sandbox"]
    text = "\n".join(s.command for s in sandbox)
    assert "$ID" not in text and "$ORDER/" not in text  # nothing of the session's resolved dispute
    assert "SORDER=" in text and "SID=$(" in text and "-X POST $API/orders " in text
    assert [s.status() for s in sandbox if s.shown] == [201, 200, 200, 200, 409, 409]
    expired = step("sandbox", "expire-deadline").expected()
    assert (("resolution", "decided_by"), "system") in expired and (("resolution", "amount", "amount"), 2500) in expired


def test_missing_names_what_the_answer_does_not_hold_where_promised() -> None:
    promised = step("session", 'grep -q \'"SETTLED"\'').expected()
    escrow = {"status": "SETTLED", "held": {"amount": 1999}, "refunded": {"amount": 800},
              "refund_pending": {"amount": 0}, "released": {"amount": 1199}, "still_held": {"amount": 0}}
    good: dict[str, Any] = {"status": "COMPLETED", "escrow": escrow, "refunds": [{"status": "SUCCEEDED", "attempts": 1}]}
    out = f"{r.STATUS_MARK} 200\n{json.dumps(good, indent=1)}\n"
    assert r.missing(promised, out) == [] and r.statuses(out) == [200]
    swapped = {**good, "escrow": {**good["escrow"], "refunded": {"amount": 1199}, "released": {"amount": 800}}}
    assert r.missing(promised, json.dumps(swapped)) == [(("escrow", "refunded", "amount"), 800),
                                                        (("escrow", "released", "amount"), 1199)]
    assert r.missing([(("dispute_eligibility", "reasons"), ["A", "B"])],
                     json.dumps({"dispute_eligibility": {"reasons": ["B", "A"]}})) != []
