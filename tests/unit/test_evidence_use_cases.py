"""Evidence processing over the fakes: nothing stuck, nothing accepted into a closed dispute, and
what is served is always what is recorded, even with two uploads to one slot processed at once."""
from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

from chalicelib.domain.evidence import PROCESSING_LIMIT
from chalicelib.services import commands as c
from chalicelib.services.disputes import Cancel
from tests.media import same_size_other_jpeg
from tests.unit.world import BUYER, SELLER, World, jpeg


def slot(world: World, dispute_id: str, data: bytes, who=BUYER, content_type: str = "image/jpeg"):
    evidence, _ = world.services.evidence.request_upload(who, c.RequestUpload(
        dispute_id, "photo.jpg", content_type, len(data)))
    return evidence


def served_objects(world: World, dispute_id: str) -> dict[str, bytes]:
    return {k: v[0] for k, v in world.store.objects.items() if k.startswith(f"evidence/{dispute_id}/")}


def listed(world: World, dispute_id: str, who=BUYER):
    return {e.evidence_id: (e, links) for e, links in world.services.evidence.list(who, dispute_id)}


def test_the_listing_shows_the_hash_of_the_upload_and_of_the_served_copy(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg((300, 200))
    e = slot(world, did, data)
    world.store.write(e.upload_key, data, "image/jpeg")
    assert world.services.evidence.process_upload(e.upload_key) == "accepted"
    stored, links = listed(world, did)[e.evidence_id]
    served = world.store.objects[stored.file_key][0]
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.served_sha256 == hashlib.sha256(served).hexdigest() != stored.sha256
    assert "type=image/jpeg&inline=True" in links["download_url"]


def test_a_pdf_is_linked_as_an_attachment_of_its_own_type(world: World) -> None:
    from tests.media import pdf_with_javascript

    did = world.awaiting_seller()["dispute_id"]
    data = pdf_with_javascript()
    e = slot(world, did, data, content_type="application/pdf")
    world.store.write(e.upload_key, data, "application/pdf")
    assert world.services.evidence.process_upload(e.upload_key) == "accepted"
    _, links = listed(world, did)[e.evidence_id]
    assert "type=application/pdf&inline=False" in links["download_url"] and links["thumbnail_url"] is None


def test_an_upload_after_the_dispute_closed_is_rejected_and_frees_nothing_wrongly(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg()
    e = slot(world, did, data)  # taken while the dispute was open
    world.services.disputes.cancel(BUYER, Cancel(did, None, None))
    world.store.write(e.upload_key, data, "image/jpeg")
    assert world.services.evidence.process_upload(e.upload_key) == "rejected"
    stored, links = listed(world, did)[e.evidence_id]
    assert (stored.status, stored.rejection_reason) == ("REJECTED", "DISPUTE_CLOSED")
    assert links["download_url"] is None and served_objects(world, did) == {}
    assert e.upload_key not in world.store.objects


def test_a_dispute_closing_while_the_file_is_checked_rejects_it_and_removes_the_copy(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg()
    e = slot(world, did, data)
    world.store.write(e.upload_key, data, "image/jpeg")
    store_write = world.store.write

    def close_meanwhile(key: str, body: bytes, content_type: str) -> None:
        store_write(key, body, content_type)
        if world.dispute(did).is_open:
            world.services.disputes.cancel(BUYER, Cancel(did, None, None))

    world.store.write = close_meanwhile  # type: ignore[method-assign, assignment]
    assert world.services.evidence.process_upload(e.upload_key) == "rejected"
    stored, _ = listed(world, did)[e.evidence_id]
    assert (stored.status, stored.rejection_reason) == ("REJECTED", "DISPUTE_CLOSED")
    assert served_objects(world, did) == {}  # the copy written before the commit is gone
    assert world.dispute(did).buyer_visual_evidence == 0


def test_a_file_stuck_processing_is_rejected_after_the_limit_and_frees_its_place(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    slots = [slot(world, did, b"x" * 10) for _ in range(10)]
    stuck = slots[0]
    world.store.write(stuck.upload_key, jpeg(), "image/jpeg")
    world.state.evidence[(did, stuck.evidence_id)] = stuck.processing(world.clock.now())  # the Lambda died here
    for s in slots[1:]:  # the other nine are used: a slot more needs the stuck one's place
        world.state.evidence[(did, s.evidence_id)] = s.accepted("ab" * 32, False, world.clock.now())
    assert world.services.evidence.expire_uploads() == 0
    world.clock.advance(minutes=16)
    assert world.services.evidence.expire_uploads() == 0  # processing, not an unused slot
    world.clock.advance(seconds=int((PROCESSING_LIMIT - timedelta(minutes=16)).total_seconds()) + 1)
    assert world.services.evidence.expire_uploads() == 1
    stored, _ = listed(world, did)[stuck.evidence_id]
    assert (stored.status, stored.rejection_reason) == ("REJECTED", "PROCESSING_FAILED")
    assert stuck.upload_key not in world.store.objects
    assert ("dispute.evidence_rejected" in [kind for kind, _ in world.publisher.events])
    assert slot(world, did, b"x" * 10).status == "PENDING_UPLOAD"  # the place came back
    assert world.services.evidence.expire_uploads() == 0


def test_two_uploads_to_one_slot_processed_at_once_serve_what_is_recorded(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg((120, 80))
    other = same_size_other_jpeg(data)
    e = slot(world, did, data)
    world.store.write(e.upload_key, data, "image/jpeg")
    both_read = threading.Barrier(2, timeout=60)
    read, seen = world.store.read, []

    def racing_read(key: str) -> bytes:
        got = read(key)
        seen.append(got)
        if got == data:  # the second upload to the slot lands just after the first was read
            world.store.objects[key] = (other, "image/jpeg")
        both_read.wait()  # neither processing goes on before both have read
        return got

    world.store.read = racing_read  # type: ignore[method-assign]
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(world.services.evidence.process_upload(e.upload_key)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(seen) == sorted([data, other]) and sorted(outcomes) == ["accepted", "duplicate"]
    stored, _ = listed(world, did)[e.evidence_id]
    files = served_objects(world, did)
    assert set(files) == set(stored.served_keys())  # the loser's copy is gone, the winner's stays
    assert hashlib.sha256(files[stored.file_key]).hexdigest() == stored.served_sha256
    assert stored.sha256 in {hashlib.sha256(data).hexdigest(), hashlib.sha256(other).hexdigest()}


def test_a_seller_upload_to_a_closed_dispute_is_rejected_too(world: World) -> None:
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg()
    e = slot(world, did, data, who=SELLER)
    world.services.disputes.cancel(BUYER, Cancel(did, None, None))
    world.store.write(e.upload_key, data, "image/jpeg")
    world.services.evidence.process_upload(e.upload_key)
    assert listed(world, did, SELLER)[e.evidence_id][0].rejection_reason == "DISPUTE_CLOSED"


def test_each_step_says_what_it_came_to_with_a_typed_result(world: World) -> None:
    from chalicelib.services.evidence import Claim, Outcome, Verdict

    evidence = world.services.evidence
    did = world.awaiting_seller()["dispute_id"]
    data = jpeg()
    e = slot(world, did, data)
    world.store.write("uploads/not/a-slot", data, "image/jpeg")
    assert evidence.claim("uploads/not/a-slot") is Outcome.IGNORED
    assert "uploads/not/a-slot" not in world.store.objects  # never processed, never served
    world.store.write(e.upload_key, data, "image/jpeg")
    claim = evidence.claim(e.upload_key)
    assert isinstance(claim, Claim) and claim.dispute_open and claim.evidence.status == "PROCESSING"
    verdict = evidence.inspect_upload(e.upload_key, claim)
    assert isinstance(verdict, Verdict) and verdict.evidence.status == "ACCEPTED" and verdict.clean
    written = evidence.store_served(verdict)
    assert written == (verdict.evidence.file_key, verdict.evidence.thumbnail_key)
    assert evidence.record(e.upload_key, verdict.evidence, written) is Outcome.ACCEPTED
    assert e.upload_key not in world.store.objects  # the raw upload goes once recorded
    world.store.write(e.upload_key, data, "image/jpeg")  # a second upload to the used slot
    assert evidence.process_upload(e.upload_key) is Outcome.DUPLICATE
    assert e.upload_key not in world.store.objects
    other = slot(world, did, data)  # claimed by one delivery, whose object another removed
    world.store.write(other.upload_key, data, "image/jpeg")
    assert isinstance(evidence.claim(other.upload_key), Claim)
    world.store.delete(other.upload_key)
    assert evidence.process_upload(other.upload_key) is Outcome.MISSING
