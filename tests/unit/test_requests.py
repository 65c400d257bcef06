"""api/requests.py: a validated body and the path's ids become the typed command of a use case."""
from __future__ import annotations

import pytest

from chalicelib.api import requests as parse
from chalicelib.domain.catalog import Decision, Fault, Solution
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.money import Money
from chalicelib.services import commands as c
from chalicelib.services.disputes import Decide, MakeOffer


def test_fields_come_from_the_body_and_ids_from_the_path_each_as_its_type() -> None:
    cmd = parse.command(Decide, {"outcome": "REFUND_PARTIAL", "amount": {"amount": 500, "currency": "USD"},
                                   "rationale": "The photo shows the tear", "fault": "SELLER", "expected_version": 3},
                        dispute_id="d-1")
    assert cmd == Decide("d-1", 3, Decision.REFUND_PARTIAL, Money(500, "USD"), "The photo shows the tear", Fault.SELLER)
    offer = parse.command(MakeOffer, {"type": "RESEND"}, dispute_id="d-1")
    assert offer == MakeOffer("d-1", None, Solution.RESEND, None, None)


def test_an_absent_optional_field_keeps_its_default() -> None:
    cmd = parse.command(Decide, {"outcome": "REJECTED", "rationale": "No evidence of damage"}, dispute_id="d-1")
    assert cmd.fault is None and cmd.amount is None and cmd.expected_version is None


def test_a_timestamp_the_domain_cannot_read_is_refused_naming_its_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse.command(c.RecordScan, {"status": "DELIVERED", "occurred_at": "2026-13-45T10:00:00Z"}, order_id="o-1")
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.details == {"field": "occurred_at"}
