"""The local HTTP server: Chalice's own, answering methods it does not know as API Gateway would
answer a method no route has (a 4xx in this API's error shape), never with a 501."""
from __future__ import annotations

import json
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, CustomLocalChalice, LocalChalice, LocalDevServer

from chalicelib.http import error_body


class RequestHandler(ChaliceRequestHandler):
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the body
    # back ~40 ms on every response (an artefact of the local server, not of the service).
    disable_nagle_algorithm = True

    def _method_not_allowed(self) -> None:
        body = json.dumps(error_body("METHOD_NOT_ALLOWED", f"{self.command} is not supported")).encode()
        self.send_response(405)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # http.server answers 501 to any method without a do_<METHOD>; every other method
        # (TRACE, CONNECT, QUERY, ...) gets a 405 here instead.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)


def create_server(app: Chalice, config: Config, host: str, port: int) -> Any:
    """What chalice.local.create_local_server does, with the handler above."""
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler)
