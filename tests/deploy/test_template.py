"""The synthesized template (build/<stage>/sam.json, as `make synth` writes it): linted, scanned,
and checked against what the code declares (queues, state machines, tables, environment, policies)."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.synth import Synthesized

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "AWS::Serverless::Function"
QUEUE = "AWS::SQS::Queue"
ALARM = "AWS::CloudWatch::Alarm"


def logical_id(reference: Any) -> str | None:
    """The resource a Ref or Fn::GetAtt names (None for anything else)."""
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return str(reference["Fn::GetAtt"][0])
    return None


def sub(value: Any) -> str:
    """The text of an Fn::Sub (its pattern, in the form with variables), or a plain string."""
    if not isinstance(value, dict):
        return str(value)
    text = value["Fn::Sub"]
    return str(text[0] if isinstance(text, list) else text)


# --- a. cfn-lint ---------------------------------------------------------------------------------

def test_cfn_lint_reports_nothing(synthesized: Synthesized) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.is_file(), f"cfn-lint is not beside {sys.executable}: install requirements-dev.txt"
    result = subprocess.run([str(cfn_lint), "--format", "json", str(synthesized.out / "sam.json")],
                            capture_output=True, text=True, timeout=300)
    matches = json.loads(result.stdout or "[]")
    errors = [m for m in matches if m["Rule"]["Id"].startswith("E")]
    assert not errors, json.dumps(errors, indent=1)
    assert result.returncode == 0, (matches, result.stderr)


# --- b. checkov ----------------------------------------------------------------------------------

def checkov_path() -> Path:
    """$CHECKOV (as `make test` passes it), else the one the Makefile installs into .tools/."""
    configured = os.environ.get("CHECKOV")
    if configured:
        path = Path(configured) if Path(configured).is_absolute() else ROOT / configured
        if not path.is_file():
            pytest.fail(f"CHECKOV={configured} is not a file: run `make deploy-tests`, which installs checkov")
        return path
    found = sorted(ROOT.glob(".tools/checkov-*/bin/checkov"))
    if not found:
        pytest.fail("checkov is not installed: run `make deploy-tests` (it installs it into .tools/) "
                    "or set CHECKOV to a checkov executable")
    return found[-1]


def accepted_failures() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "infra" / "checkov.yaml").read_text())["skip-check"])


@pytest.fixture(scope="session")
def checkov(synthesized: Synthesized) -> dict[str, Any]:
    """checkov's report on the template, every check run (no skip)."""
    result = subprocess.run([str(checkov_path()), "--file", str(synthesized.out / "sam.json"),
                             "--framework", "cloudformation", "--output", "json", "--compact", "--skip-download"],
                            capture_output=True, text=True, timeout=600, cwd=synthesized.out)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"checkov gave no report (exit {result.returncode}): {result.stderr[-2000:]}")
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "cloudformation"
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["resource_count"] >= len(synthesized.resources) - 5, report["summary"]
    assert report["summary"]["passed"] > 0, report["summary"]
    return report


def failed(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["failed_checks"]}


def test_checkov_finds_no_failure_beyond_the_justified_ones(checkov: dict[str, Any]) -> None:
    accepted = {(check, r) for check, entry in accepted_failures().items() for r in entry["resources"]}
    unjustified = sorted(failed(checkov) - accepted)
    assert not unjustified, f"fix these, or justify them in infra/checkov.yaml: {unjustified}"


def test_every_justified_checkov_failure_still_fails(checkov: dict[str, Any]) -> None:
    accepted = {(check, r) for check, entry in accepted_failures().items() for r in entry["resources"]}
    stale = sorted(accepted - failed(checkov))
    assert not stale, f"these pass now: remove them from infra/checkov.yaml: {stale}"


def test_every_checkov_justification_is_one_line() -> None:
    entries = accepted_failures()
    assert entries
    for check, entry in entries.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), check
        assert set(entry) == {"reason", "resources"}, check
        assert isinstance(entry["reason"], str) and entry["reason"].strip() and "\n" not in entry["reason"], check
        assert entry["resources"] and len(set(entry["resources"])) == len(entry["resources"]), check


# --- c. queues, dead-letter queues, alarms -------------------------------------------------------

def dead_letter_targets(synthesized: Synthesized) -> dict[str, str]:
    """Every queue something sends its failures to: {queue: who}."""
    out: dict[str, str] = {}
    for queue_id, queue in synthesized.of_type(QUEUE).items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            out[str(logical_id(redrive["deadLetterTargetArn"]))] = f"{queue_id} redrive"
    for function_id, function in synthesized.of_type(FUNCTION).items():
        props = function["Properties"]
        failure = props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure")
        if failure:
            out[str(logical_id(failure["Destination"]))] = f"{function_id} on failure"
        for event in props.get("Events", {}).values():
            if "DeadLetterConfig" in event["Properties"]:
                out[str(logical_id(event["Properties"]["DeadLetterConfig"]["Arn"]))] = f"{function_id} rule"
    return out


def alarms_on(synthesized: Synthesized, queue_id: str) -> dict[str, dict[str, Any]]:
    """The alarms on one of the queue's metrics: {metric: alarm properties}."""
    out = {}
    for alarm in synthesized.of_type(ALARM).values():
        props = alarm["Properties"]
        if props.get("Namespace") == "AWS/SQS" and {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}} \
                in props["Dimensions"]:
            out[props["MetricName"]] = props
    return out


def notifies_the_topic(synthesized: Synthesized, alarm: dict[str, Any]) -> bool:
    topics = set(synthesized.of_type("AWS::SNS::Topic"))
    return bool(alarm.get("AlarmActions")) and all(logical_id(a) in topics for a in alarm["AlarmActions"])


def test_every_queue_has_a_dead_letter_queue_and_every_dead_letter_queue_is_a_queue_here(synthesized: Synthesized) -> None:
    queues = synthesized.of_type(QUEUE)
    dlqs = dead_letter_targets(synthesized)
    assert {"TimerQueue", "EvidenceQueue", "RefundQueue"} <= set(queues) and dlqs
    assert set(dlqs) <= set(queues), dlqs
    for queue_id, queue in queues.items():
        if queue_id in dlqs:
            assert "RedrivePolicy" not in queue["Properties"], queue_id
            continue
        redrive = queue["Properties"].get("RedrivePolicy")
        assert redrive, f"{queue_id} has no dead-letter queue"
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [logical_id(redrive["deadLetterTargetArn"]), "Arn"]}
        assert int(redrive["maxReceiveCount"]) >= 3, queue_id


def test_dead_letter_queues_outlive_their_source_queues(synthesized: Synthesized) -> None:
    queues = synthesized.of_type(QUEUE)
    dlqs = dead_letter_targets(synthesized)
    for dlq in dlqs:
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600, dlq
    for queue_id, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            # SQS keeps a message's first enqueue time in the dead-letter queue.
            kept = queue["Properties"]["MessageRetentionPeriod"]
            assert 4 * 24 * 3600 < kept <= 14 * 24 * 3600 - 3 * 24 * 3600, (queue_id, kept)


def test_every_queue_has_an_alarm_that_notifies_the_alarm_topic(synthesized: Synthesized) -> None:
    dlqs = dead_letter_targets(synthesized)
    for queue_id in synthesized.of_type(QUEUE):
        alarms = alarms_on(synthesized, queue_id)
        if queue_id in dlqs:  # one message there is one failure
            alarm = alarms.get("ApproximateNumberOfMessagesVisible")
            assert alarm, f"{queue_id}: no alarm on its messages"
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), queue_id
        else:  # a consumer down or starved
            alarm = alarms.get("ApproximateAgeOfOldestMessage")
            assert alarm, f"{queue_id}: no alarm on the age of its oldest message"
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and 0 < alarm["Threshold"] <= 3600, queue_id
        assert notifies_the_topic(synthesized, alarm), (queue_id, alarm)


def test_every_alarm_notifies_the_alarm_topic(synthesized: Synthesized) -> None:
    alarms = synthesized.of_type(ALARM)
    assert len(alarms) > 10
    silent = [alarm_id for alarm_id, alarm in alarms.items() if not notifies_the_topic(synthesized, alarm["Properties"])]
    assert not silent, silent


def test_cloudwatch_can_publish_to_the_alarm_topic(synthesized: Synthesized) -> None:
    topics = synthesized.of_type("AWS::SNS::Topic")
    assert list(topics) == ["AlarmTopic"]
    key_id = logical_id(topics["AlarmTopic"]["Properties"]["KmsMasterKeyId"])
    assert key_id, "the topic is not under a key of the stack (the AWS-managed SNS key refuses CloudWatch)"
    key = synthesized.resources[key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
               and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
               for s in key["Properties"]["KeyPolicy"]["Statement"])
    policies = [p["Properties"] for p in synthesized.of_type("AWS::SNS::TopicPolicy").values()
                if {"Ref": "AlarmTopic"} in p["Properties"]["Topics"]]
    assert len(policies) == 1
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
               and s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": "AlarmTopic"}
               and s["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
               for s in policies[0]["PolicyDocument"]["Statement"])
    assert {"Ref": "AlarmTopic"} in [o["Value"] for o in synthesized.template["Outputs"].values()]


def test_only_the_schedules_rules_may_send_to_their_dead_letter_queue(synthesized: Synthesized) -> None:
    rules: dict[str, set[str]] = {}
    for function in synthesized.of_type(FUNCTION).values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Schedule":
                props = event["Properties"]
                assert "Name" in props, "an unnamed rule cannot be named in the queue's policy"
                rules.setdefault(str(logical_id(props["DeadLetterConfig"]["Arn"])), set()).add(
                    "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/" + sub(props["Name"]))
    assert rules
    for queue_id, arns in rules.items():
        statements = [s for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
                      if {"Ref": queue_id} in p["Properties"]["Queues"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
        assert statements, queue_id
        for statement in statements:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}, statement
            sources = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn", [])
            assert {sub(a) for a in sources} == arns, statement


def test_every_sqs_event_source_reads_a_queue_of_the_stack_within_its_reserved_concurrency(synthesized: Synthesized) -> None:
    names = {q["Properties"]["QueueName"]: queue_id for queue_id, q in synthesized.of_type(QUEUE).items()
             if isinstance(q["Properties"]["QueueName"], str)}
    seen = set()
    for function_id, function in synthesized.of_type(FUNCTION).items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            name = sub(event["Properties"]["Queue"]).rsplit(":", 1)[1]
            assert name in names, (function_id, name)
            seen.add(names[name])
            assert "RedrivePolicy" in synthesized.resources[names[name]]["Properties"]
            reserved = function["Properties"]["ReservedConcurrentExecutions"]
            pollers = event["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency")
            assert pollers and 2 <= pollers <= reserved, f"{function_id}: pollers may invoke past its reserved concurrency"
    assert seen == {"TimerQueue", "EvidenceQueue", "RefundQueue"}


# --- d. state machines ---------------------------------------------------------------------------

def test_every_state_machine_definition_is_a_file_in_statemachines(synthesized: Synthesized) -> None:
    files = {path.name: path.read_text() for path in sorted((ROOT / "statemachines").glob("*.asl.json"))}
    assert files
    machines = {**synthesized.of_type("AWS::StepFunctions::StateMachine"),
                **synthesized.of_type("AWS::Serverless::StateMachine")}
    assert machines
    used = set()
    for machine_id, machine in machines.items():
        props = machine["Properties"]
        definition = props.get("Definition")
        if definition is None and "DefinitionString" in props:
            definition = json.loads(props["DefinitionString"])
        sources = [name for name, text in files.items() if json.loads(text) == definition]
        assert sources, f"{machine_id}: its definition is not one of statemachines/ ({sorted(files)})"
        used.update(sources)
        placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", files[sources[0]]))
        assert placeholders == set(props.get("DefinitionSubstitutions", {})), machine_id
    assert used == set(files), f"not deployed: {sorted(set(files) - used)}"


def test_state_machines_log_to_a_group_with_retention_and_trace(synthesized: Synthesized) -> None:
    for machine_id, machine in synthesized.of_type("AWS::StepFunctions::StateMachine").items():
        props = machine["Properties"]
        assert props.get("TracingConfiguration") == {"Enabled": True}, machine_id
        logging = props.get("LoggingConfiguration", {})
        assert logging.get("Level") in ("ERROR", "ALL"), machine_id
        [destination] = logging["Destinations"]
        group = synthesized.resources[str(logical_id(destination["CloudWatchLogsLogGroup"]["LogGroupArn"]))]
        assert group["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" in group["Properties"], machine_id
        role = synthesized.resources[str(logical_id(props["RoleArn"]))]
        granted = {a for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
                   for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "xray:PutTraceSegments"} <= granted
        assert not any("*" in action for action in granted), granted


# --- e. tables -----------------------------------------------------------------------------------

def model_tables() -> dict[str, Any]:
    """{table name: the model that owns it}, from the PynamoDB models, each table named after its
    logical name (the template names its tables ${AWS::StackName}-<logical name>)."""
    from chalicelib.adapters.dynamodb.models import Tables, make_tables

    tables = make_tables({f.name: f.name for f in fields(Tables)}, "us-east-1")
    owners = {model.Meta.table_name: model for model in tables.all()}
    # Models that share a table (counters) must agree with its owner's keys.
    for f in fields(Tables):
        model = getattr(tables, f.name)
        assert declared_keys(model) == declared_keys(owners[model.Meta.table_name]), f.name
    return owners


def declared_keys(model_or_index: Any) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """(key schema, the key attributes' definitions) of a model or an index, from its attributes."""
    attributes = (model_or_index.Meta.attributes if hasattr(model_or_index.Meta, "index_name")
                  else model_or_index.get_attributes())
    hash_keys = [a for a in attributes.values() if a.is_hash_key]
    range_keys = [a for a in attributes.values() if a.is_range_key]
    assert len(hash_keys) == 1 and len(range_keys) <= 1
    schema = [(hash_keys[0].attr_name, "HASH")] + [(a.attr_name, "RANGE") for a in range_keys]
    return schema, {(a.attr_name, a.attr_type) for a in hash_keys + range_keys}


def declared_table(model: Any) -> dict[str, Any]:
    from pynamodb.indexes import GlobalSecondaryIndex, Index, LocalSecondaryIndex

    schema, definitions = declared_keys(model)
    indexes: dict[str, dict[str, Any]] = {"global": {}, "local": {}}
    for index in (v for v in vars(model).values() if isinstance(v, Index)):
        kind = "global" if isinstance(index, GlobalSecondaryIndex) else "local"
        assert kind == "global" or isinstance(index, LocalSecondaryIndex)
        index_schema, index_definitions = declared_keys(index)
        definitions |= index_definitions
        projection = index.Meta.projection
        indexes[kind][index.Meta.index_name] = (
            index_schema, projection.projection_type, sorted(getattr(projection, "non_key_attributes", None) or []))
    return {"KeySchema": schema, "AttributeDefinitions": definitions, "GSI": indexes["global"], "LSI": indexes["local"]}


def template_table(props: dict[str, Any]) -> dict[str, Any]:
    def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    def indexes(name: str) -> dict[str, Any]:
        return {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"],
                                 sorted(i["Projection"].get("NonKeyAttributes", [])))
                for i in props.get(name, [])}

    definitions = [(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]]
    assert len(set(definitions)) == len(definitions)
    return {"KeySchema": keys(props["KeySchema"]), "AttributeDefinitions": set(definitions),
            "GSI": indexes("GlobalSecondaryIndexes"), "LSI": indexes("LocalSecondaryIndexes")}


def test_tables_keys_and_indexes_equal_the_pynamodb_models(synthesized: Synthesized) -> None:
    models = model_tables()
    deployed = {}
    for table_id, table in synthesized.of_type("AWS::DynamoDB::Table").items():
        name = sub(table["Properties"]["TableName"])
        assert name.startswith("${AWS::StackName}-") and name.endswith("-${CreationId}"), (table_id, name)
        deployed[name.removeprefix("${AWS::StackName}-").removesuffix("-${CreationId}")] = table["Properties"]
    assert set(deployed) == set(models)
    for name, model in models.items():
        assert template_table(deployed[name]) == declared_table(model), name
    assert any(declared_table(m)["GSI"] for m in models.values())


# --- f. environment ------------------------------------------------------------------------------

# Read by the app but not set by the stack, and why.
NOT_SET = {
    "SWEEP_INTERVAL_SECONDS": "fixed in the schedule when the app is packaged; the default applies",
    "SIMULATED_SETTLE_SECONDS": "the simulated provider's delay; the default applies",
    "SIMULATED_WEBHOOK_SECRET": "random per process unless given",
    "STRIPE_API_KEY": "local runs; a deployed Stripe stage reads the secret named by STRIPE_SECRET_ARN",
    "STRIPE_WEBHOOK_SECRET": "local runs; a deployed Stripe stage reads the secret named by STRIPE_SECRET_ARN",
    "STRIPE_SECRET_ARN": "a Stripe stage's paying functions only (tests/integration/test_stripe_secret.py)",
    "STRIPE_API_BASE": "tests only",
    "SANDBOX": "the /sandbox routes: `make dev` only, never deployed",
    "AUTH_PUBLIC_KEY": "local runs; the stack verifies tokens with AUTH_JWKS_URL",
    "AUTH_PUBLIC_KEY_FILE": "local runs; the stack verifies tokens with AUTH_JWKS_URL",
    "AWS_REGION": "set by the Lambda runtime (reserved)",
    "AWS_DEFAULT_REGION": "set by the Lambda runtime (reserved)",
    "AWS_LAMBDA_FUNCTION_NAME": "set by the Lambda runtime (reserved)",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "set by the Lambda runtime (reserved)",
    "INSPECTION_CPU_SECONDS": "tests and benches; deployed, the budget is sized to the function's memory",
    **{var: "the API function only: it serves the console (test_only_the_api_function_serves_the_console)"
       for var in ("CONSOLE_AUTH_DOMAIN", "CONSOLE_CLIENT_ID_PARAMETER", "CONSOLE_SESSION_SECRET_ARN")},
    "CONSOLE_CLIENT_ID": "local runs and tests; the stack gives CONSOLE_CLIENT_ID_PARAMETER",
    "CONSOLE_SESSION_KEY": "local runs; the stack gives CONSOLE_SESSION_SECRET_ARN",
    "CONSOLE_SESSION_SECONDS": "the default (a working day) applies",
}
CONSOLE_VARIABLES = {"CONSOLE_AUTH_DOMAIN", "CONSOLE_CLIENT_ID_PARAMETER", "CONSOLE_SESSION_SECRET_ARN"}
# Set by the stack for a library the app uses, with the Powertools constant naming it.
LIBRARY = {"POWERTOOLS_SERVICE_NAME": "SERVICE_NAME_ENV", "POWERTOOLS_LOG_LEVEL": "POWERTOOLS_LOG_LEVEL_ENV"}
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,}")


def variables_read() -> set[str]:
    """Every variable name in the modules of app.py and chalicelib/ that read the environment:
    their upper-case string literals (os.environ[...], env.get("..."), the DURATIONS table ...)."""
    names: set[str] = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        tree = ast.parse(path.read_text(), str(path))
        reads = any((isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "os"
                     and n.attr in ("environ", "getenv"))
                    or (isinstance(n, ast.ImportFrom) and n.module == "os"
                        and {a.name for a in n.names} & {"environ", "getenv"}) for n in ast.walk(tree))
        if reads:
            names |= {n.value for n in ast.walk(tree)
                      if isinstance(n, ast.Constant) and isinstance(n.value, str) and ENV_NAME.fullmatch(n.value)}
    return names


def environments(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    shared = synthesized.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {function_id: {**shared, **f["Properties"].get("Environment", {}).get("Variables", {})}
            for function_id, f in synthesized.of_type(FUNCTION).items()}


def test_every_variable_the_app_reads_is_set_on_every_function_or_explained(synthesized: Synthesized) -> None:
    from chalicelib.config import DURATIONS, STANDING

    read = variables_read()
    assert {"ORDERS_TABLE", "AUTH_JWKS_URL", "PAYMENT_PROVIDER"} <= read, read
    not_set = {**NOT_SET, **{var: "a deadline (docs/RULES.md); the default applies" for var in DURATIONS},
               **{var: "a standing setting (docs/RULES.md 11); the default applies" for var in STANDING}}
    assert set(not_set) <= read, f"no longer read: drop {sorted(set(not_set) - read)}"
    required = read - set(not_set)
    for function_id, env in environments(synthesized).items():
        assert required <= set(env), f"{function_id} lacks {sorted(required - set(env))}"


def test_only_the_api_function_serves_the_console(synthesized: Synthesized) -> None:
    """The console's hosted UI, client id and session key reach the API function, and no other."""
    for function_id, env in environments(synthesized).items():
        assert (set(env) & CONSOLE_VARIABLES) == (CONSOLE_VARIABLES if function_id == "APIHandler" else set())
    resources = synthesized.template["Resources"]
    client = resources["ConsoleAppClient"]["Properties"]
    assert client["AllowedOAuthFlows"] == ["code"] and client["GenerateSecret"] is False
    assert [u["Fn::Sub"] for u in client["CallbackURLs"]] == [
        "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/console/callback"]
    assert resources["ConsoleClientIdParameter"]["Properties"]["Value"] == {"Ref": "ConsoleAppClient"}
    assert {"ConsoleURL", "ConsoleAppClientId", "HostedUiEndpoint"} <= set(synthesized.template["Outputs"])


def test_the_stack_sets_no_variable_nothing_reads(synthesized: Synthesized) -> None:
    from aws_lambda_powertools.shared import constants

    assert {name: getattr(constants, const) for name, const in LIBRARY.items()} == {n: n for n in LIBRARY}
    read = variables_read()
    runtime = {name for name, why in NOT_SET.items() if "Lambda runtime" in why}
    for function_id, env in environments(synthesized).items():
        assert not set(env) - read - set(LIBRARY), f"{function_id} sets {sorted(set(env) - read - set(LIBRARY))}"
        assert not set(env) & runtime, function_id
        assert set(LIBRARY) <= set(env), function_id


# --- g. policies ---------------------------------------------------------------------------------

def test_the_deployed_policies_are_the_ones_the_least_privilege_test_checks(synthesized: Synthesized) -> None:
    """tests/integration/test_least_privilege.py checks cloudformation(stage, function_ids())'s
    policies against the calls each function makes: the template must deploy exactly those."""
    from infra.build import function_ids
    from infra.template import cloudformation
    from infra.template.functions import role_id

    ids = function_ids()
    checked = cloudformation(synthesized.stage, ids)["Resources"]
    functions = synthesized.of_type(FUNCTION)
    assert set(functions) == set(ids)
    for function_id, function in functions.items():
        props = function["Properties"]
        assert "Policies" not in props and props["Role"] == {"Fn::GetAtt": [role_id(function_id), "Arn"]}, function_id
        role = synthesized.resources[role_id(function_id)]
        assert role["Type"] == "AWS::IAM::Role"
        assert role["Properties"]["Policies"] == checked[role_id(function_id)]["Properties"]["Policies"], function_id
        assert not {"ManagedPolicyArns", "PermissionsBoundary"} & set(role["Properties"]), function_id
    machine_role = str(logical_id(synthesized.resources["DeadlineTimer"]["Properties"]["RoleArn"]))
    assert synthesized.resources[machine_role] == checked[machine_role]
    # Nothing else attaches permissions to a role.
    assert not synthesized.of_type("AWS::IAM::Policy") and not synthesized.of_type("AWS::IAM::ManagedPolicy")


# --- the template's other promises ---------------------------------------------------------------

def test_gateway_responses_are_part_of_the_api_definition(synthesized: Synthesized) -> None:
    from infra.template.api import GATEWAY_RESPONSES

    assert not synthesized.of_type("AWS::ApiGateway::GatewayResponse")
    [api] = synthesized.of_type("AWS::Serverless::Api").values()
    responses = api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(GATEWAY_RESPONSES)
    for kind, (status, code, _) in GATEWAY_RESPONSES.items():
        assert responses[kind].get("statusCode") == (None if status is None else str(status)), kind
        assert json.loads(responses[kind]["responseTemplates"]["application/json"])["error"]["code"] == code
        assert responses[kind]["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"


def test_the_api_and_its_5xx_alarm_are_named_per_stack(synthesized: Synthesized) -> None:
    [api] = synthesized.of_type("AWS::Serverless::Api").values()
    name = api["Properties"]["Name"]
    assert "${AWS::StackName}" in sub(name)
    assert api["Properties"]["DefinitionBody"]["info"]["title"] == name
    api_alarms = [a["Properties"] for a in synthesized.of_type(ALARM).values()
                  if a["Properties"].get("Namespace") == "AWS/ApiGateway"]
    assert api_alarms
    for alarm in api_alarms:
        assert {"Name": "ApiName", "Value": name} in alarm["Dimensions"], alarm


def test_account_wide_api_gateway_logging_outlives_the_stack(synthesized: Synthesized) -> None:
    [account] = synthesized.of_type("AWS::ApiGateway::Account").values()
    role_id = str(logical_id(account["Properties"]["CloudWatchRoleArn"]))
    for resource in (account, synthesized.resources[role_id]):
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain")


def test_deleted_evidence_and_unprocessed_uploads_expire(synthesized: Synthesized) -> None:
    bucket = synthesized.resources["EvidenceBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Status"] == "Enabled"]
    uploads = [r for r in rules if r.get("Prefix") == "uploads/"]
    assert uploads and all(r["ExpirationInDays"] <= 7 for r in uploads)
    whole = [r for r in rules if not r.get("Prefix") and not r.get("Filter")]
    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 0) > 0 for r in whole)
    assert any(r.get("ExpiredObjectDeleteMarker") is True for r in whole)


def test_what_a_deleted_stack_keeps_is_named_per_creation_so_the_stack_can_be_created_again(
        synthesized: Synthesized) -> None:
    """Before: the tables and the bucket had fixed names and Retain, so deleting a stack (after a
    failed first deploy) and deploying it again failed on "already exists"."""
    creation_id = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": [
        "/", {"Ref": "AWS::StackId"}]}]}]}]}  # the first 8 characters of the stack's id (a UUID)
    kept = {rid: r for rid, r in synthesized.resources.items() if r.get("DeletionPolicy") == "Retain"}
    named = {rid: r["Properties"][prop] for rid, r in kept.items() for prop in NAME_PROPERTIES
             if prop in r["Properties"] and prop not in ("UserPoolName",)}  # pool names need not be unique
    assert {"EvidenceBucket", "OrdersTable", "DisputesTable"} <= set(named)
    for rid, value in named.items():
        pattern, variables = value["Fn::Sub"]
        assert "${CreationId}" in pattern and variables == {"CreationId": creation_id}, rid
    # The bucket's ARN in the queue's policy names the same bucket.
    policy = json.dumps(synthesized.resources["EvidenceQueuePolicy"])
    assert "${AWS::StackName}-evidence-${AWS::AccountId}-${CreationId}" in policy


NAME_PROPERTIES = ("QueueName", "TableName", "FunctionName", "TopicName", "LogGroupName", "StateMachineName",
                   "UserPoolName", "LayerName", "AliasName", "ClientName", "BucketName", "Domain")
# "Name" names a resource of the account only on these (elsewhere it is a label inside one).
NAMED_BY_NAME = ("AWS::Events::EventBus", "AWS::Serverless::Api", "AWS::Events::Rule")


def test_every_named_resource_carries_the_stack_or_stage(synthesized: Synthesized) -> None:
    """Two stages (stacks) in one account never share or collide on a name."""
    prefix = f"buyer-protection-{synthesized.stage}-"
    names = []
    for resource_id, resource in synthesized.resources.items():
        props = resource.get("Properties", {})
        chosen = [prop for prop in NAME_PROPERTIES if prop in props]
        if resource["Type"] in NAMED_BY_NAME and "Name" in props:
            chosen.append("Name")
        names += [(resource_id, props[prop]) for prop in chosen]
        names += [(resource_id, e["Properties"]["Name"]) for e in props.get("Events", {}).values()
                  if e["Type"] == "Schedule" and "Name" in e["Properties"]]
    for resource_id, value in names:
        if logical_id(value) is None:  # a Ref names a resource checked itself
            name = sub(value)
            assert "${AWS::StackName}" in name or name.startswith(prefix), (resource_id, name)
    assert len(names) > 20


def test_the_evidence_handler_reports_its_failed_messages_so_only_those_return(synthesized: Synthesized) -> None:
    # app.py answers with batchItemFailures: without ReportBatchItemFailures, Lambda would take that
    # answer for success and delete the failed messages too.
    events = synthesized.resources["EvidenceUploaded"]["Properties"]["Events"].values()
    sqs = [e for e in events if e["Type"] == "SQS"]
    assert len(sqs) == 1 and sqs[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_user_pool_has_the_groups_the_api_reads(synthesized: Synthesized) -> None:
    """`moderators` decide cases, `moderation-admins` manage the auto-resolution rules (chalicelib/adapters/auth.py)."""
    groups = {r["Properties"]["GroupName"]: r["Properties"]["UserPoolId"] for r in synthesized.resources.values()
              if r["Type"] == "AWS::Cognito::UserPoolGroup"}
    assert {"moderators", "moderation-admins", "services"} <= set(groups)
    assert all(pool == {"Ref": "UserPool"} for pool in groups.values())


def test_the_refund_worker_takes_one_message_within_the_queues_visibility_and_the_reconcilers_lease(
        synthesized: Synthesized) -> None:
    """One message an invocation: attempt N of a refund may make N + 1 provider calls, so a batch
    of several could outlast the function's timeout (app.py, pay_refunds). A message being worked
    on is back in the queue by the end of its visibility timeout, before the reconciler's lease on
    its outbox record ends (chalicelib/relay.py): the reconciler never copies a message in flight."""
    from chalicelib.relay import REFUND_LEASE

    function = synthesized.resources["PayRefunds"]["Properties"]
    [sqs] = [e for e in function["Events"].values() if e["Type"] == "SQS"]
    visibility = synthesized.resources["RefundQueue"]["Properties"]["VisibilityTimeout"]
    assert sqs["Properties"]["BatchSize"] == 1
    assert function["Timeout"] < visibility < REFUND_LEASE.total_seconds()


def test_a_refund_left_unsent_for_twenty_minutes_alarms_long_before_it_is_overdue(synthesized: Synthesized) -> None:
    from chalicelib.domain.policy import Policy
    from chalicelib.metrics import NAMESPACE, REFUNDS_UNSENT
    from chalicelib.relay import REFUND_LEASE

    alarm = synthesized.resources["RefundsUnsentAlarm"]
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (NAMESPACE, REFUNDS_UNSENT, "Sum")
    assert notifies_the_topic(synthesized, props)
    window = props["Period"] * props["EvaluationPeriods"]
    # Every period of an outage counts the refund at least once (it is tried again each lease).
    assert props["Period"] > REFUND_LEASE.total_seconds() + 60
    assert window <= 20 * 60 < Policy().refund_settlement.total_seconds()
