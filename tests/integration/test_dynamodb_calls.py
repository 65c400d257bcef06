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
# refund webhook: the notice's order, the commit, the outbox's delete (the order's ledger is the
# refund's only record: no dispute is read or written; 4 before).
COUNTED = {"open": 4, "offer": 3, "message": 3, "accept": 4, "reject": 3, "escalate": 3, "cancel": 4, "decision": 4,
           "timer expiry": 4, "refund webhook": 3}
# The worker: read the order, mark the attempt sent, apply the answer, forget the outbox record
# (one BatchWriteItem). No dispute is read or written (7 before).
REFUND_SEND_DYNAMODB_CALLS = 5
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


def test_a_dispute_is_read_with_its_order_only_when_it_owes_a_refund(played: Player) -> None:
    """A dispute shows its refund from the order's ledger: one GetItem more for a dispute that owes
    one; a page of disputes reads the orders of its refunded ones in one BatchGetItem, none when
    it has none."""
    from tests.integration.actions import aws_calls
    from tests.integration.api import BUYER

    def calls(path: str) -> dict[str, int]:
        with aws_calls() as seen:
            r = played.api.get(path, BUYER)
        assert r.status_code == 200, r.json_body
        return {op: n for (service, op), n in seen.items() if service == "dynamodb"}

    resolved = played.api.get("/disputes?role=buyer&status=RESOLVED", BUYER).json_body["items"]
    [cancelled] = played.api.get("/disputes?role=buyer&status=CANCELLED", BUYER).json_body["items"]
    assert len(resolved) == 3 and all(d["refund"]["status"] == "SUCCEEDED" for d in resolved)
    assert calls(f"/disputes/{resolved[0]['dispute_id']}") == {"GetItem": 2}  # the dispute, its order
    assert calls(f"/disputes/{cancelled['dispute_id']}") == {"GetItem": 1}
    assert calls("/disputes?role=buyer&status=RESOLVED") == {"Query": 1, "BatchGetItem": 1}  # three orders at once
    assert calls("/disputes?role=buyer&status=CANCELLED") == {"Query": 1}
    assert calls("/disputes?role=buyer") == {"Query": 1, "BatchGetItem": 1}
