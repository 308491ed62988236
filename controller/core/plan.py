"""The planner: desired stacks + deployed stacks -> ordered actions. Pure: no AWS, no I/O.

Like Sceptre's launch order, the plan is data that an executor runs later; unlike a flat list,
each action names the actions it depends on, so the executor can start a stack as soon as its
own dependencies are done and skip only the dependents of a failure.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from controller.core import replacement, rollout, template_diff
from controller.core.drift import DELETED, ResourceDrift, StackDrift
from controller.core.errors import UsageError
from controller.core.pipelines import KINDS, Family
from controller.core.redact import redact
from controller.core.replacement import Replacement
from controller.core.stacks import BOOKKEEPING_PARAMETERS, PIPELINE_TAG, DeployedStack

if TYPE_CHECKING:
    from controller.core.config.model import Pipeline
    from controller.core.render import RenderedStack


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    RUN = "run"
    UNCHANGED = "unchanged"
    WAIT = "wait"
    BLOCKED = "blocked"


_Act = Callable[..., "PlannedAction"]

CHANGES = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE, Action.RUN})
WRITES_STACK = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE})

FAILED_CREATE = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED"})
"""States CloudFormation cannot update: the stack must be deleted and created again."""


@dataclass(frozen=True)
class ParameterChange:
    key: str
    old: str | None
    new: str | None
    replaces: tuple[str, ...] = ()
    """Resources (logical ids) this change replaces, directly or through another one."""


@dataclass(frozen=True)
class PlannedAction:
    stack_name: str
    pipeline_type: str
    action: Action
    reason: str
    desired: RenderedStack | None = None
    deployed: DeployedStack | None = None
    depends_on: tuple[str, ...] = ()
    changes: tuple[ParameterChange, ...] = ()
    delete_rank: int | None = None
    """For a removed stack: its place in the reverse dependency order (`DELETE_RANK`). It
    starts once every removed stack of a lower rank is gone: one barrier per rank instead of
    an edge to each of them, so planning and scheduling stay linear in the number of deletes."""
    replacements: tuple[Replacement, ...] = ()
    """Resources the update replaces (create-only properties), known offline."""
    drift: tuple[ResourceDrift, ...] = ()
    resources: template_diff.ResourceChanges | None = None
    """What the update's template change does to the stack's resources (None: no change of
    template, or not compared)."""
    drift_unchecked: str = ""
    """Why drift detection, asked for, could not tell this stack's drift (empty when it could
    or was not asked): every output format shows it, since "no drift found" would be a lie."""
    endpoint_rollout: str = ""
    """How the update reaches a realtime endpoint ("in place, canary 10 % ...", "replaced")."""

    @property
    def is_change(self) -> bool:
        return self.action in CHANGES


@dataclass(frozen=True)
class Plan:
    revision: str | None
    actions: tuple[PlannedAction, ...]
    refusal: str = ""
    """Non-empty when a safety guard refuses the whole plan; nothing may be applied."""
    owned: int = 0

    @property
    def changes(self) -> tuple[PlannedAction, ...]:
        return tuple(a for a in self.actions if a.is_change)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def blocked(self) -> bool:
        """Some pipeline cannot be applied: the plan cannot be applied as a whole."""
        return any(a.action is Action.BLOCKED for a in self.actions)

    def by_name(self) -> dict[str, PlannedAction]:
        return {a.stack_name: a for a in self.actions}


@dataclass(frozen=True)
class Guards:
    allow_delete_all: bool = False
    max_deletes: int | None = None


@dataclass(frozen=True)
class PlanInput:
    desired: Sequence[RenderedStack]
    deployed: Sequence[DeployedStack]
    controller_id: str
    revision: str | None = None
    guards: Guards = field(default_factory=Guards)
    drift: Mapping[str, StackDrift] = field(default_factory=dict)
    """Resource drift by stack name, when drift detection ran (scheduled runs, --detect-drift)."""


def make_plan(request: PlanInput) -> Plan:
    deployed = {s.name: s for s in request.deployed}
    owned = [s for s in request.deployed if s.owned_by(request.controller_id)]
    deps = pipeline_dependencies([d.pipeline for d in request.desired])
    actions = [
        replace(
            _desired_action(
                r,
                deployed.get(r.stack_name),
                request.controller_id,
                deps[r.stack_name],
                request.drift.get(r.stack_name, StackDrift()),
            ),
            drift_unchecked=request.drift.get(r.stack_name, StackDrift()).problem,
        )
        for r in request.desired
    ]
    wanted = {r.stack_name for r in request.desired}
    removed = [s for s in owned if s.name not in wanted]
    actions.extend(_delete_actions(removed))
    actions = _propagate(actions)
    refusal = _delete_guard(actions, len(owned), request.guards)
    return Plan(request.revision, _ordered(actions), refusal, len(owned))


def with_preflight(plan: Plan, failures: Mapping[str, str]) -> Plan:
    """Block the pipelines whose pre-flight checks failed, and what depends on them."""
    if not failures:
        return plan
    actions = [
        replace(a, action=Action.BLOCKED, reason=failures[a.stack_name])
        if a.stack_name in failures and a.is_change
        else a
        for a in plan.actions
    ]
    return replace(plan, actions=_ordered(_propagate(actions)))


def template_changes(plan: Plan) -> tuple[PlannedAction, ...]:
    """The updates whose deployed template may differ from the rendered one (the spec hash
    differs); a no-op plan has none."""
    return tuple(
        a
        for a in plan.actions
        if a.action is Action.UPDATE
        and a.desired is not None
        and a.deployed is not None
        and a.deployed.spec_hash != a.desired.spec_hash
    )


def templates_to_read(plan: Plan) -> tuple[DeployedStack, ...]:
    """Deployed stacks whose template an update changes and is not known offline: the only
    ones whose template is read (GetTemplate)."""
    return tuple(
        a.deployed
        for a in template_changes(plan)
        if a.deployed is not None
        and a.desired is not None
        and template_diff.known_body(a.desired, a.deployed) is None
    )


def with_resource_changes(plan: Plan, read: Mapping[str, str | Exception]) -> Plan:
    """Each update with what its template change does to resources: from the deployed
    template known offline, else from `read` (stack name -> template body, or why it could
    not be read)."""
    found: dict[str, template_diff.ResourceChanges] = {}
    for action in template_changes(plan):
        assert action.desired is not None and action.deployed is not None
        body: str | Exception | None = template_diff.known_body(action.desired, action.deployed)
        if body is None:
            body = read.get(action.stack_name)
        if body is None:
            continue
        if isinstance(body, Exception):
            changes = template_diff.ResourceChanges(
                problem=f"the deployed template could not be read ({redact(str(body))})"
            )
        else:
            changes = template_diff.compare(body, action.desired.template_body)
        if changes.any:
            found[action.stack_name] = changes
    if not found:
        return plan
    actions = tuple(
        replace(a, resources=found[a.stack_name]) if a.stack_name in found else a
        for a in plan.actions
    )
    return replace(plan, actions=actions)


def replan(action: PlannedAction, now: DeployedStack | None, controller_id: str) -> PlannedAction:
    """The action a desired stack needs given its state `now`: what the applier does once a
    stack it waited for has settled (an operation a stopped run left running, say)."""
    if action.desired is None:
        return action
    # Drift found before the wait says nothing about the stack the operation left.
    return _desired_action(action.desired, now, controller_id, action.depends_on, StackDrift())


def pipeline_dependencies(pipelines: Iterable[Pipeline]) -> dict[str, tuple[str, ...]]:
    """Which stacks each pipeline needs first.

    A custom model whose image URI names an image builder's repository and tag needs that
    builder; a monitor needs the realtime pipeline that serves its endpoint.
    """
    pipelines = list(pipelines)
    images = {
        (str(p.get("ecr_repo_name")), str(p.get("image_tag"))): p.stack_name
        for p in pipelines
        if p.kind.family is Family.IMAGE_BUILDER
    }
    endpoints = {
        p.endpoint_name: p.stack_name
        for p in pipelines
        if p.kind.family is Family.REALTIME and p.endpoint_name
    }
    result: dict[str, tuple[str, ...]] = {}
    for p in pipelines:
        needs: list[str] = []
        image = p.get("custom_image_uri")
        if isinstance(image, str) and (builder := images.get(_repository_and_tag(image))):
            needs.append(builder)
        if p.kind.family is Family.MONITOR and (server := endpoints.get(p.endpoint_name or "")):
            needs.append(server)
        result[p.stack_name] = tuple(needs)
    return result


def _repository_and_tag(image_uri: str) -> tuple[str, str]:
    _, _, path = image_uri.partition("/")
    repository, _, tag = path.rpartition(":")
    return repository, tag


def _desired_action(
    rendered: RenderedStack,
    stack: DeployedStack | None,
    controller_id: str,
    depends_on: tuple[str, ...],
    drift: StackDrift,
) -> PlannedAction:
    def act(action: Action, reason: str, **extra: object) -> PlannedAction:
        return PlannedAction(
            rendered.stack_name,
            rendered.pipeline.type,
            action,
            reason,
            rendered,
            stack,
            depends_on,
            **extra,  # type: ignore[arg-type]
        )

    if stack is None:
        return act(Action.CREATE, "not deployed yet")
    if not stack.owned_by(controller_id):
        owner = f"managed by {stack.owner!r}" if stack.owner else "not managed by this controller"
        adopt = "mlops-controller adopt" + (" --force" if stack.owner else "")
        return act(
            Action.BLOCKED,
            f"a stack with this name exists and is {owner}; refusing to touch it "
            f"(`{adopt} {rendered.stack_name}` takes it over explicitly)",
        )
    status = stack.status
    if status == "REVIEW_IN_PROGRESS":
        return act(Action.REPLACE, "a create change set was never executed: delete and create")
    if status.endswith("_IN_PROGRESS"):
        return act(Action.WAIT, f"{status}: another operation is running; next run converges")
    if status == "UPDATE_ROLLBACK_FAILED":
        return act(
            Action.BLOCKED,
            "UPDATE_ROLLBACK_FAILED: needs ContinueUpdateRollback "
            f"(or a delete) before it can change{_because(stack)}",
        )
    if status in FAILED_CREATE:
        return act(
            Action.REPLACE,
            f"{status} after a failed create{_because(stack)}: delete and create again",
        )
    if status == "DELETE_FAILED":
        return act(Action.REPLACE, f"DELETE_FAILED{_because(stack)}: retry the delete, then create")
    if drift.resources:
        return _resource_drift(drift.resources, act)
    if stack.spec_hash != rendered.spec_hash:
        changes = _parameter_changes(rendered, stack)
        if changes:
            names = ", ".join(c.key for c in changes)
            replaced = replacement.for_update(rendered, stack)
            return act(
                Action.UPDATE,
                f"changed: {names}",
                changes=_blamed(changes, replaced),
                replacements=replaced,
                endpoint_rollout=_endpoint_rollout(rendered, stack, replaced, changes),
            )
        if status == "UPDATE_ROLLBACK_COMPLETE":
            return act(Action.UPDATE, f"the last update failed and rolled back{_because(stack)}")
        return act(Action.UPDATE, "blueprint changed (same values, new template)")
    drifted = _parameter_changes(rendered, stack)
    if drifted:
        # Same spec hash, other live values: someone updated the stack by hand.
        found = "; ".join(f"{c.key} is {c.old}, git says {c.new}" for c in drifted)
        return act(Action.UPDATE, f"drifted: {found}", changes=drifted)
    return _run_state(rendered, stack, act, drift.problem)


def _endpoint_rollout(
    rendered: RenderedStack,
    stack: DeployedStack,
    replaced: Sequence[Replacement],
    changes: Sequence[ParameterChange],
) -> str:
    from controller.core import render

    if rendered.pipeline.kind.family is not Family.REALTIME:
        return ""
    described = rollout.describe_change(
        rollout.of(rendered.pipeline.values),
        frozenset(r.logical_id for r in replaced),
        frozenset(c.key for c in changes),
    )
    if described and render.scaling_pause(rendered, stack.parameters) is not None:
        return f"autoscaling paused for the new instance type, then {described}"
    return described


def _resource_drift(drifted: tuple[ResourceDrift, ...], act: _Act) -> PlannedAction:
    """A deleted resource is re-created by replacing the stack: an update cannot, since
    CloudFormation still believes it exists. A modified one blocks: an update does not
    revert changes made outside CloudFormation, and replacing a working endpoint to undo,
    say, a tag would take it down; a person decides."""
    gone = [d for d in drifted if d.status == DELETED]
    if gone:
        listed = "; ".join(d.describe() for d in gone)
        return act(
            Action.REPLACE,
            f"drifted: {listed} outside CloudFormation, which an update cannot re-create: "
            "delete and create the stack",
            drift=drifted,
        )
    listed = "; ".join(d.describe() for d in drifted)
    return act(
        Action.BLOCKED,
        f"drifted: {listed} outside CloudFormation, which an update does not revert: undo "
        "the change, or delete the stack for the next apply to create it again",
        drift=drifted,
    )


def _run_state(
    rendered: RenderedStack, stack: DeployedStack, act: _Act, unchecked: str = ""
) -> PlannedAction:
    run = rendered.run
    if run is None or stack.run_done(run.execution_name):
        return act(
            Action.UNCHANGED,
            f"up to date; drift not checked: {unchecked}" if unchecked else "up to date",
        )
    if run.kind == "baseline":
        return act(
            Action.WAIT,
            "baseline job pending: the schedule is enabled once it has written its output",
        )
    return act(Action.RUN, f"the {run.kind.replace('_', ' ')} for this spec has not started")


def _because(stack: DeployedStack) -> str:
    return f" ({stack.status_reason})" if stack.status_reason else ""


def _parameter_changes(
    rendered: RenderedStack, stack: DeployedStack
) -> tuple[ParameterChange, ...]:
    gate = rendered.run.gate_parameter if rendered.run else None
    desired = {k: v for k, v in rendered.parameters if k != gate}
    deployed = {
        k: v for k, v in stack.parameters.items() if k != gate and k not in BOOKKEEPING_PARAMETERS
    }
    keys = sorted(set(desired) | set(deployed))
    return tuple(
        ParameterChange(k, deployed.get(k), desired.get(k))
        for k in keys
        if desired.get(k) != deployed.get(k)
    )


def _blamed(
    changes: tuple[ParameterChange, ...], replaced: tuple[Replacement, ...]
) -> tuple[ParameterChange, ...]:
    return tuple(
        replace(c, replaces=tuple(r.logical_id for r in replaced if c.key in r.causes))
        for c in changes
    )


DELETE_RANK = {
    Family.MONITOR: 0,
    Family.REALTIME: 1,
    Family.BATCH: 1,
    Family.TRAINING: 1,
    Family.IMAGE_BUILDER: 2,
}
"""Deletes run in reverse dependency order: monitors, then models, then image builders."""


def _delete_actions(removed: Sequence[DeployedStack]) -> list[PlannedAction]:
    def rank(stack: DeployedStack) -> int:
        kind = KINDS.get(stack.pipeline_type or "")
        return DELETE_RANK[kind.family] if kind else 0

    busy = [s for s in removed if s.status.endswith("_IN_PROGRESS")]
    # REVIEW_IN_PROGRESS never finishes on its own (an unexecuted change set): delete it now.
    busy = [s for s in busy if s.status != "REVIEW_IN_PROGRESS"]
    busy_names = {s.name for s in busy}
    first_busy = min((rank(s) for s in busy), default=None)
    waits_for = min(busy, key=rank).name if busy else ""
    actions = []
    for stack in removed:
        pipeline_type = stack.pipeline_type or "unknown"
        if stack.name in busy_names:
            action, reason = Action.WAIT, f"{stack.status}: delete once the operation finishes"
        elif first_busy is not None and rank(stack) > first_busy:
            action, reason = Action.WAIT, f"deleted after {waits_for}, which is not ready"
        else:
            action, reason = Action.DELETE, "no longer in the config"
        actions.append(
            PlannedAction(
                stack.name, pipeline_type, action, reason, None, stack, delete_rank=rank(stack)
            )
        )
    return actions


def _propagate(actions: list[PlannedAction]) -> list[PlannedAction]:
    """A change whose dependency is blocked is blocked; one whose dependency waits, waits.

    Each action is resolved once, after its dependencies: linear in the number of actions."""
    by_name = {a.stack_name: a for a in actions}
    resolved: dict[str, PlannedAction] = {}

    def resolve(name: str, trail: frozenset[str] = frozenset()) -> PlannedAction:
        if name in resolved:
            return resolved[name]
        action = by_name[name]
        if action.is_change:
            for dep in action.depends_on:
                if dep not in by_name or dep in trail:
                    continue
                other = resolve(dep, trail | {name})
                if other.action in (Action.BLOCKED, Action.WAIT):
                    verb = "is blocked" if other.action is Action.BLOCKED else "is not ready"
                    action = replace(
                        action, action=other.action, reason=f"depends on {dep}, which {verb}"
                    )
                    break
        resolved[name] = action
        return action

    return [resolve(a.stack_name) for a in actions]


def _delete_guard(actions: Sequence[PlannedAction], owned: int, guards: Guards) -> str:
    deletes = sum(1 for a in actions if a.action is Action.DELETE)
    if not deletes:
        return ""
    # A removed stack that is busy now is deleted on a later run: it counts toward "every".
    leaving = sum(1 for a in actions if a.desired is None and a.deployed is not None)
    if leaving >= owned and not guards.allow_delete_all:
        return (
            f"refusing to delete every managed pipeline ({deletes} stacks): an empty or "
            "truncated config looks like this; pass --allow-delete-all if it is intended"
        )
    if guards.max_deletes is not None and deletes > guards.max_deletes:
        return (
            f"refusing to delete {deletes} stacks: more than max_deletes "
            f"({guards.max_deletes}); raise settings.max_deletes or --max-deletes"
        )
    return ""


def _ordered(actions: Sequence[PlannedAction]) -> tuple[PlannedAction, ...]:
    """Deletes first (in their order), then everything else in dependency order."""
    position = {a.stack_name: i for i, a in enumerate(actions)}
    by_name = {a.stack_name: a for a in actions}
    depth: dict[str, int] = {}

    def level(name: str, trail: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            deps = [d for d in by_name[name].depends_on if d in by_name and d not in trail]
            depth[name] = 1 + max((level(d, trail | {name}) for d in deps), default=-1)
        return depth[name]

    return tuple(
        sorted(
            actions,
            key=lambda a: (
                a.action is not Action.DELETE,
                a.delete_rank or 0,
                level(a.stack_name),
                position[a.stack_name],
            ),
        )
    )


class TargetError(UsageError):
    """A `--target` that names no pipeline of the plan; the message lists each one."""


def targeted(plan: Plan, names: Collection[str], guards: Guards) -> Plan:
    """Only the named stacks, as Terraform's `-target`; a name is a stack name or a pipeline's
    name (`model_name`, or `image_tag` for an image builder), which may name several stacks.

    As in Terraform, what a targeted create or update depends on comes along (an image
    builder before its custom model, the realtime endpoint before its monitor), since it
    could not succeed without it. Deletes are never added implicitly: a target deletes only
    the stacks it names by their stack names (a pipeline's name selects the stacks the config
    keeps, never the delete of those it removed). The delete guards are evaluated again on
    what is left, so a targeted delete is counted against `max_deletes` and the "delete
    everything" guard.
    """
    if not names:
        return plan
    by_name = plan.by_name()
    picked: set[str] = set()
    unknown = []
    for name in names:
        hits = {a.stack_name for a in plan.actions if _named(a, name)}
        if not hits:
            unknown.append(name)
        picked |= hits
    if unknown:
        raise TargetError("; ".join(_no_such_target(name, plan) for name in unknown))
    queue = sorted(picked)
    while queue:
        action = by_name[queue.pop()]
        if action.desired is None:
            continue
        for dependency in action.depends_on:
            if dependency in by_name and dependency not in picked:
                picked.add(dependency)
                queue.append(dependency)
    kept = [a for a in plan.actions if a.stack_name in picked]
    refusal = plan.refusal
    if refusal == _delete_guard(plan.actions, plan.owned, guards):
        refusal = _delete_guard(kept, plan.owned, guards)
    return replace(plan, actions=tuple(kept), refusal=refusal)


def _named(action: PlannedAction, name: str) -> bool:
    """A stack is targeted by its own name; by its pipeline's name only while the config
    keeps it, so a pipeline's name never pulls in the delete of its removed stacks."""
    if name == action.stack_name:
        return True
    return action.desired is not None and name == _pipeline_of(action)


def _pipeline_of(action: PlannedAction) -> str | None:
    if action.desired is not None:
        return action.desired.pipeline.name
    return action.deployed.tags.get(PIPELINE_TAG) if action.deployed is not None else None


def _no_such_target(name: str, plan: Plan) -> str:
    known = sorted(
        {a.stack_name for a in plan.actions} | {p for a in plan.actions if (p := _pipeline_of(a))}
    )
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"--target {name!r} names no pipeline in the config and no stack this controller "
        f"manages{hint}"
    )
