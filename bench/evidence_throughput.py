"""Evidence processing throughput on 12 MP phone-like JPEGs, next to Pillow alone.

Ours: what the S3-triggered handler does to a photo's bytes (sniff the type, SHA-256, decode with
the bomb guard, apply the EXIF orientation, re-encode without EXIF/GPS, make a thumbnail).
Baseline, measured in the same run on the same files: Pillow decoding and re-encoding alone.
Reported as MB/s, files/s, and the ratio ours / baseline (machines are noisy; ratios travel).

    make bench        (or: python -m bench.evidence_throughput)
"""
from __future__ import annotations

import io
import statistics
import sys
import time

from PIL import Image

from bench.report import expect, spread, write
from chalicelib.inspection import inspect

FILES = 6
ROUNDS = 3


def phone_photo(seed: int) -> bytes:
    """A 4000 x 3000 JPEG with texture (so it compresses like a photo) and GPS EXIF."""
    noise = Image.effect_noise((4000, 3000), 40 + seed)
    gradient = Image.linear_gradient("L").resize((4000, 3000))
    image = Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5)))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 6  # rotated, as phones often store portrait photos
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def baseline(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    image.load()
    image.save(io.BytesIO(), "JPEG", quality=90)


def ours(data: bytes) -> None:
    result = inspect(data, "image/jpeg", len(data), 10 * 1024 * 1024)
    expect(result.rejection is None and bool(result.clean) and bool(result.thumbnail),
           f"a phone photo was not accepted: {result.rejection}")


def measure(fn, files: list[bytes]) -> float:
    start = time.perf_counter()
    for data in files:
        fn(data)
    return time.perf_counter() - start


def main() -> int:
    files = [phone_photo(i) for i in range(FILES)]
    megabytes = sum(len(f) for f in files) / 1e6
    runs: dict[str, list[float]] = {"baseline": [], "ours": []}
    for _ in range(ROUNDS):  # interleaved, so drift on a noisy machine hits both alike
        runs["baseline"].append(measure(baseline, files))
        runs["ours"].append(measure(ours, files))
    base, mine = statistics.median(runs["baseline"]), statistics.median(runs["ours"])
    print(f"{FILES} JPEGs of 12 MP, {megabytes / FILES:.1f} MB each, median of {ROUNDS} interleaved rounds")
    print("| pipeline | MB/s | files/s |")
    print("|---|---|---|")
    print(f"| Pillow decode + re-encode alone (baseline) | {megabytes / base:.1f} | {FILES / base:.2f} |")
    print(f"| evidence processing (sniff, SHA-256, orient, strip, re-encode, thumbnail) | "
          f"{megabytes / mine:.1f} | {FILES / mine:.2f} |")
    print(f"ratio ours / baseline throughput: {base / mine:.2f}")
    write("evidence_throughput",
          method=("the evidence pipeline (sniff, SHA-256, bomb guard, orient, strip metadata, re-encode, thumbnail) "
                  "and, as the baseline, Pillow's decode + re-encode alone, on the same 12 MP JPEGs with EXIF "
                  "(GPS, portrait orientation), interleaved rounds, one core, seconds per round of all files"),
          repetitions={"files": FILES, "rounds": ROUNDS},
          results={"ours_seconds_per_round": spread(runs["ours"]), "baseline_seconds_per_round": spread(runs["baseline"]),
                   "ours_mb_per_s": round(megabytes / mine, 1), "baseline_mb_per_s": round(megabytes / base, 1),
                   "ours_files_per_s": round(FILES / mine, 2), "baseline_files_per_s": round(FILES / base, 2),
                   "mb_per_file": round(megabytes / FILES, 1)},
          ratio_ours_over_baseline_throughput=round(base / mine, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
