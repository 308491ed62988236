"""Configs users already write load, and come out normalized the way the rest relies on."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from controller.core import config
from controller.core.config import Config, S3Location
from tests.conftest import EXAMPLE

EXAMPLE_DATA: dict[str, Any] = json.loads(EXAMPLE.read_text())
SETTINGS_ENV = {"MLOPS_ASSETS_BUCKET": "assets-bucket", "MLOPS_REGION": "us-east-1"}
REGISTRY_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"
KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def load_ok(data: Any, environ: dict[str, str] | None = None) -> Config:
    result = config.load(
        json.dumps(data, indent=2).encode(), "mlops-config.json", environ=environ or {}
    )
    assert result.errors == (), "\n".join(d.format() for d in result.errors)
    assert result.config is not None
    return result.config


def with_pipeline(pipeline: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"settings": {**EXAMPLE_DATA["settings"], **settings}, "pipelines": [pipeline]}


def test_the_example_loads_with_every_pipeline_type_and_original_stack_names() -> None:
    loaded = load_ok(EXAMPLE_DATA)

    assert [p.stack_name for p in loaded.pipelines] == [
        "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin",
        "mlops-pipeline-linearlearner-byompipelinebatchbuiltin",
        "mlops-pipeline-churn-byompipelineimagebuilder",
        "mlops-pipeline-churnxgb-byompipelinerealtimecustom",
        "mlops-pipeline-churnxgb-byompipelinebatchcustom",
        "mlops-pipeline-churnxgb-byomdataqualitymonitor",
        "mlops-pipeline-churnxgb-byommodelqualitymonitor",
        "mlops-pipeline-churnxgb-byommodelbiasmonitor",
        "mlops-pipeline-churnxgb-byommodelexplainabilitymonitor",
    ]
    assert [p.index for p in loaded.pipelines] == list(range(9))
    assert loaded.settings.assets_bucket == "mlops-assets-example"
    assert loaded.settings.max_deletes == 5
    assert loaded.warnings == ()
    assert len({p.stack_name for p in loaded.pipelines}) == len(loaded.pipelines)


@pytest.mark.parametrize(
    "pipeline",
    EXAMPLE_DATA["pipelines"],
    ids=[p["pipeline_type"] for p in EXAMPLE_DATA["pipelines"]],
)
def test_each_pipeline_alone_in_the_originals_request_format_loads(
    pipeline: dict[str, Any],
) -> None:
    result = config.load(json.dumps(pipeline, indent=2).encode(), "one.json", environ=SETTINGS_ENV)

    assert result.errors == ()
    assert result.config is not None
    (loaded,) = result.config.pipelines
    assert loaded.type == pipeline["pipeline_type"]
    infix = pipeline.get("model_name") or pipeline["image_tag"]
    assert loaded.stack_name == f"mlops-pipeline-{infix}-{loaded.kind.postfix}"
    assert result.config.settings.assets_bucket == "assets-bucket"


def test_a_lone_monitor_warns_that_its_endpoint_must_already_exist() -> None:
    monitor = EXAMPLE_DATA["pipelines"][5]

    result = config.load(json.dumps(monitor).encode(), "one.json", environ=SETTINGS_ENV)

    assert result.config is not None
    assert [(d.code, d.path) for d in result.diagnostics] == [("W101", "$.endpoint_name")]


def test_stack_names_follow_the_originals_examples() -> None:
    realtime = {
        "pipeline_type": "byom_realtime_builtin",
        "model_name": "TestModel",
        "model_framework": "xgboost",
        "model_framework_version": "1.7-1",
        "model_artifact_location": "model.tar.gz",
        "inference_instance": "ml.m5.large",
        "data_capture_location": "bucket-a/capture",
    }
    builder = {
        "pipeline_type": "byom_image_builder",
        "custom_algorithm_docker": "tree.zip",
        "ecr_repo_name": "tree",
        "image_tag": "Tree",
    }
    loaded = load_ok({"settings": EXAMPLE_DATA["settings"], "pipelines": [realtime, builder]})

    assert [p.stack_name for p in loaded.pipelines] == [
        "mlops-pipeline-testmodel-byompipelinerealtimebuiltin",
        "mlops-pipeline-tree-byompipelineimagebuilder",
    ]
    assert [p.name for p in loaded.pipelines] == ["TestModel", "Tree"]


def test_stack_prefix_setting_replaces_the_default_prefix() -> None:
    loaded = load_ok(with_pipeline(EXAMPLE_DATA["pipelines"][2], stack_prefix="team-a"))

    assert loaded.pipelines[0].stack_name == "team-a-churn-byompipelineimagebuilder"


@pytest.mark.parametrize(
    "index", [0, 1, 3, 4], ids=lambda i: EXAMPLE_DATA["pipelines"][i]["pipeline_type"]
)
def test_model_registry_variant_replaces_framework_image_and_artifact(index: int) -> None:
    pipeline = copy.deepcopy(EXAMPLE_DATA["pipelines"][index])
    for key in ("model_framework", "model_framework_version", "custom_image_uri"):
        pipeline.pop(key, None)
    del pipeline["model_artifact_location"]
    pipeline["model_package_name"] = REGISTRY_ARN

    loaded = load_ok(with_pipeline(pipeline)).pipelines[0]

    assert loaded.get("model_package_name") == REGISTRY_ARN
    assert "model_artifact_location" not in loaded.values


def test_kms_key_is_accepted_on_inference_and_monitor_pipelines() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    for pipeline in data["pipelines"]:
        if pipeline["pipeline_type"] != "byom_image_builder":
            pipeline["kms_key_arn"] = KMS_ARN

    loaded = load_ok(data)

    assert {p.get("kms_key_arn") for p in loaded.pipelines} == {KMS_ARN, None}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("data-bucket/capture/churn", S3Location("data-bucket", "capture/churn")),
        ("s3://data-bucket/capture/churn", S3Location("data-bucket", "capture/churn")),
        ("data-bucket/capture/churn/", S3Location("data-bucket", "capture/churn")),
        ("s3://data-bucket/capture/churn/", S3Location("data-bucket", "capture/churn")),
        ("data-bucket", S3Location("data-bucket", "")),
    ],
)
def test_location_forms_normalize_to_the_same_s3_location(
    written: str, expected: S3Location
) -> None:
    pipeline = {**EXAMPLE_DATA["pipelines"][0], "data_capture_location": written}

    location = load_ok(with_pipeline(pipeline)).pipelines[0].get("data_capture_location")

    assert location == expected
    assert location.uri == f"s3://{expected.bucket}/{expected.key}".rstrip("/")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("churn/model.tar.gz", S3Location("mlops-assets-example", "churn/model.tar.gz")),
        (
            "s3://mlops-assets-example/churn/model.tar.gz",
            S3Location("mlops-assets-example", "churn/model.tar.gz"),
        ),
        (
            "s3://models-elsewhere/churn/model.tar.gz",
            S3Location("models-elsewhere", "churn/model.tar.gz"),
        ),
    ],
)
def test_asset_keys_are_in_the_assets_bucket_unless_given_as_s3_uri(
    written: str, expected: S3Location
) -> None:
    pipeline = {**EXAMPLE_DATA["pipelines"][0], "model_artifact_location": written}

    assert load_ok(with_pipeline(pipeline)).pipelines[0].get("model_artifact_location") == expected


def test_assets_bucket_from_the_environment_locates_asset_keys() -> None:
    pipeline = EXAMPLE_DATA["pipelines"][2]

    loaded = load_ok(pipeline, environ=SETTINGS_ENV).pipelines[0]

    assert loaded.get("custom_algorithm_docker") == S3Location(
        "assets-bucket", "churn/xgboost-container.zip"
    )


def test_shap_baseline_key_becomes_a_uri_in_the_assets_bucket() -> None:
    loaded = load_ok(EXAMPLE_DATA).pipelines[8]

    assert (
        loaded.get("shap_config")["baseline"]
        == "s3://mlops-assets-example/churn/baseline/shap-baseline.csv"
    )
    assert loaded.get("shap_config")["num_samples"] == 500


def test_digit_strings_are_accepted_for_integer_keys_and_become_numbers() -> None:
    monitor = {
        **EXAMPLE_DATA["pipelines"][5],
        "instance_volume_size": "20",
        "monitor_max_runtime_seconds": "86400",
        "baseline_max_runtime_seconds": 1,
    }

    loaded = load_ok(with_pipeline(monitor)).pipelines[0]

    assert loaded.get("instance_volume_size") == 20
    assert loaded.get("monitor_max_runtime_seconds") == 86400
    assert loaded.get("baseline_max_runtime_seconds") == 1


def test_probability_threshold_written_as_text_becomes_a_number() -> None:
    monitor = {**EXAMPLE_DATA["pipelines"][6], "probability_threshold_attribute": "0.75"}

    assert (
        load_ok(with_pipeline(monitor)).pipelines[0].get("probability_threshold_attribute") == 0.75
    )


def test_endpoint_names_are_lower_cased_and_matched_case_insensitively() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"][3]["endpoint_name"] = "Churn-Endpoint"
    data["pipelines"][5]["endpoint_name"] = "CHURN-endpoint"

    loaded = load_ok(data)

    assert loaded.pipelines[3].endpoint_name == "churn-endpoint"
    assert loaded.pipelines[5].endpoint_name == "churn-endpoint"
    assert loaded.warnings == ()


def test_realtime_endpoint_name_is_optional() -> None:
    pipeline = {k: v for k, v in EXAMPLE_DATA["pipelines"][0].items() if k != "endpoint_name"}

    assert load_ok(with_pipeline(pipeline)).pipelines[0].endpoint_name is None


@pytest.mark.parametrize("problem_type", ["Regression", "MulticlassClassification"])
def test_problem_types_that_need_an_inference_attribute_load_with_it(problem_type: str) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    for index in (6, 7, 8):
        data["pipelines"][index]["problem_type"] = problem_type
        data["pipelines"][index]["monitor_inference_attribute"] = "prediction"

    loaded = load_ok(data)

    assert {p.get("problem_type") for p in loaded.pipelines[6:]} == {problem_type}


def test_regression_bias_monitor_needs_no_predicted_label_config() -> None:
    bias = {
        k: v for k, v in EXAMPLE_DATA["pipelines"][7].items() if k != "model_predicted_label_config"
    }
    bias |= {"problem_type": "Regression", "monitor_inference_attribute": "prediction"}

    load_ok(with_pipeline(bias))


def test_schema_reference_empty_pipelines_and_byte_order_mark_are_accepted() -> None:
    data = {
        "$schema": "./mlops-config.schema.json",
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [],
    }
    raw = b"\xef\xbb\xbf" + json.dumps(data).encode()

    result = config.load(raw, "mlops-config.json", environ={})

    assert result.config is not None
    assert result.config.pipelines == ()


def test_revision_and_source_are_recorded() -> None:
    result = config.load(
        EXAMPLE.read_bytes(), "mlops-config.json@abc", revision="abc123", environ={}
    )

    assert result.config is not None
    assert (result.config.source, result.config.revision) == ("mlops-config.json@abc", "abc123")


@pytest.mark.parametrize(
    "region", ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"]
)
def test_the_example_is_valid_in_every_region_with_known_images(region: str) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["settings"]["region"] = region

    assert load_ok(data).settings.region == region
