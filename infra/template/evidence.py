"""The evidence bucket and the queue its uploads report to."""
from __future__ import annotations

from typing import Any

from .common import BUCKET_ARN, BUCKET_NAME
from .messaging import queue_resources

NONCURRENT_DAYS = 30


def evidence_resources(evidence_queue_name: str) -> dict[str, Any]:
    """The evidence bucket (private, encrypted, raw uploads cleaned after a day) and the queue its
    uploads/ prefix reports to, with a dead-letter queue and an alarm."""
    return {
        **queue_resources("Evidence", evidence_queue_name, "An evidence upload could not be processed after retries."),
        "EvidenceQueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
            "Queues": [{"Ref": "EvidenceQueue"}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": {"Fn::GetAtt": ["EvidenceQueue", "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": BUCKET_ARN},
                              "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}}},
        "EvidenceBucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "EvidenceBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [{"Fn::GetAtt": ["EvidenceBucket", "Arn"]}, {"Fn::Sub": "${EvidenceBucket.Arn}/*"}],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
        "EvidenceBucket": {"Type": "AWS::S3::Bucket", "DependsOn": "EvidenceQueuePolicy",
                           "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
            "BucketName": BUCKET_NAME,
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            # Uploads never processed (or processed: the served copy lives under evidence/) go after a day.
            "LifecycleConfiguration": {"Rules": [
                {"Id": "raw-uploads", "Status": "Enabled", "Prefix": "uploads/", "ExpirationInDays": 1,
                 "NoncurrentVersionExpirationInDays": 1},
                {"Id": "abandoned-multipart", "Status": "Enabled",
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
                # The bucket is versioned: a deleted object's versions go after NONCURRENT_DAYS (time to
                # undo a mistaken delete), then its delete marker.
                {"Id": "deleted-objects", "Status": "Enabled",
                 "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                 "ExpiredObjectDeleteMarker": True}]},
            # The apps POST uploads to presigned forms and GET served copies; the form's policy pins
            # key, type and size. Origins are the web app's, per stage (parameter AppOrigins).
            "CorsConfiguration": {"CorsRules": [{"AllowedMethods": ["POST", "GET"], "AllowedOrigins": {"Ref": "AppOrigins"},
                                                 "AllowedHeaders": ["*"], "MaxAge": 3000}]},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "NotificationConfiguration": {"QueueConfigurations": [{
                "Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["EvidenceQueue", "Arn"]},
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "uploads/"}]}}}]}}},
    }
