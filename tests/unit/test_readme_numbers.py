"""The README's measured numbers are the ones in bench/results/*.json: `make bench` writes both,
and nobody types a number in by hand."""
from __future__ import annotations

import json

import pytest

from bench import readme


def test_every_number_block_of_the_docs_is_rendered_from_the_results() -> None:
    for page in readme.PAGES:
        text = page.read_text()
        assert readme.render(text, strict=False) == text, f"{page.name}: run `make bench` (or `python -m bench.readme`)"


def test_each_block_is_in_the_docs_once_and_not_empty() -> None:
    text = "".join(page.read_text() for page in readme.PAGES)
    for name in readme.BLOCKS:
        assert text.count(f"<!-- bench:{name} -->") == 1
        body = text.split(f"<!-- bench:{name} -->", 1)[1].split(f"<!-- /bench:{name} -->", 1)[0]
        assert body.strip()


def test_a_changed_result_changes_the_readme(monkeypatch: pytest.MonkeyPatch) -> None:
    original = readme.load

    def tampered(name: str) -> dict:
        report = original(name)
        if name == "local_overhead":
            report = json.loads(json.dumps(report))
            report["ratio_api_over_getitem_p50"] = 9.99
        return report

    monkeypatch.setattr(readme, "load", tampered)
    text = "".join(page.read_text() for page in readme.PAGES)
    assert readme.render(text) != text and "9.99" in readme.render(text)


def test_every_results_file_says_how_it_was_measured() -> None:
    for path in sorted(readme.RESULTS.glob("*.json")):
        report = json.loads(path.read_text())
        assert report.get("method") and report.get("date") and report.get("machine"), path.name
        assert report.get("repetitions"), path.name
