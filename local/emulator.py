"""Talking to the moto server itself (not to the AWS APIs it emulates)."""
from __future__ import annotations

import requests


def configure_moto(endpoint: str) -> None:
    """Turn on moto's Step Functions interpreter, so state machines really run."""
    r = requests.post(f"{endpoint}/moto-api/config",
                      json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
    r.raise_for_status()
