"""At most four DynamoDB calls for each action a party, a moderator, a timer or the payment provider
takes, the outbox's deliveries included (tests/integration/actions.py plays them). Each count is
also pinned exactly, so a change that adds a call shows here.

The refund webhook is the one action still over: 5 (the notice's order, the dispute's copy of the
refund, the commit, the outbox's delete, and a second read of the order to see whether an older
attempt's success left a newer attempt to cancel).

Sending a refund is still done by the request that owes it (after its commit, by the outbox
relay): its calls are counted apart, and bounded here as they stand until the refund moves to an
asynchronous worker."""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration.actions import ACTIONS, Player, dynamodb
from tests.integration.api import Api

MAX_DYNAMODB_CALLS = 4
# open: 4 since version 1.3 (the auto-resolution rules are read as a dispute opens).
COUNTED = {"open": 4, "offer": 3, "message": 3, "accept": 4, "reject": 3, "escalate": 3, "cancel": 4, "decision": 4,
           "timer expiry": 4, "refund webhook": 5}
OVER_BUDGET = {"refund webhook"}
REFUND_SEND_DYNAMODB_CALLS = 6  # read the order, mark it sending, read it again and apply the answer
SENDS_A_REFUND = {"accept", "decision", "timer expiry"}


@pytest.fixture
def played(client: Any, wired: Any, clock: Any) -> Player:
    player = Player(Api(client), wired, clock)
    player.negotiated("o-negotiated")
    player.contested("o-contested")
    player.auto_resolved("o-auto")
    player.cancelled("o-cancelled")
    return player


def test_every_action_but_the_webhook_is_at_most_four_dynamodb_calls_besides_sending_a_refund(
        played: Player) -> None:
    counts = {action: dynamodb(played.counted[action]) for action in ACTIONS}
    assert counts == COUNTED
    assert all(n <= MAX_DYNAMODB_CALLS for action, n in counts.items() if action not in OVER_BUDGET), counts


def test_sending_a_refund_is_counted_apart_and_only_where_one_is_owed(played: Player) -> None:
    sends = {action.removesuffix(": refund send"): dynamodb(calls) for action, calls in played.counted.items()
             if action.endswith(": refund send")}
    assert sends == dict.fromkeys(SENDS_A_REFUND, REFUND_SEND_DYNAMODB_CALLS), sends
