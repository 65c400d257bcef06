"""Use cases of refunds: sending each attempt to the payment provider, learning how it settled
(its webhooks, or its answer), and the refund timers (overdue settlement, retry after failure).

A refund is paid exactly once: each attempt has its own idempotency key at the provider, a new
attempt is only sent once every earlier one is known at the provider to have failed (or never to
have arrived), and the order's ledger settles a refund once whatever the order or the number of
notices that say so. A provider may change its mind: an attempt it failed can succeed later.
That success counts; a newer attempt already sent is then cancelled, or, where the provider cannot
cancel it, the refund is held for a person and the alarm raised (NEWER_ATTEMPT_LIVE). A webhook
never calls the provider itself: it hands the cancel to the refund worker, through the refund
queue, which holds the provider's API key.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from ..domain.errors import InvalidInput, NotFound
from ..domain.identity import Identity
from ..domain.ledger import (
    AMOUNT_OR_CURRENCY_MISMATCH,
    EARLIER_ATTEMPT_PENDING,
    FAILED,
    NEWER_ATTEMPT_LIVE,
    NOTICE_MISMATCH,
    PAID_TWICE,
    PENDING,
    SUCCEEDED,
    Refund,
)
from ..domain.orders import Order, OrderCommand
from ..domain.policy import Policy
from ..domain.timers import REFUND_RETRY, REFUND_SETTLEMENT
from ..logs import logger
from ..metrics import count
from ..ports import Clock, InvalidWebhook, PaymentProvider, PaymentUnavailable, RefundOrder, SettlementNotice
from ..relay import cancel_message
from . import access
from .base import Fired, UnitOfWorkFactory, UseCases, retry_on_conflict

# A provider forgets idempotency keys (Stripe: after 24 hours). Past this, an attempt whose fate
# is unknown is never sent again: a person looks.
KEY_LIFETIME = timedelta(hours=23)


class RefundOutcome(StrEnum):
    """What a payments use case came to (logged by its caller, and the webhook's answer)."""

    PENDING = "pending"  # the provider's answer, applied: the attempt is on its way
    SUCCEEDED = "succeeded"  # ... the money left for the buyer
    FAILED = "failed"  # ... the attempt failed (nothing moved)
    UNCHANGED = "unchanged"  # the answer changed nothing (a replay, an answer already known)
    STALE = "stale"  # not the live attempt any more (settled, failed, or a newer one exists)
    UNKNOWN = "unknown"  # no such order or refund to send
    IGNORED = "ignored"  # a verified notice about something else than a refund
    UNKNOWN_REFUND = "unknown_refund"  # a notice for a refund we do not know
    MISMATCH = "mismatch"  # a notice whose amount is not the refund's: flagged for a person
    PAID_TWICE = "paid_twice"  # a second attempt paid too: flagged for a person
    HELD = "held"  # a newer attempt could not be cancelled: held for a person
    CANCELLED = "cancelled"  # the newer attempt was cancelled: paid once


class Payments(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, provider: PaymentProvider,
                 hand_over: Callable[[list[dict[str, Any]]], None]) -> None:
        """``hand_over``: gives messages to the refund worker (``RefundQueue.enqueue``)."""
        super().__init__(uow, clock, policy)
        self.provider = provider
        self.hand_over = hand_over

    # ---- sending --------------------------------------------------------------------------
    def send(self, order_id: str, refund_id: str, attempt: int) -> RefundOutcome:
        """Send one attempt (the refund worker calls this for each attempt a commit owed, off the
        request path; again when it is overdue). Raises PaymentUnavailable when the outcome is unknown: the outbox
        keeps the record and the reconciler tries again. An attempt sent before is looked up at
        the provider first, and only sent again while the provider still knows its key."""
        with self.uow() as uow:
            order = uow.orders.get(order_id)
        if order is None or not order.ledger.has_refund(refund_id):
            logger.error("refund to send not found", order_id=order_id, refund_id=refund_id)
            return RefundOutcome.UNKNOWN
        refund = order.ledger.refund(refund_id)
        if refund.status != PENDING or refund.attempt != attempt:
            return RefundOutcome.STALE  # settled, failed, or a newer attempt exists: never send an old one
        request = self._request(order, refund, attempt)
        now = self.clock.now()
        if refund.sent_at is None:
            earlier = self._earlier_attempts(order, refund)
            if earlier is not None:
                return earlier
            if self._change(order_id, lambda o: o.refund_sending(refund_id, attempt, now), read=order) is None:
                # Nothing to mark: another sender marked it first, or the refund moved on (an older
                # attempt paid meanwhile): never send an attempt that is no longer the live one.
                with self.uow() as uow:
                    again = uow.orders.get(order_id)
                current = again.ledger.refund(refund_id) if again is not None else None
                if current is None or current.status != PENDING or current.attempt != attempt:
                    return RefundOutcome.STALE
        else:
            known = self.provider.lookup(request)
            if known is not None:
                return self._apply(order_id, refund_id, attempt, known.status, known.provider_refund_id,
                                   known.failure_reason)
            if now - refund.sent_at > KEY_LIFETIME:
                logger.error("refund outcome unknown past the key's lifetime: not sent again", refund_id=refund_id)
                return self._apply(order_id, refund_id, attempt, FAILED, None, "OUTCOME_UNKNOWN")
        receipt = self.provider.refund(request)
        logger.info("refund sent", refund_id=refund_id, attempt=attempt, status=receipt.status,
                    provider=self.provider.name)
        outcome = self._apply(order_id, refund_id, attempt, receipt.status, receipt.provider_refund_id,
                              receipt.failure_reason)
        if outcome is RefundOutcome.UNCHANGED and receipt.status != FAILED:
            # An older attempt paid while this one was on its way (its cancel found nothing yet):
            # cancel what was just sent.
            self.stop_newer_attempt(order_id, refund_id)
        return outcome

    @staticmethod
    def _request(order: Order, refund: Refund, attempt: int) -> RefundOrder:
        return RefundOrder(refund.refund_id, attempt, order.order_id, order.payment.reference if order.payment else None,
                           refund.amount)

    def _earlier_attempts(self, order: Order, refund: Refund) -> RefundOutcome | None:
        """Before a new attempt goes out: every earlier one must be known at the provider to have
        failed (or never to have reached it). One that succeeded after all settles the refund; one
        still pending holds the new attempt for a person. None: the new attempt may go."""
        for earlier in range(1, refund.attempt):
            view = self.provider.lookup(self._request(order, refund, earlier))  # unknown: the outbox retries
            # A refund that exists at the provider for another amount or currency is no failure
            # we know of (it may have paid): like a pending one, it holds the new attempt.
            if view is None or (view.status == FAILED and view.failure_reason != AMOUNT_OR_CURRENCY_MISMATCH):
                continue
            if view.status == SUCCEEDED:
                logger.warning("an earlier refund attempt succeeded after all: the new one is not sent",
                               refund_id=refund.refund_id, attempt=earlier, new_attempt=refund.attempt)
                outcome = self._apply(order.order_id, refund.refund_id, earlier, SUCCEEDED, view.provider_refund_id, None)
                self.stop_newer_attempt(order.order_id, refund.refund_id)  # another sender may have sent it
                return outcome
            logger.error("an earlier refund attempt is pending or unaccounted for at the provider: the new one is held",
                         refund_id=refund.refund_id, attempt=earlier, new_attempt=refund.attempt)
            return self._apply(order.order_id, refund.refund_id, refund.attempt, FAILED, None, EARLIER_ATTEMPT_PENDING)
        return None

    # ---- learning the outcome -------------------------------------------------------------
    def webhook(self, payload: bytes, headers: Mapping[str, str]) -> RefundOutcome:
        """A provider's signed notice. Refused (400) unless its signature verifies."""
        try:
            notice = self.provider.parse_webhook(payload, headers)
        except InvalidWebhook as exc:
            logger.warning("webhook refused", why=str(exc), provider=self.provider.name)
            raise InvalidInput("the webhook signature or payload does not verify", code="INVALID_WEBHOOK") from exc
        if notice is None:
            return RefundOutcome.IGNORED
        return self.settle(notice)

    def settle(self, notice: SettlementNotice) -> RefundOutcome:
        """What a provider says of one attempt. Replays and late notices change nothing (a
        refund settled stays settled); a notice that does not match is flagged for a person."""
        with self.uow() as uow:
            order = uow.orders.get(notice.order_id) if notice.order_id else None
        if order is None or not order.ledger.has_refund(notice.refund_id):
            # Answered (a provider retries what it thinks we missed), never acted upon; alarmed.
            logger.error("notice for an unknown refund", refund_id=notice.refund_id, event_id=notice.event_id)
            count("WebhooksUnmatched")
            return RefundOutcome.UNKNOWN_REFUND
        refund = order.ledger.refund(notice.refund_id)
        if notice.amount != refund.amount:
            logger.error("notice does not match the refund", refund_id=refund.refund_id, event_id=notice.event_id,
                         notice_amount=notice.amount.to_dict(), amount=refund.amount.to_dict())
            self._flag(notice.order_id, refund.refund_id, NOTICE_MISMATCH)
            return RefundOutcome.MISMATCH
        if notice.status == SUCCEEDED and refund.status == SUCCEEDED and refund.provider_refund_id not in (
                None, notice.provider_refund_id):
            logger.error("a second refund succeeded at the provider: paid twice?", refund_id=refund.refund_id,
                         provider_refund_id=notice.provider_refund_id, settled_by=refund.provider_refund_id)
            count("RefundsPaidTwice")
            self._flag(notice.order_id, refund.refund_id, PAID_TWICE)
            return RefundOutcome.PAID_TWICE

        if notice.attempt != refund.attempt and notice.status != SUCCEEDED:
            logger.warning("notice for another attempt ignored", refund_id=refund.refund_id, attempt=notice.attempt,
                           current=refund.attempt, status=notice.status)
            return RefundOutcome.STALE
        outcome, changed = self._applied(notice.order_id, notice.refund_id, notice.attempt, notice.status,
                                         notice.provider_refund_id, notice.failure_reason, read=order)
        if notice.status == SUCCEEDED:  # an older attempt's success is what holds a newer one (again on redelivery)
            # The order as just written, when this notice changed it: no second read.
            self._hand_over_stop(notice.order_id, notice.refund_id, changed)
        return outcome

    def _hand_over_stop(self, order_id: str, refund_id: str, current: Order | None) -> None:
        """An older attempt paid while a newer one was out: the refund worker cancels the newer
        one (``stop_newer_attempt``). Until then the refund is held for a person; should the queue
        not take the message, the alarm is raised, and a redelivered notice hands it over again."""
        order = current
        if order is None:
            with self.uow() as uow:
                order = uow.orders.get(order_id)
        refund = order.ledger.refund(refund_id) if order is not None else None
        if order is None or refund is None or refund.attention_reason != NEWER_ATTEMPT_LIVE:
            return
        try:
            self.hand_over([cancel_message(order_id, refund_id, refund.attempt)])
        except Exception:  # noqa: BLE001 - the refund stays held for a person; the alarm says so
            logger.exception("the newer refund attempt's cancel was not handed over: held for a person",
                             refund_id=refund_id, attempt=refund.attempt)
            count("RefundsPaidTwice")

    def stop_newer_attempt(self, order_id: str, refund_id: str) -> RefundOutcome:
        """An older attempt paid while a newer one was out (the refund worker, or a sender that
        learned it): cancel the newer one where the provider still can. Until it is known to have
        failed the refund stays held for a person and the alarm stands; a redelivered notice
        hands it over again."""
        with self.uow() as uow:
            order = uow.orders.get(order_id)
        refund = order.ledger.refund(refund_id) if order is not None else None
        if order is None or refund is None or refund.attention_reason != NEWER_ATTEMPT_LIVE:
            return RefundOutcome.STALE
        try:
            view = self.provider.cancel(self._request(order, refund, refund.attempt))
        except PaymentUnavailable:
            logger.exception("could not cancel the newer refund attempt: held for a person", refund_id=refund_id,
                             attempt=refund.attempt)
            count("RefundsPaidTwice")  # the alarm: money may leave twice until a person looks
            return RefundOutcome.HELD
        if view is not None and view.status == FAILED:
            logger.warning("newer refund attempt cancelled: paid once", refund_id=refund_id, attempt=refund.attempt)
            self._apply(order_id, refund_id, refund.attempt, FAILED, view.provider_refund_id, view.failure_reason)
            return RefundOutcome.CANCELLED
        if view is not None and view.status == SUCCEEDED:
            logger.error("the newer refund attempt had paid too: paid twice", refund_id=refund_id)
            self._flag(order_id, refund_id, PAID_TWICE)
            return RefundOutcome.PAID_TWICE
        logger.error("the newer refund attempt could not be cancelled: held for a person", refund_id=refund_id,
                     attempt=refund.attempt, provider_status=view.status if view else None)
        count("RefundsPaidTwice")
        return RefundOutcome.HELD

    def _flag(self, order_id: str, refund_id: str, reason: str) -> None:
        self._change(order_id, lambda o: o.flag_refund(refund_id, reason, self.clock.now()))

    def _change(self, order_id: str, change: Callable[[Order], Order], read: Order | None = None) -> Order | None:
        """Apply ``change`` to the order (the refund's one record; no dispute is read or written),
        re-reading when someone wrote first. None when it changed nothing. ``read``: the order as
        just read by the caller, tried first (its version guards the write like any other)."""
        def attempt() -> Order | None:
            nonlocal read
            with self.uow() as uow:
                order, read = (read if read is not None else uow.orders.get(order_id)), None
                assert order is not None, "an order is never deleted"
                changed = change(order)
                if changed == order:
                    return None
                uow.orders.save(changed)
                uow.commit()
                return changed

        return retry_on_conflict(attempt, "the order kept changing under its refund")

    def _apply(self, order_id: str, refund_id: str, attempt: int, status: str, provider_refund_id: str | None,
               failure_reason: str | None, read: Order | None = None) -> RefundOutcome:
        """What the provider says of an attempt, into the ledger (settled once; failed moves nothing)."""
        return self._applied(order_id, refund_id, attempt, status, provider_refund_id, failure_reason, read)[0]

    def _applied(self, order_id: str, refund_id: str, attempt: int, status: str, provider_refund_id: str | None,
                 failure_reason: str | None, read: Order | None = None) -> tuple[RefundOutcome, Order | None]:
        """``_apply``, and the order as written (None when the answer changed nothing)."""
        now = self.clock.now()

        def change(order: Order) -> Order:
            if status == SUCCEEDED:
                return order.refund_settled(refund_id, attempt, provider_refund_id, now)
            if status == FAILED:
                return order.refund_failed(refund_id, attempt, failure_reason or "FAILED", now, self.policy)
            return order.refund_submitted(refund_id, attempt, provider_refund_id, now)

        # The commit counts the refund paid, failed or needing attention (chalicelib/metrics.py).
        changed = self._change(order_id, change, read)
        return (RefundOutcome.UNCHANGED if changed is None else RefundOutcome(status.lower())), changed

    # ---- the refund timers ----------------------------------------------------------------
    def timer(self, action: str, order_id: str, refund_id: str, round_: int) -> Fired:
        """REFUND_SETTLEMENT: still pending at the deadline -> overdue: alarm, ask the provider
        again with the same key, another settlement period. REFUND_RETRY: a failed refund's
        next attempt after its backoff."""
        def attempt() -> Fired:
            with self.uow() as uow:
                order = uow.orders.get(order_id)
                if order is None or not order.ledger.has_refund(refund_id):
                    return Fired.STALE
                refund = order.ledger.refund(refund_id)
                now = self.clock.now()
                if action == REFUND_SETTLEMENT:
                    if not refund.awaits_settlement(round_):
                        return Fired.STALE
                    changed = order.refund_overdue(refund_id, round_, now, self.policy)
                elif action == REFUND_RETRY:
                    if not refund.awaits_retry(round_):
                        return Fired.STALE
                    changed = order.retry_refund(refund_id, now, self.policy)
                else:
                    raise ValueError(f"not a refund timer: {action}")
                uow.orders.save(changed)
                uow.commit()
            if action == REFUND_SETTLEMENT:
                logger.warning("refund settlement overdue: asked again with the same key", refund_id=refund_id)
                return Fired.OVERDUE
            return Fired.RETRIED

        return retry_on_conflict(attempt, "the order kept changing under its refund timer")

    # ---- people ---------------------------------------------------------------------------
    def retry(self, who: Identity, order_id: str, refund_id: str) -> Order:
        """A moderator tries a failed refund again (a new attempt, a new idempotency key)."""
        with self.uow() as uow:
            order = access.visible_order(who, uow.orders.get(order_id))
            access.require_order_role(who, order, OrderCommand.RETRY_REFUND, "only moderators retry refunds")
            if not order.ledger.has_refund(refund_id):
                raise NotFound("no such refund", code="REFUND_NOT_FOUND")
            saved = uow.orders.save(order.retry_refund(refund_id, self.clock.now(), self.policy))
            uow.commit()
            return saved

    def needing_attention(self, who: Identity, limit: int, cursor: str | None) -> tuple[list[Order], str | None]:
        access.require_moderator(who, "only moderators see refunds needing attention")
        with self.uow() as uow:
            return uow.orders.needing_attention(limit, cursor)
