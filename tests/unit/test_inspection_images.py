"""Photos whose structure, not their pixel count, would cost memory or time: JPEGs of several scans
or many segments, PNGs of many text or private chunks. Each is a real file made here; each is refused
with its code before it is decoded, or served clean (memory is measured by bench/evidence_memory.py)."""
import io

import pytest
from PIL import Image

from chalicelib.inspection import images, inspect, metadata
from tests import hostile_images as hostile

MAX = 10 * 1024 * 1024


def run(data: bytes, content_type: str):
    return inspect(data, content_type, len(data), MAX)


def served(result, fmt: str) -> Image.Image:
    assert result.rejection is None and result.clean and result.thumbnail, result.rejection
    assert metadata.is_clean(result.clean, fmt) and metadata.is_clean(result.thumbnail, "JPEG")
    return Image.open(io.BytesIO(result.clean), formats=[fmt])


def jpeg(size: tuple[int, int] = (64, 48), mode: str = "RGB", **options: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 90 if mode == "L" else (90, 120, 200)).save(out, "JPEG", **options)
    return out.getvalue()


# ---- JPEG: components in separate scans ---------------------------------------------------------
@pytest.mark.parametrize("components", [3, 4])
def test_a_baseline_jpeg_of_64_mp_with_its_components_in_separate_scans_is_a_bomb(components):
    data = hostile.jpeg_components_in_separate_scans(8000, 8000, components)
    assert len(data) < 1024 * 1024 and images.jpeg_scans(data) == components
    assert run(data, "image/jpeg").rejection == "DECOMPRESSION_BOMB"


def test_separate_scans_are_budgeted_by_coefficient_where_one_scan_of_the_same_pixels_is_not():
    size = (4200, 4200)  # 6 coefficient bytes per pixel at 4:4:4: just over the budget
    assert 2 * 3 * size[0] * size[1] * images.PROGRESSIVE_OVERHEAD > images.DECODE_BUDGET
    assert run(hostile.jpeg_components_in_separate_scans(*size, 3), "image/jpeg").rejection == "DECOMPRESSION_BOMB"
    one_scan = jpeg(size, subsampling=0)
    assert images.jpeg_scans(one_scan) == 1
    assert served(run(one_scan, "image/jpeg"), "JPEG").size == (2100, 2100)


@pytest.mark.parametrize("components, mode", [(3, "RGB"), (4, "RGB"), (1, "L")])
def test_a_small_jpeg_with_components_in_separate_scans_is_served_in_one_scan(components, mode):
    result = run(hostile.jpeg_components_in_separate_scans(640, 480, components), "image/jpeg")
    image = served(result, "JPEG")
    assert (image.mode, image.size) == (mode, (640, 480))
    assert images.jpeg_scans(result.clean) == 1


# ---- JPEG: scans ---------------------------------------------------------------------------------
def test_a_progressive_jpeg_of_the_most_scans_accepted_is_served():
    data = hostile.jpeg_with_scans(jpeg(progressive=True), images.MAX_JPEG_SCANS)
    assert images.jpeg_scans(data) == images.MAX_JPEG_SCANS
    assert served(run(data, "image/jpeg"), "JPEG").size == (64, 48)


@pytest.mark.parametrize("scans", [images.MAX_JPEG_SCANS + 1, 200_000])
def test_a_progressive_jpeg_with_a_scan_repeated_too_often_is_refused_before_decoding(scans):
    data = hostile.jpeg_with_scans(jpeg((256, 256), progressive=True), scans)
    assert len(data) <= MAX
    assert run(data, "image/jpeg").rejection == "CORRUPT_IMAGE"


def test_a_jpeg_inside_an_application_segment_or_after_the_end_of_the_image_is_not_counted():
    inner = hostile.jpeg_with_scans(jpeg(progressive=True), images.MAX_JPEG_SCANS)
    data = hostile.SOI + hostile.segment(0xE1, b"Exif\x00\x00" + inner[:60000]) + jpeg()[2:]
    appended = jpeg() + hostile.jpeg_with_app_segments(jpeg(), images.MAX_JPEG_SEGMENTS)  # a preview, as phones add
    assert images.jpeg_scans(data) == images.jpeg_scans(appended) == 1
    assert served(run(appended, "image/jpeg"), "JPEG").size == (64, 48)


def test_stuffed_bytes_restart_markers_and_fill_bytes_inside_a_scan_are_not_markers():
    data = jpeg((64, 64), progressive=True)
    parts = hostile.jpeg_parts(data)
    scans = sum(1 for part in parts if hostile.is_scan(part))
    restarts = jpeg((256, 256), restart_marker_blocks=1)
    assert b"\xff\xd0" in restarts and images.jpeg_scans(restarts) == 1
    filled = hostile.SOI + b"".join(part if not hostile.is_scan(part) else b"\xff\xff" + part for part in parts)
    assert images.jpeg_scans(filled + b"\xff\xd9") == scans > 1
    assert served(run(restarts, "image/jpeg"), "JPEG").size == (256, 256)


# ---- JPEG: segments ------------------------------------------------------------------------------
def test_a_jpeg_with_the_most_segments_accepted_is_served_without_them():
    small = jpeg()
    count = images.MAX_JPEG_SEGMENTS - hostile.jpeg_segment_count(small)
    data = hostile.jpeg_with_app_segments(small, count, 20_000)
    assert len(data) <= MAX
    result = run(data, "image/jpeg")
    assert served(result, "JPEG").size == (64, 48)
    assert 0xE5 not in metadata.jpeg_markers(result.clean)


@pytest.mark.parametrize("count", [1, 2_600_000])
def test_a_jpeg_padded_with_too_many_application_segments_is_refused_before_pillow_reads_them(count):
    small = jpeg()
    count += images.MAX_JPEG_SEGMENTS - hostile.jpeg_segment_count(small)
    data = hostile.jpeg_with_app_segments(small, count)
    assert len(data) <= MAX
    assert run(data, "image/jpeg").rejection == "CORRUPT_IMAGE"


def test_a_truncated_jpeg_of_several_scans_is_still_corrupt():
    data = hostile.jpeg_with_scans(jpeg((256, 256), progressive=True), 20)
    assert run(data[:len(data) // 3], "image/jpeg").rejection == "CORRUPT_IMAGE"


# ---- PNG: text and private chunks ----------------------------------------------------------------
def test_png_text_over_pillows_own_limit_is_dropped_before_decoding_and_the_photo_served():
    # 65 comments of 1 MiB: over Pillow's 64 MiB of text, which it would hold in memory
    data = hostile.png_with_chunks(hostile.png("RGBA", (300, 200)), hostile.png_comments(65))
    assert metadata.png_chunks(images.png_for_decoding(data)) == [b"IHDR", b"IDAT", b"IEND"]
    result = run(data, "image/png")
    image = served(result, "PNG")
    assert (image.mode, image.size) == ("RGBA", (300, 200)) and not image.text
    assert b"zTXt" not in result.clean


def test_the_orientation_held_in_png_text_is_still_applied():
    text = hostile.png_raw_exif_profile(6) + hostile.png_comments(3)
    data = hostile.png_with_chunks(hostile.png("RGB", (300, 200)), text)
    assert metadata.png_chunks(images.png_for_decoding(data)) == [b"IHDR", b"zTXt", b"IDAT", b"IEND"]
    result = run(data, "image/png")
    assert served(result, "PNG").size == (200, 300)
    assert b"Raw profile" not in result.clean


def test_orientation_text_over_its_limit_or_repeated_is_dropped_too():
    # Pillow takes EXIF before XMP, and the last chunk of a keyword: were they kept, the photo
    # would be turned by 180 degrees (3), not by 90 (6).
    large = hostile.png_raw_exif_profile(3, padding=images.MAX_PNG_ORIENTATION_TEXT, noise=True)
    xmp = [hostile.png_itxt_xmp(b'<x:xmpmeta tiff:Orientation="%d"/>' % turn) for turn in (6, 3)]
    data = hostile.png_with_chunks(hostile.png("RGB", (300, 200)), large + xmp[0] + xmp[1])
    assert len(large) > images.MAX_PNG_ORIENTATION_TEXT
    assert metadata.png_chunks(images.png_for_decoding(data)) == [b"IHDR", b"iTXt", b"IDAT", b"IEND"]
    assert served(run(data, "image/png"), "PNG").size == (200, 300)


def test_a_png_of_a_million_private_chunks_is_served_without_them():
    private = hostile.png_chunk(b"prVt", b"")
    data = hostile.png_with_chunks(hostile.png("RGB", (64, 64)), private * ((MAX - 1000) // len(private)))
    assert len(data) <= MAX
    assert served(run(data, "image/png"), "PNG").size == (64, 64)


def test_a_png_with_nothing_to_drop_is_decoded_from_the_same_bytes():
    data = hostile.png("P", (64, 64), transparency=0)
    assert images.png_for_decoding(data) is data


def test_a_truncated_png_with_text_is_still_corrupt():
    out = io.BytesIO()
    Image.effect_noise((256, 256), 60).save(out, "PNG")
    data = hostile.png_with_chunks(out.getvalue(), hostile.png_comments(2))
    assert run(data[:-5000], "image/png").rejection == "CORRUPT_IMAGE"


@pytest.mark.parametrize("fmt, content_type", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_a_profile_is_served_only_as_rewritten_from_its_numbers(fmt, content_type):
    """A profile is the uploader's bytes: its text tags, or bytes that are no profile at all, could
    carry anything. A matrix/TRC profile is served rewritten from its white point, colorants and
    curves, with fixed text; bytes that are no profile are not served."""
    import io

    from PIL import Image, ImageCms

    from chalicelib.inspection import icc, inspect

    not_a_profile = b"NOT-AN-ICC-PROFILE GPS 51.50135,-0.14189 owner=John Smith " * 1000
    real = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    utf16 = "use freely".encode("utf-16-be")
    assert utf16 in real
    signed = real.replace(utf16, "John Smith".encode("utf-16-be"))  # a profile whose copyright names a person
    for uploaded in (not_a_profile, signed):
        out = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 30, 30)).save(out, fmt, icc_profile=uploaded)
        data = out.getvalue()
        result = inspect(data, content_type, len(data), 10 * 1024 * 1024)
        assert result.rejection is None and result.clean is not None
        assert b"John Smith" not in result.clean and "John Smith".encode("utf-16-be") not in result.clean
        assert b"GPS" not in result.clean
        served = Image.open(io.BytesIO(result.clean))
        assert served.convert("RGB").getpixel((32, 32))[0] > 150  # still red
        if uploaded is not_a_profile:
            assert "icc_profile" not in served.info, fmt
        else:
            assert served.info["icc_profile"] == icc.rebuild(uploaded)
            profile = ImageCms.ImageCmsProfile(io.BytesIO(served.info["icc_profile"]))  # a profile lcms reads
            assert ImageCms.getProfileDescription(profile).strip() == "RGB"


def test_a_rewritten_profile_keeps_the_colours_of_the_original():
    import io

    from PIL import Image, ImageCms

    from chalicelib.inspection import icc

    wide = icc.matrix_profile(icc.xyz_tag(0.9642, 1.0, 0.8249), (
        icc.xyz_tag(0.5151, 0.2412, -0.0011), icc.xyz_tag(0.2920, 0.6922, 0.0419), icc.xyz_tag(0.1571, 0.0666, 0.7841)),
        (icc.gamma_tag(2.2), icc.gamma_tag(2.2), icc.gamma_tag(2.2)), name=b"Display P3 of John Smith")
    rewritten = icc.rebuild(wide)
    assert rewritten is not None and b"John Smith" not in rewritten
    srgb = ImageCms.createProfile("sRGB")
    pixel = Image.new("RGB", (1, 1), (200, 100, 50))
    as_uploaded, as_served = (ImageCms.applyTransform(pixel, ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(p)), srgb, "RGB", "RGB")).getpixel((0, 0)) for p in (wide, rewritten))
    assert as_uploaded == as_served != (200, 100, 50)
    for broken in (wide[:200], wide.replace(b"acsp", b"xxxx"), wide.replace(b"curv", b"junk")):
        assert icc.rebuild(broken) is None


def test_a_png_of_many_profiles_is_read_with_its_first_one_only():
    """Pillow inflates every iCCP chunk (up to 1 MiB each): 10 MB of them took 5.7 s."""
    import io
    import struct
    import zlib

    from PIL import Image

    from chalicelib.inspection import images

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(out, "PNG")
    png = out.getvalue()
    profile = chunk(b"iCCP", b"p\0\0" + zlib.compress(b"\0" * 1000))
    data = png[:33] + profile * 50 + png[33:]  # after IHDR
    kept = images.png_for_decoding(data)
    assert kept.count(b"iCCP") == 1 and len(kept) == len(png) + len(profile)
    assert Image.open(io.BytesIO(kept)).convert("RGB").getpixel((4, 4)) == (10, 200, 10)
