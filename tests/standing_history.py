"""Seller standing and buyer signals recomputed from the whole stored history (every order and
dispute), written again here from the contract's words, independently of the counters: the
stateful tests compare what the service answers with this after every step."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.disputes import Dispute, Status
from chalicelib.domain.orders import Order
from chalicelib.domain.policy import Policy


def _in_window(placed: datetime, now: datetime, days: int) -> bool:
    return now.date() - timedelta(days=days - 1) <= placed.date() <= now.date()


def _defective(order: Order, disputes: list[Dispute]) -> bool:
    """A resolution with the seller at fault, or a refund because it never shipped, unless a
    moderation admin reversed the order's defect."""
    seller_fault = any(d.status is Status.RESOLVED and d.resolution and d.resolution.to_dict().get("fault") == "SELLER"
                       for d in disputes)
    defective = seller_fault or any(r.cause == "NOT_SHIPPED" for r in order.refunds)
    return defective and not order.defect_reversed  # a reversed defect is never counted again


def standing(seller_id: str, orders: Iterable[Order], disputes: Iterable[Dispute], now: datetime,
             policy: Policy) -> dict[str, Any]:
    mine = [o for o in orders if o.seller_id == seller_id]
    by_order: dict[str, list[Dispute]] = {}
    for d in disputes:
        by_order.setdefault(d.order_id, []).append(d)
    days = policy.standing_window_days
    window = [o for o in mine if _in_window(o.created_at, now, days)]
    if len(window) < policy.standing_min_orders:
        days = policy.standing_long_window_days
        window = [o for o in mine if _in_window(o.created_at, now, days)]
    n = len(window)
    n_disputes = sum(len(by_order.get(o.order_id, [])) for o in window)
    defective = [o for o in window if _defective(o, by_order.get(o.order_id, []))]
    buyers = len({o.buyer_id for o in defective})
    rate = len(defective) / n if n else 0.0
    if n < policy.standing_min_orders:
        level = "NOT_ENOUGH_DATA"
    elif rate > policy.at_risk_defect_rate and buyers >= policy.at_risk_buyers:
        level = "AT_RISK"
    elif rate > policy.watch_defect_rate and buyers >= policy.watch_buyers:
        level = "WATCH"
    else:
        level = "GOOD"
    return {"seller_id": seller_id, "window_days": days, "orders": n, "disputes": n_disputes,
            "defects": len(defective), "defect_rate": round(rate, 4),
            "dispute_rate": round(n_disputes / n, 4) if n else 0.0, "defective_buyers": buyers, "level": level}


def signals(buyer_id: str, orders: Iterable[Order], disputes: Iterable[Dispute], now: datetime,
            policy: Policy) -> dict[str, Any]:
    days = policy.signals_window_days
    orders = list(orders)
    placed = {o.order_id: o.created_at for o in orders}
    orders_in = [o for o in orders if o.buyer_id == buyer_id and _in_window(o.created_at, now, days)]
    ds = [d for d in disputes if d.buyer_id == buyer_id and _in_window(placed[d.order_id], now, days)]
    resolved = [d for d in ds if d.status is Status.RESOLVED and d.resolution]
    won = sum(1 for d in resolved if d.resolution and d.resolution.to_dict()["outcome"] != "REJECTED")
    lost = sum(1 for d in resolved if d.resolution and d.resolution.to_dict()["outcome"] == "REJECTED")
    against = sum(1 for d in resolved if d.resolution and (d.resolution.to_dict()["outcome"] == "REJECTED"
                                                             or d.resolution.to_dict().get("fault") == "BUYER"))
    return {"buyer_id": buyer_id, "window_days": days, "orders": len(orders_in), "disputes_opened": len(ds),
            "won": won, "lost": lost, "cancelled": sum(1 for d in ds if d.status is Status.CANCELLED),
            "flag": "FREQUENT_DISPUTER" if against >= policy.frequent_disputer_losses else "NONE"}


def without_as_of(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "as_of"}
