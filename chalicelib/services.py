"""Use cases: one method per thing a caller can do. Each loads aggregates through the repository,
applies domain rules and saves; access rules (who sees what) live here, business rules in domain/."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from .adapters.auth import Identity
from .domain.catalog import Reason, Solution
from .domain.disputes import Actor, Dispute, Offer
from .domain.errors import ConcurrentModification, Conflict, Forbidden, InvalidInput, NotFound, RuleViolation
from .domain.evidence import (
    ACCEPTED,
    EXPIRED,
    FINAL,
    MAX_FILES_PER_PARTY,
    PENDING_UPLOAD,
    PROCESSING,
    UPLOAD_WINDOW,
    Evidence,
)
from .domain.evidence import checklist as evidence_checklist
from .domain.messages import Message
from .domain.money import Money
from .domain.orders import Order
from .domain.policy import Policy
from .domain.timefmt import fmt, parse
from .inspection import inspect
from .logs import logger
from .ports import Clock, EvidenceStore, OrderExists, OutboxRecord, Page, Repository
from .relay import OutboxRelay

LINK_SECONDS = 15 * 60  # download links of accepted evidence
TIMESTAMP_RANGE = timedelta(days=3650)  # client timestamps further than this from now are typos


def _timestamp(value: str, field: str, now: datetime) -> datetime:
    """An RFC 3339 timestamp from a client, within ten years of now (beyond is a typo, and
    would overflow the deadlines computed from it)."""
    try:
        parsed = parse(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} must be an RFC 3339 timestamp with a time zone", code="VALIDATION_ERROR",
                           details={"field": field}) from exc
    if abs(parsed - now) > TIMESTAMP_RANGE:
        raise InvalidInput(f"{field} is not within ten years of now", code="VALIDATION_ERROR", details={"field": field})
    return parsed


def _money(data: dict[str, Any] | None) -> Money | None:
    return None if data is None else Money.from_dict(data)


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def event_detail(d: Dispute, entry: dict[str, Any], version: int) -> dict[str, Any]:
    """What subscribers (push notifications, analytics) get with every dispute event."""
    return {"dispute_id": d.dispute_id, "order_id": d.order_id, "buyer_id": d.buyer_id, "seller_id": d.seller_id,
            "status": d.status.value, "version": version, "at": entry["at"], "actor": entry["actor"],
            "details": entry["details"]}


def outbox_for(d: Dispute, now: datetime) -> list[OutboxRecord]:
    """The timers and events a change leaves for the outside world, to commit with it."""
    version = (d.version or 0) + 1
    return [OutboxRecord.timer(c, now) for c in d.timer_commands] + \
        [OutboxRecord.event(e["event"], event_detail(d, e, version), now) for e in d.new_events]


class DisputeService:
    def __init__(self, repo: Repository, clock: Clock, policy: Policy, relay: OutboxRelay,
                 store: EvidenceStore) -> None:
        self.repo = repo
        self.clock = clock
        self.policy = policy
        self.relay = relay
        self.store = store

    # ---- orders ---------------------------------------------------------------------------
    def register_order(self, who: Identity, body: dict[str, Any]) -> tuple[Order, bool]:
        """Checkout registers a paid order. Replaying the same body returns the stored order."""
        if not who.is_service:
            raise Forbidden("only platform services register orders", code="NOT_YOUR_ACTION")
        order = Order.register(
            order_id=body["order_id"], buyer_id=body["buyer_id"], seller_id=body["seller_id"],
            items=body["items"], total=Money.from_dict(body["total"]),
            estimated_delivery_at=_timestamp(body["estimated_delivery_at"], "estimated_delivery_at", self.clock.now()),
            now=self.clock.now())
        fp = fingerprint(body)
        try:
            return self.repo.add_order(order, fp), True
        except OrderExists as exc:
            if self.repo.order_fingerprint(order.order_id) != fp:
                raise Conflict("an order with this order_id exists with other details", code="ORDER_EXISTS") from exc
            stored = self.repo.get_order(order.order_id)
            assert stored is not None
            return stored, False

    def get_order(self, who: Identity, order_id: str) -> Order:
        order = self.repo.get_order(order_id)
        if order is None or not (who.sub in (order.buyer_id, order.seller_id) or who.is_moderator):
            raise NotFound("no such order", code="ORDER_NOT_FOUND")
        logger.append_keys(order_id=order.order_id)
        return order

    def list_orders(self, who: Identity, role: str, limit: int, cursor: str | None) -> Page:
        return self.repo.list_orders(role, who.sub, limit, cursor)

    def ship(self, who: Identity, order_id: str, body: dict[str, Any]) -> Order:
        order = self.get_order(who, order_id)
        if who.sub != order.seller_id:
            raise Forbidden("only the seller ships the order", code="NOT_YOUR_ACTION")
        return self.repo.save_order(order.ship(body["carrier"], body["tracking_number"], self.clock.now()))

    def record_tracking(self, who: Identity, order_id: str, body: dict[str, Any]) -> Order:
        if not who.is_service:
            self.get_order(who, order_id)  # 404 for strangers, then 403 for parties
            raise Forbidden("only the carrier-tracking service reports scans", code="NOT_YOUR_ACTION")
        order = self.repo.get_order(order_id)
        if order is None:
            raise NotFound("no such order", code="ORDER_NOT_FOUND")
        occurred = _timestamp(body["occurred_at"], "occurred_at", self.clock.now())
        if occurred > self.clock.now() + self.policy.scan_clock_skew:
            raise RuleViolation("occurred_at is in the future", code="INVALID_TIMESTAMP")
        return self.repo.save_order(order.record_scan(body["status"], occurred))

    def confirm_receipt(self, who: Identity, order_id: str) -> Order:
        order = self.get_order(who, order_id)
        if who.sub != order.buyer_id:
            raise Forbidden("only the buyer confirms receipt", code="NOT_YOUR_ACTION")
        return self.repo.save_order(order.confirm_receipt(self.clock.now()))

    def release_due_escrow(self, limit: int = 100) -> list[str]:
        """The scheduled sweep: protection ended and no dispute is open, so the seller is paid."""
        now = self.clock.now()
        released: list[str] = []
        seen: set[str] = set()
        while True:  # page until nothing is due (released orders leave the index)
            batch = [o for o in self.repo.orders_due_for_release(now, limit) if o.order_id not in seen]
            if not batch:
                return released
            for order in batch:
                seen.add(order.order_id)
                try:
                    self.repo.save_order(order.auto_release(now, self.policy))
                    released.append(order.order_id)
                except (Conflict, ConcurrentModification):
                    pass  # a dispute opened or the order moved meanwhile; the next sweep re-reads it

    # ---- opening and reading disputes -----------------------------------------------------
    def open_dispute(self, who: Identity, order_id: str, body: dict[str, Any]) -> Dispute:
        order = self.get_order(who, order_id)
        if who.sub != order.buyer_id:
            raise Forbidden("only the buyer opens a dispute", code="NOT_YOUR_ACTION")
        now = self.clock.now()
        reason = Reason(body["reason"])
        order.check_can_open(reason, now, self.policy)
        item_ids = list(body.get("item_ids") or [])
        unknown = sorted(set(item_ids) - order.item_ids())
        if unknown:
            raise RuleViolation("item_ids are not items of this order", code="UNKNOWN_ITEM",
                                details={"unknown_item_ids": unknown})
        requested = body["requested"]
        dispute = Dispute.open(
            order_id=order.order_id, buyer_id=order.buyer_id, seller_id=order.seller_id, order_total=order.total,
            reason=reason, description=body["description"], requested=Solution(requested["type"]),
            amount=_money(requested.get("amount")), item_ids=item_ids, now=now, policy=self.policy)
        return self._save(dispute, order.attach_dispute(dispute.dispute_id))

    def get_dispute(self, who: Identity, dispute_id: str) -> Dispute:
        return self._visible(who, dispute_id)[0]

    def list_disputes(self, who: Identity, role: str, status: str | None, limit: int, cursor: str | None) -> Page:
        return self.repo.list_disputes(role, who.sub, status, limit, cursor)

    def moderation_queue(self, who: Identity, overdue: bool, limit: int, cursor: str | None) -> Page:
        if not who.is_moderator:
            raise Forbidden("only moderators see the moderation queue", code="NOT_YOUR_ACTION")
        before = self.clock.now() - self.policy.mediation_sla if overdue else None
        return self.repo.escalated_disputes(before, limit, cursor)

    # ---- dispute actions ------------------------------------------------------------------
    def make_offer(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> tuple[Dispute, Offer]:
        made: list[Offer] = []
        dispute = self._act(who, dispute_id, body, lambda d, a, now: made.append(d.make_offer(
            a, Solution(body["type"]), _money(body.get("amount")), body.get("message"), now, self.policy)))
        return dispute, next(o for o in dispute.offers if o.offer_id == made[0].offer_id)

    def accept_offer(self, who: Identity, dispute_id: str, offer_id: str, body: dict[str, Any]) -> Dispute:
        return self._act(who, dispute_id, body, lambda d, a, now: d.accept(a, offer_id, now, self.policy))

    def reject(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        return self._act(who, dispute_id, body, lambda d, a, now: d.reject(a, body["message"], now, self.policy))

    def escalate(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        def escalate(d: Dispute, a: Actor, now: datetime) -> None:
            missing = self.checklist(d)["missing"] if a is Actor.BUYER else []
            d.escalate(a, body.get("message"), now, self.policy, missing_evidence=missing)
        return self._act(who, dispute_id, body, escalate)

    def cancel(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        return self._act(who, dispute_id, body, lambda d, a, now: d.cancel(a, body.get("message"), now, self.policy))

    def decide(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        def decide(d: Dispute, a: Actor, now: datetime) -> None:
            if a is not Actor.MODERATOR:
                raise Forbidden("only moderators decide disputes", code="NOT_YOUR_ACTION")
            d.decide(body["outcome"], _money(body.get("amount")), body["rationale"], now, self.policy)
        return self._act(who, dispute_id, body, decide)

    def ship_return(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        return self._act(who, dispute_id, body, lambda d, a, now: d.ship_return(
            a, body["carrier"], body["tracking_number"], now, self.policy))

    def confirm_return(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Dispute:
        return self._act(who, dispute_id, body, lambda d, a, now: d.confirm_return(a, now, self.policy))

    # ---- the timers -----------------------------------------------------------------------
    def timer_fired(self, kind: str, dispute_id: str, action: str) -> str:
        """A deadline timer reports in. Returns what it did: expired, reminded, or stale (the
        dispute left that phase first: a party won the race, or the timer was not stopped)."""
        if kind == "REMIND":
            return self._remind(dispute_id, action)
        for _ in range(3):
            dispute = self.repo.get_dispute(dispute_id)
            if dispute is None:
                return "stale"
            try:
                self._apply(dispute, lambda d, now: d.expire(action, now, self.policy))
                return "expired"
            except ConcurrentModification:
                continue  # a party acted in the same instant: re-read, the domain decides again
            except Conflict as exc:
                if exc.code == "NOT_DUE":
                    raise  # woke too early by our clock: let the queue redeliver it
                return "stale"
        raise ConcurrentModification("the dispute kept changing under its timer")

    def _remind(self, dispute_id: str, action: str) -> str:
        dispute = self.repo.get_dispute(dispute_id)
        pending = [d for d in dispute.deadlines(self.policy) if d["action"] == action] if dispute else []
        if dispute is None or not pending:
            return "stale"
        # Deterministic id: a redelivered timer message publishes a duplicate subscribers can drop.
        detail = {**self._side_event(dispute, "system", pending[0]), "event_id": f"{dispute_id}:{action}:reminder"}
        self.relay.publisher.publish("dispute.deadline_approaching", detail)
        return "reminded"

    def drain_outbox(self) -> tuple[int, int]:
        """The reconciler: deliver what a crash or an outage left in the outbox."""
        return self.relay.drain(self.clock.now())

    # ---- evidence -------------------------------------------------------------------------
    def checklist(self, dispute: Dispute) -> dict[str, Any]:
        return evidence_checklist(dispute.reason, self.repo.list_evidence(dispute.dispute_id))

    def request_upload(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> tuple[Evidence, dict[str, Any]]:
        """An upload slot: a presigned POST for one file, pinned to its key, type and size."""
        dispute, actor = self._visible(who, dispute_id)
        if actor not in (Actor.BUYER, Actor.SELLER):
            raise Forbidden("only the parties upload evidence", code="NOT_YOUR_ACTION")
        self._require_open(dispute)
        evidence = Evidence.slot(dispute_id, actor.value, who.sub, body["file_name"], body["content_type"],
                                 body["size_bytes"], self.clock.now())
        self.repo.add_evidence(evidence, MAX_FILES_PER_PARTY)
        post = self.store.presigned_post(evidence.upload_key, evidence.content_type, evidence.max_bytes,
                                         int(UPLOAD_WINDOW.total_seconds()))
        return evidence, post

    def list_evidence(self, who: Identity, dispute_id: str) -> list[tuple[Evidence, dict[str, str | None]]]:
        """Each file with links (15 minutes) to the served copy and its thumbnail, once accepted."""
        self._visible(who, dispute_id)
        out = []
        for e in self.repo.list_evidence(dispute_id):
            links: dict[str, str | None] = {"download_url": None, "thumbnail_url": None}
            if e.status == ACCEPTED:
                links["download_url"] = self.store.download_url(e.file_key, e.file_name, LINK_SECONDS)
                if e.has_thumbnail:
                    links["thumbnail_url"] = self.store.download_url(e.thumbnail_key, "thumbnail.jpg", LINK_SECONDS)
            out.append((e, links))
        return out

    def process_upload(self, key: str) -> str:
        """S3 says an object landed. Idempotent: events come at least once and in any order."""
        parts = key.split("/")
        evidence = self.repo.get_evidence(parts[1], parts[2]) if len(parts) == 3 and parts[0] == "uploads" else None
        if evidence is None:
            self.store.delete(key)  # not a slot of ours: never processed, never served
            return "ignored"
        if evidence.status in FINAL:
            self.store.delete(key)  # a duplicate event, or a second upload to a used slot
            return "duplicate"
        if evidence.status == PENDING_UPLOAD:
            try:
                self.repo.update_evidence(replace(evidence, status=PROCESSING), [PENDING_UPLOAD])
            except ConcurrentModification:
                return "duplicate"
        size = self.store.size(key)
        if size is None:
            return "missing"  # removed by a delivery of the same event processing it concurrently
        now = self.clock.now()
        if size > evidence.max_bytes:  # never download what is over the limit
            return self._finish(key, evidence.rejected("FILE_TOO_LARGE", now))
        result = inspect(self.store.read(key), evidence.content_type, evidence.size_bytes, evidence.max_bytes)
        if result.rejection:
            return self._finish(key, evidence.rejected(result.rejection, now, result.sha256))
        assert result.clean is not None
        self.store.write(evidence.file_key, result.clean, evidence.content_type)
        if result.thumbnail:
            self.store.write(evidence.thumbnail_key, result.thumbnail, "image/jpeg")
        return self._finish(key, evidence.accepted(result.sha256, result.thumbnail is not None, now))

    def _finish(self, key: str, evidence: Evidence) -> str:
        dispute = self.repo.get_dispute(evidence.dispute_id)
        assert dispute is not None
        kind = "dispute.evidence_accepted" if evidence.status == ACCEPTED else "dispute.evidence_rejected"
        outbox = [OutboxRecord.event(kind, self._side_event(dispute, evidence.uploaded_by, {
            "evidence_id": evidence.evidence_id, "status": evidence.status,
            "rejection_reason": evidence.rejection_reason}), self.clock.now())]
        try:
            self.repo.update_evidence(evidence, [PENDING_UPLOAD, PROCESSING], outbox)
        except ConcurrentModification:
            return "duplicate"
        self.store.delete(key)  # the served copy is the sanitized one; the raw upload goes
        self.relay.try_deliver(outbox)
        return evidence.status.lower()

    def expire_uploads(self) -> int:
        """Slots never used within their window become EXPIRED and free the party's place."""
        expired = 0
        for e in self.repo.expired_uploads(self.clock.now(), 200):
            try:
                self.repo.update_evidence(replace(e, status=EXPIRED), [PENDING_UPLOAD])
                expired += 1
            except ConcurrentModification:
                continue  # the upload arrived meanwhile
        return expired

    # ---- messages -------------------------------------------------------------------------
    def post_message(self, who: Identity, dispute_id: str, body: dict[str, Any]) -> Message:
        dispute, actor = self._visible(who, dispute_id)
        self._require_open(dispute)
        now = self.clock.now()
        message = Message.new(dispute_id, who.sub, actor.value, body["body"], now)
        outbox = [OutboxRecord.event("dispute.message_posted",
                                     self._side_event(dispute, actor.value, {"message_id": message.message_id}), now)]
        self.repo.add_message(message, outbox)
        self.relay.try_deliver(outbox)
        return message

    def list_messages(self, who: Identity, dispute_id: str, limit: int, cursor: str | None) -> Page:
        self._visible(who, dispute_id)
        return self.repo.list_messages(dispute_id, limit, cursor)

    # ---- internals ------------------------------------------------------------------------
    def _side_event(self, dispute: Dispute, actor: str, details: dict[str, Any]) -> dict[str, Any]:
        """The detail of an event that is no transition (a message, a file, a reminder)."""
        entry = {"at": fmt(self.clock.now()), "actor": actor, "details": details}
        return event_detail(dispute, entry, dispute.version or 0)

    @staticmethod
    def _require_open(dispute: Dispute) -> None:
        if not dispute.is_open:
            raise Conflict("the dispute is closed", code="DISPUTE_CLOSED", details={"status": dispute.status.value})

    def _visible(self, who: Identity, dispute_id: str) -> tuple[Dispute, Actor]:
        dispute = self.repo.get_dispute(dispute_id)
        actor = None if dispute is None else dispute.actor_for(who.sub, who.is_moderator)
        if dispute is None or actor is None:
            raise NotFound("no such dispute", code="DISPUTE_NOT_FOUND")
        logger.append_keys(order_id=dispute.order_id)
        return dispute, actor

    def _act(self, who: Identity, dispute_id: str, body: dict[str, Any],
             change: Callable[[Dispute, Actor, datetime], Any]) -> Dispute:
        dispute, actor = self._visible(who, dispute_id)
        expected = body.get("expected_version")
        if expected is not None and expected != dispute.version:
            raise ConcurrentModification("the dispute has moved on", details={"current_version": dispute.version})
        return self._apply(dispute, lambda d, now: change(d, actor, now))

    def _apply(self, dispute: Dispute, change: Callable[[Dispute, datetime], Any]) -> Dispute:
        """Apply a change and save it; when the dispute ends, settle its order in the same write."""
        was_open = dispute.is_open
        change(dispute, self.clock.now())
        order = None
        if was_open and not dispute.is_open:
            current = self.repo.get_order(dispute.order_id)
            assert current is not None, "a dispute's order is never deleted"
            order = current.settle_dispute(dispute.dispute_id, dispute.settlement())
        return self._save(dispute, order)

    def _save(self, dispute: Dispute, order: Order | None) -> Dispute:
        """Commit the change with its outbox, then deliver the outbox right away (best effort)."""
        outbox = outbox_for(dispute, self.clock.now())
        saved, _ = self.repo.save_dispute(dispute, order, outbox)
        self.relay.try_deliver(outbox)
        return saved
