"""`make dev DEMO=1`: a fresh clone has something to look at in the console, made over the API."""
from __future__ import annotations

import time
from typing import Any

import requests

from tests.functional.make_dev import make_token, running_make_dev

STATES = {"AWAITING_SELLER", "NEGOTIATING", "ESCALATED", "AWAITING_RETURN", "RETURN_IN_TRANSIT", "RESOLVED",
          "CANCELLED"}


def test_make_dev_with_demo_starts_with_a_queue_of_photographed_cases_and_one_of_every_state(tmp_path: Any) -> None:
    with running_make_dev(tmp_path, {"DEMO": "1"}) as dev:
        deadline = time.monotonic() + 300
        log = dev["log"]
        while True:
            log.seek(0)
            text = log.read()
            if "demo: ready" in text or "demo: the sample data could not be made" in text:
                break
            assert time.monotonic() < deadline, f"the demo data never came:\n{text[-3000:]}"
            time.sleep(0.5)
        assert "demo: ready" in text, text[-3000:]
        assert f"console: http://127.0.0.1:{dev['ports'][0]}/console/" in text

        moderator = {"Authorization": f"Bearer {make_token(dev['env'], 'm-check', 'moderators')}"}

        def get(path: str) -> Any:
            r = requests.get(f"{dev['base']}{path}", headers=moderator, timeout=30)
            assert r.status_code == 200, r.text
            return r.json()

        queue = get("/moderation/disputes")["items"]
        assert len(queue) == 4
        assert [d["escalated_at"] for d in queue] == sorted(d["escalated_at"] for d in queue), "oldest first"
        assert [d["dispute_id"] for d in queue if any(x.get("overdue") for x in d["deadlines"])] == [
            queue[0]["dispute_id"]], "one overdue case, the oldest"
        for case in queue:
            photos = get(f"/disputes/{case['dispute_id']}/evidence")["items"]
            assert [(p["content_type"], p["status"]) for p in photos] == [("image/jpeg", "ACCEPTED")]
            thumbnail = requests.get(photos[0]["thumbnail_url"], timeout=30)
            assert thumbnail.status_code == 200 and thumbnail.content[:2] == b"\xff\xd8"
        refunds = get("/moderation/refunds")["items"]
        assert [r["needs_attention"] for o in refunds for r in o["refunds"]] == [True]

        seen: set[str] = set()
        for buyer in ["b-1", "b-7", "b-8", "b-9", "b-10", "b-11", "b-12"]:  # the demo's buyers (local/demo.py)
            mine = {"Authorization": f"Bearer {make_token(dev['env'], buyer)}"}
            listed = requests.get(f"{dev['base']}/disputes?role=buyer", headers=mine, timeout=30).json()["items"]
            seen |= {d["status"] for d in listed}
        assert seen == STATES, "a case in every state"
