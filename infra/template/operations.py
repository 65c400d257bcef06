"""What operators watch: the alarm topic, the business (money) alarms, and per function its log
group and alarms; the scheduled functions' failure queue; the API's access logs and 5xx alarm."""
from __future__ import annotations

from typing import Any

from chalicelib.metrics import DIMENSION as METRICS_DIMENSION
from chalicelib.metrics import NAMESPACE as METRICS_NAMESPACE
from chalicelib.metrics import REFUNDS_UNSENT

from .common import API_NAME, NOTIFY, function_name, schedule_rule_arn
from .functions import SCHEDULED
from .messaging import dead_letter_queue, queue_alarm

# The business metrics' dimension (chalicelib/metrics.py): the stack's name, so two stages in one
# account never feed each other's alarms. Set as POWERTOOLS_SERVICE_NAME on every function.
METRICS_SERVICE = {"Fn::Sub": "${AWS::StackName}"}
METRICS_DIMENSIONS = [{"Name": METRICS_DIMENSION, "Value": METRICS_SERVICE}]
# Metrics the payments use cases emit (chalicelib/metrics.py), and what each alarm means.
MONEY_ALARMS = {
    "RefundsOverdue": "A refund was not settled by its deadline: it was asked again with the same key.",
    "RefundsNeedingAttention": "Every automatic attempt of a refund failed: a moderator must retry it.",
    "RefundsFailed": "The payment provider refused or failed a refund.",
    "MediationOverdue": "An escalated dispute passed its mediation deadline without a moderator's decision.",
}


# A refund the worker could not send is counted each time it is tried again (every few minutes,
# chalicelib/relay.py REFUND_LEASE): a provider outage alarms once refunds were left unsent in two
# ten-minute periods in a row, long before any refund is overdue; one lost answer does not.
OUTAGE_ALARMS = {
    REFUNDS_UNSENT: "Refunds could not be sent for 20 minutes (the payment provider unreachable, or "
                    "answering garbage): they stay owed and are tried again; look at the pay-refunds logs.",
}
OUTAGE_PERIOD_SECONDS, OUTAGE_PERIODS = 600, 2


def money_alarm(metric: str, why: str, period: int = 300, periods: int = 1) -> dict[str, Any]:
    """An alarm when ``metric`` was counted in each of ``periods`` periods of ``period`` seconds."""
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": why, **NOTIFY, "Namespace": METRICS_NAMESPACE, "MetricName": metric,
        "Dimensions": METRICS_DIMENSIONS,
        "Statistic": "Sum", "Period": period, "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
        "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}


def alarm_topic_resources() -> dict[str, Any]:
    """The operators' topic. CloudWatch cannot publish to a topic encrypted with the AWS-managed
    SNS key (its policy admits no other service): a key of the stack's own lets CloudWatch use it."""
    return {
        "AlarmKey": {"Type": "AWS::KMS::Key", "Properties": {
            "Description": {"Fn::Sub": "${AWS::StackName}: encrypts the alarm topic"}, "EnableKeyRotation": True,
            "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                {"Sid": "AccountAdministersTheKey", "Effect": "Allow",
                 "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "CloudWatchPublishesAlarms", "Effect": "Allow",
                 "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]}}},
        "AlarmKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": {"Fn::Sub": "alias/${AWS::StackName}-alarms"}, "TargetKeyId": {"Ref": "AlarmKey"}}},
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": {"Fn::Sub": "${AWS::StackName}-alarms"}, "KmsMasterKeyId": {"Ref": "AlarmKey"}}},
        "AlarmTopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [{"Ref": "AlarmTopic"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish",
                "Resource": {"Ref": "AlarmTopic"},
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                              "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:"
                                                                       "${AWS::AccountId}:alarm:*"}}}}]}}},
    }


def operations_resources(function_ids: list[str]) -> dict[str, Any]:
    """The alarm topic; per function a log group with retention and alarms on errors and throttles;
    the schedules' failure queue; the API's access logs and 5xx alarm."""
    resources: dict[str, Any] = {
        **alarm_topic_resources(),
        **{f"{metric}Alarm": money_alarm(metric, why) for metric, why in MONEY_ALARMS.items()},
        **{f"{metric}Alarm": money_alarm(metric, why, OUTAGE_PERIOD_SECONDS, OUTAGE_PERIODS)
           for metric, why in OUTAGE_ALARMS.items()},
        # The scheduled functions' failure destination (their role sends) and their rules'
        # dead-letter queue (EventBridge sends, through the queue policy): a dead-letter queue itself.
        "AsyncFailuresQueue": dead_letter_queue({"Fn::Sub": "${AWS::StackName}-async-failures"}),
        "AsyncFailuresAlarm": queue_alarm(
            "AsyncFailuresQueue", "A scheduled run failed after retries (or EventBridge could not invoke it)."),
        "AsyncFailuresQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "AsyncFailuresQueue"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["AsyncFailuresQueue", "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": [schedule_rule_arn(f) for f in SCHEDULED]},
                              "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}}},
        "ApiAccessLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/apigateway/${AWS::StackName}-access"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}},
        "Api5xxAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmDescription": "The API answered 5xx (a bug, or a dependency down).", **NOTIFY,
            "Namespace": "AWS/ApiGateway", "MetricName": "5XXError",
            "Dimensions": [{"Name": "ApiName", "Value": API_NAME}, {"Name": "Stage", "Value": "api"}],
            "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}},
    }
    for function_id in function_ids:
        resources[f"{function_id}LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{function_id}"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}}
        for metric in ("Errors", "Throttles"):
            resources[f"{function_id}{metric}Alarm"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {
                "AlarmDescription": f"{function_id}: Lambda {metric.lower()}.", **NOTIFY,
                "Namespace": "AWS/Lambda", "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": function_name(function_id)}],
                "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}
    return resources
