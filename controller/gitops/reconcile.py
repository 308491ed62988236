"""One reconcile: render what the config wants, discover what AWS has, plan, pre-flight.

The only module that wires the pure core to the world, in the one-way order
source -> config -> render -> discover -> plan -> pre-flight; applying is the caller's choice.

Every safety rule of an apply is evaluated here, while the apply lease is held, with the
state read after taking it: an interrupted earlier apply is recorded, the stale-commit guard
compares the commit with the ledger's pointer, the plan is re-checked against the stacks it
writes, the intent is recorded before the first write, the lease is proved before every
write, and the deployment record is written before the lease is released.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import git

from controller.aws import drift, notify, preflight, templates
from controller.aws.apply import Applier, ApplyOptions, WriteGate, WriteRefused, moved_since_plan
from controller.aws.discover import deployed as deployed_stacks
from controller.aws.ledger import Ledger, LedgerError
from controller.aws.ledger import actor as ledger_actor
from controller.aws.ledger import now as ledger_now
from controller.aws.lock import Lease, LeaseLost, LockError, LockHeld, lease_of, this_process
from controller.aws.session import Aws
from controller.core.config.model import Config
from controller.core.events import EventSink, StackEvent
from controller.core.plan import (
    Action,
    Guards,
    Plan,
    PlanInput,
    make_plan,
    templates_to_read,
    with_preflight,
    with_resource_changes,
)
from controller.core.progress import ProgressSink
from controller.core.records import Deployment, Intent
from controller.core.redact import redact
from controller.core.render import render_all
from controller.core.results import ActionResult, ApplyResult, ResultSink
from controller.gitops import source


def plan_for(config: Config, aws: Aws, guards: Guards, *, detect_drift: bool = False) -> Plan:
    """The plan; with `detect_drift`, CloudFormation's drift detection runs first on the
    owned stacks the config keeps (bounded in calls: see controller.aws.drift).

    The listing's pages are round trips, rendering is CPU: the two overlap."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        listing = pool.submit(deployed_stacks, aws)
        desired = render_all(config)
        deployed = listing.result()
    controller_id = config.settings.controller_id
    wanted = {r.stack_name for r in desired}
    checked = [s for s in deployed if s.owned_by(controller_id) and s.name in wanted]
    found = drift.detect_in(aws, checked) if detect_drift else {}
    plan = make_plan(PlanInput(desired, deployed, controller_id, config.revision, guards, found))
    plan = with_resource_changes(plan, templates.read_in(aws, templates_to_read(plan)))
    plan = with_preflight(plan, preflight.check_in(aws, plan))
    # Reasons quote what AWS said about a stack, which may hold a URL with credentials.
    return replace(plan, actions=tuple(replace(a, reason=redact(a.reason)) for a in plan.actions))


def guards_for(config: Config, allow_delete_all: bool) -> Guards:
    return Guards(allow_delete_all=allow_delete_all, max_deletes=config.settings.max_deletes)


@dataclass(frozen=True)
class Stale:
    """Why a commit must not be applied over the ledger's last applied commit."""

    message: str
    superseded: bool
    """Older than the last applied commit (a late build: nothing to do, not a failure);
    False when the order could not be established (fail closed: an error)."""


def stale(ledger: Ledger, commit: str | None, repo: git.Repo | None) -> Stale | None:
    """The stale-commit guard: never apply a commit older than the last applied one.

    `apply_plan` evaluates it under the lease; `ci` and `watch` may also ask early, to skip
    planning a late build, but only the answer under the lease decides.
    """
    if not commit:
        return None  # a working-tree file: nothing to compare (see SECURITY.md)
    pointer = ledger.pointer()
    if pointer is None or pointer.commit == commit:
        return None
    if repo is None:
        return Stale(
            f"cannot tell whether commit {commit[:12]} is older than {pointer.commit[:12]}, "
            "the last applied commit: no git repository to compare them in. Nothing was "
            "applied: apply from a clone of the config repository",
            False,
        )
    try:
        older = source.is_superseded(repo, commit, pointer.commit)
    except source.AncestryUnknown as exc:
        return Stale(str(exc), False)
    if not older:
        return None
    return Stale(
        f"Nothing done: commit {commit[:12]} is an ancestor of {pointer.commit[:12]}, the last "
        "applied commit in the ledger. A late build never rolls a newer deployment back; to "
        "roll back, revert the change in git and push.",
        True,
    )


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
    repo: git.Repo | None = None,
    allow_older: bool = False,
) -> ApplyResult:
    """Apply a plan computed by `plan_for`; the one path every apply takes (CLI, CI, watch).

    Recording (to `ledger`, by default the config's own) and notifying (when settings name a
    topic) happen here and only here, so no entry point can apply without leaving a trace.
    `before_write` is an extra write gate, asked before the lease's own (the CLI's Ctrl-C
    stops new writes with it); a `partial` plan (`--target`) is recorded as not applying the
    commit as a whole. `repo` is the git repository `plan.revision` comes from, for the
    stale-commit guard; `allow_older` applies a commit older than the last applied one on
    purpose.
    """
    ledger = ledger or ledger_for(config, aws)
    if _already_applied(plan, ledger):
        # Nothing to write and this commit recorded already (the hourly run of an applied
        # commit, say): no lease to take and no record to add. Every action reports as
        # planned, without an AWS call.
        return Applier(aws, options, on_event=on_event, on_result=on_result).apply(plan)
    run = _RecordedApply(
        config,
        plan,
        aws,
        ledger,
        actor if actor is not None else ledger_actor(os.environ),
        ledger_now(),
        whole=not partial,
        asked_first=before_write,
        moves_pointer=not partial
        or source.published(repo, plan.revision, config.settings.deployment_branch),
    )
    result = _redacted(
        run.apply(
            options, _redacted_events(on_event), _redacted_results(on_result), repo, allow_older
        )
    )
    if run.recorded is not None:
        settings = config.settings
        notify.publish(aws, settings.notification_topic_arn, run.recorded, settings.controller_id)
    return result


def _already_applied(plan: Plan, ledger: Ledger) -> bool:
    """Every action is `unchanged`, the ledger's pointer names this commit as applied whole,
    and no earlier apply is left unfinished (that one is settled under the lease)."""
    if plan.refusal or not plan.revision:
        return False
    if any(a.action is not Action.UNCHANGED for a in plan.actions):
        return False
    pointer = ledger.pointer()
    if pointer is None or pointer.commit != plan.revision or not pointer.ok:
        return False
    return ledger.pending() is None


@dataclass
class _RecordedApply:
    """One apply: what it applies, where it records it, and the record once written."""

    config: Config
    plan: Plan
    aws: Aws
    ledger: Ledger
    actor: str
    started: datetime
    whole: bool = True
    """False for a targeted apply: it does not apply the commit as a whole."""
    asked_first: WriteGate | None = None
    """The caller's own write gate (Ctrl-C), asked before the lease's."""
    moves_pointer: bool = True
    """False for a targeted apply of a commit the deployment branch does not hold."""
    recorded: Deployment | None = None

    def record(self, result: ApplyResult, *, key: str = "", wrote: bool = False) -> None:
        deployment = Deployment.of(
            self.plan,
            _redacted(result),
            actor=self.actor,
            source=self.config.source,
            now=self.started,
        )
        self.ledger.record(
            deployment, key=key, wrote=wrote, whole=self.whole, moves_pointer=self.moves_pointer
        )
        self.recorded = deployment

    def _refused(self, result: ApplyResult) -> ApplyResult:
        """A refusal never moves the pointer, so its record needs no lease."""
        self.record(result)
        return result

    def apply(
        self,
        options: ApplyOptions,
        on_event: EventSink,
        on_result: ResultSink,
        repo: git.Repo | None,
        allow_older: bool,
    ) -> ApplyResult:
        """Hold the controller's lease for the whole apply, its ledger record included."""
        plan = self.plan
        if plan.refusal:
            return self._refused(ApplyResult(plan.revision, (), plan.refusal))
        settings = self.config.settings
        lease = lease_of(
            self.aws,
            settings.assets_bucket,
            settings.controller_id,
            this_process(plan.revision),
        )
        try:
            lease.acquire()
        except (LockHeld, LockError) as exc:
            return self._refused(ApplyResult(plan.revision, (), str(exc)))
        try:
            return self._apply_leased(lease, options, on_event, on_result, repo, allow_older)
        finally:
            lease.release()

    def _apply_leased(
        self,
        lease: Lease,
        options: ApplyOptions,
        on_event: EventSink,
        on_result: ResultSink,
        repo: git.Repo | None,
        allow_older: bool,
    ) -> ApplyResult:
        plan = self.plan
        notes = (*lease.notes, *_interrupted_note(self.ledger.settle_interrupted()))
        found = None if allow_older else stale(self.ledger, plan.revision, repo)
        if found is not None and found.superseded:
            return ApplyResult(plan.revision, (), found.message, notes=notes, superseded=True)
        if found is not None:
            return self._refused(ApplyResult(plan.revision, (), found.message, notes=notes))
        moved = moved_since_plan(self.aws, plan)
        if moved:
            return self._refused(ApplyResult(plan.revision, (), moved, notes=notes))
        intent = Intent.of(
            plan,
            actor=self.actor,
            source=self.config.source,
            now=self.started,
            prefix=self.ledger.prefix,
        )
        intent = replace(intent, moves_pointer=self.moves_pointer)
        gate = _WriteGate(lease, self.ledger, intent, self.asked_first)
        applier = Applier(
            self.aws, options, on_event=on_event, on_result=on_result, before_write=gate
        )
        result = replace(applier.apply(plan), notes=notes)
        try:
            lease.before_write("the deployment record")
        except LeaseLost as exc:
            after = (
                "the next apply records this one as interrupted"
                if gate.attempted
                else "nothing was written"
            )
            return replace(result, notes=(*result.notes, f"{exc}; {after}"))
        self.record(result, key=intent.record, wrote=gate.opened)
        if gate.attempted:
            self.ledger.finish()
        return result


class IntentNotRecorded(WriteRefused):
    """The intent could not be written to the ledger, so nothing is: every write leaves a
    trace or does not happen."""


class _WriteGate:
    """The applier's `before_write`: the intent is recorded before the first write, and the
    lease is proved before every one."""

    def __init__(
        self, lease: Lease, ledger: Ledger, intent: Intent, asked_first: WriteGate | None
    ) -> None:
        self.lease = lease
        self.ledger = ledger
        self.intent = intent
        self.asked_first = asked_first
        self.attempted = False
        self.opened = False
        """Some write passed the gate: this apply may have changed something."""
        self._lock = threading.Lock()

    def __call__(self, stack_name: str) -> None:
        if self.asked_first is not None:
            self.asked_first(stack_name)
        with self._lock:
            if not self.opened:
                self.lease.before_write(stack_name)
                self.attempted = True
                try:
                    self.ledger.begin(self.intent)
                except LedgerError as exc:
                    raise IntentNotRecorded(
                        f"{exc}; {stack_name} was not written", str(exc)
                    ) from exc
            self.lease.before_write(stack_name)
            self.opened = True


def _interrupted_note(interrupted: Deployment | None) -> tuple[str, ...]:
    if interrupted is None:
        return ()
    when = interrupted.time.strftime("%Y-%m-%d %H:%M:%S UTC")
    commit = (interrupted.commit or "a working-tree file")[:12]
    return (
        f"An earlier apply did not finish: {commit} by {interrupted.actor}, started {when}, "
        "was killed or lost its lease mid-way; it is now recorded in the ledger as interrupted.",
    )


def _redacted(result: ApplyResult) -> ApplyResult:
    """Results leave here for the console, the ledger, artifacts and notifications."""
    return replace(
        result,
        refusal=redact(result.refusal),
        notes=tuple(redact(n) for n in result.notes),
        results=tuple(replace(r, message=redact(r.message)) for r in result.results),
    )


def _redacted_results(sink: ResultSink) -> ResultSink:
    def redacted(result: ActionResult) -> None:
        sink(replace(result, message=redact(result.message)))

    return redacted


def _redacted_events(sink: EventSink) -> EventSink:
    def redacted(event: StackEvent) -> None:
        sink(replace(event, reason=redact(event.reason)))

    return redacted


def ledger_for(config: Config, aws: Aws) -> Ledger:
    return Ledger.of(aws, config.settings.assets_bucket, config.settings.controller_id)


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
