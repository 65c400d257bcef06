"""PDFs: parsed as PDFs (pypdf), and served as a new file holding the pages only.

The copy is built page by page, so the document catalogue's actions, names tree (JavaScript,
embedded files), forms and outlines are never carried over. What pages bring with them is then
walked, every object reachable, and cleaned: actions (``/A``, ``/AA``, ``/OpenAction``,
JavaScript), embedded files, metadata streams and application data go, and annotations that
play, attach or submit something (file attachments, media, form widgets) are dropped. The
written copy is read back and walked again; anything still found refuses the file.
"""
from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PdfReadError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject

MAX_PAGES = 2000
REMOVED_KEYS = frozenset({"/A", "/AA", "/OpenAction", "/JS", "/JavaScript", "/EmbeddedFiles", "/EmbeddedFile",
                          "/EF", "/FS", "/Metadata", "/PieceInfo", "/AcroForm", "/Names", "/URI", "/Launch",
                          "/SubmitForm", "/ImportData", "/RichMediaContent", "/XFA"})
DROPPED_ANNOTATIONS = frozenset({"/FileAttachment", "/Screen", "/Movie", "/Sound", "/RichMedia", "/Widget", "/3D"})
UNSAFE_VALUES = frozenset({"/JavaScript", "/Launch", "/EmbeddedFile", "/Filespec", "/SubmitForm", "/ImportData",
                           "/GoToR", "/GoToE", "/URI", "/RichMedia"})

logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is refused, not logged line by line


class Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_and_clean(data: bytes) -> bytes:
    """The served copy, or ``Refused`` (CORRUPT_PDF, PDF_ENCRYPTED, TOO_MANY_PAGES, PROCESSING_FAILED)."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise Refused("PDF_ENCRYPTED")
        pages = len(reader.pages)
        if pages == 0:
            raise Refused("CORRUPT_PDF")
        if pages > MAX_PAGES:
            raise Refused("TOO_MANY_PAGES")
        writer = PdfWriter()
        for page in reader.pages:
            writer.add_page(page)
        writer.metadata = None
        _sanitize(writer.root_object)
        out = io.BytesIO()
        writer.write(out)
        served = out.getvalue()
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever pypdf cannot read or write is not served
        if isinstance(exc, PdfReadError) or "encrypt" not in str(exc).lower():
            raise Refused("CORRUPT_PDF") from exc
        raise Refused("PDF_ENCRYPTED") from exc
    try:
        leftovers = findings(PdfReader(io.BytesIO(served), strict=False))
    except Exception as exc:  # noqa: BLE001 - our own output must read back
        raise Refused("PROCESSING_FAILED") from exc
    if leftovers:
        raise Refused("PROCESSING_FAILED")
    return served


def _objects(root: PdfObject) -> Iterator[DictionaryObject]:
    """Every dictionary (and stream dictionary) reachable from ``root``, each once."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            if obj.idnum in seen:
                continue
            seen.add(obj.idnum)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            yield obj
            stack.extend(v for k, v in obj.items() if k != "/Parent")
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)


def _sanitize(root: PdfObject) -> None:
    for obj in _objects(root):
        for key in [k for k in obj if k in REMOVED_KEYS]:
            del obj[key]
        annotations = obj.get("/Annots")
        if annotations is not None:
            kept = ArrayObject(a for a in annotations.get_object()
                               if a.get_object().get("/Subtype") not in DROPPED_ANNOTATIONS)
            obj[NameObject("/Annots")] = kept


def findings(reader: PdfReader) -> list[str]:
    """What a served PDF must not hold: actions, JavaScript, embedded files, metadata."""
    found = []
    trailer_info = reader.trailer.get("/Info")
    if trailer_info is not None:
        found.append("/Info")
    for obj in _objects(reader.trailer["/Root"]):
        found += [k for k in obj if k in REMOVED_KEYS]
        found += [f"{k} {v}" for k, v in obj.items() if isinstance(v, str) and v in UNSAFE_VALUES]
        if obj.get("/Subtype") in DROPPED_ANNOTATIONS:
            found.append(str(obj.get("/Subtype")))
    return found
