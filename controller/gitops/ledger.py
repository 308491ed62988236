"""The deployment ledger: what was applied, when, by whom, and how it went.

Flux records its inventory on the cluster; we record ours in the assets bucket, one JSON object
per apply, so `history` works from any machine and CI can tell a stale commit from a new one.
Only stack names, actions, outcomes, messages, commit ids, the actor and the model each stack
runs by name and version are written: no parameter values, so nothing a config might hold (an
account id in an image URI or a package ARN, say) leaks.

Three kinds of object live under the prefix, all written while the apply lease is held:
- one record per apply, `<UTC stamp>-<commit12>.json`;
- `last-applied.json`, the pointer: the newest commit whose apply wrote anything (successful
  or not) or succeeded; the stale-commit guard compares every later apply with it;
- `intent.json`, written before an apply's first write and removed once its record is
  written: one found by the next apply is an apply that was killed (or lost its lease)
  mid-way, which that apply records as interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from controller.core import provenance
from controller.core.plan import Plan
from controller.core.redact import redact
from controller.core.render import RenderedStack
from controller.core.results import ActionResult, ApplyResult

LAST_APPLIED = "last-applied.json"
INTENT = "intent.json"
STAMP = "%Y%m%dT%H%M%S.%fZ"
"""Sorts as text in time order, so S3's key order is the ledger's order."""


class LedgerError(Exception):
    """The ledger cannot be read or written; the message says which bucket and why."""


@dataclass(frozen=True)
class StackRecord:
    stack_name: str
    pipeline_type: str
    action: str
    reason: str
    outcome: str
    message: str
    model: str = ""
    """The model the stack runs as applied (`provenance`); empty in older records."""


def _model(desired: RenderedStack | None) -> str:
    if desired is None:
        return ""
    return provenance.from_parameters(dict(desired.parameters), locations=False)


@dataclass(frozen=True)
class Deployment:
    """One apply, as the ledger and the notification describe it."""

    commit: str | None
    time: datetime
    actor: str
    source: str
    ok: bool
    refusal: str
    stacks: tuple[StackRecord, ...]
    interrupted: bool = False
    """The apply never finished (killed, or it lost its lease); recorded by the next one."""

    @classmethod
    def of(
        cls, plan: Plan, result: ApplyResult, *, actor: str, source: str, now: datetime
    ) -> Deployment:
        outcomes: dict[str, ActionResult] = {r.stack_name: r for r in result.results}
        stacks = tuple(
            StackRecord(
                a.stack_name,
                a.pipeline_type,
                a.action.value,
                a.reason,
                outcomes[a.stack_name].outcome.value if a.stack_name in outcomes else "not run",
                outcomes[a.stack_name].message if a.stack_name in outcomes else "",
                _model(a.desired),
            )
            for a in plan.actions
        )
        return cls(result.revision, now, actor, source, result.ok, result.refusal, stacks)

    @property
    def changed(self) -> tuple[StackRecord, ...]:
        return tuple(s for s in self.stacks if s.outcome not in ("unchanged", "waiting"))

    @property
    def failed(self) -> tuple[StackRecord, ...]:
        return tuple(s for s in self.stacks if s.outcome in ("failed", "skipped", "blocked"))

    @property
    def key_name(self) -> str:
        return f"{self.time.strftime(STAMP)}-{(self.commit or 'no-commit')[:12]}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "source": self.source,
            "ok": self.ok,
            "refusal": self.refusal or None,
            "interrupted": self.interrupted,
            "stacks": [vars(s) for s in self.stacks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(
            data.get("commit"),
            datetime.fromisoformat(str(data["time"]).replace("Z", "+00:00")),
            str(data.get("actor", "")),
            str(data.get("source", "")),
            bool(data.get("ok")),
            str(data.get("refusal") or ""),
            tuple(StackRecord(**s) for s in data.get("stacks", ())),
            bool(data.get("interrupted", False)),
        )


@dataclass(frozen=True)
class Pointer:
    """`last-applied.json`: the commit the stale-commit guard compares every apply with."""

    commit: str
    record: str
    ok: bool
    """Whether that apply succeeded; a failed one is retried by `watch`, never skipped."""


@dataclass(frozen=True)
class Intent:
    """An apply that is writing now, or was killed while it did."""

    deployment: Deployment
    """What it was about to do: every planned write, with the outcome "interrupted"."""
    record: str
    """The key its record gets when it finishes."""
    moves_pointer: bool = True
    """False for a targeted apply of a commit the deployment branch does not hold: its
    record, interrupted or not, never moves the pointer (see `Ledger.record`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "deployment": self.deployment.to_json(),
            "moves_pointer": self.moves_pointer,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Intent:
        return cls(
            Deployment.from_json(data["deployment"]),
            str(data["record"]),
            bool(data.get("moves_pointer", True)),
        )

    @classmethod
    def of(cls, plan: Plan, *, actor: str, source: str, now: datetime, prefix: str) -> Intent:
        stacks = tuple(
            StackRecord(
                a.stack_name,
                a.pipeline_type,
                a.action.value,
                a.reason,
                "interrupted",
                "the apply stopped before reporting this; the next plan re-reads the stack",
            )
            for a in plan.changes
        )
        deployment = Deployment(plan.revision, now, actor, source, False, "", stacks, True)
        return cls(deployment, prefix + deployment.key_name)


def actor(environ: Mapping[str, str], committer: str = "") -> str:
    """Who applied: the CodeBuild initiator, else the local user, else the git committer."""
    return environ.get("CODEBUILD_INITIATOR") or environ.get("USER") or committer or "unknown"


def now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The ledger under `mlops-controller/<controller_id>/ledger/` in the assets bucket."""

    def __init__(self, s3: Any, bucket: str, controller_id: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = f"mlops-controller/{controller_id}/ledger/"

    def record(
        self,
        deployment: Deployment,
        *,
        key: str = "",
        wrote: bool = False,
        whole: bool = True,
        moves_pointer: bool = True,
    ) -> str:
        """Write the record and move the pointer to its commit when the apply wrote
        anything (`wrote`, even if it then failed) or succeeded; never for a refusal.

        A failed apply that wrote moves it too: a late build of an older commit must not
        undo what it wrote. A partial apply (`--target`) is not the whole commit: its pointer
        says not ok, so `watch` applies the commit again. A partial apply of a commit the
        deployment branch does not hold (`moves_pointer` False: an unpushed commit) does not
        move it at all: CI's clone could never place that commit, and would refuse every later
        commit of the branch, which must stay free to correct what it deployed. Call it while
        holding the lease.
        """
        key = key or self.prefix + deployment.key_name
        self._put(key, deployment.to_json())
        done = deployment.ok and whole
        if not moves_pointer:
            return key
        if deployment.commit and not deployment.refusal and (wrote or done):
            pointer = {"commit": deployment.commit, "time": deployment.to_json()["time"]}
            self._put(self.prefix + LAST_APPLIED, {**pointer, "record": key, "ok": done})
        return key

    def pointer(self) -> Pointer | None:
        """The last applied commit, or None before the first one."""
        data = self._get(self.prefix + LAST_APPLIED, "pointer")
        if data is None:
            return None
        try:
            return Pointer(
                str(data["commit"]), str(data.get("record", "")), bool(data.get("ok", True))
            )
        except (KeyError, TypeError) as exc:
            raise self._corrupt(self.prefix + LAST_APPLIED, "pointer", exc) from exc

    def last_applied(self) -> str | None:
        """The newest commit whose apply wrote anything or succeeded (see `record`)."""
        pointer = self.pointer()
        return pointer.commit if pointer else None

    def begin(self, intent: Intent) -> None:
        """Say, before the first write, what this apply is about to do."""
        self._put(self.prefix + INTENT, intent.to_json())

    def finish(self) -> None:
        """The apply's record is written: its intent is no longer needed."""
        self._delete(self.prefix + INTENT)

    def pending(self) -> Intent | None:
        """The intent of an apply that has not finished, if any."""
        data = self._get(self.prefix + INTENT, "intent")
        if data is None:
            return None
        try:
            return Intent.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise self._corrupt(self.prefix + INTENT, "intent", exc) from exc

    def settle_interrupted(self) -> Deployment | None:
        """Record an apply that was killed mid-way (its intent is here, its record is not),
        moving the pointer to its commit since it may have written; call under the lease."""
        intent = self.pending()
        if intent is None:
            return None
        interrupted = None
        if not self._exists(intent.record):
            interrupted = intent.deployment
            self.record(
                interrupted, key=intent.record, wrote=True, moves_pointer=intent.moves_pointer
            )
        self.finish()
        return interrupted

    def history(self, limit: int | None = None) -> tuple[Deployment, ...]:
        """Records newest first."""
        keys = sorted(self._keys(), reverse=True)[:limit]
        records = []
        for key in keys:
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                records.append(Deployment.from_json(json.loads(body)))
            except ClientError as exc:
                raise self._error(exc, "read") from exc
            except (ValueError, KeyError, TypeError) as exc:
                raise LedgerError(f"s3://{self.bucket}/{key}: not a ledger record ({exc})") from exc
        return tuple(records)

    def _keys(self) -> list[str]:
        keys: list[str] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                keys += [o["Key"] for o in page.get("Contents", ())]
        except ClientError as exc:
            raise self._error(exc, "list") from exc
        return [
            k
            for k in keys
            if k.endswith(".json") and not k.endswith(("/" + LAST_APPLIED, "/" + INTENT))
        ]

    def _put(self, key: str, payload: Mapping[str, Any]) -> None:
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=redact(json.dumps(payload, indent=2)).encode(),
                ContentType="application/json",
            )
        except ClientError as exc:
            raise self._error(exc, "write") from exc

    def _get(self, key: str, what: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, "read") from exc
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise self._corrupt(key, what, exc) from exc
        if not isinstance(data, dict):
            raise self._corrupt(key, what, TypeError("not a JSON object"))
        return data

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error(exc, "read") from exc
        return True

    def _delete(self, key: str) -> None:
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise self._error(exc, "write") from exc

    def _corrupt(self, key: str, what: str, exc: Exception) -> LedgerError:
        """Fail closed with the way out: the guards that read it cannot work without it."""
        return LedgerError(
            f"s3://{self.bucket}/{key} is not a valid ledger {what} ({exc}); nothing was "
            "applied: restore it, or delete it after checking `mlops-controller history`"
        )

    def _error(self, exc: ClientError, verb: str) -> LedgerError:
        error = exc.response.get("Error", {})
        return LedgerError(
            f"cannot {verb} the deployment ledger in s3://{self.bucket}/{self.prefix}: "
            f"{error.get('Code', 'Error')}: {error.get('Message', exc)} "
            "(the ledger lives in settings.assets_bucket)"
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
