"""The stages scenario of the benchmark at a small N: a no-op plan over three stages costs one
listing per account and one AssumeRole per stage, and nothing per pipeline (no timing here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import driver, emulated, generate, stages
from controller.core import config


def test_the_staged_config_is_the_same_pipelines_with_one_value_per_stage() -> None:
    single = generate.make_config(10)
    loaded = config.load(json.dumps(stages.staged_config(single)).encode(), "s.json", environ={})
    assert loaded.config is not None, [d.format() for d in loaded.diagnostics]
    assert [s.stage.name for s in loaded.config.stages if s.stage] == ["dev", "staging", "prod"]
    assert len(loaded.config.pipelines) + len(loaded.config.stages[0].pipelines) == 10


@pytest.mark.slow
def test_a_no_op_plan_over_three_stages_costs_a_listing_and_an_assume_role_per_stage(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for owner, name, value in emulated.patches():
        monkeypatch.setattr(owner, name, value)
    single = generate.make_config(12)
    single_path = generate.write(single, tmp_path / "single.json")
    staged_path = generate.write(stages.staged_config(single), tmp_path / "staged.json")
    emulated.seed(aws, single, generate.asset_keys(single))
    assert driver.run("apply", single_path, 4)["ok"]
    one = driver.run("plan", single_path, 4)
    emulated.reset(aws)
    emulated.seed(aws, single, generate.asset_keys(single))
    stages.grant(aws, single)
    created = stages.drive_phase("apply", staged_path)
    assert created["ok"], created["messages"]

    first = stages.drive_phase(
        "plan", generate.write(stages.staged_config(single, 1), tmp_path / "1.json")
    )
    three = stages.drive_phase("plan", staged_path)

    assert one["calls"] == {"cloudformation.DescribeStacks": 1}
    # With one stage of the three, the image builder's pull policy names one account: its
    # update is pending, and the pre-flight reads its zip once.
    assert first["calls"] == {
        "cloudformation.DescribeStacks": 2,
        "sts.AssumeRole": 1,
        "s3.HeadObject": 1,
    }
    assert set(first["actions"]["orchestrator"]) == {"update"}
    assert three["calls"] == {"cloudformation.DescribeStacks": 4, "sts.AssumeRole": 3}
    assert three["pipelines"] == {"orchestrator": 1, "dev": 11, "staging": 11, "prod": 11}
    assert all(set(actions) == {"unchanged"} for actions in three["actions"].values())
