"""At most four DynamoDB calls for each action a party, a moderator, a timer or the payment provider
takes, the outbox's deliveries included (tests/integration/actions.py plays them). Each count is
also pinned exactly, so a change that adds a call shows here.

No action sends a refund: the request commits the refund it owes (ledger and outbox record) and
hands it to the refund queue (one SQS request, no DynamoDB call); the pay-refunds function sends
it afterwards. Its calls are counted apart, once per refund, and only where a refund is owed."""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration.actions import ACTIONS, Player, dynamodb
from tests.integration.api import Api

MAX_DYNAMODB_CALLS = 4
# open: 4 since version 1.3 (the auto-resolution rules are read as a dispute opens).
# refund webhook: the notice's order, the dispute's copy of the refund, the commit, the outbox's delete.
COUNTED = {"open": 4, "offer": 3, "message": 3, "accept": 4, "reject": 3, "escalate": 3, "cancel": 4, "decision": 4,
           "timer expiry": 4, "refund webhook": 4}
# The worker: read the order, mark the attempt sent (with the dispute's copy), apply the answer
# (with the dispute's copy), forget the outbox record (one BatchWriteItem).
REFUND_SEND_DYNAMODB_CALLS = 7
SENDS_A_REFUND = {"accept", "decision", "timer expiry"}


@pytest.fixture
def played(client: Any, wired: Any, clock: Any) -> Player:
    player = Player(Api(client), wired, clock)
    player.negotiated("o-negotiated")
    player.contested("o-contested")
    player.auto_resolved("o-auto")
    player.cancelled("o-cancelled")
    return player


def test_every_action_is_at_most_four_dynamodb_calls(played: Player) -> None:
    counts = {action: dynamodb(played.counted[action]) for action in ACTIONS}
    assert counts == COUNTED
    assert all(n <= MAX_DYNAMODB_CALLS for n in counts.values()), counts


def test_no_action_calls_the_payment_provider_or_waits_for_it(played: Player) -> None:
    """What owes a refund hands it to the refund queue in one request; nothing else of SQS."""
    for action in ACTIONS:
        sqs = {op: n for (service, op), n in played.counted[action].items() if service == "sqs"}
        assert sqs == ({"SendMessageBatch": 1} if action in SENDS_A_REFUND else {}), (action, sqs)


def test_sending_a_refund_is_counted_apart_and_only_where_one_is_owed(played: Player) -> None:
    sends = {action.removesuffix(": refund send"): dynamodb(calls) for action, calls in played.counted.items()
             if action.endswith(": refund send")}
    assert sends == dict.fromkeys(SENDS_A_REFUND, REFUND_SEND_DYNAMODB_CALLS), sends
