"""Routes and event handlers only: each parses, calls one service, and renders the result."""
from __future__ import annotations

import json
from urllib.parse import unquote_plus

from chalice import Chalice, Rate

from chalicelib import schemas, views
from chalicelib.bootstrap import container
from chalicelib.config import evidence_queue_name, sweep_rate_minutes, timer_queue_name
from chalicelib.http import Api, Reply, Request
from chalicelib.logs import logger

app = Chalice(app_name="buyer-protection")
api = Api(app, verifier=lambda: container().verifier, idempotent=lambda: container().idempotent,
          idempotency_config=lambda: container().idempotency_config)


def svc():  # type: ignore[no-untyped-def]
    return container().service


def policy():  # type: ignore[no-untyped-def]
    return container().settings.policy


def order_view(order) -> dict:  # type: ignore[no-untyped-def]
    return views.order(order, svc().clock.now(), policy())


def dispute_view(dispute) -> dict:  # type: ignore[no-untyped-def]
    return views.dispute(dispute, policy(), svc().checklist(dispute))


@api.route("/health", public=True)
def health() -> Reply:
    return 200, {"status": "ok"}


# ---- orders and escrow ------------------------------------------------------------------------
@api.route("/orders", "POST", schemas.REGISTER_ORDER)
def register_order(req: Request) -> Reply:
    order, created = svc().register_order(req.identity, req.body)
    return (201 if created else 200), order_view(order)


@api.route("/orders")
def list_orders(req: Request) -> Reply:
    items, cursor = svc().list_orders(req.identity, req.choice("role", ("buyer", "seller"), "buyer"),
                                      req.limit(), req.cursor())
    return 200, views.page([order_view(o) for o in items], cursor)


@api.route("/orders/{order_id}")
def get_order(req: Request, order_id: str) -> Reply:
    return 200, order_view(svc().get_order(req.identity, order_id))


@api.route("/orders/{order_id}/shipment", "POST", schemas.SHIPMENT)
def ship_order(req: Request, order_id: str) -> Reply:
    return 200, order_view(svc().ship(req.identity, order_id, req.body))


@api.route("/orders/{order_id}/tracking-events", "POST", schemas.TRACKING_EVENT)
def tracking_event(req: Request, order_id: str) -> Reply:
    return 200, order_view(svc().record_tracking(req.identity, order_id, req.body))


@api.route("/orders/{order_id}/confirm-receipt", "POST", schemas.EMPTY)
def confirm_receipt(req: Request, order_id: str) -> Reply:
    return 200, order_view(svc().confirm_receipt(req.identity, order_id))


# ---- disputes ---------------------------------------------------------------------------------
@api.route("/orders/{order_id}/disputes", "POST", schemas.OPEN_DISPUTE)
def open_dispute(req: Request, order_id: str) -> Reply:
    return 201, dispute_view(svc().open_dispute(req.identity, order_id, req.body))


@api.route("/disputes")
def list_disputes(req: Request) -> Reply:
    items, cursor = svc().list_disputes(
        req.identity, req.choice("role", ("buyer", "seller"), "buyer"),
        req.choice("status", views.DISPUTE_STATUSES), req.limit(), req.cursor())
    return 200, views.page([dispute_view(d) for d in items], cursor)


@api.route("/disputes/{dispute_id}")
def get_dispute(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().get_dispute(req.identity, dispute_id))


@api.route("/disputes/{dispute_id}/offers", "POST", schemas.OFFER)
def make_offer(req: Request, dispute_id: str) -> Reply:
    dispute, offer = svc().make_offer(req.identity, dispute_id, req.body)
    return 201, {**dispute_view(dispute), "offer": offer.to_dict()}


@api.route("/disputes/{dispute_id}/offers/{offer_id}/accept", "POST", schemas.ACTION)
def accept_offer(req: Request, dispute_id: str, offer_id: str) -> Reply:
    return 200, dispute_view(svc().accept_offer(req.identity, dispute_id, offer_id, req.body))


@api.route("/disputes/{dispute_id}/reject", "POST", schemas.REJECT)
def reject_request(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().reject(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/escalate", "POST", schemas.ACTION_WITH_MESSAGE)
def escalate(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().escalate(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/cancel", "POST", schemas.ACTION_WITH_MESSAGE)
def cancel(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().cancel(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/return-shipment", "POST", schemas.RETURN_SHIPMENT)
def return_shipment(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().ship_return(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/confirm-return", "POST", schemas.ACTION)
def confirm_return(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().confirm_return(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/evidence", "POST", schemas.EVIDENCE)
def request_upload(req: Request, dispute_id: str) -> Reply:
    evidence, post = svc().request_upload(req.identity, dispute_id, req.body)
    return 201, views.upload_slot(evidence, post)


@api.route("/disputes/{dispute_id}/evidence")
def list_evidence(req: Request, dispute_id: str) -> Reply:
    now = svc().clock.now()
    return 200, views.page([views.evidence(e, now, links) for e, links in svc().list_evidence(req.identity, dispute_id)],
                           None)


@api.route("/disputes/{dispute_id}/messages", "POST", schemas.MESSAGE)
def post_message(req: Request, dispute_id: str) -> Reply:
    return 201, views.message(svc().post_message(req.identity, dispute_id, req.body))


@api.route("/disputes/{dispute_id}/messages")
def list_messages(req: Request, dispute_id: str) -> Reply:
    items, cursor = svc().list_messages(req.identity, dispute_id, req.limit(), req.cursor())
    return 200, views.page([views.message(m) for m in items], cursor)


# ---- moderation -------------------------------------------------------------------------------
@api.route("/moderation/disputes")
def moderation_queue(req: Request) -> Reply:
    items, cursor = svc().moderation_queue(req.identity, req.flag("overdue"), req.limit(), req.cursor())
    return 200, views.page([dispute_view(d) for d in items], cursor)


@api.route("/disputes/{dispute_id}/decision", "POST", schemas.DECISION)
def decide(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(svc().decide(req.identity, dispute_id, req.body))


@api.route("/message-templates")
def message_templates(req: Request) -> Reply:
    return 200, views.templates(req.choice("reason", views.REASONS))


# ---- scheduled --------------------------------------------------------------------------------
@app.schedule(Rate(sweep_rate_minutes(), unit=Rate.MINUTES), name="release-escrow")
def release_escrow(event) -> dict:  # type: ignore[no-untyped-def]
    """EventBridge: pay sellers whose protection period ended with no dispute open."""
    released = svc().release_due_escrow()
    logger.info("escrow sweep", released=len(released))
    return {"released": released}


@app.on_sqs_message(queue=timer_queue_name(), batch_size=1, name="timer-fired")
def timer_fired(event) -> None:  # type: ignore[no-untyped-def]
    """Step Functions: a deadline timer reminds or expires (statemachines/deadline_timer.asl.json)."""
    for record in event:
        message = json.loads(record.body)
        timer = message["timer"]
        outcome = svc().timer_fired(message["kind"], timer["dispute_id"], timer["action"])
        logger.info("timer", kind=message["kind"], dispute_id=timer["dispute_id"], action=timer["action"],
                    outcome=outcome)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="drain-outbox")
def drain_outbox(event) -> dict:  # type: ignore[no-untyped-def]
    """EventBridge: the reconciler. Starts timers and publishes events a crash left behind."""
    delivered, failed = svc().drain_outbox()
    logger.info("outbox drained", delivered=delivered, failed=failed)
    return {"delivered": delivered, "failed": failed}


@app.on_sqs_message(queue=evidence_queue_name(), batch_size=1, name="evidence-uploaded")
def evidence_uploaded(event) -> None:  # type: ignore[no-untyped-def]
    """S3 -> SQS: an upload landed under uploads/; check it and make the copy that is served."""
    for record in event:
        message = json.loads(record.body)
        for s3_record in message.get("Records", []):  # none in S3's first s3:TestEvent
            key = unquote_plus(s3_record["s3"]["object"]["key"])
            logger.info("evidence", key=key, outcome=svc().process_upload(key))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="expire-evidence")
def expire_evidence(event) -> dict:  # type: ignore[no-untyped-def]
    """EventBridge: upload slots never used become EXPIRED and give the party its place back."""
    return {"expired": svc().expire_uploads()}
