"""What a deployed stack records, and where: ownership in tags that never change, the spec hash
and the run record in parameters, and stacks of earlier versions still read correctly."""

from __future__ import annotations

from controller.core.plan import Action
from controller.core.render import RenderedStack
from controller.core.stacks import (
    LEGACY_HASH_TAG,
    LEGACY_RUN_TAG,
    OWNER_TAG,
    PIPELINE_TAG,
    TYPE_TAG,
    DeployedStack,
    stack_tags,
)
from tests.test_plan import OWNER, plan_of
from tests.test_render import STACKS

BATCH = next(s for s in STACKS if s.pipeline.type == "byom_batch_builtin")
MONITOR = next(s for s in STACKS if s.pipeline.type == "byom_data_quality_monitor")


def _as_applied(stack: RenderedStack, *, run_done: bool) -> DeployedStack:
    """What the controller leaves: its tags and the parameters it sent."""
    assert stack.run is not None and stack.run.gate_parameter
    opened = {stack.run.gate_parameter: "true"} if run_done else {}
    return DeployedStack(
        stack.stack_name,
        f"arn:stack/{stack.stack_name}",
        "UPDATE_COMPLETE",
        tags={t["Key"]: t["Value"] for t in stack_tags(OWNER, stack, run_done=run_done)},
        parameters={
            p["ParameterKey"]: p["ParameterValue"] for p in stack.boto_parameters(**opened)
        },
    )


def test_tags_hold_only_what_never_changes_for_a_stack() -> None:
    for run_done in (False, True):
        tags = {t["Key"]: t["Value"] for t in stack_tags(OWNER, MONITOR, run_done=run_done)}
        assert tags == {
            OWNER_TAG: OWNER,
            TYPE_TAG: "byom_data_quality_monitor",
            PIPELINE_TAG: MONITOR.pipeline.name,
        }


def test_the_spec_hash_and_the_run_are_read_back_from_the_parameters() -> None:
    assert MONITOR.run is not None
    done = _as_applied(MONITOR, run_done=True)
    assert done.spec_hash == MONITOR.spec_hash
    assert done.recorded_run == MONITOR.run.execution_name
    assert done.run_done(MONITOR.run.execution_name)
    pending = _as_applied(MONITOR, run_done=False)
    assert pending.recorded_run == ""
    assert not pending.run_done(MONITOR.run.execution_name)
    assert not pending.run_done("")


def test_a_stack_deployed_by_an_earlier_version_is_recognised() -> None:
    """Before: the hash and the run were tags, the gate held "true". The job is still known
    as done, so the upgrade updates the stack without running the transform again."""
    assert BATCH.run is not None
    legacy = DeployedStack(
        BATCH.stack_name,
        f"arn:stack/{BATCH.stack_name}",
        "UPDATE_COMPLETE",
        tags={
            OWNER_TAG: OWNER,
            TYPE_TAG: BATCH.pipeline.type,
            LEGACY_HASH_TAG: "0" * 64,
            LEGACY_RUN_TAG: BATCH.run.execution_name,
        },
        parameters={**dict(BATCH.parameters), "TransformStarted": "true"},
    )
    assert legacy.spec_hash == "0" * 64
    assert legacy.recorded_run == BATCH.run.execution_name
    assert legacy.run_done(BATCH.run.execution_name)
    (action,) = plan_of([BATCH], [legacy]).actions
    assert action.action is Action.UPDATE
    assert [c.key for c in action.changes] == []


def test_the_parameters_win_over_the_old_tags() -> None:
    assert BATCH.run is not None
    applied = _as_applied(BATCH, run_done=True)
    stale = DeployedStack(
        applied.name,
        applied.stack_id,
        applied.status,
        tags={**applied.tags, LEGACY_HASH_TAG: "0" * 64, LEGACY_RUN_TAG: "old-job"},
        parameters=applied.parameters,
    )
    assert stale.spec_hash == BATCH.spec_hash
    assert stale.recorded_run == BATCH.run.execution_name
    (action,) = plan_of([BATCH], [stale]).actions
    assert action.action is Action.UNCHANGED
