"""Hostile PDFs made by hand (pypdf cannot write them): object streams that unpack far beyond
their size, and the costliest PDF the checks accept. Shared by the tests and `make bench`."""
from __future__ import annotations

import struct
import zlib

from chalicelib.inspection import pdf

CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"


def page_using(refs: list[int]) -> bytes:
    """A page whose resources refer to the objects ``refs`` (so copying the page loads them)."""
    named = b" ".join(b"/X%d %d 0 R" % (i, ref) for i, ref in enumerate(refs))
    return b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Resources << /Properties << " + named + b" >> >> >>"


def raw_pdf(objects: dict[int, bytes]) -> bytes:
    """A PDF with a classic cross-reference table; object 1 is the catalogue."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = max(offsets) + 1
    table = b"".join(b"%010d 00000 n \n" % offsets[n] if n in offsets else b"0000000000 65535 f \n"
                     for n in range(1, size))
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n%s" % (size, table)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, start)
    return bytes(out)


def pdf_with_object_streams(bodies: list[bytes]) -> bytes:
    """A one-page PDF whose page refers to objects each packed alone in a compressed object stream
    (as the review's bomb: 287 KB of 4 streams of 70 MB each), with a cross-reference stream."""
    count = len(bodies)
    plain = {1: CATALOG, 2: PAGES, 3: page_using([1000 + i for i in range(count)])}
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, body in plain.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    for i, body in enumerate(bodies):
        header = b"%d 0 " % (1000 + i)
        packed = zlib.compress(header + body, 9)
        offsets[10 + i] = len(out)
        out += (b"%d 0 obj\n<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
                % (10 + i, len(header), len(packed)) + packed + b"\nendstream\nendobj\n")
    size = 1000 + count
    rows = []
    for n in range(size + 1):
        if n in offsets:
            rows.append(struct.pack(">BIH", 1, offsets[n], 0))
        elif n >= 1000 and n < size:
            rows.append(struct.pack(">BIH", 2, 10 + n - 1000, 0))
        elif n == size:
            rows.append(struct.pack(">BIH", 1, len(out), 0))
        else:
            rows.append(struct.pack(">BIH", 0, 0, 65535))
    table, start = b"".join(rows), len(out)
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
            % (size, size + 1, len(table)) + table + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % start
    return bytes(out)


def pdf_at_every_limit() -> bytes:
    """The costliest PDF accepted (for the evidence benchmark): a few kilobytes of object streams
    that unpack to strings just under the string budget and to arrays of numbers just under the
    element budget, both parsed, copied, written and read back."""
    strings = [b"(" + b"a" * (pdf.MAX_STRING - 64) + b")"] * (pdf.STRING_BUDGET // pdf.MAX_STRING - 1)
    numbers = (pdf.MAX_ELEMENTS - 20_000) // 50_000
    arrays = [b"[" + b"0 " * 49_999 + b"]"] * numbers
    return pdf_with_object_streams(strings + arrays)
