"""The lazy work of a cold Lambda container: the first request next to a warm one.

In a fresh process (in-process moto, tables provisioned, the app wired the way bootstrap does on a
cold start), the same kind of request is timed twice: the first one pays for every client, model
and service definition built lazily; the second is the warm cost. Reported as CPU milliseconds and
the ratio first / warm (machines are noisy; ratios travel). Also counts the botocore clients
created during the first request (one shared session means one DynamoDB service model parse).

    python -m bench.first_request         (part of make bench)
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUNS = 5
CHILD = "--child"
COLD_GET = "--cold-get"


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


def cold_get() -> None:
    """A cold container's first GET /disputes/{id}, prod configuration (Stripe keys in a secret),
    wiring included, next to what the least a Lambda can do costs: a fresh boto3 session, a
    DynamoDB client and one GetItem (the baseline, measured first, in the same process)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_LOG_LEVEL": "WARNING"}.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from dataclasses import replace

    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.config import Settings
    from local.provision import provision
    from tests.support import AUDIENCE, ISSUER, auth, keypair

    with mock_aws():
        secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="buyer-protection-prod/stripe", SecretString=json.dumps(
                {"api_key": "sk_test_bench", "webhook_secret": "whsec_bench"}))["ARN"]
        # The API function's console: its session key in a secret, its client id in a parameter.
        console_key = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="buyer-protection-prod/console-session", SecretString="k" * 64)["ARN"]
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/buyer-protection/console/client-id", Value="console-client", Type="String")
        env = {"AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE, "AUTH_PUBLIC_KEY": keypair()[1],
               "AWS_DEFAULT_REGION": "us-east-1", "PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_ARN": secret,
               "AWS_LAMBDA_FUNCTION_NAME": "buyer-protection-prod-APIHandler", "CONSOLE_SESSION_SECRET_ARN": console_key,
               "CONSOLE_AUTH_DOMAIN": "https://buyer-protection.auth.us-east-1.amazoncognito.com",
               "CONSOLE_CLIENT_ID_PARAMETER": "/buyer-protection/console/client-id"}
        provisioned = provision(Settings.from_env(env))
        from app import app
        from tests.integration.entry_points import a_dispute

        setup = bootstrap.build(replace(Settings.from_env(env),
                                        timer_state_machine_arn=provisioned["TIMER_STATE_MACHINE_ARN"]))
        dispute = a_dispute(setup.services, "o-cold")
        headers = auth("b-1")
        cold_start_again()
        from aws_lambda_powertools.utilities.parameters import clear_caches

        clear_caches()
        # The emulator's heap is no part of a Lambda's: out of the collector's sight, or the first
        # measurement pays a full collection of it (a cold container has no such heap).
        gc.collect()
        gc.freeze()
        with Client(app, stage_name="prod") as chalice:
            os.environ.update({k: v for k, v in env.items()})
            os.environ["TIMER_STATE_MACHINE_ARN"] = provisioned["TIMER_STATE_MACHINE_ARN"]
            start = time.process_time()
            bootstrap.reset()  # what container() builds on the first request of a cold container
            r = chalice.http.get(f"/disputes/{dispute.dispute_id}", headers=headers)
            first = time.process_time() - start
            assert r.status_code == 200, r.body
        cold_start_again()
        start = time.process_time()
        client = boto3.session.Session().client("dynamodb", region_name="us-east-1")
        client.get_item(TableName="buyer-protection-disputes", Key={"dispute_id": {"S": dispute.dispute_id}},
                        ConsistentRead=True)
        baseline = time.process_time() - start
        print(json.dumps({"cold_get_ms": first * 1000, "baseline_ms": baseline * 1000}))


def cold_start_again() -> None:
    """Forget what provisioning the emulated account warmed up in this process (boto3's default
    session, PynamoDB's cached connections), so the first request pays what a cold Lambda pays."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import base as parameters
    from pynamodb.models import Model

    from chalicelib.adapters.dynamodb import session

    boto3.DEFAULT_SESSION = None
    session._session = None  # the app's shared botocore session, and its boto3 sessions
    session._boto3.clear()
    parameters.DEFAULT_PROVIDERS.clear()  # Powertools' secrets provider, its client and cache
    pending = list(Model.__subclasses__())
    while pending:
        model = pending.pop()
        model._connection = None
        pending += model.__subclasses__()


def main() -> None:
    from bench.report import expect, spread, write

    root = Path(__file__).resolve().parent.parent
    cold = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-m", "bench.first_request", COLD_GET], cwd=root, capture_output=True,
                             text=True)
        expect(out.returncode == 0, f"a fresh process failed:\n{out.stderr[-3000:]}")
        cold.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cold_get = spread([r["cold_get_ms"] for r in cold], 1)
    cold_baseline = spread([r["baseline_ms"] for r in cold], 1)
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
          lazy_work_cpu_ms_p50=round(first["median"] - warm["median"], 1),
          cold_get={"method": "fresh process, in-process moto, the API function's prod configuration (Stripe keys in "
                              "a Secrets Manager secret, the console's session key in another, its client id in an "
                              "SSM parameter): CPU ms of a fresh boto3 session + DynamoDB client + one GetItem (baseline), "
                              "then of the app's first GET /disputes/{id} with its wiring (imports excluded: "
                              "bench/bundle_import.py measures them)",
                    "first_get_cpu_ms": cold_get, "baseline_cpu_ms": cold_baseline,
                    "ratio_p50": round(cold_get["median"] / cold_baseline["median"], 2), "goal": "at most 1.5",
                    "before": "2.08x while PaymentSettings.from_env read the Stripe secret (a second boto3 session "
                              "and a Secrets Manager client) at start, in every function and route"})


if __name__ == "__main__":
    if CHILD in sys.argv:
        child()
    elif COLD_GET in sys.argv:
        cold_get()
    else:
        main()
