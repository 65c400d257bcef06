"""Which AWS operations each Lambda function makes: every botocore call (and every presigned URL,
which the function's credentials sign) is recorded with the function whose code made it, read
off the call stack: an event handler of app.py, else the API handler (routes, webhook)."""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.utils import to_cfn_resource_name

ROOT = Path(__file__).resolve().parent.parent.parent
APP, API_EDGE = str(ROOT / "app.py"), str(ROOT / "chalicelib" / "api" / "routing.py")
EVENT_HANDLERS = {"release_escrow", "timer_fired", "drain_outbox", "evidence_uploaded", "expire_evidence",
                  "pay_refunds"}


@dataclass(frozen=True)
class Call:
    function: str  # the logical id of the Lambda function (APIHandler, TimerFired, ...)
    service: str  # botocore's service name (dynamodb, s3, ...)
    operation: str  # the API operation (PutItem, StartExecution, ...)
    params: Any = field(compare=False, hash=False)


_ACTING: ContextVar[str | None] = ContextVar("acting_as", default=None)


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    """Calls made inside are that function's: what it does on a path the test cannot drive from
    its handler (a Stripe stage's first refund reads the keys; no refund is sent here)."""
    token = _ACTING.set(function)
    try:
        yield
    finally:
        _ACTING.reset(token)


def _function() -> str | None:
    """The function whose code is on the stack: an event handler of app.py, else the API when a
    request is being served; None for the tests' own calls (set-up, use cases called directly)."""
    if (acting := _ACTING.get()) is not None:
        return acting
    frame: Any = sys._getframe(2)
    in_api = False
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == APP and frame.f_code.co_name in EVENT_HANDLERS:
            return to_cfn_resource_name(frame.f_code.co_name.replace("_", "-"))
        in_api = in_api or filename in (APP, API_EDGE)
        frame = frame.f_back
    return "APIHandler" if in_api else None


@contextmanager
def recording() -> Iterator[list[Call]]:
    from botocore.client import BaseClient

    from chalicelib.adapters.aws import S3EvidenceStore

    calls: list[Call] = []
    lock = threading.Lock()
    original, presign_post = BaseClient._make_api_call, S3EvidenceStore.presigned_post
    presign_url = S3EvidenceStore.download_url

    def record(service: str, operation: str, params: Any) -> None:
        function = _function()
        if function is not None:
            with lock:
                calls.append(Call(function, service, operation, params))

    def make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        record(self.meta.service_model.service_name, operation_name, api_params)
        return original(self, operation_name, api_params)

    def download_url(self: Any, key: str, *args: Any, **kw: Any) -> Any:
        # A GET of this URL is a GetObject signed with the function's credentials.
        record("s3", "GetObject", {"Bucket": self.bucket, "Key": key})
        return presign_url(self, key, *args, **kw)

    def presigned_post(self: Any, key: str, *args: Any, **kw: Any) -> Any:
        # A browser's POST to this URL is a PutObject signed with the function's credentials.
        record("s3", "PutObject", {"Bucket": self.bucket, "Key": key})
        return presign_post(self, key, *args, **kw)

    BaseClient._make_api_call = make_api_call
    S3EvidenceStore.download_url = download_url  # type: ignore[method-assign]
    S3EvidenceStore.presigned_post = presigned_post  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original
        S3EvidenceStore.download_url = presign_url  # type: ignore[method-assign]
        S3EvidenceStore.presigned_post = presign_post  # type: ignore[method-assign]
