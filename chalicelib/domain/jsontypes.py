"""JSON as the domain keeps it in what it stores and publishes: a value, and an object of them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JSONValue: TypeAlias = "str | int | float | bool | None | Sequence[JSONValue] | Mapping[str, JSONValue]"
JSONObject: TypeAlias = "Mapping[str, JSONValue]"
