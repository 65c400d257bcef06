"""Evidence end to end over moto: presigned POST uploads, S3 events, real files made here."""
from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from tests.integration.api import BUYER, MODERATOR, SELLER, Api
from tests.integration.evidence import Uploads, jpeg, png


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def uploads(api, aws):
    from app import app

    return Uploads(api, app, aws)


@pytest.fixture
def dispute(api):
    api.delivered_order()
    return api.open_dispute()["dispute_id"]


def accepted_count(api, did):
    return sum(e["status"] == "ACCEPTED" for e in api.get(f"/disputes/{did}/evidence").json_body["items"])


def test_a_phone_photo_with_gps_is_accepted_and_served_without_exif(api, uploads, dispute):
    original = jpeg((400, 300), gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825), "the test photo carries GPS"
    e = uploads.upload(dispute, original)
    assert e["status"] == "ACCEPTED", e
    import hashlib

    assert e["sha256"] == hashlib.sha256(original).hexdigest()
    served = requests.get(e["download_url"], timeout=10)
    assert served.status_code == 200
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "JPEG" and image.size == (400, 300)
    assert not image.getexif() and b"Exif" not in served.content[:4096]
    thumb = Image.open(io.BytesIO(requests.get(e["thumbnail_url"], timeout=10).content))
    assert max(thumb.size) <= 512
    # The other party and moderators see it too; strangers do not.
    assert api.get(f"/disputes/{dispute}/evidence", SELLER).json_body["items"][0]["status"] == "ACCEPTED"
    assert api.get(f"/disputes/{dispute}/evidence", MODERATOR).status_code == 200
    assert api.get(f"/disputes/{dispute}/evidence", ("x-1",)).status_code == 404


def test_the_upload_policy_pins_key_type_and_size(api, uploads, dispute):
    r = uploads.slot(dispute, b"x" * 1000, "image/png", file_name="a.png")
    assert r.status_code == 201
    slot = r.json_body
    import base64
    import json

    policy = json.loads(base64.b64decode(slot["upload"]["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": f"uploads/{dispute}/{slot['evidence_id']}"} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 10 * 1024 * 1024] in conditions
    assert slot["status"] == "PENDING_UPLOAD" and slot["upload"]["expires_at"]


def bad_files():
    good = jpeg((200, 150))
    truncated = good[: len(good) // 2]
    bomb = io.BytesIO()
    Image.new("1", (9000, 9000)).save(bomb, "PNG")  # 81 MP, a few KB compressed
    return [
        ("text named .jpg", b"just some text, not a photo at all", "image/jpeg", "UNRECOGNIZED_CONTENT"),
        ("PNG declared as JPEG", png(), "image/jpeg", "TYPE_MISMATCH"),
        ("truncated JPEG", truncated, "image/jpeg", "CORRUPT_IMAGE"),
        ("decompression bomb", bomb.getvalue(), "image/png", "DECOMPRESSION_BOMB"),
        ("PDF without its end", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf", "CORRUPT_PDF"),
    ]


@pytest.mark.parametrize("label, data, content_type, reason", bad_files(), ids=[b[0] for b in bad_files()])
def test_bad_files_are_rejected_with_a_reason_and_never_served(api, uploads, dispute, label, data, content_type,
                                                               reason):
    e = uploads.upload(dispute, data, content_type)
    assert (e["status"], e["rejection_reason"]) == ("REJECTED", reason), e
    assert e["download_url"] is None and e["thumbnail_url"] is None
    assert accepted_count(api, dispute) == 0
    assert uploads_left(dispute) == 0  # the raw upload is gone


def uploads_left(dispute_id: str) -> int:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    return s3.list_objects_v2(Bucket="buyer-protection-evidence", Prefix=f"uploads/{dispute_id}/").get("KeyCount", 0)


def test_an_empty_or_oversized_file_is_refused_at_the_slot(api, uploads, dispute):
    r = uploads.slot(dispute, b"", "image/jpeg")
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "EMPTY_FILE")
    r = uploads.slot(dispute, b"", "image/jpeg", size=10 * 1024 * 1024 + 1)
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "FILE_TOO_LARGE")
    r = uploads.slot(dispute, b"x", "image/gif", file_name="a.gif")
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "UNSUPPORTED_CONTENT_TYPE")
    assert api.get(f"/disputes/{dispute}/evidence").json_body["items"] == []


def test_a_file_larger_than_announced_or_allowed_is_rejected_on_arrival(api, uploads, dispute):
    # moto, like a misbehaving client, does not enforce the POST policy: the size is checked again.
    r = uploads.slot(dispute, b"", "application/pdf", file_name="invoice.pdf", size=100)
    big = b"%PDF-1.7\n" + b"0" * (11 * 1024 * 1024) + b"\n%%EOF\n"
    assert uploads.post(r.json_body["upload"], big) in (200, 204)
    uploads.deliver()
    e = uploads.listed(dispute, r.json_body["evidence_id"])
    assert (e["status"], e["rejection_reason"]) == ("REJECTED", "FILE_TOO_LARGE")
    r = uploads.slot(dispute, b"", "image/jpeg", size=10)
    uploads.post(r.json_body["upload"], jpeg())
    uploads.deliver()
    assert uploads.listed(dispute, r.json_body["evidence_id"])["rejection_reason"] == "SIZE_MISMATCH"


def test_an_eleventh_file_is_refused_but_a_rejected_one_frees_its_place(api, uploads, dispute):
    slots = [uploads.slot(dispute, b"x" * 10, "image/jpeg") for _ in range(10)]
    assert all(s.status_code == 201 for s in slots)
    eleventh = uploads.slot(dispute, b"x" * 10, "image/jpeg")
    assert (eleventh.status_code, eleventh.json_body["error"]["code"]) == (422, "EVIDENCE_LIMIT_REACHED")
    assert uploads.slot(dispute, b"x" * 10, "image/jpeg", who=SELLER).status_code == 201  # per party
    uploads.post(slots[0].json_body["upload"], b"not a photo")
    uploads.deliver()
    assert uploads.slot(dispute, b"x" * 10, "image/jpeg").status_code == 201


def test_the_same_event_twice_or_late_changes_nothing(api, uploads, dispute):
    data = jpeg()
    r = uploads.slot(dispute, data, "image/jpeg")
    uploads.post(r.json_body["upload"], data)
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = uploads.pump.queue_url
    message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    body = [m["Body"] for m in message if "Records" in m["Body"]][0]
    uploads.deliver()
    first = uploads.listed(dispute, r.json_body["evidence_id"])
    for _ in range(2):  # at-least-once delivery: the same event again, after the object is gone
        sqs.send_message(QueueUrl=queue, MessageBody=body)
        uploads.deliver()
    assert uploads.listed(dispute, r.json_body["evidence_id"]) | {"download_url": None, "thumbnail_url": None} \
        == first | {"download_url": None, "thumbnail_url": None}
    assert first["status"] == "ACCEPTED" and accepted_count(api, dispute) == 1


def test_an_object_outside_any_slot_is_ignored_and_removed(api, uploads, dispute):
    r = uploads.slot(dispute, jpeg(), "image/jpeg")
    # A client that rewrites the key field (moto does not enforce the policy; AWS would refuse it).
    uploads.post(r.json_body["upload"], jpeg(), key=f"uploads/{dispute}/not-a-slot")
    uploads.deliver()
    assert uploads_left(dispute) == 0
    assert uploads.listed(dispute, r.json_body["evidence_id"])["status"] == "PENDING_UPLOAD"


def test_unused_slots_expire_and_give_the_place_back(api, uploads, dispute, clock):
    r = uploads.slot(dispute, b"x" * 10, "image/jpeg")
    clock.advance(minutes=16)
    assert uploads.listed(dispute, r.json_body["evidence_id"])["status"] == "EXPIRED"
    from app import app

    assert app.handler_map["expire-evidence"]({"detail-type": "Scheduled Event", "source": "aws.events",
                                               "detail": {}, "resources": [], "time": "2026-11-01T13:00:00Z",
                                               "region": "us-east-1", "account": "1", "id": "x", "version": "0"},
                                              None) == {"expired": 1}
    uploads.post(r.json_body["upload"], b"x" * 10)  # too late: never processed
    uploads.deliver()
    assert uploads.listed(dispute, r.json_body["evidence_id"])["status"] == "EXPIRED"


def test_the_buyer_cannot_escalate_without_the_evidence_the_reason_needs(api, uploads):
    d = api.negotiating()
    did = d["dispute_id"]
    assert d["evidence_checklist"] == {"expected": ["PHOTO_OR_VIDEO_COMPARED_WITH_LISTING"], "satisfied": False,
                                       "missing": ["PHOTO_OR_VIDEO_COMPARED_WITH_LISTING"],
                                       "suggested_solutions": ["REFUND_FULL", "REFUND_PARTIAL"]}
    r = api.post(f"/disputes/{did}/escalate", BUYER, {})
    assert (r.status_code, r.json_body["error"]["code"]) == (422, "EVIDENCE_REQUIRED")
    assert r.json_body["error"]["details"]["missing"] == ["PHOTO_OR_VIDEO_COMPARED_WITH_LISTING"]
    assert api.get(f"/disputes/{did}").json_body["status"] == "NEGOTIATING"
    uploads.upload(did, jpeg())
    assert api.get(f"/disputes/{did}").json_body["evidence_checklist"]["satisfied"] is True
    assert api.post(f"/disputes/{did}/escalate", BUYER, {}).json_body["status"] == "ESCALATED"


def test_moderators_and_closed_disputes_take_no_uploads(api, uploads, dispute):
    assert uploads.slot(dispute, b"x", "image/jpeg", who=MODERATOR).status_code == 403
    api.post(f"/disputes/{dispute}/cancel", BUYER, {})
    r = uploads.slot(dispute, b"x", "image/jpeg")
    assert (r.status_code, r.json_body["error"]["code"]) == (409, "DISPUTE_CLOSED")
