"""A small driver over chalice.test.Client for the API tests: one method per route used."""
from __future__ import annotations

import json
from typing import Any

from tests.support import auth, order_body, service_auth

# A service caller is ("service", client id): a client-credentials token with both service scopes.
BUYER, SELLER, MODERATOR, SERVICE = ("b-1",), ("s-1",), ("m-1", "moderators"), ("service", "svc")


def headers_for(who: tuple[str, ...]) -> dict[str, str]:
    return service_auth(who[1]) if who[0] == "service" else auth(*who)


class Api:
    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, method: str, path: str, who: tuple[str, ...] | None, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        h = dict(headers_for(who)) if who else {"Content-Type": "application/json"}
        h.update(headers or {})
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        return getattr(self.client.http, method.lower())(path, headers=h, body=raw)

    def post(self, path: str, who: tuple[str, ...] | None, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, who, {} if body is None else body, **kw)

    def get(self, path: str, who: tuple[str, ...] | None = BUYER) -> Any:
        return self.call("GET", path, who)

    # set-up steps
    def delivered_order(self, order_id: str = "o-1", **kw: Any) -> dict[str, Any]:
        assert self.post("/orders", SERVICE, order_body(order_id, **kw)).status_code == 201
        shipped = self.post(f"/orders/{order_id}/shipment", SELLER, {"carrier": "CP", "tracking_number": "CN1"})
        assert shipped.status_code == 200
        # Delivered the moment it shipped: whatever clock the app runs on.
        r = self.post(f"/orders/{order_id}/tracking-events", SERVICE,
                      {"status": "DELIVERED", "occurred_at": shipped.json_body["shipment"]["shipped_at"]})
        assert r.status_code == 200, r.json_body
        return r.json_body

    def open_dispute(self, order_id: str = "o-1", requested: dict | None = None, **kw: Any) -> dict[str, Any]:
        body = {"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
                "requested": requested or {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}
        body.update(kw)
        r = self.post(f"/orders/{order_id}/disputes", BUYER, body)
        assert r.status_code == 201, r.json_body
        return r.json_body

    def negotiating(self) -> dict[str, Any]:
        self.delivered_order()
        d = self.open_dispute()
        r = self.post(f"/disputes/{d['dispute_id']}/reject", SELLER, {"message": "Colour is as listed"})
        assert r.status_code == 200, r.json_body
        return r.json_body

    def escalated(self) -> dict[str, Any]:
        d = self.negotiating()
        r = self.post(f"/disputes/{d['dispute_id']}/escalate", SELLER, {})
        assert r.status_code == 200, r.json_body
        return r.json_body

    def snapshot(self, order_id: str = "o-1", dispute_id: str | None = None) -> tuple[Any, ...]:
        """Everything a party can read of the stored state."""
        o = self.get(f"/orders/{order_id}", BUYER).json_body
        o.pop("dispute_eligibility", None)  # computed from the clock, not stored
        d = self.get(f"/disputes/{dispute_id}", BUYER).json_body if dispute_id else None
        m = self.get(f"/disputes/{dispute_id}/messages", BUYER).json_body if dispute_id else None
        return o, d, m
