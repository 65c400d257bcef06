"""The fixed vocabularies of buyer protection: reasons, solutions, evidence checklist, templates."""
from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    NOT_RECEIVED = "NOT_RECEIVED"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    DAMAGED_OR_DEFECTIVE = "DAMAGED_OR_DEFECTIVE"
    WRONG_ITEM = "WRONG_ITEM"
    MISSING_PARTS = "MISSING_PARTS"
    COUNTERFEIT = "COUNTERFEIT"


# Reasons that presuppose the parcel arrived (all but NOT_RECEIVED).
RECEIVED_REASONS = tuple(r for r in Reason if r is not Reason.NOT_RECEIVED)


class Solution(str, Enum):
    REFUND_FULL = "REFUND_FULL"
    REFUND_PARTIAL = "REFUND_PARTIAL"
    RETURN_AND_REFUND = "RETURN_AND_REFUND"
    RESEND = "RESEND"


class Outcome(str, Enum):
    REFUND_FULL = "REFUND_FULL"
    REFUND_PARTIAL = "REFUND_PARTIAL"
    RESEND = "RESEND"
    REJECTED = "REJECTED"


class Decision(str, Enum):
    """What a moderator may decide: an outcome, or a return first (the refund once the item is back)."""

    REFUND_FULL = "REFUND_FULL"
    REFUND_PARTIAL = "REFUND_PARTIAL"
    RETURN_AND_REFUND = "RETURN_AND_REFUND"
    REJECTED = "REJECTED"


class ReturnProblem(str, Enum):
    """Why a seller contests a return."""

    EMPTY_BOX = "EMPTY_BOX"
    WRONG_ITEM = "WRONG_ITEM"
    DAMAGED = "DAMAGED"
    NOT_SCANNED = "NOT_SCANNED"
    OTHER = "OTHER"


class Fault(str, Enum):
    """Whose failure a resolution records (seller standing counts SELLER)."""

    SELLER = "SELLER"
    BUYER = "BUYER"
    CARRIER = "CARRIER"
    NONE = "NONE"


# What evidence each reason expects, and what solution usually fits.
EVIDENCE_EXPECTED: dict[Reason, tuple[str, ...]] = {
    Reason.NOT_RECEIVED: ("TRACKING_DATA",),
    Reason.NOT_AS_DESCRIBED: ("PHOTO_OR_VIDEO_COMPARED_WITH_LISTING",),
    Reason.DAMAGED_OR_DEFECTIVE: ("PHOTO_OR_VIDEO_OF_DAMAGE",),
    Reason.MISSING_PARTS: ("PHOTO_OF_WHAT_WAS_RECEIVED",),
    Reason.WRONG_ITEM: ("PHOTO_OF_ITEM_RECEIVED",),
    Reason.COUNTERFEIT: ("PHOTO_OF_ITEM_RECEIVED",),
}

SUGGESTED_SOLUTIONS: dict[Reason, tuple[Solution, ...]] = {
    Reason.NOT_RECEIVED: (Solution.REFUND_FULL,),
    Reason.NOT_AS_DESCRIBED: (Solution.REFUND_FULL, Solution.REFUND_PARTIAL),
    Reason.DAMAGED_OR_DEFECTIVE: (Solution.REFUND_FULL, Solution.RESEND),
    Reason.MISSING_PARTS: (Solution.REFUND_PARTIAL,),
    Reason.WRONG_ITEM: (Solution.REFUND_FULL,),
    Reason.COUNTERFEIT: (Solution.REFUND_FULL,),
}

# Short, plain, factual: what a buyer would write, in the platform's usual words.
MESSAGE_TEMPLATES: tuple[dict[str, str], ...] = (
    {"template_id": "not-shipped", "reason": "NOT_RECEIVED",
     "text": "Tracking number isn't available and seller didn't send the parcel."},
    {"template_id": "tracking-not-available", "reason": "NOT_RECEIVED",
     "text": "Hello, it seems that tracking number {tracking_number} is not available. "
             "Please check that my order has been sent and provide correct tracking number."},
    {"template_id": "not-arrived", "reason": "NOT_RECEIVED",
     "text": "The estimated delivery date has passed and my parcel has not arrived."},
    {"template_id": "missing-items", "reason": "MISSING_PARTS",
     "text": "I received my parcel, but it didn't contain following ordered items: {items}"},
    {"template_id": "not-as-described", "reason": "NOT_AS_DESCRIBED",
     "text": "The item I received does not match the description: {difference}"},
    {"template_id": "damaged", "reason": "DAMAGED_OR_DEFECTIVE",
     "text": "The item arrived damaged or does not work: {problem}. Photos are attached."},
    {"template_id": "wrong-item", "reason": "WRONG_ITEM",
     "text": "I received a different item from the one I ordered: {received}"},
    {"template_id": "counterfeit", "reason": "COUNTERFEIT",
     "text": "The item I received is not genuine: {why}. Photos are attached."},
)
