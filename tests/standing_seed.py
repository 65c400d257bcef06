"""A large seller's standing counters written straight into the moderation table, as the facts of
``orders`` orders, ``disputes`` disputes and ``defects`` defects (of ``buyers`` distinct buyers)
would have left them: the same day and month items, the same attribute names and set members
(chalicelib/domain/standing.py). For tests and the bench, which then read it back for real."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from chalicelib.domain.standing import day_bucket, defect_member, member_bucket, month_bucket, seller_key


@dataclass(frozen=True)
class Seeded:
    orders: int
    disputes: int
    defects: int
    buyers: int


def seed_seller(dynamodb: Any, table: str, seller_id: str, today: date, orders: int = 10_000,
                disputes: int = 1_000, defects: int = 300, buyers: int = 40, recent_orders: int = 10,
                recent_days: int = 90, long_days: int = 365) -> Seeded:
    """``recent_orders`` of the orders fall in the last ``recent_days`` days (few: the long window
    is read), the rest spread over the older days of the long window; the disputes and defects go
    to the older orders, one defect per order, buyer ``i % buyers``."""
    old_days = [today - timedelta(days=n) for n in range(recent_days, long_days)]
    new_days = [today - timedelta(days=n) for n in range(recent_days)]
    per_item: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"orders": 0, "disputes": 0, "defects": 0,
                                                                           "members": set()})

    def add(day: date, name: str, member: str | None = None) -> None:
        for bucket in (day_bucket(day), month_bucket(day)):
            per_item[(seller_key(seller_id), bucket)][name] += 1
            if member:  # kept in the bucket's member shard, as the service keeps it
                per_item[(seller_key(seller_id), member_bucket(bucket, member))]["members"].add(member)

    for i in range(orders - recent_orders):
        day = old_days[i % len(old_days)]
        add(day, "orders")
        if i < disputes:
            add(day, "disputes")
        if i < defects:
            add(day, "defects", defect_member(f"b-{i % buyers}", f"o-{i}"))
    for i in range(recent_orders):
        add(new_days[i % len(new_days)], "orders")
    for (pk, sk), item in per_item.items():
        values: dict[str, Any] = {":o": {"N": str(item["orders"])}, ":d": {"N": str(item["disputes"])},
                                  ":f": {"N": str(item["defects"])}}
        expression = "ADD orders :o, disputes :d, defects :f"
        if item["members"]:
            values[":m"] = {"SS": sorted(item["members"])}
            expression += ", members :m"
        dynamodb.update_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, UpdateExpression=expression,
                             ExpressionAttributeValues=values)
    return Seeded(orders, disputes, defects, buyers)
