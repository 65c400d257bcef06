"""The conversation thread of a dispute."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .timefmt import fmt, parse


@dataclass(frozen=True)
class Message:
    dispute_id: str
    message_id: str
    author_id: str
    author_role: str
    body: str
    created_at: datetime

    @classmethod
    def new(cls, dispute_id: str, author_id: str, author_role: str, body: str, now: datetime) -> Message:
        return cls(dispute_id, str(uuid.uuid4()), author_id, author_role, body, now)

    @property
    def sort_key(self) -> str:
        """Oldest first, ties broken by id."""
        return f"{fmt(self.created_at)}#{self.message_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "dispute_id": self.dispute_id, "author_id": self.author_id,
                "author_role": self.author_role, "body": self.body, "created_at": fmt(self.created_at)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(d["dispute_id"], d["message_id"], d["author_id"], d["author_role"], d["body"],
                   parse(d["created_at"]))
