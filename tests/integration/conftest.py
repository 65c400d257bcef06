"""Fixtures of the integration tier (the shared ones are in tests/conftest.py)."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def server(wired: Any) -> Iterator[tuple[str, int]]:
    """The app behind the local HTTP server of `make dev`, on a free port of this process."""
    from chalice.config import Config

    from app import app
    from local.http_server import create_server

    original = app.__class__
    httpd = create_server(app, Config.create(chalice_stage="dev", app_name=app.app_name), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server.server_address[:2]
    finally:
        httpd.shutdown()
        httpd.server.server_close()
        thread.join(timeout=30)
        app.__class__ = original
