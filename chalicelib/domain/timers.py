"""Timer commands: what a change asks of the deadline machine (statemachines/deadline_timer.asl.json).

A timer belongs to a subject (a dispute, a refund, an order) and an action; with its round, that
names one execution for good, so starting it twice is harmless.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .timefmt import fmt, parse_opt

START, STOP = "START", "STOP"
# Actions of order and refund timers (dispute phases name theirs in domain/disputes.py).
SHIP_BY = "SHIP_BY"  # the seller has not shipped by the ship-by date: refund the order
REFUND_SETTLEMENT = "REFUND_SETTLEMENT"  # a refund not settled by now is overdue: alarm and retry
REFUND_RETRY = "REFUND_RETRY"  # a failed refund's next attempt, after its backoff


def order_subject(order_id: str) -> str:
    """Order ids come from checkout and may hold characters an execution name cannot."""
    return "order-" + hashlib.sha256(order_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TimerCommand:
    op: str  # START | STOP
    subject_id: str
    action: str
    due_at: datetime | None = None
    remind_at: datetime | None = None
    round: int = 0  # for subjects that wait for the same action more than once
    refs: dict[str, str] = field(default_factory=dict)  # what the handler needs to find the subject (ids)

    @property
    def name(self) -> str:
        return f"{self.subject_id}--{self.action}" + (f"--{self.round}" if self.round else "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "subject_id": self.subject_id, "action": self.action, "due_at": fmt(self.due_at),
                "remind_at": fmt(self.remind_at), "round": self.round, "refs": dict(self.refs)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimerCommand:
        return cls(d["op"], d["subject_id"], d["action"], parse_opt(d.get("due_at")), parse_opt(d.get("remind_at")),
                   int(d.get("round") or 0), {str(k): str(v) for k, v in (d.get("refs") or {}).items()})

    def message(self) -> dict[str, Any]:
        """What the machine hands back to the timer handler when it reminds or expires."""
        return {"subject_id": self.subject_id, "action": self.action, "due_at": fmt(self.due_at),
                "round": self.round, **self.refs}
