"""Typed commands: what a caller asks for, as plain typed data. The HTTP edge builds them from the
validated body (api/requests.py); use cases take these, never a request's raw dict. The dispute's
commands live beside their use cases, in services/disputes.py (an action is added in one file)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.money import Money
from ..domain.orders import OrderItem, PaymentRef, ScanStatus


# ---- orders -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterOrder:
    order_id: str
    buyer_id: str
    seller_id: str
    items: tuple[OrderItem, ...]
    total: Money
    estimated_delivery_at: datetime
    fingerprint: str  # of the whole body: replaying the same registration is not a conflict
    ship_by: datetime | None = None  # default: the policy's ship-by period after payment
    payment: PaymentRef | None = None  # where refunds go back to


@dataclass(frozen=True)
class ShipOrder:
    order_id: str
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class RecordScan:
    order_id: str
    status: ScanStatus
    occurred_at: datetime


@dataclass(frozen=True)
class ConfirmReceipt:
    order_id: str


# ---- evidence and messages --------------------------------------------------------------------
@dataclass(frozen=True)
class RequestUpload:
    dispute_id: str
    file_name: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class PostMessage:
    dispute_id: str
    body: str


@dataclass(frozen=True)
class AddNote:
    """A moderator's internal note: never shown to the parties."""

    dispute_id: str
    body: str


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


# ---- the sandbox ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulateScan:
    order_id: str
    status: ScanStatus


@dataclass(frozen=True)
class SimulateSettlement:
    order_id: str
    refund_id: str
    failure_reason: str | None  # None: the refund succeeds


# ---- queries ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageRequest:
    limit: int
    cursor: str | None
