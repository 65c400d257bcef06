"""Money as integer minor units with an ISO 4217 currency code."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from .errors import InvalidInput, RuleViolation


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 codes of money: those with minor units (which leaves out the test and "no
    currency" codes and the precious metals)."""
    import iso4217  # the official list, read once and only when money is first read

    return frozenset(c.code for c in iso4217.Currency if c.exponent is not None)


@dataclass(frozen=True, order=False)
class Money:
    amount: int
    currency: str

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> Money:
        """``where``: the money's path in the request body (``total``), named by a refusal."""
        currency = str(data["currency"])
        if currency not in currencies():
            field = ".".join(filter(None, (where, "currency")))
            raise InvalidInput(f"{field} {currency} is not an ISO 4217 currency", code="INVALID_CURRENCY",
                               details={"field": field, "currency": currency})
        return cls(int(data["amount"]), currency)

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise RuleViolation(
                f"amount must be in the order's currency {self.currency}",
                code="INVALID_AMOUNT",
                details={"expected_currency": self.currency},
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def require_partial_of(self, total: Money) -> None:
        """A partial refund: same currency, more than nothing, less than the total."""
        total._same(self)
        if not 0 < self.amount < total.amount:
            raise RuleViolation(
                "a partial amount must be more than 0 and less than the order total",
                code="INVALID_AMOUNT",
                details={"min_exclusive": 0, "max_exclusive": total.amount, "currency": total.currency},
            )
