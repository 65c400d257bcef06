"""Hostile uploads end to end over moto: a file name that would make a saved video run as a page,
and an upload form whose field names repeat in another case. Every file is made here."""
from __future__ import annotations

import boto3
import pytest
import requests

from chalicelib.adapters.memory import MemoryEvidenceStore
from tests import media
from tests.integration.test_evidence import api, dispute, uploads
from tests.media import jpeg, png

BUCKET = "buyer-protection-evidence"
HTML = b"<html><script>alert(document.domain)</script></html>"


__all__ = ["api", "uploads", "dispute"]  # the evidence tests' fixtures, used here too


def mp4_with_html_in_its_media() -> bytes:
    """A real MP4 whose media data starts with a page: served as it is (media is never rewritten)."""
    data = media.mp4(gps=False)
    at = data.index(b"mdat") + 4
    return data[:at] + HTML + data[at + len(HTML):]


def served_objects(dispute_id: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"evidence/{dispute_id}/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_a_video_in_a_slot_named_html_is_saved_as_mp4(uploads, dispute):
    e = uploads.upload(dispute, mp4_with_html_in_its_media(), "video/mp4", file_name="unboxing.html")
    assert e["status"] == "ACCEPTED", e
    served = requests.get(e["download_url"], timeout=30)
    assert served.status_code == 200 and HTML in served.content  # why the name matters
    assert served.headers["Content-Type"] == "video/mp4"
    assert served.headers["Content-Disposition"] == 'attachment; filename="unboxing.mp4"'


@pytest.mark.parametrize("file_name, data, content_type, disposition", [
    ("photo.svg", jpeg(), "image/jpeg", 'inline; filename="photo.jpg"'),
    ("scan.html", png(), "image/png", 'inline; filename="scan.png"'),
    ("clip", media.mp4(gps=False, brand=b"qt  "), "video/quicktime", 'attachment; filename="clip.mov"'),
    ("invoice.pdf.exe", media.pdf_with_javascript(), "application/pdf", 'attachment; filename="invoice.pdf"'),
], ids=["svg name, jpeg", "html name, png", "no extension, quicktime", "exe name, pdf"])
def test_the_download_name_takes_the_extension_of_the_verified_type(uploads, dispute, file_name, data, content_type,
                                                                    disposition):
    e = uploads.upload(dispute, data, content_type, file_name=file_name)
    assert e["status"] == "ACCEPTED", e
    served = requests.get(e["download_url"], timeout=30)
    assert (served.status_code, served.headers["Content-Type"]) == (200, content_type)
    assert served.headers["Content-Disposition"] == disposition


def test_the_in_memory_store_names_links_the_same_way():
    link = MemoryEvidenceStore().download_url("evidence/d/e/x", "unboxing.html", 900, "video/mp4", False)
    assert "name=unboxing.mp4&type=video/mp4" in link and "html" not in link


def test_an_upload_form_with_a_field_name_repeated_in_another_case_is_refused(uploads, dispute):
    photo = jpeg()
    other = uploads.upload(dispute, photo)
    assert other["status"] == "ACCEPTED", other
    before = served_objects(dispute)
    target = next(k for k in before if k.startswith(f"evidence/{dispute}/{other['evidence_id']}/"))
    slot = uploads.slot(dispute, photo, "image/jpeg").json_body
    fields = slot["upload"]["fields"]
    signed = [(k, v) for k, v in fields.items() if k != "key"]
    hostile = b"<script>alert(1)</script>"
    attempts = {
        # the served file's key first, the signed key under another case last
        "key, then KEY": [("key", target), *signed, ("KEY", fields["key"])],
        "KEY, then key": [("KEY", target), *signed, ("key", fields["key"])],
        "key twice": [("key", target), *signed, ("key", fields["key"])],
        "Content-Type twice": [("key", fields["key"]), *signed, ("content-type", "text/html")],
    }
    for label, form in attempts.items():
        r = requests.post(slot["upload"]["url"], data=form, files={"file": ("x", hostile)}, timeout=30)
        assert (r.status_code, "InvalidArgument" in r.text) == (400, True), (label, r.status_code, r.text)
    # Only KEY, the signed value: moto writes under `key` alone, so the key checked is empty.
    only_upper = [*signed, ("KEY", fields["key"])]
    r = requests.post(slot["upload"]["url"], data=only_upper, files={"file": ("x", hostile)}, timeout=30)
    assert r.status_code == 403
    assert uploads.deliver() == 0 and served_objects(dispute) == before
    assert uploads.listed(dispute, slot["evidence_id"])["status"] == "PENDING_UPLOAD"
    # The form as it was given still works.
    assert uploads.post(slot["upload"], photo) in (200, 204)
    uploads.deliver()
    assert uploads.listed(dispute, slot["evidence_id"])["status"] == "ACCEPTED"
