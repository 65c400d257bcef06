"""What the template's resource families share: the logical ids and names they refer to each
other by, the state machine definition, and where every alarm notifies."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOGICAL_IDS = {"orders": "OrdersTable", "disputes": "DisputesTable", "messages": "MessagesTable",
               "notes": "NotesTable", "moderation": "ModerationTable",
               "outbox": "OutboxTable", "evidence": "EvidenceTable", "idempotency": "IdempotencyTable"}
ENV_VARS = {"orders": "ORDERS_TABLE", "disputes": "DISPUTES_TABLE", "messages": "MESSAGES_TABLE",
            "notes": "NOTES_TABLE", "moderation": "MODERATION_TABLE",
            "outbox": "OUTBOX_TABLE", "evidence": "EVIDENCE_TABLE", "idempotency": "IDEMPOTENCY_TABLE"}
# What a stack keeps when deleted (DeletionPolicy Retain: the tables, the evidence bucket) is named
# with the first 8 characters of the stack's id, new at every creation: a stack deleted (after a
# failed first deploy, say) is created again under the same name without colliding with what the
# last one left behind (docs/DEPLOYMENT.md, Teardown).
CREATION_ID = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]}


def retained_name(pattern: str) -> dict[str, Any]:
    """``pattern`` (with ``${CreationId}`` in it) for a resource a deleted stack leaves behind."""
    assert "${CreationId}" in pattern
    return {"Fn::Sub": [pattern, {"CreationId": CREATION_ID}]}


BUCKET_NAME = retained_name("${AWS::StackName}-evidence-${AWS::AccountId}-${CreationId}")
BUCKET_ARN = retained_name("arn:${AWS::Partition}:s3:::${AWS::StackName}-evidence-${AWS::AccountId}-${CreationId}")
ROOT = Path(__file__).resolve().parent.parent.parent
TIMER_MACHINE = "deadline_timer"
TIMER_MACHINE_NAME = "buyer-protection-deadline-timer"
# Lambda retries a failing timer message this often before it goes to the dead-letter queue.
MAX_RECEIVES = 5
# Every alarm notifies the operators' topic (subscribe to it after deploying: docs/DEPLOYMENT.md).
NOTIFY: dict[str, Any] = {"AlarmActions": [{"Ref": "AlarmTopic"}], "OKActions": [{"Ref": "AlarmTopic"}]}
RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# The API's name, per stack: its alarms watch this stage's API only.
API_NAME = {"Fn::Sub": "${AWS::StackName}"}


def state_machine_definition(name: str = TIMER_MACHINE) -> dict[str, Any]:
    """A definition from statemachines/, as an object (so cfn-lint checks it)."""
    return json.loads((ROOT / "statemachines" / f"{name}.asl.json").read_text())


def substitute(definition: dict[str, Any], values: dict[str, str]) -> str:
    """What CloudFormation's DefinitionSubstitutions does, for local runs."""
    text = json.dumps(definition)
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text


def table_arn(logical_id: str, index: bool = False) -> dict[str, str]:
    """A table of the stack (or its indexes), as an IAM resource."""
    return {"Fn::Sub": f"${{{logical_id}.Arn}}" + ("/index/*" if index else "")}



def function_name(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{function_id}"}



def schedule_rule_name(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{AWS::StackName}}-{function_id}"}


def schedule_rule_arn(function_id: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/"
                       f"${{AWS::StackName}}-{function_id}"}

