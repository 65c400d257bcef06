"""Evidence: upload slots, what each file may be, and what each reason expects."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .catalog import EVIDENCE_EXPECTED, SUGGESTED_SOLUTIONS, Reason
from .errors import RuleViolation
from .timefmt import fmt, parse, parse_opt

MIB = 1024 * 1024
# content type -> largest size accepted (docs/RULES.md, openapi.yaml)
LIMITS: dict[str, int] = {
    "image/jpeg": 10 * MIB, "image/png": 10 * MIB, "image/webp": 10 * MIB,
    "video/mp4": 50 * MIB, "video/quicktime": 50 * MIB,
    "application/pdf": 10 * MIB,
}
# A served file is saved under the extension of its verified type, never the uploader's.
EXTENSIONS: dict[str, str] = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
    "video/mp4": ".mp4", "video/quicktime": ".mov",
    "application/pdf": ".pdf",
}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
VISUAL_TYPES = IMAGE_TYPES | {"video/mp4", "video/quicktime"}
MAX_FILES_PER_PARTY = 10
# Rejected and expired files give their place back, but a party cannot ask for slots forever.
SLOTS_PER_PLACE = 3
UPLOAD_WINDOW = timedelta(minutes=15)
# A file still PROCESSING this long after it arrived will never finish (S3's event was retried
# MAX_RECEIVES times, 3 minutes apart, and went to the dead-letter queue): it is rejected with
# PROCESSING_FAILED and gives the party's place back.
PROCESSING_LIMIT = timedelta(minutes=20)

class EvidenceStatus(StrEnum):
    """Where a file is: a slot waiting for its upload, being checked, or final."""
    PENDING_UPLOAD = "PENDING_UPLOAD"
    PROCESSING = "PROCESSING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


PENDING_UPLOAD, PROCESSING = EvidenceStatus.PENDING_UPLOAD, EvidenceStatus.PROCESSING
ACCEPTED, REJECTED, EXPIRED = EvidenceStatus.ACCEPTED, EvidenceStatus.REJECTED, EvidenceStatus.EXPIRED
FINAL = frozenset({ACCEPTED, REJECTED, EXPIRED})
# Statuses that hold one of the party's ten places.
COUNTED = frozenset({PENDING_UPLOAD, PROCESSING, ACCEPTED})


def download_name(file_name: str, content_type: str) -> str:
    """The name a served file is saved under: the uploader's name without its extension (letters,
    digits, ``._-`` and spaces only, at most 100 characters), then the extension of ``content_type``:
    ``unboxing.html`` served as video/mp4 is ``unboxing.mp4``."""
    extension = EXTENSIONS.get(content_type, ".bin")
    safe = "".join(c for c in file_name if c.isalnum() or c in "._- ")
    base, dot, _ = safe.rpartition(".")
    base = (base if dot else safe).strip(" .")
    if base.lower().endswith(extension):
        base = base[:-len(extension)].rstrip(" .")
    return (base[:100 - len(extension)] or "evidence") + extension


def has_free_place(used: int, created: int, max_per_party: int = MAX_FILES_PER_PARTY) -> bool:
    """A party may take another upload slot: a place of their ``max_per_party`` is free (``used``:
    pending, processing or accepted) and they have not asked for too many slots (``created``)."""
    return used < max_per_party and created < max_per_party * SLOTS_PER_PLACE


@dataclass(frozen=True)
class Evidence:
    dispute_id: str
    evidence_id: str
    uploaded_by: str  # buyer | seller
    uploader_id: str
    file_name: str
    content_type: str
    size_bytes: int
    status: EvidenceStatus
    created_at: datetime
    expires_at: datetime
    rejection_reason: str | None = None
    sha256: str | None = None
    has_thumbnail: bool = False
    processed_at: datetime | None = None
    served_sha256: str | None = None  # of the cleaned copy that is served (sha256: of the upload)
    processing_since: datetime | None = None

    @classmethod
    def slot(cls, dispute_id: str, role: str, uploader_id: str, file_name: str, content_type: str,
             size_bytes: int, now: datetime) -> Evidence:
        """A place to upload one file: checked against the type and size limits."""
        limit = LIMITS.get(content_type)
        if limit is None:
            raise RuleViolation(f"{content_type} is not accepted", code="UNSUPPORTED_CONTENT_TYPE",
                                details={"allowed": sorted(LIMITS)})
        if not 0 < size_bytes <= limit:
            raise RuleViolation(f"{content_type} files must be 1 byte to {limit // MIB} MiB", code="FILE_TOO_LARGE"
                                if size_bytes > limit else "EMPTY_FILE", details={"max_bytes": limit})
        return cls(dispute_id=dispute_id, evidence_id=str(uuid.uuid4()), uploaded_by=role, uploader_id=uploader_id,
                   file_name=file_name, content_type=content_type, size_bytes=size_bytes, status=PENDING_UPLOAD,
                   created_at=now, expires_at=now + UPLOAD_WINDOW)

    @property
    def upload_key(self) -> str:
        return f"uploads/{self.dispute_id}/{self.evidence_id}"

    def served_keys(self, served_sha256: str | None = None) -> tuple[str, str]:
        """Where the served copy and its thumbnail live. Named by the copy's own hash, so two
        uploads to one slot processed at once never write the same key: the one recorded is
        the one served, whichever finishes last."""
        digest = served_sha256 or self.served_sha256
        base = f"evidence/{self.dispute_id}/{self.evidence_id}"
        if digest is None:
            return f"{base}/file", f"{base}/thumbnail.jpg"  # files accepted before copies were named
        return f"{base}/{digest}", f"{base}/{digest}-thumbnail.jpg"

    @property
    def file_key(self) -> str:
        return self.served_keys()[0]

    @property
    def thumbnail_key(self) -> str:
        return self.served_keys()[1]

    @property
    def served_inline(self) -> bool:
        """Photos open in the browser; anything else is only ever downloaded as an attachment."""
        return self.content_type in IMAGE_TYPES

    @property
    def max_bytes(self) -> int:
        return LIMITS[self.content_type]

    @property
    def satisfies_checklist(self) -> bool:
        """A buyer's accepted photo or video: what the photo reasons of the checklist expect."""
        return self.uploaded_by == "buyer" and self.status == ACCEPTED and self.content_type in VISUAL_TYPES

    def shown_status(self, now: datetime) -> EvidenceStatus:
        """A slot whose upload window passed is EXPIRED, whether or not the sweep got to it."""
        return EXPIRED if self.status == PENDING_UPLOAD and now > self.expires_at else self.status

    @property
    def attention_at(self) -> datetime | None:
        """When an unfinished slot needs the sweep: its upload window's end, or its processing limit."""
        if self.status == PENDING_UPLOAD:
            return self.expires_at
        if self.status == PROCESSING:
            return (self.processing_since or self.created_at) + PROCESSING_LIMIT
        return None

    def processing(self, now: datetime) -> Evidence:
        return replace(self, status=PROCESSING, processing_since=now)

    def timed_out(self, now: datetime) -> Evidence:
        """What the sweep makes of a slot past ``attention_at``: EXPIRED if nothing came, REJECTED
        (PROCESSING_FAILED) if what came was never finished."""
        if self.status == PROCESSING:
            return self.rejected("PROCESSING_FAILED", now, self.sha256)
        return replace(self, status=EXPIRED)

    def accepted(self, sha256: str, has_thumbnail: bool, now: datetime, served_sha256: str | None = None) -> Evidence:
        return replace(self, status=ACCEPTED, sha256=sha256, has_thumbnail=has_thumbnail, processed_at=now,
                       served_sha256=served_sha256)

    def rejected(self, reason: str, now: datetime, sha256: str | None = None) -> Evidence:
        return replace(self, status=REJECTED, rejection_reason=reason, sha256=sha256, processed_at=now)

    def to_dict(self) -> dict[str, Any]:
        return {"dispute_id": self.dispute_id, "evidence_id": self.evidence_id, "uploaded_by": self.uploaded_by,
                "uploader_id": self.uploader_id, "file_name": self.file_name, "content_type": self.content_type,
                "size_bytes": self.size_bytes, "status": self.status.value, "created_at": fmt(self.created_at),
                "expires_at": fmt(self.expires_at), "rejection_reason": self.rejection_reason, "sha256": self.sha256,
                "has_thumbnail": self.has_thumbnail, "processed_at": fmt(self.processed_at),
                "served_sha256": self.served_sha256, "processing_since": fmt(self.processing_since)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evidence:
        return cls(dispute_id=d["dispute_id"], evidence_id=d["evidence_id"], uploaded_by=d["uploaded_by"],
                   uploader_id=d["uploader_id"], file_name=d["file_name"], content_type=d["content_type"],
                   size_bytes=int(d["size_bytes"]), status=EvidenceStatus(d["status"]), created_at=parse(d["created_at"]),
                   expires_at=parse(d["expires_at"]), rejection_reason=d.get("rejection_reason"),
                   sha256=d.get("sha256"), has_thumbnail=bool(d.get("has_thumbnail")),
                   processed_at=parse_opt(d.get("processed_at")), served_sha256=d.get("served_sha256"),
                   processing_since=parse_opt(d.get("processing_since")))


def checklist(reason: Reason, buyer_visual_evidence: int) -> dict[str, Any]:
    """The reasons' evidence table (docs/RULES.md), checked: photo reasons need at least one accepted photo or video from the
    buyer (``buyer_visual_evidence`` counts them); NOT_RECEIVED is proven by the tracking data the
    service already holds."""
    expected = list(EVIDENCE_EXPECTED[reason])
    suggested = [s.value for s in SUGGESTED_SOLUTIONS[reason]]
    has_visual = reason is Reason.NOT_RECEIVED or buyer_visual_evidence > 0
    return {"expected": expected, "satisfied": has_visual, "missing": [] if has_visual else expected,
            "suggested_solutions": suggested}
