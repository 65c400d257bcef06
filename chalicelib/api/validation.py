"""Request bodies against their JSON Schemas (api/schemas.py), and the validator's complaints
in plain words: 400 VALIDATION_ERROR naming the field. The console's forms use the same."""
from __future__ import annotations

import re
from typing import Any, Callable

import fastjsonschema

from ..domain.errors import InvalidInput
from .schemas import ID, TIMESTAMP

_validators: dict[int, Callable[[Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """The schema compiled once per process. (fastjsonschema is the engine of Powertools'
    validation utility, whose ``validate`` compiles the schema again on every call: ~6 ms.)"""
    compiled = _validators.get(id(schema))
    if compiled is None:
        compiled = _validators[id(schema)] = fastjsonschema.compile(schema)
    return compiled


def require_unicode(value: Any, path: str = "body") -> None:
    """JSON lets a string carry half a surrogate pair ("\\ud800"); it is not text, and nothing
    downstream (DynamoDB, the response) can encode it: refused here, naming the field."""
    pending = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                pending += [(key, where), (child, f"{where}.{key}" if isinstance(key, str) else where)]
        elif isinstance(item, list):
            pending += [(child, f"{where}[{i}]") for i, child in enumerate(item)]
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidInput(f"{where.removeprefix('body.')} is not valid Unicode text", code="INVALID_TEXT",
                                   details={"field": where.removeprefix("body.")}) from exc


_LISTED = re.compile(r"[\[{](.*)[\]}]")
# What a pattern of api/schemas.py asks for, in words.
PATTERNS: dict[str, str] = {
    "\\S": "must not be blank",
    str(ID["pattern"]): "may contain only letters, digits and . _ : @ | -",
    "^[A-Z]{3}$": "must be three capital letters (an ISO 4217 currency code)",
    "^[A-Za-z0-9_]+$": "may contain only letters, digits and _",
    "^[^/\\\\\\x00-\\x1f]+$": "must not contain /, \\ or control characters",
    str(TIMESTAMP["pattern"]): "must be an RFC 3339 timestamp with a zone, e.g. 2026-11-23T10:00:00Z",
}
TYPES = {"string": "a string", "integer": "a whole number", "number": "a number", "object": "an object",
         "array": "a list", "boolean": "true or false", "null": "null"}


def _plural(n: Any, one: str) -> str:
    return f"{n} {one}{'' if n == 1 else 's'}"


def _rule_in_words(rule: str | None, value: Any) -> str:
    """One phrasing per JSON-schema rule kind (``value`` is the rule's value in the schema)."""
    if rule == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(TYPES.get(str(k), str(k)) for k in kinds)
    if rule == "pattern":
        return PATTERNS.get(str(value), "is not in the expected format")
    if rule == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {_plural(value, 'character')} long"
    if rule == "maxLength":
        return f"must be at most {_plural(value, 'character')} long"
    if rule == "minimum":
        return f"must be at least {value}"
    if rule == "maximum":
        return f"must be at most {value}"
    if rule == "exclusiveMinimum":
        return f"must be more than {value}"
    if rule == "exclusiveMaximum":
        return f"must be less than {value}"
    if rule == "minItems":
        return "must not be empty" if value == 1 else f"must have at least {_plural(value, 'item')}"
    if rule == "maxItems":
        return f"must have at most {_plural(value, 'item')}"
    if rule == "uniqueItems":
        return "must not repeat an item"
    if rule == "enum":
        return "must be one of " + ", ".join(str(v) for v in value)
    if rule == "const":
        return f"must be {value}"
    if rule == "format":
        return f"must be a valid {value}"
    if rule in ("minProperties", "maxProperties"):
        return f"must have {'at least' if rule == 'minProperties' else 'at most'} {_plural(value, 'field')}"
    return "is not valid"


def plain(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """The validator's complaint in plain words and the field it is about, with its path
    (``items[0].quantity``), never the validator's own vocabulary (``data.items[0].quantity must
    be bigger than or equal to 1``)."""
    where = (exc.name or "data").removeprefix("data").lstrip(".")
    listed = _LISTED.search(exc.message or "")
    names = [n.strip(" '\"") for n in listed.group(1).split(",")] if listed else []
    if exc.rule in ("additionalProperties", "required") and names:
        fields = [".".join(filter(None, (where, name))) for name in names]
        what = "unknown" if exc.rule == "additionalProperties" else "missing required"
        return f"{what} field{'s' if len(fields) > 1 else ''}: {', '.join(fields)}", fields[0]
    return f"{where or 'the body'} {_rule_in_words(exc.rule, exc.rule_definition)}", where or "body"


def validate(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """A request body against its route's schema (api/schemas.py), or 400 VALIDATION_ERROR
    in plain words. The console's forms are checked with the same schemas."""
    try:
        _validator(schema)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        message, field_name = plain(exc)
        raise InvalidInput(message, code="VALIDATION_ERROR", details={"field": field_name, "rule": exc.rule}) from exc
