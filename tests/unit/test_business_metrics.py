"""Business metrics: counted once per fact, at the commit that makes it true, from the events it
writes; a refused or rolled-back change counts nothing. Powertools prints each data point as an
embedded-metric JSON line on stdout, which these tests read."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from chalicelib.adapters.memory import FakeUnitOfWork
from chalicelib.domain.catalog import Decision, Reason, Solution
from chalicelib.domain.errors import ConcurrentModification, DomainError
from chalicelib.domain.timers import TimerCommand
from chalicelib.inspection import OTHER_REASON, REASONS
from chalicelib.metrics import DEFAULT_SERVICE, DIMENSION, NAMESPACE, metric_for
from chalicelib.services import commands as c
from chalicelib.services.disputes import Cancel, Decide, Escalate, OpenDispute
from tests.unit.world import BUYER, MODERATOR, SELLER, World

Key = tuple[str, tuple[tuple[str, str], ...]]


def emitted(capsys: pytest.CaptureFixture[str]) -> Counter[Key]:
    """The data points printed since the last call: (metric, extra dimensions) -> total."""
    counts: Counter[Key] = Counter()
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        (dimensions,) = directive["Dimensions"]
        assert dimensions[0] == DIMENSION and doc[DIMENSION] == DEFAULT_SERVICE
        extra = tuple((d, doc[d]) for d in dimensions[1:])
        for metric in directive["Metrics"]:
            assert metric["Unit"] == "Count"
            counts[(metric["Name"], extra)] += int(sum(doc[metric["Name"]]))
    return counts


def only(**names: int) -> Counter[Key]:
    return Counter({(name, ()): n for name, n in names.items()})


@pytest.fixture(autouse=True)
def local_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)


def timer(world: World, action: str) -> TimerCommand:
    return next(t for t in reversed(world.timers.started) if t.action == action)


def expire(world: World, action: str) -> str:
    t = timer(world, action)
    assert t.due_at is not None
    world.clock.current = t.due_at
    return world.services.timers.fired("EXPIRE", t.message())


def test_opening_a_dispute_counts_it_once_and_the_order_before_it_counts_nothing(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = world.delivered()
    assert emitted(capsys) == Counter()
    world.services.disputes.open(BUYER, OpenDispute(ctx["order_id"], Reason.NOT_AS_DESCRIBED, "Wrong colour",
                                                      Solution.REFUND_FULL, None, ()))
    assert emitted(capsys) == only(DisputesOpened=1)


def test_refused_and_rolled_back_commands_count_nothing(world: World, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = world.awaiting_seller()
    assert emitted(capsys) == only(DisputesOpened=1)
    did = ctx["dispute_id"]
    refused = [
        lambda: world.services.disputes.cancel(SELLER, Cancel(did, None, None)),  # not the seller's to cancel
        lambda: world.services.disputes.escalate(BUYER, Escalate(did, None, None)),  # not in this phase
        lambda: world.services.disputes.decide(MODERATOR, Decide(did, None, Decision.REFUND_FULL, None, "Too early")),
        lambda: world.services.disputes.open(BUYER, OpenDispute(  # one open dispute per order
            ctx["order_id"], world.dispute(did).reason, "Again", Solution.REFUND_FULL, None, ())),
    ]
    for command in refused:
        with pytest.raises(DomainError):
            command()
    assert emitted(capsys) == Counter()

    def lost_race(self: FakeUnitOfWork, staged: list[Any], outbox: list[Any]) -> None:
        raise ConcurrentModification("someone wrote first")

    monkeypatch.setattr(FakeUnitOfWork, "_write", lost_race)
    with pytest.raises(ConcurrentModification):
        world.services.disputes.cancel(BUYER, Cancel(did, None, "Arrived after all"))
    assert emitted(capsys) == Counter()
    monkeypatch.undo()
    world.services.disputes.cancel(BUYER, Cancel(did, None, "Arrived after all"))
    assert emitted(capsys) == only(DisputesCancelled=1)


def test_a_sellers_silence_auto_resolves_and_the_refund_counts_as_requested_then_paid(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.awaiting_seller(Solution.REFUND_FULL, None)
    emitted(capsys)
    assert expire(world, "SELLER_RESPONSE") == "expired"
    assert emitted(capsys) == only(DisputesAutoResolved=1, RefundsRequested=1)
    assert len(world.settle_payments()) == 1
    assert emitted(capsys) == only(RefundsPaid=1)
    world.settle_payments()  # nothing left to settle; a replayed notice settles nothing twice
    assert emitted(capsys) == Counter()


def test_an_agreement_between_the_parties_is_not_an_auto_resolution(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.refunded()  # the seller accepted the buyer's full refund
    assert emitted(capsys) == only(DisputesOpened=1, RefundsRequested=1)


def test_escalation_by_a_party_or_by_the_negotiation_deadline_and_a_moderators_decision(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = world.escalated()
    assert emitted(capsys) == only(DisputesOpened=1, DisputesEscalated=1)
    world.services.disputes.decide(MODERATOR, Decide(ctx["dispute_id"], None, Decision.REFUND_FULL, None,
                                                       "The photos show the wrong colour."))
    assert emitted(capsys) == only(DisputesDecided=1, RefundsRequested=1)


def test_a_stalled_negotiation_escalates_by_itself(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.negotiating()
    emitted(capsys)
    assert expire(world, "NEGOTIATION") == "expired"
    assert emitted(capsys) == only(DisputesEscalated=1)


def test_failed_refund_attempts_count_each_failure_and_the_attention_once(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.refund_needing_attention()
    attempts = world.policy.refund_max_attempts
    assert emitted(capsys) == only(DisputesOpened=1, RefundsRequested=1, RefundsFailed=attempts,
                                   RefundsNeedingAttention=1)


def test_evidence_accepted_and_rejected_with_its_bounded_reason(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    did = world.awaiting_seller()["dispute_id"]
    emitted(capsys)
    world.upload_photo(did)
    assert emitted(capsys) == only(EvidenceAccepted=1)
    slot, _ = world.services.evidence.request_upload(BUYER, c.RequestUpload(did, "photo.jpg", "image/jpeg", 16))
    world.store.write(slot.upload_key, b"<html>hello</ht>", "image/jpeg")
    assert world.services.evidence.process_upload(slot.upload_key) == "rejected"
    reason = world.state.evidence[(did, slot.evidence_id)].rejection_reason
    assert reason in REASONS
    assert emitted(capsys) == Counter({("EvidenceRejected", (("reason", reason),)): 1})


def test_an_unknown_rejection_reason_is_reported_as_other_and_unmapped_events_count_nothing() -> None:
    assert metric_for("dispute.evidence_rejected", {"details": {"rejection_reason": "x" * 40}}) == (
        "EvidenceRejected", {"reason": OTHER_REASON})
    assert metric_for("dispute.resolved", {"actor": "moderator"}) is None
    assert metric_for("dispute.message_posted", {}) is None


def test_the_dimension_is_the_stacks_service_name_which_the_alarms_watch(
        world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.template import cloudformation
    from infra.template.operations import METRICS_SERVICE, MONEY_ALARMS

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "buyer-protection-prod")
    world.awaiting_seller()
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[DIMENSION]]
    assert line[DIMENSION] == "buyer-protection-prod"

    template = cloudformation("prod", ["APIHandler", "EvidenceUploaded"])["Resources"]
    for function in ("APIHandler", "EvidenceUploaded"):
        env = template[function]["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == METRICS_SERVICE == {"Fn::Sub": "${AWS::StackName}"}
    for metric in MONEY_ALARMS:
        props = template[f"{metric}Alarm"]["Properties"]
        assert (props["Namespace"], props["MetricName"]) == (NAMESPACE, metric)
        assert props["Dimensions"] == [{"Name": DIMENSION, "Value": METRICS_SERVICE}]


def test_a_metric_that_cannot_be_written_never_fails_the_change_it_counts(world: World, monkeypatch) -> None:
    from aws_lambda_powertools.metrics import SchemaValidationError

    from chalicelib import metrics

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise SchemaValidationError("injected: the metric cannot be serialized")

    monkeypatch.setattr(metrics, "single_metric", broken)
    ctx = world.awaiting_seller()  # counted (DisputesOpened): the count fails, the dispute stands
    did = ctx["dispute_id"]
    assert world.dispute(did).status.value == "AWAITING_SELLER"
    world.services.disputes.cancel(BUYER, Cancel(did, None, "Arrived after all"))  # and the next change too
    assert world.dispute(did).status.value == "CANCELLED"
