"""Typed domain errors. The HTTP edge maps each class to one status code (chalicelib/http.py)."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a stable SNAKE_CASE code the apps can branch on."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidInput(DomainError):
    """Malformed input (400)."""

    code = "VALIDATION_ERROR"


class Unauthenticated(DomainError):
    """Missing or invalid credentials (401)."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """The caller is a party but the action is not theirs (403)."""

    code = "FORBIDDEN"


class NotFound(DomainError):
    """Unknown, or not visible to this caller (404)."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The current state does not allow it (409)."""

    code = "CONFLICT"


class RuleViolation(DomainError):
    """A business rule refuses it (422)."""

    code = "RULE_VIOLATION"


class ConcurrentModification(Conflict):
    """Someone else changed the aggregate first (409)."""

    code = "VERSION_CONFLICT"
