"""The deployment ledger: what was applied, when, by whom, and how it went.

Flux records its inventory on the cluster; we record ours in the assets bucket, one JSON object
per apply, so `history` works from any machine and CI can tell a stale commit from a new one.
Only stack names, actions, outcomes, messages, commit ids and the actor are written: no
parameter values, so nothing a config might hold (an account id in an image URI, say) leaks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from controller.core.plan import Plan
from controller.core.results import ActionResult, ApplyResult

LAST_APPLIED = "last-applied.json"
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
        )


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

    def record(self, deployment: Deployment, *, whole: bool = True) -> str:
        """Write the record, and move the last-applied pointer when the apply succeeded.

        A partial apply (`--target`) is recorded but moves no pointer: its commit is not
        applied as a whole, so `watch` must still apply it.
        """
        key = self.prefix + deployment.key_name
        self._put(key, deployment.to_json())
        if deployment.ok and deployment.commit and whole:
            pointer = {"commit": deployment.commit, "time": deployment.to_json()["time"]}
            self._put(self.prefix + LAST_APPLIED, {**pointer, "record": key})
        return key

    def last_applied(self) -> str | None:
        """The last commit applied without failures, or None before the first one."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + LAST_APPLIED)["Body"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, "read") from exc
        commit = json.loads(body.read()).get("commit")
        return str(commit) if commit else None

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
        return [k for k in keys if k.endswith(".json") and not k.endswith("/" + LAST_APPLIED)]

    def _put(self, key: str, payload: Mapping[str, Any]) -> None:
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(payload, indent=2).encode(),
                ContentType="application/json",
            )
        except ClientError as exc:
            raise self._error(exc, "write") from exc

    def _error(self, exc: ClientError, verb: str) -> LedgerError:
        error = exc.response.get("Error", {})
        return LedgerError(
            f"cannot {verb} the deployment ledger in s3://{self.bucket}/{self.prefix}: "
            f"{error.get('Code', 'Error')}: {error.get('Message', exc)} "
            "(the ledger lives in settings.assets_bucket)"
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
