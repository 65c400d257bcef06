"""`make dev`'s port check: a port is reported taken only when it is, in HOST's address family."""
from __future__ import annotations

import socket

from local.devserver import _taken


def _listening(family: socket.AddressFamily, host: str) -> tuple[socket.socket, int]:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen()
    return s, s.getsockname()[1]


def test_an_ipv6_host_is_checked_over_ipv6() -> None:
    held, port = _listening(socket.AF_INET6, "::")
    try:
        assert _taken("::", port) is True
    finally:
        held.close()
    assert _taken("::", port) is False  # free once released: HOST=:: is not "in use" by itself
    assert _taken("::1", port) is False


def test_an_ipv4_host_still_sees_its_port_taken() -> None:
    held, port = _listening(socket.AF_INET, "127.0.0.1")
    try:
        assert _taken("127.0.0.1", port) is True
    finally:
        held.close()
    assert _taken("127.0.0.1", port) is False
