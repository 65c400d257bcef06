"""Routes and event handlers only: each parses, calls one service, and renders the result."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from chalice.app import Chalice, CloudWatchEvent, Rate, SQSEvent

from chalicelib.api import requests as parse
from chalicelib.api import schemas, views
from chalicelib.api.routing import Api, RawRequest, Reply, Request
from chalicelib.bootstrap import container
from chalicelib.config import evidence_queue_name, refund_queue_name, sweep_rate_minutes, timer_queue_name
from chalicelib.console.pages import blueprint as console_pages
from chalicelib.domain.disputes import ASSIGNED_FILTERS, QueueFilter
from chalicelib.domain.disputes import Command as C
from chalicelib.domain.orders import Order, OrderCommand
from chalicelib.logs import logger, start_invocation
from chalicelib.services import Services
from chalicelib.services import commands as c
from chalicelib.services.access import Grant
from chalicelib.services.commands import PageRequest
from chalicelib.services.disputes import (
    AcceptOffer,
    Cancel,
    ClaimCase,
    ConfirmReturn,
    ContestReturn,
    Decide,
    DisputeView,
    Escalate,
    MakeOffer,
    RejectRequest,
    ReleaseCase,
    ShipReturn,
)
from chalicelib.services.moderation import Insights

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

app = Chalice(app_name="buyer-protection")
api = Api(app, verifier=lambda: container().verifier, idempotent=lambda: container().idempotent,
          idempotency_config=lambda: container().idempotency_config,
          sandbox=lambda: container().settings.sandbox)
app.register_blueprint(console_pages)  # the case team's console: HTML pages under /console (docs/CONSOLE.md)


def services() -> Services:
    return container().services


def order_view(req: Request, order: Order) -> dict[str, Any]:
    return views.order(order, container().clock.now(), container().settings.policy, req.identity)


def dispute_view(req: Request, dispute: DisputeView, insights: Insights | None = None) -> dict[str, Any]:
    """A dispute as the caller sees it. Where a moderator reads cases (``insights``: the routes
    that read, and the claim and its release), they also see the seller's standing and the
    buyer's signals, read once per party for a whole page. A decision's answer leaves them out:
    reading them would take the decision over its DynamoDB budget
    (tests/integration/test_dynamodb_calls.py); the case page reads them again."""
    return views.dispute(dispute, container().clock.now(), container().settings.policy, req.identity,
                         insights.of(dispute.dispute) if insights is not None else None)


def read_view(req: Request, dispute: DisputeView) -> dict[str, Any]:
    return dispute_view(req, dispute, services().moderation.insights(req.identity))


def disputes_page(req: Request, items: list[DisputeView], cursor: str | None) -> dict[str, Any]:
    insights = services().moderation.insights(req.identity)
    return views.page([dispute_view(req, d, insights) for d in items], cursor)


PAGED = ("limit", "cursor")  # the query parameters of every list (page(req) reads them)


def page(req: Request) -> PageRequest:
    return PageRequest(req.limit(), req.cursor())


@api.route("/health", public=True)
def health() -> Reply:
    return 200, {"status": "ok"}


# ---- orders and escrow ------------------------------------------------------------------------
@api.route("/orders", "POST", schemas.REGISTER_ORDER)
def register_order(req: Request) -> Reply:
    order, created = services().orders.register(req.identity, parse.register_order(req.body))
    return (201 if created else 200), order_view(req, order)


@api.route("/orders", query=("role", *PAGED))
def list_orders(req: Request) -> Reply:
    items, cursor = services().orders.list(req.identity, req.role(), page(req))
    return 200, views.page([order_view(req, o) for o in items], cursor)


@api.route("/orders/{order_id}")
def get_order(req: Request, order_id: str) -> Reply:
    return 200, order_view(req, services().orders.get(req.identity, order_id))


@api.route("/orders/{order_id}/shipment", "POST", schemas.SHIPMENT, action=OrderCommand.SHIP)
def ship(req: Request, order_id: str) -> Reply:
    return 200, order_view(req, services().orders.ship(req.identity, req.command(c.ShipOrder, order_id=order_id)))


@api.route("/orders/{order_id}/tracking-events", "POST", schemas.TRACKING_EVENT)
def tracking_event(req: Request, order_id: str) -> Reply:
    return 200, order_view(req, services().orders.record_scan(req.identity, req.command(c.RecordScan, order_id=order_id)))


@api.route("/orders/{order_id}/confirm-receipt", "POST", schemas.EMPTY, action=OrderCommand.CONFIRM_RECEIPT)
def confirm_receipt(req: Request, order_id: str) -> Reply:
    return 200, order_view(req, services().orders.confirm_receipt(req.identity, c.ConfirmReceipt(order_id)))


# ---- disputes ---------------------------------------------------------------------------------
@api.route("/orders/{order_id}/disputes", "POST", schemas.OPEN_DISPUTE, action=OrderCommand.OPEN_DISPUTE)
def open_dispute(req: Request, order_id: str) -> Reply:
    return 201, dispute_view(req, services().disputes.open(req.identity, parse.open_dispute(req.body, order_id)))


@api.route("/disputes", query=("role", "status", *PAGED))
def list_disputes(req: Request) -> Reply:
    items, cursor = services().disputes.list(req.identity, req.role(),
                                             req.choice("status", views.DISPUTE_STATUSES), page(req))
    return 200, disputes_page(req, items, cursor)


@api.route("/disputes/{dispute_id}")
def get_dispute(req: Request, dispute_id: str) -> Reply:
    return 200, read_view(req, services().disputes.get(req.identity, dispute_id))


@api.route("/disputes/{dispute_id}/offers", "POST", schemas.OFFER, action=C.MAKE_OFFER)
def make_offer(req: Request, dispute_id: str) -> Reply:
    dispute, offer = services().disputes.make_offer(req.identity, req.command(MakeOffer, dispute_id=dispute_id))
    return 201, {**dispute_view(req, dispute), "offer": views.offer(offer, dispute.dispute.order_total)}


@api.route("/disputes/{dispute_id}/offers/{offer_id}/accept", "POST", schemas.ACTION,
           action=(C.ACCEPT_REFUND, C.ACCEPT_RESEND, C.ACCEPT_RETURN))
def accept_offer(req: Request, dispute_id: str, offer_id: str) -> Reply:
    cmd = req.command(AcceptOffer, dispute_id=dispute_id, offer_id=offer_id)
    return 200, dispute_view(req, services().disputes.accept_offer(req.identity, cmd))


@api.route("/disputes/{dispute_id}/reject", "POST", schemas.REJECT, action=C.REJECT)
def reject(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().disputes.reject(req.identity, req.command(RejectRequest, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/escalate", "POST", schemas.ACTION_WITH_MESSAGE, action=C.ESCALATE)
def escalate(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().disputes.escalate(req.identity, req.command(Escalate, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/cancel", "POST", schemas.ACTION_WITH_MESSAGE, action=C.CANCEL)
def cancel(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().disputes.cancel(req.identity, req.command(Cancel, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/return-shipment", "POST", schemas.RETURN_SHIPMENT, action=C.SHIP_RETURN)
def ship_return(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().disputes.ship_return(req.identity, req.command(ShipReturn, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/contest-return", "POST", schemas.CONTEST_RETURN, action=C.CONTEST_RETURN)
def contest_return(req: Request, dispute_id: str) -> Reply:
    cmd = req.command(ContestReturn, dispute_id=dispute_id)
    return 200, dispute_view(req, services().disputes.contest_return(req.identity, cmd))


@api.route("/disputes/{dispute_id}/confirm-return", "POST", schemas.ACTION, action=C.CONFIRM_RETURN)
def confirm_return(req: Request, dispute_id: str) -> Reply:
    cmd = req.command(ConfirmReturn, dispute_id=dispute_id)
    return 200, dispute_view(req, services().disputes.confirm_return(req.identity, cmd))


@api.route("/disputes/{dispute_id}/evidence", "POST", schemas.EVIDENCE, action=Grant.UPLOAD_EVIDENCE)
def upload_evidence(req: Request, dispute_id: str) -> Reply:
    evidence, post = services().evidence.request_upload(req.identity, req.command(c.RequestUpload, dispute_id=dispute_id))
    return 201, views.upload_slot(evidence, post)


@api.route("/disputes/{dispute_id}/evidence")
def list_evidence(req: Request, dispute_id: str) -> Reply:
    now = container().clock.now()
    files = services().evidence.list(req.identity, dispute_id)
    return 200, views.page([views.evidence(e, now, links) for e, links in files], None)


@api.route("/disputes/{dispute_id}/messages", "POST", schemas.MESSAGE, action=Grant.POST_MESSAGE)
def post_message(req: Request, dispute_id: str) -> Reply:
    return 201, views.message(services().messages.post(req.identity, req.command(c.PostMessage, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/messages", query=PAGED)
def list_messages(req: Request, dispute_id: str) -> Reply:
    items, cursor = services().messages.list(req.identity, dispute_id, page(req))
    return 200, views.page([views.message(m) for m in items], cursor)


# ---- moderation -------------------------------------------------------------------------------
@api.route("/moderation/disputes", query=("overdue", "assigned", "reason", *PAGED))
def moderation_queue(req: Request) -> Reply:
    which = QueueFilter(overdue=req.flag("overdue"), assigned=req.choice("assigned", ASSIGNED_FILTERS),
                        reason=req.choice("reason", views.REASONS))
    items, cursor = services().disputes.moderation_queue(req.identity, which, page(req))
    return 200, disputes_page(req, items, cursor)


@api.route("/moderation/next", "POST", schemas.EMPTY)
def next_case(req: Request) -> Reply:
    dispute = services().disputes.next_case(req.identity)
    return (204, None) if dispute is None else (200, read_view(req, dispute))


@api.route("/disputes/{dispute_id}/claim", "POST", schemas.EMPTY, action=Grant.CLAIM)
def claim(req: Request, dispute_id: str) -> Reply:
    return 200, read_view(req, services().disputes.claim(req.identity, ClaimCase(dispute_id)))


@api.route("/disputes/{dispute_id}/release", "POST", schemas.EMPTY, action=Grant.RELEASE)
def release(req: Request, dispute_id: str) -> Reply:
    return 200, read_view(req, services().disputes.release(req.identity, ReleaseCase(dispute_id)))


@api.route("/disputes/{dispute_id}/notes", "POST", schemas.NOTE, action=Grant.ADD_NOTE)
def add_note(req: Request, dispute_id: str) -> Reply:
    return 201, views.note(services().notes.add(req.identity, req.command(c.AddNote, dispute_id=dispute_id)))


@api.route("/disputes/{dispute_id}/notes", query=PAGED)
def list_notes(req: Request, dispute_id: str) -> Reply:
    items, cursor = services().notes.list(req.identity, dispute_id, page(req))
    return 200, views.page([views.note(n) for n in items], cursor)


@api.route("/disputes/{dispute_id}/decision", "POST", schemas.DECISION, action=(C.DECIDE, C.DECIDE_RETURN))
def decide(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().disputes.decide(req.identity, req.command(Decide, dispute_id=dispute_id)))


# ---- moderation intelligence: standing, signals, auto-resolution rules -------------------------
@api.route("/sellers/{seller_id}/standing")
def seller_standing(req: Request, seller_id: str) -> Reply:
    return 200, services().moderation.standing(req.identity, seller_id).to_dict()


@api.route("/buyers/{buyer_id}/signals")
def buyer_signals(req: Request, buyer_id: str) -> Reply:
    return 200, services().moderation.signals(req.identity, buyer_id).to_dict()


@api.route("/orders/{order_id}/defect-reversal", "POST", schemas.EMPTY)
def reverse_defect(req: Request, order_id: str) -> Reply:
    order = services().moderation.reverse_defect(req.identity, order_id)
    return 200, {"order_id": order.order_id, "seller_id": order.seller_id, "defect_reversed": order.defect_reversed}


@api.route("/moderation/rules")
def list_rules(req: Request) -> Reply:
    return 200, views.page([views.rule(r) for r in services().moderation.rules(req.identity)], None)


@api.route("/moderation/rules/{rule_id}", "PUT", schemas.RULE)
def save_rule(req: Request, rule_id: str) -> Reply:
    return 200, views.rule(services().moderation.save_rule(req.identity, parse.save_rule(req.body, rule_id)))


@api.route("/moderation/rules/{rule_id}/preview", "POST", schemas.RULE)
def preview_rule(req: Request, rule_id: str) -> Reply:
    rule, preview = services().moderation.preview(req.identity, parse.save_rule(req.body, rule_id))
    return 200, {"rule": views.rule(rule), "preview": preview.to_dict()}


@api.route("/moderation/rules/{rule_id}/report")
def rule_report(req: Request, rule_id: str) -> Reply:
    rule, counts = services().moderation.report(req.identity, rule_id)
    return 200, views.rule_report(rule, counts)


@api.route("/moderation/refunds", query=PAGED)
def refunds_needing_attention(req: Request) -> Reply:
    items, cursor = services().payments.needing_attention(req.identity, req.limit(), req.cursor())
    return 200, views.page([order_view(req, o) for o in items], cursor)


@api.route("/orders/{order_id}/refunds/{refund_id}/retry", "POST", schemas.EMPTY, action=OrderCommand.RETRY_REFUND)
def retry_refund(req: Request, order_id: str, refund_id: str) -> Reply:
    return 200, order_view(req, services().payments.retry(req.identity, order_id, refund_id))


# ---- the sandbox (make dev, SANDBOX=true stages only: 404 elsewhere) -----------------------------
@api.route("/sandbox/disputes/{dispute_id}/expire-deadline", "POST", schemas.EMPTY)
def sandbox_expire_deadline(req: Request, dispute_id: str) -> Reply:
    return 200, dispute_view(req, services().sandbox.expire_deadline(req.identity, dispute_id))


@api.route("/sandbox/orders/{order_id}/carrier-scans", "POST", schemas.SIMULATED_SCAN)
def sandbox_carrier_scan(req: Request, order_id: str) -> Reply:
    return 200, order_view(req, services().sandbox.carrier_scan(req.identity, req.command(c.SimulateScan, order_id=order_id)))


@api.route("/sandbox/orders/{order_id}/refunds/{refund_id}/settle", "POST", schemas.SIMULATED_SETTLEMENT)
def sandbox_settle_refund(req: Request, order_id: str, refund_id: str) -> Reply:
    cmd = parse.simulate_settlement(req.body, order_id, refund_id)
    return 200, order_view(req, services().sandbox.settle_refund(req.identity, cmd))


# ---- payment provider -------------------------------------------------------------------------
@api.route("/payments/webhook", "POST", public=True, raw=True)
def payment_webhook(raw: RawRequest) -> Reply:
    """The payment provider's signed notices (Stripe's webhooks); verified before anything."""
    return 200, {"received": True, "outcome": services().payments.webhook(raw.body, raw.headers)}


@api.route("/message-templates", query=("reason",))
def message_templates(req: Request) -> Reply:
    return 200, views.templates(req.choice("reason", views.REASONS))


# ---- scheduled --------------------------------------------------------------------------------
@app.schedule(Rate(sweep_rate_minutes(), unit=Rate.MINUTES), name="release-escrow")
def release_escrow(event: CloudWatchEvent) -> dict[str, list[str]]:
    """EventBridge: pay sellers whose protection period ended with no dispute open."""
    start_invocation(handler="release-escrow")
    released = services().orders.release_due_escrow()
    logger.info("escrow sweep", released=len(released))
    return {"released": released}


# pay-refunds takes one message at a time: see pay_refunds.
REFUND_BATCH_SIZE = 1


@app.on_sqs_message(queue=timer_queue_name(), batch_size=1, name="timer-fired")
def timer_fired(event: SQSEvent) -> None:
    """Step Functions: a deadline timer reminds or expires (statemachines/deadline_timer.asl.json)."""
    for record in event:
        message = json.loads(record.body)
        timer = message["timer"]
        start_invocation(handler="timer-fired", **{k: v for k, v in timer.items() if k != "due_at"})
        outcome = services().timers.fired(message["kind"], timer)
        logger.info("timer", kind=message["kind"], outcome=outcome)


@app.on_sqs_message(queue=refund_queue_name(), batch_size=REFUND_BATCH_SIZE, name="pay-refunds")
def pay_refunds(event: SQSEvent) -> PartialItemFailureResponse:
    """SQS: the refunds commits owe, sent to the payment provider off the request path (the only
    function besides the API that holds the provider's keys). A message whose outcome could not
    even be recorded is reported failed and comes back. One message an invocation: attempt N of a
    refund may make N + 1 provider calls (it looks up every earlier attempt, sends, may cancel),
    each bounded by the Stripe client's timeouts (10 s to connect, 10 s per read), so a message
    has the function's whole 120 s (.chalice/config.json, within the queue's 180 s visibility
    timeout) to itself; a batch of five did not fit (tests/deploy/test_template.py). Should one
    still run out of time, its record stays owed and it is sent again under the same key."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    return process_partial_response(event=event.to_dict(), record_handler=refund_record,
                                    processor=BatchProcessor(EventType.SQS))


def refund_record(record: SQSRecord) -> None:
    message = json.loads(record.body)
    start_invocation(handler="pay-refunds", order_id=message.get("order_id"), refund_id=message.get("refund_id"),
                     attempt=message.get("attempt"))
    logger.info("refund", outcome=container().refund_worker.handle(message))


@app.schedule(Rate(1, unit=Rate.MINUTES), name="drain-outbox")
def drain_outbox(event: CloudWatchEvent) -> dict[str, int]:
    """EventBridge: the reconciler. Starts timers, publishes events and hands refunds to the
    refund queue where a crash or an outage left them behind."""
    start_invocation(handler="drain-outbox")
    delivered, failed = services().timers.drain_outbox()
    if delivered or failed:  # every minute deployed, every 5 s in make dev: silence while idle
        logger.info("outbox drained", delivered=delivered, failed=failed)
    return {"delivered": delivered, "failed": failed}


@app.on_sqs_message(queue=evidence_queue_name(), batch_size=1, name="evidence-uploaded")
def evidence_uploaded(event: SQSEvent) -> PartialItemFailureResponse:
    """S3 -> SQS: an upload landed under uploads/; check it and make the copy that is served.
    A message that fails is reported (ReportBatchItemFailures) and comes back after its
    visibility timeout; the others of its batch are done."""
    # Imported here: only this function pays for Powertools' event classes (~0.1 s at a cold start).
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    return process_partial_response(event=event.to_dict(), record_handler=evidence_record,
                                    processor=BatchProcessor(EventType.SQS))


def evidence_record(record: SQSRecord) -> None:
    """One SQS message: S3's notice of the objects created (none in S3's first s3:TestEvent)."""
    notice = record.decoded_nested_s3_event
    for s3_record in notice.records if "Records" in notice.raw_event else ():
        key = unquote_plus(s3_record.s3.get_object.key)  # S3 sends keys URL-encoded
        start_invocation(handler="evidence-uploaded", key=key)
        logger.info("evidence", outcome=services().evidence.process_upload(key))


@app.schedule(Rate(5, unit=Rate.MINUTES), name="expire-evidence")
def expire_evidence(event: CloudWatchEvent) -> dict[str, int]:
    """EventBridge: upload slots never used become EXPIRED and give the party its place back."""
    start_invocation(handler="expire-evidence")
    return {"expired": services().evidence.expire_uploads()}
