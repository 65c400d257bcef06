"""What a served photo may contain, read from its bytes: the one definition the cleaning checks
its own output against (and the tests check too).

A JPEG may hold its image segments, JFIF and an ICC profile (APP2) only: no EXIF/XMP (APP1),
IPTC (APP13), comment (COM) or any other application segment. A PNG may hold its image chunks,
transparency, colour information and density only: no text (tEXt, zTXt, iTXt), EXIF (eXIf) or
time (tIME). A WebP may hold its image, alpha, animation and ICC chunks only: no EXIF or XMP.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

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


# MP4/QuickTime: each box -> the children a player needs (b"": the top level). Every other box is
# served as a ``free`` box of zeros. The boxes in VIDEO_CONTAINERS hold boxes; the others are
# tables of numbers (or the media data), kept as they are.
VIDEO_ALLOWED: dict[bytes, frozenset[bytes]] = {
    b"": frozenset({b"ftyp", b"moov", b"mdat", b"moof", b"mfra", b"sidx", b"ssix", b"styp"}),
    b"moov": frozenset({b"mvhd", b"trak", b"mvex"}),
    b"trak": frozenset({b"tkhd", b"edts", b"mdia", b"tapt"}),
    b"edts": frozenset({b"elst"}),
    b"mdia": frozenset({b"mdhd", b"hdlr", b"minf"}),
    b"minf": frozenset({b"vmhd", b"smhd", b"hdlr", b"dinf", b"stbl"}),
    b"dinf": frozenset({b"dref"}),
    b"stbl": frozenset({b"stsd", b"stts", b"ctts", b"cslg", b"stss", b"stps", b"stsc", b"stsz", b"stz2", b"stco",
                        b"co64", b"sdtp", b"sgpd", b"sbgp", b"subs", b"saiz", b"saio"}),
    b"mvex": frozenset({b"mehd", b"trex"}),
    b"moof": frozenset({b"mfhd", b"traf"}),
    b"traf": frozenset({b"tfhd", b"tfdt", b"trun", b"sdtp", b"sgpd", b"sbgp", b"subs", b"saiz", b"saio"}),
    b"mfra": frozenset({b"tfra", b"mfro"}),
}
VIDEO_CONTAINERS = frozenset(VIDEO_ALLOWED) - {b""}
# Never in a served video outside the media data: location (QuickTime, 3GPP, Apple's keys), user
# data, metadata, XMP and vendor boxes.
VIDEO_TAGS = (b"\xa9xyz", b"loci", b"udta", b"meta", b"uuid", b"location")


def _video_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("a box size does not fit its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def _video_level(data: bytes, parent: bytes, start: int, end: int) -> bool:
    for kind, box_start, payload, box_end in _video_boxes(data, start, end):
        if kind == b"free":
            if data.count(0, payload, box_end) != box_end - payload:
                return False
            continue
        if kind not in VIDEO_ALLOWED[parent]:
            return False
        if kind in VIDEO_CONTAINERS and not _video_level(data, kind, payload, box_end):
            return False
        if parent == b"" and kind != b"mdat" and any(data.find(tag, box_start, box_end) >= 0 for tag in VIDEO_TAGS):
            return False
    return True


def video_is_clean(data: bytes) -> bool:
    """Every box is one a player needs or a ``free`` box of zeros, and no tag of VIDEO_TAGS is
    left outside the media data (``mdat``)."""
    try:
        return _video_level(data, b"", 0, len(data))
    except (ValueError, struct.error):
        return False
