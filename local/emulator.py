"""Talking to the moto server itself, and making its DynamoDB behave like DynamoDB."""
from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import requests

_lock = threading.Lock()


def configure_moto(endpoint: str) -> None:
    """Turn on moto's Step Functions interpreter, so state machines really run."""
    r = requests.post(f"{endpoint}/moto-api/config",
                      json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    r.raise_for_status()


def make_dynamodb_atomic() -> None:
    """Serialize moto's DynamoDB requests. DynamoDB applies each request atomically (a condition
    and its write, a whole transaction); moto's backend does not lock, so two threads can both
    pass a condition, or a transaction can crash copying a table another thread is writing.
    With this, concurrent requests get DynamoDB's semantics, which is what our locking relies on."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_atomic", False):
        return
    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    call_action._atomic = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


class _CopyKeepingTables:
    """What moto's DynamoDB models module sees as ``copy``: ``deepcopy`` of a table is the table
    itself (its transactions' whole-table backup, replaced by ``back_up_items_not_tables``);
    everything else is really copied."""

    def __init__(self, table_class: type) -> None:
        self._table_class = table_class

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        import copy

        return value if isinstance(value, self._table_class) else copy.deepcopy(value, memo)


def back_up_items_not_tables() -> None:
    """Make moto's TransactWriteItems cost what the transaction touches, not what the tables hold.

    moto (5.x, ``DynamoDBBackend.transact_write_items``) deep-copies every table a transaction
    names, once per action, as its rollback backup: time and memory in proportion to the tables,
    so a long `make dev` session grew quadratically (1.5 GB after 150 disputes) and one release
    at 10,000 orders took ~5.8 s. Here the items the actions name are backed up instead, and put
    back if the transaction is refused. (Upstream, the same change belongs in
    ``transact_write_items`` itself: back up ``(table, key, deepcopy(item or None))`` per action
    and restore those on rollback.)"""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "_item_backup", False):
        return
    original = DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        backup: list[tuple[Any, Any, Any, Any]] = []
        for action in transact_items:
            _, op = next(iter(action.items()))
            try:
                table = self.get_table(op.get("TableName"))
            except Exception:  # noqa: BLE001 - an unknown table: moto refuses it, nothing to back up
                continue
            attributes = op.get("Key") or op.get("Item") or {}
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.has_range_key else [])
            if any(name not in attributes for name in names):
                continue  # moto refuses this action before writing it
            hash_key, range_key = self.get_keys_value(table, {name: attributes[name] for name in names})
            backup.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            return original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(backup):
                _restore(table, hash_key, range_key, item)
            raise

    transact_write_items._item_backup = True  # type: ignore[attr-defined]
    models.copy = _CopyKeepingTables(Table)  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    """Put one item of a moto table back as it was (``item`` None: it did not exist)."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
        return
    if item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
        if hash_key in table.items and not table.items[hash_key]:
            del table.items[hash_key]
    else:
        table.items[hash_key][range_key] = item


# Finished executions moto keeps per state machine (the newest; every running one stays). AWS
# keeps a Standard workflow's history for 90 days; the emulator keeps what a developer looks at.
FINISHED_EXECUTIONS_KEPT = 100


def forget_finished_executions() -> None:
    """Make moto's Step Functions keep the newest FINISHED_EXECUTIONS_KEPT finished executions per state machine,
    so `make dev` stays flat however many timers it runs.

    moto (5.x, ``StepFunctionsParserBackend.start_execution``, the interpreter `make dev` turns on)
    appends every execution to ``state_machine.executions`` and never removes one. Each holds a
    deep copy of its state machine, its interpreter's environment, event history, worker and
    thread objects: hundreds of KB per execution, kept for the life of the server (a dispute
    starts two or three timers). ``_get_executions`` then walks them all on every Describe, Stop
    and List call, so those calls slow down as the history grows too. (Upstream, the same belongs
    in moto as a retention setting: drop finished executions past a count or an age, as AWS does
    after 90 days.)"""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if getattr(StepFunctionsParserBackend.start_execution, "_forgets", False):
        return
    original = StepFunctionsParserBackend.start_execution

    @functools.wraps(original)
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        # Pruned before the new one starts: a quick execution may finish before its start returns,
        # and is never the one its own start forgets.
        executions = self.describe_state_machine(state_machine_arn).executions
        finished = [e for e in list(executions) if e.stop_date is not None]
        kept = FINISHED_EXECUTIONS_KEPT
        if len(finished) > kept:
            finished.sort(key=lambda e: e.stop_date)
            for old in finished[:len(finished) - kept]:
                try:
                    executions.remove(old)  # one at a time: an execution started meanwhile stays
                except ValueError:
                    pass  # removed by a concurrent start
        return original(self, state_machine_arn, *args, **kwargs)

    start_execution._forgets = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


class _WeakInstances:
    """What moto's ``BaseModel`` records each new instance in, holding it weakly: iterating gives
    the instances still alive (moto's dashboard and S3's reset iterate it), nothing else is kept."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}

    def append(self, instance: Any) -> None:
        key = id(instance)

        def forget(_: object) -> None:  # runs as the instance is freed, before its id can be reused
            self._refs.pop(key, None)

        try:
            self._refs[key] = weakref.ref(instance, forget)
        except TypeError:
            pass  # a class without weak references (none in moto 5.x): left out of a registry only

    def __iter__(self) -> Iterator[Any]:
        return iter([obj for ref in list(self._refs.values()) if (obj := ref()) is not None])

    def __len__(self) -> int:
        return len(self._refs)


def track_instances_weakly() -> None:
    """Make moto stop keeping every model object it ever made.

    moto (5.x, ``moto.core.common_models.BaseModel.__new__``) appends every instance of every
    model class to a class-level list, ``instances_tracked``, and never removes one (only a full
    reset empties it). Models include objects made per request and dropped at once: a DynamoDB
    ``Item`` is deep-copied for every Query and Scan result, every conditional write's old image
    and every transaction's rollback copy; a Step Functions ``StateMachine`` is deep-copied for
    every execution. So a long `make dev` session kept every item ever read (about 300 KB per
    dispute played, without end). Here the list holds weak references: what moto reads from it
    (the dashboard, S3's reset) still sees every live instance. (Upstream, the same change
    belongs in ``BaseModel.__new__``: a weak collection for ``instances_tracked``.)"""
    from moto.core.common_models import BaseModel

    if getattr(BaseModel.__new__, "_weak", False):
        return

    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, _WeakInstances):  # made by moto's metaclass, or emptied by a reset
            tracked = _WeakInstances()
            cls.instances_tracked = tracked
        tracked.append(instance)
        return instance

    __new__._weak = True  # type: ignore[attr-defined]
    BaseModel.__new__ = __new__  # type: ignore[method-assign]
