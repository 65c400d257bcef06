"""What a console form sent, as the JSON body the API's route for the same action takes: the pages
validate it with the route's own schema (chalicelib/api/schemas.py) and build the same typed command,
so a rule (a rationale of 10-4000 characters, a partial amount under the order total) is checked
in one place whichever way a moderator acts."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from ..domain.errors import InvalidInput

MAX_FORM_BYTES = 64 * 1024
# A comma only as a thousands separator: 1,234.50 (groups of three after the first); console.js has the same rule.
THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")
DECIMAL_COMMA = "use a point for decimals: 8.00"


def parse(raw: bytes | None) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body: the first value of each field."""
    if raw and len(raw) > MAX_FORM_BYTES:
        raise InvalidInput("the form is too large", code="BODY_TOO_LARGE", details={"max_bytes": MAX_FORM_BYTES})
    try:
        text = (raw or b"").decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the form could not be read", code="VALIDATION_ERROR", details={"field": "body"}) from exc
    # A browser sends a textarea's line breaks as CRLF: one break is one character, as the textarea
    # counted it and as it is stored.
    return {name: values[0].replace("\r\n", "\n").replace("\r", "\n") for name, values in fields.items()}


@cache
def exponent(currency: str) -> int:
    """How many digits a currency has after its decimal point (ISO 4217: USD 2, JPY 0, KWD 3)."""
    import iso4217

    try:
        found = iso4217.Currency(currency).exponent
    except ValueError:
        found = None
    return 2 if found is None else int(found)


def minor_units(typed: str, currency: str, field: str = "amount") -> int:
    """``8.00`` USD -> 800: an amount as a person types it, in the currency's minor units. Refused
    (400 VALIDATION_ERROR): blank, not a plain decimal number, negative, or with more decimals
    than the currency has, or with a comma that is not a thousands separator (``8,00`` is not 800)."""
    text = typed.strip() if typed else ""
    if "," in text:
        if not THOUSANDS.fullmatch(text):
            raise InvalidInput(f"{field}: {DECIMAL_COMMA}", code="VALIDATION_ERROR", details={"field": field})
        text = text.replace(",", "")
    digits = exponent(currency)
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"{field} must be an amount like {'8.00' if digits == 2 else '8'}", code="VALIDATION_ERROR",
                           details={"field": field}) from exc
    if not value.is_finite() or value < 0 or not text.replace(".", "", 1).isdigit():
        raise InvalidInput(f"{field} must be a positive amount", code="VALIDATION_ERROR", details={"field": field})
    minor = value.scaleb(digits)
    if minor != minor.to_integral_value():
        said = (f"{currency} has no minor units: give a whole amount" if digits == 0 else
                f"{currency} has {digits} decimals at most: give an amount like {Decimal(8):.{digits}f}")
        raise InvalidInput(f"{field}: {said}", code="VALIDATION_ERROR", details={"field": field})
    return int(minor)


def major_units(minor: int, currency: str) -> str:
    """800 USD -> ``8.00``: how the console writes an amount back."""
    digits = exponent(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def decision_body(form: dict[str, str], currency: str) -> dict[str, Any]:
    """The decision form as the body of ``POST /disputes/{id}/decision``: the amount only for a
    partial refund, the fault only when one was chosen (else the contract's default applies)."""
    body: dict[str, Any] = {"outcome": form.get("outcome", ""), "rationale": form.get("rationale", "")}
    if body["outcome"] == "REFUND_PARTIAL":
        body["amount"] = {"amount": minor_units(form.get("amount", ""), currency), "currency": currency}
    if form.get("fault"):
        body["fault"] = form["fault"]
    version = form.get("expected_version", "")
    if version:
        if not (version.isascii() and version.isdigit()):
            raise InvalidInput("expected_version must be a whole number", code="VALIDATION_ERROR",
                               details={"field": "expected_version"})
        body["expected_version"] = int(version)
    return body


def _choices(form: dict[str, str], name: str) -> list[str] | None:
    """Ticked boxes named ``<name>.<value>``, in the form's order; none ticked: no condition."""
    picked = [key.split(".", 1)[1] for key, value in form.items() if key.startswith(name + ".") and value]
    return picked or None


def _whole(form: dict[str, str], name: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInput(f"{name} must be a whole number", code="VALIDATION_ERROR", details={"field": name})
    return int(text)


def rule_body(form: dict[str, str]) -> dict[str, Any]:
    """The rule form as the body of ``PUT /moderation/rules/{rule_id}``: a ``when`` key only for a
    condition given (ticked boxes, a typed amount, a number of days)."""
    priority = _whole(form, "priority")
    if priority is None:  # never a silent 0 (the first to act)
        raise InvalidInput("priority: give a whole number from 0 (acts first) to 1000", code="VALIDATION_ERROR",
                           details={"field": "priority"})
    body: dict[str, Any] = {"description": form.get("description", ""), "mode": form.get("mode", ""),
                            "priority": priority, "then": form.get("then", "")}
    when: dict[str, Any] = {}
    for name in ("reasons", "seller_levels", "buyer_flags"):
        picked = _choices(form, name)
        if picked is not None:
            when[name] = picked
    typed = form.get("max_amount", "").strip()
    if typed:
        currency = form.get("currency", "").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidInput("currency must be three letters, like USD", code="VALIDATION_ERROR",
                               details={"field": "currency"})
        when["max_amount"] = {"amount": minor_units(typed, currency, "max_amount"), "currency": currency}
    days = _whole(form, "no_carrier_scan_days")
    if days is not None:
        when["no_carrier_scan_days"] = days
    if when:
        body["when"] = when
    version = _whole(form, "expected_version")
    if version is not None:
        body["expected_version"] = version
    return body
