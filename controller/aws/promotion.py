"""Promotion records and approvals, next to the ledger in the orchestrator's assets bucket.

    mlops-controller/<controller_id>/promotions/<stage>/<commit>/<stamp>-<outcome>.json
    mlops-controller/<controller_id>/approvals/<stage>/<commit>/<user id>/<stamp>-<decision>.json

(stamps are UTC, `20261125T101500.123456Z`, so keys sort in time order).

A key says everything a gate needs (stage, commit, time, outcome or decision, approver), so a
gate costs one List call and no reads; the bodies add the actor, the message and the
approver's note for `history` (an approver is shown by the user id of the key alone).
Records are only ever added, never changed: the bucket is the audit trail. The approver's AWS
user id is part of an approval's key, and the approver policy of blueprints/bootstrap.yaml lets
each person write only under their own id (`${aws:userid}`; a role session only under the name
of its source identity), so the key proves who approved; no role of the controller may write
approvals at all (the bucket policy refuses them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from controller.aws.ledger import Ledger
from controller.aws.session import Aws
from controller.aws.store import MISSING, Failure, JsonStore
from controller.core.config.model import Policy
from controller.core.errors import RecordError
from controller.core.gates import Approval, Decision, Promotion, PromotionOutcome
from controller.core.records import STAMP

PROMOTIONS = "promotions/"
POLICY = "policy.json"
APPROVALS = "approvals/"


class PromotionError(RecordError):
    """The records cannot be read or written; the message says where and why."""


def stage_ledger(aws: Aws, bucket: str, controller_id: str, stage: str) -> Ledger:
    """Each stage's own ledger, `mlops-controller/<controller_id>/stages/<stage>/ledger/`, so
    its applies and its last applied commit are its own. (The orchestrator's step keeps the
    controller's ledger.)"""
    return Ledger.of(aws, bucket, f"{controller_id}/stages/{stage}")


class Promotions:
    @classmethod
    def of(cls, aws: Aws, bucket: str, controller_id: str) -> Promotions:
        return cls(aws.client("s3"), bucket, controller_id)

    def __init__(self, s3: Any, bucket: str, controller_id: str) -> None:
        self.store = JsonStore(s3, bucket, self._error)
        self.bucket = bucket
        self.prefix = f"mlops-controller/{controller_id}/"

    # Writing

    def record(self, promotion: Promotion) -> str:
        key = (
            f"{self.prefix}{PROMOTIONS}{promotion.stage}/{promotion.commit}/"
            f"{promotion.time.strftime(STAMP)}-{promotion.outcome.value}.json"
        )
        self._put(key, promotion_json(promotion))
        return key

    def decide(self, approval: Approval) -> str:
        key = (
            f"{self.prefix}{APPROVALS}{approval.stage}/{approval.commit}/{approval.user_id}/"
            f"{approval.time.strftime(STAMP)}-{approval.decision.value}.json"
        )
        self._put(key, approval_json(approval))
        return key

    # Reading what gates need: keys only

    def outcomes(self, stage: str, commit: str) -> tuple[PromotionOutcome, ...]:
        """Outcomes of every attempt to bring `commit` to `stage`, oldest first."""
        prefix = f"{self.prefix}{PROMOTIONS}{stage}/{commit}/"
        return tuple(p.outcome for _, p in sorted(self._promotion_keys(prefix), key=_time))

    def attempts(self, stage: str, commit: str) -> tuple[Promotion, ...]:
        """Every record of `commit` at `stage` (keys only: outcome and time), oldest first."""
        prefix = f"{self.prefix}{PROMOTIONS}{stage}/{commit}/"
        return tuple(p for _, p in sorted(self._promotion_keys(prefix), key=_time))

    def reached(self, stage: str, commit: str) -> bool:
        """The newest attempt applied `commit` completely (a later failure closes the gate
        an earlier success opened)."""
        outcomes = [o for o in self.outcomes(stage, commit) if o is not PromotionOutcome.VERIFIED]
        return bool(outcomes) and outcomes[-1] is PromotionOutcome.APPLIED

    # The policy in force

    def policy(self) -> Policy | None:
        """The policy of the last commit the chain applied completely (or the one pinned by
        the first promotion); None before any."""
        key = self.prefix + POLICY
        try:
            # No bucket yet: nothing was ever promoted (status works before the bootstrap).
            data = self.store.read_json(key, missing=(*MISSING, "NoSuchBucket"))
        except ValueError as exc:
            raise PromotionError(f"s3://{self.bucket}/{key}: not a policy record ({exc})") from exc
        if data is None:
            return None
        if not isinstance(data, dict):
            raise PromotionError(f"s3://{self.bucket}/{key}: not a policy record")
        return Policy.from_json(data)

    def set_policy(self, policy: Policy) -> None:
        self._put(self.prefix + POLICY, policy.to_json())

    def decisions(self, stage: str, commit: str) -> tuple[Approval, ...]:
        """Every approval or rejection of `commit` for `stage`, with the approver's ARN."""
        prefix = f"{self.prefix}{APPROVALS}{stage}/{commit}/"
        found = sorted(self._approval_keys(prefix), key=_time)
        return tuple(self._with_body(key, a) for key, a in found)

    def newest_applied(self, stage: str) -> Promotion | None:
        """The latest commit `stage` applied completely: the one waiting at the next stage."""
        applied = [
            item
            for item in self._promotion_keys(f"{self.prefix}{PROMOTIONS}{stage}/")
            if item[1].outcome is PromotionOutcome.APPLIED
        ]
        newest = max(applied, key=_time, default=None)
        return self._promotion_body(*newest) if newest else None

    # Reading for `history`

    def history(
        self, stage: str | None = None, limit: int | None = None
    ) -> tuple[tuple[Promotion, ...], tuple[Approval, ...]]:
        """Promotions and approvals, newest first, with their bodies."""
        where = f"{stage}/" if stage else ""
        promotions = sorted(
            self._promotion_keys(f"{self.prefix}{PROMOTIONS}{where}"), key=_time, reverse=True
        )[:limit]
        approvals = sorted(
            self._approval_keys(f"{self.prefix}{APPROVALS}{where}"), key=_time, reverse=True
        )[:limit]
        return (
            tuple(self._promotion_body(key, p) for key, p in promotions),
            tuple(self._with_body(key, a) for key, a in approvals),
        )

    # Keys

    def _promotion_keys(self, prefix: str) -> Iterator[tuple[str, Promotion]]:
        for key in self._keys(prefix):
            parts = key.removeprefix(self.prefix + PROMOTIONS).split("/")
            time, value = _stamped(parts[-1]) if len(parts) == 3 else (None, "")
            if time is not None and value in _OUTCOMES:
                yield key, Promotion(parts[0], parts[1], PromotionOutcome(value), time)

    def _approval_keys(self, prefix: str) -> Iterator[tuple[str, Approval]]:
        """Keys of exactly <stage>/<commit>/<user id>/<file>: anything else is not a decision
        (the approver policy cannot stop extra path segments, so they are ignored)."""
        for key in self._keys(prefix):
            parts = key.removeprefix(self.prefix + APPROVALS).split("/")
            time, value = _stamped(parts[-1]) if len(parts) == 4 else (None, "")
            if time is not None and value in _DECISIONS:
                yield key, Approval(parts[0], parts[1], Decision(value), time, parts[2])

    def _keys(self, prefix: str) -> list[str]:
        return self.store.keys(prefix)

    # Bodies

    def _promotion_body(self, key: str, promotion: Promotion) -> Promotion:
        body = self._get(key)
        return Promotion(
            promotion.stage,
            promotion.commit,
            promotion.outcome,
            promotion.time,
            str(body.get("actor", "")),
            str(body.get("message", "")),
        )

    def _with_body(self, key: str, approval: Approval) -> Approval:
        """The note from the body; who, stage, commit, decision and time only ever from the
        key, which the approver could not have chosen freely. The body's ARN is never shown:
        its writer chose it, and a body under their own user id may name anyone."""
        body = self._get(key)
        return Approval(
            approval.stage,
            approval.commit,
            approval.decision,
            approval.time,
            approval.user_id,
            note=str(body.get("note", "")),
        )

    def _get(self, key: str) -> Mapping[str, Any]:
        try:
            loaded = self.store.read_json(key)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _put(self, key: str, payload: Mapping[str, Any]) -> None:
        self.store.put(key, payload)

    def _error(self, failure: Failure) -> PromotionError:
        return PromotionError(
            f"cannot {failure.verb} s3://{self.bucket}/{failure.key}: {failure.code}: "
            f"{failure.message} (promotion records live in settings.assets_bucket)"
        )


_OUTCOMES = frozenset(o.value for o in PromotionOutcome)
_DECISIONS = frozenset(d.value for d in Decision)


def _stamped(name: str) -> tuple[datetime | None, str]:
    """`<stamp>-<word>.json` as (time, word); no time when it is not one."""
    stamp, _, rest = name.partition("-")
    try:
        return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC), rest.removesuffix(".json")
    except ValueError:
        return None, ""


def _time(item: tuple[str, Promotion | Approval]) -> datetime:
    return item[1].time


def promotion_json(promotion: Promotion) -> dict[str, Any]:
    return {
        "stage": promotion.stage,
        "commit": promotion.commit,
        "outcome": promotion.outcome.value,
        "time": _iso(promotion.time),
        "actor": promotion.actor,
        "message": promotion.message,
    }


def approval_json(approval: Approval) -> dict[str, Any]:
    return {
        "stage": approval.stage,
        "commit": approval.commit,
        "decision": approval.decision.value,
        "time": _iso(approval.time),
        "user_id": approval.user_id,
        "arn": approval.arn,
        "note": approval.note,
    }


def _iso(time: datetime) -> str:
    return time.isoformat().replace("+00:00", "Z")
