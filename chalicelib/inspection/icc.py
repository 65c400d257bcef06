"""ICC profiles as this service writes them, never as uploaded.

A photo's profile is the uploader's bytes: its text tags (description, copyright, device names)
can hold anything, and nothing makes it a profile at all. What a viewer needs of the RGB profiles
phones and cameras embed (a matrix/TRC profile: Display P3, Adobe RGB, sRGB) is numbers: the white
point, three colorants and three tone curves. Those are read, checked and written into a new
profile with fixed text; anything else is no profile to serve (images.to_srgb converts its pixels
instead, or ignores what does not read as a profile).
"""
from __future__ import annotations

import struct

HEADER = 128
MAX_TAGS = 64
MAX_CURVE_POINTS = 4096
COLORANTS = (b"rXYZ", b"gXYZ", b"bXYZ")
CURVES = (b"rTRC", b"gTRC", b"bTRC")
# Parameters of each parametric curve function type (ICC.1 10.18).
PARAMETRIC = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}
D50 = (0.9642, 1.0, 0.8249)


def _s15(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def gamma_tag(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"


def matrix_profile(white: bytes, colorants: tuple[bytes, bytes, bytes], curves: tuple[bytes, bytes, bytes],
                   name: bytes = b"RGB") -> bytes:
    """A version 2 display profile of these tags (already checked), with fixed text."""
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name) + 1) + name + b"\0" + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0No copyright\0"), (b"wtpt", white),
            *zip(COLORANTS, colorants, strict=True), *zip(CURVES, curves, strict=True)]
    offset = HEADER + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    body = struct.pack(">I", len(tags)) + table + data
    header = (struct.pack(">I", HEADER + len(body)) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(D50[0]) + _s15(D50[1]) + _s15(D50[2]) + b"\0" * 48)
    return header + body


def _tags(profile: bytes) -> dict[bytes, bytes] | None:
    """The tags of an RGB display profile with an XYZ connection space, or None."""
    if len(profile) < HEADER + 4 or profile[36:40] != b"acsp" or profile[16:24] != b"RGB XYZ ":
        return None
    (count,) = struct.unpack(">I", profile[HEADER:HEADER + 4])
    if count > MAX_TAGS or HEADER + 4 + 12 * count > len(profile):
        return None
    tags = {}
    for i in range(count):
        signature, offset, size = struct.unpack(">4sII", profile[HEADER + 4 + 12 * i:HEADER + 16 + 12 * i])
        if offset + size > len(profile):
            return None
        tags[signature] = profile[offset:offset + size]
    return tags


def _xyz(tag: bytes | None) -> bool:
    return tag is not None and len(tag) >= 20 and tag[:4] == b"XYZ "


def _curve(tag: bytes | None) -> bytes | None:
    """The curve tag trimmed to its own length, if it is one."""
    if tag is None or len(tag) < 12:
        return None
    if tag[:4] == b"curv":
        (points,) = struct.unpack(">I", tag[8:12])
        size = 12 + 2 * points
        return tag[:size] if points <= MAX_CURVE_POINTS and len(tag) >= size else None
    if tag[:4] == b"para":
        (function,) = struct.unpack(">H", tag[8:10])
        size = 12 + 4 * PARAMETRIC.get(function, 99)
        return tag[:size] if function in PARAMETRIC and len(tag) >= size else None
    return None


def rebuild(profile: bytes) -> bytes | None:
    """A new profile with the numbers of ``profile`` (a matrix/TRC RGB profile), or None."""
    tags = _tags(profile)
    if tags is None or not all(_xyz(tags.get(t)) for t in (b"wtpt", *COLORANTS)):
        return None
    curves = tuple(_curve(tags.get(t)) for t in CURVES)
    if any(c is None for c in curves):
        return None
    white, r, g, b = (tags[t][:20] for t in (b"wtpt", *COLORANTS))
    return matrix_profile(white, (r, g, b), (curves[0] or b"", curves[1] or b"", curves[2] or b""))
