"""One apply at a time per controller: a lease object in the assets bucket.

Two controllers applying at once (a CI run and a person, two merges close together) would
race on the same stacks. The lease is `mlops-controller/<controller_id>/lock.json`, created
with S3's conditional write (`If-None-Match: *`: only if absent), so exactly one apply wins.
An expired lease is taken over with `If-Match` on the expired lease's ETag, so two takers
cannot both win either. Every write is read back and its nonce checked, which also holds on
stores whose conditional writes are not atomic (an emulator), and which tells a write whose
answer was lost (and whose retry then failed its condition against itself) from someone
else's lease. The holder renews the lease while it works and deletes it, only if still its
own, when done.

A lease is never broken while it is live: not for a process that looks dead on this host
(the same host name in another PID namespace, a container, a zombie is no proof of death),
only by expiry. It is valid only while its renewals succeed: the applier asks `before_write`
before every write, and it refuses once the lease could not be renewed in time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.aws.apply import WriteRefused
from controller.aws.session import Aws

MAX_LEASE_SECONDS = 3600.0
"""The longest a lease may live without a renewal, whatever its record says: an `expires`
further than this after the object was written (by S3's clock, `LastModified`) cannot come
from a controller, so a lease planted to expire in 2099 does not block applies until 2099."""
LEASE_SECONDS = min(float(os.environ.get("MLOPS_LOCK_SECONDS", "120")), MAX_LEASE_SECONDS)
"""How long a lease lives without a renewal; renewed every quarter of it, so a long apply
(endpoint creation takes 5-20 minutes) holds it through renewals, and a killed one blocks
others for at most this long."""
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class LockHeld(Exception):
    """Another apply holds a live lease; the message says who and until when."""


class LockError(Exception):
    """The lease could not be read or written (no bucket, no permission)."""


class LeaseLost(WriteRefused):
    """This apply can no longer prove it holds the lease: it must not write anything more."""


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
        """The record; ValueError (or KeyError, TypeError) when it is not one a controller
        writes, a time without a time zone included (it cannot be compared with now)."""
        data = json.loads(body)
        holder = data["holder"]
        return LeaseRecord(
            Holder(str(holder["host"]), int(holder["pid"]), str(holder.get("commit", ""))),
            _aware(data["acquired"], "acquired"),
            _aware(data["expires"], "expires"),
            str(data["nonce"]),
        )


def lease_of(aws: Aws, bucket: str, controller_id: str, holder: Holder) -> Lease:
    """The controller's lease, in the session's account."""
    return Lease(aws.client("s3"), bucket, controller_id, holder)


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {value!r} has no time zone")
    return moment


def lock_key(controller_id: str) -> str:
    return f"mlops-controller/{controller_id}/lock.json"


def this_process(commit: str | None) -> Holder:
    """Who holds the lease, for people reading "another apply holds the lock" (never used
    to judge whether the holder is alive)."""
    return Holder(socket.gethostname(), os.getpid(), commit or "")


class Lease:
    """`with Lease(...):` holds the lock for the block; raises LockHeld if someone else does.

    `before_write` is the applier's write gate. It refuses once the last renewal known to
    have landed is older than the lease time less a margin, or once a renewal found another
    holder. The margin (a third of the lease time) is how far apart the clocks of two hosts
    may be before a takeover by expiry could overlap this holder's last write.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        controller_id: str,
        holder: Holder,
        *,
        seconds: float | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = lock_key(controller_id)
        self.holder = holder
        self.seconds = min(LEASE_SECONDS if seconds is None else seconds, MAX_LEASE_SECONDS)
        self.margin = self.seconds / 3
        self.nonce = uuid.uuid4().hex
        self._acquired = _now()
        self._etag = ""
        self._valid_until = 0.0
        """time.monotonic() at which the last renewal known to have landed runs out."""
        self._lost = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._unreadable = ""
        """Why the last lease read could not be used as a lease (empty when it could)."""
        self.notes: tuple[str, ...] = ()
        """What taking the lease found worth reporting (an unreadable lease taken over)."""

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            ours, current, etag = self._claim(IfNoneMatch="*")
            if not ours:
                if current is not None and current.expires > _now():
                    raise LockHeld(_held(current))
                unreadable = self._unreadable
                # Absent again (released meanwhile), expired or unreadable: take it over,
                # conditionally, so that two takers cannot both win.
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                ours, current, _ = self._claim(**condition)
                if not ours:
                    raise LockHeld(_held(current) if current else "lock changed hands")
                if unreadable:
                    self.notes = (
                        f"the apply lease s3://{self.bucket}/{self.key} was unreadable "
                        f"({unreadable}) and was taken over",
                    )
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            raise LockError(f"cannot take the lock s3://{self.bucket}/{self.key}: {exc}") from exc
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True)
        self._renewer.start()

    def before_write(self, what: str) -> None:
        """Return only while this process can prove it holds the lease; else LeaseLost."""
        if self._lost:
            raise LeaseLost(f"{self._lost}; {what} was not written", self._lost)
        left = self._valid_until - time.monotonic()
        if left < self.margin:
            why = (
                f"the apply lease s3://{self.bucket}/{self.key} has not been renewed for "
                f"{self.seconds - left:.0f} s and another apply may take it over soon"
            )
            raise LeaseLost(f"{why}; {what} was not written", why)

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
        except (ClientError, BotoCoreError, ResponseParserError):
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
        while not self._stop.wait(self.seconds / 4):
            try:
                ours, current, _ = self._claim(IfMatch=self._etag)
            except (ClientError, BotoCoreError, ResponseParserError):
                continue  # not renewed: the gate closes by itself if this goes on
            if not ours:
                now_held = f"{current.holder} holds it now" if current else "it was deleted"
                self._lost = f"the apply lease s3://{self.bucket}/{self.key} was lost: {now_held}"
                return

    def _claim(self, **condition: str) -> tuple[bool, LeaseRecord | None, str]:
        """Write our record under `condition`, then read back whose lease is stored.

        Only a record read back exactly as sent extends the lease: when our nonce is there
        but with an older expiry, this write did not land (an earlier one of ours did), and
        the ETag read back is the one to renew next.
        """
        expires = _now() + timedelta(seconds=self.seconds)
        record = LeaseRecord(self.holder, self._acquired, expires, self.nonce)
        sent = time.monotonic()
        self._write(record, condition)
        current, etag = self._read()
        if current is None or current.nonce != self.nonce:
            return False, current, etag
        self._etag = etag
        if current.expires == record.expires:
            self._valid_until = sent + self.seconds
        return True, current, etag

    def _write(self, record: LeaseRecord, condition: dict[str, str]) -> bool:
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
        etag = str(response.get("ETag", ""))
        self._unreadable = ""
        try:
            record = LeaseRecord.from_json(body)
        except (ValueError, KeyError, TypeError) as exc:
            # Unreadable lease: treat it as expired so a broken object cannot wedge applies.
            self._unreadable = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return None, etag
        written = response.get("LastModified")
        if isinstance(written, datetime) and record.expires - written > timedelta(
            seconds=MAX_LEASE_SECONDS + self.margin
        ):
            until = record.expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            self._unreadable = (
                f"it expires {until}, more than the maximum lease lifetime of "
                f"{MAX_LEASE_SECONDS:.0f} s after it was written"
            )
            return None, etag
        return record, etag


def _held(record: LeaseRecord) -> str:
    until = record.expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"another apply holds the lock: {record.holder} until {until}"


def _now() -> datetime:
    return datetime.now(UTC)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
