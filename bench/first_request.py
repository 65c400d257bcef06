"""The lazy work of a cold Lambda container: the first request next to a warm one.

In a fresh process (in-process moto, tables provisioned, the app wired the way bootstrap does on a
cold start), the same kind of request is timed twice: the first one pays for every client, model
and service definition built lazily; the second is the warm cost. Reported as CPU milliseconds and
the ratio first / warm (machines are noisy; ratios travel). Also counts the botocore clients
created during the first request (one shared session means one DynamoDB service model parse).

    python -m bench.first_request         (part of make bench)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = 5
CHILD = "--child"


def child() -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from dataclasses import replace

    from botocore.session import Session
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.config import Settings
    from local.provision import provision
    from tests.support import AUDIENCE, ISSUER, keypair, order_body, service_auth

    created: list[str] = []
    original = Session.create_client

    def counting(self, service_name, *args, **kwargs):
        created.append(service_name)
        return original(self, service_name, *args, **kwargs)

    with mock_aws():
        settings = Settings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE,
                                      "AUTH_PUBLIC_KEY": keypair()[1], "AWS_DEFAULT_REGION": "us-east-1"})
        provisioned = provision(settings)
        from app import app

        headers = {**service_auth("svc")}
        bodies = [json.dumps(order_body(f"o-{i}")) for i in range(2)]
        Session.create_client = counting
        settings = replace(settings, timer_state_machine_arn=provisioned["TIMER_STATE_MACHINE_ARN"])
        cold_start_again()
        timings = []
        with Client(app) as client:
            for i, body in enumerate(bodies):
                start = time.process_time()
                if i == 0:  # what container() does on the first request of a cold container
                    bootstrap.install(bootstrap.build(settings))
                r = client.http.post("/orders", headers=headers, body=body)
                timings.append(time.process_time() - start)
                assert r.status_code == 201, r.body  # a number measured on a refused request is a lie
                if i == 0:
                    first_clients = list(created)
        print(json.dumps({"first_ms": timings[0] * 1000, "warm_ms": timings[1] * 1000,
                          "clients_created_first_request": first_clients}))


def cold_start_again() -> None:
    """Forget what provisioning the emulated account warmed up in this process (boto3's default
    session, PynamoDB's cached connections), so the first request pays what a cold Lambda pays."""
    import boto3
    from pynamodb.models import Model

    boto3.DEFAULT_SESSION = None
    pending = list(Model.__subclasses__())
    while pending:
        model = pending.pop()
        model._connection = None
        pending += model.__subclasses__()


def main() -> None:
    from bench.report import expect, spread, write

    root = Path(__file__).resolve().parent.parent
    results = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-m", "bench.first_request", CHILD], cwd=root, capture_output=True,
                             text=True)
        expect(out.returncode == 0, f"a fresh process failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = spread([r["first_ms"] for r in results], 1)
    warm = spread([r["warm_ms"] for r in results], 1)
    write("first_request",
          method=("one fresh process per run: in-process moto, tables provisioned, then the app wired as on a cold "
                  "start and POST /orders twice (each answer checked 201); CPU milliseconds (process_time) of the "
                  "first request, wiring included, and of the second"),
          repetitions={"fresh_processes": RUNS},
          results={"first_request_cpu_ms": first, "warm_request_cpu_ms": warm,
                   "clients_created_first_request": results[0]["clients_created_first_request"]},
          ratio_first_over_warm_p50=round(first["median"] / warm["median"], 1),
          lazy_work_cpu_ms_p50=round(first["median"] - warm["median"], 1))


if __name__ == "__main__":
    child() if CHILD in sys.argv else main()
