"""`make dev`: the whole service on this machine, no AWS account.

1. a moto server is the embedded AWS (Step Functions interpreter on);
2. the resources are created from the same definitions the deployed stack uses (infra/resources.py);
3. the Chalice app is served on 127.0.0.1:$PORT;
4. a dispatcher feeds the app's non-HTTP handlers from the emulated services.
Ctrl-C (or SIGTERM) stops everything it started.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

ENV_DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "buyer-protection",
}


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _stop_when_orphaned(stop: threading.Event) -> None:
    """If whatever started us (make) goes away without passing the signal on, stop too: a dev
    server must never outlive its `make dev` and keep the ports."""
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(1):
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    moto_port = int(os.environ.get("MOTO_PORT", "4566"))
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # The Step Functions interpreter's tasks call the services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(moto_port)

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log for every AWS call

    from local.dispatcher import Dispatcher
    from local.emulator import configure_moto, make_dynamodb_atomic
    from local.http_server import create_server
    from local.keys import AUDIENCE, ISSUER, ensure_keypair

    make_dynamodb_atomic()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    configure_moto(endpoint)
    os.environ["AWS_ENDPOINT_URL"] = endpoint

    _, public = ensure_keypair()
    os.environ.setdefault("AUTH_ISSUER", ISSUER)
    os.environ.setdefault("AUTH_AUDIENCE", AUDIENCE)
    os.environ.setdefault("AUTH_PUBLIC_KEY_FILE", str(public))

    from chalice.config import Config

    from chalicelib.config import Settings
    from infra.resources import provision

    # Timers report back quickly locally: a message the handler refused is retried after 5 s.
    os.environ.update(provision(Settings.from_env(), visibility_timeout=5))
    settings = Settings.from_env()

    from app import app

    server = create_server(app, Config.create(chalice_stage="dev", app_name=app.app_name), "127.0.0.1", port)
    stop = threading.Event()
    dispatcher = Dispatcher(app, settings, stop, queues={"timer-fired": os.environ["TIMER_QUEUE_URL"],
                                                         "evidence-uploaded": os.environ["EVIDENCE_QUEUE_URL"]})
    dispatcher.start()
    _stop_on_sigterm()
    _stop_when_orphaned(stop)
    print(f"emulated AWS on {endpoint}; API on http://127.0.0.1:{port} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server.server_close()
        dispatcher.join(timeout=5)
        moto.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
