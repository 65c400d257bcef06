"""The browser tier: `make dev` as a process and Debian's Chromium driven by Playwright for Python
(never a browser Playwright downloads). Every page a test opens fails the test if it shows a
dialog, logs a console error (a CSP violation is one) or throws."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from local.demo import SERVICE, LocalApi
from tests.browser.session import CHROMIUM_ARGS, FAST, Watched, chromium_path
from tests.functional.make_dev import make_token, running_make_dev


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
