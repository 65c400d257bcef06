"""Business metrics as CloudWatch embedded-metric log lines (Powertools), which alarms watch.

Every metric has one dimension, ``service``: POWERTOOLS_SERVICE_NAME, which the template sets to
the stack's name (infra/template/operations.py, METRICS_SERVICE), so two stages in one account never feed
each other's alarms. Locally it is ``buyer-protection``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "BuyerProtection"
DIMENSION = "service"
DEFAULT_SERVICE = "buyer-protection"

# The facts a committed change makes true, by the domain event committed with it (one place).
EVENT_METRICS = {
    "dispute.opened": "DisputesOpened",
    "dispute.escalated": "DisputesEscalated",
    "dispute.decided": "DisputesDecided",  # by a moderator (a return decision counts when decided)
    "dispute.cancelled": "DisputesCancelled",
    "refund.requested": "RefundsRequested",
    "refund.succeeded": "RefundsPaid",
    "refund.failed": "RefundsFailed",
    "refund.needs_attention": "RefundsNeedingAttention",
    "refund.overdue": "RefundsOverdue",
    "dispute.evidence_accepted": "EvidenceAccepted",
    "dispute.evidence_rejected": "EvidenceRejected",
}
# A refund the worker could not send (the provider unreachable, or answering garbage): it stays
# owed in the outbox and is handed over again. Counted each time; its alarm is an outage's signal.
REFUNDS_UNSENT = "RefundsUnsent"
# A resolution by the timers (a deadline's default outcome), not by the parties or a moderator.
AUTO_RESOLVED = "DisputesAutoResolved"


def service() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE


def count(name: str, value: int = 1, dimensions: Mapping[str, str] | None = None) -> None:
    """One data point of ``name``, written at once (no flush to forget in a queue handler). Never
    raises: counting runs after changes are committed, and must not turn them into failures."""
    try:
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
            metric.add_dimension(name=DIMENSION, value=service())
            for key, dimension in (dimensions or {}).items():
                metric.add_dimension(name=key, value=dimension)
    except Exception:  # noqa: BLE001 - a lost data point is logged; the change it counts stands
        from .logs import logger

        logger.exception("metric not written", metric=name)


def metric_for(detail_type: str, detail: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The business metric (and its extra dimensions) a committed event counts, if any."""
    if detail_type == "dispute.resolved":
        return (AUTO_RESOLVED, {}) if detail.get("actor") == "system" else None
    name = EVENT_METRICS.get(detail_type)
    if name is None:
        return None
    if detail_type == "dispute.evidence_rejected":
        from .inspection import OTHER_REASON, REASONS

        reason = (detail.get("details") or {}).get("rejection_reason")
        return name, {"reason": reason if reason in REASONS else OTHER_REASON}
    return name, {}


def count_committed(events: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Count what a commit made true: (detail type, detail) of each event it wrote."""
    for detail_type, detail in events:
        found = metric_for(detail_type, detail)
        if found is not None:
            count(found[0], dimensions=found[1])
