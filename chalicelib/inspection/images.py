"""Photos: a copy safe to show the other party, made within a fixed memory budget.

The dimensions are read from the header before any pixel is decoded, and each format has its own
pixel budget, since each costs a different amount of memory to decode:
- JPEG: decoded at a reduced DCT scale (``Image.draft``) when the served copy is smaller anyway,
  so a baseline JPEG of one scan never holds its full-size pixels; a JPEG of several scans
  (progressive, or baseline with its components in separate scans) keeps every DCT coefficient
  in memory while it decodes, so those are budgeted by coefficient. The segments and scans are
  counted first (``jpeg_scans``): too many is ``CORRUPT_IMAGE``, since Pillow keeps every
  application segment and libjpeg decodes every scan over the whole image;
- PNG: decoded at full size (no reduced decode exists), budgeted by the bytes per pixel of its mode;
  the chunks that cannot change the pixels or their orientation (text, private chunks) are
  dropped before Pillow reads them (``png_for_decoding``), since Pillow keeps them all in memory;
- WebP: libwebp allocates its full RGBA canvas when the file is opened, and Pillow copies it
  twice more, so the budget is checked on the header before Pillow sees the file.
The served copy is at most ``MAX_EDGE`` pixels on its long edge, upright (the EXIF orientation is
applied to the pixels), 8-bit, and carries no metadata but its ICC colour profile.
"""
from __future__ import annotations

import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageCms, JpegImagePlugin

from . import metadata
from .budget import OverBudget, check
from .icc import rebuild as icc_rebuild

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))  # what is served: no profile needed

MAX_PIXELS = 64_000_000  # above this any image is a bomb, whatever its format (48 MP phones pass)
MAX_EDGE = 2560  # the served copy's long edge
THUMBNAIL_SIZE = (512, 512)
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Decoding memory an image may take, whatever the format: the function has 512 MB, and Python,
# the libraries and the file take about 50 MB (bench/evidence_memory.py measures every worst
# case in a fresh process; the goal is 256 MB at the peak).
DECODE_BUDGET = 160 * 1024 * 1024
# Peak bytes per pixel of a full-size PNG decode, by the mode Pillow decodes to, as measured
# (Pillow keeps RGB in 4 bytes; paletted, grey+alpha and 16-bit images need an 8-bit copy).
PNG_BYTES_PER_PIXEL = {"1": 3.0, "L": 3.0, "P": 9.5, "PA": 9.5, "LA": 13.0, "RGB": 4.5, "RGBA": 8.5,
                       "I;16": 5.0, "I;16B": 5.0, "I": 9.0}
# libwebp's canvas, the frame Pillow reads from it and Pillow's image: about four RGBA copies.
WEBP_BYTES_PER_PIXEL = 16.5
# A progressive JPEG's coefficient buffers, and the decoder's own, per coefficient byte.
PROGRESSIVE_OVERHEAD = 1.6
# A JPEG's structure, counted before decoding. Progressive photos have about 10 scans (libjpeg's
# default script: 10 for colour, 6 for grey); each scan costs a pass over the whole image.
MAX_JPEG_SCANS = 100
# Segments other than scans (APPn, COM, tables...): a photo has 10 to 30; 10 MiB of the largest
# segments (64 KiB) is 160. Pillow keeps each application segment in a list.
MAX_JPEG_SEGMENTS = 500
# After the data of a scan: the next marker (not a stuffed 0xFF00, a restart marker or a fill byte).
JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
# PNG chunks Pillow reads for the pixels, their colour, transparency, orientation and animation;
# the others (text, time, private chunks) are dropped before Pillow reads the file.
PNG_DECODED_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM",
                                b"pHYs", b"eXIf", b"acTL", b"fcTL", b"fdAT"})
PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
# Text Pillow reads an orientation from: EXIF as text (ImageMagick's raw profile) and XMP. The first
# chunk of each keyword is kept if it is this small (decompressed, Pillow caps one at 1 MiB).
PNG_ORIENTATION_KEYWORDS = frozenset({b"exif", b"Raw profile type exif", b"XML:com.adobe.xmp"})
MAX_PNG_ORIENTATION_TEXT = 256 * 1024
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the pixels upright (as ImageOps.exif_transpose).
ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
ENCODE_OPTIONS: dict[str, dict[str, object]] = {"JPEG": {"quality": 90}, "WEBP": {"quality": 90, "method": 0},
                                                "PNG": {"compress_level": 6}}


class Refused(Exception):
    """The image is not served; ``code`` says why (a rejection reason)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class CleanImage:
    served: bytes
    thumbnail: bytes


def clean(data: bytes, pil_format: str) -> CleanImage:
    """The served copy and the thumbnail, or ``Refused``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = decode(data, pil_format)
            check()  # the CPU budget (budget.py), between Pillow's steps
            upright = orient(image, pil_format)
            check()
            served = encode(upright, pil_format)
            check()
            thumb = thumbnail(upright)
    except (Refused, OverBudget):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Refused("DECOMPRESSION_BOMB") from exc
    except Exception as exc:  # noqa: BLE001 - whatever Pillow cannot read or write is not served
        raise Refused("CORRUPT_IMAGE") from exc
    if not metadata.is_clean(served, pil_format) or not metadata.is_clean(thumb, "JPEG"):
        raise Refused("PROCESSING_FAILED")  # never expected: the encoder wrote something it was not given
    return CleanImage(served, thumb)


def webp_size(data: bytes) -> tuple[int, int]:
    """A WebP's canvas size from its first chunk header, read before libwebp allocates it."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise Refused("CORRUPT_IMAGE")


def jpeg_scans(data: bytes) -> int:
    """The number of scans (SOS) up to the end of the image (EOI), read from the markers before
    anything is decoded: segments are skipped by their length, a scan's data up to the next
    marker. More than ``MAX_JPEG_SCANS`` scans or ``MAX_JPEG_SEGMENTS`` other segments is refused."""
    scans = segments = 0
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:  # stray bytes between segments (libjpeg skips them too)
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD8:  # stuffing, fill byte, no length
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9 or pos + 4 > end:  # EOI: what follows (an appended preview) is not this image
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != 0xDA:
            segments += 1
            if segments > MAX_JPEG_SEGMENTS:
                raise Refused("CORRUPT_IMAGE")
            continue
        scans += 1
        if scans > MAX_JPEG_SCANS:
            raise Refused("CORRUPT_IMAGE")
        following = JPEG_NEXT_MARKER.search(data, pos)
        if following is None:
            break
        pos = following.start()
    return scans


def png_for_decoding(data: bytes) -> bytes:
    """The PNG with only the chunks Pillow needs (``PNG_DECODED_CHUNKS``, and the first small text
    chunk of each orientation keyword); the bytes as they are if nothing is dropped. A chunk that
    runs past the end, and what follows IEND, are left for Pillow to judge."""
    view = memoryview(data)
    parts: list[memoryview] = []
    keywords: set[bytes] = set()
    profile_seen = pixels_seen = False
    pos = start = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        following = pos + 12 + length
        if following > len(data) or kind == b"IEND":
            break
        keep = kind in PNG_DECODED_CHUNKS
        if kind == b"iCCP":  # Pillow inflates every one (up to 1 MiB each): the first, before the pixels
            keep, profile_seen = not profile_seen and not pixels_seen, True
        pixels_seen = pixels_seen or kind == b"IDAT"
        if kind in PNG_TEXT_CHUNKS and length <= MAX_PNG_ORIENTATION_TEXT:
            keyword = data[pos + 8:pos + 8 + min(length, 80)].split(b"\0", 1)[0]
            keep = keyword in PNG_ORIENTATION_KEYWORDS and keyword not in keywords
            keywords.add(keyword)
        if not keep:
            if start < pos:
                parts.append(view[start:pos])
            start = following
        pos = following
    if start == 8 and not parts:
        return data
    return b"".join([view[:8], *parts, view[start:]])


def jpeg_decode_bytes(image: JpegImagePlugin.JpegImageFile, scale: int, scans: int = 1) -> float:
    """Memory the decode holds: a JPEG of several scans (progressive, or components in separate
    scans) keeps all its DCT coefficients (2 bytes each, whatever the output scale); a baseline one
    of one scan streams rows into the (scaled) image."""
    width, height = image.size
    if scans <= 1 and not (image.info.get("progressive") or image.info.get("progression")):
        return math.ceil(width / scale) * math.ceil(height / scale) * len(image.getbands())
    sampling = [(int(layer[1]), int(layer[2])) for layer in image.layer] or [(1, 1)]
    h_max, v_max = max(h for h, _ in sampling), max(v for _, v in sampling)
    coefficients = sum(math.ceil(width * h / h_max) * math.ceil(height * v / v_max) for h, v in sampling)
    return 2 * coefficients * PROGRESSIVE_OVERHEAD


def dct_scale(width: int, height: int) -> int:
    """The JPEG decode scale (1, 2, 4 or 8) that brings the long edge nearest ``MAX_EDGE`` from above
    or to it: the smallest that fits, or 8."""
    for scale in (1, 2, 4, 8):
        if max(width, height) / scale <= MAX_EDGE:
            return scale
    return 8


def decode(data: bytes, pil_format: str) -> Image.Image:
    """Decoded within the budget, at most ``MAX_EDGE`` on the long edge, in an 8-bit mode the
    format can be served in. A truncated or damaged file raises."""
    if pil_format == "WEBP":
        width, height = webp_size(data)
        if width * height > MAX_PIXELS or width * height * WEBP_BYTES_PER_PIXEL > DECODE_BUDGET:
            raise Refused("DECOMPRESSION_BOMB")
    scans = jpeg_scans(data) if pil_format == "JPEG" else 0
    if pil_format == "PNG":
        data = png_for_decoding(data)
    image: Image.Image = Image.open(io.BytesIO(data), formats=[pil_format])
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Refused("DECOMPRESSION_BOMB")
    if isinstance(image, JpegImagePlugin.JpegImageFile):
        scale = dct_scale(width, height)
        if jpeg_decode_bytes(image, scale, scans) > DECODE_BUDGET:
            raise Refused("DECOMPRESSION_BOMB")
        if scale > 1:
            image.draft(image.mode, (math.ceil(width / scale), math.ceil(height / scale)))
    elif pil_format == "PNG":
        if width * height * PNG_BYTES_PER_PIXEL.get(image.mode, 9) > DECODE_BUDGET:
            raise Refused("DECOMPRESSION_BOMB")
    image.load()  # every byte is decoded: a truncated file fails here
    exif_orientation = image.getexif().get(ORIENTATION_TAG, 1)
    icc = image.info.get("icc_profile")
    image = shrink(eight_bit(image, pil_format))
    served = icc_rebuild(icc) if isinstance(icc, bytes) and image.mode in ("RGB", "RGBA") else None
    if served is None:
        image = to_srgb(image, icc)
    # Nothing of the original's info travels on but what is named here; a profile only as we wrote it.
    image.info = {"orientation": exif_orientation}
    if served is not None:
        image.info["icc_profile"] = served
    return image


def to_srgb(image: Image.Image, icc: Any) -> Image.Image:
    """The pixels in sRGB, for a profile that cannot be served as rebuilt (icc.py: one made of
    look-up tables rather than a matrix and curves). One that does not read as an RGB profile is
    ignored, as a browser would."""
    if not isinstance(icc, bytes) or not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in (ImageCms.getProfileDescription(source) or "").lower():
            return image  # already sRGB (or says so: its bytes are not served either way)
        converted = ImageCms.applyTransform(image, ImageCms.buildTransform(source, SRGB, image.mode, image.mode))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return image
    return converted if converted is not None else image


def eight_bit(image: Image.Image, pil_format: str) -> Image.Image:
    """The modes served: L or RGB, and RGBA where the format keeps transparency (not JPEG)."""
    alpha_ok = pil_format != "JPEG"
    if image.mode in ("L", "RGB") or (image.mode == "RGBA" and alpha_ok):
        return image
    if image.mode.startswith("I"):  # 16/32-bit grey: scaled to 8 bits, not clipped
        return image.point(lambda v: v / 256).convert("L")
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGBA" if transparent and alpha_ok else "RGB")


def shrink(image: Image.Image) -> Image.Image:
    """At most ``MAX_EDGE`` on the long edge: a box reduction by a whole factor (one smaller copy)."""
    factor = math.ceil(max(image.size) / MAX_EDGE)
    return image.reduce(factor) if factor > 1 else image


def orient(image: Image.Image, pil_format: str) -> Image.Image:
    """Upright: the EXIF orientation applied to the pixels (the EXIF itself is not served)."""
    transposition = ORIENTATIONS.get(image.info.get("orientation", 1))
    if transposition is None:
        return image
    upright = image.transpose(transposition)
    upright.info = dict(image.info)
    return upright


def encode(image: Image.Image, pil_format: str) -> bytes:
    """Written with nothing but the pixels and the ICC profile (no EXIF, XMP, comment or text)."""
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    image.info = {}
    image.save(out, pil_format, icc_profile=icc, **ENCODE_OPTIONS[pil_format])
    if icc is not None:
        image.info["icc_profile"] = icc
    return out.getvalue()


def thumbnail(image: Image.Image) -> bytes:
    """A JPEG of at most ``THUMBNAIL_SIZE``: a box reduction by a whole factor to just above it,
    then one bilinear step (a third of the cost of a bicubic thumbnail); transparency on white."""
    factor = max(1, max(image.size) // THUMBNAIL_SIZE[0])
    thumb = image.reduce(factor) if factor > 1 else image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.BILINEAR, reducing_gap=None)
    if thumb.mode == "RGBA":
        background = Image.new("RGB", thumb.size, (255, 255, 255))
        background.paste(thumb, mask=thumb.getchannel("A"))
        thumb = background
    elif thumb.mode != "L":
        thumb = thumb.convert("RGB")
    thumb.info = {}
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=80)
    return out.getvalue()
