"""Request bodies into the typed commands of the use cases (services/commands.py): the wire's
shapes and spellings end here. Each body has passed its route's schema (api/schemas.py) already."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from ..domain.catalog import Fault, Reason, Solution
from ..domain.errors import InvalidInput
from ..domain.money import Money
from ..domain.timefmt import parse
from ..services import commands as c


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


def register_order(body: dict[str, Any]) -> c.RegisterOrder:
    return c.RegisterOrder(order_id=body["order_id"], buyer_id=body["buyer_id"], seller_id=body["seller_id"],
                           items=tuple(body["items"]), total=Money.from_dict(body["total"], "total"),
                           estimated_delivery_at=_timestamp(body["estimated_delivery_at"], "estimated_delivery_at"),
                           fingerprint=fingerprint(body),
                           ship_by=_timestamp(body["ship_by"], "ship_by") if body.get("ship_by") else None,
                           payment=dict(body["payment"]) if body.get("payment") else None)


def ship_order(body: dict[str, Any], order_id: str) -> c.ShipOrder:
    return c.ShipOrder(order_id, body["carrier"], body["tracking_number"])


def record_scan(body: dict[str, Any], order_id: str) -> c.RecordScan:
    return c.RecordScan(order_id, body["status"], _timestamp(body["occurred_at"], "occurred_at"))


def open_dispute(body: dict[str, Any], order_id: str) -> c.OpenDispute:
    requested = body["requested"]
    return c.OpenDispute(order_id, Reason(body["reason"]), body["description"], Solution(requested["type"]),
                         _money(requested.get("amount"), "requested.amount"), tuple(body.get("item_ids") or ()))


def make_offer(body: dict[str, Any], dispute_id: str) -> c.MakeOffer:
    return c.MakeOffer(dispute_id, body.get("expected_version"), Solution(body["type"]), _money(body.get("amount"), "amount"),
                       body.get("message"))


def accept_offer(body: dict[str, Any], dispute_id: str, offer_id: str) -> c.AcceptOffer:
    return c.AcceptOffer(dispute_id, body.get("expected_version"), offer_id)


def reject_request(body: dict[str, Any], dispute_id: str) -> c.RejectRequest:
    return c.RejectRequest(dispute_id, body.get("expected_version"), body["message"])


def escalate(body: dict[str, Any], dispute_id: str) -> c.Escalate:
    return c.Escalate(dispute_id, body.get("expected_version"), body.get("message"))


def cancel(body: dict[str, Any], dispute_id: str) -> c.Cancel:
    return c.Cancel(dispute_id, body.get("expected_version"), body.get("message"))


def decide(body: dict[str, Any], dispute_id: str) -> c.Decide:
    return c.Decide(dispute_id, body.get("expected_version"), body["outcome"], _money(body.get("amount"), "amount"),
                    body["rationale"], Fault(body["fault"]) if body.get("fault") else None)


def ship_return(body: dict[str, Any], dispute_id: str) -> c.ShipReturn:
    return c.ShipReturn(dispute_id, body.get("expected_version"), body["carrier"], body["tracking_number"])


def contest_return(body: dict[str, Any], dispute_id: str) -> c.ContestReturn:
    return c.ContestReturn(dispute_id, body.get("expected_version"), body["reason"], body["message"])


def confirm_return(body: dict[str, Any], dispute_id: str) -> c.ConfirmReturn:
    return c.ConfirmReturn(dispute_id, body.get("expected_version"))


def request_upload(body: dict[str, Any], dispute_id: str) -> c.RequestUpload:
    return c.RequestUpload(dispute_id, body["file_name"], body["content_type"], body["size_bytes"])


def post_message(body: dict[str, Any], dispute_id: str) -> c.PostMessage:
    return c.PostMessage(dispute_id, body["body"])


def add_note(body: dict[str, Any], dispute_id: str) -> c.AddNote:
    return c.AddNote(dispute_id, body["body"])


def save_rule(body: dict[str, Any], rule_id: str) -> c.SaveRule:
    return c.SaveRule(rule_id, body["description"], body["mode"], int(body["priority"]), dict(body.get("when") or {}),
                      body["then"], body.get("expected_version"))


def simulate_scan(body: dict[str, Any], order_id: str) -> c.SimulateScan:
    return c.SimulateScan(order_id, body["status"])


def simulate_settlement(body: dict[str, Any], order_id: str, refund_id: str) -> c.SimulateSettlement:
    failed = body["outcome"] == "FAILED"
    return c.SimulateSettlement(order_id, refund_id, (body.get("failure_reason") or "card_declined") if failed else None)
