from tests.support import auth, dumps, order_body, service_auth


def test_a_dispute_from_order_to_decision(client, clock):
    r = client.http.post("/orders", headers=service_auth("svc"), body=dumps(order_body()))
    assert r.status_code == 201, r.body
    r = client.http.post("/orders/o-1/shipment", headers=auth("s-1"),
                         body=dumps({"carrier": "CP", "tracking_number": "CN123"}))
    assert r.status_code == 200, r.body
    r = client.http.post("/orders/o-1/tracking-events", headers=service_auth("svc"),
                         body=dumps({"status": "DELIVERED", "occurred_at": "2026-11-01T12:00:00Z"}))
    assert r.status_code == 200, r.body
    r = client.http.post("/orders/o-1/disputes", headers=auth("b-1"), body=dumps({
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}))
    assert r.status_code == 201, r.body
    d = r.json_body
    print(d)
