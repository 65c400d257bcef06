"""Staged writes and the one place a refused write is turned into a domain error.

Every write names, when it is staged, what a refusal of its condition means (a stale version, a
closed dispute, a full quota...). DynamoDB lists a cancellation reason per action of a
transaction, in order; ``classify`` pairs them with the writes and reads their codes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from ...domain.errors import ConcurrentModification

CONDITION_FAILED = "ConditionalCheckFailed"
# PynamoDB sends a transaction's actions grouped by kind, in this order; DynamoDB's cancellation
# reasons follow the order sent.
SENT_ORDER = {"check": 0, "put": 1, "update": 2}
TRANSACTION_CONFLICT = "TransactionConflict"  # another transaction held one of the items


@dataclass
class Write:
    """One action of a unit of work: ``put`` a model instance, ``update`` it with ``actions``,
    or ``check`` a condition on ``model``'s item ``key`` without writing it."""

    op: str  # put | update | check
    model: Any
    refused: Callable[[], Exception]
    actions: list[Any] = field(default_factory=list)
    condition: Any = None
    key: tuple[Any, ...] = ()

    def add_to(self, tx: TransactWrite) -> None:
        if self.op == "put":
            tx.save(self.model, condition=self.condition)
        elif self.op == "update":
            tx.update(self.model, actions=self.actions, condition=self.condition)
        else:
            hash_key, *range_key = self.key
            tx.condition_check(self.model, hash_key, range_key[0] if range_key else None, condition=self.condition)

    def run_alone(self) -> None:
        if self.op == "put":
            self.model.save(condition=self.condition)
        else:
            self.model.update(actions=self.actions, condition=self.condition)


def classify(exc: TransactWriteError, writes: list[Write]) -> Exception:
    """The domain error of a cancelled transaction, from its reason codes (``writes`` in the
    order they were sent)."""
    reasons = exc.cancellation_reasons or []
    for write, reason in zip(writes, reasons, strict=False):
        if reason is not None and reason.code == CONDITION_FAILED:
            return write.refused()
    if any(reason is not None and reason.code == TRANSACTION_CONFLICT for reason in reasons):
        return ConcurrentModification("the items changed meanwhile; try again")
    return exc


def commit(connection: Connection, writes: list[Write]) -> None:
    """All the writes or none. A lone write goes as a plain conditional write (half the cost of
    a transaction); anything more as one TransactWriteItems."""
    if not writes:
        return
    if len(writes) == 1 and writes[0].op != "check":
        try:
            writes[0].run_alone()
        except (PutError, UpdateError) as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise writes[0].refused() from exc
            raise
        return
    writes = sorted(writes, key=lambda w: SENT_ORDER[w.op])  # stable: the order of the reasons
    try:
        with TransactWrite(connection=connection) as tx:
            for write in writes:
                write.add_to(tx)
    except TransactWriteError as exc:
        error = classify(exc, writes)
        if error is exc:
            raise
        raise error from exc
