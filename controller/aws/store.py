"""One S3 JSON store: the ledger and the promotion records are JSON objects under the
controller's prefix in the assets bucket, read and written only through this class.

Every failure becomes the caller's `RecordError` (via `on_error`, which words it for what
the records are): nothing above aws/ sees botocore. A missing object is None, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from controller.core.errors import RecordError
from controller.core.redact import redact

MISSING = ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True)
class Failure:
    """Why a call failed: what was done (`read`, `write`, `list`) to which key."""

    verb: str
    key: str
    code: str
    message: str


class JsonStore:
    def __init__(self, s3: Any, bucket: str, on_error: Callable[[Failure], RecordError]) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.on_error = on_error

    def read(self, key: str, *, missing: tuple[str, ...] = MISSING) -> bytes | None:
        """The object's bytes; None when there is none (error codes `missing`)."""
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in missing:
                return None
            raise self._failed(exc, "read", key) from exc
        return body

    def read_json(self, key: str, *, missing: tuple[str, ...] = MISSING) -> Any:
        """The object as JSON; None when there is none, `ValueError` when it is not JSON."""
        body = self.read(key, missing=missing)
        return None if body is None else json.loads(body)

    def put(self, key: str, payload: Mapping[str, Any], *, redacted: bool = False) -> None:
        text = json.dumps(payload, indent=2)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=(redact(text) if redacted else text).encode(),
                ContentType="application/json",
            )
        except ClientError as exc:
            raise self._failed(exc, "write", key) from exc

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys += [o["Key"] for o in page.get("Contents", ())]
        except ClientError as exc:
            raise self._failed(exc, "list", prefix) from exc
        return keys

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING:
                return False
            raise self._failed(exc, "read", key) from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise self._failed(exc, "write", key) from exc

    def _failed(self, exc: ClientError, verb: str, key: str) -> RecordError:
        error = exc.response.get("Error", {})
        return self.on_error(
            Failure(verb, key, str(error.get("Code", "Error")), str(error.get("Message", exc)))
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
