"""`make dev`'s port check: a port is reported taken only when it is, in HOST's address family."""
from __future__ import annotations

import os
import signal
import socket
import socketserver

import pytest

from local.devserver import _taken, stop_on_signals


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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_makes_serve_forever_return_normally_whenever_it_arrives(signum: int) -> None:
    """Deterministic: the signal asks the server to stop; no KeyboardInterrupt is thrown into
    whatever the main thread was doing (the flaky "Ctrl-C did not stop the stack" of make bench)."""
    server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        asked = stop_on_signals(server)
        os.kill(os.getpid(), signum)  # before serve_forever has even started: still honoured
        os.kill(os.getpid(), signum)  # and a second one changes nothing
        server.serve_forever(poll_interval=0.05)  # returns: no exception, nothing left running
        assert asked.is_set()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.server_close()
