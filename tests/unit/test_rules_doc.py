"""docs/RULES.md against the code: every number, reason, status and transition it states must be
the code's own, so a changed default or a new rule fails here until the page is updated."""
from __future__ import annotations

import importlib.util
import re
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from chalicelib import config
from chalicelib.api.schemas import CONTEST_RETURN, DECISION
from chalicelib.domain import evidence, orders, rules
from chalicelib.domain.catalog import EVIDENCE_EXPECTED, RECEIVED_REASONS, SUGGESTED_SOLUTIONS, Outcome, Reason, Solution
from chalicelib.domain.disputes import PHASES, TERMINAL, TRANSITIONS, Dispute, Status
from chalicelib.domain.errors import RuleViolation
from chalicelib.domain.ledger import NEEDS_A_PERSON, PUBLIC_REASONS, EscrowStatus, retry_delay
from chalicelib.domain.money import Money
from chalicelib.domain.orders import OrderStatus
from chalicelib.domain.policy import Policy
from chalicelib.services import evidence as evidence_service
from chalicelib.services import payments
from tests.support import T0

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")
FLAT = " ".join(DOC.split())  # the prose with its line breaks folded, for phrases that wrap
CONFIG_SOURCE = (ROOT / "chalicelib" / "config.py").read_text(encoding="utf-8")
POLICY = Policy()
POLICY_FIELDS = {f.name for f in fields(Policy)}
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
MIB = 1024 * 1024

# Rows of the durations and limits tables that are not Policy fields: the code's value, and the
# environment variable that sets it (None: fixed in the code).
CONSTANTS: dict[str, tuple[timedelta | int, str | None]] = {
    "sweep_interval_seconds": (timedelta(seconds=config.DEFAULT_SWEEP_INTERVAL_SECONDS), "SWEEP_INTERVAL_SECONDS"),
    "UPLOAD_WINDOW": (evidence.UPLOAD_WINDOW, None),
    "LINK_SECONDS": (timedelta(seconds=evidence_service.LINK_SECONDS), None),
    "KEY_LIFETIME": (payments.KEY_LIFETIME, None),
    "MAX_SHIP_BY": (orders.MAX_SHIP_BY, None),
    "MAX_FILES_PER_PARTY": (evidence.MAX_FILES_PER_PARTY, None),
    "SLOTS_PER_PLACE": (evidence.SLOTS_PER_PLACE, None),
    "MAX_SCANS": (orders.MAX_SCANS, None),
    "PREVIEW_DAYS": (timedelta(days=rules.PREVIEW_DAYS), None),
    "PREVIEW_LIMIT": (rules.PREVIEW_LIMIT, None),
}
# What Settings.from_env needs besides the durations.
BASE_ENV = {"AUTH_PUBLIC_KEY": "unused", "AUTH_ISSUER": "issuer", "AUTH_AUDIENCE": "audience"}


# ---- reading the page -------------------------------------------------------------------------
def tables() -> list[list[list[str]]]:
    """Every Markdown table of the page: its rows (header first, separator dropped) as cells."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*DOC.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def table(*header: str) -> list[list[str]]:
    """The body of the one table with this header."""
    matches = [t for t in tables() if t[0] == list(header)]
    assert len(matches) == 1, f"expected one table headed {header}, found {len(matches)}"
    body = matches[0][1:]
    assert body, f"the table headed {header} is empty"
    assert all(len(row) == len(header) for row in body), f"a row of {header} has the wrong number of cells"
    return body


def codes(cell: str) -> list[str]:
    """The `code` spans of a cell, in order."""
    return re.findall(r"`([^`]+)`", cell)


def code(cell: str) -> str:
    found = codes(cell)
    assert len(found) == 1, f"expected one code span in {cell!r}"
    return found[0]


def duration(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+) (second|minute|hour|day)s?", text.strip())
    assert m, f"not a duration: {text!r}"
    return timedelta(seconds=int(m[1]) * UNITS[m[2]])


def value_of(name: str) -> timedelta | int:
    """The code's default for a name the page uses."""
    if name in POLICY_FIELDS:
        value: timedelta | int = getattr(POLICY, name)
        return value
    assert name in CONSTANTS, f"{name} is neither a Policy field nor a known constant"
    return CONSTANTS[name][0]


def env_var_of(name: str) -> str | None:
    """The environment variable that sets ``name``, as config.py reads it."""
    for var, (field_name, _) in config.DURATIONS.items():
        if field_name == name:
            return var
    return CONSTANTS[name][1] if name in CONSTANTS else None


DURATION_ROWS = table("name", "default", "seconds", "environment variable", "governs")
LIMIT_ROWS = table("name", "value", "environment variable", "governs")
STANDING_ROWS = table("name", "default", "environment variable", "governs")
STANDING_FIELDS = {name for name, _, _ in config.STANDING.values()}


# ---- 10. durations and limits -----------------------------------------------------------------
@pytest.mark.parametrize("row", DURATION_ROWS, ids=lambda row: row[0])
def test_each_duration_is_the_codes_default(row: list[str]) -> None:
    name, default, seconds, _, _ = row
    value = value_of(code(name))
    assert isinstance(value, timedelta), f"{name} is not a duration in the code"
    assert duration(default) == value, f"{name}: the page says {default}, the code {value}"
    assert int(seconds) == value.total_seconds(), f"{name}: the page says {seconds} s, the code {value.total_seconds()}"


@pytest.mark.parametrize("row", LIMIT_ROWS, ids=lambda row: row[0])
def test_each_limit_is_the_codes_value(row: list[str]) -> None:
    name, value, _, _ = row
    expected = value_of(code(name))
    assert isinstance(expected, int), f"{name} is not a count in the code"
    assert int(value) == expected, f"{name}: the page says {value}, the code {expected}"


@pytest.mark.parametrize("row", DURATION_ROWS + LIMIT_ROWS, ids=lambda row: row[0])
def test_each_environment_variable_is_the_one_config_reads(row: list[str]) -> None:
    name, var_cell = code(row[0]), row[-2]
    stated = None if var_cell == "-" else code(var_cell)
    assert stated == env_var_of(name), f"{name}: the page says {stated}, config.py reads {env_var_of(name)}"
    if stated is not None:
        assert f'"{stated}"' in CONFIG_SOURCE, f"config.py never reads {stated}"


@pytest.mark.parametrize("var", sorted(config.DURATIONS))
def test_each_duration_variable_really_sets_its_rule(var: str) -> None:
    name, default = config.DURATIONS[var]
    assert getattr(POLICY, name) == timedelta(seconds=default), f"{var}'s default differs from Policy.{name}"
    settings = config.Settings.from_env({**BASE_ENV, var: "12345"})
    assert getattr(settings.policy, name) == timedelta(seconds=12345)


def test_the_sweep_interval_variable_is_read() -> None:
    assert config.Settings.from_env({**BASE_ENV, "SWEEP_INTERVAL_SECONDS": "120"}).sweep_interval_seconds == 120


@pytest.mark.parametrize("row", STANDING_ROWS, ids=lambda row: row[0])
def test_each_standing_setting_is_the_codes_and_its_variable_sets_it(row: list[str]) -> None:
    name, default, var_cell, _ = row
    var = code(var_cell)
    field_name, code_default, kind = config.STANDING[var]
    assert field_name == code(name)
    assert kind(default) == code_default == getattr(POLICY, field_name)
    changed = config.Settings.from_env({**BASE_ENV, var: str(kind(code_default) * 2)})
    assert getattr(changed.policy, field_name) == kind(code_default) * 2


def test_every_standing_setting_has_a_row() -> None:
    assert {code(row[2]) for row in STANDING_ROWS} == set(config.STANDING)


def test_every_standing_setting_quoted_in_the_text_is_the_codes() -> None:
    """"25 orders (`standing_min_orders`)", "3 (`frequent_disputer_losses`)": each must hold."""
    mentions = re.findall(r"(\d+(?:\.\d+)?)(?: \w+)? \(`(\w+)`\)", FLAT)
    checked = [(value, name) for value, name in mentions if name in STANDING_FIELDS]
    assert len(checked) >= 4
    for value, name in checked:
        assert float(value) == getattr(POLICY, name), f"{value} ({name}) is not the code's value"


def test_every_policy_value_and_variable_is_in_the_tables() -> None:
    named = {code(row[0]) for row in DURATION_ROWS + LIMIT_ROWS + STANDING_ROWS}
    assert POLICY_FIELDS <= named, f"missing from the tables: {sorted(POLICY_FIELDS - named)}"
    assert set(CONSTANTS) <= named, f"missing from the tables: {sorted(set(CONSTANTS) - named)}"
    variables = {code(row[-2]) for row in DURATION_ROWS + LIMIT_ROWS if row[-2] != "-"}
    assert set(config.DURATIONS) <= variables, f"variables missing: {sorted(set(config.DURATIONS) - variables)}"


def test_every_duration_quoted_in_the_text_is_the_codes() -> None:
    """Prose writes "7 days (`seller_response`)": each such mention must hold."""
    mentions = re.findall(r"(\d+)[ -](second|minute|hour|day)s? \(`(\w+)`\)", FLAT)
    assert len(mentions) >= 20, "the prose should quote its durations with their names"
    for amount, unit, name in mentions:
        if name in STANDING_FIELDS:  # windows are settings counted in days
            assert unit == "day" and int(amount) == getattr(POLICY, name), f"{amount} {unit} ({name})"
            continue
        assert duration(f"{amount} {unit}") == value_of(name), f"{amount} {unit} ({name}) is not the code's value"
    counts = re.findall(r"(\d+)(?: (?!(?:second|minute|hour|day)s?\b)\w+)? \(`(\w+)`\)", FLAT)
    assert len(counts) >= 4, "the prose should quote its limits with their names"
    for amount, name in counts:
        if name in STANDING_FIELDS:
            continue  # test_every_standing_setting_quoted_in_the_text_is_the_codes
        assert int(amount) == value_of(name), f"{amount} ({name}) is not the code's value"


def test_the_refund_backoff_sequence_is_the_codes() -> None:
    steps = [retry_delay(POLICY.refund_retry, attempt) for attempt in range(1, POLICY.refund_max_attempts)]
    hours = [int(step.total_seconds() // 3600) for step in steps]
    assert all(step.total_seconds() % 3600 == 0 for step in steps)
    text = ", ".join(f"{h} hour" if h == 1 else f"{h} hours" for h in hours)
    assert f"doubles: {text}." in FLAT
    assert f"When attempt {POLICY.refund_max_attempts} (`refund_max_attempts`) fails" in FLAT


# ---- 3. reasons and solutions -----------------------------------------------------------------
REASON_ROWS = table("reason", "may be opened", "evidence expected", "suggested solutions", "solutions allowed")


def allowed_solutions(reason: Reason) -> set[str]:
    """What Dispute.open accepts as the buyer's request for this reason."""
    total = Money(1000, "USD")
    allowed = set()
    for solution in Solution:
        amount = Money(100, "USD") if solution is Solution.REFUND_PARTIAL else None
        try:
            Dispute.open(order_id="o-1", buyer_id="b-1", seller_id="s-1", order_total=total, reason=reason,
                         description="described at length", requested=solution, amount=amount, item_ids=[],
                         now=T0, policy=POLICY)
        except RuleViolation as exc:
            assert exc.code == "SOLUTION_NOT_ALLOWED"
            continue
        allowed.add(solution.value)
    return allowed


def test_every_reason_has_one_row() -> None:
    assert sorted(code(row[0]) for row in REASON_ROWS) == sorted(r.value for r in Reason)


@pytest.mark.parametrize("row", REASON_ROWS, ids=lambda row: row[0])
def test_each_reason_row_is_the_catalogs(row: list[str]) -> None:
    reason = Reason(code(row[0]))
    assert ("once delivered" in row[1]) == (reason in RECEIVED_REASONS), f"{reason.value}: when it may be opened"
    assert codes(row[2]) == list(EVIDENCE_EXPECTED[reason])
    assert codes(row[3]) == [s.value for s in SUGGESTED_SOLUTIONS[reason]]
    assert set(codes(row[4])) == allowed_solutions(reason)


def test_every_solution_and_outcome_is_named() -> None:
    for name in [*(s.value for s in Solution), *(o.value for o in Outcome)]:
        assert f"`{name}`" in DOC, f"{name} is not on the page"


# ---- 1. the money -----------------------------------------------------------------------------
def test_every_outcome_says_where_the_money_goes() -> None:
    rows = table("outcome", "buyer receives", "seller receives", "the order afterwards")
    assert sorted(code(row[0]) for row in rows) == sorted([*(o.value for o in Outcome), Status.CANCELLED.value])


def test_every_order_and_escrow_status_is_named() -> None:
    for name in [*(s.value for s in OrderStatus), *(s.value for s in EscrowStatus)]:
        assert f"`{name}`" in DOC, f"{name} is not on the page"


# ---- 4. the life of a dispute -----------------------------------------------------------------
STATUS_ROWS = table("status", "who must act", "deadline (default)", "when the deadline passes")


def test_every_status_has_one_row() -> None:
    assert sorted(code(row[0]) for row in STATUS_ROWS) == sorted(s.value for s in Status)


@pytest.mark.parametrize("row", STATUS_ROWS, ids=lambda row: row[0])
def test_each_status_row_is_its_phase(row: list[str]) -> None:
    status = Status(code(row[0]))
    phase = PHASES.get(status)
    if phase is None:
        assert status in TERMINAL
        assert row[2] == "none" and row[3] == "-", f"{status.value} has no deadline"
        return
    assert phase.actor in row[1]
    deadline = re.fullmatch(r"`(\w+)`: (\d+ \w+) \(`(\w+)`\)", row[2])
    assert deadline, f"{status.value}: deadline cell {row[2]!r}"
    assert deadline[1] == phase.action and deadline[3] == phase.duration
    assert duration(deadline[2]) == getattr(POLICY, phase.duration)
    assert codes(row[3])[0] == phase.on_expiry


def test_the_transition_table_is_written_from_the_code() -> None:
    """make openapi writes it from TRANSITIONS (openapi/build.py): an action's rows are written once."""
    spec = importlib.util.spec_from_file_location("openapi_build", ROOT / "openapi" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.rules_md(DOC) == DOC, "run make openapi"


def test_the_transition_table_is_the_codes() -> None:
    stated = set()
    for source, command, actors, target in table("from", "action", "by", "to"):
        for actor in actors.split(","):
            stated.add((code(source), code(command), actor.strip(), code(target)))
    actual = {(status.value, command.value, actor.value, to.value)
              for (command, status), by in TRANSITIONS.items() for actor, to in by.items()}
    assert stated == actual, f"only on the page: {sorted(stated - actual)}; only in the code: {sorted(actual - stated)}"


# ---- 6. evidence ------------------------------------------------------------------------------
def test_the_evidence_types_and_sizes_are_the_codes() -> None:
    rows = table("content type", "largest file", "photo or video")
    stated = {code(row[0]): row for row in rows}
    assert set(stated) == set(evidence.LIMITS)
    for content_type, (_, size, visual) in stated.items():
        m = re.fullmatch(r"(\d+) MiB", size)
        assert m and int(m[1]) * MIB == evidence.LIMITS[content_type], f"{content_type}: {size}"
        assert (visual == "yes") == (content_type in evidence.VISUAL_TYPES), f"{content_type}: photo or video"


def test_the_slot_cap_is_the_codes() -> None:
    assert f"{evidence.MAX_FILES_PER_PARTY * evidence.SLOTS_PER_PLACE} in all" in FLAT


def test_every_evidence_status_is_named() -> None:
    for name in (evidence.PENDING_UPLOAD, evidence.PROCESSING, evidence.ACCEPTED, evidence.REJECTED, evidence.EXPIRED):
        assert f"`{name}`" in DOC, f"{name} is not on the page"


# ---- 7, 8, 9. decisions, returns, refunds -----------------------------------------------------
def test_the_decisions_are_those_a_moderator_may_send() -> None:
    rows = table("decision", "amount", "effect")
    assert sorted(code(row[0]) for row in rows) == sorted(DECISION["properties"]["outcome"]["enum"])


def test_every_reason_to_contest_a_return_is_named() -> None:
    for reason in CONTEST_RETURN["properties"]["reason"]["enum"]:
        assert f"`{reason}`" in DOC, f"{reason} is not on the page"


def test_every_refund_failure_needing_a_person_or_shown_to_parties_is_named() -> None:
    for reason in sorted(NEEDS_A_PERSON | PUBLIC_REASONS):
        assert f"`{reason}`" in DOC, f"{reason} is not on the page"
