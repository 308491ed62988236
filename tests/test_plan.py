"""The planner is pure: these tests build desired and deployed state in memory, no network."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from controller.core import config as config_module
from controller.core.plan import Action, Guards, Plan, PlanInput, make_plan, with_preflight
from controller.core.render import RenderedStack, render_all
from controller.core.stacks import (
    OWNER_TAG,
    PIPELINE_TAG,
    SPEC_HASH_PARAMETER,
    TYPE_TAG,
    DeployedStack,
)

OWNER = "mlops-controller"


def desired(config: dict[str, Any]) -> tuple[RenderedStack, ...]:
    result = config_module.load(json.dumps(config).encode(), "mlops-config.json", environ={})
    assert result.config is not None, result.diagnostics
    return render_all(result.config)


def deployed_from(
    rendered: RenderedStack,
    *,
    status: str = "CREATE_COMPLETE",
    owner: str | None = OWNER,
    spec_hash: str | None = None,
    run_done: bool = True,
    parameters: dict[str, str] | None = None,
) -> DeployedStack:
    tags = {TYPE_TAG: rendered.pipeline.type, PIPELINE_TAG: rendered.pipeline.name}
    if owner is not None:
        tags[OWNER_TAG] = owner
    gate = rendered.run.gate_parameter if rendered.run else None
    opened = {gate: "true"} if gate and run_done else {}
    params = {p["ParameterKey"]: p["ParameterValue"] for p in rendered.boto_parameters(**opened)}
    params[SPEC_HASH_PARAMETER] = spec_hash or rendered.spec_hash
    params.update(parameters or {})
    return DeployedStack(
        name=rendered.stack_name,
        stack_id=f"arn:stack/{rendered.stack_name}",
        status=status,
        tags=tags,
        parameters=params,
    )


def plan_of(
    wanted: Iterable[RenderedStack], live: Iterable[DeployedStack], guards: Guards | None = None
) -> Plan:
    return make_plan(PlanInput(tuple(wanted), tuple(live), OWNER, "abc123", guards or Guards()))


def actions(plan: Plan) -> dict[str, Action]:
    return {a.stack_name: a.action for a in plan.actions}


def by_type(plan: Plan, pipeline_type: str) -> str:
    return next(a.stack_name for a in plan.actions if a.pipeline_type == pipeline_type)


def test_empty_account_creates_every_pipeline_in_dependency_order(example_config):
    plan = plan_of(desired(example_config), [])
    assert set(actions(plan).values()) == {Action.CREATE}
    order = [a.stack_name for a in plan.actions]
    builder = by_type(plan, "byom_image_builder")
    custom = by_type(plan, "byom_realtime_custom")
    assert order.index(builder) < order.index(custom)
    for monitor in ("byom_data_quality_monitor", "byom_model_bias_monitor"):
        assert order.index(custom) < order.index(by_type(plan, monitor))
    assert custom in plan.by_name()[by_type(plan, "byom_data_quality_monitor")].depends_on
    assert builder in plan.by_name()[custom].depends_on
    assert plan.has_changes


def test_everything_deployed_and_current_is_unchanged(example_config):
    wanted = desired(example_config)
    plan = plan_of(wanted, [deployed_from(r) for r in wanted])
    assert set(actions(plan).values()) == {Action.UNCHANGED}
    assert not plan.has_changes


def test_one_changed_value_updates_only_that_stack_and_says_what_changed(example_config):
    live = [deployed_from(r) for r in desired(example_config)]
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    plan = plan_of(desired(example_config), live)
    changed = [a for a in plan.actions if a.is_change]
    assert len(changed) == 1
    assert changed[0].action is Action.UPDATE
    assert changed[0].pipeline_type == "byom_realtime_builtin"
    diff = {c.key: (c.old, c.new) for c in changed[0].changes}
    assert ("ml.m5.large", "ml.m5.xlarge") in diff.values()
    assert "changed:" in changed[0].reason


def test_removed_pipelines_are_deleted_first_monitors_before_their_endpoint(example_config):
    live = [deployed_from(r) for r in desired(example_config)]
    kept = [
        p
        for p in example_config["pipelines"]
        if p["pipeline_type"] not in ("byom_realtime_custom", "byom_data_quality_monitor")
    ]
    example_config["pipelines"] = kept
    plan = plan_of(desired(example_config), live)
    deletes = [a for a in plan.actions if a.action is Action.DELETE]
    assert [a.pipeline_type for a in deletes] == [
        "byom_data_quality_monitor",
        "byom_realtime_custom",
    ]
    assert plan.actions[: len(deletes)] == tuple(deletes)
    assert deletes[0].delete_rank is not None and deletes[1].delete_rank is not None
    assert deletes[0].delete_rank < deletes[1].delete_rank


def test_a_busy_removed_monitor_makes_the_deletes_after_it_wait(example_config):
    live = {r.stack_name: deployed_from(r) for r in desired(example_config)}
    monitor = next(n for n in live if n.endswith("byomdataqualitymonitor"))
    live[monitor] = deployed_from(
        next(r for r in desired(example_config) if r.stack_name == monitor),
        status="UPDATE_IN_PROGRESS",
    )
    example_config["pipelines"] = [
        p
        for p in example_config["pipelines"]
        if p["pipeline_type"] not in ("byom_realtime_custom", "byom_data_quality_monitor")
    ]
    plan = plan_of(desired(example_config), list(live.values()))
    removed = {a.pipeline_type: a for a in plan.actions if a.desired is None}
    assert removed["byom_data_quality_monitor"].action is Action.WAIT
    assert removed["byom_realtime_custom"].action is Action.WAIT
    assert monitor in removed["byom_realtime_custom"].reason


def test_planning_a_thousand_deletes_keeps_their_dependencies_linear(example_config):
    one = desired(example_config)
    live = [
        DeployedStack(
            name=f"mlops-pipeline-gone{i:04d}-{r.stack_name.rsplit('-', 1)[1]}",
            stack_id=f"arn:stack/gone{i}",
            status="CREATE_COMPLETE",
            tags={OWNER_TAG: OWNER, TYPE_TAG: r.pipeline.type},
            parameters={SPEC_HASH_PARAMETER: r.spec_hash},
        )
        for i in range(112)
        for r in one
    ]
    plan = plan_of([], live, Guards(allow_delete_all=True))
    deletes = [a for a in plan.actions if a.action is Action.DELETE]
    assert len(deletes) == len(live)
    assert sum(len(a.depends_on) for a in deletes) == 0
    ranks = [a.delete_rank for a in deletes]
    assert ranks == sorted(ranks) and set(ranks) == {0, 1, 2}


def test_stacks_of_other_owners_are_never_touched(example_config):
    wanted = desired(example_config)
    foreign = deployed_from(wanted[0], owner="someone-else")
    unmanaged = DeployedStack(
        name="hand-made-stack", stack_id="arn:stack/hand-made-stack", status="CREATE_COMPLETE"
    )
    plan = plan_of(wanted, [foreign, unmanaged])
    assert actions(plan)[wanted[0].stack_name] is Action.BLOCKED
    assert "someone-else" in plan.by_name()[wanted[0].stack_name].reason
    assert "hand-made-stack" not in actions(plan)


@pytest.mark.parametrize(
    "status",
    [
        "ROLLBACK_COMPLETE",
        "CREATE_FAILED",
        "ROLLBACK_FAILED",
        "DELETE_FAILED",
        "REVIEW_IN_PROGRESS",
    ],
)
def test_stacks_that_cannot_be_updated_are_replaced(example_config, status):
    wanted = desired(example_config)
    live = [deployed_from(r) for r in wanted[1:]] + [deployed_from(wanted[0], status=status)]
    plan = plan_of(wanted, live)
    assert actions(plan)[wanted[0].stack_name] is Action.REPLACE
    assert status in plan.by_name()[wanted[0].stack_name].reason or status == "REVIEW_IN_PROGRESS"


def test_a_stack_in_progress_is_waited_for_and_so_are_its_dependents(example_config):
    wanted = desired(example_config)
    custom = next(r for r in wanted if r.pipeline.type == "byom_realtime_custom")
    monitor = next(r for r in wanted if r.pipeline.type == "byom_data_quality_monitor")
    live = [deployed_from(custom, status="UPDATE_IN_PROGRESS")]
    plan = plan_of(wanted, live)
    assert actions(plan)[custom.stack_name] is Action.WAIT
    assert actions(plan)[monitor.stack_name] is Action.WAIT
    assert custom.stack_name in plan.by_name()[monitor.stack_name].reason


def test_update_rollback_failed_blocks_it_and_its_dependents_but_not_others(example_config):
    wanted = desired(example_config)
    custom = next(r for r in wanted if r.pipeline.type == "byom_realtime_custom")
    monitor = next(r for r in wanted if r.pipeline.type == "byom_model_bias_monitor")
    plan = plan_of(wanted, [deployed_from(custom, status="UPDATE_ROLLBACK_FAILED")])
    assert actions(plan)[custom.stack_name] is Action.BLOCKED
    assert actions(plan)[monitor.stack_name] is Action.BLOCKED
    assert actions(plan)[by_type(plan, "byom_realtime_builtin")] is Action.CREATE


def test_a_rolled_back_update_is_retried(example_config):
    live = [deployed_from(r) for r in desired(example_config)]
    example_config["pipelines"][0]["inference_instance"] = "ml.c5.xlarge"
    wanted = desired(example_config)
    live[0] = deployed_from(
        wanted[0],
        status="UPDATE_ROLLBACK_COMPLETE",
        spec_hash=live[0].spec_hash,
        parameters=dict(live[0].parameters),
    )
    plan = plan_of(wanted, live)
    assert actions(plan)[wanted[0].stack_name] is Action.UPDATE


def test_deleting_every_managed_pipeline_is_refused_unless_allowed(example_config):
    live = [deployed_from(r) for r in desired(example_config)]
    refused = plan_of([], live)
    assert "refusing to delete every managed pipeline" in refused.refusal
    allowed = plan_of([], live, Guards(allow_delete_all=True))
    assert not allowed.refusal
    assert set(actions(allowed).values()) == {Action.DELETE}


def test_max_deletes_limits_mass_deletion(example_config):
    live = [deployed_from(r) for r in desired(example_config)]
    example_config["pipelines"] = example_config["pipelines"][:3]
    wanted = desired(example_config)
    assert "max_deletes (2)" in plan_of(wanted, live, Guards(max_deletes=2)).refusal
    assert not plan_of(wanted, live, Guards(max_deletes=6)).refusal


def test_preflight_failures_block_the_pipeline_and_its_dependents_only(example_config):
    plan = plan_of(desired(example_config), [])
    custom = by_type(plan, "byom_realtime_custom")
    blocked = with_preflight(plan, {custom: "pre-flight: model_artifact_location missing"})
    assert actions(blocked)[custom] is Action.BLOCKED
    assert "missing" in blocked.by_name()[custom].reason
    assert actions(blocked)[by_type(plan, "byom_data_quality_monitor")] is Action.BLOCKED
    assert actions(blocked)[by_type(plan, "byom_realtime_builtin")] is Action.CREATE


def test_run_once_jobs_that_have_not_run_are_planned(example_config):
    wanted = desired(example_config)
    live = [deployed_from(r, run_done=False) for r in wanted]
    plan = plan_of(wanted, live)
    assert actions(plan)[by_type(plan, "byom_batch_builtin")] is Action.RUN
    monitor = by_type(plan, "byom_data_quality_monitor")
    assert actions(plan)[monitor] is Action.WAIT
    assert "baseline" in plan.by_name()[monitor].reason


def test_a_template_change_lists_added_deleted_and_replaced_resources() -> None:
    """Issue 19, item 1, offline: logical ids only in the deployed template are deleted, a
    changed type is a replacement, an unreadable deployed template is a problem value."""
    from controller.core.template_diff import compare

    deployed = (
        "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"
        "  Model:\n    Type: AWS::SageMaker::Model\n"
        "  Queue:\n    Type: AWS::SQS::Queue\n"
    )
    new = json.dumps(
        {
            "Resources": {
                "Model": {"Type": "AWS::SageMaker::Model"},
                "Queue": {"Type": "AWS::SNS::Topic"},
                "Role": {"Type": "AWS::IAM::Role", "Properties": {"Path": {"Ref": "X"}}},
            }
        }
    )

    changes = compare(deployed, new)

    assert changes.removed == (("Topic", "AWS::SNS::Topic"),)
    assert changes.replaced == (("Queue", "AWS::SQS::Queue", "AWS::SNS::Topic"),)
    assert changes.added == (("Role", "AWS::IAM::Role"),)
    assert changes.deletes == ("Topic", "Queue")
    assert compare(new, new).any is False
    broken = compare("Resources: [unclosed", new)
    assert broken.problem.startswith("the deployed template cannot be read")
    assert broken.deletes == ()
