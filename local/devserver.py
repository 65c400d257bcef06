"""`make dev`: the whole service on this machine, no AWS account.

1. a moto server is the embedded AWS (Step Functions interpreter on);
2. the resources are created from the same definitions the deployed stack uses (local/provision.py, infra/template);
3. the Chalice app is served on 127.0.0.1:$PORT;
4. a dispatcher feeds the app's non-HTTP handlers from the emulated services.
Ctrl-C (or SIGTERM) stops everything it started.
"""
from __future__ import annotations

import os
import signal
import socket
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


def stop_on_signals(server: Any) -> threading.Event:
    """Ctrl-C (SIGINT) and SIGTERM ask ``server`` to stop: its serve_forever() returns and the
    teardown runs as ordinary code. (Raising KeyboardInterrupt from the handler, as before, lands
    at whatever bytecode the main thread is on; once in a loaded bench the stack did not stop.)
    The event is set once a stop was asked; a second signal changes nothing."""
    asked = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if not asked.is_set():
            asked.set()
            # shutdown() waits for serve_forever() to return: never from the thread that serves.
            threading.Thread(target=server.shutdown, name="stop", daemon=True).start()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return asked


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


def _taken(host: str, port: int) -> bool:
    """Whether ``port`` cannot be bound on ``host``, in HOST's own address family (``::`` is IPv6)."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError:
            return True
    return False


def _public_host(host: str) -> str:
    """The address links should name: HOST itself, or this machine's LAN address when HOST
    listens on every interface (a phone on the network can then open upload and download links)."""
    if os.environ.get("PUBLIC_HOST"):
        return os.environ["PUBLIC_HOST"]
    if host not in ("0.0.0.0", "::"):
        return host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


STOP_GRACE_SECONDS = 0.5


def _seed_demo(base: str) -> None:
    """DEMO=1: sample cases made over the API once it serves (local/demo.py), in the background."""

    def run() -> None:
        from local.demo import seed

        try:
            made = seed(base)
        except Exception as exc:  # noqa: BLE001 - the demo is a convenience: say why, keep serving
            print(f"demo: the sample data could not be made: {exc}", file=sys.stderr, flush=True)
            return
        print(f"demo: ready: {len(made['escalated'])} escalated cases (one overdue), a refund needing a person, "
              f"and a case in each of {', '.join(sorted(made['states']))}", flush=True)

    threading.Thread(target=run, name="demo", daemon=True).start()


def main() -> int:
    host = os.environ.get("HOST") or "127.0.0.1"
    port = int(os.environ.get("PORT", "8000"))
    moto_port = int(os.environ.get("MOTO_PORT", "4566"))
    for what, var, number in (("the API", "PORT", port), ("the AWS emulator", "MOTO_PORT", moto_port)):
        try:
            taken = _taken(host, number)
        except socket.gaierror:
            print(f"make dev: HOST={host} is not an address this machine can listen on", file=sys.stderr, flush=True)
            return 2
        if taken:
            print(f"make dev: port {number} ({what}) is already in use on {host}; "
                  f"free it or choose another: {var}=<port> make dev", file=sys.stderr, flush=True)
            return 2
    public = _public_host(host)
    print(f"make dev: starting emulated AWS on {host}:{moto_port} and the API on {host}:{port} ...", flush=True)
    for key, value in {**ENV_DEFAULTS, "SANDBOX": "true"}.items():
        os.environ.setdefault(key, value)
    # The Step Functions interpreter's tasks call the services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(moto_port)

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log for every AWS call

    from local.dispatcher import Dispatcher
    from local.emulator import (
        back_up_items_not_tables,
        configure_moto,
        forget_finished_executions,
        make_dynamodb_atomic,
        track_instances_weakly,
    )
    from local.http_server import create_server
    from local.keys import AUDIENCE, ISSUER, ensure_keypair
    from local.post_policy import enforce_post_policy

    make_dynamodb_atomic()
    back_up_items_not_tables()  # moto's transactions copy whole tables otherwise
    forget_finished_executions()  # moto keeps every Step Functions execution otherwise
    track_instances_weakly()  # moto keeps every model object it ever made otherwise
    enforce_post_policy()  # uploads S3 would refuse are refused here too
    moto = ThreadedMotoServer(ip_address=host, port=moto_port, verbose=False)
    moto.start()
    # Clients, and the presigned upload and download links apps receive, name this address.
    endpoint = f"http://{public}:{moto_port}"
    configure_moto(endpoint)
    os.environ["AWS_ENDPOINT_URL"] = endpoint

    _, public_key = ensure_keypair()
    os.environ.setdefault("AUTH_ISSUER", ISSUER)
    os.environ.setdefault("AUTH_AUDIENCE", AUDIENCE)
    os.environ.setdefault("AUTH_PUBLIC_KEY_FILE", str(public_key))

    from chalice.config import Config

    from chalicelib.config import Settings
    from local.provision import provision

    # Timers report back quickly locally: a message the handler refused is retried after 5 s.
    os.environ.update(provision(Settings.from_env(), visibility_timeout=5))
    settings = Settings.from_env()

    from app import app

    server = create_server(app, Config.create(chalice_stage="dev", app_name=app.app_name), host, port)
    stop = threading.Event()
    dispatcher = Dispatcher(app, settings, stop, queues={"timer-fired": os.environ["TIMER_QUEUE_URL"],
                                                         "evidence-uploaded": os.environ["EVIDENCE_QUEUE_URL"],
                                                         "pay-refunds": os.environ["REFUND_QUEUE_URL"]})
    dispatcher.start()
    stop_on_signals(server)
    _stop_when_orphaned(stop)
    print(f"ready: API on http://{public}:{port} (emulated AWS on {endpoint}); Ctrl-C stops", flush=True)
    print(f"console: http://{public}:{port}/console/ (sign in with any moderator id)", flush=True)
    print("note: the data lives in memory only (emulated AWS): it is not kept across restarts", flush=True)
    if os.environ.get("DEMO") not in (None, "", "0"):
        _seed_demo(f"http://127.0.0.1:{port}" if host in ("0.0.0.0", "::") else f"http://{host}:{port}")
    try:
        server.serve_forever()
    finally:
        print("stopping ...", flush=True)
        stop.set()
        server.server.server_close()
        # Everything below lives in this process and dies with it: give a message being handled
        # and the emulator a moment to finish, never longer (Ctrl-C answers within ~1 s).
        dispatcher.join(timeout=STOP_GRACE_SECONDS)
        stopper = threading.Thread(target=moto.stop, daemon=True)
        stopper.start()
        stopper.join(timeout=STOP_GRACE_SECONDS)
        print("stopped: the API and the emulated AWS are down", flush=True)
    sys.stderr.flush()
    # Skip the interpreter's teardown of a large module graph (moto, botocore): nothing is left
    # to save, and it doubled the time Ctrl-C took.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
