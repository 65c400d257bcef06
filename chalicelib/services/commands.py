"""Typed commands: what a caller asks for, built once at the HTTP edge from the validated body.
Use cases take these, never a request's raw dict."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.catalog import Decision, Fault, Reason, ReturnProblem, Solution
from ..domain.errors import InvalidInput
from ..domain.ledger import RefundStatus
from ..domain.money import Money
from ..domain.orders import ScanStatus
from ..domain.timefmt import parse


def _money(data: dict[str, Any] | None, where: str) -> Money | None:
    return None if data is None else Money.from_dict(data, where)


def _timestamp(value: str, field: str) -> datetime:
    try:
        return parse(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be an RFC 3339 timestamp with a time zone", code="VALIDATION_ERROR",
                           details={"field": field}) from exc


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- orders -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterOrder:
    order_id: str
    buyer_id: str
    seller_id: str
    items: tuple[dict[str, Any], ...]
    total: Money
    estimated_delivery_at: datetime
    fingerprint: str  # of the whole body: replaying the same registration is not a conflict
    ship_by: datetime | None = None  # default: the policy's ship-by period after payment
    payment: dict[str, str] | None = None  # {"provider", "reference"}: where refunds go back to

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> RegisterOrder:
        return cls(order_id=body["order_id"], buyer_id=body["buyer_id"], seller_id=body["seller_id"],
                   items=tuple(body["items"]), total=Money.from_dict(body["total"], "total"),
                   estimated_delivery_at=_timestamp(body["estimated_delivery_at"], "estimated_delivery_at"),
                   fingerprint=fingerprint(body),
                   ship_by=_timestamp(body["ship_by"], "ship_by") if body.get("ship_by") else None,
                   payment=dict(body["payment"]) if body.get("payment") else None)


@dataclass(frozen=True)
class ShipOrder:
    order_id: str
    carrier: str
    tracking_number: str

    @classmethod
    def from_body(cls, body: dict[str, Any], order_id: str) -> ShipOrder:
        return cls(order_id, body["carrier"], body["tracking_number"])


@dataclass(frozen=True)
class RecordScan:
    order_id: str
    status: ScanStatus
    occurred_at: datetime

    @classmethod
    def from_body(cls, body: dict[str, Any], order_id: str) -> RecordScan:
        return cls(order_id, ScanStatus(body["status"]), _timestamp(body["occurred_at"], "occurred_at"))


@dataclass(frozen=True)
class ConfirmReceipt:
    order_id: str


# ---- disputes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpenDispute:
    order_id: str
    reason: Reason
    description: str
    requested: Solution
    amount: Money | None
    item_ids: tuple[str, ...]

    @classmethod
    def from_body(cls, body: dict[str, Any], order_id: str) -> OpenDispute:
        requested = body["requested"]
        return cls(order_id, Reason(body["reason"]), body["description"], Solution(requested["type"]),
                   _money(requested.get("amount"), "requested.amount"), tuple(body.get("item_ids") or ()))


@dataclass(frozen=True)
class DisputeAction:
    """Any action on a dispute; ``expected_version`` guards against acting on a stale view."""

    dispute_id: str
    expected_version: int | None


@dataclass(frozen=True)
class MakeOffer(DisputeAction):
    type: Solution
    amount: Money | None
    message: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> MakeOffer:
        return cls(dispute_id, body.get("expected_version"), Solution(body["type"]), _money(body.get("amount"), "amount"),
                   body.get("message"))


@dataclass(frozen=True)
class AcceptOffer(DisputeAction):
    offer_id: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str, offer_id: str) -> AcceptOffer:
        return cls(dispute_id, body.get("expected_version"), offer_id)


@dataclass(frozen=True)
class RejectRequest(DisputeAction):
    message: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> RejectRequest:
        return cls(dispute_id, body.get("expected_version"), body["message"])


@dataclass(frozen=True)
class Escalate(DisputeAction):
    message: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> Escalate:
        return cls(dispute_id, body.get("expected_version"), body.get("message"))


@dataclass(frozen=True)
class Cancel(DisputeAction):
    message: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> Cancel:
        return cls(dispute_id, body.get("expected_version"), body.get("message"))


@dataclass(frozen=True)
class Decide(DisputeAction):
    outcome: Decision
    amount: Money | None
    rationale: str
    fault: Fault | None = None  # None: the outcome's default (domain.disputes.default_fault)

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> Decide:
        return cls(dispute_id, body.get("expected_version"), Decision(body["outcome"]), _money(body.get("amount"), "amount"),
                   body["rationale"], Fault(body["fault"]) if body.get("fault") else None)


@dataclass(frozen=True)
class ClaimCase:
    """Take an escalated case, or renew one's own claim."""

    dispute_id: str


@dataclass(frozen=True)
class ReleaseCase:
    dispute_id: str


@dataclass(frozen=True)
class ShipReturn(DisputeAction):
    carrier: str
    tracking_number: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> ShipReturn:
        return cls(dispute_id, body.get("expected_version"), body["carrier"], body["tracking_number"])


@dataclass(frozen=True)
class ContestReturn(DisputeAction):
    reason: ReturnProblem
    message: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> ContestReturn:
        return cls(dispute_id, body.get("expected_version"), ReturnProblem(body["reason"]), body["message"])


@dataclass(frozen=True)
class ConfirmReturn(DisputeAction):
    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> ConfirmReturn:
        return cls(dispute_id, body.get("expected_version"))


# ---- evidence and messages --------------------------------------------------------------------
@dataclass(frozen=True)
class RequestUpload:
    dispute_id: str
    file_name: str
    content_type: str
    size_bytes: int

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> RequestUpload:
        return cls(dispute_id, body["file_name"], body["content_type"], body["size_bytes"])


@dataclass(frozen=True)
class PostMessage:
    dispute_id: str
    body: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> PostMessage:
        return cls(dispute_id, body["body"])


@dataclass(frozen=True)
class AddNote:
    """A moderator's internal note: never shown to the parties."""

    dispute_id: str
    body: str

    @classmethod
    def from_body(cls, body: dict[str, Any], dispute_id: str) -> AddNote:
        return cls(dispute_id, body["body"])


# ---- moderation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaveRule:
    """A new version of an auto-resolution rule (its ``when`` is checked by the domain's When)."""

    rule_id: str
    description: str
    mode: str
    priority: int
    when: dict[str, Any]
    then: str
    expected_version: int | None  # the version this change starts from (0: a new rule)

    @classmethod
    def from_body(cls, body: dict[str, Any], rule_id: str) -> SaveRule:
        return cls(rule_id, body["description"], body["mode"], int(body["priority"]), dict(body.get("when") or {}),
                   body["then"], body.get("expected_version"))


# ---- the sandbox ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulateScan:
    order_id: str
    status: ScanStatus

    @classmethod
    def from_body(cls, body: dict[str, Any], order_id: str) -> SimulateScan:
        return cls(order_id, ScanStatus(body["status"]))


@dataclass(frozen=True)
class SimulateSettlement:
    order_id: str
    refund_id: str
    failure_reason: str | None  # None: the refund succeeds

    @classmethod
    def from_body(cls, body: dict[str, Any], order_id: str, refund_id: str) -> SimulateSettlement:
        failed = body["outcome"] == RefundStatus.FAILED.value
        return cls(order_id, refund_id, (body.get("failure_reason") or "card_declined") if failed else None)


# ---- queries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None
