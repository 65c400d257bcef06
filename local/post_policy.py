"""What S3 checks on a browser upload (presigned POST) and moto does not: the policy's expiry,
its signature, and every condition (exact fields, prefixes, the content-length range), with
every form field covered by a condition. Installed in front of moto's S3 POST handler by `make
dev` and the integration tests, so an upload refused by AWS is refused locally too.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

# Form fields that never need a condition (AWS: the signature, the file, the policy itself).
EXEMPT = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def xml(self) -> str:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
                f"<Message>{self.message}</Message></Error>")


def _signing_key(secret: str, credential: str) -> bytes:
    _, date, region, service, _ = credential.split("/")
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def unique(names: list[str]) -> None:
    """S3 reads form field names without regard to case: a name given twice (``key`` and ``KEY``)
    is refused, so the value checked is the only one there is."""
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise Refusal(400, "InvalidArgument", f"POST form field names must be unique (in any case): {name}")
        seen.add(name.lower())


def check(fields: dict[str, str], bucket: str, size: int, now: datetime, secret: str | None,
          key: str | None = None) -> None:
    """Raise ``Refusal`` (with S3's status and code) unless S3 would take this upload. ``key``: the
    key the store will write under, when it reads it otherwise than from ``fields``."""
    encoded = fields.get("policy")
    if not encoded:
        raise Refusal(403, "AccessDenied", "Anonymous uploads are not allowed: the form has no policy")
    try:
        policy = json.loads(base64.b64decode(encoded))
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Refusal(400, "InvalidPolicyDocument", "Invalid Policy: the policy is not valid JSON") from exc
    if now >= expiration:
        raise Refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    if secret is not None:
        if "x-amz-credential" in fields:  # Signature Version 4
            expected = hmac.new(_signing_key(secret, fields["x-amz-credential"]), encoded.encode(),
                                hashlib.sha256).hexdigest()
            given = fields.get("x-amz-signature", "")
        else:  # Signature Version 2
            expected = base64.b64encode(hmac.new(secret.encode(), encoded.encode(), hashlib.sha1).digest()).decode()
            given = fields.get("signature", "")
        if not hmac.compare_digest(expected, given):
            raise Refusal(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you provided.")
    values = {k.lower(): v for k, v in fields.items()} | {"bucket": bucket}
    if key is not None:
        values["key"] = key
    covered: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            (name, wanted), = condition.items()
            op, name = "eq", name.lower()
        elif condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size > high:
                raise Refusal(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            if size < low:
                raise Refusal(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
            continue
        else:
            op, name, wanted = condition[0], condition[1].lstrip("$").lower(), condition[2]
        covered.add(name)
        value = values.get(name, "")
        if (op == "eq" and value != wanted) or (op == "starts-with" and not value.startswith(wanted)):
            raise Refusal(403, "AccessDenied",
                          f'Invalid according to Policy: Policy Condition failed: ["{op}", "${name}", "{wanted}"]')
    for name in values:
        if name not in covered and name not in EXEMPT and name != "bucket" and not name.startswith("x-ignore-"):
            raise Refusal(403, "AccessDenied",
                          f"Invalid according to Policy: Extra input fields: {name}")


def enforce_post_policy() -> None:
    """Put ``check`` in front of moto's S3 POST object handler (once per process)."""
    from moto.s3.responses import S3Response

    original = S3Response._bucket_response_post
    if getattr(original, "_policy_checked", False):
        return

    @functools.wraps(original)
    def post(self: Any, request: Any, bucket_name: str) -> Any:
        self.path = self._get_path(request)
        if not request.headers.get("Content-Length") or self.is_delete_keys():
            return original(self, request, bucket_name)
        form = getattr(self, "form_data", None)
        pairs = list(form.items(multi=True)) if form else [(k, v) for k, vs in self.querystring.items() for v in vs]
        names = [k for k, _ in pairs] + [k for k, _ in request.files.items(multi=True)]
        fields = {k: v for k, v in pairs if k != "file"}
        stored = self.querystring.get("key") or [""]  # moto writes under this field, spelled so
        body = self.body if isinstance(self.body, bytes) else bytes(self.body or b"")
        try:
            unique(names)
            check(fields, bucket_name, len(body), datetime.now(UTC), os.environ.get("AWS_SECRET_ACCESS_KEY"),
                  key=stored[0])
        except Refusal as refusal:
            return refusal.status, {"Content-Type": "application/xml"}, refusal.xml()
        return original(self, request, bucket_name)

    post._policy_checked = True  # type: ignore[attr-defined]
    S3Response._bucket_response_post = post  # type: ignore[method-assign]
