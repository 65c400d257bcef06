"""Use cases of evidence: upload slots, processing what lands in the bucket, listing, expiry."""
from __future__ import annotations

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

LINK_SECONDS = 15 * 60  # download links of accepted evidence
Links = dict[str, str | None]


def require_open(is_open: bool, status: str) -> None:
    if not is_open:
        raise Conflict("the dispute is closed", code="DISPUTE_CLOSED", details={"status": status})


class EvidenceUseCases(UseCases):
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, store: EvidenceStore) -> None:
        super().__init__(uow, clock, policy)
        self.store = store

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

    def process_upload(self, key: str) -> str:
        """S3 says an object landed. Idempotent: events come at least once and in any order, and
        two uploads to one slot may be processed at once (the first to finish is recorded, and
        what is served is what was recorded)."""
        parts = key.split("/")
        with self.uow() as uow:
            evidence = uow.evidence.get(parts[1], parts[2]) if len(parts) == 3 and parts[0] == "uploads" else None
            dispute = uow.disputes.get(evidence.dispute_id) if evidence is not None else None
        if evidence is None:
            self.store.delete(key)  # not a slot of ours: never processed, never served
            return "ignored"
        if evidence.status in FINAL:
            self.store.delete(key)  # a duplicate event, or a second upload to a used slot
            return "duplicate"
        if evidence.status == PENDING_UPLOAD:
            try:
                with self.uow() as uow:
                    evidence = evidence.processing(self.clock.now())
                    uow.evidence.save(evidence, [PENDING_UPLOAD])
                    uow.commit()
            except ConcurrentModification:
                return "duplicate"
        size = self.store.size(key)
        if size is None:
            return "missing"  # removed by a delivery of the same event processing it concurrently
        now = self.clock.now()
        if dispute is None or not dispute.is_open:  # taken before the dispute closed, used after
            return self._finish(key, evidence.rejected("DISPUTE_CLOSED", now))
        if size > evidence.max_bytes:  # never download what is over the limit
            return self._finish(key, evidence.rejected("FILE_TOO_LARGE", now))
        # Imported here: the inspectors (Pillow, pypdf) load in the evidence function only, never
        # in the API, the timers or the sweep, which import this module but inspect nothing.
        from ..inspection import inspect

        result = inspect(self.store.read(key), evidence.content_type, evidence.size_bytes, evidence.max_bytes)
        if result.rejection or result.clean is None:
            return self._finish(key, evidence.rejected(result.rejection or "PROCESSING_FAILED", now, result.sha256))
        file_key, thumbnail_key = evidence.served_keys(result.served_sha256)
        self.store.write(file_key, result.clean, evidence.content_type)
        written: tuple[str, ...] = (file_key,)
        if result.thumbnail:
            self.store.write(thumbnail_key, result.thumbnail, "image/jpeg")
            written += (thumbnail_key,)
        accepted = evidence.accepted(result.sha256, result.thumbnail is not None, now, result.served_sha256)
        return self._finish(key, accepted, written)

    def _finish(self, key: str, evidence: Evidence, written: tuple[str, ...] = ()) -> str:
        """Record the outcome, from PENDING_UPLOAD or PROCESSING only. Copies written for an
        outcome that is not the one recorded are removed; the recorded one's stay."""
        try:
            self._record(evidence)
        except ConcurrentModification:
            with self.uow() as uow:
                winner = uow.evidence.get(evidence.dispute_id, evidence.evidence_id)
            kept = set(winner.served_keys()) if winner is not None and winner.status == ACCEPTED else set()
            for stale in set(written) - kept:
                self.store.delete(stale)
            return "duplicate"
        except Conflict as closed:  # the dispute closed while the file was checked
            if closed.code != "DISPUTE_CLOSED":
                raise
            for stale in written:
                self.store.delete(stale)
            return self._finish(key, evidence.rejected("DISPUTE_CLOSED", self.clock.now(), evidence.sha256))
        self.store.delete(key)  # the served copy is the cleaned one; the raw upload goes
        return evidence.status.lower()

    def _record(self, evidence: Evidence) -> None:
        kind = "dispute.evidence_accepted" if evidence.status == ACCEPTED else "dispute.evidence_rejected"
        with self.uow() as uow:
            dispute = uow.disputes.get(evidence.dispute_id)
            assert dispute is not None, "a slot's dispute is never deleted"
            uow.evidence.save(evidence, [PENDING_UPLOAD, PROCESSING])
            uow.publish(kind, uow.side_event(dispute, evidence.uploaded_by, {
                "evidence_id": evidence.evidence_id, "status": evidence.status,
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
                    self._record(outcome)
                    self.store.delete(e.upload_key)
                done += 1
            except ConcurrentModification:
                continue  # the upload arrived, or its processing finished, meanwhile
        return done
