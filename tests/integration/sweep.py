"""An escrow backlog: ``total`` shipped orders in the orders table, ``due`` of them past their
protection period, and what the scheduled sweep reads to release them (items returned by its
Queries, counted off DynamoDB's answers). Used by tests/integration/test_sweep_reads.py and by
`make bench` (bench/sweep_reads.py)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderItem


@contextmanager
def items_read(table_name: str) -> Iterator[dict[str, int]]:
    """Items DynamoDB read (ScannedCount) for Query and Scan requests on ``table_name``."""
    from botocore.client import BaseClient

    seen = {"items": 0, "requests": 0}
    original = BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        answer = original(self, operation, params)
        if operation in ("Query", "Scan") and params.get("TableName") == table_name:
            seen["items"] += int(answer.get("ScannedCount", answer.get("Count", 0)))
            seen["requests"] += 1
        return answer

    BaseClient._make_api_call = counting
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


def load_backlog(settings: Any, now: Any, total: int, due: int) -> None:
    """``total`` shipped orders written straight to the table, ``due`` of them due by ``now``."""
    from chalicelib.adapters.dynamodb import make_tables
    from chalicelib.adapters.dynamodb.mapping import new_order_item

    tables = make_tables(settings.tables, settings.region)
    policy = settings.policy
    with tables.orders.batch_write() as batch:
        for i in range(total):
            registered = now - policy.protection - timedelta(days=30) if i < due else now
            order = Order.register(order_id=f"o-{i:05d}", buyer_id="b-1", seller_id="s-1",
                                   items=[OrderItem("i-1", "Lamp", 1, Money(1000, "USD"))],
                                   total=Money(1000, "USD"), estimated_delivery_at=registered + timedelta(days=5),
                                   now=registered).ship("CP", f"CN{i}", registered)
            item = new_order_item(tables, order, "fp", policy)
            item.version = 1
            batch.save(item)


def sweep(services: Any, settings: Any, page: int = 100) -> dict[str, Any]:
    """Run the sweep once (``page``: orders per Query); what it released and what it read."""
    with items_read(settings.orders_table) as read:
        released = services.orders.release_due_escrow(limit=page)
    return {"released": len(released), "items_read": read["items"], "queries": read["requests"],
            "items_read_per_release": round(read["items"] / max(1, len(released)), 3)}
