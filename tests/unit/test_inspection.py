"""What a file really is, and the copy that is served: real files made by the tests, no AWS."""
import io

import pytest
from PIL import Image

from chalicelib.inspection import REASONS, inspect, sniff
from tests.integration.evidence import jpeg, png

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


def test_videos_and_pdfs_are_checked_by_signature():
    assert run(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "video/mp4").rejection is None
    assert run(b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 100, "video/mp4").rejection == "TYPE_MISMATCH"
    assert run(b"%PDF-1.4\n%%EOF\n", "application/pdf").rejection is None
    assert run(b"%PDF-1.4\n", "application/pdf").rejection == "CORRUPT_PDF"


def test_every_rejection_has_a_message_for_the_app():
    rejections = {run(b"", "image/jpeg").rejection, run(b"text", "image/jpeg").rejection,
                  run(png(), "image/jpeg").rejection, run(jpeg()[:200], "image/jpeg").rejection}
    assert rejections <= set(REASONS) and None not in rejections


@pytest.mark.parametrize("mode", ["P", "1", "I;16", "LA", "RGBA", "CMYK"])
def test_unusual_image_modes_are_served_as_plain_rgb_or_refused_never_crash(mode):
    out = io.BytesIO()
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    Image.new(mode, (2200, 2100)).save(out, fmt)
    result = run(out.getvalue(), "image/jpeg" if fmt == "JPEG" else "image/png")
    assert result.rejection in (None, "CORRUPT_IMAGE")
    if result.rejection is None:
        assert Image.open(io.BytesIO(result.clean)).mode in ("RGB", "RGBA", "L")
        assert result.thumbnail
