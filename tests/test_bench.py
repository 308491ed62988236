"""The benchmark's generator and its call-count targets at a small N (no timing here).

The emulator fixes the benchmark relies on (tag-only updates apply, Step Functions runs
finish) are applied for these tests only and undone afterwards.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import driver, emulated, generate
from controller.core import config
from controller.core.pipelines import KINDS, Family

WRITES = ("cloudformation.CreateStack", "cloudformation.UpdateStack", "cloudformation.DeleteStack")


def _load(document: dict[str, Any]) -> config.LoadResult:
    return config.load(json.dumps(document).encode(), "mlops-config.json", environ={})


@pytest.mark.parametrize("n", [1, 5, 9, 10, 23])
def test_generated_config_is_valid_with_n_pipelines(n: int) -> None:
    loaded = _load(generate.make_config(n))
    assert loaded.config is not None, [d.format() for d in loaded.diagnostics]
    assert loaded.diagnostics == ()
    assert len(loaded.config.pipelines) == n
    assert len({p.stack_name for p in loaded.config.pipelines}) == n


def test_every_type_appears_and_monitors_watch_their_own_endpoints() -> None:
    loaded = _load(generate.make_config(27))
    assert loaded.config is not None
    pipelines = loaded.config.pipelines
    # The deployment types; training jobs run once per config and are not what scale measures.
    deployed = {k for k, kind in KINDS.items() if kind.family is not Family.TRAINING}
    assert Counter(p.type for p in pipelines) == {kind: 3 for kind in deployed}
    served = {p.endpoint_name for p in pipelines if p.kind.family is Family.REALTIME}
    monitors = [p for p in pipelines if p.kind.family is Family.MONITOR]
    assert monitors and all(m.endpoint_name in served for m in monitors)


def test_change_one_changes_exactly_one_pipeline() -> None:
    document = generate.make_config(12)
    for round_ in range(3):
        changed = generate.change_one(document, round_)
        differing = [
            i
            for i, (a, b) in enumerate(
                zip(document["pipelines"], changed["pipelines"], strict=True)
            )
            if a != b
        ]
        assert differing == ([0] if round_ % 2 == 0 else [])


def _writes(calls: dict[str, int]) -> int:
    return sum(calls.get(op, 0) for op in WRITES)


@pytest.mark.slow
def test_call_count_targets_at_small_n(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for owner, name, value in emulated.patches():
        monkeypatch.setattr(owner, name, value)
    n = 12
    document = generate.make_config(n)
    emulated.seed(aws, document, generate.asset_keys(document))
    path = generate.write(document, tmp_path / "mlops-config.json")

    created = driver.run("apply", path, 4)
    assert created["ok"] and created["actions"] == {"create": n}
    assert created["calls"]["cloudformation.CreateStack"] == n

    plan = driver.run("plan", path, 4)
    assert plan["actions"] == {"unchanged": n}
    assert plan["calls"] == {"cloudformation.DescribeStacks": 1}
    assert sum(plan["calls"].values()) <= math.ceil(n / 100) + 5

    noop = driver.run("apply", path, 4)
    assert noop["actions"] == {"unchanged": n} and _writes(noop["calls"]) == 0

    changed = generate.write(generate.change_one(document, 0), tmp_path / "changed.json")
    change = driver.run("apply", changed, 4)
    assert change["actions"] == {"update": 1, "unchanged": n - 1}
    assert change["calls"].get("cloudformation.UpdateStack") == 1
    assert _writes(change["calls"]) == 1


def test_the_emulators_quicker_parse_reads_every_template_as_moto_does() -> None:
    """The benchmark's emulator parses templates with libyaml; each rendered blueprint (and a
    template with short-form tags) must come out exactly as moto's own parse makes it."""
    from moto.cloudformation.models import Stack

    from controller.core import render

    loaded = _load(generate.make_config(9))
    assert loaded.config is not None
    bodies = {s.template_body for s in render.render_all(loaded.config)}
    bodies.add(
        "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        "      BucketName: !Sub '${AWS::StackName}-x'\n      Tags: [{Key: k, Value: !Ref P}]\n"
    )
    bodies.add(
        json.dumps({"Resources": {"H": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})
    )
    ((owner, name, quicker),) = emulated.parse_patches()
    assert owner is Stack and name == "parse_template"
    assert Stack.parse_template is not quicker.__func__  # moto's own, unpatched here
    for body in bodies:
        assert quicker.__func__(body) == Stack.parse_template(body)
