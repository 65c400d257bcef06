"""Typed domain errors. The HTTP edge maps each class to one status code (chalicelib/api/routing.py)."""
from __future__ import annotations

from typing import Any

# Every code the API answers with, and what it means: the one list. openapi.yaml enumerates the
# same codes (a test keeps them equal), so generated clients can branch on them.
CODES: dict[str, str] = {
    # 400: the request itself is malformed
    "VALIDATION_ERROR": "a field is missing, unknown, of the wrong type or out of range (details.field)",
    "MALFORMED_JSON": "the body is not a JSON object",
    "BODY_TOO_LARGE": "the body is over the size the route accepts",
    "INVALID_TEXT": "a string holds half a surrogate pair: not Unicode text (details.field)",
    "INVALID_CURSOR": "the `cursor` is not one this list returned",
    "INVALID_QUERY": "a query parameter the route does not take, or a value it does not allow (details.parameter)",
    "INVALID_WEBHOOK": "the payment provider's notice does not verify",
    "INVALID_CURRENCY": "not an ISO 4217 currency with minor units (details.field)",
    # 401, 403, 404, 405
    "UNAUTHENTICATED": "no bearer token, or one that does not verify",
    "NOT_YOUR_ACTION": ("the caller may not do this: the action belongs to the other party, to a moderator "
                        "(moderator routes) or to a platform service (service routes)"),
    "ORDER_NOT_FOUND": "no such order, or not this caller's",
    "DISPUTE_NOT_FOUND": "no such dispute, or not this caller's",
    "OFFER_NOT_FOUND": "no such offer on this dispute",
    "REFUND_NOT_FOUND": "no such refund on this order",
    "SELLER_NOT_FOUND": "no standing this caller may read (moderators, and the seller for themself)",
    "BUYER_NOT_FOUND": "no signals this caller may read (moderators only)",
    "RULE_NOT_FOUND": "no auto-resolution rule with this rule_id",
    "ROUTE_NOT_FOUND": "no route has this method and path (the sandbox routes outside sandbox stages)",
    "METHOD_NOT_ALLOWED": "the path exists but not with this method (the Allow header lists those it has)",
    # 409: the current state does not allow it
    "VERSION_CONFLICT": "`expected_version` is not the current version (details.current_version)",
    "IDEMPOTENCY_KEY_REUSED": "this Idempotency-Key came with another request body",
    "IDEMPOTENCY_KEY_IN_PROGRESS": "the first request with this Idempotency-Key is still running",
    "INVALID_STATE": "not possible in the dispute's current status (details.status)",
    "CASE_CLAIMED": "another moderator holds the case until their claim expires (details.moderator_id, expires_at)",
    "DISPUTE_ALREADY_OPEN": "the order already has an open dispute (details.dispute_id)",
    "DISPUTE_OPEN": "a dispute is open on the order, so its money cannot move",
    "DISPUTE_CLOSED": "the dispute has ended",
    "ORDER_EXISTS": "an order with this order_id exists, with other contents",
    "ORDER_CLOSED": "the order's money has been paid out",
    "ALREADY_SHIPPED": "the order has been shipped already",
    "NOT_SHIPPED_YET": "the order has not been shipped",
    "ESCROW_RELEASED": "escrow has been paid out already",
    "OFFER_NOT_OPEN": "the offer was accepted, superseded or withdrawn (details.status)",
    "NO_PENDING_DEADLINE": "no deadline of the dispute is pending; a refund's settlement or retry is not one (sandbox)",
    "REFUND_NOT_FAILED": "only a failed refund is retried",
    "REFUND_NOT_PENDING": "the refund has no attempt waiting at the provider (sandbox)",
    "NOT_SIMULATED_PROVIDER": "the stage pays through a real provider: refunds settle only by its webhook (sandbox)",
    # 415, 422: a business rule refuses it
    "UNSUPPORTED_CONTENT_TYPE": "a body that is not JSON, or an evidence type that is not accepted (details.allowed)",
    "DISPUTE_WINDOW_NOT_OPEN": "the dispute window has not opened (details.opens_at)",
    "DISPUTE_WINDOW_CLOSED": "the dispute window has closed (details.closes_at)",
    "REASON_NOT_ALLOWED": "this reason cannot be opened for the order now (details.allowed)",
    "SOLUTION_NOT_ALLOWED": "this solution does not fit the reason (an item never received cannot be returned)",
    "UNKNOWN_ITEM": "item_ids that are not items of the order",
    "INVALID_AMOUNT": "an amount of nothing, over what escrow holds, or in another currency",
    "INVALID_ORDER": "an order that does not add up (same buyer and seller, repeated item ids, a wrong total)",
    "INVALID_TIMESTAMP": "a time that cannot be (a scan before the shipment, a ship-by in the past)",
    "OFFER_LIMIT_REACHED": "this side has made as many offers as it may (details.limit)",
    "EVIDENCE_REQUIRED": "the buyer must upload the evidence the reason needs first (details.missing)",
    "EVIDENCE_LIMIT_REACHED": "the party has as many files on the dispute as it may",
    "FILE_TOO_LARGE": "the declared file is over the type's limit (details.max_bytes)",
    "EMPTY_FILE": "the declared file is empty",
    "INVALID_RULE": "an auto-resolution rule that cannot be (details.field): e.g. a max_amount of nothing",
    "RULE_LIMIT_REACHED": "as many rules are DRY_RUN or ACTIVE as may be (details.limit)",
    # 429, and what API Gateway answers itself before the service runs
    "THROTTLED": "too many requests: retry later with the same Idempotency-Key",
    "REQUEST_REFUSED": "refused by API Gateway before it reached the service",
    # 5xx
    "INTERNAL_ERROR": "something failed on the service's side; nothing was changed",
    "SERVICE_UNAVAILABLE": "a dependency is unavailable; retry with the same Idempotency-Key",
}


# Codes the domain raises to its own callers (timers, the escrow sweep), which catch them: never
# sent over HTTP, so not in CODES (the edge answers 500 INTERNAL_ERROR if one ever got there).
INTERNAL_CODES: dict[str, str] = {
    "NOT_DUE": "a deadline or the escrow release is not due yet (a timer fired early)",
    "REFUND_EXISTS": "a refund with this refund_id was requested already on the order",
}


def known_code(code: str) -> str:
    """The code itself, if it is in CODES or INTERNAL_CODES: any other is a programming error."""
    if code not in CODES and code not in INTERNAL_CODES:
        raise ValueError(f"{code} is not an error code of this API (chalicelib/domain/errors.py CODES)")
    return code


def sent_code(code: str) -> str:
    """The code itself, if the API may send it (CODES)."""
    if code not in CODES:
        raise ValueError(f"{code} is not an error code the API sends (chalicelib/domain/errors.py CODES)")
    return code


class DomainError(Exception):
    """A refusal with a stable SNAKE_CASE code the apps can branch on."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = known_code(code or self.code)
        self.details = details or {}


class InvalidInput(DomainError):
    """Malformed input (400)."""

    code = "VALIDATION_ERROR"


class Unauthenticated(DomainError):
    """Missing or invalid credentials (401)."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """The action is not the caller's (403)."""

    code = "NOT_YOUR_ACTION"


class NotFound(DomainError):
    """Unknown, or not visible to this caller (404). Always raised with the code of what is missing."""

    code = ""


class Conflict(DomainError):
    """The current state does not allow it (409)."""

    code = "INVALID_STATE"


class RuleViolation(DomainError):
    """A business rule refuses it (422). Always raised with the code of the rule."""

    code = ""


class ConcurrentModification(Conflict):
    """Someone else changed the aggregate first (409)."""

    code = "VERSION_CONFLICT"
