"""Fixtures of the unit tier: a fresh world per test (tests/unit/world.py), and the PDF budget
that the app's wiring installs."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import inspection
from tests.unit.world import World, new_world


@pytest.fixture(autouse=True, scope="session")
def pdf_budget() -> None:
    """What the evidence function's wiring does (bootstrap.inspector), for the tests that inspect
    files without it: pypdf's decoding charged to the per-file budget."""
    inspection.install()


@pytest.fixture
def world() -> Iterator[World]:
    w = new_world()
    with w.payments:
        yield w
