"""The console's forms become the API's bodies: amounts typed in major units, sessions that only
the service can make."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.console import forms
from chalicelib.console.session import Sessions
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.identity import Identity
from tests.support import FakeClock


@pytest.mark.parametrize(("typed", "currency", "minor"), [
    ("8.00", "USD", 800), ("8", "USD", 800), ("8.5", "USD", 850), (" 1,234.56 ", "USD", 123456), ("0.01", "USD", 1),
    ("800", "JPY", 800), ("1.234", "KWD", 1234)])
def test_an_amount_typed_in_major_units_is_read_with_the_currencys_exponent(typed: str, currency: str,
                                                                            minor: int) -> None:
    assert forms.minor_units(typed, currency) == minor


@pytest.mark.parametrize(("typed", "currency"), [
    ("", "USD"), ("abc", "USD"), ("-1.00", "USD"), ("8.001", "USD"), ("8.5", "JPY"), ("1e3", "USD"), ("NaN", "USD"),
    ("Infinity", "USD"), ("8..0", "USD"), ("+8", "USD")])
def test_an_amount_that_is_not_plainly_one_is_refused_with_a_validation_error(typed: str, currency: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        forms.minor_units(typed, currency)
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.details == {"field": "amount"}


@pytest.mark.parametrize("typed", ["8,00", "1,5", "1,23", "12,3456", ",500", "1,234,5", "1,2345.00", "1,234.5,0"])
def test_a_comma_that_is_not_a_thousands_separator_is_refused_never_dropped(typed: str) -> None:
    """8,00 is eight in a decimal-comma country: never 800.00 (a comma is read only as in 1,234.50)."""
    with pytest.raises(InvalidInput) as refused:
        forms.minor_units(typed, "USD")
    assert "use a point for decimals: 8.00" in refused.value.message
    assert refused.value.details == {"field": "amount"}


@pytest.mark.parametrize(("typed", "minor"), [("1,234.50", 123450), ("12,345", 1234500), ("1,234,567.89", 123456789)])
def test_a_comma_between_groups_of_three_is_a_thousands_separator(typed: str, minor: int) -> None:
    assert forms.minor_units(typed, "USD") == minor


def test_line_breaks_a_browser_sends_as_crlf_or_cr_are_read_as_one_character() -> None:
    assert forms.parse(b"rationale=a%0D%0Ab%0Dc%0Ad&note=x%0D%0A") == {"rationale": "a\nb\nc\nd", "note": "x\n"}
    text = forms.parse(b"rationale=" + b"a" * 99 + (b"%0D%0A" + b"a" * 99) * 39 + b"%0D%0A")["rationale"]
    assert len(text) == 4000 and "\r" not in text


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["USD", "JPY", "KWD", "EUR", "BHD"]))
def test_what_the_console_writes_back_reads_as_the_same_amount(minor: int, currency: str) -> None:
    assert forms.minor_units(forms.major_units(minor, currency), currency) == minor


def test_the_decision_form_is_the_decision_routes_body() -> None:
    body = forms.decision_body({"outcome": "REFUND_PARTIAL", "amount": "8.00", "fault": "CARRIER",
                                "rationale": "Half of it", "expected_version": "3", "csrf_token": "x"}, "USD")
    assert body == {"outcome": "REFUND_PARTIAL", "amount": {"amount": 800, "currency": "USD"}, "fault": "CARRIER",
                    "rationale": "Half of it", "expected_version": 3}
    # The amount only for a partial refund; the fault only when chosen (the domain's default applies).
    assert forms.decision_body({"outcome": "REJECTED", "amount": "8.00", "fault": "", "rationale": "r"}, "USD") == {
        "outcome": "REJECTED", "rationale": "r"}


def test_a_session_ends_at_its_lifetime_or_with_its_token_and_is_only_a_session() -> None:
    clock = FakeClock()
    sessions = Sessions("k" * 40, 3600, clock)
    moderator = Identity("m-1", frozenset({"moderators"}))
    value, session = sessions.issue(moderator)
    assert sessions.read(value) == session and session.identity == moderator
    short, _ = sessions.issue(moderator, not_after=int(clock.now().timestamp()) + 60)
    clock.advance(seconds=61)
    assert sessions.read(short) is None and sessions.read(value) is not None
    clock.advance(seconds=3600)
    assert sessions.read(value) is None
    # The hosted UI's sealed round trip is never a session, and another key's session is none here.
    assert sessions.read(sessions.seal({"sub": "m-1", "groups": ["moderators"], "csrf": "x"})) is None
    assert sessions.read(Sessions("j" * 40, 3600, clock).issue(moderator)[0]) is None
    assert sessions.read(value[:-2] + "xx") is None and sessions.read("") is None


def test_a_session_key_shorter_than_32_characters_is_refused() -> None:
    with pytest.raises(ValueError):
        Sessions("short", 3600, FakeClock())


def test_a_form_over_the_size_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(InvalidInput) as refused:
        forms.parse(b"a=" + b"x" * forms.MAX_FORM_BYTES)
    assert refused.value.code == "BODY_TOO_LARGE"
    assert forms.parse(b"a=1&b=%3Cscript%3E&a=2") == {"a": "1", "b": "<script>"}


class StagedRequest:
    """What API Gateway's own URL gives a route: the stage before the path in the context."""

    def __init__(self, path: str, resource: str, params: dict[str, str]) -> None:
        self.context = {"path": path, "resourcePath": resource}
        self.uri_params = params


@pytest.mark.parametrize(("path", "resource", "params", "base"), [
    ("/api/console/disputes/d-1", "/console/disputes/{dispute_id}", {"dispute_id": "d-1"}, "/api"),
    ("/api/console/", "/console", {}, "/api"),
    ("/console/disputes/d-1", "/console/disputes/{dispute_id}", {"dispute_id": "d-1"}, ""),
    ("/console", "/console", {}, "")])
def test_links_and_cookies_carry_the_stages_prefix_when_there_is_one(path: str, resource: str,
                                                                     params: dict[str, str], base: str) -> None:
    from chalicelib.console.web import _stage_prefix

    assert _stage_prefix(StagedRequest(path, resource, params)) == base
    cookie = Sessions("k" * 40, 60, FakeClock()).cookie("console_session", "v", base=base)
    assert f"; Path={base}/console;" in cookie


@pytest.mark.parametrize(("typed", "currency", "said"), [
    ("8.5", "JPY", "amount: JPY has no minor units: give a whole amount"),
    ("8.123", "USD", "amount: USD has 2 decimals at most: give an amount like 8.00"),
    ("1.2345", "KWD", "amount: KWD has 3 decimals at most: give an amount like 8.000"),
])
def test_too_many_decimals_for_the_currency_is_said_in_plain_words(typed: str, currency: str, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        forms.minor_units(typed, currency)
    assert refused.value.message == said and refused.value.details == {"field": "amount"}


@pytest.mark.parametrize("priority", ["", "  "])
def test_a_rule_without_a_priority_is_refused_never_read_as_the_first_to_act(priority: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        forms.rule_body({"description": "d", "mode": "DRY_RUN", "priority": priority, "then": "ESCALATE"})
    assert refused.value.details == {"field": "priority"} and "whole number from 0" in refused.value.message
    assert forms.rule_body({"description": "d", "mode": "DRY_RUN", "priority": "0", "then": "ESCALATE"})["priority"] == 0
