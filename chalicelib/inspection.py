"""What an uploaded file really is, and a copy safe to show the other side.

Pure functions of the bytes (Pillow, no AWS): the type is read from the content, never trusted
from the name or the declared type; images are decoded with Pillow restricted to the declared
format, guarded against decompression bombs, oriented, re-encoded without EXIF/GPS and given a
thumbnail; videos and PDFs have their signatures checked.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

MAX_PIXELS = 64_000_000  # 48 MP phone cameras pass; a 20,000 x 20,000 "bomb" does not
THUMBNAIL_SIZE = (512, 512)
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the pixels upright (as ImageOps.exif_transpose).
ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


@dataclass(frozen=True)
class Inspection:
    sha256: str
    rejection: str | None = None  # a code the app can show: see REASONS
    clean: bytes | None = None  # the bytes to serve
    thumbnail: bytes | None = None


REASONS = {
    "EMPTY_FILE": "The file is empty.",
    "FILE_TOO_LARGE": "The file is larger than allowed for its type.",
    "SIZE_MISMATCH": "The file is not the size that was announced.",
    "TYPE_MISMATCH": "The file's content is not of the declared type.",
    "UNRECOGNIZED_CONTENT": "The file is not a photo, video or PDF we accept.",
    "DECOMPRESSION_BOMB": "The image has too many pixels.",
    "CORRUPT_IMAGE": "The image is damaged or incomplete.",
    "CORRUPT_VIDEO": "The video is damaged or incomplete.",
    "CORRUPT_PDF": "The PDF is damaged or incomplete.",
}


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves announce, or None."""
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


def inspect(data: bytes, declared_type: str, declared_size: int, max_bytes: int) -> Inspection:
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
    if declared_type in PIL_FORMATS:
        return _image(data, digest, PIL_FORMATS[declared_type])
    if declared_type == "application/pdf":
        ok = b"%%EOF" in data[-2048:]
        return Inspection(digest, None if ok else "CORRUPT_PDF", clean=data if ok else None)
    ok = len(data) >= 16
    return Inspection(digest, None if ok else "CORRUPT_VIDEO", clean=data if ok else None)


def _image(data: bytes, digest: str, pil_format: str) -> Inspection:
    try:
        return _clean_image(data, digest, pil_format)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Inspection(digest, "DECOMPRESSION_BOMB")
    except Exception:  # noqa: BLE001 - whatever Pillow cannot read or write is not served
        return Inspection(digest, "CORRUPT_IMAGE")


def _clean_image(data: bytes, digest: str, pil_format: str) -> Inspection:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[pil_format])
            width, height = image.size
            if width * height > MAX_PIXELS:
                return Inspection(digest, "DECOMPRESSION_BOMB")
            image.load()  # a truncated file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Inspection(digest, "DECOMPRESSION_BOMB")
    except (OSError, SyntaxError, ValueError):
        return Inspection(digest, "CORRUPT_IMAGE")
    icc = image.info.get("icc_profile")  # colour, not location: kept so colours stay true
    # The EXIF orientation is applied to the pixels, since the EXIF itself does not survive.
    transposition = ORIENTATIONS.get(image.getexif().get(ORIENTATION_TAG, 1))
    if image.mode not in ("RGB", "L") and not (pil_format != "JPEG" and image.mode == "RGBA"):
        # Palette, 1-bit, 16/32-bit and CMYK images are served as plain 8-bit RGB(A).
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if transparent and pil_format != "JPEG" else "RGB")
    oriented = image.transpose(transposition) if transposition is not None else image
    out = io.BytesIO()
    # Saving without exif= (and, for PNG, without pnginfo=) drops EXIF, GPS and text chunks.
    options = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90}, "PNG": {}}[pil_format]
    oriented.save(out, pil_format, icc_profile=icc, **options)
    # The thumbnail is made from a block-reduced copy, then turned: a fraction of the full work.
    factor = max(1, min(image.width, image.height) // (2 * THUMBNAIL_SIZE[0]))
    thumb = image.reduce(factor) if factor > 1 else image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE)
    if transposition is not None:
        thumb = thumb.transpose(transposition)
    thumb_out = io.BytesIO()
    thumb.convert("RGB").save(thumb_out, "JPEG", quality=80)
    return Inspection(digest, clean=out.getvalue(), thumbnail=thumb_out.getvalue())
