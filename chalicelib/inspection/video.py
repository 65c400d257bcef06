"""MP4 and QuickTime: parsed box by box, and served without location, user data or times.

A file is a video only if its top level is a sequence of known boxes whose sizes add up to the
file exactly, with one movie box (``moov``) holding a movie header (``mvhd``). Cleaning is an
allowlist (``metadata.VIDEO_ALLOWED``): under the top level, the movie, its tracks and their
fragments, only the boxes a player needs are kept; every other box (``udta``, ``meta``, ``uuid``,
``loci``, a ``©xyz`` anywhere, the content of ``free``/``skip``/``wide``...) is renamed ``free``
and zeroed in place, so the sizes, and every sample offset in ``stco``/``co64``, stay as they
were. Creation and modification times in the headers, handler names and data references are
zeroed too. Boxes are read one at a time, never listed, and at most MAX_BOXES of them: memory
does not grow with their number. Tracks other than video and sound (timed metadata, text,
timecode...) can carry location per frame inside the media data; a file with one is refused
rather than served. The copy is read back (``metadata.video_is_clean``) before it is served.
"""
from __future__ import annotations

import io
import struct
from collections.abc import Iterator

from .budget import check
from .metadata import VIDEO_ALLOWED, VIDEO_CONTAINERS, video_is_clean

# Accepted at the top level; those not in VIDEO_ALLOWED[b""] are served blanked.
TOP_LEVEL = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"meta", b"udta",
                       b"pdin", b"moof", b"mfra", b"sidx", b"ssix", b"styp", b"prft", b"emsg"})
SERVED_HANDLERS = frozenset({b"vide", b"soun"})
TIMED = frozenset({b"mvhd", b"tkhd", b"mdhd"})  # creation and modification times after version/flags
MAX_DEPTH = 8
MAX_BOXES = 100_000  # in the whole file, every level counted; a phone video has well under 100
ZEROS = memoryview(bytes(64 * 1024))


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of each box in ``data[start:end]``, one at a
    time; raises ValueError when a size does not fit."""
    pos = start
    while pos < end:
        check()  # the CPU budget (budget.py)
        if end - pos < 8:
            raise ValueError("a box header runs past its parent")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ValueError("a large box header runs past its parent")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos  # to the end (top level only, by the standard)
        if size < header or pos + size > end:
            raise ValueError("a box size does not fit its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def _printable(kind: bytes) -> bool:
    return all(32 <= b < 127 or b == 0xA9 for b in kind)


class _Cleaning:
    """Reads the upload, writes the copy. ``io.BytesIO`` shares the upload until the first write
    and hands its buffer back without copying it again: one copy of the file in all."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.out = io.BytesIO(data)
        self.count = 0
        self.movie_header = False

    def boxes(self, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
        for box in boxes(self.data, start, end):
            self.count += 1
            if self.count > MAX_BOXES:
                raise ValueError("too many boxes")
            yield box

    def zero(self, start: int, end: int) -> None:
        self.out.seek(start)
        while start < end:
            n = min(end - start, len(ZEROS))
            self.out.write(ZEROS[:n])
            start += n

    def blank(self, start: int, payload: int, end: int) -> None:
        self.out.seek(start + 4)
        self.out.write(b"free")
        self.zero(payload, end)

    def children(self, parent: bytes, start: int, end: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError("boxes nested too deep")
        allowed = VIDEO_ALLOWED[parent]
        for kind, box_start, payload, box_end in self.boxes(start, end):
            if kind not in allowed:
                self.blank(box_start, payload, box_end)
            elif kind in VIDEO_CONTAINERS:
                self.children(kind, payload, box_end, depth + 1)
            elif kind == b"hdlr":
                # version/flags, pre_defined (QuickTime: component type), the handler type, 12
                # reserved bytes, then a name
                if box_end - payload < 12:
                    raise ValueError("a handler box too short")
                if parent == b"mdia" and self.data[payload + 8:payload + 12] not in SERVED_HANDLERS:
                    raise Refused("VIDEO_NOT_CLEANABLE")
                self.zero(min(payload + 24, box_end), box_end)
            elif kind in TIMED:
                times = payload + 4 + (16 if box_end > payload and self.data[payload] == 1 else 8)
                if times > box_end:
                    raise ValueError("a header box too short")
                self.zero(payload + 4, times)
                self.movie_header |= parent == b"moov" and kind == b"mvhd"
            elif kind == b"dref":
                # version/flags, entry count, then entries: their version/flags stay, their
                # location (a URL, a path in a QuickTime alias) is zeroed
                if box_end - payload < 8:
                    raise ValueError("a data reference box too short")
                for _, _, entry, entry_end in self.boxes(payload + 8, box_end):
                    self.zero(min(entry + 4, entry_end), entry_end)


def check_and_clean(data: bytes) -> bytes:
    """The served copy, or ``Refused`` with UNRECOGNIZED_CONTENT (not an MP4/QuickTime file at all),
    CORRUPT_VIDEO (a damaged or incomplete one, or over MAX_BOXES boxes) or VIDEO_NOT_CLEANABLE."""
    cleaning = _Cleaning(data)
    first: tuple[bytes, int] | None = None
    movies = 0
    try:
        for kind, _, payload, _ in cleaning.boxes(0, len(data)):
            if kind not in TOP_LEVEL:
                raise Refused("UNRECOGNIZED_CONTENT" if first is None or not _printable(kind) else "CORRUPT_VIDEO")
            if first is None:
                first = kind, payload
            movies += kind == b"moov"
    except ValueError as exc:
        # A plausible video cut short is damaged; bytes that never were boxes are something else.
        raise Refused("CORRUPT_VIDEO" if first else "UNRECOGNIZED_CONTENT") from exc
    if first is None or first[0] == b"ftyp" and not _printable(data[first[1]:first[1] + 4]):
        raise Refused("UNRECOGNIZED_CONTENT")
    if movies != 1:
        raise Refused("CORRUPT_VIDEO")
    cleaning.count = 0
    try:
        cleaning.children(b"", 0, len(data), 0)
    except ValueError as exc:
        raise Refused("CORRUPT_VIDEO") from exc
    if not cleaning.movie_header:
        raise Refused("CORRUPT_VIDEO")
    clean = cleaning.out.getvalue()
    if not video_is_clean(clean):
        raise Refused("VIDEO_NOT_CLEANABLE")
    return clean


def top_level_types(data: bytes) -> list[bytes]:
    return [kind for kind, *_ in boxes(data, 0, len(data))]


def all_types(data: bytes) -> list[bytes]:
    """Every box type reachable through the containers (what a test checks is gone)."""
    found: list[bytes] = []

    def walk(start: int, end: int, depth: int) -> None:
        for kind, _, payload, box_end in boxes(data, start, end):
            found.append(kind)
            if kind in VIDEO_CONTAINERS | {b"udta", b"meta", b"uuid"} and depth < MAX_DEPTH:
                try:
                    walk(payload, box_end, depth + 1)
                except ValueError:
                    continue

    walk(0, len(data), 0)
    return found
