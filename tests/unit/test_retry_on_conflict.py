"""The one retry of an optimistic-lock conflict: re-run the unit of work, then give up plainly."""
from __future__ import annotations

import pytest

from chalicelib.domain.errors import ConcurrentModification, Conflict
from chalicelib.services.base import CONFLICT_ATTEMPTS, retry_on_conflict


def test_a_change_that_lost_a_race_is_tried_again_and_its_result_returned() -> None:
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        if len(tries) < CONFLICT_ATTEMPTS:
            raise ConcurrentModification("someone wrote first")
        return "done"

    assert retry_on_conflict(attempt, "gave up") == "done" and len(tries) == CONFLICT_ATTEMPTS


def test_a_change_that_keeps_losing_gives_up_after_its_attempts_with_the_message_given() -> None:
    tries: list[int] = []

    def attempt() -> None:
        tries.append(1)
        raise ConcurrentModification("someone wrote first")

    with pytest.raises(ConcurrentModification, match="^the order kept changing$"):
        retry_on_conflict(attempt, "the order kept changing")
    assert len(tries) == CONFLICT_ATTEMPTS


def test_any_other_conflict_is_not_retried() -> None:
    tries: list[int] = []

    def attempt() -> None:
        tries.append(1)
        raise Conflict("the dispute is closed", code="DISPUTE_CLOSED")

    with pytest.raises(Conflict, match="closed"):
        retry_on_conflict(attempt, "gave up")
    assert len(tries) == 1
