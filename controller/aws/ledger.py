"""The deployment ledger: what was applied, when, by whom, and how it went.

Flux records its inventory on the cluster; we record ours in the assets bucket, one JSON object
per apply, so `history` works from any machine and CI can tell a stale commit from a new one.
Only stack names, actions, outcomes, messages, commit ids, the actor and the model each stack
runs by name and version are written (`core.records`): no parameter values, so nothing a
config might hold (an account id in an image URI or a package ARN, say) leaks.

Three kinds of object live under the prefix, all written while the apply lease is held:
- one record per apply, `<UTC stamp>-<commit12>.json`;
- `last-applied.json`, the pointer: the newest commit whose apply wrote anything (successful
  or not) or succeeded; the stale-commit guard compares every later apply with it;
- `intent.json`, written before an apply's first write and removed once its record is
  written: one found by the next apply is an apply that was killed (or lost its lease)
  mid-way, which that apply records as interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.aws.session import Aws
from controller.aws.store import Failure, JsonStore
from controller.core.errors import RecordError
from controller.core.gates import Approval, Promotion
from controller.core.records import Deployment, Intent, Pointer

LAST_APPLIED = "last-applied.json"
INTENT = "intent.json"


class LedgerError(RecordError):
    """The ledger cannot be read or written; the message says which bucket and why."""


def actor(environ: Mapping[str, str], committer: str = "") -> str:
    """Who applied: the CodeBuild initiator, else the local user, else the git committer."""
    return environ.get("CODEBUILD_INITIATOR") or environ.get("USER") or committer or "unknown"


def now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The ledger under `mlops-controller/<controller_id>/ledger/` in the assets bucket."""

    @classmethod
    def of(cls, aws: Aws, bucket: str, controller_id: str) -> Ledger:
        return cls(aws.client("s3"), bucket, controller_id)

    def __init__(self, s3: Any, bucket: str, controller_id: str) -> None:
        self.store = JsonStore(s3, bucket, self._error)
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
                records.append(Deployment.from_json(self.store.read_json(key)))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise LedgerError(f"s3://{self.bucket}/{key}: not a ledger record ({exc})") from exc
        return tuple(records)

    def _keys(self) -> list[str]:
        return [
            k
            for k in self.store.keys(self.prefix)
            if k.endswith(".json") and not k.endswith(("/" + LAST_APPLIED, "/" + INTENT))
        ]

    def _put(self, key: str, payload: Mapping[str, Any]) -> None:
        self.store.put(key, payload, redacted=True)

    def _get(self, key: str, what: str) -> dict[str, Any] | None:
        try:
            data = self.store.read_json(key)
        except ValueError as exc:
            raise self._corrupt(key, what, exc) from exc
        if data is None:
            return None
        if not isinstance(data, dict):
            raise self._corrupt(key, what, TypeError("not a JSON object"))
        return data

    def _exists(self, key: str) -> bool:
        return self.store.exists(key)

    def _delete(self, key: str) -> None:
        self.store.delete(key)

    def _corrupt(self, key: str, what: str, exc: Exception) -> LedgerError:
        """Fail closed with the way out: the guards that read it cannot work without it."""
        return LedgerError(
            f"s3://{self.bucket}/{key} is not a valid ledger {what} ({exc}); nothing was "
            "applied: restore it, or delete it after checking `mlops-controller history`"
        )

    def _error(self, failure: Failure) -> LedgerError:
        return LedgerError(
            f"cannot {failure.verb} the deployment ledger in s3://{self.bucket}/{self.prefix}: "
            f"{failure.code}: {failure.message} (the ledger lives in settings.assets_bucket)"
        )


@dataclass(frozen=True)
class LedgerIdentity:
    bucket: str
    controller_id: str
    region: str | None
    stage: str | None = None
    """A stage's own ledger; None: the orchestrator's step (the controller's ledger)."""

    @property
    def label(self) -> str:
        return f"{self.controller_id} (stage {self.stage})" if self.stage else self.controller_id


@dataclass(frozen=True)
class ChainHistory:
    """A step's applies (the orchestrator's, or `--stage`'s), an apply left unfinished, and,
    with stages, the promotions and approvals."""

    where: LedgerIdentity
    applies: tuple[Deployment, ...]
    unfinished: Deployment | None
    promotions: tuple[Promotion, ...] = ()
    approvals: tuple[Approval, ...] = ()
    several: bool = False
