"""`promote_after` between stages: a commit goes on to the next stage only once it has
proven itself in this one (`core.gates.verify`), judged from this stage's own account.

The rule is the stage's as the stage definitions in force say (like approvals); the evidence
is read from AWS (alarm states, monitoring executions); the verdict, once it holds, is a
promotion record (`verified`) of this stage, so later runs, `history` and audits see when and
why the commit went on, and AWS is not asked again. Anything that cannot be read keeps the
gate closed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from controller.aws import verification
from controller.aws.promotion import Promotions
from controller.aws.session import Aws
from controller.core import render
from controller.core.chain import Chain, Step
from controller.core.config.model import Config
from controller.core.errors import AwsError
from controller.core.gates import (
    Gate,
    GateState,
    Promotion,
    PromotionOutcome,
    arrival,
    verified_before,
    verify,
)


def now() -> datetime:
    """The clock the gate is judged by (tests replace it)."""
    return datetime.now(UTC)


def gate_after(
    chain: Chain,
    step: Step,
    commit: str,
    store: Promotions,
    session: Callable[[Step], Aws],
    actor: str,
) -> Gate | None:
    """The verification gate between `step`'s previous stage and `step`; None when that stage
    declares no `promote_after`, or has not applied `commit` yet (the approval gate says so)."""
    previous = next((s for s in chain.steps if s.name == step.previous), None)
    if previous is None or previous.stage is None or previous.stage.promote_after is None:
        return None
    records = store.attempts(previous.name, commit)
    done = verified_before(previous.stage, records, commit)
    if done is not None:
        return done
    arrived = arrival(records, commit)
    if arrived is None:
        return None
    rule = previous.stage.promote_after
    try:
        seen = verification.evidence(session(previous), rule, arrived, schedules(previous.config))
    except AwsError as exc:
        return Gate(
            GateState.WAITING,
            f"{commit[:12]} waits in {previous.name}: its alarms and monitors cannot be read "
            f"({exc})",
        )
    at = now()
    verdict = verify(rule, previous.name, commit, arrived, at, seen)
    if verdict.open:
        verified = PromotionOutcome.VERIFIED
        store.record(Promotion(previous.name, commit, verified, at, actor, verdict.reason))
    return verdict


def schedules(config: Config | None) -> frozenset[str]:
    """The monitoring schedules the stage's config deploys: only their findings count (none
    when the commit removes the stage)."""
    if config is None:
        return frozenset()
    return frozenset(
        dict(stack.parameters)["MonitoringScheduleName"]
        for stack in render.render_all(config)
        if stack.shape.monitor
    )
