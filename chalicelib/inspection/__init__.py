"""What an uploaded file really is, and a copy safe to show the other side.

Pure functions of the bytes (Pillow, pypdf, a box parser; no AWS). The type is read from the
content, never trusted from the name or the declared type, and then every accepted type is
parsed as what it claims to be and rewritten: photos within a memory budget, upright and without
metadata (``images``); MP4/QuickTime box by box, without location and user data (``video``);
PDFs page by page, without actions, JavaScript, embedded files or metadata (``pdf``). What is
served is always the rewritten copy, never the upload.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import budget, images, pdf, video

QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


@dataclass(frozen=True)
class Inspection:
    sha256: str  # of the upload
    rejection: str | None = None  # a code the app can show: see REASONS
    clean: bytes | None = None  # the bytes to serve
    thumbnail: bytes | None = None

    @property
    def served_sha256(self) -> str | None:
        return None if self.clean is None else hashlib.sha256(self.clean).hexdigest()


# A metric's `reason` dimension for anything outside REASONS (a bounded dimension).
OTHER_REASON = "OTHER"
REASONS = {
    "EMPTY_FILE": "The file is empty.",
    "FILE_TOO_LARGE": "The file is larger than allowed for its type.",
    "SIZE_MISMATCH": "The file is not the size that was announced.",
    "TYPE_MISMATCH": "The file's content is not of the declared type.",
    "UNRECOGNIZED_CONTENT": "The file is not a photo, video or PDF we accept.",
    "DECOMPRESSION_BOMB": "The image has too many pixels for its format.",
    "CORRUPT_IMAGE": "The image is damaged or incomplete.",
    "CORRUPT_VIDEO": "The video is damaged or incomplete.",
    "VIDEO_NOT_CLEANABLE": "The video has tracks other than picture and sound, which could hold a location.",
    "CORRUPT_PDF": "The PDF is damaged or incomplete.",
    "PDF_ENCRYPTED": "The PDF is password-protected.",
    "TOO_MANY_PAGES": "The PDF has more pages than accepted.",
    "PDF_TOO_COMPLEX": "The PDF unpacks to more data or objects than we can check.",
    "PDF_NOT_CLEANABLE": "The PDF holds a picture whose metadata could not be removed.",
    "DISPUTE_CLOSED": "The dispute closed before the file was checked.",
    "PROCESSING_FAILED": "The file could not be checked in time; upload it again.",
    budget.CODE: "The file takes longer to check than allowed; send a smaller or simpler one.",
}


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves announce, or None (the container is checked later)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data[4:8] in QUICKTIME_ATOMS:
        return "video/quicktime"
    return None


def install() -> None:
    """What inspecting needs set up once per process: pypdf's budget hooks (idempotent)."""
    pdf.install()


def inspect(data: bytes, declared_type: str, declared_size: int, max_bytes: int,
            cpu_seconds: float | None = None) -> Inspection:
    """What ``data`` is; within ``cpu_seconds`` of CPU when given (budget.py: the evidence function
    passes its own), past which it is refused with INSPECTION_BUDGET_EXCEEDED."""
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return Inspection(digest, "EMPTY_FILE")
    if len(data) > max_bytes:
        return Inspection(digest, "FILE_TOO_LARGE")
    if len(data) != declared_size:
        return Inspection(digest, "SIZE_MISMATCH")
    actual = sniff(data)
    if actual is None:
        return Inspection(digest, "UNRECOGNIZED_CONTENT")
    if actual != declared_type:
        return Inspection(digest, "TYPE_MISMATCH")
    with budget.limited(cpu_seconds):
        try:
            result = _inspect(data, declared_type, digest)
        except budget.OverBudget:
            return Inspection(digest, budget.CODE)
        # Past the budget, whatever the inspectors made of it (a library may have swallowed the
        # checkpoint's error and reported the file damaged): the same file is refused the same way.
        return Inspection(digest, budget.CODE) if budget.exceeded() else result


def _inspect(data: bytes, declared_type: str, digest: str) -> Inspection:
    try:
        if declared_type in images.PIL_FORMATS:
            cleaned = images.clean(data, images.PIL_FORMATS[declared_type])
            return Inspection(digest, clean=cleaned.served, thumbnail=cleaned.thumbnail)
        if declared_type == "application/pdf":
            return Inspection(digest, clean=pdf.check_and_clean(data))
        return Inspection(digest, clean=video.check_and_clean(data))
    except (images.Refused, pdf.Refused, video.Refused) as refused:
        return Inspection(digest, refused.code)
