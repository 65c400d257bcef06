"""PDFs under hostile input: what pypdf may unpack is bounded, what is removed is not written, and
photos inside lose their metadata. Every file is made here."""
from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from chalicelib.inspection import REASONS, inspect, pdf
from tests import media
from tests.hostile_pdf import CATALOG, PAGES, page_using, pdf_at_every_limit, pdf_with_object_streams, raw_pdf
from tests.media import jpeg

MIB = 1024 * 1024
MAX = 10 * MIB  # chalicelib.domain.evidence.LIMITS["application/pdf"]
def run(data: bytes) -> Any:
    return inspect(data, "application/pdf", len(data), MAX)


def page_with(objects: dict[str, StreamObject | DictionaryObject], writer: PdfWriter | None = None) -> PdfWriter:
    writer = writer or PdfWriter()
    page = writer.add_blank_page(100, 100)
    refs = {name: writer._add_object(obj) for name, obj in objects.items()}  # noqa: SLF001 - a test's own file
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): DictionaryObject(
        {NameObject(name): ref for name, ref in refs.items()})})
    content = DecodedStreamObject()
    content.set_data(b" ".join(b"q 100 0 0 100 0 0 cm %s Do Q" % name.encode() for name in objects))
    page[NameObject("/Contents")] = writer._add_object(content)  # noqa: SLF001
    return writer


def written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def image_stream(data: bytes, filters: list[str], size: tuple[int, int] = (64, 48)) -> StreamObject:
    stream = StreamObject()
    stream._data = data  # noqa: SLF001 - the encoded bytes, as a scanner writes them
    stream.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                   NameObject("/Width"): NumberObject(size[0]), NameObject("/Height"): NumberObject(size[1]),
                   NameObject("/ColorSpace"): NameObject("/DeviceRGB"), NameObject("/BitsPerComponent"): NumberObject(8),
                   NameObject("/Filter"): ArrayObject(NameObject(f) for f in filters) if len(filters) > 1
                   else NameObject(filters[0])})
    return stream


def jpeg_with_everything() -> bytes:
    """A phone photo: EXIF with GPS and camera make, plus an XMP segment and a comment."""
    photo = jpeg((64, 48), gps=True)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><exif:GPSLatitude>48,51.48N</exif:GPSLatitude></x:xmpmeta>"
    comment = b"taken at " + media.COORDINATES
    extra = (b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp + b"\xff\xfe" + struct.pack(">H", len(comment) + 2)
             + comment)
    return photo[:2] + extra + photo[2:]


def served_images(clean: bytes) -> list[StreamObject]:
    resources: Any = PdfReader(io.BytesIO(clean)).pages[0]["/Resources"]
    xobjects = resources["/XObject"]
    return [xobjects[name].get_object() for name in xobjects]


# ---- bounded unpacking --------------------------------------------------------------------------
def test_object_streams_unpacking_past_the_budget_are_refused_within_bounded_memory():
    spaces = b"<< /A 1 >>" + b" " * (3 * MIB)
    bombs = {"one stream over its limit": pdf_with_object_streams([b"<< /A 1 >>" + b" " * (pdf.STREAM_LIMIT + MIB)]),
             "streams together over the budget": pdf_with_object_streams([spaces] * 12)}
    for name, bomb in bombs.items():
        assert len(bomb) < 200_000, name
        tracemalloc.start()
        try:
            result = run(bomb)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.rejection == "PDF_TOO_COMPLEX", name
        assert peak < 3 * pdf.STREAM_LIMIT, (name, peak)


def test_object_streams_within_the_budget_are_accepted_and_the_budget_is_per_file():
    assert run(pdf_with_object_streams([spaces_object(2 * MIB)] * 9)).rejection == "PDF_TOO_COMPLEX"
    result = run(pdf_with_object_streams([spaces_object(MIB)] * 3))
    assert result.rejection is None
    assert len(PdfReader(io.BytesIO(result.clean)).pages) == 1


def spaces_object(size: int) -> bytes:
    return b"<< /A 1 >>" + b" " * size


def test_a_small_file_of_many_numbers_or_long_strings_is_refused():
    numbers = [b"[" + b"0 " * 99_999 + b"]"] * (pdf.MAX_ELEMENTS // 100_000 + 1)
    assert run(raw_pdf({1: CATALOG, 2: PAGES, 3: page_using(list(range(10, 10 + len(numbers)))),
                        **{10 + i: body for i, body in enumerate(numbers)}})).rejection == "PDF_TOO_COMPLEX"
    long_string = b"(" + b"a" * (pdf.MAX_STRING + 10) + b")"
    assert run(raw_pdf({1: CATALOG, 2: PAGES, 3: page_using([4]), 4: long_string})).rejection == "PDF_TOO_COMPLEX"
    long_hex = b"<" + b"41" * (pdf.MAX_STRING + 10) + b">"
    assert run(raw_pdf({1: CATALOG, 2: PAGES, 3: page_using([4]), 4: long_hex})).rejection == "PDF_TOO_COMPLEX"
    strings = [b"(" + b"a" * (pdf.MAX_STRING - 64) + b")"] * (pdf.STRING_BUDGET // pdf.MAX_STRING + 1)
    assert run(pdf_with_object_streams(strings)).rejection == "PDF_TOO_COMPLEX"
    escaped = b"(" + b"\\) (b) " * 4 + b"a" * 100 + b")"  # escapes and nested parentheses end where pypdf ends
    assert run(raw_pdf({1: CATALOG, 2: PAGES, 3: page_using([4]), 4: escaped})).rejection is None


def test_the_costliest_accepted_pdf_is_accepted():
    data = pdf_at_every_limit()
    assert len(data) < MAX
    result = run(data)
    assert result.rejection is None
    assert len(result.clean) > pdf.STRING_BUDGET // 2


def test_too_many_objects_are_refused():
    objects = {1: CATALOG, 2: PAGES, 3: page_using([4])}
    objects.update({n: b"0" for n in range(4, pdf.MAX_OBJECTS + 10)})
    assert run(raw_pdf(objects)).rejection == "PDF_TOO_COMPLEX"


def test_the_new_codes_are_in_the_catalog():
    assert {"PDF_TOO_COMPLEX", "PDF_NOT_CLEANABLE"} <= set(REASONS)


# ---- what is removed is not written ---------------------------------------------------------------
def pdf_with_orphans() -> bytes:
    """A page with an XMP stream (location, creator), a file attachment annotation (Filespec with an
    embedded file) and a JavaScript page action: all cut off by the cleaning."""
    writer = PdfWriter()
    page = writer.add_blank_page(100, 100)
    xmp = DecodedStreamObject()
    xmp.set_data(b"<x:xmpmeta><exif:GPSLatitude>48,51.48N</exif:GPSLatitude><dc:creator>Jane Seller</dc:creator>"
                 b"</x:xmpmeta>")
    xmp.update({NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")})
    page[NameObject("/Metadata")] = writer._add_object(xmp)  # noqa: SLF001 - a test's own file
    embedded = DecodedStreamObject()
    embedded.set_data(b"SECRET-EMBEDDED-PAYLOAD MZ")
    embedded[NameObject("/Type")] = NameObject("/EmbeddedFile")
    spec = DictionaryObject({NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject("payload.exe"),
                             NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(embedded)})})  # noqa: SLF001
    annotation = DictionaryObject({NameObject("/Type"): NameObject("/Annot"),
                                   NameObject("/Subtype"): NameObject("/FileAttachment"),
                                   NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4),
                                   NameObject("/FS"): writer._add_object(spec)})  # noqa: SLF001
    script = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("app.alert('orphan')")})
    page[NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])  # noqa: SLF001
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): writer._add_object(script)})  # noqa: SLF001
    return written(writer)


def test_what_the_cleaning_cuts_off_is_not_written():
    original = pdf_with_orphans()
    assert b"Jane Seller" in original and b"SECRET-EMBEDDED-PAYLOAD" in original
    result = run(original)
    assert result.rejection is None
    for leftover in (b"GPSLatitude", b"Jane Seller", b"SECRET-EMBEDDED-PAYLOAD", b"payload.exe", b"app.alert",
                     b"/JavaScript", b"/Filespec", b"/FileAttachment", b"/EmbeddedFile", b"/Metadata"):
        assert leftover not in result.clean, leftover
    served = PdfReader(io.BytesIO(result.clean))
    assert len(served.pages) == 1 and pdf.findings(served) == []
    in_table = sum(len(ids) for ids in served.xref.values())
    assert in_table == 3  # catalogue, page tree, page: nothing else


def test_the_self_check_reads_every_object_not_only_reachable_ones(monkeypatch: pytest.MonkeyPatch):
    original = pdf_with_orphans()
    # an object no page refers to is still found in the file
    assert "/JS" in pdf.findings(PdfReader(io.BytesIO(original)))
    monkeypatch.setattr(pdf, "_drop_unreachable", lambda writer: None)
    assert run(original).rejection == "PROCESSING_FAILED"  # found in our own copy: refused, not served


def test_the_self_check_scans_the_bytes_outside_streams():
    clean = run(media.pdf_with_javascript()).clean
    assert pdf.served_findings(clean) == [] and pdf.raw_findings(clean) == []
    planted = clean.replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction 3 0 R", 1)
    assert pdf.raw_findings(planted) == ["/OpenAction"]
    assert pdf.raw_findings(clean + b"\n<</S/Launch>>") == ["/Launch"]
    assert pdf.raw_findings(clean + b"\n(Exif\x00\x00)") == ["Exif\x00\x00"]
    content = b"stream\nBT (/JS is text inside a stream) Tj ET\nendstream"
    assert pdf.raw_findings(clean + content) == []


# ---- photos inside ----------------------------------------------------------------------------------
def test_a_photo_inside_a_pdf_loses_its_exif_xmp_and_comment():
    photo = jpeg_with_everything()
    assert b"Exif" in photo and b"PhoneMaker" in photo and media.COORDINATES in photo
    wrapped = zlib.compress(photo)
    original = written(page_with({"/Im0": image_stream(photo, ["/DCTDecode"]),
                                  "/Im1": image_stream(wrapped, ["/FlateDecode", "/DCTDecode"])}))
    result = run(original)
    assert result.rejection is None
    for leftover in (b"Exif", b"PhoneMaker", b"\x88\x25", b"GPSLatitude", b"xmpmeta", media.COORDINATES):
        assert leftover not in result.clean, leftover
    images = served_images(result.clean)
    assert len(images) == 2
    for image in images:
        assert image["/Filter"] == "/DCTDecode"
        decoded = Image.open(io.BytesIO(image._data))  # noqa: SLF001 - the JPEG file itself
        assert decoded.size == (64, 48) and not decoded.getexif()
        decoded.load()
        assert decoded.getpixel((10, 10))[0] > 150  # still the red photo
        assert decoded.info.get("jfif") is not None  # JFIF kept: decoders need it


def test_segments_between_progressive_scans_and_after_the_end_are_dropped():
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 10, 200)).save(out, "JPEG", progressive=True)
    photo = out.getvalue()
    second_scan = photo.index(b"\xff\xda", photo.index(b"\xff\xda") + 2)
    comment = b"\xff\xfe" + struct.pack(">H", 12) + b"lat 48.85N"
    hostile = photo[:second_scan] + comment + photo[second_scan:] + b"Exif\x00\x00 trailing"
    cleaned = pdf.strip_jpeg(hostile)
    assert b"lat 48.85N" not in cleaned and b"trailing" not in cleaned
    assert pdf.strip_jpeg(cleaned) == cleaned
    assert Image.open(io.BytesIO(cleaned)).convert("RGB").getpixel((5, 5))[2] > 150


def test_a_jpeg_2000_inside_a_pdf_loses_its_metadata_boxes():
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG2000")
    jp2 = out.getvalue()
    assert jp2.startswith(pdf.JP2_SIGNATURE)
    xml = media.box(b"xml ", b"<x:xmpmeta><exif:GPSLatitude>48,51.48N</exif:GPSLatitude></x:xmpmeta>")
    geo = media.box(b"uuid", b"\xb1\x4b\xf8\xbd\x08\x3d\x4b\x43\xa5\xae\x8c\xd7\xd5\xa6\xce\x03" + b"GeoTIFF 2.2945E")
    codestream = jp2.index(b"jp2c") - 4
    hostile = jp2[:codestream] + xml + geo + jp2[codestream:]
    result = run(written(page_with({"/Im0": image_stream(hostile, ["/JPXDecode"])})))
    assert result.rejection is None
    assert b"GPSLatitude" not in result.clean and b"GeoTIFF" not in result.clean
    (image,) = served_images(result.clean)
    assert Image.open(io.BytesIO(image._data)).size == (64, 48)  # noqa: SLF001


def test_a_photo_that_cannot_be_cleaned_is_refused():
    broken = written(page_with({"/Im0": image_stream(b"\xff\xd8\xff\xe1\x00", ["/DCTDecode"])}))
    assert run(broken).rejection == "PDF_NOT_CLEANABLE"
    flate_after_dct = written(page_with({"/Im0": image_stream(zlib.compress(jpeg()), ["/DCTDecode", "/FlateDecode"])}))
    assert run(flate_after_dct).rejection == "PDF_NOT_CLEANABLE"


# ---- second review: text filters, link actions, annotation authors, inline photos ---------------
def pdf_with_stream(dictionary: bytes, data: bytes) -> bytes:
    """A one-page PDF whose page draws the image object 4 (``dictionary`` + ``data``)."""
    image = b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray " \
            b"/BitsPerComponent 8 %s /Length %d >>\nstream\n%s\nendstream" % (dictionary, len(data), data)
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Resources << /XObject << /Im 4 0 R >> >>"
            b" /Contents 5 0 R >>")
    drawing = b"q 10 0 0 10 0 0 cm /Im Do Q"
    return raw_pdf({1: CATALOG, 2: PAGES, 3: page, 4: image,
                    5: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(drawing), drawing)})


@pytest.mark.parametrize("filters, data", [
    (b"/Filter [/ASCII85Decode /DCTDecode]", b"z" * (2 * MIB) + b"~>"),
    (b"/Filter [/ASCIIHexDecode /DCTDecode]", b"FFD8" + b"4 1\n" * (MIB // 2)),
    (b"/Filter [/RunLengthDecode /DCTDecode]", b"\x00A" * MIB),
    (b"/Filter [/LZWDecode /DCTDecode]", b"\x80" * (MIB + 1)),
])
def test_streams_of_pure_python_filters_are_bounded_by_their_input_before_decoding(filters, data):
    tracemalloc.start()
    try:
        result = run(pdf_with_stream(filters, data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rejection == "PDF_TOO_COMPLEX"
    assert peak < 64 * MIB, peak  # pypdf held 40-95 bytes per input byte: 190 MB for the first one


def test_a_small_text_filtered_stream_is_still_read():
    assert run(pdf_with_stream(b"/Filter /ASCIIHexDecode", b"80>")).rejection is None


def annotated_pdf(annotation: bytes) -> bytes:
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Annots [4 0 R] >>"
    return raw_pdf({1: CATALOG, 2: PAGES, 3: page, 4: annotation})


def test_a_link_keeps_its_place_and_loses_its_action():
    result = run(annotated_pdf(b"<< /Type /Annot /Subtype /Link /Rect [0 0 5 5] "
                               b"/PA << /S /URI /URI (https://evil.example/) >> >>"))
    assert result.rejection is None and result.clean is not None
    assert b"evil.example" not in result.clean and b"/URI" not in result.clean


def test_a_note_keeps_its_text_but_not_who_wrote_it_or_when():
    result = run(annotated_pdf(b"<< /Type /Annot /Subtype /Text /Rect [0 0 5 5] /Contents (The box was empty) "
                               b"/T (John Smith) /M (D:20241101120000Z) /NM (uuid-1) >>"))
    assert result.rejection is None and result.clean is not None
    assert b"John Smith" not in result.clean and b"D:2024" not in result.clean and b"uuid-1" not in result.clean
    assert b"The box was empty" in result.clean


def test_a_photo_drawn_inline_in_a_page_is_refused_not_served_with_its_exif():
    photo = jpeg(gps=True)
    drawing = b"q 16 0 0 16 0 0 cm BI /W 64 /H 48 /CS /RGB /BPC 8 /F /DCT /L %d ID %s EI Q" % (len(photo), photo)
    packed = zlib.compress(drawing)
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /Contents 4 0 R >>"
    data = raw_pdf({1: CATALOG, 2: PAGES, 3: page,
                    4: b"<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(packed), packed)})
    assert run(data).rejection == "PDF_NOT_CLEANABLE"


# ---- the budget hooks in pypdf ----------------------------------------------------------------

def flate_page_pdf() -> bytes:
    """A one-page PDF whose content is a FlateDecode stream (decoded, and its objects parsed)."""
    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    content = DecodedStreamObject()
    content.set_data(b"0 0 m 100 100 l S")
    page[NameObject("/Contents")] = writer._add_object(content)  # noqa: SLF001
    page.compress_content_streams()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("hooked", pdf.HOOKS, ids=lambda h: f"{h[0].__name__}.{h[1]}")
def test_pypdf_still_calls_every_hooked_name_so_the_budget_is_charged(monkeypatch, hooked) -> None:
    # Fails when a pypdf upgrade renames or moves a hooked name: the hook would then never run.
    module, name, hook = hooked
    pdf.install()
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return hook(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    monkeypatch.setattr(pdf, "installed", lambda: True)  # the counting wrapper stands in for the hook
    assert pdf.check_and_clean(flate_page_pdf())
    assert calls, f"pypdf no longer calls {module.__name__}.{name}: the PDF budget does not apply"


@pytest.mark.parametrize("hooked", pdf.HOOKS, ids=lambda h: f"{h[0].__name__}.{h[1]}")
def test_installing_refuses_when_a_hooked_pypdf_name_is_missing(monkeypatch, hooked) -> None:
    module, name, _ = hooked
    monkeypatch.delattr(module, name)
    with pytest.raises(RuntimeError, match=name):
        pdf.install()
    assert not hasattr(module, name)  # nothing half-installed under a made-up name


def test_no_pdf_is_parsed_without_its_budget_and_the_wiring_installs_it(monkeypatch) -> None:
    from chalicelib.services import commands as c
    from tests.unit.world import BUYER, new_world

    for module, name, _ in pdf.HOOKS:
        monkeypatch.setattr(module, name, pdf._decode_stream_data if name == "decode_stream_data"  # noqa: SLF001
                            else pdf._read_object)  # noqa: SLF001 - pypdf's own functions, unhooked
    assert not pdf.installed()
    with pytest.raises(RuntimeError, match="install"):
        pdf.check_and_clean(flate_page_pdf())
    world = new_world()  # bootstrap.use_cases: the evidence use case gets bootstrap.inspector
    with world.payments:
        did = world.awaiting_seller()["dispute_id"]
        data = flate_page_pdf()
        e, _ = world.services.evidence.request_upload(BUYER, c.RequestUpload(did, "receipt.pdf", "application/pdf",
                                                                             len(data)))
        assert not pdf.installed()  # nothing inspected yet: nothing loaded, nothing hooked
        world.store.write(e.upload_key, data, "application/pdf")
        assert world.services.evidence.process_upload(e.upload_key) == "accepted"
    assert pdf.installed()
    pdf.install()  # idempotent
    assert pdf.installed() and pdf.check_and_clean(flate_page_pdf())
