"""Promotion as data: what reaching a stage means, and when a commit may go on.

Like Kargo's freight moving through stages, a commit moves through the orchestrator's own
step and then each stage in order. Every attempt is a `Promotion` record (stage, commit,
outcome, who, when) and every manual decision an `Approval` record; the gate of a stage is a
pure function of those records, so it can be listed, audited and tested without a network.

The rules:
- a commit reaches a stage only after the stage before it applied that same commit completely;
- a stage with `"approval": "manual"` waits for an approval of that exact commit for it (an
  approval of an older commit does not carry over);
- a rejection of that commit for that stage, or a failed stage, stops the promotion there.

The chain itself is `controller.core.chain`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from controller.core.config.model import Stage
from controller.core.plan import Action, Plan
from controller.core.results import ApplyResult


class PromotionOutcome(StrEnum):
    """What one attempt to bring a commit to a stage did."""

    APPLIED = "applied"
    """Every pipeline is at this commit's spec: the next stage may take the commit."""
    INCOMPLETE = "incomplete"
    """Applied without failure, but a stack is still in progress; a later run finishes it."""
    FAILED = "failed"
    REFUSED = "refused"
    """A safety guard (delete guards, the lease, a stale plan) refused the plan."""
    UNREACHABLE = "unreachable"
    """The stage's role could not be assumed."""


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Promotion:
    stage: str
    commit: str
    outcome: PromotionOutcome
    time: datetime
    actor: str = ""
    message: str = ""


@dataclass(frozen=True)
class Approval:
    stage: str
    commit: str
    decision: Decision
    time: datetime
    user_id: str
    """The approver's AWS user id (sts:GetCallerIdentity); the record's key holds it."""
    arn: str = ""
    note: str = ""

    @property
    def who(self) -> str:
        return self.arn or self.user_id


class GateState(StrEnum):
    OPEN = "open"
    WAITING = "waiting"
    """For an earlier stage or for an approval: a later run continues."""
    REJECTED = "rejected"


@dataclass(frozen=True)
class Gate:
    state: GateState
    reason: str

    @property
    def open(self) -> bool:
        return self.state is GateState.OPEN


def gate(
    stage: Stage | None,
    commit: str,
    previous: str | None,
    previous_applied: bool,
    decisions: Sequence[Approval],
) -> Gate:
    """May `commit` go to `stage` (None: the orchestrator's own step, always first)?

    `previous` names the step before it and `previous_applied` says whether that step applied
    this commit completely; `decisions` are the approvals recorded for this stage and commit.
    """
    short = commit[:12]
    if previous is not None and not previous_applied:
        return Gate(GateState.WAITING, f"waits until {previous} has applied {short} completely")
    if stage is None or not stage.manual:
        return Gate(GateState.OPEN, "automatic")
    mine = [d for d in decisions if d.stage == stage.name and d.commit == commit]
    rejected = [d for d in mine if d.decision is Decision.REJECTED]
    if rejected:
        first = min(rejected, key=lambda d: d.time)
        note = f" ({first.note})" if first.note else ""
        return Gate(
            GateState.REJECTED,
            f"{short} was rejected for {stage.name} by {first.who} at {_when(first.time)}{note}; "
            "a rejection is final: push a new commit",
        )
    approved = [d for d in mine if d.decision is Decision.APPROVED]
    if approved:
        first = min(approved, key=lambda d: d.time)
        return Gate(GateState.OPEN, f"approved by {first.who} at {_when(first.time)}")
    return Gate(
        GateState.WAITING,
        f"waits for approval: mlops-controller approve --stage {stage.name} --commit {commit}",
    )


def settled(plan: Plan) -> bool:
    """Nothing is left to do for this commit: no change, nothing blocked or refused, and
    nothing waits except run-once jobs (monitor baselines) of stacks already at this spec."""
    if plan.refusal:
        return False
    for action in plan.actions:
        if action.action is Action.UNCHANGED:
            continue
        if action.action is not Action.WAIT:
            return False
        desired, deployed = action.desired, action.deployed
        if (
            desired is None
            or deployed is None
            or deployed.status.endswith("_IN_PROGRESS")
            or deployed.spec_hash != desired.spec_hash
        ):
            return False
    return True


def outcome(result: ApplyResult, verified: Plan | None) -> PromotionOutcome:
    """An apply's outcome for promotion; `verified` is a plan made after it (None when the
    plan before it was settled already, so nothing was written)."""
    if result.refusal:
        return PromotionOutcome.REFUSED
    if not result.ok:
        return PromotionOutcome.FAILED
    if verified is not None and not settled(verified):
        return PromotionOutcome.INCOMPLETE
    return PromotionOutcome.APPLIED


def _when(time: datetime) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC")
