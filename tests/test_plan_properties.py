"""Ownership and convergence properties of the pure planner, for any desired and deployed set.

No network: desired stacks are rendered from random subsets of the example pipelines with
random values; deployed stacks have random owners, statuses, hashes and run records.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import config as config_module
from controller.core.plan import WRITES_STACK, Action, Guards, Plan, PlanInput, make_plan
from controller.core.render import RenderedStack, render_all
from controller.core.stacks import OWNER_TAG, SPEC_HASH_PARAMETER, TYPE_TAG, DeployedStack
from tests.test_config_invalid import EXAMPLE_DATA

ME = EXAMPLE_DATA["settings"]["controller_id"]
OWNERS = st.sampled_from([ME, "another-controller", None])
STATUSES = st.sampled_from(
    [
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "CREATE_FAILED",
        "DELETE_FAILED",
        "UPDATE_ROLLBACK_FAILED",
        "REVIEW_IN_PROGRESS",
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
        "IMPORT_COMPLETE",
    ]
)
INSTANCES = ["ml.m5.large", "ml.m5.xlarge", "ml.c5.2xlarge"]
EXTRA_NAMES = [
    "mlops-pipeline-retired-byompipelinerealtimebuiltin",
    "mlops-pipeline-oldmonitor-byomdataqualitymonitor",
    "hand-made-stack",
]
WRITES = WRITES_STACK | {Action.RUN}


@st.composite
def desired_sets(draw: Any) -> tuple[RenderedStack, ...]:
    indexes = draw(st.sets(st.integers(0, len(EXAMPLE_DATA["pipelines"]) - 1)))
    pipelines = []
    for index in sorted(indexes):
        pipeline = copy.deepcopy(EXAMPLE_DATA["pipelines"][index])
        for key in ("inference_instance", "instance_type"):
            if key in pipeline:
                pipeline[key] = draw(st.sampled_from(INSTANCES))
        pipelines.append(pipeline)
    data = {"settings": EXAMPLE_DATA["settings"], "pipelines": pipelines}
    loaded = config_module.load(json.dumps(data).encode(), "mlops-config.json")
    assert loaded.config is not None, [d.format() for d in loaded.errors]
    return render_all(loaded.config)


@st.composite
def scenarios(draw: Any) -> tuple[tuple[RenderedStack, ...], tuple[DeployedStack, ...]]:
    desired = draw(desired_sets())
    names = [r.stack_name for r in desired] + EXTRA_NAMES
    by_name = {r.stack_name: r for r in desired}
    deployed = []
    for number, name in enumerate(names):
        if not draw(st.booleans()):
            continue
        tags: dict[str, str] = {}
        owner = draw(OWNERS)
        if owner is not None:
            tags[OWNER_TAG] = owner
        rendered = by_name.get(name)
        recorded: dict[str, str] = {}
        if rendered is not None and draw(st.booleans()):
            recorded[SPEC_HASH_PARAMETER] = rendered.spec_hash
            if rendered.run is not None and rendered.run.gate_parameter and draw(st.booleans()):
                recorded[rendered.run.gate_parameter] = rendered.run.execution_name
        elif draw(st.booleans()):
            recorded[SPEC_HASH_PARAMETER] = "0" * 64
        tags[TYPE_TAG] = rendered.pipeline.type if rendered else "byom_realtime_builtin"
        parameters = dict(rendered.parameters) if rendered and draw(st.booleans()) else {}
        parameters |= recorded
        deployed.append(
            DeployedStack(name, f"arn:stack/{name}/{number}", draw(STATUSES), tags, parameters)
        )
    return desired, tuple(deployed)


def _plan(desired: Any, deployed: Any, guards: Guards | None = None) -> Plan:
    return make_plan(PlanInput(desired, deployed, ME, "c" * 40, guards or Guards()))


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_no_write_is_ever_planned_on_a_stack_this_controller_does_not_own(scenario):
    desired, deployed = scenario
    plan = _plan(desired, deployed, Guards(allow_delete_all=True))
    existing = {s.name: s for s in deployed}
    for action in plan.actions:
        stack = existing.get(action.stack_name)
        if action.action in WRITES and stack is not None:
            assert stack.owned_by(ME), (action, stack.tags)
        if stack is not None and not stack.owned_by(ME):
            assert action.action is Action.BLOCKED


@PROPERTY
@given(scenarios())
def test_deletes_touch_only_owned_stacks_absent_from_the_config(scenario):
    desired, deployed = scenario
    plan = _plan(desired, deployed, Guards(allow_delete_all=True))
    wanted = {r.stack_name for r in desired}
    owned_gone = {s.name for s in deployed if s.owned_by(ME) and s.name not in wanted}
    deleted = {a.stack_name for a in plan.actions if a.action is Action.DELETE}
    settled_gone = {
        s.name
        for s in deployed
        if s.name in owned_gone
        and (s.status == "REVIEW_IN_PROGRESS" or not s.status.endswith("_IN_PROGRESS"))
    }
    assert deleted == settled_gone
    assert "hand-made-stack" not in deleted or any(
        s.name == "hand-made-stack" and s.owned_by(ME) for s in deployed
    )


@PROPERTY
@given(scenarios())
def test_the_delete_guard_refuses_emptying_the_account_without_the_flag(scenario):
    _, deployed = scenario
    plan = _plan((), deployed)
    assert not any(a.action is Action.DELETE for a in plan.actions) or plan.refusal
    if not any(s.owned_by(ME) for s in deployed):
        assert not plan.refusal and not plan.changes


def _simulate_apply(plan: Plan, deployed: tuple[DeployedStack, ...]) -> tuple[DeployedStack, ...]:
    """What a successful apply leaves: desired stacks with their owner, hash and run record."""
    after = {s.name: s for s in deployed}
    for action in plan.actions:
        if action.action is Action.DELETE:
            del after[action.stack_name]
        elif action.is_change or action.action is Action.UNCHANGED:
            rendered = action.desired
            assert rendered is not None
            tags = {OWNER_TAG: ME, TYPE_TAG: rendered.pipeline.type}
            gate = rendered.run.gate_parameter if rendered.run else None
            opened = {gate: "true"} if gate else {}
            old = after.get(action.stack_name)
            status = (
                "UPDATE_COMPLETE" if old and action.action is Action.UPDATE else "CREATE_COMPLETE"
            )
            after[action.stack_name] = DeployedStack(
                action.stack_name,
                f"arn:stack/{action.stack_name}/new",
                status,
                tags,
                {
                    p["ParameterKey"]: p["ParameterValue"]
                    for p in rendered.boto_parameters(**opened)
                },
            )
    return tuple(after.values())


@PROPERTY
@given(scenarios())
def test_plan_then_apply_converges_in_one_round(scenario):
    desired, deployed = scenario
    guards = Guards(allow_delete_all=True)
    first = _plan(desired, deployed, guards)
    after = _simulate_apply(first, deployed)
    second = _plan(desired, after, guards)
    assert not second.has_changes, [(a.stack_name, a.action, a.reason) for a in second.changes]
    assert not second.refusal
    owned_desired = {
        r.stack_name
        for r in desired
        if all(s.owned_by(ME) for s in deployed if s.name == r.stack_name)
    }
    blocked_or_waiting = {
        a.stack_name for a in first.actions if a.action in (Action.BLOCKED, Action.WAIT)
    }
    for name in owned_desired - blocked_or_waiting:
        assert next(s for s in after if s.name == name).owned_by(ME)


def test_an_empty_account_plans_a_create_for_every_pipeline():
    data = {"settings": EXAMPLE_DATA["settings"], "pipelines": EXAMPLE_DATA["pipelines"]}
    loaded = config_module.load(json.dumps(data).encode(), "mlops-config.json")
    assert loaded.config is not None
    desired = render_all(loaded.config)
    plan = _plan(desired, ())
    assert {a.action for a in plan.actions} == {Action.CREATE}
    foreign = tuple(
        DeployedStack(r.stack_name, "arn:x", "CREATE_COMPLETE", {OWNER_TAG: "someone"})
        for r in desired
    )
    assert {a.action for a in _plan(desired, foreign).actions} == {Action.BLOCKED}
    assert replace(plan, actions=()).has_changes is False
