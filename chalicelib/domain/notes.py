"""Internal notes: what moderators write to each other about a case. Their own records, never
part of the dispute, its timeline, its messages or its events, so no party can ever read one."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from .timefmt import fmt


@dataclass(frozen=True)
class Note:
    dispute_id: str
    note_id: str
    author_id: str
    body: str
    created_at: datetime

    @classmethod
    def new(cls, dispute_id: str, author_id: str, body: str, now: datetime) -> Note:
        return cls(dispute_id, str(uuid.uuid4()), author_id, body, now)

    @property
    def sort_key(self) -> str:
        """Oldest first, ties broken by id."""
        return f"{fmt(self.created_at)}#{self.note_id}"
