"""One reconcile: render what the config wants, discover what AWS has, plan, pre-flight.

The only module that wires the pure core to the world, in the one-way order
source -> config -> render -> discover -> plan -> pre-flight; applying is the caller's choice.
"""

from __future__ import annotations

import os
from dataclasses import replace

from controller.aws import preflight
from controller.aws.apply import Applier, ApplyOptions, WriteGate, moved_since_plan
from controller.aws.discover import discover
from controller.aws.lock import Lease, LockError, LockHeld, this_process
from controller.aws.session import Aws
from controller.core.config.model import Config
from controller.core.events import EventSink
from controller.core.plan import Guards, Plan, PlanInput, make_plan, with_preflight
from controller.core.progress import ProgressSink
from controller.core.render import render_all
from controller.core.results import ApplyResult, ResultSink
from controller.gitops import notify
from controller.gitops.ledger import Deployment, Ledger
from controller.gitops.ledger import actor as ledger_actor
from controller.gitops.ledger import now as ledger_now


def plan_for(config: Config, aws: Aws, guards: Guards) -> Plan:
    desired = render_all(config)
    deployed = discover(aws.client("cloudformation"))
    plan = make_plan(
        PlanInput(desired, deployed, config.settings.controller_id, config.revision, guards)
    )
    return with_preflight(plan, preflight.check(plan, aws.client("s3")))


def guards_for(config: Config, allow_delete_all: bool) -> Guards:
    return Guards(allow_delete_all=allow_delete_all, max_deletes=config.settings.max_deletes)


def apply_plan(
    config: Config,
    plan: Plan,
    aws: Aws,
    options: ApplyOptions,
    on_event: EventSink,
    on_result: ResultSink,
    *,
    ledger: Ledger | None = None,
    actor: str | None = None,
    before_write: WriteGate | None = None,
    partial: bool = False,
) -> ApplyResult:
    """Apply a plan computed by `plan_for`; the one path every apply takes (CLI, CI, watch).

    Recording (to `ledger`, by default the config's own) and notifying (when settings name a
    topic) happen here and only here, so no entry point can apply without leaving a trace.
    `before_write` is the applier's write gate (the CLI's Ctrl-C stops new writes with it);
    a `partial` plan (`--target`) is recorded without moving the last-applied commit.
    """
    result = _apply_under_lease(config, plan, aws, options, on_event, on_result, before_write)
    deployment = Deployment.of(
        plan,
        result,
        actor=actor if actor is not None else ledger_actor(os.environ),
        source=config.source,
        now=ledger_now(),
    )
    (ledger or ledger_for(config, aws)).record(deployment, whole=not partial)
    settings = config.settings
    notify.publish(
        aws.client("sns"), settings.notification_topic_arn, deployment, settings.controller_id
    )
    return result


def _apply_under_lease(
    config: Config,
    plan: Plan,
    aws: Aws,
    options: ApplyOptions,
    on_event: EventSink,
    on_result: ResultSink,
    before_write: WriteGate | None = None,
) -> ApplyResult:
    """Hold the controller's lease while applying: a second apply at the same time refuses,
    and a plan made stale by another apply before the lease was taken is refused too."""
    if plan.refusal:
        return ApplyResult(plan.revision, (), plan.refusal)
    settings = config.settings
    lease = Lease(
        aws.client("s3"),
        settings.assets_bucket,
        settings.controller_id,
        this_process(plan.revision),
    )
    try:
        lease.acquire()
    except (LockHeld, LockError) as exc:
        return ApplyResult(plan.revision, (), str(exc))
    try:
        moved = moved_since_plan(aws.client("cloudformation"), plan)
        if moved:
            return ApplyResult(plan.revision, (), moved)
        gate = {"before_write": before_write} if before_write is not None else {}
        return Applier(aws, options, on_event=on_event, on_result=on_result, **gate).apply(plan)
    finally:
        lease.release()


def ledger_for(config: Config, aws: Aws) -> Ledger:
    return Ledger(aws.client("s3"), config.settings.assets_bucket, config.settings.controller_id)


def options_for(
    config: Config,
    parallel: int | None = None,
    poll_seconds: float | None = None,
    *,
    wait_budget_seconds: float | None = None,
    on_progress: ProgressSink | None = None,
) -> ApplyOptions:
    """Apply options; `parallel` caps operations in flight (default: `MLOPS_PARALLEL`, 100)."""
    options = ApplyOptions(
        controller_id=config.settings.controller_id,
        assets_bucket=config.settings.assets_bucket,
        wait_budget_seconds=wait_budget_seconds,
        on_progress=on_progress,
    )
    if parallel is not None:
        options = replace(options, parallel=parallel)
    return options if poll_seconds is None else replace(options, poll_seconds=poll_seconds)
