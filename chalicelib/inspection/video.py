"""MP4 and QuickTime: parsed box by box, and served without location or user data.

A file is a video only if its top level is a sequence of known boxes whose sizes add up to the
file exactly, with one movie box (``moov``) holding a movie header (``mvhd``). Cleaning renames
every user-data, metadata and vendor box (``udta``, ``meta``, ``uuid``: where ``©xyz``, Apple's
location keys, XMP and maker notes live) to ``free`` and zeroes its content: the sizes, and so
every sample offset in ``stco``/``co64``, stay as they were, and no data of them is left.
Tracks other than video and sound (timed metadata, text, timecode...) can carry location per
frame inside the media data; a file with one is refused rather than served.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

TOP_LEVEL = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"meta", b"udta",
                       b"pdin", b"moof", b"mfra", b"sidx", b"ssix", b"styp", b"prft", b"emsg"})
# Boxes whose children are boxes, where user data or metadata can hide.
CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"edts", b"moof", b"traf", b"mvex"})
REMOVED = frozenset({b"udta", b"meta", b"uuid"})
SERVED_HANDLERS = frozenset({b"vide", b"soun"})
MAX_DEPTH = 8
MAX_BOXES = 100_000


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def boxes(data: bytearray | bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of each box in ``data[start:end]``; raises
    ValueError when a size does not fit."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValueError("a box header runs past its parent")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ValueError("a large box header runs past its parent")
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos  # to the end (top level only, by the standard)
        if size < header or pos + size > end:
            raise ValueError("a box size does not fit its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def _printable(kind: bytes) -> bool:
    return all(32 <= b < 127 or b == 0xA9 for b in kind)


def check_and_clean(data: bytes) -> bytes:
    """The served copy, or ``Refused`` with UNRECOGNIZED_CONTENT (not an MP4/QuickTime file at all),
    CORRUPT_VIDEO (a damaged or incomplete one) or VIDEO_NOT_CLEANABLE."""
    out = bytearray(data)
    top: list[tuple[bytes, int, int, int]] = []
    try:
        for box in boxes(out, 0, len(out)):
            if box[0] not in TOP_LEVEL:
                raise Refused("UNRECOGNIZED_CONTENT" if not top or not _printable(box[0]) else "CORRUPT_VIDEO")
            top.append(box)
    except ValueError as exc:
        # A plausible video cut short is damaged; bytes that never were boxes are something else.
        raise Refused("CORRUPT_VIDEO" if top else "UNRECOGNIZED_CONTENT") from exc
    if top[0][0] == b"ftyp" and not _printable(bytes(out[top[0][2]:top[0][2] + 4])):
        raise Refused("UNRECOGNIZED_CONTENT")
    movies = [box for box in top if box[0] == b"moov"]
    if len(movies) != 1:
        raise Refused("CORRUPT_VIDEO")
    try:
        counter = [0]
        for kind, start, payload, end in top:
            if kind in REMOVED:
                _blank(out, start, payload, end)
            elif kind in CONTAINERS:
                _clean_children(out, kind, payload, end, 1, counter)
        _, _, payload, end = movies[0]
        if not any(kind == b"mvhd" for kind, *_ in boxes(out, payload, end)):
            raise Refused("CORRUPT_VIDEO")
    except ValueError as exc:
        raise Refused("CORRUPT_VIDEO") from exc
    return bytes(out)


def _blank(out: bytearray, start: int, payload: int, end: int) -> None:
    out[start + 4:start + 8] = b"free"
    out[payload:end] = bytes(end - payload)


def _clean_children(out: bytearray, parent: bytes, start: int, end: int, depth: int, counter: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("boxes nested too deep")
    for kind, box_start, payload, box_end in list(boxes(out, start, end)):
        counter[0] += 1
        if counter[0] > MAX_BOXES:
            raise ValueError("too many boxes")
        if kind in REMOVED:
            _blank(out, box_start, payload, box_end)
        elif parent == b"mdia" and kind == b"hdlr":
            # version/flags, pre_defined (QuickTime: component type), then the handler type
            if bytes(out[payload + 8:payload + 12]) not in SERVED_HANDLERS:
                raise Refused("VIDEO_NOT_CLEANABLE")
        elif kind in CONTAINERS:
            _clean_children(out, kind, payload, box_end, depth + 1, counter)


def top_level_types(data: bytes) -> list[bytes]:
    return [kind for kind, *_ in boxes(data, 0, len(data))]


def all_types(data: bytes) -> list[bytes]:
    """Every box type reachable through the containers (what a test checks is gone)."""
    found: list[bytes] = []

    def walk(start: int, end: int, depth: int) -> None:
        for kind, _, payload, box_end in boxes(data, start, end):
            found.append(kind)
            if kind in CONTAINERS | REMOVED and depth < MAX_DEPTH:
                try:
                    walk(payload, box_end, depth + 1)
                except ValueError:
                    continue

    walk(0, len(data), 0)
    return found
