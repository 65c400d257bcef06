"""Stripe as the payment provider: refunds through the official SDK (v16), settlement by signed webhooks."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import stripe

from chalicelib.config import ConfigError
from chalicelib.domain.money import Money
from chalicelib.logs import logger
from chalicelib.ports import (
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    InvalidWebhook,
    PaymentUnavailable,
    RefundOrder,
    RefundReceipt,
    SettlementNotice,
    attempt_number,
)

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams, RefundListParams

# Stripe's documented Refund statuses; anything else is an answer we cannot read.
_STATUSES = {"succeeded": REFUND_SUCCEEDED, "pending": REFUND_PENDING, "requires_action": REFUND_PENDING,
             "failed": REFUND_FAILED, "canceled": REFUND_FAILED}
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
# Keys are read again at most this often (unreadable at start, or refused by Stripe).
REREAD_SECONDS = 60.0
# What reading a body of the wrong shape (missing key, wrong type, not JSON) raises.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)


class StripePayments:
    """Refunds on Stripe, idempotent on ``RefundOrder.idempotency_key``.

    The SDK's own network retries are off (``max_network_retries=0``): PaymentUnavailable already
    means "retry with the same key", and the caller's retry schedule, not SDK back-off sleeps, should
    spend the Lambda's time budget; an outage then shows up at once instead of after hidden retries.
    """

    name = "stripe"

    def __init__(self, api_key: str, webhook_secret: str, api_base: str | None = None,
                 timeout_seconds: float = 10.0, credentials: Callable[[bool], tuple[str, str]] | None = None) -> None:
        """``credentials(refresh)`` reads the keys again (a deployed stage's secret): when they were
        unreadable at start, or when Stripe refuses them (rotated), at most once per
        REREAD_SECONDS. Without it, the keys given are the only ones."""
        self._api_base, self._timeout = api_base, timeout_seconds
        self._credentials = credentials
        self._read_at: float | None = None
        self._client: stripe.StripeClient | None = None
        self._webhook_secret = ""
        if api_key and webhook_secret:
            self._use(api_key, webhook_secret)

    def _use(self, api_key: str, webhook_secret: str) -> None:
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": self._api_base or stripe.DEFAULT_API_BASE},
            max_network_retries=0,
            # requests applies the timeout to the connect and to each read: a stalled Stripe fails fast.
            http_client=stripe.RequestsClient(timeout=self._timeout),
        )

    def _reread(self) -> bool:
        """Read the keys again (throttled: a flood of bad webhooks never becomes a flood of reads).
        True if new keys are in use."""
        now = time.monotonic()
        if self._credentials is None or (self._read_at is not None and now - self._read_at < REREAD_SECONDS):
            return False
        self._read_at = now
        try:
            self._use(*self._credentials(True))
        except ConfigError as e:
            logger.error("Stripe keys unreadable", why=str(e))
            return False
        return True

    def _ready(self) -> stripe.StripeClient:
        if self._client is None and not self._reread():
            raise PaymentUnavailable("the Stripe keys are unreadable (see the Stripe secret); the refund stays owed")
        assert self._client is not None
        return self._client

    def refund(self, order: RefundOrder) -> RefundReceipt:
        """POST /v1/refunds for the attempt; definitive refusals are FAILED receipts."""
        target = _payment(order.payment_reference)
        if target is None:
            return RefundReceipt(REFUND_FAILED, None, "NO_PAYMENT_REFERENCE")
        # No currency: a refund always takes the charge's; the answer is checked against ours instead.
        params = cast("RefundCreateParams", {**target, "amount": order.amount.amount, "metadata": {
            "refund_id": order.refund_id, "attempt": str(order.attempt), "order_id": order.order_id}})
        try:
            created = self._ready().v1.refunds.create(params, options={"idempotency_key": order.idempotency_key})
            return _receipt(created.to_dict(), order)
        except stripe.IdempotencyError as e:
            # Stripe kept the first request made with this key; a different one under it is our bug.
            raise PaymentUnavailable(f"Stripe refused idempotency key {order.idempotency_key!r}: it was first used "
                                     "with other parameters; nothing was paid by this request") from e
        except (stripe.CardError, stripe.InvalidRequestError) as e:
            # A documented 4xx refusal (charge_already_refunded, amount_too_large...): no money moved.
            return RefundReceipt(REFUND_FAILED, None, e.code or "invalid_request_error")
        except (stripe.AuthenticationError, stripe.PermissionError) as e:
            self._reread()  # the key may have been rotated: the next attempt uses the new one
            raise PaymentUnavailable(f"Stripe refused our key for {order.idempotency_key}: {e!r}") from e
        except stripe.StripeError as e:
            # Network, time-out, 409 key in use, 429, 5xx, unreadable body, and 401/403 (our config):
            # the outcome is unknown or the request was never judged.
            raise PaymentUnavailable(f"Stripe refund {order.idempotency_key}: {e!r}") from e
        except _SHAPE_ERRORS as e:
            raise PaymentUnavailable(f"Stripe refund {order.idempotency_key}: unreadable answer") from e

    def lookup(self, order: RefundOrder) -> RefundReceipt | None:
        """GET /v1/refunds for the payment, finding the refund whose metadata names this attempt."""
        found = self._find(order)
        try:
            return None if found is None else _receipt(found, order)
        except _SHAPE_ERRORS as e:
            raise PaymentUnavailable(f"Stripe refund lookup {order.idempotency_key}: unreadable answer") from e

    def cancel(self, order: RefundOrder) -> RefundReceipt | None:
        """POST /v1/refunds/{id}/cancel for the attempt's refund. Stripe cancels only a refund
        that still requires action; any other is answered as it stands (PENDING: on its way)."""
        found = self._find(order)
        if found is None:
            return None
        try:
            if found.get("status") == "requires_action":
                try:
                    found = self._ready().v1.refunds.cancel(str(found["id"])).to_dict()
                except stripe.InvalidRequestError:
                    pass  # no longer cancellable: it stands as found
            return _receipt(found, order)
        except (stripe.AuthenticationError, stripe.PermissionError) as e:
            self._reread()
            raise PaymentUnavailable(f"Stripe refused our key for the cancel {order.idempotency_key}: {e!r}") from e
        except stripe.StripeError as e:
            raise PaymentUnavailable(f"Stripe refund cancel {order.idempotency_key}: {e!r}") from e
        except _SHAPE_ERRORS as e:
            raise PaymentUnavailable(f"Stripe refund cancel {order.idempotency_key}: unreadable answer") from e

    def _find(self, order: RefundOrder) -> dict[str, Any] | None:
        """The Refund object Stripe holds for this attempt (by its metadata), or None."""
        target = _payment(order.payment_reference)
        if target is None:
            return None  # refund() never sends such an order to Stripe
        params: dict[str, Any] = {**target, "limit": 100}
        try:
            while True:  # pages by hand so that every page's shape is checked, not only the first
                page = self._ready().v1.refunds.list(cast("RefundListParams", params)).to_dict()
                refunds = page["data"]
                if page.get("object") != "list" or not isinstance(refunds, list):
                    raise TypeError(f"not a list: {page.get('object')!r}")
                for refund in refunds:
                    metadata = refund.get("metadata") or {}
                    if metadata.get("refund_id") == order.refund_id and metadata.get("attempt") == str(order.attempt):
                        return dict(refund)
                if not page.get("has_more") or not refunds:
                    return None
                params["starting_after"] = refunds[-1]["id"]
        except stripe.InvalidRequestError as e:
            if e.code == "resource_missing":
                return None  # no such payment on this account, so no refund of ours on it
            raise PaymentUnavailable(f"Stripe refund lookup {order.idempotency_key}: {e!r}") from e
        except (stripe.AuthenticationError, stripe.PermissionError) as e:
            self._reread()
            raise PaymentUnavailable(f"Stripe refused our key for the lookup {order.idempotency_key}: {e!r}") from e
        except stripe.StripeError as e:
            raise PaymentUnavailable(f"Stripe refund lookup {order.idempotency_key}: {e!r}") from e
        except _SHAPE_ERRORS as e:
            raise PaymentUnavailable(f"Stripe refund lookup {order.idempotency_key}: unreadable answer") from e

    def settlement_simulator(self) -> None:
        """Stripe settles refunds by itself only: no simulation."""
        return None

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> SettlementNotice | None:
        """Verify the Stripe-Signature (300 s tolerance) and read a refund event; None if not about ours."""
        signature = next((value for key, value in headers.items() if key.lower() == "stripe-signature"), None)
        client = self._ready()  # unreadable keys: PaymentUnavailable (503), and Stripe sends it again
        try:
            event = client.construct_event(payload, signature, self._webhook_secret).to_dict()
        except stripe.SignatureVerificationError as e:
            if not self._reread():  # a rotated signing secret is read again (throttled), then tried once
                raise InvalidWebhook(f"Stripe webhook rejected: {e}") from e
            try:
                event = self._ready().construct_event(payload, signature, self._webhook_secret).to_dict()
            except (stripe.SignatureVerificationError, *_SHAPE_ERRORS) as again:
                raise InvalidWebhook(f"Stripe webhook rejected: {again}") from again
        except _SHAPE_ERRORS as e:
            raise InvalidWebhook(f"Stripe webhook rejected: {e}") from e
        if event.get("type") not in _REFUND_EVENTS:
            return None
        try:
            refund = event["data"]["object"]
            metadata = refund.get("metadata") or {}
            if "refund_id" not in metadata:
                return None  # a refund made outside this service (e.g. from the Dashboard)
            status = _STATUSES[refund["status"]]
            return SettlementNotice(
                event_id=str(event["id"]), refund_id=str(metadata["refund_id"]), attempt=attempt_number(metadata["attempt"]),
                provider_refund_id=str(refund["id"]), status=status, amount=_money(refund),
                failure_reason=(refund.get("failure_reason") or refund["status"]) if status == REFUND_FAILED else None,
                order_id=str(metadata.get("order_id") or ""))
        except _SHAPE_ERRORS as e:
            raise InvalidWebhook(f"Stripe webhook {event.get('id')}: unreadable refund event") from e


def _payment(reference: str | None) -> dict[str, str] | None:
    """The refund's target: a PaymentIntent or a Charge id, None for anything else."""
    if reference and reference.startswith("pi_"):
        return {"payment_intent": reference}
    if reference and reference.startswith("ch_"):
        return {"charge": reference}
    return None


def _money(refund: dict[str, Any]) -> Money:
    amount, currency = refund["amount"], refund["currency"]
    if type(amount) is not int or not isinstance(currency, str):
        raise TypeError(f"refund amount {amount!r} {currency!r}")
    return Money(amount, currency.upper())


def _receipt(refund: dict[str, Any], order: RefundOrder) -> RefundReceipt:
    """The receipt for a Refund object Stripe returned for this order; garbage raises PaymentUnavailable."""
    if refund.get("object") != "refund" or not isinstance(refund.get("id"), str):
        raise TypeError(f"not a refund: {refund.get('object')!r}")
    if refund["currency"] != order.amount.currency.lower() or _money(refund).amount != order.amount.amount:
        # A refund exists at Stripe, but not the one we asked for (the charge is in another
        # currency?): never "retry" it, which could create another. A person must look.
        return RefundReceipt(REFUND_FAILED, refund["id"], "AMOUNT_OR_CURRENCY_MISMATCH")
    status = _STATUSES[refund["status"]]
    reason = (refund.get("failure_reason") or refund["status"]) if status == REFUND_FAILED else None
    return RefundReceipt(status, refund["id"], reason)
