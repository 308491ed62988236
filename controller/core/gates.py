"""Promotion as data: what reaching a stage means, and when a commit may go on.

Like Kargo's freight moving through stages, a commit moves through the orchestrator's own
step and then each stage in order. Every attempt is a `Promotion` record (stage, commit,
outcome, who, when) and every manual decision an `Approval` record; the gate of a stage is a
pure function of those records, so it can be listed, audited and tested without a network.

The rules:
- a commit reaches a stage only after the stage before it applied that same commit completely;
- a stage with `"approval": "manual"` waits for an approval of that exact commit for it (an
  approval of an older commit does not carry over);
- a rejection of that commit for that stage, or a failed stage, stops the promotion there;
- a stage with `promote_after` passes a commit on only once it has run there, clean, for the
  soak (`verify`): its alarms OK and no monitoring violations. Evidence comes from AWS; the
  verdict, once it holds, is recorded (`PromotionOutcome.VERIFIED`) and is not asked again.

The chain itself is `controller.core.chain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from controller.core.config.model import PromoteAfter, Stage
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
    VERIFIED = "verified"
    """The stage's `promote_after` held for this commit: the next stage may take it."""


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


# Verification between stages (`promote_after`)


@dataclass(frozen=True)
class AlarmState:
    """One alarm as CloudWatch describes it now."""

    name: str
    state: str
    """OK, ALARM or INSUFFICIENT_DATA."""
    changed: datetime
    """When it last changed state (StateUpdatedTimestamp)."""


@dataclass(frozen=True)
class Violation:
    """A monitoring execution of the stage that completed with violations."""

    schedule: str
    time: datetime


@dataclass(frozen=True)
class Evidence:
    """What AWS says about a stage, for `verify`."""

    alarms: tuple[AlarmState, ...] = ()
    violations: tuple[Violation, ...] = ()


def verify(
    rule: PromoteAfter, stage: str, commit: str, arrived: datetime, now: datetime, seen: Evidence
) -> Gate:
    """Has `commit` proven itself in `stage` (which applied it completely at `arrived`)?

    The soak is a stretch of `soak_minutes` in which the stage stayed clean: every alarm OK
    and unchanged, no monitoring violation. An alarm that changed state or a violation after
    the commit arrived restarts the soak from that moment, so what holds is always "clean for
    the whole soak", read from one DescribeAlarms and one ListMonitoringExecutions and no
    history. An alarm that does not exist fails closed: nothing could show it was OK.
    """
    short = commit[:12]
    found = {a.name: a for a in seen.alarms}
    missing = [name for name in rule.alarms if name not in found]
    if missing:
        return Gate(
            GateState.WAITING,
            f"{short} waits in {stage}: alarm {', '.join(missing)} does not exist there",
        )
    firing = [found[name] for name in rule.alarms if found[name].state != "OK"]
    if firing:
        listed = ", ".join(f"{a.name} is {a.state}" for a in firing)
        return Gate(GateState.WAITING, f"{short} waits in {stage}: {listed}")
    start, why = arrived, ""
    for name in rule.alarms:
        if found[name].changed > start:
            start, why = found[name].changed, f" (restarted: alarm {name} changed state)"
    if rule.monitors_clean:
        for violation in seen.violations:
            if violation.time > start:
                start = violation.time
                why = f" (restarted: monitoring schedule {violation.schedule} found violations)"
    due = start + timedelta(minutes=rule.soak_minutes)
    if now < due:
        left = math.ceil((due - now).total_seconds() / 60)
        return Gate(
            GateState.WAITING,
            f"{short} soaks in {stage} until {_when(due)}, {left} min left{why}",
        )
    checks = [f"soaked {rule.soak_minutes} min in {stage}"]
    if rule.alarms:
        checks.append(f"alarms {', '.join(rule.alarms)} OK")
    if rule.monitors_clean:
        checks.append("monitors clean")
    return Gate(GateState.OPEN, ", ".join(checks))


def verified_before(stage: Stage | None, records: Sequence[Promotion], commit: str) -> Gate | None:
    """The recorded verdict on `commit` in `stage`: open when it was verified, None when it
    must be evaluated (or the stage has no `promote_after`: then None too, nothing to do)."""
    if stage is None or stage.promote_after is None:
        return None
    done = [r for r in records if r.commit == commit and r.outcome is PromotionOutcome.VERIFIED]
    if done:
        first = min(done, key=lambda r: r.time)
        return Gate(GateState.OPEN, f"verified in {stage.name} at {_when(first.time)}")
    return None


def arrival(records: Sequence[Promotion], commit: str) -> datetime | None:
    """When the stage first applied `commit` completely: the soak starts there."""
    applied = [
        r.time for r in records if r.commit == commit and r.outcome is PromotionOutcome.APPLIED
    ]
    return min(applied, default=None)


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
