"""RFC 3339 timestamps in UTC, whole seconds, as the API shows them."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utc(dt: datetime) -> datetime:
    """The same instant in UTC, truncated to whole seconds."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime")
    try:
        return dt.astimezone(UTC).replace(microsecond=0)
    except OverflowError as exc:
        raise ValueError(f"out of range: {dt!r}") from exc


@overload
def fmt(dt: datetime) -> str: ...
@overload
def fmt(dt: None) -> None: ...
def fmt(dt: datetime | None) -> str | None:
    return None if dt is None else utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset (``Z`` or ``+hh:mm``)."""
    if not isinstance(value, str) or "T" not in value.upper():
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    text = value.strip()
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return utc(dt)


def parse_opt(value: str | None) -> datetime | None:
    return None if value is None else parse(value)
