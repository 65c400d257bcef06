"""One botocore session for every PynamoDB connection.

PynamoDB 6 builds a botocore session per connection (per model class, per thread), and each new
session loads and parses the DynamoDB service model again: ~55 ms of CPU per model on the first
request of a Lambda container. PynamoDB dropped its ``session_cls`` setting, so the session is
shared here, once, at wiring time, through the module attribute its connections read. botocore
client creation from one session is not thread-safe, so it is serialized (it happens once per
connection; requests themselves run on the clients in parallel).
"""
from __future__ import annotations

import threading
from typing import Any

import botocore.session
from pynamodb.connection import base

_lock = threading.RLock()


class _SerializedSession(botocore.session.Session):  # type: ignore[misc]  # botocore is untyped
    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return super().create_client(*args, **kwargs)


_session: _SerializedSession | None = None


def shared_session() -> botocore.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = _SerializedSession()
        return _session


_boto3: dict[str, Any] = {}


def boto3_session(region: str) -> Any:
    """A boto3 session over the same botocore session, one per region for the process (boto3
    registers its handlers on the botocore session once)."""
    import boto3

    with _lock:
        if region not in _boto3:
            _boto3[region] = boto3.Session(botocore_session=shared_session(), region_name=region)
        return _boto3[region]


def share_botocore_session() -> None:
    """Make every PynamoDB connection created from now on use the shared session."""
    base.get_session = shared_session  # type: ignore[attr-defined, unused-ignore]  # strict: not re-exported
