"""How aggregates look over HTTP (API.md's shapes). Pure functions of the aggregate and the time."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from .domain.catalog import MESSAGE_TEMPLATES, Reason
from .domain.disputes import Dispute, Status
from .domain.evidence import Evidence
from .domain.messages import Message
from .domain.orders import Order
from .domain.policy import Policy
from .domain.timefmt import fmt


def order(o: Order, now: datetime, policy: Policy) -> dict[str, Any]:
    doc = o.to_dict()
    escrow = o.escrow
    doc["escrow"] = {"status": escrow.status.value, "held": escrow.held.to_dict(),
                     "refunded": escrow.refunded.to_dict(), "released": escrow.released.to_dict(),
                     "still_held": escrow.still_held.to_dict(), "release_at": fmt(o.release_at(policy))}
    doc["dispute_eligibility"] = o.eligibility(now, policy).to_dict()
    doc["version"] = o.version
    return doc


def dispute(d: Dispute, policy: Policy, checklist: dict[str, Any]) -> dict[str, Any]:
    doc = d.to_dict()
    for internal in ("order_total", "phase_due_at", "mediation_overdue"):
        doc.pop(internal)
    if doc["refund"]:
        doc["refund"] = {k: doc["refund"][k] for k in ("refund_id", "amount", "status", "updated_at")}
    doc["deadlines"] = d.deadlines(policy)
    doc["evidence_checklist"] = checklist
    doc["version"] = d.version
    return doc


def message(m: Message) -> dict[str, Any]:
    return m.to_dict()


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


DISPUTE_STATUSES = tuple(s.value for s in Status)
REASONS = tuple(r.value for r in Reason)


def templates(reason: str | None) -> dict[str, Any]:
    items = [dict(t) for t in MESSAGE_TEMPLATES if reason is None or t["reason"] == reason]
    return {"items": items, "next_cursor": None}


def evidence(e: Evidence, now: datetime, links: dict[str, str | None]) -> dict[str, Any]:
    return {"evidence_id": e.evidence_id, "uploaded_by": e.uploaded_by, "file_name": e.file_name,
            "content_type": e.content_type, "size_bytes": e.size_bytes, "status": e.shown_status(now),
            "rejection_reason": e.rejection_reason, "sha256": e.sha256, "created_at": fmt(e.created_at),
            "processed_at": fmt(e.processed_at), **links}


def upload_slot(e: Evidence, post: dict[str, Any]) -> dict[str, Any]:
    return {"evidence_id": e.evidence_id, "status": e.status,
            "upload": {"url": post["url"], "fields": post["fields"], "expires_at": fmt(e.expires_at),
                       "max_bytes": e.max_bytes}}
