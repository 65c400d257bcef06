"""Step Functions timers, EventBridge events, the refund queue (SQS) and the evidence bucket (S3):
the small adapters beside DynamoDB."""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..domain.evidence import download_name
from ..domain.timefmt import fmt
from ..domain.timers import TimerCommand

EVENT_SOURCE = "buyer-protection.disputes"


class SqsRefundQueue:
    """The refunds queue: one SendMessageBatch per ten messages (a commit owes one refund, rarely
    two). The queue's URL comes from the stack; without it, it is looked up by name once."""

    BATCH = 10  # SQS's most entries per SendMessageBatch

    def __init__(self, client: Any, url: str, name: str) -> None:
        self.client, self._url, self.name = client, url, name

    @property
    def url(self) -> str:
        if not self._url:
            self._url = str(self.client.get_queue_url(QueueName=self.name)["QueueUrl"])
        return self._url

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), self.BATCH):
            entries = [{"Id": str(n), "MessageBody": json.dumps(m, sort_keys=True)}
                       for n, m in enumerate(messages[start:start + self.BATCH])]
            failed = self.client.send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed") or []
            if failed:
                raise RuntimeError(f"the refund queue refused {len(failed)} message(s): {failed[0].get('Code')}")


class StepFunctionsTimers:
    """One Standard execution of statemachines/deadline_timer.asl.json per deadline. Execution
    names are the command's ``name``: deterministic, so starting the same timer twice is one
    execution (names are unique per state machine for 90 days on AWS)."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def execution_arn(self, command: TimerCommand) -> str:
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        return f"{prefix}:{command.name[:80]}"

    def start(self, command: TimerCommand) -> None:
        payload: dict[str, Any] = {"timer": command.message(), "due_at": fmt(command.due_at), "remind": False}
        if command.remind_at is not None:
            payload.update(remind=True, remind_at=fmt(command.remind_at))
        try:
            self.client.start_execution(stateMachineArn=self.state_machine_arn, name=command.name[:80],
                                        input=json.dumps(payload, sort_keys=True))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise  # already started (by an earlier try of this same command) is success

    def stop(self, command: TimerCommand) -> None:
        arn = self.execution_arn(command)
        # StopExecution alone: Step Functions stops the execution before it answers, and a timer that
        # fired meanwhile is stale when it reports in (services/timers.py), so there is nothing to
        # describe first or after.
        try:
            self.client.stop_execution(executionArn=arn, cause="the subject left this phase")
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "ValidationException"):
                raise  # never started, or already finished: nothing is waiting any more


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        result = self.client.put_events(Entries=[{
            "Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail, sort_keys=True),
            "EventBusName": self.bus_name}])
        if result.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {detail_type}: {result['Entries']}")


class S3EvidenceStore:
    """Evidence in one private bucket: uploads/ (raw, never served), evidence/ (served copies)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict[str, Any]:
        # The policy pins the key, the type and the size; S3 refuses any other upload. (Checked
        # again on arrival all the same: an emulator, or a client, may not have applied it.)
        post: dict[str, Any] = self.client.generate_presigned_post(
            Bucket=self.bucket, Key=key, Fields={"Content-Type": content_type},
            Conditions=[{"key": key}, {"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_in)
        return post

    def size(self, key: str) -> int | None:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            # Without s3:ListBucket (not granted), S3 answers a missing key with 403, not 404.
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound", "403", "Forbidden", "AccessDenied"):
                return None
            raise

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                               ServerSideEncryption="AES256")

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def download_url(self, key: str, file_name: str, expires_in: int, content_type: str, inline: bool) -> str:
        # The type, disposition and extension are fixed by the link, whatever the object or the
        # uploader's file name says: a browser renders only photos, and saves anything else
        # under the extension of its verified type.
        safe = download_name(file_name, content_type)
        disposition = "inline" if inline else "attachment"
        url: str = self.client.generate_presigned_url("get_object", ExpiresIn=expires_in, Params={
            "Bucket": self.bucket, "Key": key, "ResponseContentType": content_type,
            "ResponseContentDisposition": f'{disposition}; filename="{safe}"'})
        return url
