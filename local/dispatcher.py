"""Feeds the app's non-HTTP handlers locally, as AWS would in the cloud.

In AWS, EventBridge invokes the scheduled handler; moto never fires schedules, so here a thread
invokes the same handler every SWEEP_INTERVAL_SECONDS, with the event shape EventBridge sends.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from chalice import Chalice

from chalicelib.config import Settings
from chalicelib.logs import logger


def scheduled_event(rule: str) -> dict[str, Any]:
    return {"version": "0", "id": "local", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
            "detail": {}}


class Dispatcher(threading.Thread):
    def __init__(self, app: Chalice, settings: Settings, stop: threading.Event) -> None:
        super().__init__(name="dispatcher", daemon=True)
        self.app = app
        self.settings = settings
        self.stop = stop

    def handler(self, name: str) -> Any:
        return self.app.handler_map[name]

    def run(self) -> None:
        interval = self.settings.sweep_interval_seconds
        while not self.stop.wait(interval):
            try:
                self.handler("release-escrow")(scheduled_event("release-escrow"), None)
            except Exception:  # noqa: BLE001 - keep dispatching; the failure is logged
                logger.exception("scheduled handler failed", handler="release-escrow")
