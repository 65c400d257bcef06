"""The one Logger of the service; modules use ``Logger(child=True)`` or this instance."""
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="buyer-protection")


def start_invocation(**keys: Any) -> None:
    """Each invocation (an HTTP request, a queue message, a schedule) logs with its own keys only:
    a warm Lambda container must not carry the previous request's order or caller into the next."""
    logger.clear_state()
    logger.append_keys(**keys)
