"""Request bodies into the typed commands of the use cases (services/commands.py, and the
dispute's in services/disputes.py): the wire's shapes and spellings end here. Each body has
passed its route's schema (api/schemas.py) already.

``command`` builds any command whose fields are the body's fields and the path's ids, by the
field's type; the few bodies shaped otherwise have their own function below."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ..domain.catalog import Reason, Solution
from ..domain.errors import InvalidInput
from ..domain.money import Money
from ..domain.orders import OrderItem, PaymentRef
from ..domain.timefmt import parse
from ..services import commands as c
from ..services.disputes import OpenDispute


def fingerprint(body: dict[str, Any]) -> str:
    """Of a whole body: replaying the same order registration is not a conflict."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _money(data: dict[str, Any] | None, where: str) -> Money | None:
    return None if data is None else Money.from_dict(data, where)


def _timestamp(value: str, field: str) -> datetime:
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be an RFC 3339 timestamp with a time zone", code="VALIDATION_ERROR",
                           details={"field": field}) from exc


T = TypeVar("T")


_FIELDS: dict[type[Any], tuple[tuple[str, Any, bool], ...]] = {}


def _fields(cls: type[Any]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, has a default) of a command dataclass, None stripped from optional types."""
    if cls in _FIELDS:
        return _FIELDS[cls]
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if get_origin(kind) in (Union, types.UnionType):
            kind = next(a for a in get_args(kind) if a is not type(None))
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        out.append((f.name, kind, has_default))
    _FIELDS[cls] = tuple(out)
    return _FIELDS[cls]


def _value(kind: Any, value: Any, name: str) -> Any:
    if kind is Money:
        return Money.from_dict(value, name)
    if kind is datetime:
        return _timestamp(value, name)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if get_origin(kind) is tuple:
        return tuple(value)
    if get_origin(kind) is dict:
        return dict(value)
    return value


def command(cls: type[T], body: dict[str, Any], **ids: str) -> T:
    """The command ``cls`` from the path's ``ids`` and the body's fields of the same names (absent:
    None, or the field's default): a Money from its object, a timestamp parsed, an enum by value."""
    values: dict[str, Any] = {}
    for name, kind, has_default in _fields(cls):
        if name in ids:
            values[name] = ids[name]
        elif body.get(name) is not None:
            values[name] = _value(kind, body[name], name)
        elif not has_default:
            values[name] = None
    return cls(**values)


def register_order(body: dict[str, Any]) -> c.RegisterOrder:
    return c.RegisterOrder(order_id=body["order_id"], buyer_id=body["buyer_id"], seller_id=body["seller_id"],
                           items=tuple(OrderItem.from_dict(i, f"items[{n}]") for n, i in enumerate(body["items"])),
                           total=Money.from_dict(body["total"], "total"),
                           estimated_delivery_at=_timestamp(body["estimated_delivery_at"], "estimated_delivery_at"),
                           fingerprint=fingerprint(body),
                           ship_by=_timestamp(body["ship_by"], "ship_by") if body.get("ship_by") else None,
                           payment=PaymentRef.from_dict(body.get("payment")))


def open_dispute(body: dict[str, Any], order_id: str) -> OpenDispute:
    requested = body["requested"]
    return OpenDispute(order_id, Reason(body["reason"]), body["description"], Solution(requested["type"]),
                         _money(requested.get("amount"), "requested.amount"), tuple(body.get("item_ids") or ()))


def save_rule(body: dict[str, Any], rule_id: str) -> c.SaveRule:
    return c.SaveRule(rule_id, body["description"], body["mode"], int(body["priority"]), dict(body.get("when") or {}),
                      body["then"], body.get("expected_version"))


def simulate_settlement(body: dict[str, Any], order_id: str, refund_id: str) -> c.SimulateSettlement:
    failed = body["outcome"] == "FAILED"
    return c.SimulateSettlement(order_id, refund_id, (body.get("failure_reason") or "card_declined") if failed else None)
