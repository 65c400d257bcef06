"""The unit of work over DynamoDB: everything staged, and the outbox, in one TransactWriteItems."""
from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection

from ...domain.errors import ConcurrentModification
from ...domain.policy import Policy
from ...ports import Clock, OutboxRecord
from ...services.unit_of_work import Relay, UnitOfWork
from . import mapping
from .models import Tables
from .repositories import (
    DynamoDisputes,
    DynamoEvidence,
    DynamoMessages,
    DynamoModeration,
    DynamoNotes,
    DynamoOrders,
)
from .transactions import Write, commit


def _outbox_taken() -> Exception:
    return ConcurrentModification("outbox record already written")


class DynamoUnitOfWork(UnitOfWork):
    def __init__(self, tables: Tables, connection: Connection, policy: Policy, relay: Relay, clock: Clock) -> None:
        super().__init__(relay, clock, policy)
        self.tables = tables
        self.connection = connection
        self.orders = DynamoOrders(tables, self.changes, policy)
        self.disputes = DynamoDisputes(tables, self.changes, policy)
        self.messages = DynamoMessages(tables, self.changes, policy)
        self.notes = DynamoNotes(tables, self.changes, policy)
        self.evidence = DynamoEvidence(tables, self.changes, policy)
        self.moderation = DynamoModeration(tables, self.changes, policy)

    def _write(self, staged: list[Any], outbox: list[OutboxRecord]) -> None:
        records = [Write("put", mapping.outbox_item(self.tables, r), _outbox_taken,
                         condition=self.tables.outbox.outbox_id.does_not_exist()) for r in outbox]
        commit(self.connection, [*staged, *records])
