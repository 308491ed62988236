"""`settings.stages` and per-stage values: the original's multi-account request bodies load
unchanged, every rule runs per stage, and every problem points at the stage's own value."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from controller.core import config
from controller.core.config import schema, stages
from controller.core.diagnostics import Diagnostic
from tests.conftest import ROOT

STAGED = ROOT / "examples" / "mlops-config.stages.json"
STAGED_DATA: dict[str, Any] = json.loads(STAGED.read_text())
EXAMPLE_DATA: dict[str, Any] = json.loads((ROOT / "examples" / "mlops-config.json").read_text())
REALTIME, BATCH, BUILDER, CUSTOM, MONITOR = range(5)
THREE = {"dev": "ml.m5.large", "staging": "ml.m5.large", "prod": "ml.m5.xlarge"}


def load(data: Any) -> config.LoadResult:
    return config.load(json.dumps(data, indent=2).encode(), "mlops-config.json", environ={})


def staged(**changes: Any) -> dict[str, Any]:
    """The staged example with keys of its realtime pipeline changed."""
    data = copy.deepcopy(STAGED_DATA)
    data["pipelines"][REALTIME].update(changes)
    return data


def line_of(data: Any, marker: str) -> int:
    text = json.dumps(data, indent=2)
    assert text.count(marker) == 1, marker
    return text[: text.index(marker)].count("\n") + 1


def only(result: config.LoadResult) -> Diagnostic:
    assert result.config is None
    assert len(result.diagnostics) == 1, [d.format() for d in result.diagnostics]
    return result.diagnostics[0]


# Valid staged configs


def test_the_originals_multi_account_bodies_load_one_config_per_stage() -> None:
    loaded = load(STAGED_DATA)

    assert loaded.diagnostics == ()
    top = loaded.config
    assert top is not None
    assert [s.stage.name for s in top.stages if s.stage] == ["dev", "staging", "prod"]
    assert [(s.stage.account_id, s.stage.manual) for s in top.stages if s.stage] == [
        ("111111111111", False),
        ("222222222222", True),
        ("333333333333", True),
    ]
    realtime = [s.pipelines[0] for s in top.stages]
    assert [p.get("inference_instance") for p in realtime] == [
        "ml.t2.medium",
        "ml.m5.large",
        "ml.m5.xlarge",
    ]
    assert [p.endpoint_name for p in realtime] == [
        "linearlearner-dev",
        "linearlearner-staging",
        "linearlearner-prod",
    ]
    assert realtime[2].get("data_capture_location").bucket == "mlops-data-prod-example"
    assert all(s.settings.region == "us-east-1" for s in top.stages)
    assert top.stages[1].source == "mlops-config.json (stage staging)"


def test_image_builders_run_once_in_the_orchestrator_account_everything_else_per_stage() -> None:
    top = load(STAGED_DATA).config
    assert top is not None
    assert [p.type for p in top.pipelines] == ["byom_image_builder"]
    assert top.stage is None
    for stage_config in top.stages:
        assert "byom_image_builder" not in {p.type for p in stage_config.pipelines}
        assert [p.index for p in stage_config.pipelines] == [0, 1, 3, 4]


def test_a_stage_region_defaults_to_the_settings_region() -> None:
    top = load(STAGED_DATA).config
    assert top is not None
    assert [s.settings.region for s in top.stages] == ["us-east-1"] * 3
    assert top.settings.region == "us-east-1"


def test_a_stage_in_another_region_than_the_assets_is_refused() -> None:
    """SageMaker reads a model's artifacts and images in the model's region: rendered with
    the orchestrator region's bucket and image URIs, every stack of that stage would fail."""
    data = copy.deepcopy(STAGED_DATA)
    data["settings"]["stages"][2]["region"] = "eu-west-1"
    loaded = load(data)
    assert loaded.config is None
    found = {(d.code, d.path) for d in loaded.diagnostics if d.is_error}
    assert found == {("C209", "$.settings.stages[2].region")}
    (problem,) = [d for d in loaded.diagnostics if d.code == "C209"]
    assert "'eu-west-1' is not settings.region 'us-east-1'" in problem.message


@pytest.mark.parametrize(
    ("region", "role", "message"),
    [
        ("us-east-1", "arn:aws-cn:iam::333333333333:role/r", "not in the stage's region's ('aws')"),
        ("us-east-1", "arn:aws-moon:iam::333333333333:role/r", "which AWS has not"),
        (
            "cn-north-1",
            "arn:aws:iam::333333333333:role/r",
            "not in the stage's region's ('aws-cn')",
        ),
    ],
    ids=["china-role-in-aws", "made-up", "aws-role-in-china"],
)
def test_a_role_of_another_or_no_partition_is_refused(region: str, role: str, message: str) -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["settings"]["region"] = region
    home = "aws-cn" if region.startswith("cn-") else "aws"
    for stage in data["settings"]["stages"]:
        stage["role_arn"] = stage["role_arn"].replace("arn:aws:", f"arn:{home}:")
    data["settings"]["stages"][2]["role_arn"] = role
    found = {d.path: d for d in load(data).diagnostics if d.code == "C208"}
    assert list(found) == ["$.settings.stages[2].role_arn"]
    assert message in found["$.settings.stages[2].role_arn"].message


def test_a_config_without_stages_is_todays_single_account_config() -> None:
    loaded = load(EXAMPLE_DATA)
    assert loaded.config is not None
    assert loaded.config.stages == ()
    assert len(loaded.config.pipelines) == 9


def test_a_per_stage_object_without_stages_keeps_todays_error() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"][0]["inference_instance"] = THREE
    problem = only(load(data))
    assert (problem.code, problem.path) == ("S103", "$.pipelines[0].inference_instance")
    assert "per-stage values (the original's multi-account mode)" in problem.message


def test_values_are_normalized_per_stage() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["pipelines"][MONITOR]["instance_volume_size"] = {"dev": "20", "staging": 30, "prod": "40"}
    top = load(data).config
    assert top is not None
    assert [s.pipelines[3].get("instance_volume_size") for s in top.stages] == [20, 30, 40]


# Keys whose value is itself an object


def bias_data(bias_config: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["settings"]["stages"] = copy.deepcopy(STAGED_DATA["settings"]["stages"])[:2]
    data["pipelines"][7]["bias_config"] = bias_config
    return data


def test_an_object_value_without_stage_names_is_one_value_for_every_stage() -> None:
    plain = {"label_values_or_threshold": [1], "facet_name": "dev"}
    top = load(bias_data(plain)).config
    assert top is not None
    assert [s.pipelines[6].get("bias_config") for s in top.stages] == [plain, plain]


def test_an_object_value_keyed_by_every_stage_is_per_stage() -> None:
    dev = {"label_values_or_threshold": [1], "facet_name": "age"}
    staging = {"label_values_or_threshold": [0], "facet_name": "income"}
    top = load(bias_data({"dev": dev, "staging": staging})).config
    assert top is not None
    assert [s.pipelines[6].get("bias_config") for s in top.stages] == [dev, staging]


def test_an_object_value_mixing_stage_names_and_other_keys_is_ambiguous() -> None:
    data = bias_data({"dev": {"facet_name": "a"}, "stagign": {"facet_name": "b"}})
    problem = only(load(data))
    assert (problem.code, problem.path) == ("C203", "$.pipelines[7].bias_config")
    assert "mixes stage names (dev) with other keys (stagign)" in problem.message
    assert "did you mean 'staging' instead of 'stagign'?" in problem.message
    assert problem.line == line_of(data, '"bias_config"')


def test_an_object_value_keyed_by_some_stages_only_misses_the_others() -> None:
    problem = only(load(bias_data({"dev": {"facet_name": "a"}})))
    assert (problem.code, problem.path) == ("C202", "$.pipelines[7].bias_config")
    assert problem.message == "no value for stage staging"


def test_the_object_valued_keys_are_the_schemas() -> None:
    defs = schema.schema()["$defs"]

    def is_object(prop: dict[str, Any]) -> bool:
        ref = str(prop.get("$ref", ""))
        target = defs.get(ref.rsplit("/", 1)[-1], {}) if ref else prop
        return ref == "#/$defs/object" or target.get("type") == "object"

    def object_keys(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for key, prop in node.get("properties", {}).items():
                if isinstance(prop, dict) and is_object(prop):
                    found.add(key)
            for value in node.values():
                found |= object_keys(value)
        elif isinstance(node, list):
            for value in node:
                found |= object_keys(value)
        return found

    pipelines = {k: v for k, v in defs.items() if k.startswith(("byom_", "model_"))}
    assert object_keys(pipelines) == stages.OBJECT_VALUED


# Problems in per-stage values


def test_a_bad_stage_value_points_at_that_stage_and_its_line() -> None:
    data = staged(inference_instance={"dev": "ml.m5.large", "staging": "m5", "prod": "ml.m5.large"})
    problem = only(load(data))
    assert (problem.code, problem.path) == ("S106", "$.pipelines[0].inference_instance.staging")
    assert problem.line == line_of(data, '"m5"')


def test_an_unknown_stage_is_an_error_at_its_key_with_a_suggestion() -> None:
    data = staged(inference_instance={"dev": "ml.m5.large", "staging": "ml.m5.large", "prd": "x"})
    found = {d.path: d for d in load(data).diagnostics}
    unknown = found["$.pipelines[0].inference_instance.prd"]
    assert unknown.code == "C201"
    assert unknown.message == "unknown stage 'prd'; did you mean 'prod'?"
    assert unknown.line == line_of(data, '"prd"')
    missing = found["$.pipelines[0].inference_instance"]
    assert (missing.code, missing.message) == ("C202", "no value for stage prod")
    assert len(found) == 2


def test_a_missing_stage_of_a_required_key_is_reported_once() -> None:
    problem = only(load(staged(model_framework_version={"dev": "1", "staging": "1"})))
    assert (problem.code, problem.path) == ("C202", "$.pipelines[0].model_framework_version")
    assert "expected one value for each stage" in problem.format()


def test_any_object_for_a_plain_key_is_read_as_per_stage_values() -> None:
    found = {d.path: d.code for d in load(staged(inference_instance={"qa": "x"})).diagnostics}
    assert found == {
        "$.pipelines[0].inference_instance.qa": "C201",
        "$.pipelines[0].inference_instance": "C202",
    }


def test_a_stage_name_that_is_not_an_identifier_is_quoted_in_the_path() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["settings"]["stages"][1]["name"] = "pre-prod"
    for pipeline in data["pipelines"]:
        for value in pipeline.values():
            if isinstance(value, dict) and "staging" in value:
                value["pre-prod"] = value.pop("staging")
    data["pipelines"][REALTIME]["inference_instance"]["pre-prod"] = "m5"
    problem = only(load(data))
    assert problem.path == '$.pipelines[0].inference_instance["pre-prod"]'


def test_image_builders_and_pipeline_types_have_no_per_stage_values() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["pipelines"][BUILDER]["image_tag"] = {"dev": "a", "staging": "b", "prod": "c"}
    data["pipelines"][REALTIME]["pipeline_type"] = dict.fromkeys(
        ("dev", "staging", "prod"), "byom_realtime_builtin"
    )
    found = {d.path: d for d in load(data).diagnostics}
    assert set(found) == {"$.pipelines[2].image_tag", "$.pipelines[0].pipeline_type"}
    assert "runs once, in the orchestrator account" in found["$.pipelines[2].image_tag"].message
    assert found["$.pipelines[0].pipeline_type"].message == "pipeline_type cannot differ per stage"


# Every rule per stage


def test_endpoint_names_must_be_unique_in_each_stage() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["pipelines"][CUSTOM]["endpoint_name"]["prod"] = "linearlearner-prod"
    found = [d for d in load(data).diagnostics if d.is_error]
    assert [(d.code, d.path) for d in found] == [("C105", "$.pipelines[3].endpoint_name.prod")]
    assert found[0].line == 1 + line_of(data, '"churn-staging",\n        "prod": "linearlearner')


def test_images_are_checked_in_the_stages_region() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["settings"]["region"] = "ap-nowhere-9"
    found = load(data).diagnostics
    assert {d.code for d in found if d.is_error} == {"C104"}
    assert all("'ap-nowhere-9'" in d.message for d in found if d.code == "C104")


def test_a_monitor_warning_names_the_stage_whose_endpoint_is_missing() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["pipelines"][MONITOR]["endpoint_name"]["prod"] = "elsewhere"
    loaded = load(data)
    assert loaded.config is not None
    assert [(d.code, d.path) for d in loaded.diagnostics] == [
        ("W101", "$.pipelines[4].endpoint_name.prod")
    ]


def test_one_problem_in_a_shared_value_is_reported_once_not_once_per_stage() -> None:
    problem = only(load(staged(model_artifact_location=" bad key")))
    assert problem.path == "$.pipelines[0].model_artifact_location"


# The stages themselves


def stage_problems(*changes: tuple[int, str, Any]) -> dict[str, Diagnostic]:
    data = copy.deepcopy(STAGED_DATA)
    for index, key, value in changes:
        data["settings"]["stages"][index][key] = value
    return {d.path: d for d in load(data).diagnostics}


@pytest.mark.parametrize(
    ("change", "path", "code", "message"),
    [
        ((1, "account_id", "1234"), "$.settings.stages[1].account_id", "S106", "is not valid"),
        ((1, "approval", "auto"), "$.settings.stages[1].approval", "S104", "is not allowed"),
        ((1, "acount_id", "1"), "$.settings.stages[1].acount_id", "S102", "did you mean"),
        ((0, "name", "Dev!"), "$.settings.stages[0].name", "S106", "is not valid"),
        (
            (2, "role_arn", "arn:aws:iam::999999999999:role/x"),
            "$.settings.stages[2].role_arn",
            "C206",
            "role is in account 999999999999, not in the stage's account 333333333333",
        ),
        (
            (2, "account_id", "111111111111"),
            "$.settings.stages[2].account_id",
            "C207",
            "the same account and region as $.settings.stages[0]",
        ),
    ],
    ids=["account-id", "approval", "unknown-key", "name", "role-account", "same-account"],
)
def test_a_bad_stage_is_an_error_at_its_path(
    change: tuple[int, str, Any], path: str, code: str, message: str
) -> None:
    found = stage_problems(change)
    assert path in found, list(found)
    assert found[path].code == code
    assert message in found[path].message


def test_stages_in_one_account_in_different_regions_are_refused_for_the_region() -> None:
    found = stage_problems((2, "account_id", "111111111111"), (2, "region", "us-west-2"))
    assert "$.settings.stages[2].account_id" not in found
    assert found["$.settings.stages[2].region"].code == "C209"


def test_duplicate_and_reserved_stage_names_are_refused() -> None:
    data = copy.deepcopy(STAGED_DATA)
    data["settings"]["stages"][2]["name"] = "dev"
    data["settings"]["stages"].append(
        {
            "name": "orchestrator",
            "account_id": "444444444444",
            "role_arn": "arn:aws:iam::444444444444:role/r",
        }
    )
    found = {d.path: d for d in load(data).diagnostics if d.path.startswith("$.settings")}
    assert found["$.settings.stages[2].name"].message == (
        "stage 'dev' is already defined by $.settings.stages[0]"
    )
    assert "orchestrator account's own step" in found["$.settings.stages[3].name"].message


def test_an_empty_stage_list_is_an_error() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["settings"]["stages"] = []
    problem = only(load(data))
    assert problem.path == "$.settings.stages"
