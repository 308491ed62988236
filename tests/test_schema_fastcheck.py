"""The compiled validity check says exactly what jsonschema says, so a valid config skips
jsonschema and an invalid one still gets jsonschema's diagnostics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import config
from controller.core.config import fastcheck, schema
from tests.conftest import ROOT
from tests.test_config_invalid import EXAMPLE_DATA

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _both(data: Any) -> tuple[bool, bool]:
    fast = fastcheck.compile_schema(schema.schema(), schema._compiled)
    return fast(data), schema._validator().is_valid(data)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


def _strings_of(value: Any) -> list[str]:
    return [p for path in _paths(value) if isinstance(p := _get(value, path), str)]


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


EXAMPLE_PATHS = _paths(EXAMPLE_DATA)
EXAMPLE_STRINGS = sorted(set(_strings_of(EXAMPLE_DATA)))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 100_000)
    | st.sampled_from([0.5, 1.0, 30.0, -1.0, 1e9])
    | st.sampled_from(EXAMPLE_STRINGS)
    | st.sampled_from(EXAMPLE_STRINGS).map(lambda s: s + "\n")
    | st.sampled_from(EXAMPLE_STRINGS).map(lambda s: s.upper())
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=4,
)
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "delete", "add"]),
        st.sampled_from(EXAMPLE_PATHS),
        JSON_VALUES,
        st.sampled_from(["pipeline_type", "extra", "endpoint_name", "model_name", "mode"]),
    ),
    min_size=1,
    max_size=3,
)


def _edited(edits: list[tuple[str, tuple[Any, ...], Any, str]]) -> Any:
    data = copy.deepcopy(EXAMPLE_DATA)
    for verb, path, value, key in edits:
        try:
            parent = _get(data, path[:-1]) if path else None
        except (KeyError, IndexError, TypeError):
            continue
        if not path:
            data = value
        elif verb == "replace" and _has(parent, path[-1]):
            parent[path[-1]] = value
        elif verb == "delete" and _has(parent, path[-1]):
            del parent[path[-1]]
        elif verb == "add" and isinstance(target := _get_or_none(parent, path[-1]), dict):
            target[key] = value
    return data


def _has(parent: Any, step: Any) -> bool:
    if isinstance(parent, dict):
        return step in parent
    return isinstance(parent, list) and isinstance(step, int) and step < len(parent)


def _get_or_none(parent: Any, step: Any) -> Any:
    return parent[step] if _has(parent, step) else None


@PROPERTY
@given(EDITS)
def test_the_compiled_check_agrees_with_jsonschema_on_edited_configs(edits):
    fast, full = _both(_edited(edits))
    assert fast == full


STAGED = json.loads((ROOT / "examples" / "mlops-config.stages.json").read_text())
DEV = {
    "name": "dev",
    "account_id": "111111111111",
    "role_arn": "arn:aws:iam::111111111111:role/mlops-controller-stage",
}


SCALING = {"min_instances": 1, "max_instances": 4, "target_invocations_per_instance": 0.5}
CANARY = {
    "instance_count": 2,
    "autoscaling": SCALING,
    "deployment": {"strategy": "canary", "canary_percent": 10, "rollback_alarms": ["a"]},
    "vpc": {"subnet_ids": ["subnet-0a1b2c3d"], "security_group_ids": ["sg-0a1b2c3d"]},
}
"""Rollout keys (docs/rollout.md): uniqueItems and exclusiveMinimum are compiled too."""


def _alarms(names: list[str]) -> dict[str, Any]:
    return {"strategy": "linear", "rollback_alarms": names}


@pytest.mark.parametrize(
    ("edit", "valid"),
    [
        (lambda d: d, True),
        (lambda d: d["pipelines"][0].update(inference_instance="ml.m5.large\n"), False),
        (lambda d: d["pipelines"][0].update(pipeline_type="byom_realtime_bultin"), False),
        (lambda d: d["pipelines"][0].update(surprise=1), False),
        (lambda d: d["pipelines"][0].pop("model_name"), False),
        (lambda d: d["settings"].update(max_deletes=True), False),
        (lambda d: d["settings"].update(max_deletes=3.0), True),
        (lambda d: d["settings"].update(max_deletes=-1), False),
        (lambda d: d.update(pipelines={}), False),
        (lambda d: d.update(extra=[]), False),
        (lambda d: d["settings"].update(stages=[]), False),
        (lambda d: d["settings"].update(stages=[DEV]), True),
        (lambda d: d["settings"].update(stages=STAGED["settings"]["stages"]), True),
        (lambda d: d["pipelines"][0].update(CANARY), True),
        (lambda d: d["pipelines"][0].update(deployment={**CANARY["deployment"], "x": 1}), False),
        (lambda d: d["pipelines"][0].update(deployment=_alarms(["a", "a"])), False),
        (lambda d: d["pipelines"][0].update(deployment=_alarms(["a", "b"])), True),
        (
            lambda d: d["pipelines"][0].update(
                autoscaling={**SCALING, "target_invocations_per_instance": 0}
            ),
            False,
        ),
        (
            lambda d: d["pipelines"][0].update(
                serverless={"memory_size_mb": 2048, "max_concurrency": 5}
            ),
            False,
        ),
    ],
    ids=[
        "example",
        "newline-after-pattern",
        "misspelt-type",
        "unknown-key",
        "missing-key",
        "bool-is-no-number",
        "whole-float-is-integer",
        "below-minimum",
        "pipelines-not-a-list",
        "unknown-top-key",
        "no-stages",
        "one-stage",
        "three-stages",
        "rollout-keys",
        "unknown-deployment-key",
        "repeated-alarm",
        "distinct-alarms",
        "zero-target-is-not-positive",
        "serverless-with-an-instance-type",
    ],
)
def test_the_compiled_check_on_chosen_cases(edit, valid):
    data = copy.deepcopy(EXAMPLE_DATA)
    edit(data)
    assert _both(data) == (valid, valid)


def test_an_invalid_config_gets_jsonschemas_diagnostics():
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"][0]["inference_instance"] = "ml.m5.large\n"
    loaded = config.load(json.dumps(data, indent=1).encode(), "mlops-config.json", environ={})
    assert loaded.config is None
    [problem] = [d for d in loaded.diagnostics if "inference_instance" in d.path]
    assert problem.path == "$.pipelines[0].inference_instance"
    assert problem.line is not None


def test_a_schema_keyword_it_does_not_know_leaves_jsonschema_to_decide():
    with pytest.raises(fastcheck.Unsupported):
        fastcheck.compile_schema({"type": "string", "format": "email"}, schema._compiled)
    with pytest.raises(fastcheck.Unsupported):
        fastcheck.compile_schema({"$ref": "https://elsewhere/schema.json"}, schema._compiled)
