"""Use cases of the message thread of a dispute."""
from __future__ import annotations

from ..domain.disputes import Actor
from ..domain.identity import Identity
from ..domain.messages import Message
from ..ports import Page
from . import access
from .base import UseCases
from .commands import PageRequest, PostMessage
from .evidence import require_open


class Messages(UseCases):
    def post(self, who: Identity, cmd: PostMessage) -> Message:
        with self.uow() as uow:
            dispute, actor = access.visible_dispute(who, uow.disputes.get(cmd.dispute_id))
            require_open(dispute.is_open, dispute.status.value)
            # A moderator writes to the parties only on a case nobody else holds (checked again
            # by the write).
            claimant = who.sub if actor is Actor.MODERATOR else None
            if claimant is not None:
                dispute.require_not_held_by_other(claimant, self.clock.now())
            message = Message.new(cmd.dispute_id, who.sub, actor.value, cmd.body, self.clock.now())
            uow.messages.add(message, claimant)
            uow.publish("dispute.message_posted", uow.side_event(dispute, actor.value, {"message_id": message.message_id}))
            uow.commit()
            return message

    def list(self, who: Identity, dispute_id: str, page: PageRequest) -> Page[Message]:
        with self.uow() as uow:
            access.visible_dispute(who, uow.disputes.get(dispute_id))
            return uow.messages.list(dispute_id, page.limit, page.cursor)
