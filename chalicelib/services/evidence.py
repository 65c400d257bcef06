"""Use cases of evidence: upload slots, processing what lands in the bucket, listing, expiry."""
from __future__ import annotations

from dataclasses import replace

from ..adapters.auth import Identity
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
from ..domain.policy import Policy
from ..inspection import inspect
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
                links["download_url"] = self.store.download_url(e.file_key, e.file_name, LINK_SECONDS)
                if e.has_thumbnail:
                    links["thumbnail_url"] = self.store.download_url(e.thumbnail_key, "thumbnail.jpg", LINK_SECONDS)
            out.append((e, links))
        return out

    def process_upload(self, key: str) -> str:
        """S3 says an object landed. Idempotent: events come at least once and in any order."""
        parts = key.split("/")
        with self.uow() as uow:
            evidence = uow.evidence.get(parts[1], parts[2]) if len(parts) == 3 and parts[0] == "uploads" else None
        if evidence is None:
            self.store.delete(key)  # not a slot of ours: never processed, never served
            return "ignored"
        if evidence.status in FINAL:
            self.store.delete(key)  # a duplicate event, or a second upload to a used slot
            return "duplicate"
        if evidence.status == PENDING_UPLOAD:
            try:
                with self.uow() as uow:
                    uow.evidence.save(replace(evidence, status=PROCESSING), [PENDING_UPLOAD])
                    uow.commit()
            except ConcurrentModification:
                return "duplicate"
        size = self.store.size(key)
        if size is None:
            return "missing"  # removed by a delivery of the same event processing it concurrently
        now = self.clock.now()
        if size > evidence.max_bytes:  # never download what is over the limit
            return self._finish(key, evidence.rejected("FILE_TOO_LARGE", now))
        result = inspect(self.store.read(key), evidence.content_type, evidence.size_bytes, evidence.max_bytes)
        if result.rejection:
            return self._finish(key, evidence.rejected(result.rejection, now, result.sha256))
        assert result.clean is not None
        self.store.write(evidence.file_key, result.clean, evidence.content_type)
        if result.thumbnail:
            self.store.write(evidence.thumbnail_key, result.thumbnail, "image/jpeg")
        return self._finish(key, evidence.accepted(result.sha256, result.thumbnail is not None, now))

    def _finish(self, key: str, evidence: Evidence) -> str:
        kind = "dispute.evidence_accepted" if evidence.status == ACCEPTED else "dispute.evidence_rejected"
        try:
            with self.uow() as uow:
                dispute = uow.disputes.get(evidence.dispute_id)
                assert dispute is not None, "a slot's dispute is never deleted"
                uow.evidence.save(evidence, [PENDING_UPLOAD, PROCESSING])
                uow.publish(kind, uow.side_event(dispute, evidence.uploaded_by, {
                    "evidence_id": evidence.evidence_id, "status": evidence.status,
                    "rejection_reason": evidence.rejection_reason}))
                uow.commit()
        except ConcurrentModification:
            return "duplicate"
        self.store.delete(key)  # the served copy is the sanitized one; the raw upload goes
        return evidence.status.lower()

    def expire_uploads(self) -> int:
        """Slots never used within their window become EXPIRED and free the party's place."""
        expired = 0
        with self.uow() as uow:
            due = uow.evidence.expired(self.clock.now(), 200)
        for e in due:
            try:
                with self.uow() as uow:
                    uow.evidence.save(replace(e, status=EXPIRED), [PENDING_UPLOAD])
                    uow.commit()
                expired += 1
            except ConcurrentModification:
                continue  # the upload arrived meanwhile
        return expired
