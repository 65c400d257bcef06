"""JSON Schemas of every request body (compiled once with fastjsonschema, in chalicelib/http.py).

Unknown fields are refused (``additionalProperties: false``), so a typo never passes silently.
"""
from __future__ import annotations

from typing import Any

from ..domain.catalog import Fault, Reason, Solution
from ..domain.rules import Mode, Then
from ..domain.standing import Flag, Level

ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._:@|-]+$"}
MONEY = {"type": "object", "additionalProperties": False, "required": ["amount", "currency"],
         "properties": {"amount": {"type": "integer", "minimum": 0, "maximum": 10**12},
                        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
# RFC 3339 with an explicit zone, as a pattern, so a wrong value ("tomorrow") is told what it
# should be (chalicelib/http.py PATTERNS) rather than a length; domain/timefmt.py parses it.
TIMESTAMP = {"type": "string",
             "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"}
TEXT = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"}
VERSION = {"type": "integer", "minimum": 0}
SHORT = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


REGISTER_ORDER = _obj(
    ["order_id", "buyer_id", "seller_id", "items", "total", "estimated_delivery_at"],
    order_id=ID, buyer_id=ID, seller_id=ID,
    items={"type": "array", "minItems": 1, "maxItems": 100, "items": _obj(
        ["item_id", "title", "quantity", "unit_price"], item_id=ID,
        title={"type": "string", "minLength": 1, "maxLength": 500},
        quantity={"type": "integer", "minimum": 1, "maximum": 100000}, unit_price=MONEY)},
    total=MONEY, estimated_delivery_at=TIMESTAMP, ship_by=TIMESTAMP,
    payment=_obj(["provider", "reference"], provider={"enum": ["stripe", "simulated"]},
                 reference={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9_]+$"}),
)
SHIPMENT = _obj(["carrier", "tracking_number"], carrier=SHORT, tracking_number=SHORT)
TRACKING_EVENT = _obj(["status", "occurred_at"], status={"enum": ["IN_TRANSIT", "DELIVERED"]},
                      occurred_at=TIMESTAMP)
EMPTY = _obj([])
OPEN_DISPUTE = _obj(
    ["reason", "description", "requested"],
    reason={"enum": [r.value for r in Reason]},
    description={"type": "string", "minLength": 10, "maxLength": 2000, "pattern": "\\S"},
    requested=_obj(["type"], type={"enum": [s.value for s in Solution]}, amount=MONEY),
    item_ids={"type": "array", "maxItems": 100, "uniqueItems": True, "items": ID},
)
OFFER = _obj(["type"], type={"enum": [s.value for s in Solution]}, amount=MONEY, message=TEXT,
             expected_version=VERSION)
ACTION = _obj([], expected_version=VERSION)
ACTION_WITH_MESSAGE = _obj([], message=TEXT, expected_version=VERSION)
REJECT = _obj(["message"], message=TEXT, expected_version=VERSION)
DECISION = _obj(["outcome", "rationale"],
                outcome={"enum": ["REFUND_FULL", "REFUND_PARTIAL", "RETURN_AND_REFUND", "REJECTED"]},
                amount=MONEY, rationale={"type": "string", "minLength": 10, "maxLength": 4000, "pattern": "\\S"},
                fault={"enum": [f.value for f in Fault]}, expected_version=VERSION)
CONTEST_RETURN = _obj(["reason", "message"],
                      reason={"enum": ["EMPTY_BOX", "WRONG_ITEM", "DAMAGED", "NOT_SCANNED", "OTHER"]},
                      message=TEXT, expected_version=VERSION)
SIMULATED_SCAN = _obj(["status"], status={"enum": ["IN_TRANSIT", "DELIVERED"]})
SIMULATED_SETTLEMENT = _obj(["outcome"], outcome={"enum": ["SUCCEEDED", "FAILED"]}, failure_reason=SHORT)
RETURN_SHIPMENT = _obj(["carrier", "tracking_number"], carrier=SHORT, tracking_number=SHORT,
                       expected_version=VERSION)
MESSAGE = _obj(["body"], body=TEXT)
NOTE = _obj(["body"], body={"type": "string", "minLength": 1, "maxLength": 4000, "pattern": "\\S"})
EVIDENCE = _obj(["file_name", "content_type", "size_bytes"],
                file_name={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\\\x00-\\x1f]+$"},
                content_type={"type": "string", "minLength": 3, "maxLength": 100},
                size_bytes={"type": "integer", "minimum": 0, "maximum": 10**12})
RULE = _obj(
    ["description", "mode", "priority", "then"],
    description={"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
    mode={"enum": [m.value for m in Mode]},
    priority={"type": "integer", "minimum": 0, "maximum": 1000},
    when=_obj([], reasons={"type": "array", "maxItems": len(Reason), "items": {"enum": [r.value for r in Reason]}},
              max_amount=MONEY, no_carrier_scan_days={"type": "integer", "minimum": 1, "maximum": 365},
              seller_levels={"type": "array", "maxItems": len(Level), "items": {"enum": [x.value for x in Level]}},
              buyer_flags={"type": "array", "maxItems": len(Flag), "items": {"enum": [x.value for x in Flag]}}),
    then={"enum": [t.value for t in Then]},
    expected_version=VERSION,
)
