"""One model of promotion: every config is a chain of steps; a plain config is a chain of one.

The first step is the orchestrator's own account (for a plain config, its only one: every
pipeline; with `settings.stages`, its image builders); each stage follows in order. What a
step deploys comes from the commit being promoted; which steps there are, in which order, in
which account and role, behind which approval, and the delete cap come from the policy in
force: the policy of the last commit the chain applied completely, never the commit's own.
A commit that changes the policy is promoted under the one in force; `policy_changes` says in
words what it changes, for the plan and the pull-request comment.

Pure: configs and records in, steps and values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from controller.core.config.model import Config, Policy, Stage
from controller.core.config.stages import ORCHESTRATOR, configured
from controller.core.errors import Refusal, StageError
from controller.core.gates import Gate, PromotionOutcome
from controller.core.plan import Plan
from controller.core.results import ApplyResult

JSON_VERSION = 2
"""The version of every JSON document `plan`, `apply`, `status` and `history` print."""


@dataclass(frozen=True)
class Step:
    """One account a commit goes through: the orchestrator's own, or a stage."""

    name: str
    config: Config | None
    """What the commit deploys here; None when the commit removes this stage, which the
    policy in force still has (nothing is deployed there, its stacks are left as they are)."""
    previous: str | None
    """The step before it, which must have applied a commit completely first."""
    stage: Stage | None = None
    """The stage as the policy in force defines it; None for the orchestrator's step."""
    region: str = ""

    @property
    def source(self) -> str:
        return self.config.source if self.config is not None else self.name


@dataclass(frozen=True)
class Chain:
    """A commit's config, judged by the policy in force."""

    config: Config
    in_force: Policy
    steps: tuple[Step, ...]
    max_deletes: int | None
    """The delete cap in force (the operator's MLOPS_MAX_DELETES or --max-deletes win)."""
    policy_changes: tuple[str, ...] = ()
    """What the commit changes in the policy, in words; it takes force once the chain has
    applied the commit completely."""
    recorded: bool = False
    """The policy in force comes from the records (False: none is recorded yet)."""

    @property
    def revision(self) -> str | None:
        return self.config.revision

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def only(self, name: str | None) -> tuple[Step, ...]:
        """Every step, or the one named (`--stage NAME`)."""
        if name is None:
            return self.steps
        chosen = tuple(s for s in self.steps if s.name == name)
        if not chosen:
            if len(self.steps) == 1:
                raise StageError(f"--stage {name}: the config has no settings.stages")
            names = ", ".join(s.name for s in self.steps)
            raise StageError(f"--stage {name}: no such stage; expected one of {names}")
        return chosen

    def step(self, name: str) -> Step:
        return self.only(name)[0]


def chain_of(config: Config, in_force: Policy | None = None) -> Chain:
    """The chain `config` is promoted through under `in_force` (None: no policy is in force
    yet, so the commit's own policy, within what the bootstrap allows: see SECURITY.md)."""
    policy = in_force if in_force is not None else config.policy
    region = policy.region or config.settings.region
    commit_parts = {part.stage.name: part for part in config.stages if part.stage is not None}
    steps = [Step(ORCHESTRATOR, config, None, None, config.settings.region)]
    for stage in configured(policy.settings.get("stages"), region):
        part = commit_parts.get(stage.name)
        if part is not None and part.stage is not None:
            # The commit's region for its values (they were checked for it); the rest in force.
            stage = replace(stage, region=part.stage.region)
            part = replace(part, stage=stage)
        steps.append(Step(stage.name, part, steps[-1].name, stage, stage.region))
    overrides = config.policy.overrides
    cap = (
        overrides["max_deletes"]
        if "max_deletes" in overrides
        else policy.settings.get("max_deletes")
    )
    return Chain(
        config,
        policy,
        tuple(steps),
        cap if isinstance(cap, int) and not isinstance(cap, bool) else None,
        policy_changes(policy, config.policy) if in_force is not None else (),
        in_force is not None,
    )


# What a commit changes in the policy


def policy_changes(in_force: Policy, proposed: Policy) -> tuple[str, ...]:
    """Each change `proposed` makes to the policy in force, as a sentence."""
    lines: list[str] = []
    old = _stage_entries(in_force)
    new = _stage_entries(proposed)
    for name in old:
        if name not in new:
            lines.append(f"removes stage {name}")
    for name in new:
        if name not in old:
            lines.append(f"adds stage {name}")
    kept_old = [n for n in old if n in new]
    kept_new = [n for n in new if n in old]
    if kept_old != kept_new:
        lines.append(f"reorders the stages: {' -> '.join(kept_new)}")
    for name in kept_new:
        lines += [f"stage {name}: {line}" for line in _entry_changes(old[name], new[name])]
    before, after = in_force.settings.get("max_deletes"), proposed.settings.get("max_deletes")
    if before != after:
        lines.append(f"max_deletes changes from {_shown(before)} to {_shown(after)}")
    return tuple(lines)


def _stage_entries(policy: Policy) -> dict[str, Mapping[str, Any]]:
    raw = policy.settings.get("stages")
    entries: dict[str, Mapping[str, Any]] = {}
    for entry in raw if isinstance(raw, list) else ():
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            entries.setdefault(entry["name"], entry)
    return entries


def _entry_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    manual_before, manual_after = old.get("approval") == "manual", new.get("approval") == "manual"
    if manual_before and not manual_after:
        lines.append("no longer needs an approval")
    elif manual_after and not manual_before:
        lines.append("needs an approval")
    for key in sorted((set(old) | set(new)) - {"name", "approval"}):
        if old.get(key) != new.get(key):
            lines.append(f"{key} changes from {_shown(old.get(key))} to {_shown(new.get(key))}")
    return lines


def _shown(value: Any) -> str:
    return "(unset)" if value is None else str(value)


# What planning and promoting a chain produce


@dataclass(frozen=True)
class StepPlan:
    step: Step
    plan: Plan | None
    problem: str = ""
    """Why there is no plan: the stage's role cannot be assumed."""
    note: str = ""
    """Why nothing is planned without a problem: the commit removes the stage."""


@dataclass(frozen=True)
class ChainPlan:
    chain: Chain
    steps: tuple[StepPlan, ...]

    @property
    def blocked(self) -> bool:
        """A step cannot be planned, or its plan is refused or blocked: it cannot be
        applied as a whole."""
        return any(
            (p.plan is None and p.problem)
            or (p.plan is not None and (p.plan.refusal or p.plan.blocked))
            for p in self.steps
        )

    @property
    def has_changes(self) -> bool:
        return any(p.plan is not None and p.plan.has_changes for p in self.steps)


def _blocked(planned: StepPlan) -> bool:
    if planned.plan is None:
        return bool(planned.problem)
    return bool(planned.plan.refusal or planned.plan.blocked)


@dataclass(frozen=True)
class StepResult:
    """What one promotion did at one step: the gate it met, and the apply when it was open."""

    step: Step
    gate: Gate
    outcome: PromotionOutcome | None = None
    plan: Plan | None = None
    result: ApplyResult | None = None
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in (
            PromotionOutcome.FAILED,
            PromotionOutcome.REFUSED,
            PromotionOutcome.UNREACHABLE,
        )


@dataclass(frozen=True)
class ChainResult:
    """What `promote` did: each step it reached, in order."""

    chain: Chain
    steps: tuple[StepResult, ...]
    interrupted: bool = False
    error: Refusal | None = None
    """An error that stopped the promotion (a record that could not be written), as a value."""

    @property
    def failed(self) -> bool:
        return self.error is not None or any(s.failed for s in self.steps)

    @property
    def complete(self) -> bool:
        """The last step of the chain applied the commit completely."""
        return bool(self.steps) and (
            self.steps[-1].step.name == self.chain.last.name
            and self.steps[-1].outcome is PromotionOutcome.APPLIED
        )

    @property
    def superseded(self) -> str:
        """The late-build message when the first step found a newer commit applied."""
        for done in self.steps:
            if done.result is not None and done.result.superseded:
                return done.result.refusal
        return ""


def reached(steps: Sequence[StepResult]) -> tuple[str, ...]:
    return tuple(s.step.name for s in steps if s.outcome is not None)
