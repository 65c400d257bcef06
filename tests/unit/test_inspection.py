"""What a file really is, and the copy that is served: real files made by the tests, no AWS."""
import io

import pytest
from PIL import Image

from chalicelib.inspection import REASONS, images, inspect, metadata, pdf, sniff, video
from tests import media
from tests.media import jpeg, png

MAX = 10 * 1024 * 1024


def run(data: bytes, content_type: str):
    return inspect(data, content_type, len(data), MAX)


def test_a_photo_is_turned_upright_and_loses_its_exif_and_gps():
    image = Image.new("RGB", (300, 200), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, as phones store portrait photos
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    result = run(out.getvalue(), "image/jpeg")
    assert result.rejection is None
    served = Image.open(io.BytesIO(result.clean))
    assert served.size == (200, 300) and not served.getexif()
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert thumb.size[1] > thumb.size[0]


@pytest.mark.parametrize("make, content_type", [(png, "image/png"), (jpeg, "image/jpeg")])
def test_supported_images_are_accepted_with_a_thumbnail(make, content_type):
    result = run(make(), content_type)
    assert result.rejection is None and result.clean and result.thumbnail


def test_webp_is_accepted():
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "WEBP")
    assert run(out.getvalue(), "image/webp").rejection is None


@pytest.mark.parametrize("data, expected", [
    (b"\xff\xd8\xff\xe0rest", "image/jpeg"), (b"\x89PNG\r\n\x1a\nrest", "image/png"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (b"%PDF-1.7", "application/pdf"),
    (b"\x00\x00\x00\x18ftypmp42rest", "video/mp4"), (b"\x00\x00\x00\x14ftypqt  rest", "video/quicktime"),
    (b"\x00\x00\x00\x08wide....", "video/quicktime"), (b"GIF89a", None), (b"hello", None),
])
def test_the_type_is_read_from_the_bytes(data, expected):
    assert sniff(data) == expected


def test_every_rejection_has_a_message_for_the_app():
    rejections = {run(b"", "image/jpeg").rejection, run(b"text", "image/jpeg").rejection,
                  run(png(), "image/jpeg").rejection, run(jpeg()[:200], "image/jpeg").rejection}
    assert rejections <= set(REASONS) and None not in rejections


@pytest.mark.parametrize("mode, served_mode", [("P", "RGB"), ("1", "L"), ("I;16", "L"), ("LA", "RGBA"),
                                               ("RGBA", "RGBA"), ("CMYK", "RGB")])
def test_unusual_image_modes_are_served_in_a_plain_eight_bit_mode(mode, served_mode):
    out = io.BytesIO()
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    Image.new(mode, (2200, 2100)).save(out, fmt)
    result = run(out.getvalue(), "image/jpeg" if fmt == "JPEG" else "image/png")
    assert result.rejection is None
    served = Image.open(io.BytesIO(result.clean))
    assert (served.mode, served.size) == (served_mode, (2200, 2100))
    assert Image.open(io.BytesIO(result.thumbnail)).size == (512, 489)


# ---- hostile files (issue 10): each made here, each ends with a clear outcome ------------------
def served_image(result, fmt: str) -> Image.Image:
    assert result.rejection is None and result.clean, result.rejection
    image = Image.open(io.BytesIO(result.clean), formats=[fmt])
    assert metadata.is_clean(result.clean, fmt) and metadata.is_clean(result.thumbnail, "JPEG")
    return image


def test_a_jpeg_comment_with_coordinates_is_not_served():
    original = media.jpeg_with_comment()
    assert 0xFE in metadata.jpeg_markers(original) and media.COORDINATES in original  # COM is there
    result = run(original, "image/jpeg")
    served = served_image(result, "JPEG")
    assert "comment" not in served.info and not served.getexif()
    for data in (result.clean, result.thumbnail):
        assert media.COORDINATES not in data and 0xFE not in metadata.jpeg_markers(data)
        assert 0xE1 not in metadata.jpeg_markers(data)  # no EXIF/XMP segment


def test_png_text_chunks_and_exif_are_not_served():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", media.COORDINATES.decode())
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + media.COORDINATES.decode(), zip=True)
    exif = Image.Exif()
    exif[0x8825] = media.GPS
    out = io.BytesIO()
    Image.new("RGBA", (120, 80), (1, 2, 3, 100)).save(out, "PNG", pnginfo=info, exif=exif)
    assert {b"tEXt", b"iTXt", b"eXIf"} <= set(metadata.png_chunks(out.getvalue()))
    result = run(out.getvalue(), "image/png")
    served = served_image(result, "PNG")
    assert served.mode == "RGBA" and media.COORDINATES not in result.clean
    assert not {b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"tIME"} & set(metadata.png_chunks(result.clean))


def test_webp_exif_and_xmp_are_not_served():
    exif = Image.Exif()
    exif[0x8825] = media.GPS
    exif[0x0112] = 6
    out = io.BytesIO()
    Image.new("RGB", (90, 40), (5, 6, 7)).save(out, "WEBP", exif=exif, xmp=b"<x:xmpmeta>" + media.COORDINATES)
    assert {b"EXIF", b"XMP "} <= set(metadata.riff_chunks(out.getvalue()))
    result = run(out.getvalue(), "image/webp")
    served = served_image(result, "WEBP")
    assert served.size == (40, 90)  # turned upright
    assert not {b"EXIF", b"XMP "} & set(metadata.riff_chunks(result.clean))


def test_the_90_byte_webp_of_8000_by_8000_is_refused_before_it_is_decoded():
    bomb = media.webp_bomb()
    assert images.webp_size(bomb) == (8000, 8000) and len(bomb) < 4096
    assert run(bomb, "image/webp").rejection == "DECOMPRESSION_BOMB"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_8000_by_8000_rotated_image_is_refused_or_served_small_and_upright(fmt):
    result = run(media.big_rotated(fmt), f"image/{fmt.lower()}")
    if fmt == "PNG":  # no reduced decode exists: 64 MP of RGB is over PNG's budget
        assert result.rejection == "DECOMPRESSION_BOMB"
        return
    served = served_image(result, fmt)  # JPEG: decoded at 1/4 scale, never at full size
    assert served.size == (2000, 2000) and max(served.size) <= images.MAX_EDGE


def test_a_portrait_jpeg_over_the_served_size_is_decoded_small_and_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image = Image.new("RGB", (4000, 3000), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 2000, 3000))  # left half red: after turning, the top half
    image.save(out, "JPEG", exif=exif)
    served = served_image(run(out.getvalue(), "image/jpeg"), "JPEG")
    assert served.size == (1500, 2000)
    assert served.getpixel((750, 100))[0] > 200 and served.getpixel((750, 1900))[2] > 200


def test_a_progressive_jpeg_over_its_coefficient_budget_is_refused():
    out = io.BytesIO()
    Image.new("RGB", (6000, 6000)).save(out, "JPEG", progressive=True, subsampling=0)
    assert run(out.getvalue(), "image/jpeg").rejection == "DECOMPRESSION_BOMB"
    out = io.BytesIO()
    Image.new("RGB", (6000, 6000)).save(out, "JPEG", subsampling=0)  # the same pixels, baseline
    assert run(out.getvalue(), "image/jpeg").rejection is None


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped():
    out = io.BytesIO()
    Image.new("I;16", (64, 64), 32768).save(out, "PNG")
    served = served_image(run(out.getvalue(), "image/png"), "PNG")
    assert served.mode == "L" and served.getpixel((0, 0)) == 128


def test_an_svg_declared_as_png_is_unrecognized():
    assert run(media.svg_named_png(), "image/png").rejection == "UNRECOGNIZED_CONTENT"


def test_an_mp4_loses_its_location_and_user_data_but_keeps_its_size_and_media():
    original = media.mp4()
    assert {b"udta", b"meta", b"uuid", b"\xa9xyz"} <= set(video.all_types(original))
    result = run(original, "video/mp4")
    assert result.rejection is None and result.clean
    assert len(result.clean) == len(original)  # boxes blanked in place: every sample offset holds
    assert not {b"udta", b"meta", b"uuid", b"\xa9xyz", b"keys", b"ilst"} & set(video.all_types(result.clean))
    assert media.COORDINATES not in result.clean
    mdat = original.index(b"mdat")
    assert result.clean[mdat:mdat + 1032] == original[mdat:mdat + 1032]  # the media data is untouched


def test_a_quicktime_movie_with_its_movie_box_last_is_cleaned_too():
    original = media.mp4(brand=b"qt  ", moov_first=False)
    result = run(original, "video/quicktime")
    assert result.rejection is None and media.COORDINATES not in result.clean


@pytest.mark.parametrize("make", [media.html_with_ftyp, media.executable_with_ftyp], ids=["html", "exe"])
def test_html_or_an_executable_with_ftyp_at_offset_4_is_unrecognized(make):
    data = make()
    assert sniff(data) == "video/mp4"  # what a 4-byte signature check believed
    assert run(data, "video/mp4").rejection == "UNRECOGNIZED_CONTENT"


def test_videos_must_be_whole_and_have_a_movie_header():
    good = media.mp4(gps=False)
    assert run(good, "video/mp4").rejection is None
    assert run(good[:-10], "video/mp4").rejection == "CORRUPT_VIDEO"  # cut short
    no_movie = media.box(b"ftyp", b"mp42\x00\x00\x00\x00mp42") + media.box(b"mdat", b"\x00" * 64)
    assert run(no_movie, "video/mp4").rejection == "CORRUPT_VIDEO"
    assert run(no_movie + b"<html>", "video/mp4").rejection == "CORRUPT_VIDEO"


def test_a_video_with_a_timed_metadata_track_is_refused_not_served():
    assert run(media.mp4(extra_track=b"meta"), "video/mp4").rejection == "VIDEO_NOT_CLEANABLE"


def test_a_pdf_with_javascript_open_action_and_attachment_is_served_without_them():
    from pypdf import PdfReader

    original = media.pdf_with_javascript()
    before = pdf.findings(PdfReader(io.BytesIO(original)))
    assert {"/OpenAction", "/AA", "/JS", "/EmbeddedFiles", "/Info"} <= set(before)
    result = run(original, "application/pdf")
    assert result.rejection is None and result.clean
    served = PdfReader(io.BytesIO(result.clean))
    assert len(served.pages) == 1 and pdf.findings(served) == []
    assert b"JavaScript" not in result.clean and b"evil.example" not in result.clean
    assert media.COORDINATES not in result.clean and b"payload.exe" not in result.clean


def test_pdfs_are_parsed_as_pdfs():
    assert run(b"%PDF-1.4\n%%EOF\n", "application/pdf").rejection == "CORRUPT_PDF"
    assert run(b"%PDF-1.7\n<html><script>alert(1)</script></html>", "application/pdf").rejection == "CORRUPT_PDF"


def test_a_password_protected_pdf_is_refused():
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt(user_password="secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    assert run(out.getvalue(), "application/pdf").rejection == "PDF_ENCRYPTED"
