"""What one invocation costs and carries: DynamoDB requests per read, and log keys per invocation."""
from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.api import BUYER, SERVICE, Api
from tests.support import dynamodb_requests, order_body


def test_reading_a_dispute_is_one_dynamodb_request(client: Any) -> None:
    api = Api(client)
    api.delivered_order()
    d = api.open_dispute()
    with dynamodb_requests() as seen:
        r = api.get(f"/disputes/{d['dispute_id']}")
    assert r.status_code == 200 and r.json_body["evidence_checklist"]["satisfied"] is False
    assert seen == ["GetItem"]


def test_a_page_of_twenty_disputes_is_one_dynamodb_request(client: Any) -> None:
    api = Api(client)
    for i in range(21):
        api.delivered_order(f"o-{i}")
        api.open_dispute(f"o-{i}")
    with dynamodb_requests() as seen:
        r = api.get("/disputes?role=buyer&limit=20")
    assert r.status_code == 200 and len(r.json_body["items"]) == 20 and r.json_body["next_cursor"]
    assert all("evidence_checklist" in d for d in r.json_body["items"])
    assert seen == ["Query"]


def test_a_page_of_orders_is_one_dynamodb_request(client: Any) -> None:
    api = Api(client)
    for i in range(3):
        assert api.post("/orders", SERVICE, order_body(f"o-{i}")).status_code == 201
    with dynamodb_requests() as seen:
        r = api.get("/orders?role=buyer", BUYER)
    assert r.status_code == 200 and len(r.json_body["items"]) == 3
    assert seen == ["Query"]


def test_a_timer_message_logs_with_its_own_keys_not_the_previous_requests(client: Any) -> None:
    from app import app
    from chalicelib.logs import logger

    api = Api(client)
    api.delivered_order()
    assert api.get("/orders/o-1").status_code == 200  # leaves order_id and caller on the logger
    logger.setLevel("INFO")
    out = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(out)
    try:
        message = {"kind": "EXPIRE", "timer": {"dispute_id": "d-unknown", "action": "SELLER_RESPONSE"}}
        app.handler_map["timer-fired"]({"Records": [{
            "messageId": "m-1", "receiptHandle": "r", "body": json.dumps(message), "attributes": {},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:timers", "awsRegion": "us-east-1"}]}, None)
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    finally:
        handler.setStream(previous)
        logger.setLevel("WARNING")
    timer_lines = [line for line in lines if line.get("message") == "timer"]
    assert timer_lines and timer_lines[0]["outcome"] == "stale"
    assert timer_lines[0]["dispute_id"] == "d-unknown"
    for line in timer_lines:
        assert "order_id" not in line and "caller" not in line and "route" not in line, line


@pytest.mark.parametrize("handler", ["release-escrow", "drain-outbox", "expire-evidence"])
def test_a_schedule_starts_from_clean_log_keys(client: Any, handler: str) -> None:
    from app import app
    from chalicelib.logs import logger

    logger.append_keys(order_id="o-previous", caller="someone")
    app.handler_map[handler]({"id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
                              "time": "2026-11-01T12:00:00Z", "region": "us-east-1", "resources": [],
                              "detail": {}, "account": "123456789012", "version": "0"}, None)
    keys = logger.get_current_keys()
    assert "order_id" not in keys and "caller" not in keys and keys.get("handler") == handler


def test_the_reconciler_logs_only_when_it_had_something_to_do(client: Any) -> None:
    """Before: "outbox drained" every 5 s of an idle `make dev` (and every minute deployed)."""
    from app import app
    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb.mapping import outbox_item
    from chalicelib.adapters.dynamodb.repositories import DynamoOutbox
    from chalicelib.logs import logger
    from chalicelib.ports import OutboxRecord

    event = {"id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-01T12:00:00Z",
             "region": "us-east-1", "resources": [], "detail": {}, "account": "123456789012", "version": "0"}
    logger.setLevel("INFO")
    out = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(out)
    try:
        assert app.handler_map["drain-outbox"](event, None) == {"delivered": 0, "failed": 0}
        idle = out.getvalue()
        c = bootstrap.container()
        owed = OutboxRecord.event("order.registered", {"order_id": "o-x"}, c.clock.now() - timedelta(minutes=5))
        assert isinstance(c.outbox, DynamoOutbox)
        outbox_item(c.outbox.t, owed).save()  # an event a crash left behind
        assert app.handler_map["drain-outbox"](event, None) == {"delivered": 1, "failed": 0}
        busy = out.getvalue()[len(idle):]
    finally:
        handler.setStream(previous)
        logger.setLevel("WARNING")
    assert "outbox drained" not in idle
    assert [json.loads(line)["delivered"] for line in busy.splitlines() if '"outbox drained"' in line] == [1]
