"""What every group of use cases is given: a way to start a unit of work, the clock and the rules."""
from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from ..domain.errors import ConcurrentModification
from ..domain.policy import Policy
from ..ports import Clock
from .unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], UnitOfWork]
T = TypeVar("T")
# Tries of a change whose aggregate another writer committed first (a webhook and an answer at once).
CONFLICT_ATTEMPTS = 3


def retry_on_conflict(attempt: Callable[[], T], gave_up: str, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run ``attempt`` (one unit of work that re-reads what it changes, so the domain decides
    again) until no other writer got in first; after ``attempts`` tries, ConcurrentModification
    with ``gave_up`` as its message. Any other error is not retried."""
    for _ in range(attempts):
        try:
            return attempt()
        except ConcurrentModification:
            continue
    raise ConcurrentModification(gave_up)


class Fired(StrEnum):
    """What a timer's firing came to (logged by the handler)."""

    STALE = "stale"  # nothing was waiting for it any more (its step is done, or a newer round began)
    EXPIRED = "expired"  # a dispute's deadline passed: its default outcome applied
    REMINDED = "reminded"  # a party was reminded of their deadline
    REFUNDED = "refunded"  # never shipped: the buyer got everything back
    OVERDUE = "overdue"  # a refund still pending at its settlement deadline: asked again
    RETRIED = "retried"  # a failed refund's next attempt went out


class UseCases:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy) -> None:
        self.uow = uow
        self.clock = clock
        self.policy = policy
