"""One function's first invocation in a fresh process, as a Lambda container runs it: `import app`,
then one event to one handler over AWS emulated by a moto server in another process (moto itself
imports cryptography, so it must not share this process). Prints the heavy packages the process
holds afterwards. Driven by tests/integration/test_entry_point_imports.py.

    python -m tests.integration.entry_points <case>       (the environment names the emulator)
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

HEAVY = ("PIL", "pypdf", "jwt", "cryptography", "stripe")
SCHEDULED = {"id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-01T12:00:00Z",
             "region": "us-east-1", "resources": [], "detail": {}, "account": "123456789012", "version": "0"}
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def sqs_event(body: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": json.dumps(body), "attributes": {},
                         "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}


def a_dispute(services: Any, order_id: str) -> Any:
    """A delivered order with a dispute open on it, made through the use cases (no token involved)."""
    from chalicelib.api import requests as parse
    from chalicelib.domain.identity import Identity
    from chalicelib.services import commands as c

    service, buyer, seller = Identity("svc", frozenset({"services"})), Identity("b-1", frozenset()), \
        Identity("s-1", frozenset())
    services.orders.register(service, parse.register_order({
        "order_id": order_id, "buyer_id": "b-1", "seller_id": "s-1",
        "items": [{"item_id": "i-1", "title": "Red dress", "quantity": 1,
                   "unit_price": {"amount": 2000, "currency": "USD"}}],
        "total": {"amount": 2000, "currency": "USD"}, "estimated_delivery_at": "2026-11-20T00:00:00Z"}))
    shipped = services.orders.ship(seller, parse.command(c.ShipOrder, {"carrier": "CP", "tracking_number": "CN1"},
                                                         order_id=order_id))
    assert shipped.shipment is not None
    scan = {"status": "DELIVERED", "occurred_at": shipped.shipment.shipped_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    services.orders.record_scan(service, parse.command(c.RecordScan, scan, order_id=order_id))
    return services.disputes.open(buyer, parse.open_dispute({
        "reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
        "requested": {"type": "REFUND_FULL"}}, order_id))


def run(case: str) -> None:
    from app import app
    from chalicelib.bootstrap import container

    if case == "api":
        from chalice.test import Client

        dispute = a_dispute(container().services, "o-api")
        with Client(app, stage_name="prod") as client:  # the stage that pays with Stripe
            r = client.http.get(f"/disputes/{dispute.dispute_id}",
                                headers={"Authorization": f"Bearer {os.environ['TOKEN']}"})
        assert r.status_code == 200, r.body
    elif case == "webhook":
        from chalice.test import Client

        with Client(app, stage_name="prod") as client:  # the stage that pays with Stripe
            r = client.http.post("/payments/webhook", headers={"Stripe-Signature": "t=1,v1=00"}, body=b"{}")
        assert r.status_code == 400 and b"INVALID_WEBHOOK" in r.body, r.body  # refused by the Stripe SDK
    elif case == "timer-fired":
        dispute = a_dispute(container().services, "o-timer")
        app.handler_map["timer-fired"](sqs_event({"kind": "REMIND", "timer": {
            "dispute_id": dispute.dispute_id, "action": "SELLER_RESPONSE", "version": 0}}), None)
    elif case == "evidence-uploaded":
        from chalicelib.api import requests as parse
        from chalicelib.domain.identity import Identity
        from chalicelib.services import commands as c

        services = container().services
        dispute = a_dispute(services, "o-evidence")
        slot = {"file_name": "receipt.pdf", "content_type": "application/pdf", "size_bytes": len(PDF)}
        evidence, _ = services.evidence.request_upload(Identity("b-1", frozenset()),
                                                       parse.command(c.RequestUpload, slot, dispute_id=dispute.dispute_id))
        container().clients.get("s3").put_object(Bucket=container().settings.evidence_bucket,
                                                  Key=evidence.upload_key, Body=PDF)
        app.handler_map["evidence-uploaded"](sqs_event({"Records": [{"s3": {"object": {
            "key": evidence.upload_key}}}]}), None)
        assert services.evidence.list(Identity("b-1", frozenset()), dispute.dispute_id)[0][0].status != "PENDING_UPLOAD"
    elif case == "pay-refunds":
        from datetime import timedelta

        from chalicelib.api import requests as parse
        from chalicelib.domain.identity import Identity
        from chalicelib.ports import OutboxKind
        from chalicelib.relay import refund_message
        from chalicelib.services.disputes import AcceptOffer

        services = container().services
        dispute = a_dispute(services, "o-refund")
        services.disputes.accept_offer(Identity("s-1", frozenset()), parse.command(
            AcceptOffer, {}, dispute_id=dispute.dispute_id, offer_id=dispute.offers[-1].offer_id))
        later = container().clock.now() + timedelta(days=1)
        owed = [r for r in container().outbox.pending(later, 50) if r.kind is OutboxKind.REFUND]
        assert len(owed) == 1, owed
        # The provider is unreachable here (STRIPE_API_BASE): the attempt stays owed, after the SDK tried.
        assert app.handler_map["pay-refunds"](sqs_event(refund_message(owed[0])), None) == {"batchItemFailures": []}
    else:  # the scheduled ones: release-escrow, drain-outbox, expire-evidence
        app.handler_map[case](SCHEDULED, None)
    print(json.dumps({"imported": sorted(name for name in HEAVY if name in sys.modules),
                      "provider": container().services.payments.provider.name}))


if __name__ == "__main__":
    run(sys.argv[1])
