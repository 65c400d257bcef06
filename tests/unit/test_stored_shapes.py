"""What the aggregates store, and what the outbox carries, is plain data: the domain's enums are
written as their values. (PynamoDB cannot serialise an Enum inside a raw map attribute; the
in-memory fakes keep objects, so without this check a leaked enum fails only against DynamoDB.)"""
from __future__ import annotations

from enum import Enum
from typing import Any

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, ReturnProblem
from chalicelib.domain.orders import Order
from chalicelib.services.disputes import ContestReturn, Decide
from tests.support import order_body
from tests.unit.world import MODERATOR, SELLER, SERVICE, World

PLAIN = (str, int, float, bool, type(None))


def not_plain(value: Any, where: str = "") -> list[str]:
    """Where, in a stored document, a value is not plain data (an Enum, a datetime, an object)."""
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in not_plain(v, f"{where}.{k}")]
    if isinstance(value, list | tuple):
        return [bad for i, v in enumerate(value) for bad in not_plain(v, f"{where}[{i}]")]
    if isinstance(value, Enum) or not isinstance(value, PLAIN):
        return [f"{where}: {type(value).__name__}"]
    return []


def stored(world: World) -> dict[str, Any]:
    s = world.state
    return {"orders": {k: o.to_dict() for k, (o, _) in s.orders.items()},
            "disputes": {k: d.to_dict() for k, d in s.disputes.items()},
            "outbox": {k: r.payload for k, r in s.outbox.items()}}


def test_the_checker_finds_an_enum_in_a_document() -> None:
    assert not_plain({"a": [{"outcome": Decision.REJECTED}], "b": "REJECTED"}) == [".a[0].outcome: Decision"]


def test_a_settled_refund_is_stored_as_plain_values(world: World) -> None:
    ctx = world.refunded()
    world.settle_payments()
    docs = stored(world)
    [refund] = docs["orders"][ctx["order_id"]]["ledger"]["refunds"]
    assert refund["status"] == "SUCCEEDED" and refund["history"][-1]["status"] == "SUCCEEDED"
    # The order's ledger is the refund's only record: the dispute keeps its reference alone.
    dispute = docs["disputes"][ctx["dispute_id"]]
    assert "refund" not in dispute and dispute["refund_id"] == refund["refund_id"]
    assert not_plain(docs) == []


def test_a_return_decision_is_stored_as_plain_values(world: World) -> None:
    ctx = world.escalated()
    world.services.disputes.decide(MODERATOR, Decide(ctx["dispute_id"], None, Decision.RETURN_AND_REFUND, None,
                                                       "The item goes back first, then the refund."))
    docs = stored(world)
    assert docs["disputes"][ctx["dispute_id"]]["timeline"][-1]["details"]["outcome"] == "RETURN_AND_REFUND"
    assert not_plain(docs) == []


def test_a_contested_return_and_its_scans_are_stored_as_plain_values(world: World) -> None:
    ctx = world.return_in_transit()
    world.services.disputes.contest_return(SELLER, ContestReturn(ctx["dispute_id"], None, ReturnProblem.EMPTY_BOX,
                                                                   "Nothing inside the parcel"))
    docs = stored(world)
    assert docs["disputes"][ctx["dispute_id"]]["timeline"][-1]["details"]["reason"] == "EMPTY_BOX"
    assert docs["orders"][ctx["order_id"]]["shipment"]["scans"][-1]["status"] == "DELIVERED"
    assert not_plain(docs) == []


def test_an_orders_items_and_payment_are_stored_as_the_maps_checkout_sent(world: World) -> None:
    body = order_body("o-9", payment={"provider": "stripe", "reference": "pi_123"})
    world.services.orders.register(SERVICE, parse.register_order(body))
    doc = stored(world)["orders"]["o-9"]
    assert doc["items"] == body["items"] and doc["payment"] == body["payment"]
    assert Order.from_dict(doc, 1).to_dict() == doc and not_plain(doc) == []
