"""One apply at a time per controller: a lease object in the assets bucket.

Two controllers applying at once (a CI run and a person, two merges close together) would
race on the same stacks. The lease is `mlops-controller/<controller_id>/lock.json`, created
with S3's conditional write (`If-None-Match: *`: only if absent), so exactly one apply wins.
An expired lease is taken over with `If-Match` on the expired lease's ETag, so two takers
cannot both win either. Every write is read back and its nonce checked, which also holds on
stores whose conditional writes are not atomic (an emulator). The holder renews the lease
while it works and deletes it, only if still its own, when done.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

LEASE_SECONDS = float(os.environ.get("MLOPS_LOCK_SECONDS", "300"))
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class LockHeld(Exception):
    """Another apply holds a live lease; the message says who and until when."""


class LockError(Exception):
    """The lease could not be read or written (no bucket, no permission)."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    commit: str

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid} commit {self.commit[:12] or 'unknown'}"


@dataclass(frozen=True)
class LeaseRecord:
    holder: Holder
    acquired: datetime
    expires: datetime
    nonce: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "holder": {
                    "host": self.holder.host,
                    "pid": self.holder.pid,
                    "commit": self.holder.commit,
                },
                "acquired": self.acquired.isoformat(),
                "expires": self.expires.isoformat(),
                "nonce": self.nonce,
            },
            indent=2,
        ).encode()

    @staticmethod
    def from_json(body: bytes) -> LeaseRecord:
        data = json.loads(body)
        holder = data["holder"]
        return LeaseRecord(
            Holder(str(holder["host"]), int(holder["pid"]), str(holder.get("commit", ""))),
            datetime.fromisoformat(data["acquired"]),
            datetime.fromisoformat(data["expires"]),
            str(data["nonce"]),
        )


def lock_key(controller_id: str) -> str:
    return f"mlops-controller/{controller_id}/lock.json"


def this_process(commit: str | None) -> Holder:
    return Holder(socket.gethostname(), os.getpid(), commit or "")


class Lease:
    """`with Lease(...):` holds the lock for the block; raises LockHeld if someone else does."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        controller_id: str,
        holder: Holder,
        *,
        seconds: float = LEASE_SECONDS,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = lock_key(controller_id)
        self.holder = holder
        self.seconds = seconds
        self.nonce = uuid.uuid4().hex
        self._acquired = _now()
        self._etag = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            if not self._write(IfNoneMatch="*"):
                current, etag = self._read()
                if current is not None and current.expires > _now() and not _abandoned(current):
                    raise LockHeld(_held(current))
                # Absent again (released meanwhile), expired, or left by a process that died
                # on this host: take it over, conditionally.
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                if not self._write(**condition):
                    current, _ = self._read()
                    raise LockHeld(_held(current) if current else "lock changed hands")
            current, self._etag = self._read()
        except ClientError as exc:
            raise LockError(f"cannot take the lock s3://{self.bucket}/{self.key}: {exc}") from exc
        if current is None or current.nonce != self.nonce:
            raise LockHeld(_held(current) if current else "lock changed hands")
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True)
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        try:
            current, etag = self._read()
            if current is None or current.nonce != self.nonce:
                return
            self._delete(etag)
        except ClientError:
            # Unreachable now: the lease expires on its own.
            return

    def _delete(self, etag: str) -> None:
        """Delete only our own lease; a store without conditional deletes gets a plain one
        (we have just read our nonce back, so the window is one round trip)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except ClientError as exc:
            if _code(exc) in CONFLICT_CODES or _status(exc) in (409, 412):
                return
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if self._etag and self._write(IfMatch=self._etag):
                    _, self._etag = self._read()
            except ClientError:
                continue

    def _write(self, **condition: str) -> bool:
        expires = _now() + timedelta(seconds=self.seconds)
        record = LeaseRecord(self.holder, self._acquired, expires, self.nonce)
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=record.to_json(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if _code(exc) in CONFLICT_CODES or _status(exc) in (409, 412):
                return False
            raise
        return True

    def _read(self) -> tuple[LeaseRecord | None, str]:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None, ""
            raise
        body = response["Body"].read()
        try:
            return LeaseRecord.from_json(body), str(response.get("ETag", ""))
        except (ValueError, KeyError, TypeError):
            # Unreadable lease: treat it as expired so a broken object cannot wedge applies.
            return None, str(response.get("ETag", ""))


def _abandoned(record: LeaseRecord) -> bool:
    """Held by a process of this host that no longer exists (it crashed or was killed)."""
    holder = record.holder
    if holder.host != socket.gethostname() or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _held(record: LeaseRecord) -> str:
    until = record.expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"another apply holds the lock: {record.holder} until {until}"


def _now() -> datetime:
    return datetime.now(UTC)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
