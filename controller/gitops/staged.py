"""Multi-account stages: today's one-account reconcile, once per account, through the gates.

`reconcile.plan_for` and `reconcile.apply_plan` do for each account exactly what they do for
a single-account config; this module only decides which account comes next and with which
session. First the orchestrator's own step (its image builders, with the controller's own
credentials), then each stage with its assumed role, in order, as far as the gates of
`core.gates` allow. Every attempt is recorded (`gitops.promotion`): promotion is data to list
and audit, not a side effect of a build.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import git
from rich.console import Console

from controller.aws import crossaccount
from controller.aws.apply import ApplyOptions, WriteGate
from controller.aws.credentials import StageUnreachable, assume
from controller.aws.session import Aws
from controller.core import report, stage_report
from controller.core.config.model import Config
from controller.core.events import EventSink
from controller.core.gates import (
    Approval,
    Decision,
    Gate,
    Outcome,
    Promotion,
    StageError,
    StagePlan,
    StageRun,
    Step,
    gate,
    outcome,
    settled,
    steps,
)
from controller.core.plan import Plan, with_preflight
from controller.core.render import image_grants
from controller.core.results import BAD_OUTCOMES, ApplyResult, ResultSink
from controller.gitops import reconcile, verify
from controller.gitops.ledger import Ledger
from controller.gitops.promotion import Promotions, stage_ledger


class Sessions:
    """The orchestrator's session and one assumed session per stage, each made once."""

    def __init__(self, home: Aws, config: Config) -> None:
        self.home = home
        self.controller_id = config.settings.controller_id
        self.commit = config.revision
        self._made: dict[str, Aws] = {}
        self._account = ""
        self._lock = threading.Lock()

    def of(self, step: Step) -> Aws:
        """The step's session; `StageUnreachable` when its role cannot be assumed."""
        if step.stage is None:
            return self.home
        with self._lock:
            made = self._made.get(step.name)
        if made is None:
            made = assume(
                step.stage, self.home, controller_id=self.controller_id, commit=self.commit
            )
            with self._lock:
                made = self._made.setdefault(step.name, made)
        return made

    def home_account(self) -> str:
        if not self._account:
            self._account = str(self.home.client("sts").get_caller_identity()["Account"])
        return self._account

    @property
    def calls(self) -> Counter[str]:
        """Every AWS call of this run, in every account."""
        total = Counter(self.home.calls)
        with self._lock:
            made = list(self._made.values())
        for aws in made:
            total.update(aws.calls)
        return total


# Planning: every stage, no gates (a plan writes nothing)


def plan_step(
    step: Step,
    sessions: Sessions,
    allow_delete_all: bool = False,
    detect_drift: bool = False,
    built: Mapping[str, frozenset[str]] | None = None,
) -> Plan:
    """`reconcile.plan_for` in the step's account, plus the cross-account pre-flight;
    `built` is what the config's image builders grant (`render.image_grants`)."""
    config = step.config
    plan = reconcile.plan_for(
        config,
        sessions.of(step),
        reconcile.guards_for(config, allow_delete_all),
        detect_drift=detect_drift,
    )
    if step.stage is None:
        return plan
    settings = config.settings
    failures = crossaccount.check(
        plan,
        step.stage,
        sessions.home,
        settings.assets_bucket,
        settings.assets_kms_key_arn,
        built,
    )
    return with_preflight(plan, failures)


def plan_all(
    config: Config, sessions: Sessions, *, only: str | None = None, allow_delete_all: bool = False
) -> tuple[StagePlan, ...]:
    """The plan of every step, made at the same time (each reads only its own account); a
    stage that cannot be reached is reported, the others planned."""

    built = image_grants(config)

    def planned(step: Step) -> StagePlan:
        try:
            return StagePlan(step, plan_step(step, sessions, allow_delete_all, built=built))
        except StageUnreachable as exc:
            return StagePlan(step, None, str(exc))

    chain = steps(config, only)
    with ThreadPoolExecutor(max_workers=len(chain)) as pool:
        return tuple(pool.map(planned, chain))


# Promoting: apply step by step, as far as the gates allow


@dataclass(frozen=True)
class Hooks:
    """How a run shows what it does (the CLI prints, CI also writes artifacts)."""

    on_plan: Callable[[Step, Plan], None] = lambda _step, _plan: None
    on_event: EventSink = lambda _: None
    on_result: ResultSink = lambda _: None
    on_apply: Callable[[Step, ApplyResult], None] = lambda _step, _result: None


def printing_hooks(console: Console) -> Hooks:
    """Each stage's plan, its stack events and results as they happen, and its summary."""

    def on_plan(step: Step, plan: Plan) -> None:
        stage_report.print_step(step, console)
        report.print_plan(plan, console, step.config.source)

    return Hooks(
        on_plan=on_plan,
        on_event=lambda event: report.print_event(event, console),
        on_result=lambda result: report.print_result(result, console),
        on_apply=lambda _step, result: report.print_apply(result, console),
    )


@dataclass(frozen=True)
class Run:
    commit: str
    actor: str
    options: Callable[[Config], ApplyOptions] = reconcile.options_for
    hooks: Hooks = field(default_factory=Hooks)
    allow_delete_all: bool = False
    before_write: WriteGate | None = None
    """The applier's write gate in every stage (the CLI's Ctrl-C stops new writes with it)."""
    repo: git.Repo | None = None
    """Where the commit comes from, for each stage's stale-commit guard."""
    detect_drift: bool = False
    """Run drift detection in each stage before applying it (scheduled runs do)."""


def promote(
    config: Config, sessions: Sessions, run: Run, *, only: str | None = None
) -> tuple[StageRun, ...]:
    """Bring `run.commit` to every step in order, stopping at the first closed gate or at a
    step that did not apply it completely; with `only`, to that step alone (its gate reads
    the earlier step's records). A stage behind a closed gate is left as it is."""
    if config.revision != run.commit:
        raise StageError(
            "a staged config is promoted from a commit: read it from git (--repo), not a file"
        )
    store = promotions(config, sessions.home)
    runs: list[StageRun] = []
    for step in steps(config, only):
        previous_applied = _previous_applied(step, runs, store, run.commit)
        manual = step.stage is not None and step.stage.manual
        decisions = store.decisions(step.name, run.commit) if manual else ()
        opened = gate(step.stage, run.commit, step.previous, previous_applied, decisions)
        if opened.open:
            opened = (
                verify.gate_after(config, step, run.commit, store, sessions.of, run.actor) or opened
            )
        if not opened.open:
            runs.append(StageRun(step, opened, message=opened.reason))
            break
        done = _apply(step, opened, sessions, store, run, image_grants(config))
        runs.append(done)
        if done.outcome is not Outcome.APPLIED:
            break
    return tuple(runs)


def _previous_applied(step: Step, runs: list[StageRun], store: Promotions, commit: str) -> bool:
    if step.previous is None:
        return True
    if runs and runs[-1].step.name == step.previous:
        return runs[-1].outcome is Outcome.APPLIED
    return store.reached(step.previous, commit)


def _apply(
    step: Step,
    opened: Gate,
    sessions: Sessions,
    store: Promotions,
    run: Run,
    built: Mapping[str, frozenset[str]],
) -> StageRun:
    try:
        aws = sessions.of(step)
        collision = _collides_with_orchestrator(step, sessions)
    except StageUnreachable as exc:
        return _record(store, run, StageRun(step, opened, Outcome.UNREACHABLE, message=str(exc)))
    if collision:
        return _record(store, run, StageRun(step, opened, Outcome.REFUSED, message=collision))
    plan = plan_step(step, sessions, run.allow_delete_all, run.detect_drift, built)
    run.hooks.on_plan(step, plan)
    result = reconcile.apply_plan(
        step.config,
        plan,
        aws,
        run.options(step.config),
        on_event=run.hooks.on_event,
        on_result=run.hooks.on_result,
        ledger=ledger_of(step, sessions.home),
        actor=run.actor,
        before_write=run.before_write,
        repo=run.repo,
    )
    run.hooks.on_apply(step, result)
    verified = None
    if result.ok and not settled(plan):
        verified = plan_step(step, sessions, run.allow_delete_all, built=built)
    reached = outcome(result, verified)
    done = StageRun(step, opened, reached, plan, result, _summary(result, reached))
    return _record(store, run, done)


def _collides_with_orchestrator(step: Step, sessions: Sessions) -> str:
    """A stage in the orchestrator's own account and region would own the same stacks as the
    orchestrator's step, and each would delete the other's: refuse it."""
    stage = step.stage
    if stage is None or stage.region != sessions.home.region:
        return ""
    account = sessions.home_account()
    if account != stage.account_id:
        return ""
    return (
        f"stage {stage.name} deploys to the orchestrator's own account {account} in "
        f"{stage.region}, where the orchestrator's step keeps the image builders: give the "
        "stage its own account or region"
    )


def _summary(result: ApplyResult, reached: Outcome) -> str:
    if result.refusal:
        return result.refusal
    bad = [r for r in result.results if r.outcome in BAD_OUTCOMES]
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return f"{first.stack_name} {first.outcome.value}: {first.message}{more}"
    counts = Counter(r.outcome.value for r in result.results)
    text = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing to do"
    if reached is Outcome.INCOMPLETE:
        text += "; a stack is still in progress: a later run finishes the promotion"
    return text


def _record(store: Promotions, run: Run, done: StageRun) -> StageRun:
    """One record per change of outcome: an hourly run that changes nothing adds none."""
    assert done.outcome is not None
    earlier = store.outcomes(done.step.name, run.commit)
    if not earlier or earlier[-1] is not done.outcome:
        store.record(
            Promotion(done.step.name, run.commit, done.outcome, _now(), run.actor, done.message)
        )
    return done


def promotions(config: Config, home: Aws) -> Promotions:
    settings = config.settings
    return Promotions(home.client("s3"), settings.assets_bucket, settings.controller_id)


def ledger_of(step: Step, home: Aws) -> Ledger:
    """The orchestrator's step keeps the controller's ledger; each stage has its own."""
    settings = step.config.settings
    if step.stage is None:
        return reconcile.ledger_for(step.config, home)
    return stage_ledger(
        home.client("s3"), settings.assets_bucket, settings.controller_id, step.name
    )


# Approving


def decide(
    config: Config,
    home: Aws,
    stage_name: str,
    commit: str | None,
    decision: Decision,
    note: str = "",
) -> Approval:
    """Record the caller's decision about a commit for a manual stage. Without a commit, the
    one waiting there: the newest commit the stage before it applied completely."""
    (step,) = steps(config, stage_name)
    if step.stage is None or not step.stage.manual:
        raise StageError(
            f'stage {stage_name} needs no approval: only stages with "approval": "manual" do'
        )
    store = promotions(config, home)
    if commit is None:
        assert step.previous is not None
        waiting = store.newest_applied(step.previous)
        if waiting is None:
            raise StageError(
                f"nothing waits at {stage_name}: {step.previous} has applied no commit "
                "completely yet; give --commit"
            )
        commit = waiting.commit
    earlier = store.decisions(stage_name, commit)
    rejected = [d for d in earlier if d.decision is Decision.REJECTED]
    if rejected:
        raise StageError(
            f"{commit[:12]} was rejected for {stage_name} by {rejected[0].who}; a rejection "
            "is final: push a new commit"
        )
    identity = home.client("sts").get_caller_identity()
    approval = Approval(
        stage_name, commit, decision, _now(), str(identity["UserId"]), str(identity["Arn"]), note
    )
    store.decide(approval)
    return approval


def _now() -> datetime:
    return datetime.now(UTC)
