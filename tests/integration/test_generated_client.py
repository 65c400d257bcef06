"""What integrators do: generate a typed client from openapi.yaml (openapi-python-client) and play
a whole dispute with it over HTTP. Every answer must parse into the generated models: a field
the document names wrongly, a null it does not allow or a status it does not list breaks here."""
from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import auth, order_body

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "generated_dispute_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    where = tmp_path_factory.mktemp("client")
    (where / "config.yaml").write_text("post_hooks: []\n")
    done = subprocess.run([str(Path(sys.executable).parent / "openapi-python-client"), "generate",
                           "--path", str(ROOT / "openapi.yaml"), "--meta", "none", "--config", str(where / "config.yaml"),
                           "--output-path", str(where / PACKAGE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, "every part of the document generates"
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_a_generated_client_plays_a_whole_dispute(generated: Any, server: tuple[str, int]) -> None:
    def module(name: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.{name}")

    models = module("models")
    base = f"http://{server[0]}:{server[1]}"

    def client(*who: str) -> Any:
        token = auth(*who)["Authorization"].split()[1]
        return generated.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

    service, buyer, seller, moderator = client("svc", "services"), client("b-1"), client("s-1"), client("m-1", "moderators")

    order = module("api.orders.register_order").sync(
        client=service, body=models.RegisterOrderRequest.from_dict(order_body("o-gen")))
    assert isinstance(order, models.Order) and order.status == models.OrderStatus.PAID
    assert order.escrow.held.amount == 2000 and order.shipment is None

    shipped = module("api.orders.ship_order").sync(
        "o-gen", client=seller, body=models.ShipmentRequest(carrier="CP", tracking_number="CN1"))
    assert isinstance(shipped, models.Order) and shipped.status == models.OrderStatus.SHIPPED
    scan = models.TrackingEventRequest.from_dict({"status": "DELIVERED", "occurred_at": shipped.shipment.to_dict()["shipped_at"]})
    delivered = module("api.orders.record_tracking_event").sync("o-gen", client=service, body=scan)
    assert isinstance(delivered, models.Order) and delivered.dispute_eligibility.can_open is True

    opened = module("api.disputes.open_dispute").sync("o-gen", client=buyer, body=models.OpenDisputeRequest.from_dict(
        {"reason": "NOT_AS_DESCRIBED", "description": "Ordered red, received blue",
         "requested": {"type": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"}}}))
    assert isinstance(opened, models.Dispute) and opened.status == models.DisputeStatus.AWAITING_SELLER
    assert [e.event for e in opened.timeline] == ["dispute.opened", "dispute.offer_made"]
    did = opened.dispute_id

    refused = module("api.disputes.reject_request").sync(did, client=seller,
                                                        body=models.RejectRequest(message="It is red"))
    assert isinstance(refused, models.Dispute) and refused.status == models.DisputeStatus.NEGOTIATING
    assert {a.action for a in refused.available_actions} >= {"escalate"}

    # A refusal parses as the typed error, its code one of the enumerated ones.
    wrong = module("api.disputes.cancel_dispute").sync(did, client=seller, body=models.ActionWithMessageRequest())
    assert isinstance(wrong, models.Error) and wrong.error.code == models.ErrorErrorCode.NOT_YOUR_ACTION

    escalated = module("api.disputes.escalate").sync(did, client=seller, body=models.ActionWithMessageRequest())
    assert isinstance(escalated, models.Dispute) and escalated.status == models.DisputeStatus.ESCALATED
    queue = module("api.moderation.moderation_queue").sync(client=moderator)
    assert [d.dispute_id for d in queue.items] == [did]

    decided = module("api.moderation.decide").sync(did, client=moderator, body=models.DecisionRequest.from_dict(
        {"outcome": "REFUND_FULL", "rationale": "Photos show a blue dress; the listing is red."}))
    assert isinstance(decided, models.Dispute) and decided.status == models.DisputeStatus.RESOLVED
    assert decided.resolution.amount.amount == 2000 and decided.refund.status == "PENDING"

    final = module("api.orders.get_order").sync("o-gen", client=buyer)
    assert isinstance(final, models.Order)
    assert final.escrow.refund_pending.amount == 2000 and final.escrow.still_held.amount == 0
    assert [r.status for r in final.refunds] == [models.OrderRefundStatus.PENDING]

    # Version 1.3: standing, signals and rules parse into their models too.
    standing = module("api.moderation.seller_standing").sync("s-1", client=moderator)
    assert isinstance(standing, models.SellerStanding) and (standing.orders, standing.defects) == (1, 1)
    signals = module("api.moderation.buyer_signals").sync("b-1", client=moderator)
    assert isinstance(signals, models.BuyerSignals) and signals.won == 1
    seen = module("api.disputes.get_dispute").sync(did, client=moderator)
    assert seen.seller_standing.level == models.StandingLevel.NOT_ENOUGH_DATA and seen.buyer_signals.lost == 0
    admin = client("a-1", "moderation-admins")
    rule = module("api.moderation.save_rule").sync("counterfeits", client=admin, body=models.RuleRequest.from_dict(
        {"description": "Counterfeits to a person", "mode": "DRY_RUN", "priority": 1,
         "when": {"reasons": ["COUNTERFEIT"]}, "then": "ESCALATE"}))
    assert isinstance(rule, models.Rule) and rule.version == 1
    report = module("api.moderation.rule_report").sync("counterfeits", client=moderator)
    assert isinstance(report, models.RuleReport) and report.evaluated == 0
