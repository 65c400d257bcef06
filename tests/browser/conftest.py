"""The browser tier: `make dev` as a process and Debian's Chromium driven by Playwright for Python
(never a browser Playwright downloads). Every page a test opens fails the test if it shows a
dialog, logs a console error (a CSP violation is one) or throws."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.demo import SERVICE, LocalApi
from tests.functional.make_dev import make_token, running_make_dev

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Refunds settle a second after they are sent; mediation is long enough to never expire here.
FAST = {"SIMULATED_SETTLE_SECONDS": "1", "SWEEP_INTERVAL_SECONDS": "60"}


def chromium_path() -> str | None:
    """Debian's chromium (CHROMIUM may name another binary)."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_make_dev(tmp_path_factory.mktemp("console-state"), FAST) as server:
        yield server


@pytest.fixture(scope="session")
def api(dev: dict[str, Any]) -> LocalApi:
    """The API of that `make dev`, with tokens its `make token` prints (signed with its own key)."""
    def mint(who: str) -> str:
        if who == SERVICE:
            return make_token(dev["env"], who, scopes="orders.write,tracking.write")
        return make_token(dev["env"], who, "moderators" if who.startswith("m-") else "")

    return LocalApi(dev["base"], mint=mint)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.fail("no Chromium: install Debian's `chromium` package (make test says so and skips this tier)")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS,
                                                                               f"--disk-cache-dir={profile}"])
        try:
            yield browser
        finally:
            browser.close()
    shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Watched:
    """A browser context whose pages report every dialog, console error and uncaught exception."""

    context: Any
    problems: list[str] = field(default_factory=list)
    expected: set[int] = field(default_factory=set)  # statuses a test answers on purpose (Chromium logs them)

    def expect(self, *statuses: int) -> None:
        self.expected.update(statuses)

    def _dialog(self, dialog: Any) -> None:
        self.problems.append(f"dialog: {dialog.type} {dialog.message}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        refused = re.fullmatch(r"Failed to load resource: the server responded with a status of (\d+) .*", message.text)
        if refused and int(refused.group(1)) in self.expected:
            return
        self.problems.append(f"console {message.type}: {message.text}")

    def page(self) -> Any:
        page = self.context.new_page()
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        return page


@pytest.fixture
def browse(chromium: Any) -> Iterator[Any]:
    """browse(javascript=True) -> a fresh, watched browser context (its own cookies) at 1280x800."""
    opened: list[Watched] = []

    def new(javascript: bool = True, viewport: tuple[int, int] = (1280, 800)) -> Watched:
        context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                       java_script_enabled=javascript)
        context.set_default_timeout(30_000)
        watched = Watched(context)
        opened.append(watched)
        return watched

    try:
        yield new
    finally:
        for w in opened:
            w.context.close()
    problems = [p for w in opened for p in w.problems]
    assert problems == [], "the console ran something or logged an error"


IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def sign_in(page: Any, base: str, moderator_id: str) -> None:
    """The development sign-in, as a person does it."""
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/sign-in")
    page.fill("input[name=moderator_id]", moderator_id)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/console/")
