"""How long the console's case page takes to render in a real browser on `make dev`.

Starts the local stack (the module `make dev` runs) on free ports, makes an escalated case with
the buyer's photo, a message and a seller's refusal (over the API, as local/demo.py does), signs a
moderator in to the console in Debian's headless Chromium, then loads, interleaved, the case page
and a same-run baseline: `GET /health` opened in the same browser. Each load is timed by the
browser's own Navigation Timing (start to the end of the load event, so the thumbnail, the style
sheet and the script are in it). Every case page is checked (the thumbnail decoded, the order's
tracking shown). Reported: p50 over 20 loads of each, the ratio, and the 1 s goal for the case page.

    python -m bench.console_render        (part of make bench; needs a Chromium)
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.local_overhead import start, stop, token, wait_ready
from bench.report import expect, spread, write

WARMUP = 3
ROUNDS = 20
GOAL_MS = 1000.0
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NAVIGATION_MS = "() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime; }"


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("bench.console_render: no Chromium on this machine (apt-get install chromium): not measured")
        return 0
    from playwright.sync_api import sync_playwright

    from local.demo import LocalApi, escalated_case

    state = Path(tempfile.mkdtemp(prefix="bench-console-"))
    proc, env, base, _ = start(state)
    try:
        wait_ready(proc, base, state)
        tokens: dict[str, str] = {}

        def mint(who: str) -> str:
            if who not in tokens:
                tokens[who] = token(env, who, "moderators" if who.startswith("m-") else "") if who != "checkout" \
                    else _service_token(env)
            return tokens[who]

        case = escalated_case(LocalApi(base, mint=mint), "o-bench-console")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(f"{base}/console/sign-in")
                page.fill("input[name=moderator_id]", "m-bench")
                page.click("form button[type=submit]")
                page.wait_for_url(f"{base}/console/")
                case_url, health_url = f"{base}/console/disputes/{case['dispute_id']}", f"{base}/health"
                case_ms, health_ms = [], []
                for i in range(WARMUP + ROUNDS):
                    page.goto(health_url, wait_until="load")
                    took_health = float(page.evaluate(NAVIGATION_MS))
                    page.goto(case_url, wait_until="load")
                    took_case = float(page.evaluate(NAVIGATION_MS))
                    check(page)
                    if i >= WARMUP:
                        health_ms.append(took_health)
                        case_ms.append(took_case)
            finally:
                browser.close()
    finally:
        stop(proc)
        shutil.rmtree(state, ignore_errors=True)
    case_p50, health_p50 = spread(case_ms, 1), spread(health_ms, 1)
    write("console_render", "make dev's stack on free ports; one escalated case with a photo; Debian's headless Chromium "
          "through Playwright, signed in to the console; the case page and GET /health loaded in turn in the same tab; "
          "each timed by Navigation Timing from navigation start to the end of the load event (thumbnail, style "
          "sheet and script included), milliseconds",
          {"warmup": WARMUP, "rounds": ROUNDS},
          {"case_page_ms": case_p50, "health_ms": health_p50,
           "case_page_over_health_p50": round(case_p50["median"] / health_p50["median"], 2),
           "goal_ms": GOAL_MS, "goal_met": case_p50["median"] <= GOAL_MS})
    return 0


def check(page: Any) -> None:
    expect(page.evaluate("() => { const i = document.querySelector('img.thumb'); return !!i && i.naturalWidth > 0; }"),
           "the case page's thumbnail did not load")
    expect("CN123456789" in page.inner_text("#tracking"), "the case page does not show the tracking")


def _service_token(env: dict[str, str]) -> str:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "local.token", "--sub", "checkout", "--scopes",
                          "orders.write,tracking.write"], cwd=Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
