"""MP4/QuickTime under hostile files: a bounded walk however many boxes, an allowlist of what a
player needs, nothing else served. Every file is made here."""
from __future__ import annotations

import struct
import tracemalloc

import pytest

from chalicelib.inspection import inspect, metadata, video
from tests import media
from tests.media import COORDINATES, FTYP, MVHD, box, full_box, many_boxes_mp4

MIB = 1024 * 1024
XYZ = box(b"\xa9xyz", struct.pack(">HH", 18, 0) + b"+" + COORDINATES)
LOCI = full_box(b"loci", b"\x15\xc7Paris\x00" + struct.pack(">III", 0x00025B, 0x30D8, 0) + b"Earth\x00\x00")


def run(data: bytes, content_type: str = "video/mp4"):
    return inspect(data, content_type, len(data), 50 * MIB)


def track(stbl_extra: bytes = b"", trak_extra: bytes = b"", minf_extra: bytes = b"",
          handler_name: bytes = b"Core Media Video\x00", sample_entries: bytes = b"") -> bytes:
    hdlr = full_box(b"hdlr", b"\x00" * 4 + b"vide" + b"\x00" * 12 + handler_name)
    stsd = full_box(b"stsd", struct.pack(">I", 1 if sample_entries else 0) + sample_entries)
    stbl = box(b"stbl", stsd + full_box(b"stco", struct.pack(">II", 1, 64))
               + stbl_extra)
    minf = box(b"minf", full_box(b"vmhd", b"\x00" * 8) + minf_extra + stbl)
    return box(b"trak", full_box(b"tkhd", b"\x00" * 80) + box(b"mdia", full_box(b"mdhd", b"\x00" * 20) + hdlr + minf)
               + trak_extra)


def movie(moov_children: bytes, after: bytes = b"") -> bytes:
    return FTYP + box(b"moov", MVHD + moov_children) + box(b"mdat", bytes(range(256)) * 4) + after


def payload_of(data: bytes, kind: bytes) -> bytes:
    """The payload of the first box of ``kind`` found by a byte search (in the original file)."""
    at = data.index(kind) - 4
    size = struct.unpack(">I", data[at:at + 4])[0]
    return data[at + 8:at + size]


# ---- 1. many boxes: counted while read, refused past the cap, memory flat ------------------------

@pytest.mark.parametrize("inside_moov", [False, True], ids=["top level", "in moov"])
def test_boxes_past_the_cap_are_refused_as_corrupt_at_any_level(inside_moov):
    at_cap = many_boxes_mp4(video.MAX_BOXES, inside_moov=inside_moov)
    served = run(at_cap)
    assert served.rejection is None and served.clean is not None
    assert served.clean.count(b"free") == video.MAX_BOXES - 3 and metadata.video_is_clean(served.clean)
    assert run(many_boxes_mp4(video.MAX_BOXES + 1, inside_moov=inside_moov)).rejection == "CORRUPT_VIDEO"


def test_boxes_past_the_cap_in_a_track_are_refused_too():
    frees = struct.pack(">I4s", 8, b"free") * video.MAX_BOXES
    assert run(movie(track(stbl_extra=frees))).rejection == "CORRUPT_VIDEO"


def test_memory_does_not_grow_with_the_number_of_boxes():
    def extra_memory(data: bytes) -> int:
        tracemalloc.start()
        try:
            assert video.check_and_clean(data)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    few = many_boxes_mp4(100, total_bytes=1_600_000)
    many = many_boxes_mp4(20_000, total_bytes=1_600_000)
    assert len(few) == len(many) == 1_600_000
    # One copy of the file, whatever the number of boxes (a list of 20 000 boxes is about 5 MB).
    used = extra_memory(many)
    assert used < len(many) + 256 * 1024
    assert used - extra_memory(few) < 64 * 1024


# ---- 2. an allowlist: only what a player needs is served -------------------------------------------

def test_location_outside_udta_meta_and_uuid_is_blanked_wherever_it_is():
    stale = box(b"free", box(b"udta", XYZ))  # what in-place metadata editors leave behind
    original = movie(XYZ + LOCI + stale + track(stbl_extra=XYZ, trak_extra=LOCI, minf_extra=box(b"udta", XYZ)),
                     after=box(b"skip", b"taken at " + COORDINATES) + box(b"wide") + box(b"pnot", b"\x00" * 12))
    assert original.count(COORDINATES) == 5 and b"Paris" in original
    assert not metadata.video_is_clean(original)
    result = run(original)
    assert result.rejection is None and result.clean is not None
    clean = result.clean
    assert len(clean) == len(original)  # blanked in place: every sample offset holds
    for tag in (COORDINATES, b"Paris", *metadata.VIDEO_TAGS):
        assert tag not in clean, tag
    assert metadata.video_is_clean(clean)
    assert video.top_level_types(clean) == [b"ftyp", b"moov", b"mdat", b"free", b"free", b"free"]
    kept = {b"mvhd", b"trak", b"tkhd", b"mdia", b"mdhd", b"hdlr", b"minf", b"vmhd", b"stbl", b"stsd", b"stco"}
    assert kept <= set(video.all_types(clean))
    mdat = original.index(b"mdat") - 4
    assert clean[mdat:mdat + 1032] == original[mdat:mdat + 1032]  # the media data is untouched
    stco = original.index(b"stco")
    assert clean[stco - 4:stco + 16] == original[stco - 4:stco + 16]


def test_header_times_handler_names_and_data_references_are_zeroed():
    created = struct.pack(">II", 3_800_000_000, 3_800_000_100)  # 2024, in seconds since 1904
    mvhd = full_box(b"mvhd", created + b"\x00" * 88)
    dref = full_box(b"dref", struct.pack(">I", 1) + full_box(b"url ", b"file:///Users/alice/Home/clip.mov\x00"))
    trak = track(minf_extra=box(b"dinf", dref), handler_name=b"Alice's phone\x00")
    original = FTYP + box(b"moov", mvhd + trak) + box(b"mdat", b"\x00" * 64)
    result = run(original)
    assert result.rejection is None and result.clean is not None
    clean = result.clean
    assert created not in clean and b"alice" not in clean.lower() and b"phone" not in clean
    assert {b"mvhd", b"dinf", b"dref"} <= set(video.all_types(clean)) and b"url " in clean
    assert payload_of(clean, b"url ") == bytes(len(payload_of(original, b"url ")))
    assert payload_of(clean, b"hdlr")[8:12] == b"vide"  # the handler type stays, its name goes


def test_a_fragmented_mp4_keeps_its_fragments_and_loses_their_user_data():
    trex = full_box(b"trex", struct.pack(">IIIII", 1, 1, 0, 0, 0))
    traf = box(b"traf", full_box(b"tfhd", struct.pack(">I", 1)) + full_box(b"trun", struct.pack(">I", 0))
               + box(b"udta", XYZ))
    moof = box(b"moof", full_box(b"mfhd", struct.pack(">I", 1)) + traf)
    original = FTYP + box(b"moov", MVHD + track() + box(b"mvex", trex) + box(b"udta", XYZ)) + moof \
        + box(b"mdat", b"\x00" * 64)
    result = run(original)
    assert result.rejection is None and result.clean is not None
    assert {b"mvex", b"trex", b"moof", b"mfhd", b"traf", b"tfhd", b"trun"} <= set(video.all_types(result.clean))
    assert COORDINATES not in result.clean and b"udta" not in result.clean


def test_a_location_left_in_a_table_that_is_kept_is_refused_not_served():
    # stsd is kept as it is (codec settings): the copy read back still holds the atom.
    original = movie(track(sample_entries=XYZ))
    assert XYZ in original and run(movie(track())).rejection is None
    assert run(original).rejection == "VIDEO_NOT_CLEANABLE"


def test_the_read_back_check_refuses_what_the_cleaning_never_serves():
    clean = run(movie(track())).clean
    assert clean is not None and metadata.video_is_clean(clean)
    assert not metadata.video_is_clean(movie(track(), after=box(b"free", b"\x01")))  # a free box not zeroed
    assert not metadata.video_is_clean(movie(track() + box(b"iods", b"\x00" * 8)))  # a box no player needs
    assert not metadata.video_is_clean(clean[:-1])  # sizes that do not add up


def test_a_quicktime_movie_keeps_playing_boxes_and_loses_its_user_data():
    original = media.mp4(brand=b"qt  ", moov_first=False)
    result = run(original, "video/quicktime")
    assert result.rejection is None and result.clean is not None
    assert COORDINATES not in result.clean and metadata.video_is_clean(result.clean)
    assert len(result.clean) == len(original)
