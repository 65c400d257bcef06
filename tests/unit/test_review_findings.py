"""Review findings (branch review1): each test demonstrates a hole found by attacking the v1.2
changes. Each failed on the code as reviewed; F1 and F5 pass since their fixes (services/payments.py,
committed separately); F2, F3 and F4 still fail and name the fix they ask for."""
from __future__ import annotations

import pytest

import app  # noqa: F401  (its routes declare the actions views list: api/routing.py ACTIONS)
from chalicelib.domain.ledger import RefundStatus
from chalicelib.domain.money import Money
from chalicelib.domain.timers import REFUND_RETRY
from chalicelib.ports import PaymentUnavailable, RefundOrder, RefundReceipt
from chalicelib.services.payments import RefundOutcome
from tests.unit.world import BUYER, MODERATOR, World

USD = "USD"


def timer(world: World, action: str, **refs: object) -> str:
    return world.services.timers.fired("EXPIRE", {"action": action, **refs})


def attempt_2_owed_not_sent(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Attempt 1 failed (a decline); its retry made attempt 2, whose first send did not get
    through (the provider was unreachable while looking attempt 1 up): PENDING, never sent."""
    world.payments.fail_next(1)
    ctx = world.refunded()
    [failed] = world.settle_payments()
    assert failed.status == "FAILED"
    real_lookup = world.payments.lookup
    monkeypatch.setattr(world.payments, "lookup", lambda order: (_ for _ in ()).throw(PaymentUnavailable("down")))
    assert timer(world, REFUND_RETRY, order_id="o-1", refund_id=ctx["refund_id"], round=1) == "retried"
    monkeypatch.setattr(world.payments, "lookup", real_lookup)
    refund = world.order().ledger.refund(ctx["refund_id"])
    assert (refund.status, refund.attempt, refund.sent_at) == ("PENDING", 2, None)
    assert [o.attempt for o, _ in world.payments.attempts(ctx["refund_id"])] == [1]
    return ctx


# ---- F1: an older attempt's late success learned by a second sender never cancels the newer one
def test_late_success_seen_by_a_concurrent_sender_still_cancels_the_newer_attempt(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two senders of attempt 2 (the relay and the reconciler) both read it unsent. Sender A looks
    attempt 1 up (failed), marks attempt 2 sent and sends it. Then the provider changes its mind
    on attempt 1 (its notice not in yet), and sender B's look-up of attempt 1 finds it SUCCEEDED:
    B settles the refund with NEWER_ATTEMPT_LIVE, but never asks the provider to cancel attempt 2,
    which the provider could still cancel. Attempt 2 then pays too: the buyer is paid twice."""
    ctx = attempt_2_owed_not_sent(world, monkeypatch)
    payments = world.services.payments
    real_lookup = world.payments.lookup
    state = {"raced": False}

    def lookup(order: RefundOrder) -> RefundReceipt | None:
        if order.attempt == 1 and not state["raced"]:
            state["raced"] = True  # sender B is between its read and its look-up: sender A runs now
            assert payments.send("o-1", ctx["refund_id"], 2) == RefundOutcome.PENDING
            assert world.payments.change_mind(ctx["refund_id"], 1, deliver=False) is not None
        return real_lookup(order)

    monkeypatch.setattr(world.payments, "lookup", lookup)
    payments.send("o-1", ctx["refund_id"], 2)  # sender B
    monkeypatch.setattr(world.payments, "lookup", real_lookup)
    world.settle_payments()  # whatever is still live at the provider settles

    refund = world.order().ledger.refund(ctx["refund_id"])
    assert refund.status == "SUCCEEDED" and world.order().escrow.refunded == Money(2000, USD)
    # The rule (docs/RULES.md): a newer attempt already sent is cancelled at the provider.
    assert world.payments.sent_for(ctx["refund_id"]) == 2000, "attempt 2 was never cancelled: paid twice"


# ---- F2: an earlier attempt that exists at the provider for another amount counts as "failed"
def test_an_earlier_attempt_that_exists_at_the_provider_for_another_amount_holds_the_next_one(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe refunds in the charge's currency: attempt 1 exists at Stripe (it may well have paid)
    but for another amount/currency, which the adapter answers as FAILED
    AMOUNT_OR_CURRENCY_MISMATCH. A moderator retries (they see needs_attention, not why). Before
    attempt 2, the look-up of attempt 1 answers the same FAILED receipt and _earlier_attempts
    takes it for "known to have failed": attempt 2 is sent, a second refund of a refund that
    exists. The rule: a new attempt goes only once every earlier one is known to have failed."""
    mismatch = RefundReceipt(RefundStatus.FAILED, "re_stripe_1", "AMOUNT_OR_CURRENCY_MISMATCH")
    sent: list[int] = []
    real_refund = world.payments.refund

    def refund(order: RefundOrder) -> RefundReceipt:
        sent.append(order.attempt)
        return mismatch if order.attempt == 1 else real_refund(order)

    def lookup(order: RefundOrder) -> RefundReceipt | None:
        return mismatch if order.attempt == 1 else None

    monkeypatch.setattr(world.payments, "refund", refund)
    monkeypatch.setattr(world.payments, "lookup", lookup)
    ctx = world.refunded()
    refund_1 = world.order().ledger.refund(ctx["refund_id"])
    assert (refund_1.status, refund_1.needs_attention) == ("FAILED", True)
    world.services.payments.retry(MODERATOR, "o-1", ctx["refund_id"])
    assert sent == [1], "attempt 2 was sent while attempt 1 exists at the provider in an unknown state"


# ---- F3: the reason a refund needs a person never reaches the moderators -------------------------
def test_moderators_read_why_a_refund_needs_them_and_parties_never_do(world: World) -> None:
    """docs/RULES.md: moderators list refunds needing attention (GET /moderation/refunds) "with
    the reason in attention_reason". No view renders it: a moderator cannot tell PAID_TWICE or
    AMOUNT_OR_CURRENCY_MISMATCH (never retry) from ATTEMPTS_EXHAUSTED (retry), and the retry
    button is offered for both."""
    from chalicelib.api import views

    world.payments.refuse_next(1, "amount_too_large")
    ctx = world.refunded()
    [listed], _ = world.services.payments.needing_attention(MODERATOR, 10, None)
    now = world.clock.now()
    [for_moderator] = views.order(listed, now, world.policy, MODERATOR)["refunds"]
    assert for_moderator.get("attention_reason") == "amount_too_large"
    [for_buyer] = views.order(world.order(), now, world.policy, BUYER)["refunds"]
    assert "attention_reason" not in for_buyer
    assert ctx["refund_id"] == for_moderator["refund_id"]


# ---- F4: a signed notice whose amount is not a whole number: 500, or read as another amount -------
@pytest.mark.parametrize("amount", [b"1e400", b"2000.9"])
def test_a_signed_webhook_with_an_amount_that_is_no_whole_number_is_refused_and_changes_nothing(
        world: World, amount: bytes) -> None:
    """The sibling of the attempt 1e400 test: Money.from_dict does int(amount), so 1e400 raises
    OverflowError (not caught by parse_webhook: a 500 the provider retries forever) and 2000.9 is
    read as 2000 and settles the refund."""
    from chalicelib.domain.errors import InvalidInput
    from chalicelib.ports import SettlementNotice

    ctx = world.refunded()
    payload, headers = world.payments.sign(SettlementNotice("evt_9", ctx["refund_id"], 1, "sim_re_x", RefundStatus.SUCCEEDED,
                                                            Money(2000, USD), None, "o-1"))
    forged = payload.replace(b'"amount": 2000', b'"amount": ' + amount)
    assert forged != payload
    before = world.snapshot()
    with pytest.raises(InvalidInput) as err:
        world.services.payments.webhook(forged, {**headers, **world.payments.sign_raw(forged)})
    assert err.value.code == "INVALID_WEBHOOK"
    assert world.snapshot() == before


# ---- F5: an older attempt's late success that lands between "marked sent" and the send itself ------
def test_late_success_landing_while_the_newer_attempt_is_on_its_way_still_cancels_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempt 2 is marked sent (sent_at), then, before its request reaches the provider, attempt 1's
    late success notice comes in: the refund settles with NEWER_ATTEMPT_LIVE and the cancel of
    attempt 2 finds nothing at the provider yet (None: "could not be cancelled"). The request then
    arrives and attempt 2 is live; nobody asks to cancel it again (the notice was answered 200),
    so it pays too. After sending, the sender should see the hold and cancel what it just sent."""
    ctx = attempt_2_owed_not_sent(world, monkeypatch)
    real_refund = world.payments.refund

    def refund(order: RefundOrder) -> RefundReceipt:
        if order.attempt == 2:
            assert world.payments.change_mind(ctx["refund_id"], 1) is not None  # delivered: settle() runs now
            held = world.order().ledger.refund(ctx["refund_id"])
            assert (held.status, held.attention_reason) == ("SUCCEEDED", "NEWER_ATTEMPT_LIVE")
        return real_refund(order)

    monkeypatch.setattr(world.payments, "refund", refund)
    world.services.payments.send("o-1", ctx["refund_id"], 2)
    monkeypatch.setattr(world.payments, "refund", real_refund)
    world.settle_payments()
    assert world.order().escrow.refunded == Money(2000, USD)
    assert world.payments.sent_for(ctx["refund_id"]) == 2000, "attempt 2 went out after its cancel: paid twice"
