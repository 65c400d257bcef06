"""Opaque list cursors over DynamoDB's LastEvaluatedKey, and one paged query."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any, TypeVar

from pynamodb.exceptions import QueryError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import Index
from pynamodb.models import Model

from ...domain.errors import InvalidInput

_M = TypeVar("_M", bound=Model)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, expected_keys: Iterable[str]) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(key, dict) or set(key) != set(expected_keys):
            raise ValueError(cursor)
        for value in key.values():
            if not (isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)):
                raise ValueError(cursor)
        return key
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc


def query_page(index: type[_M] | Index[_M], hash_value: str, key_names: tuple[str, ...], limit: int,
               cursor: str | None, forward: bool, filter_condition: Condition | None = None) -> tuple[list[_M], str | None]:
    """One page of ``index`` (a model or an index) for ``hash_value``: one request to DynamoDB."""
    start = decode_cursor(cursor, key_names)
    result = index.query(hash_value, limit=limit, last_evaluated_key=start, scan_index_forward=forward,
                         filter_condition=filter_condition)
    try:
        models = list(result)
    except QueryError as exc:
        if exc.cause_response_code == "ValidationException":  # a forged cursor that decodes
            raise InvalidInput("cursor is not valid", code="INVALID_CURSOR") from exc
        raise
    more = len(models) == limit and result.last_evaluated_key
    return models, encode_cursor(result.last_evaluated_key) if more else None


def query_shards(index: Index[_M], prefix: str, shards: int, condition: Condition, limit: int) -> list[_M]:
    """A sharded index (hash keys ``<prefix>0`` .. ``<prefix><shards - 1>``, spread so no partition
    is hot): up to ``limit`` items of each shard whose range key meets ``condition``, all shards
    together (the caller orders them and keeps its first ``limit``)."""
    items: list[_M] = []
    for n in range(shards):
        items += index.query(f"{prefix}{n}", condition, limit=limit)
    return items
