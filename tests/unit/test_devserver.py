"""`make dev`'s port check: a port is reported taken only when it is, in HOST's address family."""
from __future__ import annotations

import socket

import pytest

from local.devserver import _taken


@pytest.mark.parametrize("family, host, also_free", [
    (socket.AF_INET6, "::", ("::1",)),  # HOST=:: is not "in use" by itself
    (socket.AF_INET, "127.0.0.1", ()),
])
def test_a_host_is_checked_in_its_own_address_family(family: socket.AddressFamily, host: str,
                                                     also_free: tuple[str, ...]) -> None:
    held = socket.socket(family, socket.SOCK_STREAM)
    try:
        held.bind((host, 0))
        held.listen()
        port = held.getsockname()[1]
        assert _taken(host, port) is True
    finally:
        held.close()
    for free in (host, *also_free):  # free once released
        assert _taken(free, port) is False
