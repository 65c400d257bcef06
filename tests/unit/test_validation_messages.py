"""Validation messages: one plain phrasing per JSON-schema rule kind, naming the field by its path."""
from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest

from chalicelib.api import schemas
from chalicelib.api.validation import PATTERNS, plain

SCHEMA = {"type": "object", "properties": {
    "when": {"type": "string", "format": "date"},
    "kind": {"const": "A"},
    "rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "flag": {"type": "boolean"},
    "tags": {"type": "array", "minItems": 2, "items": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}},
    "name": {"type": "string", "minLength": 3, "maxLength": 4},
}}


@pytest.mark.parametrize("body, expected", [
    ({"when": "23 Nov"}, ("when must be a valid date", "when")),
    ({"kind": "B"}, ("kind must be A", "kind")),
    ({"rate": 0}, ("rate must be more than 0", "rate")),
    ({"rate": 1}, ("rate must be less than 1", "rate")),
    ({"flag": "yes"}, ("flag must be true or false", "flag")),
    ({"tags": [{}]}, ("tags must have at least 2 items", "tags")),
    ({"tags": [{"n": 1}, {"n": "x"}]}, ("tags[1].n must be a whole number or null", "tags[1].n")),
    ({"name": "ab"}, ("name must be at least 3 characters long", "name")),
    ({"name": "abcde"}, ("name must be at most 4 characters long", "name")),
])
def test_each_rule_kind_has_its_plain_phrasing(body: dict[str, Any], expected: tuple[str, str]) -> None:
    with pytest.raises(fastjsonschema.JsonSchemaValueException) as err:
        fastjsonschema.compile(SCHEMA)(body)
    assert plain(err.value) == expected


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


def test_every_pattern_of_the_request_schemas_is_said_in_words() -> None:
    used = set().union(*(_patterns(v) for v in vars(schemas).values() if isinstance(v, dict)))
    assert len(used) >= 4 and used <= set(PATTERNS), used - set(PATTERNS)
