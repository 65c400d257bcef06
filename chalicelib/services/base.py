"""What every group of use cases is given: a way to start a unit of work, the clock and the rules."""
from __future__ import annotations

from collections.abc import Callable

from ..domain.policy import Policy
from ..ports import Clock
from .unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], UnitOfWork]


class UseCases:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy) -> None:
        self.uow = uow
        self.clock = clock
        self.policy = policy
