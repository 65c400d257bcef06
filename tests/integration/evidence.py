"""Making real files and uploading them the way a phone does: a presigned POST, then S3's event."""
from __future__ import annotations

from typing import Any

import boto3
import requests

from tests.integration.api import BUYER, Api


class Uploads:
    """Request a slot through the API, POST the file to S3, let S3's event reach the handler."""

    def __init__(self, api: Api, app: Any, env: dict[str, str]) -> None:
        from local.dispatcher import SqsPump

        self.api = api
        self.pump = SqsPump(app, "evidence-uploaded", env["EVIDENCE_QUEUE_URL"],
                            boto3.client("sqs", region_name="us-east-1"))

    def slot(self, dispute_id: str, data: bytes, content_type: str, who: tuple[str, ...] = BUYER,
             file_name: str = "photo.jpg", size: int | None = None) -> Any:
        return self.api.post(f"/disputes/{dispute_id}/evidence", who, {
            "file_name": file_name, "content_type": content_type, "size_bytes": len(data) if size is None else size})

    def post(self, upload: dict[str, Any], data: bytes, key: str | None = None) -> int:
        fields = dict(upload["fields"])
        if key is not None:
            fields["key"] = key
        r = requests.post(upload["url"], data=fields, files={"file": ("upload", data)}, timeout=30)
        return r.status_code

    def deliver(self) -> int:
        """Hand every pending S3 event to the handler; returns how many messages were handled."""
        handled = 0
        while n := self.pump.pump_once(wait_seconds=0):
            handled += n
        return handled

    def upload(self, dispute_id: str, data: bytes, content_type: str = "image/jpeg",
               who: tuple[str, ...] = BUYER, file_name: str = "photo.jpg") -> dict[str, Any]:
        """The whole path; returns the evidence as the listing shows it."""
        r = self.slot(dispute_id, data, content_type, who, file_name)
        assert r.status_code == 201, r.json_body
        assert self.post(r.json_body["upload"], data) in (200, 201, 204)
        self.deliver()
        return self.listed(dispute_id, r.json_body["evidence_id"], who)

    def listed(self, dispute_id: str, evidence_id: str, who: tuple[str, ...] = BUYER) -> dict[str, Any]:
        items = self.api.get(f"/disputes/{dispute_id}/evidence", who).json_body["items"]
        return next(e for e in items if e["evidence_id"] == evidence_id)
