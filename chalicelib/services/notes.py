"""Use cases of moderators' internal notes: written and read by moderators only. A note is no
event and no part of the dispute, so nothing a party reads or receives can carry one."""
from __future__ import annotations

from ..domain.disputes import Actor
from ..domain.identity import Identity
from ..domain.notes import Note
from ..ports import Page
from . import access
from .base import UseCases
from .commands import AddNote, PageRequest

PARTIES_REFUSED = "notes are the case team's; parties never see them"


class Notes(UseCases):
    def add(self, who: Identity, cmd: AddNote) -> Note:
        with self.uow() as uow:
            _, actor = access.visible_dispute(who, uow.disputes.get(cmd.dispute_id))
            access.require(actor is Actor.MODERATOR, PARTIES_REFUSED)
            note = Note.new(cmd.dispute_id, who.sub, cmd.body, self.clock.now())
            uow.notes.add(note)
            uow.commit()
            return note

    def list(self, who: Identity, dispute_id: str, page: PageRequest) -> Page[Note]:
        with self.uow() as uow:
            _, actor = access.visible_dispute(who, uow.disputes.get(dispute_id))
            access.require(actor is Actor.MODERATOR, PARTIES_REFUSED)
            return uow.notes.list(dispute_id, page.limit, page.cursor)
