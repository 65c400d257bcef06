"""The durations of every rule; configurable, defaults from the brief."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Policy:
    seller_response: timedelta = timedelta(days=7)
    negotiation: timedelta = timedelta(days=7)
    mediation_sla: timedelta = timedelta(days=14)
    return_shipment: timedelta = timedelta(days=10)
    return_receipt: timedelta = timedelta(days=10)
    dispute_window: timedelta = timedelta(days=15)
    protection: timedelta = timedelta(days=60)
    tracking_grace: timedelta = timedelta(days=10)
    refund_settlement: timedelta = timedelta(days=7)
    reminder_before: timedelta = timedelta(days=1)
    ship_by: timedelta = timedelta(days=7)
    refund_retry: timedelta = timedelta(hours=1)  # backoff of a failed refund: 1 h, 2 h, 4 h, 8 h
    refund_max_attempts: int = 5
    max_offers_per_side: int = 3
    # Carrier clocks drift; a scan further in the future than this is refused.
    scan_clock_skew: timedelta = timedelta(minutes=10)
    # A timer may wake a moment before its due time by our clock; that still counts as expiry.
    timer_tolerance: timedelta = timedelta(seconds=1)
    # How long a moderator's claim on an escalated case lasts before others may take it.
    claim_lease: timedelta = timedelta(minutes=30)
    # A refund or resend agreed by the seller this soon after the dispute opened is no defect.
    early_settlement: timedelta = timedelta(hours=72)
    # Seller standing (docs/RULES.md): a look-back window over the orders' dates, a longer one
    # for sellers with few orders, and the levels' thresholds.
    standing_window_days: int = 90
    standing_long_window_days: int = 365
    standing_min_orders: int = 25
    at_risk_defect_rate: float = 0.02
    at_risk_buyers: int = 4
    watch_defect_rate: float = 0.01
    watch_buyers: int = 2
    # Buyer signals: informative only.
    signals_window_days: int = 90
    frequent_disputer_losses: int = 3
    # Auto-resolution rules: at most this many not OFF (each is counted in an opening's write).
    max_live_rules: int = 20
