"""The use cases, grouped by aggregate. Each takes the caller's identity and a typed command
(services/commands.py; a dispute's is written beside its use case in services/disputes.py), runs
in one unit of work (services/unit_of_work.py), and leaves rules to the domain and
who-may-see-what to services/access.py."""
from __future__ import annotations

from dataclasses import dataclass

from .disputes import Disputes
from .evidence import EvidenceUseCases
from .messages import Messages
from .moderation import Moderation
from .notes import Notes
from .orders import Orders
from .payments import Payments
from .sandbox import Sandbox
from .timers import Timers


@dataclass(frozen=True)
class Services:
    orders: Orders
    disputes: Disputes
    evidence: EvidenceUseCases
    messages: Messages
    notes: Notes
    moderation: Moderation
    payments: Payments
    timers: Timers
    sandbox: Sandbox
