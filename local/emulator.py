"""Talking to the moto server itself, and making its DynamoDB behave like DynamoDB."""
from __future__ import annotations

import functools
import threading
from typing import Any

import requests

_lock = threading.Lock()


def configure_moto(endpoint: str) -> None:
    """Turn on moto's Step Functions interpreter, so state machines really run."""
    r = requests.post(f"{endpoint}/moto-api/config",
                      json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    r.raise_for_status()


def make_dynamodb_atomic() -> None:
    """Serialize moto's DynamoDB requests. DynamoDB applies each request atomically (a condition
    and its write, a whole transaction); moto's backend does not lock, so two threads can both
    pass a condition, or a transaction can crash copying a table another thread is writing.
    With this, concurrent requests get DynamoDB's semantics, which is what our locking relies on."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_atomic", False):
        return
    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    call_action._atomic = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
