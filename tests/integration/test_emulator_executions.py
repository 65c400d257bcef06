"""moto's Step Functions, as adapted in local/emulator.py: finished executions beyond the newest
FINISHED_EXECUTIONS_KEPT are forgotten (memory stays flat in `make dev`), running ones never."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest

ROLE = "arn:aws:iam::123456789012:role/emulator-test"


def machine(client: Any, definition: dict[str, Any]) -> str:
    return str(client.create_state_machine(name=f"emulator-{uuid.uuid4().hex[:8]}", roleArn=ROLE,
                                           definition=json.dumps(definition))["stateMachineArn"])


def run(client: Any, machine_arn: str, name: str) -> None:
    """Start an execution and wait (bounded) until it has finished."""
    arn = client.start_execution(stateMachineArn=machine_arn, name=name)["executionArn"]
    deadline = time.monotonic() + 60
    while client.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{name} never finished"
        time.sleep(0.05)


def test_only_the_newest_finished_executions_are_kept_and_running_ones_stay(aws: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from local import emulator

    assert getattr(StepFunctionsParserBackend.start_execution, "_forgets", False)  # installed by conftest, as by make dev
    monkeypatch.setattr(emulator, "FINISHED_EXECUTIONS_KEPT", 2)
    client = boto3.client("stepfunctions", region_name="us-east-1")
    waiting = machine(client, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    running = client.start_execution(stateMachineArn=waiting, name="running")["executionArn"]
    quick = machine(client, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    for name in ("run-0", "run-1", "run-2", "run-3", "run-4", "last"):
        run(client, quick, name)
    kept = client.list_executions(stateMachineArn=quick, maxResults=1000)["executions"]
    # Pruned as each one starts: the 2 newest finished before "last", and "last" itself.
    assert sorted(e["name"] for e in kept) == ["last", "run-3", "run-4"]
    assert client.describe_execution(executionArn=running)["status"] == "RUNNING"  # never dropped
    others = [client.start_execution(stateMachineArn=waiting)["executionArn"] for _ in range(3)]
    assert client.describe_execution(executionArn=running)["status"] == "RUNNING"
    for arn in [running, *others]:
        client.stop_execution(executionArn=arn)
