"""PDFs: parsed as PDFs (pypdf), and served as a new file holding the pages only.

The copy is built page by page, so the document catalogue's actions, names tree (JavaScript,
embedded files), forms and outlines are never carried over. What pages bring with them is then
walked, every object reachable, and cleaned: actions (``/A``, ``/AA``, ``/OpenAction``,
JavaScript), embedded files, metadata streams and application data go, and annotations that
play, attach or submit something (file attachments, media, form widgets) are dropped. Photos
inside the PDF lose their metadata: JPEG (DCTDecode) streams keep their image segments only
(no EXIF, XMP, IPTC or comment), JPEG 2000 (JPXDecode) streams their image boxes only. Only
objects still reachable from the catalogue are written.

What pypdf may inflate is bounded: each stream (``STREAM_LIMIT``) and all of a file's streams
together (``INFLATE_BUDGET``), as are its objects (``MAX_OBJECTS``), the array and dictionary
elements parsed (``MAX_ELEMENTS``), the string bytes parsed (``MAX_STRING`` each, ``STRING_BUDGET``
together) and its pages (``MAX_PAGES``); beyond them the file is refused
(``PDF_TOO_COMPLEX``), so a small file packed with object streams or numbers cannot exhaust
memory or time. The budget is charged by hooks in pypdf, set by ``install()`` (the evidence
function's wiring calls it; ``check_and_clean`` refuses to run without them).

The written copy is read back and EVERY object in its cross-reference table checked, and its
bytes outside streams scanned for action, file and metadata names; anything found refuses the
file.
"""
from __future__ import annotations

import io
import logging
import re
import struct
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import pypdf._reader as _reader_module
import pypdf.filters
import pypdf.generic._data_structures as _data_structures
from pypdf import PdfReader, PdfWriter, apply_configuration
from pypdf.errors import LimitReachedError, PdfReadError
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    EncodedStreamObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
)

from .budget import OverBudget, check

MIB = 1024 * 1024
MAX_PAGES = 2000
MAX_OBJECTS = 100_000  # indirect objects in the upload's cross-reference table
MAX_ELEMENTS = 250_000  # array and dictionary elements parsed, about 160 bytes each once copied
STREAM_LIMIT = 8 * MIB  # one stream, decoded
INFLATE_BUDGET = 16 * MIB  # all streams pypdf decodes for one file, together
MAX_STRING = MIB  # one string object (pypdf parses strings byte by byte, at ~20 bytes of memory each)
# pypdf's ASCII85, ASCIIHex, RunLength and LZW decoders are pure Python and hold 40-95 bytes per
# byte of their input before any output limit applies: their input is bounded first.
TEXT_FILTERS = frozenset({"/ASCII85Decode", "/A85", "/ASCIIHexDecode", "/AHx", "/RunLengthDecode", "/RL",
                          "/LZWDecode", "/LZW"})
TEXT_FILTER_INPUT = MIB
STRING_BUDGET = 4 * MIB  # all string objects parsed for one file, together (bounds the time too)
REMOVED_KEYS = frozenset({"/A", "/AA", "/OpenAction", "/JS", "/JavaScript", "/EmbeddedFiles", "/EmbeddedFile",
                          "/EF", "/FS", "/Metadata", "/PieceInfo", "/AcroForm", "/Names", "/URI", "/Launch",
                          "/SubmitForm", "/ImportData", "/RichMediaContent", "/XFA", "/PA"})
# Who wrote an annotation and when: removed from every annotation that is kept.
ANNOTATION_IDENTITY = frozenset({"/T", "/M", "/CreationDate", "/NM", "/RC"})
DROPPED_ANNOTATIONS = frozenset({"/FileAttachment", "/Screen", "/Movie", "/Sound", "/RichMedia", "/Widget", "/3D"})
UNSAFE_VALUES = frozenset({"/JavaScript", "/Launch", "/EmbeddedFile", "/Filespec", "/SubmitForm", "/ImportData",
                           "/GoToR", "/GoToE", "/URI", "/RichMedia", "/Metadata", "/XML"})
# Names the served file's bytes outside streams must not hold (a name ends at a delimiter).
RAW_NAMES = re.compile(rb"/(?:JavaScript|JS|EmbeddedFiles?|EF|OpenAction|AA|Launch|URI|Metadata|XFA|RichMedia\w*"
                       rb"|Filespec|SubmitForm|ImportData|GoToR|GoToE|AcroForm|Names|PieceInfo)(?![^\s()<>\[\]{}/%])")
RAW_METADATA = (b"Exif\x00\x00", b"<x:xmpmeta", b"<?xpacket", b"http://ns.adobe.com/xap/")
LEADING_COMMENTS = re.compile(rb"(?:%[^\r\n]*[\r\n]+[ \t\r\n\f\x00]*)*")
STRING_TOKENS = re.compile(rb"\\.|[()]", re.S)  # an escape (skipped) or a parenthesis
STREAM_BODY = re.compile(rb"stream\r?\n.*?endstream", re.S)
LIMITS = {"zlib_maximum_output_length": STREAM_LIMIT, "lzw_maximum_output_length": STREAM_LIMIT,
          "run_length_maximum_output_length": STREAM_LIMIT, "brotli_maximum_output_length": STREAM_LIMIT,
          "jbig2_maximum_output_length": STREAM_LIMIT, "array_based_stream_maximum_output_length": STREAM_LIMIT,
          "image_maximum_buffer_size": STREAM_LIMIT, "stream_decoding_work_maximum_length": 2 * STREAM_LIMIT,
          "xmp_maximum_input_length": MIB}
# JPEG: APPn (0xE0-0xEF) and COM (0xFE) segments go, but for JFIF (APP0) and Adobe (APP14), which
# decoders need for the colours; standalone markers carry no length.
JPEG_KEPT_APP = {0xE0: b"JFIF\x00", 0xEE: b"Adobe"}
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# JPEG 2000 (JP2/JPX) boxes that hold the image; XML, UUID (XMP, GeoJP2), IPR and URL boxes go.
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
JP2_KEPT_BOXES = frozenset({b"jP  ", b"ftyp", b"rreq", b"jp2h", b"jpch", b"jplh", b"jp2c"})


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _Budget:
    """What pypdf may still decode (bytes) and parse (objects, nested ones included) for the file
    being checked; ``exceeded`` stays set once either is used up."""

    def __init__(self) -> None:
        self.inflate = INFLATE_BUDGET
        self.elements = MAX_ELEMENTS
        self.strings = STRING_BUDGET
        self.exceeded = False


_BUDGET: ContextVar[_Budget | None] = ContextVar("pdf_budget", default=None)
_decode_stream_data: Callable[[StreamObject], bytes] = pypdf.filters.decode_stream_data
_read_object: Callable[..., PdfObject] = _data_structures.read_object


def _counted_decode(stream: StreamObject) -> bytes:
    """pypdf's stream decoding, charged to the budget (pypdf may swallow the error: it sticks)."""
    budget = _BUDGET.get()
    if budget is None:
        return _decode_stream_data(stream)
    check()  # the CPU budget (budget.py): sticky too
    if budget.exceeded:
        raise LimitReachedError("PDF budget used up")
    encoded = getattr(stream, "_data", b"") or b""
    if len(encoded) > TEXT_FILTER_INPUT and set(_filters(stream)) & TEXT_FILTERS:
        budget.exceeded = True  # pypdf decodes these in Python at 40-95 bytes of memory per input byte
        raise LimitReachedError("PDF stream too large for its filter")
    try:
        data = _decode_stream_data(stream)
    except LimitReachedError:
        budget.exceeded = True
        raise
    budget.inflate -= len(data)
    if budget.inflate < 0:
        budget.exceeded = True
        raise LimitReachedError("PDF budget used up")
    return data


def _counted_read(stream: Any, *args: Any, **kwargs: Any) -> PdfObject:
    """pypdf's parsing of one object (or element of one), charged to the budget; a string longer
    than ``MAX_STRING`` is refused before pypdf reads it byte by byte."""
    budget = _BUDGET.get()
    if budget is not None:
        check()  # the CPU budget (budget.py): sticky too
        budget.elements -= 1
        budget.strings -= _string_length(stream)
        if budget.elements < 0 or budget.strings < 0 or budget.exceeded:
            budget.exceeded = True
            raise LimitReachedError("PDF budget used up")
    return _read_object(stream, *args, **kwargs)


def _string_length(stream: Any) -> int:
    """The length of the string that comes next (0 if none), or more than ``STRING_BUDGET`` if it
    does not end within ``MAX_STRING`` bytes."""
    start = stream.tell()
    try:
        head = stream.read(256)
        token = match.end() if (match := LEADING_COMMENTS.match(head)) else 0
        if head[token:token + 1] == b"(":
            depth, skip, read = 0, 0, 0
            for chunk in _chunks(stream, start + token, head[token:]):
                last = skip
                for special in STRING_TOKENS.finditer(chunk, skip):
                    last = special.end()
                    if special.group() in (b"(", b")"):
                        depth += 1 if special.group() == b"(" else -1
                        if depth == 0:
                            return read + special.end()
                skip = 1 if last < len(chunk) and chunk.endswith(b"\\") else 0  # escape split by the chunk
                read += len(chunk)
            return STRING_BUDGET + 1
        if head[token:token + 1] == b"<" and head[token + 1:token + 2] != b"<":
            read = 0
            for chunk in _chunks(stream, start + token, head[token:], 2):
                if (end := chunk.find(b">")) != -1:
                    return (read + end) // 2
                read += len(chunk)
            return STRING_BUDGET + 1
        return 0
    finally:
        stream.seek(start)


def _chunks(stream: Any, start: int, first: bytes, scale: int = 1) -> Iterator[bytes]:
    """The bytes from ``start`` on, in growing pieces, up to a string's limit."""
    chunk, read = first, len(first)
    stream.seek(start + read)
    while chunk:
        yield chunk
        if read > MAX_STRING * scale:
            return
        chunk = stream.read(min(max(read, 4096), MAX_STRING * scale + 2 - read))
        read += len(chunk)


# (module, name, hook): pypdf looks each name up in its module on every call, so the hook set there
# charges every decode and parse to the budget of the file being checked. EncodedStreamObject.get_data
# imports decode_stream_data from pypdf.filters; arrays and dictionaries call their module's
# read_object, the reader its own import of it.
HOOKS: tuple[tuple[ModuleType, str, Callable[..., Any]], ...] = (
    (pypdf.filters, "decode_stream_data", _counted_decode),
    (_data_structures, "read_object", _counted_read),
    (_reader_module, "read_object", _counted_read),
)
_install_lock = threading.Lock()


def install() -> None:
    """Charge pypdf's stream decoding and object parsing to the per-file budget (the evidence
    function's wiring calls this; idempotent). Raises if pypdf no longer has a hooked name: an
    upgrade moved it, and the budget would silently not apply."""
    with _install_lock:
        for module, name, _ in HOOKS:
            if not callable(getattr(module, name, None)):
                raise RuntimeError(f"pypdf has no {module.__name__}.{name}: the PDF budget cannot be installed")
        for module, name, hook in HOOKS:
            setattr(module, name, hook)
        logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is refused, not logged line by line


def installed() -> bool:
    """Whether every budget hook is in place in pypdf."""
    return all(getattr(module, name, None) is hook for module, name, hook in HOOKS)


def check_and_clean(data: bytes) -> bytes:
    """The served copy, or ``Refused`` (CORRUPT_PDF, PDF_ENCRYPTED, TOO_MANY_PAGES, PDF_TOO_COMPLEX,
    PDF_NOT_CLEANABLE, PROCESSING_FAILED)."""
    if not installed():  # never parse an upload without its budget: a few KB can inflate to GBs
        raise RuntimeError("the PDF budget hooks are not installed: call chalicelib.inspection.pdf.install()")
    budget = _Budget()
    token = _BUDGET.set(budget)
    try:
        with apply_configuration(None, **LIMITS):
            served = _clean(data, budget)
            check = _Budget()  # reading our copy back: no more than the upload
            _BUDGET.set(check)
            try:
                leftovers = served_findings(served)
            except Exception as exc:  # noqa: BLE001 - our own output must read back
                raise Refused("PROCESSING_FAILED") from exc
    finally:
        _BUDGET.reset(token)
    if leftovers or check.exceeded:
        raise Refused("PROCESSING_FAILED")
    return served


def _clean(data: bytes, budget: _Budget) -> bytes:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Refused("PDF_ENCRYPTED")
        if sum(len(ids) for ids in reader.xref.values()) + len(reader.xref_objStm) > MAX_OBJECTS:
            raise Refused("PDF_TOO_COMPLEX")
        pages = len(reader.pages)
        if budget.exceeded:
            raise Refused("PDF_TOO_COMPLEX")
        if pages == 0:
            raise Refused("CORRUPT_PDF")
        if pages > MAX_PAGES:
            raise Refused("TOO_MANY_PAGES")
        writer = PdfWriter()
        for page in reader.pages:
            check()
            writer.add_page(page)
            if budget.exceeded:
                raise Refused("PDF_TOO_COMPLEX")
        writer.metadata = None
        _sanitize(writer.root_object)
        if any(_inline_photos(stream) for stream in _content_streams(writer)):
            raise Refused("PDF_NOT_CLEANABLE")  # a JPEG inside a page's drawing: its metadata stays put
        _drop_unreachable(writer)
        out = io.BytesIO()
        writer.write(out)
    except (Refused, OverBudget):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever pypdf cannot read or write is not served
        if budget.exceeded:
            raise Refused("PDF_TOO_COMPLEX") from exc
        if isinstance(exc, PdfReadError) or "encrypt" not in str(exc).lower():
            raise Refused("CORRUPT_PDF") from exc
        raise Refused("PDF_ENCRYPTED") from exc
    if budget.exceeded:
        raise Refused("PDF_TOO_COMPLEX")
    return out.getvalue()


def _reachable(root: Any, skip: str | None = None) -> Iterator[tuple[int | None, Any]]:
    """Every object reachable from ``root`` (not through ``skip`` keys), each once, with its
    object number when it is an indirect one."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        obj: Any = stack.pop()
        number: int | None = None
        if isinstance(obj, IndirectObject):
            if obj.idnum in seen:
                continue
            number = obj.idnum
            seen.add(number)
            obj = obj.get_object()
        yield number, obj
        if isinstance(obj, DictionaryObject):
            stack.extend(v for k, v in obj.items() if k != skip)
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)


def _objects(root: PdfObject, skip: str = "/Parent") -> Iterator[DictionaryObject]:
    """Every dictionary (and stream dictionary) reachable from ``root``, each once."""
    return (obj for _, obj in _reachable(root, skip) if isinstance(obj, DictionaryObject))


def _sanitize(root: PdfObject) -> None:
    for obj in _objects(root):
        for key in [k for k in obj if k in REMOVED_KEYS]:
            del obj[key]
        annotations = obj.get("/Annots")
        if annotations is not None:
            kept = ArrayObject(a for a in annotations.get_object()
                               if a.get_object().get("/Subtype") not in DROPPED_ANNOTATIONS)
            obj[NameObject("/Annots")] = kept
            for annotation in kept:
                fields = annotation.get_object()
                for key in [k for k in fields if k in ANNOTATION_IDENTITY]:
                    del fields[key]
        if isinstance(obj, StreamObject):
            _clean_image(obj)


# An inline image (BI <dictionary> ID <data> EI) compressed as JPEG or JPEG 2000.
INLINE_IMAGE = re.compile(rb"(?:^|\s)BI\s(.{0,4096}?)\sID\s", re.S)
PHOTO_FILTER = re.compile(rb"/(?:F|Filter)\s*(?:\[[^\]]*)?/(?:DCT|DCTDecode|JPX|JPXDecode)\b")


def _content_streams(writer: PdfWriter) -> Iterator[StreamObject]:
    """The pages' drawings and the forms they draw (where inline images live)."""
    for page in writer.pages:
        contents: Any = page.get("/Contents")
        parts: Any = contents.get_object() if contents is not None else ArrayObject()
        for part in parts if isinstance(parts, ArrayObject) else [parts]:
            stream = part.get_object()
            if isinstance(stream, StreamObject):
                yield stream
    for obj in _objects(writer.root_object):
        if isinstance(obj, StreamObject) and obj.get("/Subtype") == "/Form":
            yield obj


def _inline_photos(stream: StreamObject) -> bool:
    return any(PHOTO_FILTER.search(m.group(1)) for m in INLINE_IMAGE.finditer(stream.get_data()))


def _drop_unreachable(writer: PdfWriter) -> None:
    """Forget the objects nothing reachable from the catalogue refers to any more (what
    ``_sanitize`` cut off): the writer would otherwise write them all."""
    reachable = {number for number, _ in _reachable(writer.root_object) if number is not None}
    root = writer.root_object.indirect_reference
    assert root is not None
    reachable.add(root.idnum)
    objects = writer._objects  # noqa: SLF001 - pypdf writes every entry that is not None
    for index in range(len(objects)):
        if index + 1 not in reachable:
            objects[index] = None


def _filters(stream: StreamObject) -> list[str]:
    filters = stream.get("/Filter")
    if filters is None:
        return []
    filters = filters.get_object()
    return [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)]


def _clean_image(stream: StreamObject) -> None:
    """A JPEG or JPEG 2000 stream rewritten without its metadata, as a single-filter stream."""
    filters = _filters(stream)
    kind = next((f for f in filters if f in ("/DCTDecode", "/DCT", "/JPXDecode")), None)
    if kind is None:
        return
    if filters[-1] != kind:
        raise Refused("PDF_NOT_CLEANABLE")  # a filter applied on top of the image data
    raw = stream._data if len(filters) == 1 else stream.get_data()  # noqa: SLF001 - the encoded bytes
    try:
        cleaned = strip_jpeg(raw) if kind != "/JPXDecode" else strip_jpx(raw)
    except ValueError as exc:
        raise Refused("PDF_NOT_CLEANABLE") from exc
    parms = stream.get("/DecodeParms")
    if parms is not None:
        parms = parms.get_object()
        if isinstance(parms, ArrayObject):
            parms = parms[-1] if parms else None
    for key in ("/Filter", "/DecodeParms", "/DL"):
        stream.pop(key, None)
    stream[NameObject("/Filter")] = NameObject("/JPXDecode" if kind == "/JPXDecode" else "/DCTDecode")
    if isinstance(parms, DictionaryObject) and kind != "/JPXDecode":
        stream[NameObject("/DecodeParms")] = parms
    stream._data = cleaned  # noqa: SLF001 - written as is
    if isinstance(stream, EncodedStreamObject):
        stream.decoded_self = None


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without APPn (but JFIF and Adobe) and COM segments or bytes after its end."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out, pos, size = bytearray(b"\xff\xd8"), 2, len(data)
    while pos < size:
        if data[pos] != 0xFF or pos + 1 >= size:
            raise ValueError("not a JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            break
        if marker in JPEG_STANDALONE:
            out += data[pos:pos + 2]
            pos += 2
            continue
        if pos + 4 > size:
            raise ValueError("truncated segment")
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if end > size or end < pos + 4:
            raise ValueError("bad segment length")
        metadata = (0xE0 <= marker <= 0xEF or marker == 0xFE) and not (
            marker in JPEG_KEPT_APP and data[pos + 4:end].startswith(JPEG_KEPT_APP[marker]))
        if not metadata:
            out += data[pos:end]
        pos = end
        if marker == 0xDA:  # entropy-coded data up to the next marker that is not a restart
            scan = pos
            while (scan := data.find(b"\xff", scan)) != -1 and scan + 1 < size and (
                    data[scan + 1] == 0 or 0xD0 <= data[scan + 1] <= 0xD7 or data[scan + 1] == 0xFF):
                scan += 1
            if scan == -1 or scan + 1 >= size:
                scan = size  # no end marker: what is left is image data
            out += data[pos:scan]
            pos = scan
    return bytes(out + b"\xff\xd9")


def strip_jpx(data: bytes) -> bytes:
    """The JPEG 2000 image without its metadata boxes or main-header comments."""
    if not data.startswith(JP2_SIGNATURE):
        return _strip_j2k_comments(data)
    out, pos = bytearray(), 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated box")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if length == 1:
            if pos + 16 > len(data):
                raise ValueError("truncated box")
            length, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif length == 0:
            length = len(data) - pos
        if length < header or pos + length > len(data):
            raise ValueError("bad box length")
        if kind == b"ftbl":
            raise ValueError("image data held elsewhere")  # fragment tables point at offsets
        if kind == b"jp2c":
            out += _box(kind, _strip_j2k_comments(data[pos + header:pos + length]))
        elif kind in JP2_KEPT_BOXES:
            out += data[pos:pos + length]
        pos += length
    return bytes(out)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def _strip_j2k_comments(data: bytes) -> bytes:
    """A JPEG 2000 codestream without comment (COM) segments in its main header; one with a comment
    in a tile-part header is refused (tile-part lengths would change)."""
    if not data.startswith(b"\xff\x4f\xff\x51"):
        raise ValueError("not a JPEG 2000 codestream")
    out, pos = bytearray(b"\xff\x4f"), 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise ValueError("truncated main header")
        marker = data[pos + 1]
        if marker == 0x90:  # first tile-part: the main header ends
            break
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker != 0x64:
            out += data[pos:end]
        pos = end
    tiles = pos
    while tiles + 12 <= len(data) and data[tiles:tiles + 2] == b"\xff\x90":
        part_length = struct.unpack(">I", data[tiles + 6:tiles + 10])[0]
        header = tiles + 12
        while header + 4 <= len(data) and data[header] == 0xFF and data[header + 1] != 0x93:  # up to SOD
            if data[header + 1] == 0x64:
                raise ValueError("comment in a tile-part header")
            header += 2 + struct.unpack(">H", data[header + 2:header + 4])[0]
        if part_length == 0:
            break
        tiles += part_length
    return bytes(out + data[pos:])


def served_findings(served: bytes) -> list[str]:
    """What the written copy still holds that must not be served: its objects (every one in its
    cross-reference table, reachable or not) and its bytes outside streams."""
    return raw_findings(served) + findings(PdfReader(io.BytesIO(served), strict=True))


def raw_findings(served: bytes) -> list[str]:
    """Action, file and metadata names in the bytes outside streams; XMP or EXIF anywhere."""
    skeleton = STREAM_BODY.sub(b"stream endstream", served)
    found = [m.group(0).decode("latin-1") for m in RAW_NAMES.finditer(skeleton)]
    return found + [marker.decode("latin-1") for marker in RAW_METADATA if marker in served]


def _all_objects(reader: PdfReader) -> Iterator[PdfObject | None]:
    for generation, ids in reader.xref.items():
        for idnum in ids:
            yield reader.get_object(IndirectObject(idnum, generation, reader))
    for idnum in reader.xref_objStm:
        yield reader.get_object(idnum)
    yield reader.trailer


def findings(reader: PdfReader) -> list[str]:
    """What a served PDF must not hold: actions, JavaScript, embedded files, metadata, annotations
    that attach or play something, photos with metadata; in every object of the file."""
    found = []
    if reader.trailer.get("/Info") is not None:
        found.append("/Info")
    for top in _all_objects(reader):
        stack: list[Any] = [top]
        while stack:  # direct objects only: every indirect one is visited from the table
            obj = stack.pop()
            if isinstance(obj, ArrayObject):
                stack.extend(v for v in obj if not isinstance(v, IndirectObject))
            if not isinstance(obj, DictionaryObject):
                continue
            stack.extend(v for v in obj.values() if not isinstance(v, IndirectObject))
            found += [k for k in obj if k in REMOVED_KEYS]
            found += [f"{k} {v}" for k, v in obj.items() if isinstance(v, str) and v in UNSAFE_VALUES]
            if obj.get("/Subtype") in DROPPED_ANNOTATIONS:
                found.append(str(obj.get("/Subtype")))
            if isinstance(obj, StreamObject):
                found += _image_findings(obj)
    return found


def _image_findings(stream: StreamObject) -> list[str]:
    filters = _filters(stream)
    if not {"/DCTDecode", "/DCT", "/JPXDecode"} & set(filters):
        return []
    if filters not in (["/DCTDecode"], ["/JPXDecode"]):
        return [f"image filters {filters}"]
    raw = stream._data  # noqa: SLF001 - the image file itself
    try:
        clean = (strip_jpeg(raw) if filters == ["/DCTDecode"] else strip_jpx(raw)) == raw
    except ValueError:
        clean = False
    return [] if clean else [f"image metadata {filters[0]}"]
