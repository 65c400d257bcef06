"""Peak memory and time of evidence processing on the worst input allowed of every kind.

Each file is the largest (in pixels, or in bytes) that the checks accept for its format and mode,
within its type's size limit (``chalicelib.domain.evidence.LIMITS``), made here; each is
processed in a fresh Python process, whose peak resident memory (``ru_maxrss`` of the child,
which counts Pillow's and libwebp's C allocations too) and time are reported next to a child
that only imports the same modules and reads the file (the floor).
Every result is checked: accepted files must come back cleaned, refused ones with their code.
Goal: every peak at most 256 MB, so the evidence function fits in 512 MB.

    make bench        (or: python -m bench.evidence_memory)
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GOAL_MB = 256
REPETITIONS = 3
RESULTS = Path(__file__).parent / "results" / "evidence_memory.json"


def _exif(orientation: int) -> Any:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}
    return exif


def _texture(size: tuple[int, int], mode: str = "RGB") -> Any:
    """Something that compresses like a photo at a fraction of the cost of making one."""
    from PIL import Image

    tile = Image.merge("RGB", [Image.effect_noise((512, 512), 30 + 10 * i) for i in range(3)])
    image = Image.new("RGB", size)
    for x in range(0, size[0], 512):
        for y in range(0, size[1], 512):
            image.paste(tile, (x, y))
    return image if mode == "RGB" else image.convert(mode)


def _save(image: Any, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _within(limit: int, image: Any, fmt: str, **options: object) -> bytes:
    """The image at the highest JPEG quality (70 down to 20) whose file fits the type's limit."""
    for quality in range(70, 10, -10):
        data = _save(image, fmt, quality=quality, **options)
        if len(data) <= limit:
            return data
    raise ValueError("does not fit")


def _fit(pixels: int, ratio: float = 1.0) -> tuple[int, int]:
    width = int(math.sqrt(pixels * ratio))
    return width, pixels // width


def _png_side(mode: str) -> tuple[int, int]:
    from chalicelib.inspection import images

    return _fit(min(images.MAX_PIXELS, int(images.DECODE_BUDGET / images.PNG_BYTES_PER_PIXEL[mode])))


def worst_cases() -> list[tuple[str, str, Callable[[], bytes], str | None]]:
    """(label, content type, maker, expected rejection or None). Made in a child process: the
    parent stays small, since a child's ru_maxrss starts from its parent's at the fork."""
    from PIL import Image

    from chalicelib.domain.evidence import LIMITS
    from chalicelib.inspection import images, pdf, video
    from tests import hostile_images as hostile
    from tests.hostile_pdf import pdf_at_every_limit, pdf_with_object_streams
    from tests.media import many_boxes_mp4

    mp64 = (8000, 8000)
    photo_limit = LIMITS["image/jpeg"]
    webp = _fit(int(images.DECODE_BUDGET / images.WEBP_BYTES_PER_PIXEL))
    # A progressive JPEG keeps 2 bytes per DCT coefficient: 6 per pixel at 4:4:4, 3 at 4:2:0.
    prog444 = _fit(int(images.DECODE_BUDGET / (6 * images.PROGRESSIVE_OVERHEAD)) - 100_000)
    prog420 = _fit(int(images.DECODE_BUDGET / (3 * images.PROGRESSIVE_OVERHEAD)) - 200_000)
    # Components in separate scans keep every coefficient too: 6 bytes per pixel for 3, 8 for 4 (CMYK).
    scans3 = prog444
    scans4 = _fit(int(images.DECODE_BUDGET / (8 * images.PROGRESSIVE_OVERHEAD)) - 100_000)
    max_scans, max_segments = images.MAX_JPEG_SCANS, images.MAX_JPEG_SEGMENTS
    rgba = _png_side("RGBA")

    def many_scans(scans: int) -> Callable[[], bytes]:
        return lambda: hostile.jpeg_with_scans(
            _save(Image.new("RGB", prog444, (90, 120, 200)), "JPEG", progressive=True, subsampling=0), scans)

    def app_padding() -> bytes:
        small = _save(Image.new("RGB", (64, 64)), "JPEG")
        count = max_segments - hostile.jpeg_segment_count(small)
        payload = min(65533, (photo_limit - len(small)) // count - 4)
        return hostile.jpeg_with_app_segments(small, count, payload)

    def png_max_text() -> bytes:
        """RGBA at its budget, turned by the EXIF held as text; the largest orientation text kept
        (EXIF and XMP, about 1 MiB each decompressed), then 1 MiB comments up to the size limit."""
        base = hostile.png_with_chunks(
            _save(Image.new("RGBA", rgba), "PNG"),
            hostile.png_raw_exif_profile(6, padding=500_000)
            + hostile.png_itxt_xmp(b"<x:xmpmeta>" + b" " * 1_000_000 + b"</x:xmpmeta>"))
        count = (photo_limit - len(base)) // len(hostile.png_comments(1))
        return hostile.png_with_chunks(base, hostile.png_comments(count))

    def png(mode: str, **extra: object) -> Callable[[], bytes]:
        return lambda: _save(Image.new(mode, _png_side(mode)), "PNG", exif=_exif(6), **extra)

    return [
        ("JPEG 64 MP baseline, rotated", "image/jpeg",
         lambda: _within(photo_limit, _texture(mp64), "JPEG", exif=_exif(6)), None),
        ("JPEG 64 MP CMYK", "image/jpeg", lambda: _save(Image.new("CMYK", mp64, (10, 20, 30, 0)), "JPEG"), None),
        ("JPEG 64 MP greyscale, rotated", "image/jpeg",
         lambda: _save(Image.new("L", mp64, 80), "JPEG", exif=_exif(8)), None),
        (f"JPEG progressive 4:4:4 {prog444[0]}x{prog444[1]}, rotated", "image/jpeg",
         lambda: _within(photo_limit, _texture(prog444), "JPEG", progressive=True, subsampling=0, exif=_exif(6)),
         None),
        (f"JPEG progressive 4:2:0 {prog420[0]}x{prog420[1]}", "image/jpeg",
         lambda: _save(_texture(prog420), "JPEG", quality=50, progressive=True, subsampling=2), None),
        ("JPEG progressive 4:4:4 64 MP (over budget)", "image/jpeg",
         lambda: _save(Image.new("RGB", mp64), "JPEG", progressive=True, subsampling=0), "DECOMPRESSION_BOMB"),
        (f"JPEG baseline, 3 components in separate scans {scans3[0]}x{scans3[1]}", "image/jpeg",
         lambda: hostile.jpeg_components_in_separate_scans(*scans3, 3), None),
        (f"JPEG baseline CMYK, components in separate scans {scans4[0]}x{scans4[1]}", "image/jpeg",
         lambda: hostile.jpeg_components_in_separate_scans(*scans4, 4), None),
        ("JPEG baseline, components in separate scans 64 MP (over budget)", "image/jpeg",
         lambda: hostile.jpeg_components_in_separate_scans(*mp64, 3), "DECOMPRESSION_BOMB"),
        (f"JPEG progressive {prog444[0]}x{prog444[1]}, {max_scans} scans", "image/jpeg", many_scans(max_scans), None),
        (f"JPEG progressive, {max_scans + 1} scans (too many)", "image/jpeg", many_scans(max_scans + 1),
         "CORRUPT_IMAGE"),
        (f"JPEG 64x64 after {max_segments} segments of APP5, 10 MiB", "image/jpeg", app_padding, None),
        ("JPEG 64x64 after 2.6 million empty APP5 segments (too many)", "image/jpeg",
         lambda: hostile.jpeg_with_app_segments(_save(Image.new("RGB", (64, 64)), "JPEG"),
                                                (photo_limit - 1000) // 4), "CORRUPT_IMAGE"),
        (f"PNG RGB {_png_side('RGB')[0]}x{_png_side('RGB')[1]}, rotated", "image/png", png("RGB"), None),
        (f"PNG RGBA {_png_side('RGBA')[0]}x{_png_side('RGBA')[1]}, rotated", "image/png", png("RGBA"), None),
        (f"PNG paletted + transparency {_png_side('P')[0]}x{_png_side('P')[1]}", "image/png",
         png("P", transparency=0), None),
        (f"PNG 16-bit grey {_png_side('I;16')[0]}x{_png_side('I;16')[1]}", "image/png", png("I;16"), None),
        (f"PNG grey {_png_side('L')[0]}x{_png_side('L')[1]}, rotated", "image/png", png("L"), None),
        (f"PNG 1-bit {_png_side('1')[0]}x{_png_side('1')[1]}", "image/png", png("1"), None),
        (f"PNG grey + alpha {_png_side('LA')[0]}x{_png_side('LA')[1]}", "image/png", png("LA"), None),
        (f"PNG RGBA {rgba[0]}x{rgba[1]} + 10 MiB of text, rotated by its text EXIF", "image/png",
         png_max_text, None),
        ("PNG 8000x8000 RGB, rotated (over budget)", "image/png",
         lambda: _save(Image.new("RGB", mp64), "PNG", exif=_exif(6)), "DECOMPRESSION_BOMB"),
        (f"WebP lossless {webp[0]}x{webp[1]}, rotated", "image/webp",
         lambda: _save(Image.new("RGB", webp, (9, 9, 9)), "WEBP", lossless=True, exif=_exif(6)), None),
        (f"WebP lossy + alpha {webp[0]}x{webp[1]}", "image/webp",
         lambda: _save(_texture(webp, "RGBA"), "WEBP", quality=50), None),
        ("WebP lossless 8000x8000 (the 90-byte file)", "image/webp",
         lambda: _save(Image.new("RGB", mp64), "WEBP", lossless=True, exif=_exif(6)), "DECOMPRESSION_BOMB"),
        ("PDF 10 MB, 2000 pages", "application/pdf", _big_pdf, None),
        ("PDF of object streams unpacking to every limit (strings, numbers)", "application/pdf",
         pdf_at_every_limit, None),
        ("PDF of object streams unpacking past the budget", "application/pdf",
         lambda: pdf_with_object_streams([b"(" + b"a" * (pdf.MAX_STRING - 64) + b")"] * 40), "PDF_TOO_COMPLEX"),
        ("MP4 50 MB", "video/mp4", _big_mp4, None),
        (f"MP4 50 MB of {video.MAX_BOXES} boxes, every one blanked", "video/mp4",
         lambda: many_boxes_mp4(video.MAX_BOXES, LIMITS["video/mp4"], inside_moov=True), None),
        (f"MP4 of {video.MAX_BOXES + 1} tiny boxes (too many)", "video/mp4",
         lambda: many_boxes_mp4(video.MAX_BOXES + 1), "CORRUPT_VIDEO"),
    ]


def _big_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(2000):
        writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    body = out.getvalue()
    pad = 10 * 1024 * 1024 - len(body) - 64
    return body + b"%" + b"0" * pad + b"\n"


def _big_mp4() -> bytes:
    from tests.media import mp4

    return mp4(mdat_bytes=50 * 1024 * 1024 - 4096, gps=True)


CHILD = """
import resource, sys, time, json
from chalicelib.domain.evidence import LIMITS
from chalicelib.inspection import inspect, install
install()
path, content_type, run = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
data = open(path, "rb").read()
start = time.perf_counter()
result = inspect(data, content_type, len(data), LIMITS[content_type]) if run else None
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rejection": result.rejection if result else None,
                  "served": len(result.clean) if result and result.clean else 0}))
"""


ROOT = Path(__file__).resolve().parent.parent


def child(path: str, content_type: str, run: bool) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, path, content_type, "1" if run else "0"],
                         capture_output=True, text=True, timeout=600, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def maker(*args: str) -> Any:
    """Runs this module in a child: ``--list`` the cases, or ``--make <n> <path>`` one file."""
    out = subprocess.run([sys.executable, "-m", "bench.evidence_memory", *args], capture_output=True, text=True,
                         timeout=600, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    rows, failures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (label, content_type, expected) in enumerate(maker("--list")):
            path = os.path.join(tmp, "input")
            size = maker("--make", str(n), path)
            floor = child(path, content_type, run=False)
            runs = [child(path, content_type, run=True) for _ in range(REPETITIONS)]
            peaks = [int(str(r["peak_kb"])) / 1024 for r in runs]
            seconds = [float(str(r["seconds"])) for r in runs]
            outcome = {r["rejection"] for r in runs}
            ok = outcome == {expected} and (expected is not None or all(int(str(r["served"])) > 0 for r in runs))
            if not ok:
                failures.append(f"{label}: expected {expected}, got {outcome}")
            if max(peaks) > GOAL_MB:
                failures.append(f"{label}: peak {max(peaks):.0f} MB over {GOAL_MB} MB")
            rows.append({"input": label, "content_type": content_type, "bytes": size,
                         "outcome": expected or "ACCEPTED", "peak_mb_max": round(max(peaks), 1),
                         "peak_mb_median": round(statistics.median(peaks), 1),
                         "floor_mb": round(int(str(floor["peak_kb"])) / 1024, 1),
                         "seconds_median": round(statistics.median(seconds), 3),
                         "seconds_min": round(min(seconds), 3), "seconds_max": round(max(seconds), 3)})
            print(f"{label:55} {expected or 'ACCEPTED':20} peak {max(peaks):6.1f} MB "
                  f"(floor {rows[-1]['floor_mb']:5.1f}) {statistics.median(seconds):6.2f} s", flush=True)
    report = {"benchmark": "evidence_memory", "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "machine": {"platform": platform.platform(), "processor": platform.machine(),
                          "cpus": os.cpu_count(), "python": platform.python_version()},
              "method": ("each input processed by chalicelib.inspection.inspect in a fresh Python process; "
                         "peak = ru_maxrss of that child (C allocations included); floor = a child that imports "
                         "the same modules and reads the file; time = inspect() alone (perf_counter)"),
              "repetitions": REPETITIONS, "goal_peak_mb": GOAL_MB,
              "worst_peak_mb": max(r["peak_mb_max"] for r in rows),
              "worst_seconds": max(r["seconds_max"] for r in rows),
              "results": rows, "failures": failures}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"worst peak {report['worst_peak_mb']} MB, worst time {report['worst_seconds']} s -> {RESULTS.name}")
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--list"]:
        print(json.dumps([(label, content_type, expected) for label, content_type, _, expected in worst_cases()]))
    elif sys.argv[1:2] == ["--make"]:
        data = worst_cases()[int(sys.argv[2])][2]()
        Path(sys.argv[3]).write_bytes(data)
        print(json.dumps(len(data)))
    else:
        sys.exit(main())
