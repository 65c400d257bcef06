"""JSON Schemas of every request body: the one source of them. The edge validates with them
(compiled once with fastjsonschema, api/validation.py); ``make openapi`` writes them into the
OpenAPI document (openapi/components/requests.yaml, named as in ``COMPONENTS`` below).

Unknown fields are refused (``additionalProperties: false``), so a typo never passes silently.
A ``description`` is documentation only: the validator ignores it.
"""
from __future__ import annotations

from typing import Any

from ..domain.catalog import Fault, Reason, Solution
from ..domain.rules import Mode, Then
from ..domain.standing import Flag, Level


def doc(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a description (for the OpenAPI document; the validator ignores it)."""
    return {**schema, "description": text}


ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._:@|-]+$"}
MONEY = {"type": "object", "description": "An amount in minor units of an ISO 4217 currency.",
         "additionalProperties": False, "required": ["amount", "currency"],
         "properties": {"amount": {"type": "integer", "minimum": 0, "maximum": 10**12},
                        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}
# RFC 3339 with an explicit zone, as a pattern, so a wrong value ("tomorrow") is told what it
# should be (api/validation.py PATTERNS) rather than a length; domain/timefmt.py parses it.
TIMESTAMP = {"type": "string",
             "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$",
             "description": "RFC 3339 with an explicit zone (`Z` or `+hh:mm`), e.g. `2026-11-23T10:00:00Z`."}
TEXT = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S",
        "description": "1-2000 characters, not only whitespace."}
VERSION = {"type": "integer", "minimum": 0,
           "description": "The dispute `version` the caller saw; if it has moved on, 409 `VERSION_CONFLICT`. "
                          "Omit it to act on the current version."}
SHORT = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"}
REASON = {"enum": [r.value for r in Reason]}
SOLUTION = {"enum": [s.value for s in Solution]}
FAULT = {"enum": [f.value for f in Fault],
         "description": "Additive (1.2). Whose failure a resolution records; seller standing counts `SELLER`."}
RULE_ACTION = {"enum": [t.value for t in Then]}
STANDING_LEVEL = {"enum": [x.value for x in Level]}
BUYER_FLAG = {"enum": [x.value for x in Flag]}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


ORDER_ITEM = _obj(["item_id", "title", "quantity", "unit_price"], item_id=ID,
                  title={"type": "string", "minLength": 1, "maxLength": 500},
                  quantity={"type": "integer", "minimum": 1, "maximum": 100000}, unit_price=MONEY)
REGISTER_ORDER = doc("Additive in 1.1: `ship_by` (default `SHIP_BY_SECONDS` after registration) and `payment`.", _obj(
    ["order_id", "buyer_id", "seller_id", "items", "total", "estimated_delivery_at"],
    order_id=ID, buyer_id=ID, seller_id=ID,
    items={"type": "array", "minItems": 1, "maxItems": 100, "items": ORDER_ITEM},
    total=MONEY, estimated_delivery_at=TIMESTAMP, ship_by=TIMESTAMP,
    payment=doc("Additive (1.1). The charge refunds go back to (a Stripe PaymentIntent `pi_...` or charge `ch_...`).",
                _obj(["provider", "reference"], provider={"enum": ["stripe", "simulated"]},
                     reference={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9_]+$"})),
))
SHIPMENT = _obj(["carrier", "tracking_number"], carrier=SHORT, tracking_number=SHORT)
TRACKING_EVENT = _obj(["status", "occurred_at"], status={"enum": ["IN_TRANSIT", "DELIVERED"]},
                      occurred_at=TIMESTAMP)
EMPTY = doc("No fields.", _obj([]))
REQUESTED = _obj(["type"], type=SOLUTION, amount=MONEY)
OPEN_DISPUTE = _obj(
    ["reason", "description", "requested"],
    reason=REASON,
    description={"type": "string", "minLength": 10, "maxLength": 2000, "pattern": "\\S"},
    requested=REQUESTED,
    item_ids=doc("Items of the order the dispute is about (optional); unknown ones are 422 `UNKNOWN_ITEM`.",
                 {"type": "array", "maxItems": 100, "uniqueItems": True, "items": ID}),
)
OFFER = _obj(["type"], type=SOLUTION, amount=MONEY, message=TEXT,
             expected_version=VERSION)
ACTION = _obj([], expected_version=VERSION)
ACTION_WITH_MESSAGE = _obj([], message=TEXT, expected_version=VERSION)
REJECT = _obj(["message"], message=TEXT, expected_version=VERSION)
DECISION = _obj(["outcome", "rationale"],
                outcome={"enum": ["REFUND_FULL", "REFUND_PARTIAL", "RETURN_AND_REFUND", "REJECTED"]},
                amount=MONEY, rationale={"type": "string", "minLength": 10, "maxLength": 4000, "pattern": "\\S"},
                fault=FAULT, expected_version=VERSION)
CONTEST_RETURN = _obj(["reason", "message"],
                      reason={"enum": ["EMPTY_BOX", "WRONG_ITEM", "DAMAGED", "NOT_SCANNED", "OTHER"]},
                      message=TEXT, expected_version=VERSION)
SIMULATED_SCAN = _obj(["status"], status={"enum": ["IN_TRANSIT", "DELIVERED"]})
SIMULATED_SETTLEMENT = _obj(["outcome"], outcome={"enum": ["SUCCEEDED", "FAILED"]}, failure_reason=SHORT)
RETURN_SHIPMENT = _obj(["carrier", "tracking_number"], carrier=SHORT, tracking_number=SHORT,
                       expected_version=VERSION)
MESSAGE = _obj(["body"], body=TEXT)
NOTE = _obj(["body"], body={"type": "string", "minLength": 1, "maxLength": 4000, "pattern": "\\S"})
EVIDENCE = _obj(
    ["file_name", "content_type", "size_bytes"],
    file_name=doc("The file's name as the user knows it (shown to the other side). No `/`, `\\` or control characters.",
                  {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\\\\\x00-\\x1f]+$"}),
    content_type=doc("`image/jpeg`, `image/png`, `image/webp` (up to 10 MiB), `video/mp4`, `video/quicktime` (up to "
                     "50 MiB) or `application/pdf` (up to 10 MiB); any other is 422 `UNSUPPORTED_CONTENT_TYPE`.",
                     {"type": "string", "minLength": 3, "maxLength": 100}),
    size_bytes=doc("The file's exact size in bytes. 0 is 422 `EMPTY_FILE`, over the type's limit 422 `FILE_TOO_LARGE`; "
                   "an upload of another size is rejected `SIZE_MISMATCH`.",
                   {"type": "integer", "minimum": 0, "maximum": 10**12}),
)
RULE_CONDITIONS = doc("Every key optional; all given must hold.", _obj(
    [], reasons={"type": "array", "maxItems": len(Reason), "items": REASON},
    max_amount=MONEY,
    no_carrier_scan_days=doc("The parcel was last seen (its latest scan, else its shipment, else the order) at least "
                             "this many whole days before the dispute opened.",
                             {"type": "integer", "minimum": 1, "maximum": 365}),
    seller_levels={"type": "array", "maxItems": len(Level), "items": STANDING_LEVEL},
    buyer_flags={"type": "array", "maxItems": len(Flag), "items": BUYER_FLAG}))
RULE = _obj(
    ["description", "mode", "priority", "then"],
    description={"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
    mode={"enum": [m.value for m in Mode]},
    priority=doc("Lower acts first.", {"type": "integer", "minimum": 0, "maximum": 1000}),
    when=RULE_CONDITIONS,
    then=RULE_ACTION,
    expected_version=VERSION,
)

# The OpenAPI components these schemas are (make openapi writes them, in this order, and refers
# to them by name wherever they are used; any other part is written inline).
COMPONENTS: dict[str, dict[str, Any]] = {
    "Reason": REASON, "Solution": SOLUTION, "Fault": FAULT, "RuleAction": RULE_ACTION,
    "StandingLevel": STANDING_LEVEL, "BuyerFlag": BUYER_FLAG, "Id": ID, "Money": MONEY, "Timestamp": TIMESTAMP,
    "Text": TEXT, "ShortText": SHORT, "ExpectedVersion": VERSION, "OrderItemInput": ORDER_ITEM,
    "RegisterOrderRequest": REGISTER_ORDER, "ShipmentRequest": SHIPMENT, "TrackingEventRequest": TRACKING_EVENT,
    "EmptyRequest": EMPTY, "RequestedSolution": REQUESTED, "OpenDisputeRequest": OPEN_DISPUTE,
    "OfferRequest": OFFER, "ActionRequest": ACTION, "ActionWithMessageRequest": ACTION_WITH_MESSAGE,
    "RejectRequest": REJECT, "SimulatedScanRequest": SIMULATED_SCAN,
    "SimulatedSettlementRequest": SIMULATED_SETTLEMENT, "ContestReturnRequest": CONTEST_RETURN,
    "ReturnShipmentRequest": RETURN_SHIPMENT, "DecisionRequest": DECISION, "NoteRequest": NOTE,
    "MessageRequest": MESSAGE, "EvidenceRequest": EVIDENCE, "RuleConditions": RULE_CONDITIONS, "RuleRequest": RULE,
}
