"""What the browser tests share that is not a fixture: how Chromium is found and launched, a
watched browser context, the development sign-in."""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Refunds settle a second after they are sent; mediation is long enough to never expire here.
FAST = {"SIMULATED_SETTLE_SECONDS": "1", "SWEEP_INTERVAL_SECONDS": "60"}


def chromium_path() -> str | None:
    """Debian's chromium (CHROMIUM may name another binary)."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


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


IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def sign_in(page: Any, base: str, moderator_id: str, admin: bool = False) -> None:
    """The development sign-in, as a person does it (``admin``: also a moderation admin)."""
    page.goto(f"{base}/console/")
    assert page.url.endswith("/console/sign-in")
    page.fill("input[name=moderator_id]", moderator_id)
    if admin:
        page.check("input[name=moderation_admin]")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}/console/")
