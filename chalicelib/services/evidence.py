"""Use cases of evidence: upload slots, processing what lands in the bucket, listing, expiry."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ..domain.errors import ConcurrentModification, Conflict
from ..domain.evidence import (
    ACCEPTED,
    EXPIRED,
    FINAL,
    MAX_FILES_PER_PARTY,
    PENDING_UPLOAD,
    PROCESSING,
    UPLOAD_WINDOW,
    Evidence,
)
from ..domain.identity import Identity
from ..domain.policy import Policy
from ..ports import Clock, EvidenceStore
from . import access
from .base import UnitOfWorkFactory, UseCases
from .commands import RequestUpload

if TYPE_CHECKING:
    from ..inspection import Inspection

LINK_SECONDS = 15 * 60  # download links of accepted evidence
Links = dict[str, str | None]
# inspect(data, declared type, declared size, max bytes): what an upload is (chalicelib/inspection).
Inspect = Callable[[bytes, str, int, int], "Inspection"]


class Outcome(StrEnum):
    """What processing one S3 event came to (logged by the handler)."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # the slot was used already, or another delivery won the race
    IGNORED = "ignored"  # not an upload slot of ours
    MISSING = "missing"  # the object is gone: a concurrent delivery of the same event processed it


@dataclass(frozen=True)
class Claim:
    """A slot claimed for processing, and whether its dispute was open when it was read."""
    evidence: Evidence
    dispute_open: bool


@dataclass(frozen=True)
class Verdict:
    """The outcome to record (ACCEPTED or REJECTED) and, when accepted, the bytes to serve."""
    evidence: Evidence
    clean: bytes | None = None
    thumbnail: bytes | None = None


def require_open(is_open: bool, status: str) -> None:
    if not is_open:
        raise Conflict("the dispute is closed", code="DISPUTE_CLOSED", details={"status": status})


class EvidenceUseCases(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, store: EvidenceStore,
                 inspector: Callable[[], Inspect]) -> None:
        """``inspector`` loads the file inspectors ready to use (bootstrap.inspector: pypdf's
        budget hooks installed), on the first upload checked."""
        super().__init__(uow, clock, policy)
        self.store = store
        self.inspector = inspector

    def request_upload(self, who: Identity, cmd: RequestUpload) -> tuple[Evidence, dict[str, object]]:
        """An upload slot: a presigned POST for one file, pinned to its key, type and size."""
        with self.uow() as uow:
            dispute, actor = access.visible_dispute(who, uow.disputes.get(cmd.dispute_id))
            access.require_party(actor, "only the parties upload evidence")
            require_open(dispute.is_open, dispute.status.value)
            evidence = Evidence.slot(cmd.dispute_id, actor.value, who.sub, cmd.file_name, cmd.content_type,
                                     cmd.size_bytes, self.clock.now())
            uow.evidence.add(evidence, MAX_FILES_PER_PARTY)
            uow.commit()
        post = self.store.presigned_post(evidence.upload_key, evidence.content_type, evidence.max_bytes,
                                         int(UPLOAD_WINDOW.total_seconds()))
        return evidence, post

    def list(self, who: Identity, dispute_id: str) -> list[tuple[Evidence, Links]]:
        """Each file with links (15 minutes) to the served copy and its thumbnail, once accepted."""
        with self.uow() as uow:
            access.visible_dispute(who, uow.disputes.get(dispute_id))
            files = uow.evidence.list(dispute_id)
        out = []
        for e in files:
            links: Links = {"download_url": None, "thumbnail_url": None}
            if e.status == ACCEPTED:
                links["download_url"] = self.store.download_url(e.file_key, e.file_name, LINK_SECONDS,
                                                                e.content_type, e.served_inline)
                if e.has_thumbnail:
                    links["thumbnail_url"] = self.store.download_url(e.thumbnail_key, "thumbnail.jpg", LINK_SECONDS,
                                                                     "image/jpeg", True)
            out.append((e, links))
        return out

    def process_upload(self, key: str) -> Outcome:
        """S3 says an object landed under ``key``: claim its slot, inspect it, store the served
        copy, record the outcome. Idempotent: events come at least once and in any order, and two
        uploads to one slot may be processed at once (the first to finish is recorded, and what is
        served is what was recorded).

        Units of work, each committed alone: reading the slot; claiming it (PENDING_UPLOAD ->
        PROCESSING); recording the outcome with its event. A lost race re-reads the winner; a
        dispute that closed during the check records a rejection instead (one more commit)."""
        claim = self.claim(key)
        if isinstance(claim, Outcome):
            return claim
        verdict = self.inspect_upload(key, claim)
        if isinstance(verdict, Outcome):
            return verdict
        return self.record(key, verdict.evidence, self.store_served(verdict))

    def claim(self, key: str) -> Claim | Outcome:
        """Step 1: the slot ``key`` was uploaded to, marked PROCESSING; or why there is nothing to do
        (the raw object of a used or unknown slot is removed: it is never processed nor served)."""
        parts = key.split("/")
        with self.uow() as uow:
            evidence = uow.evidence.get(parts[1], parts[2]) if len(parts) == 3 and parts[0] == "uploads" else None
            dispute = uow.disputes.get(evidence.dispute_id) if evidence is not None else None
        if evidence is None:
            self.store.delete(key)  # not a slot of ours
            return Outcome.IGNORED
        if evidence.status in FINAL:
            self.store.delete(key)  # a duplicate event, or a second upload to a used slot
            return Outcome.DUPLICATE
        if evidence.status == PENDING_UPLOAD:
            try:
                with self.uow() as uow:
                    evidence = evidence.processing(self.clock.now())
                    uow.evidence.save(evidence, [PENDING_UPLOAD])
                    uow.commit()
            except ConcurrentModification:
                return Outcome.DUPLICATE  # another delivery claimed it first
        # PROCESSING already: a redelivery after a crash, or a second upload racing the first.
        return Claim(evidence, dispute is not None and dispute.is_open)

    def inspect_upload(self, key: str, claim: Claim) -> Verdict | Outcome:
        """Step 2: what the upload is (no writes): a rejection, a clean copy to serve, or MISSING."""
        size = self.store.size(key)
        if size is None:
            return Outcome.MISSING  # removed by a delivery of the same event processing it concurrently
        evidence, now = claim.evidence, self.clock.now()
        if not claim.dispute_open:  # taken before the dispute closed, used after
            return Verdict(evidence.rejected("DISPUTE_CLOSED", now))
        if size > evidence.max_bytes:  # never download what is over the limit
            return Verdict(evidence.rejected("FILE_TOO_LARGE", now))
        # Loaded here: the inspectors (Pillow, pypdf) load in the evidence function only, never
        # in the API, the timers or the sweep, which wire this use case but inspect nothing.
        inspect = self.inspector()
        result = inspect(self.store.read(key), evidence.content_type, evidence.size_bytes, evidence.max_bytes)
        if result.rejection or result.clean is None:
            return Verdict(evidence.rejected(result.rejection or "PROCESSING_FAILED", now, result.sha256))
        accepted = evidence.accepted(result.sha256, result.thumbnail is not None, now, result.served_sha256)
        return Verdict(accepted, result.clean, result.thumbnail)

    def store_served(self, verdict: Verdict) -> tuple[str, ...]:
        """Step 3: an accepted file's cleaned copy (and thumbnail), under keys named by the copy's
        hash; returns the keys written (none for a rejection)."""
        if verdict.clean is None:
            return ()
        evidence = verdict.evidence
        self.store.write(evidence.file_key, verdict.clean, evidence.content_type)
        if verdict.thumbnail is None:
            return (evidence.file_key,)
        self.store.write(evidence.thumbnail_key, verdict.thumbnail, "image/jpeg")
        return evidence.file_key, evidence.thumbnail_key

    def record(self, key: str, evidence: Evidence, written: tuple[str, ...] = ()) -> Outcome:
        """Step 4: record the outcome, from PENDING_UPLOAD or PROCESSING only, then remove the raw
        upload (what is served is the cleaned copy). Copies written for an outcome that is not the
        one recorded are removed; the recorded one's stay."""
        try:
            self._commit_outcome(evidence)
        except ConcurrentModification:
            self._remove_losing_copies(evidence, written)
            return Outcome.DUPLICATE
        except Conflict as closed:
            if closed.code != "DISPUTE_CLOSED":
                raise
            # The dispute closed while the file was checked: its copy goes and it is rejected
            # instead (a rejection is recorded whether the dispute is open or not).
            for stale in written:
                self.store.delete(stale)
            evidence = evidence.rejected("DISPUTE_CLOSED", self.clock.now(), evidence.sha256)
            try:
                self._commit_outcome(evidence)
            except ConcurrentModification:
                return Outcome.DUPLICATE
        self.store.delete(key)
        return Outcome.ACCEPTED if evidence.status == ACCEPTED else Outcome.REJECTED

    def _remove_losing_copies(self, evidence: Evidence, written: tuple[str, ...]) -> None:
        with self.uow() as uow:
            winner = uow.evidence.get(evidence.dispute_id, evidence.evidence_id)
        kept = set(winner.served_keys()) if winner is not None and winner.status == ACCEPTED else set()
        for stale in set(written) - kept:
            self.store.delete(stale)

    def _commit_outcome(self, evidence: Evidence) -> None:
        kind = "dispute.evidence_accepted" if evidence.status == ACCEPTED else "dispute.evidence_rejected"
        with self.uow() as uow:
            dispute = uow.disputes.get(evidence.dispute_id)
            assert dispute is not None, "a slot's dispute is never deleted"
            uow.evidence.save(evidence, [PENDING_UPLOAD, PROCESSING])
            uow.publish(kind, uow.side_event(dispute, evidence.uploaded_by, {
                "evidence_id": evidence.evidence_id, "status": evidence.status.value,
                "rejection_reason": evidence.rejection_reason}))
            uow.commit()

    def expire_uploads(self) -> int:
        """Nothing stays unfinished: slots never used within their window become EXPIRED, and
        files still PROCESSING past the limit become REJECTED (PROCESSING_FAILED); either way the
        party's place is freed."""
        done = 0
        with self.uow() as uow:
            due = uow.evidence.expired(self.clock.now(), 200)
        for e in due:
            outcome = e.timed_out(self.clock.now())
            try:
                if outcome.status == EXPIRED:
                    with self.uow() as uow:
                        uow.evidence.save(outcome, [PENDING_UPLOAD])
                        uow.commit()
                else:
                    self._commit_outcome(outcome)
                    self.store.delete(e.upload_key)
                done += 1
            except ConcurrentModification:
                continue  # the upload arrived, or its processing finished, meanwhile
        return done
