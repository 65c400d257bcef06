"""Where test helpers live: builders in tests/ modules, fixtures in conftest.py, and no tier
importing a higher one (unit < integration < deploy, functional)."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
HIGHER_THAN_UNIT = ("tests.integration", "tests.deploy", "tests.functional")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_nothing_imports_from_a_conftest() -> None:
    offenders = {str(p.relative_to(TESTS)): sorted(m for m in imported_modules(p) if m.split(".")[-1] == "conftest")
                 for p in TESTS.rglob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_no_unit_test_imports_a_higher_tier() -> None:
    offenders = {str(p.relative_to(TESTS)): sorted(m for m in imported_modules(p) if m.startswith(HIGHER_THAN_UNIT))
                 for p in (TESTS / "unit").rglob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_conftest_files_hold_fixtures_and_hooks_only() -> None:
    for conftest in TESTS.rglob("conftest.py"):
        tree = ast.parse(conftest.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                raise AssertionError(f"{conftest.relative_to(TESTS)}: class {node.name} belongs in a tests/ module")
            if isinstance(node, ast.FunctionDef):
                is_fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
                assert is_fixture or node.name.startswith("pytest_"), \
                    f"{conftest.relative_to(TESTS)}: {node.name}() is not a fixture: move it to a tests/ module"
