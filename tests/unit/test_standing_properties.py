"""Seller standing and buyer signals over the in-memory fakes: random histories, and after every
step the answers equal a recomputation from the whole history (tests/standing_machine.py)."""
from __future__ import annotations

from hypothesis import HealthCheck, settings

from chalicelib.domain.disputes import Dispute
from chalicelib.domain.orders import Order
from tests.standing_machine import POLICY, StandingMachine
from tests.unit.world import new_world


class OverTheFakes(StandingMachine):
    def wire(self) -> None:
        world = new_world(POLICY)
        self.world = world
        self.services, self.clock, self.started = world.services, world.clock, world.timers.started

    def history(self) -> tuple[list[Order], list[Dispute]]:
        s = self.world.state
        return [o for o, _ in s.orders.values()], list(s.disputes.values())

    def teardown(self) -> None:
        if hasattr(self, "world"):
            self.world.payments.close()


OverTheFakes.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestStandingOverTheFakes = OverTheFakes.TestCase
