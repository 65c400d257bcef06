"""What a served photo may contain, read from its bytes: the one definition the cleaning checks
its own output against (and the tests check too).

A JPEG may hold its image segments, JFIF and an ICC profile (APP2) only: no EXIF/XMP (APP1),
IPTC (APP13), comment (COM) or any other application segment. A PNG may hold its image chunks,
transparency, colour information and density only: no text (tEXt, zTXt, iTXt), EXIF (eXIf) or
time (tIME). A WebP may hold its image, alpha, animation and ICC chunks only: no EXIF or XMP.
"""
from __future__ import annotations

import struct

JPEG_ALLOWED = frozenset({0xC0, 0xC1, 0xC2, 0xC4, 0xDB, 0xDD, 0xE0, 0xE2})  # SOFn, DHT, DQT, DRI, APP0, APP2
PNG_ALLOWED = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs",
                         b"sBIT", b"bKGD"})
WEBP_ALLOWED = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of the segments before the image data (SOS), in order."""
    markers, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG segment")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: image data follows
            break
        markers.append(marker)
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append(kind)
        pos += 12 + length
    return chunks


def riff_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append(kind)
        pos += 8 + length + (length & 1)
    return chunks


def is_clean(data: bytes, pil_format: str) -> bool:
    try:
        if pil_format == "JPEG":
            return set(jpeg_markers(data)) <= JPEG_ALLOWED
        if pil_format == "PNG":
            return set(png_chunks(data)) <= PNG_ALLOWED
        if pil_format == "WEBP":
            return set(riff_chunks(data)) <= WEBP_ALLOWED
    except (ValueError, struct.error):
        return False
    return False
