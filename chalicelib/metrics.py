"""Business metrics as CloudWatch embedded-metric log lines (Powertools), which alarms watch."""
from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "BuyerProtection"


def count(name: str, value: int = 1) -> None:
    """One data point of ``name``, written at once (no flush to forget in a queue handler)."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value="buyer-protection")
