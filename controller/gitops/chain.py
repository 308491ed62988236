"""The use cases of a chain: `plan(chain)` and `promote(chain, request)`, for the CLI, `ci`
and `watch` alike, whatever the number of steps.

`reconcile.plan_for` and `reconcile.apply_plan` do for each step what they do for one account;
this module decides which step comes next, with which session, behind which gate, and records
every attempt (`aws.promotion`): promotion is data to list and audit, not a side effect of
a build. The chain is judged by the policy in force (`policy_in_force`), read from the
records: the policy of the last commit the chain applied completely.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import git

from controller.aws import crossaccount
from controller.aws.apply import ApplyOptions, WriteGate
from controller.aws.credentials import StageUnreachable, assume
from controller.aws.ledger import Ledger
from controller.aws.promotion import Promotions, stage_ledger
from controller.aws.session import Aws, account_of, caller
from controller.core.chain import (
    Chain,
    ChainPlan,
    ChainResult,
    Step,
    StepPlan,
    StepResult,
    chain_of,
)
from controller.core.config.model import Config, Policy
from controller.core.errors import ControllerError, StageError
from controller.core.events import EventSink
from controller.core.gates import (
    Approval,
    Decision,
    Gate,
    GateState,
    Promotion,
    PromotionOutcome,
    gate,
    outcome,
    settled,
)
from controller.core.plan import Guards, Plan, TargetError, targeted, with_preflight
from controller.core.render import image_grants
from controller.core.results import BAD_OUTCOMES, ApplyResult, ResultSink
from controller.gitops import reconcile, verify
from controller.present import Console, report
from controller.present import chain as present


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
            self._account = account_of(self.home)
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


# The policy in force


def policy_in_force(config: Config, home: Aws) -> Policy | None:
    """The policy of the last commit the chain applied completely; None before the first."""
    return promotions(config, home).policy()


def judged(config: Config, home: Aws) -> Chain:
    """`config`'s chain under the policy in force."""
    return chain_of(config, policy_in_force(config, home))


# Planning: every step, no gates (a plan writes nothing)


@dataclass(frozen=True)
class PlanRequest:
    only: str | None = None
    """`--stage NAME`: that step alone."""
    allow_delete_all: bool = False
    detect_drift: bool = False
    targets: tuple[str, ...] = ()
    """`--target`: in every step that has them (steps with none of them plan nothing)."""


def guards(chain: Chain, allow_delete_all: bool) -> Guards:
    return Guards(allow_delete_all=allow_delete_all, max_deletes=chain.max_deletes)


def plan_step(step: Step, chain: Chain, sessions: Sessions, request: PlanRequest) -> Plan:
    """`reconcile.plan_for` in the step's account, plus the cross-account pre-flight (with
    what the config's image builders grant the stages: `render.image_grants`)."""
    assert step.config is not None
    config = step.config
    full = reconcile.plan_for(
        config,
        sessions.of(step),
        guards(chain, request.allow_delete_all),
        detect_drift=request.detect_drift,
    )
    if step.stage is not None:
        settings = config.settings
        failures = crossaccount.check(
            full,
            step.stage,
            sessions.home,
            settings.assets_bucket,
            settings.assets_kms_key_arn,
            image_grants(chain.config),
        )
        full = with_preflight(full, failures)
    return full


def plan(chain: Chain, sessions: Sessions, request: PlanRequest = PlanRequest()) -> ChainPlan:
    """The full plan of every step, made at the same time (each reads only its own account);
    a stage that cannot be reached is reported, the others planned. Targets are applied by
    `targeted` (the full plans are what a saved plan records as seen)."""

    def planned(step: Step) -> StepPlan:
        if step.config is None:
            return StepPlan(step, None, note=removed(step))
        try:
            return StepPlan(step, plan_step(step, chain, sessions, request))
        except StageUnreachable as exc:
            return StepPlan(step, None, str(exc))

    chosen = chain.only(request.only)
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        return ChainPlan(chain, tuple(pool.map(planned, chosen)))


def targeted_plan(full: ChainPlan, request: PlanRequest) -> ChainPlan:
    """Only what `--target` names, in every step that has it; a name no step has is an error."""
    if not request.targets:
        return full
    kept: list[StepPlan] = []
    found: set[str] = set()
    for step_plan in full.steps:
        if step_plan.plan is None:
            continue
        names = [n for n in request.targets if _names(step_plan.plan, n)]
        if names:
            found.update(names)
            plan_guards = guards(full.chain, request.allow_delete_all)
            kept.append(replace(step_plan, plan=targeted(step_plan.plan, names, plan_guards)))
    unknown = [n for n in request.targets if n not in found]
    if unknown:
        first = next((p.plan for p in full.steps if p.plan is not None), None)
        if first is not None:
            targeted(first, unknown, guards(full.chain, request.allow_delete_all))
        raise StageError(f"--target {', '.join(unknown)}: no step plans it")
    return ChainPlan(full.chain, tuple(kept))


def _names(plan: Plan, name: str) -> bool:
    try:
        targeted(plan, [name], Guards(allow_delete_all=True))
    except TargetError:
        return False
    return True


def removed(step: Step) -> str:
    return (
        f"this commit removes stage {step.name}, which the policy in force still has: "
        "nothing is deployed there, and its stacks are left as they are"
    )


# Promoting: apply step by step, as far as the gates allow


@dataclass(frozen=True)
class Hooks:
    """How a promotion shows what it does (the CLI prints, CI also writes artifacts)."""

    on_plan: Callable[[Step, Plan], None] = lambda _step, _plan: None
    on_event: EventSink = lambda _: None
    on_result: ResultSink = lambda _: None
    on_apply: Callable[[Step, ApplyResult], None] = lambda _step, _result: None


@dataclass(frozen=True)
class PromoteRequest:
    commit: str | None
    actor: str
    plan: PlanRequest = PlanRequest()
    options: Callable[[Config], ApplyOptions] = reconcile.options_for
    hooks: Hooks = field(default_factory=Hooks)
    before_write: WriteGate | None = None
    """The applier's write gate in every step (the CLI's Ctrl-C stops new writes with it)."""
    repo: git.Repo | None = None
    """Where the commit comes from, for each step's stale-commit guard."""
    allow_older: bool = False
    plans: Mapping[str, Plan] = field(default_factory=dict)
    """Plans made already, by step (a saved plan, or the plan a person confirmed)."""

    @property
    def partial(self) -> bool:
        return bool(self.plan.targets)


def promote(chain: Chain, sessions: Sessions, request: PromoteRequest) -> ChainResult:
    """Bring the commit to every step in order, stopping at the first closed gate or at a
    step that did not apply it completely; with `only`, to that step alone (its gate reads
    the earlier step's records). A step behind a closed gate is left as it is. A record that
    cannot be written ends the promotion with the error as a value."""
    if len(chain.steps) > 1 and (not request.commit or chain.revision != request.commit):
        raise StageError(
            "a staged config is promoted from a commit: read it from git (--repo), not a file"
        )
    store = promotions(chain.config, sessions.home)
    done: list[StepResult] = []
    try:
        for step in chain.only(request.plan.only):
            result = _promote_step(step, chain, sessions, store, request, done)
            if len(chain.steps) > 1 and result.outcome is not None and result.result is not None:
                _record(store, request, result)
            done.append(result)
            if not _goes_on(result, request):
                break
        finished = ChainResult(chain, tuple(done))
        _record_policy(finished, store, request)
    except ControllerError as exc:
        return ChainResult(chain, tuple(done), error=exc.refusal())
    return finished


def _goes_on(result: StepResult, request: PromoteRequest) -> bool:
    """A targeted promotion goes on past a step it applied without failure: the next gate
    reads the records, which a targeted apply never changes."""
    if result.outcome is PromotionOutcome.APPLIED:
        return True
    return request.partial and result.outcome is PromotionOutcome.INCOMPLETE


def _promote_step(
    step: Step,
    chain: Chain,
    sessions: Sessions,
    store: Promotions,
    request: PromoteRequest,
    done: list[StepResult],
) -> StepResult:
    commit = request.commit or ""
    if len(chain.steps) == 1:
        # A chain of one step has no gate: the ledger's own guards decide.
        return _apply(step, Gate(GateState.OPEN, "automatic"), chain, sessions, store, request)
    previous_applied = _previous_applied(step, done, store, commit, request)
    manual = step.stage is not None and step.stage.manual
    decisions = store.decisions(step.name, commit) if manual else ()
    opened = gate(step.stage, commit, step.previous, previous_applied, decisions)
    if opened.open:
        verified = verify.gate_after(chain, step, commit, store, sessions.of, request.actor)
        opened = verified or opened
    if not opened.open:
        return StepResult(step, opened, message=opened.reason)
    return _apply(step, opened, chain, sessions, store, request)


def _previous_applied(
    step: Step, done: list[StepResult], store: Promotions, commit: str, request: PromoteRequest
) -> bool:
    if step.previous is None:
        return True
    if done and done[-1].step.name == step.previous and not request.partial:
        return done[-1].outcome is PromotionOutcome.APPLIED
    return store.reached(step.previous, commit)


def _apply(
    step: Step,
    opened: Gate,
    chain: Chain,
    sessions: Sessions,
    store: Promotions,
    request: PromoteRequest,
) -> StepResult:
    if step.config is None:
        return _record(
            store,
            request,
            StepResult(step, opened, PromotionOutcome.APPLIED, message=removed(step)),
        )
    try:
        aws = sessions.of(step)
        collision = _collides_with_orchestrator(step, sessions)
    except StageUnreachable as exc:
        failed = StepResult(step, opened, PromotionOutcome.UNREACHABLE, message=str(exc))
        return _record(store, request, failed)
    if collision:
        refused = StepResult(step, opened, PromotionOutcome.REFUSED, message=collision)
        return _record(store, request, refused)
    step_plan = request.plans.get(step.name)
    if step_plan is None:
        step_plan = plan_step(step, chain, sessions, request.plan)
        if request.plan.targets:
            names = [n for n in request.plan.targets if _names(step_plan, n)]
            if not names:
                why = "--target names no pipeline of this step: nothing applied here"
                return StepResult(step, opened, PromotionOutcome.INCOMPLETE, message=why)
            step_plan = targeted(step_plan, names, guards(chain, request.plan.allow_delete_all))
    request.hooks.on_plan(step, step_plan)
    result = reconcile.apply_plan(
        step.config,
        step_plan,
        aws,
        request.options(step.config),
        on_event=request.hooks.on_event,
        on_result=request.hooks.on_result,
        ledger=ledger_of(step, sessions.home),
        actor=request.actor,
        before_write=request.before_write,
        partial=request.partial,
        repo=request.repo,
        allow_older=request.allow_older,
    )
    request.hooks.on_apply(step, result)
    verified = None
    # Whether the next step's gate may open; a chain of one step has no next step.
    if result.ok and not settled(step_plan) and len(chain.steps) > 1:
        verified = plan_step(step, chain, sessions, replace(request.plan, detect_drift=False))
    reached = outcome(result, verified)
    if reached is PromotionOutcome.APPLIED and request.partial:
        reached = PromotionOutcome.INCOMPLETE  # a targeted apply never opens the next gate
    return StepResult(step, opened, reached, step_plan, result, _summary(result, reached))


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


def _summary(result: ApplyResult, reached: PromotionOutcome) -> str:
    if result.refusal:
        return result.refusal
    bad = [r for r in result.results if r.outcome in BAD_OUTCOMES]
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return f"{first.stack_name} {first.outcome.value}: {first.message}{more}"
    counts = Counter(r.outcome.value for r in result.results)
    text = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing to do"
    if reached is PromotionOutcome.INCOMPLETE:
        text += "; not complete yet: a later run finishes the promotion"
    return text


def _record(store: Promotions, request: PromoteRequest, done: StepResult) -> StepResult:
    """One record per change of outcome: an hourly run that changes nothing adds none. (A
    chain of one step has no gate to open: its ledger is its record.)"""
    assert done.outcome is not None
    if (done.result is not None and done.result.superseded) or not request.commit:
        return done  # a late build, or a working-tree file: no promotion to record
    if request.partial:
        return done  # a targeted apply promotes nothing: the records stay as they are
    commit = request.commit
    earlier = store.outcomes(done.step.name, commit)
    if not earlier or earlier[-1] is not done.outcome:
        store.record(
            Promotion(done.step.name, commit, done.outcome, _now(), request.actor, done.message)
        )
    return done


def _record_policy(done: ChainResult, store: Promotions, request: PromoteRequest) -> None:
    """The commit's policy takes force once the chain applied it completely; before the
    first, the policy the first promotion was judged by is pinned (see SECURITY.md)."""
    if not request.commit or request.partial:
        return
    proposed = replace(done.chain.config.policy, overrides={})
    in_force = done.chain.in_force
    changed = (in_force.settings, in_force.region) != (proposed.settings, proposed.region)
    if done.complete and (not done.chain.recorded or changed):
        store.set_policy(proposed)
    elif done.steps and not done.chain.recorded:
        store.set_policy(replace(done.chain.in_force, overrides={}))


def promotions(config: Config, home: Aws) -> Promotions:
    settings = config.settings
    return Promotions.of(home, settings.assets_bucket, settings.controller_id)


def ledger_of(step: Step, home: Aws) -> Ledger:
    """The orchestrator's step keeps the controller's ledger; each stage has its own."""
    assert step.config is not None
    settings = step.config.settings
    if step.stage is None:
        return reconcile.ledger_for(step.config, home)
    return stage_ledger(home, settings.assets_bucket, settings.controller_id, step.name)


# Approving


def decide(
    chain: Chain,
    home: Aws,
    stage_name: str,
    commit: str | None,
    decision: Decision,
    note: str = "",
) -> Approval:
    """Record the caller's decision about a commit for a manual stage (of the policy in
    force). Without a commit, the one waiting there: the newest commit the stage before it
    applied completely. `home` is the approver's own session (`--profile`)."""
    step = chain.step(stage_name)
    if step.stage is None or not step.stage.manual:
        raise StageError(
            f'stage {stage_name} needs no approval: only stages with "approval": "manual" do'
        )
    store = promotions(chain.config, home)
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
    identity = caller(home)
    approval = Approval(stage_name, commit, decision, _now(), identity.user_id, identity.arn, note)
    store.decide(approval)
    return approval


def _now() -> datetime:
    return datetime.now(UTC)


def printing_hooks(
    console: Console, chain: Chain, *, planned: bool = False, quiet: bool = False
) -> Hooks:
    """Each step's plan (under its heading when the chain has several; not again when it was
    shown and confirmed already, `planned`), stack events and results as they happen, and
    each step's summary (`quiet`: left to the caller, which shows the promotion as a whole)."""

    def on_plan(step: Step, shown: Plan) -> None:
        if planned and len(chain.steps) == 1:
            return
        if len(chain.steps) > 1:
            present.print_step(step, console)
        report.print_plan(shown, console, step.source)

    def on_apply(step: Step, result: ApplyResult) -> None:
        if not quiet:
            report.print_apply(result, console)

    return Hooks(
        on_plan=on_plan,
        on_event=lambda event: report.print_event(event, console),
        on_result=lambda result: report.print_result(result, console),
        on_apply=on_apply,
    )
