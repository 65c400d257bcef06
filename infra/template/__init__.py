"""The merge template for `chalice package`, composed from one module per resource family:

- ``tables``: the tables, from the PynamoDB models;
- ``messaging``: the timer machine, the timer and refund queues and the event bus;
- ``evidence``: the evidence bucket and its queue;
- ``identity``: the user pool and the machine clients;
- ``functions``: each Lambda function's policy, environment, concurrency and sources; the layer;
- ``operations``: alarms, the alarm topic, log groups, the schedules' failure queue;
- ``api``: the REST API's error answers, access logs, throttling and tracing.

``common`` holds what they refer to each other by. `make dev` and the tests create the same
resources in the emulator from these definitions (local/provision.py).
"""
from __future__ import annotations

from typing import Any

from chalicelib.config import DEFAULT_EVIDENCE_QUEUE, DEFAULT_REFUND_QUEUE, DEFAULT_TIMER_QUEUE

from .api import api_resources
from .evidence import evidence_resources
from .functions import STRIPE_SECRET_PARAMETER, function_resources, layer_resources, stage_payment_provider
from .identity import CONSOLE_URL, HOSTED_UI, SERVICE_CLIENTS, auth_environment, identity_resources
from .messaging import messaging_resources
from .operations import METRICS_SERVICE, operations_resources
from .tables import table_environment, table_resources

PARAMETERS = {
    "LogRetentionDays": {"Type": "Number", "Default": 90, "AllowedValues": [30, 90, 180, 365, 731],
                         "Description": "How long the functions' and the API's logs are kept."},
    "AppOrigins": {"Type": "CommaDelimitedList", "Default": "https://localhost",
                   "Description": "Web origins allowed to POST uploads to and GET evidence from the bucket."},
}


def outputs() -> dict[str, Any]:
    """What a newcomer needs after `make deploy`: where the API is and how to get tokens."""
    out: dict[str, Any] = {
        "UserPoolId": {"Value": {"Ref": "UserPool"}},
        "MobileAppClientId": {"Value": {"Ref": "MobileAppClient"}},
        "TokenEndpoint": {"Value": {"Fn::Sub": "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
                                               "/oauth2/token"}},
        "EvidenceBucketName": {"Value": {"Ref": "EvidenceBucket"}},
        "ConsoleURL": {"Value": {"Fn::Sub": CONSOLE_URL + "/"},
                       "Description": "The case team's console (moderators sign in with the hosted UI)."},
        "ConsoleAppClientId": {"Value": {"Ref": "ConsoleAppClient"}},
        "HostedUiEndpoint": {"Value": {"Fn::Sub": HOSTED_UI}},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
    }
    out.update({f"{logical_id}Id": {"Value": {"Ref": logical_id}} for logical_id in SERVICE_CLIENTS})
    return out


def cloudformation(stage: str, function_ids: list[str], timer_queue_name: str = DEFAULT_TIMER_QUEUE,
                   evidence_queue_name: str = DEFAULT_EVIDENCE_QUEUE,
                   refund_queue_name: str = DEFAULT_REFUND_QUEUE) -> dict[str, Any]:
    """The merge template for `chalice package`: identity, tables, timer machine, queues, bus,
    bucket, alarms, and for each Lambda function (by its logical id) its environment, policy,
    concurrency and failure destination; the API's access logs, throttling and tracing."""
    resources: dict[str, Any] = {**messaging_resources(timer_queue_name, refund_queue_name),
                                 **evidence_resources(evidence_queue_name),
                                 **identity_resources(), **layer_resources(), **operations_resources(function_ids),
                                 **table_resources(), **api_resources()}
    env: dict[str, Any] = table_environment()
    env.update({"TIMER_STATE_MACHINE_ARN": {"Ref": "DeadlineTimer"}, "EVENT_BUS_NAME": {"Ref": "EventBus"},
                "TIMER_QUEUE_NAME": timer_queue_name, "EVIDENCE_BUCKET": {"Ref": "EvidenceBucket"},
                "EVIDENCE_QUEUE_NAME": evidence_queue_name, "REFUND_QUEUE_NAME": refund_queue_name,
                "REFUND_QUEUE_URL": {"Ref": "RefundQueue"}, "POWERTOOLS_SERVICE_NAME": METRICS_SERVICE,
                **auth_environment()})
    stripe = stage_payment_provider(stage) == "stripe"
    resources.update(function_resources(function_ids, env, stripe))
    parameters = {**PARAMETERS, **({"StripeSecretArn": STRIPE_SECRET_PARAMETER} if stripe else {})}
    return {"Parameters": parameters, "Resources": resources, "Outputs": outputs()}
