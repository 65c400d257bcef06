"""How aggregates look over HTTP (openapi.yaml's shapes): explicit field lists, built only from what is
passed in. A field stored on an aggregate reaches clients only once it is named here."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.catalog import MESSAGE_TEMPLATES, Reason
from ..domain.disputes import Actor, Assignment, Offer, Resolution, ReturnShipment, Status, TimelineEntry
from ..domain.evidence import Evidence
from ..domain.identity import Identity
from ..domain.jsontypes import JSONValue
from ..domain.ledger import Refund, RefundStatus
from ..domain.messages import Message
from ..domain.money import Money
from ..domain.notes import Note
from ..domain.orders import Order, Shipment
from ..domain.policy import Policy
from ..domain.rules import REPORT_COUNTS, Rule
from ..domain.timefmt import fmt
from ..services import access
from ..services.disputes import DisputeView
from .routing import action_for

DISPUTE_STATUSES = tuple(s.value for s in Status)
FULL_REFUNDS = ("REFUND_FULL", "RETURN_AND_REFUND")
REASONS = tuple(r.value for r in Reason)


def _money(m: Money | None) -> dict[str, Any] | None:
    return None if m is None else {"amount": m.amount, "currency": m.currency}


def _money_doc(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {"amount": doc["amount"], "currency": doc["currency"]}


def _shipment(s: Shipment | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"carrier": s.carrier, "tracking_number": s.tracking_number, "shipped_at": fmt(s.shipped_at),
            "last_scan_at": fmt(s.last_scan_at),
            "scans": [{"status": status, "occurred_at": fmt(at)} for status, at in s.scans]}


def actions(allowed: access.Allowed, **ids: str) -> list[dict[str, Any]]:
    """``available_actions``: what the caller may do now, as the requests to make (the route that
    declared each action: api/routing.py ACTIONS). Two commands one route performs are one action."""
    out: list[dict[str, Any]] = []
    for key, extra in allowed:
        route = action_for(key)
        shown = {"action": route.name, "method": route.method, "path": route.path.format(**ids, **extra),
                 "required": route.required}
        if shown not in out:
            out.append(shown)
    return out


def order(o: Order, now: datetime, policy: Policy, who: Identity | None = None) -> dict[str, Any]:
    escrow = o.escrow
    return {
        "order_id": o.order_id, "buyer_id": o.buyer_id, "seller_id": o.seller_id,
        "items": [{"item_id": i.item_id, "title": i.title, "quantity": i.quantity,
                   "unit_price": _money(i.unit_price)} for i in o.items],
        "total": _money(o.total), "status": o.status.value, "shipment": _shipment(o.shipment),
        "estimated_delivery_at": fmt(o.estimated_delivery_at), "delivered_at": fmt(o.delivered_at),
        "escrow": {"status": escrow.status.value, "held": _money(escrow.held), "refunded": _money(escrow.refunded),
                   "refund_pending": _money(escrow.refund_pending), "released": _money(escrow.released),
                   "still_held": _money(escrow.still_held), "release_at": fmt(o.release_at(policy))},
        "refunds": [order_refund(r, case_team=who is not None and who.is_moderator
                                 and who.sub not in (o.buyer_id, o.seller_id)) for r in o.refunds],
        "ship_by": fmt(o.ship_by),
        "dispute_eligibility": o.eligibility(now, policy).to_dict(),
        "open_dispute_id": o.open_dispute_id, "created_at": fmt(o.created_at), "version": o.version,
        "available_actions": [] if who is None else actions(access.order_actions(who, o, now, policy),
                                                            order_id=o.order_id),
    }


def order_refund(r: Refund, case_team: bool = False) -> dict[str, Any]:
    """A refund on the order; ``case_team`` (a moderator who is no party) also reads why it needs a person."""
    return {"refund_id": r.refund_id, "amount": _money(r.amount), "cause": r.cause, "dispute_id": r.dispute_id,
            "status": r.status.value, "attempts": r.attempt, "failure_reason": r.public_failure_reason,
            "needs_attention": r.needs_attention, "settle_by": fmt(r.settle_by) if r.status is RefundStatus.PENDING else None,
            "created_at": fmt(r.created_at), "updated_at": fmt(r.updated_at),
            **({"attention_reason": r.attention_reason} if case_team else {})}


def offer(x: Offer, total: Money) -> dict[str, Any]:
    """An offer, with the amount it would refund (the order total for full refunds and returns)."""
    refunds = x.amount if x.amount is not None else total if x.type.value in FULL_REFUNDS else None
    return {"offer_id": x.offer_id, "by": x.by, "type": x.type.value, "amount": _money(refunds),
            "message": x.message, "status": x.status.value, "created_at": fmt(x.created_at)}


def _resolution(r: Resolution | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"outcome": r.outcome.value, "amount": _money(r.amount), "decided_by": r.decided_by.value,
            "rationale": r.rationale, "resolved_at": fmt(r.resolved_at), "fault": r.fault.value,
            "rule": r.rule.to_dict() if r.rule else None}


def _refund(v: DisputeView) -> dict[str, Any] | None:
    """The refund a dispute owes, as the order's ledger holds it (what the parties may see)."""
    r = v.refund
    if r is None:
        return None
    return {"refund_id": r.refund_id, "amount": _money(r.amount), "status": r.status.value, "attempts": r.attempt,
            "failure_reason": r.public_failure_reason, "updated_at": fmt(v.refund_moved_at)}


def _return_shipment(r: ReturnShipment | None) -> dict[str, Any] | None:
    return None if r is None else r.to_dict()


def _details(entry: TimelineEntry, moderator: bool) -> dict[str, JSONValue]:
    """A timeline entry's details; which moderator decided is the case team's to read only."""
    return dict(entry.details) if moderator else entry.party_details()


def dispute(v: DisputeView, now: datetime, policy: Policy, who: Identity | None = None,
            insights: dict[str, Any] | None = None) -> dict[str, Any]:
    """``v``: the dispute and its refund as the order holds it (its refund, settlement deadline,
    refund timeline entries and last move are derived from there). ``insights``: the seller's
    standing and the buyer's signals (services.moderation.Insights), shown to moderators only, as
    are the claim and the rules' suggestions."""
    d = v.dispute
    moderator = who is not None and d.actor_for(who.sub, who.is_moderator) is Actor.MODERATOR
    return {
        "dispute_id": d.dispute_id, "order_id": d.order_id, "buyer_id": d.buyer_id, "seller_id": d.seller_id,
        "reason": d.reason.value, "description": d.description, "item_ids": list(d.item_ids),
        "status": d.status.value, "offers": [offer(x, d.order_total) for x in d.offers], "resolution": _resolution(d.resolution),
        "refund": _refund(v), "return_shipment": _return_shipment(d.return_shipment),
        "deadlines": v.deadlines(policy, now), "evidence_checklist": d.evidence_checklist(),
        "timeline": [{"at": fmt(e.at), "actor": e.actor.value, "event": e.event, "details": _details(e, moderator)}
                     for e in v.timeline],
        "escalated_at": fmt(d.escalated_at), "version": d.version,
        "available_actions": [] if who is None else actions(access.dispute_actions(who, d, policy, now),
                                                            dispute_id=d.dispute_id),
        "created_at": fmt(d.created_at), "updated_at": fmt(v.updated_at),
        # What only the case team sees: who holds the case now (an expired claim holds nothing).
        **({"assignment": _assignment(d.holder(now)),
            "rule_suggestions": [x.to_dict() for x in d.rule_suggestions], **(insights or {})} if moderator else {}),
    }


def _assignment(a: Assignment | None) -> dict[str, Any] | None:
    return None if a is None else a.to_dict()


def rule(r: Rule) -> dict[str, Any]:
    return {"rule_id": r.rule_id, "version": r.version, "description": r.description, "mode": r.mode.value,
            "priority": r.priority, "when": r.when.to_dict(), "then": r.then.value, "saved_at": fmt(r.saved_at),
            "saved_by": r.saved_by}


def rule_report(r: Rule, counts: dict[str, int]) -> dict[str, Any]:
    """How the current version's suggestions compare with how the matched cases ended."""
    return {"rule_id": r.rule_id, "version": r.version, "mode": r.mode.value,
            **{name: int(counts.get(name, 0)) for name in REPORT_COUNTS}}


def note(n: Note) -> dict[str, Any]:
    return {"note_id": n.note_id, "dispute_id": n.dispute_id, "author_id": n.author_id, "body": n.body,
            "created_at": fmt(n.created_at)}


def message(m: Message) -> dict[str, Any]:
    return {"message_id": m.message_id, "dispute_id": m.dispute_id, "author_id": m.author_id,
            "author_role": m.author_role, "body": m.body, "created_at": fmt(m.created_at)}


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


def templates(reason: str | None) -> dict[str, Any]:
    items = [{"template_id": t["template_id"], "reason": t["reason"], "text": t["text"]}
             for t in MESSAGE_TEMPLATES if reason is None or t["reason"] == reason]
    return {"items": items, "next_cursor": None}


def evidence(e: Evidence, now: datetime, links: dict[str, str | None]) -> dict[str, Any]:
    return {"evidence_id": e.evidence_id, "uploaded_by": e.uploaded_by, "file_name": e.file_name,
            "content_type": e.content_type, "size_bytes": e.size_bytes, "status": e.shown_status(now),
            "rejection_reason": e.rejection_reason, "sha256": e.sha256, "served_sha256": e.served_sha256,
            "created_at": fmt(e.created_at),
            "processed_at": fmt(e.processed_at), "download_url": links["download_url"],
            "thumbnail_url": links["thumbnail_url"]}


def upload_slot(e: Evidence, post: dict[str, Any]) -> dict[str, Any]:
    return {"evidence_id": e.evidence_id, "status": e.status,
            "upload": {"url": post["url"], "fields": post["fields"], "expires_at": fmt(e.expires_at),
                       "max_bytes": e.max_bytes}}
