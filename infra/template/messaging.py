"""The timer machine, the timer and refund queues (each with a dead-letter queue and alarms) and
the event bus."""
from __future__ import annotations

from typing import Any

from .common import MAX_RECEIVES, NOTIFY, state_machine_definition

# Dead-letter queues keep a message the longest SQS allows (14 days). A standard queue's message
# keeps its original enqueue time in the dead-letter queue, so source queues keep theirs 10 days:
# a message reaching a dead-letter queue has 4 days left there at least. A consumer may be down
# 10 days and lose nothing; the age alarm fires after an hour.
DLQ_RETENTION = 14 * 24 * 3600
QUEUE_RETENTION = 10 * 24 * 3600
OLDEST_MESSAGE_ALARM_SECONDS = 3600


def queue_alarm(queue: str, description: str, metric: str = "ApproximateNumberOfMessagesVisible",
                threshold: int = 0) -> dict[str, Any]:
    """An alarm on one of ``queue``'s metrics above ``threshold``."""
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description, **NOTIFY,
        "Namespace": "AWS/SQS", "MetricName": metric,
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
        "Statistic": "Maximum", "Period": 300, "EvaluationPeriods": 1, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}}


def dead_letter_queue(queue_name: Any) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue", "Properties": {
        "QueueName": queue_name, "MessageRetentionPeriod": DLQ_RETENTION, "SqsManagedSseEnabled": True}}


def queue_resources(prefix: str, queue_name: Any, alarm_description: str) -> dict[str, Any]:
    """<prefix>Queue, its <prefix>DeadLetterQueue (after MAX_RECEIVES tries), an alarm on the
    dead-letter queue and one on the age of the queue's oldest message (a consumer down)."""
    dlq = f"{prefix}DeadLetterQueue"
    return {
        dlq: dead_letter_queue(f"{queue_name}-dlq"),
        f"{prefix}Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": queue_name, "VisibilityTimeout": 180, "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": QUEUE_RETENTION,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": MAX_RECEIVES}}},
        f"{prefix}DeadLetterAlarm": queue_alarm(dlq, alarm_description),
        f"{prefix}QueueAgeAlarm": queue_alarm(
            f"{prefix}Queue", f"A message waited over {OLDEST_MESSAGE_ALARM_SECONDS // 60} min in the queue: "
                              "its consumer is down or throttled.",
            metric="ApproximateAgeOfOldestMessage", threshold=OLDEST_MESSAGE_ALARM_SECONDS),
    }


# What Step Functions needs to deliver a machine's logs to CloudWatch Logs (its documented minimum).
LOG_DELIVERY_ACTIONS = ["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                        "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy", "logs:UpdateLogDelivery"]


def messaging_resources(timer_queue_name: str, refund_queue_name: str) -> dict[str, Any]:
    """The timer machine, its queue, the refund queue (each with a dead-letter queue and alarms)
    and the bus."""
    return {
        **queue_resources("Timer", timer_queue_name,
                          "A deadline could not be applied after retries: a dispute is stuck in its phase."),
        # The refunds commits owe, for the pay-refunds function (chalicelib/relay.py). A message
        # only fails when the worker could not even record the provider's silence; the refund
        # stays owed in the outbox, and the reconciler hands it over again.
        **queue_resources("Refund", refund_queue_name,
                          "A refund message failed after retries: the refund stays owed in the outbox "
                          "(the reconciler hands it over again); look at the pay-refunds logs."),
        "TimerFailedAlarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "AlarmDescription": "A deadline timer execution failed: its expiry never reached the queue.", **NOTIFY,
            "Namespace": "AWS/States", "MetricName": "ExecutionsFailed",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": "DeadlineTimer"}}],
            "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}},
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}"}}},
        "DeadlineTimerRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]},
            "Policies": [{"PolicyName": "SendToTimerQueue", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["TimerQueue", "Arn"]}}]}},
                # Step Functions' log delivery and X-Ray actions support no resource narrower than "*".
                {"PolicyName": "DeliverLogs", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": LOG_DELIVERY_ACTIONS, "Resource": "*"}]}},
                {"PolicyName": "Tracing", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["xray:GetSamplingRules", "xray:GetSamplingTargets",
                                                   "xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                     "Resource": "*"}]}}]}},
        "DeadlineTimerLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-deadline-timer"},
            "RetentionInDays": {"Ref": "LogRetentionDays"}}},
        "DeadlineTimer": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "StateMachineName": {"Fn::Sub": "${AWS::StackName}-deadline-timer"},
            "StateMachineType": "STANDARD",
            "Definition": state_machine_definition(),
            "DefinitionSubstitutions": {"TimerQueueUrl": {"Ref": "TimerQueue"}},
            "RoleArn": {"Fn::GetAtt": ["DeadlineTimerRole", "Arn"]},
            # Failed states only, without the input and output (dispute ids): cheap, and enough to debug.
            "LoggingConfiguration": {"Level": "ERROR", "IncludeExecutionData": False, "Destinations": [
                {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["DeadlineTimerLogGroup", "Arn"]}}}]},
            "TracingConfiguration": {"Enabled": True}}},
    }
