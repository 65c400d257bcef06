"""Hostile photos, made from their structure (no binary fixtures): JPEGs of many scans or segments,
PNGs of many text chunks. Used by tests/unit/test_inspection_images.py and bench/evidence_memory.py."""
from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

SOI = b"\xff\xd8"


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_components_in_separate_scans(width: int, height: int, components: int) -> bytes:
    """A baseline (SOF0) JPEG of flat grey whose components are each coded in a scan of their own
    (non-interleaved): libjpeg must hold every DCT coefficient of the image, whatever the output scale.
    One Huffman code per table: each 8x8 block is 2 bits (DC difference 0, end of block)."""
    sof = bytes([8]) + struct.pack(">HH", height, width) + bytes([components])
    sof += b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))  # 1x1 sampling, table 0
    one_code = bytes([1] + [0] * 15) + b"\x00"
    out = SOI + segment(0xDB, b"\x00" + b"\x01" * 64) + segment(0xC0, sof)
    out += segment(0xC4, b"\x00" + one_code) + segment(0xC4, b"\x10" + one_code)
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    entropy = b"\x00" * ((blocks * 2 + 7) // 8)
    for i in range(components):
        out += segment(0xDA, bytes([1, i + 1, 0x00, 0, 63, 0])) + entropy
    return out + b"\xff\xd9"


def jpeg_parts(jpeg: bytes) -> list[bytes]:
    """The segments of a JPEG between SOI and EOI, each scan with its entropy-coded data."""
    parts, pos = [], 2
    while jpeg[pos + 1] != 0xD9:
        end = pos + 2 + struct.unpack(">H", jpeg[pos + 2:pos + 4])[0]
        if jpeg[pos + 1] == 0xDA:
            while not (jpeg[end] == 0xFF and jpeg[end + 1] != 0x00 and not 0xD0 <= jpeg[end + 1] <= 0xD7):
                end += 1
        parts.append(jpeg[pos:end])
        pos = end
    return parts


def is_scan(part: bytes) -> bool:
    return part[1] == 0xDA


def is_ac_scan(part: bytes) -> bool:
    return is_scan(part) and part[5 + 2 * part[4]] > 0  # spectral selection start > 0


def jpeg_with_scans(progressive: bytes, scans: int, largest: bool = False) -> bytes:
    """A progressive JPEG with one of its AC scans repeated until it has ``scans`` scans (libjpeg
    only warns): the smallest (a pass over every block of a component for a few bytes), or the largest."""
    parts = jpeg_parts(progressive)
    ac = [part for part in parts if is_ac_scan(part)]
    repeated = (max if largest else min)(ac, key=len)
    extra = scans - sum(1 for part in parts if is_scan(part))
    return SOI + b"".join(parts) + repeated * extra + b"\xff\xd9"


def jpeg_with_app_segments(jpeg: bytes, count: int, payload_bytes: int = 0, marker: int = 0xE5) -> bytes:
    """``count`` application segments of ``payload_bytes`` each (APP5 by default), right after SOI."""
    return SOI + segment(marker, b"\x00" * payload_bytes) * count + jpeg[2:]


def jpeg_segment_count(jpeg: bytes) -> int:
    """Segments other than scans, as the inspection counts them."""
    return sum(1 for part in jpeg_parts(jpeg) if not is_scan(part))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_ztxt(keyword: bytes, text: bytes) -> bytes:
    return png_chunk(b"zTXt", keyword + b"\x00\x00" + zlib.compress(text, 9))


def png_raw_exif_profile(orientation: int, padding: int = 0, noise: bool = False) -> bytes:
    """ImageMagick's EXIF as text ("Raw profile type exif"), which Pillow reads the orientation from;
    ``padding`` bytes of user comment make it larger (zeros, or with ``noise`` bytes that do not compress)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    if padding:
        exif[0x9286] = random.Random(0).randbytes(padding) if noise else b"\x00" * padding
    raw = exif.tobytes()
    hexed = raw.hex()
    lines = "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72))
    return png_ztxt(b"Raw profile type exif", f"\nexif\n{len(raw):8d}\n{lines}\n".encode())


def png_itxt_xmp(xmp: bytes) -> bytes:
    return png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + zlib.compress(xmp, 9))


def png_with_chunks(png: bytes, chunks: bytes) -> bytes:
    """``chunks`` inserted right after IHDR (before the pixels)."""
    return png[:33] + chunks + png[33:]


def png_comments(count: int, text_bytes: int = 1024 * 1024 - 1) -> bytes:
    """``count`` compressed comment chunks of ``text_bytes`` each (Pillow reads up to 1 MiB of one)."""
    comment = zlib.compress(b"A" * text_bytes, 9)
    return b"".join(png_chunk(b"zTXt", b"Comment%06d\x00\x00" % i + comment) for i in range(count))


def png(mode: str, size: tuple[int, int], **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG", **options)
    return out.getvalue()
