"""Every way a config can be wrong: the exact JSON path, the line and the words a user sees."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.core import config
from controller.core.diagnostics import Diagnostic
from tests.conftest import EXAMPLE

DELETE = object()
EXAMPLE_DATA: dict[str, Any] = json.loads(EXAMPLE.read_text())
SETTINGS = EXAMPLE_DATA["settings"]
REGISTRY_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"

# Indexes into the example's pipeline list.
REALTIME_BUILTIN, BATCH_BUILTIN, IMAGE_BUILDER, REALTIME_CUSTOM, BATCH_CUSTOM = range(5)
DATA_QUALITY, MODEL_QUALITY, MODEL_BIAS, EXPLAINABILITY = range(5, 9)


def mutate(index: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_DATA)
    pipeline = data["pipelines"][index]
    for key, value in changes.items():
        if value is DELETE:
            del pipeline[key]
        else:
            pipeline[key] = value
    return data


def with_settings(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["settings"].update(changes)
    return data


def appended(pipeline: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"].append(pipeline)
    return data


@dataclass
class Case:
    id: str
    data: Any = None
    path: str = "$"
    message: str = ""
    marker: str | None = None
    """A text unique in the file whose line the error must name; `line` says it directly."""
    line: int | str | None = "any"
    raw: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    code: str | None = None

    def text(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.data, indent=2).encode()


def pipeline_start(index: int) -> str:
    """Marker for the line a pipeline object opens on (where missing keys are reported)."""
    return f"@pipeline{index}"


CASES = [
    # Keys that do not belong.
    Case(
        "unknown-key-did-you-mean",
        mutate(REALTIME_BUILTIN, inference_instanse="ml.m5.large"),
        "$.pipelines[0].inference_instanse",
        "did you mean 'inference_instance'?",
        marker='"inference_instanse"',
        code="S102",
    ),
    # A key of another of the original's types is warning W202 (tests/test_original_bodies.py);
    # one the original read for this type too but the controller does not is an error.
    Case(
        "key-this-type-does-not-use",
        mutate(MODEL_BIAS, probability_threshold_attribute=0.25),
        "$.pipelines[7].probability_threshold_attribute",
        "key 'probability_threshold_attribute' is not used by byom_model_bias_monitor",
        marker='"probability_threshold_attribute": 0.25',
        code="S102",
    ),
    Case(
        "unknown-top-level-key",
        {"settings": SETTINGS, "pipeline": []},
        "$.pipeline",
        "did you mean 'pipelines'?",
        marker='"pipeline"',
    ),
    Case(
        "unknown-setting",
        with_settings(asset_bucket="b"),
        "$.settings.asset_bucket",
        "did you mean 'assets_bucket'?",
        marker='"asset_bucket"',
    ),
    # Missing keys, per pipeline type.
    Case(
        "missing-framework-builtin",
        mutate(REALTIME_BUILTIN, model_framework=DELETE),
        "$.pipelines[0].model_framework",
        "missing required key for byom_realtime_builtin",
        marker=pipeline_start(0),
        code="S101",
    ),
    Case(
        "missing-capture-realtime",
        mutate(REALTIME_CUSTOM, data_capture_location=DELETE),
        "$.pipelines[3].data_capture_location",
        "missing required key for byom_realtime_custom",
        marker=pipeline_start(3),
    ),
    Case(
        "missing-image-custom",
        mutate(BATCH_CUSTOM, custom_image_uri=DELETE),
        "$.pipelines[4].custom_image_uri",
        "missing required key for byom_batch_custom",
        marker=pipeline_start(4),
    ),
    Case(
        "missing-batch-input",
        mutate(BATCH_BUILTIN, batch_inference_data=DELETE),
        "$.pipelines[1].batch_inference_data",
        "missing required key for byom_batch_builtin",
        marker=pipeline_start(1),
    ),
    Case(
        "missing-ecr-repo",
        mutate(IMAGE_BUILDER, ecr_repo_name=DELETE),
        "$.pipelines[2].ecr_repo_name",
        "missing required key for byom_image_builder",
        marker=pipeline_start(2),
    ),
    Case(
        "missing-schedule-monitor",
        mutate(DATA_QUALITY, schedule_expression=DELETE),
        "$.pipelines[5].schedule_expression",
        "missing required key for byom_data_quality_monitor",
        marker=pipeline_start(5),
    ),
    Case(
        "missing-bias-config",
        mutate(MODEL_BIAS, bias_config=DELETE),
        "$.pipelines[7].bias_config",
        "missing required key for byom_model_bias_monitor",
        marker=pipeline_start(7),
    ),
    Case(
        "missing-shap-config",
        mutate(EXPLAINABILITY, shap_config=DELETE),
        "$.pipelines[8].shap_config",
        "missing required key for byom_model_explainability_monitor",
        marker=pipeline_start(8),
    ),
    Case(
        "missing-pipeline-type",
        appended({"model_name": "x"}),
        "$.pipelines[9].pipeline_type",
        "missing required key",
        marker=pipeline_start(9),
    ),
    # Missing keys, per problem_type.
    Case(
        "quality-regression-needs-inference-attribute",
        mutate(MODEL_QUALITY, problem_type="Regression"),
        "$.pipelines[6].monitor_inference_attribute",
        "missing required key for byom_model_quality_monitor",
        marker=pipeline_start(6),
    ),
    Case(
        "quality-multiclass-needs-inference-attribute",
        mutate(MODEL_QUALITY, problem_type="MulticlassClassification"),
        "$.pipelines[6].monitor_inference_attribute",
        "missing required key",
    ),
    Case(
        "quality-binary-needs-probability-attribute",
        mutate(MODEL_QUALITY, baseline_probability_attribute=DELETE),
        "$.pipelines[6].baseline_probability_attribute",
        "missing required key for byom_model_quality_monitor",
    ),
    Case(
        "bias-binary-needs-predicted-label-config",
        mutate(MODEL_BIAS, model_predicted_label_config=DELETE),
        "$.pipelines[7].model_predicted_label_config",
        "missing required key for byom_model_bias_monitor",
    ),
    Case(
        "bias-multiclass-needs-predicted-label-config",
        mutate(
            MODEL_BIAS,
            problem_type="MulticlassClassification",
            monitor_inference_attribute="prediction",
            model_predicted_label_config=DELETE,
        ),
        "$.pipelines[7].model_predicted_label_config",
        "missing required key",
    ),
    Case(
        "explainability-regression-needs-inference-attribute",
        mutate(EXPLAINABILITY, problem_type="Regression"),
        "$.pipelines[8].monitor_inference_attribute",
        "missing required key",
    ),
    Case(
        "unknown-problem-type",
        mutate(MODEL_QUALITY, problem_type="Clustering"),
        "$.pipelines[6].problem_type",
        '"Clustering" is not allowed',
        marker='"Clustering"',
        code="S104",
    ),
    # A model registry replaces the framework, image and artifact keys.
    Case(
        "registry-with-framework",
        mutate(REALTIME_BUILTIN, model_package_name=REGISTRY_ARN),
        "$.pipelines[0].model_framework",
        "not allowed together with model_package_name",
        marker=pipeline_start(0) + "+3",
        code="S105",
    ),
    Case(
        "registry-with-custom-image",
        mutate(REALTIME_CUSTOM, model_package_name=REGISTRY_ARN),
        "$.pipelines[3].custom_image_uri",
        "not allowed together with model_package_name",
        marker=pipeline_start(3) + "+3",
    ),
    # Wrong JSON types.
    Case(
        "number-for-string",
        mutate(REALTIME_BUILTIN, model_name=5),
        "$.pipelines[0].model_name",
        "is a number",
        marker='"model_name": 5',
        code="S103",
    ),
    Case(
        "string-for-object",
        mutate(MODEL_BIAS, bias_config="facet=age"),
        "$.pipelines[7].bias_config",
        "is a string",
        marker="facet=age",
        code="S103",
    ),
    Case(
        "list-for-string",
        mutate(DATA_QUALITY, instance_type=["ml.m5.large"]),
        "$.pipelines[5].instance_type",
        "is a list",
        marker='"instance_type": [',
    ),
    Case(
        "null-for-string",
        mutate(REALTIME_BUILTIN, endpoint_name=None),
        "$.pipelines[0].endpoint_name",
        "is null",
        marker='"endpoint_name": null',
    ),
    Case(
        "per-stage-values",
        mutate(REALTIME_BUILTIN, model_name={"dev": "a", "prod": "b"}),
        "$.pipelines[0].model_name",
        "per-stage values",
    ),
    # Bad formats.
    Case(
        "instance-type",
        mutate(REALTIME_BUILTIN, inference_instance="m5.large"),
        "$.pipelines[0].inference_instance",
        '"m5.large" is not valid',
        marker='"m5.large"',
        code="S106",
    ),
    Case(
        "s3-location-with-space",
        mutate(REALTIME_BUILTIN, data_capture_location="my bucket/capture"),
        "$.pipelines[0].data_capture_location",
        "is not valid",
        marker="my bucket/capture",
    ),
    Case(
        "s3-location-uppercase-bucket",
        mutate(BATCH_BUILTIN, batch_job_output_location="s3://MyBucket/out"),
        "$.pipelines[1].batch_job_output_location",
        "is not valid",
        marker="s3://MyBucket/out",
    ),
    Case(
        "s3-object-without-key",
        mutate(BATCH_BUILTIN, batch_inference_data="mlops-data-example"),
        "$.pipelines[1].batch_inference_data",
        "is not valid",
    ),
    Case(
        "asset-s3-uri-with-bad-bucket",
        mutate(REALTIME_BUILTIN, model_artifact_location="s3://Bad_Bucket/model.tar.gz"),
        "$.pipelines[0].model_artifact_location",
        "is not valid",
        marker="s3://Bad_Bucket/model.tar.gz",
    ),
    Case(
        "image-builder-not-a-zip",
        mutate(IMAGE_BUILDER, custom_algorithm_docker="churn/container.tar"),
        "$.pipelines[2].custom_algorithm_docker",
        "is not valid",
        marker="churn/container.tar",
    ),
    Case(
        "ecr-image-uri",
        mutate(REALTIME_CUSTOM, custom_image_uri="docker.io/library/xgb:1"),
        "$.pipelines[3].custom_image_uri",
        '"docker.io/library/xgb:1" is not valid',
        marker="docker.io/library/xgb:1",
    ),
    Case(
        "kms-arn-short-account",
        mutate(REALTIME_BUILTIN, kms_key_arn="arn:aws:kms:us-east-1:1234:key/abc"),
        "$.pipelines[0].kms_key_arn",
        "is not valid",
        marker="arn:aws:kms:us-east-1:1234:key/abc",
    ),
    Case(
        "model-package-arn",
        mutate(
            REALTIME_BUILTIN,
            model_framework=DELETE,
            model_framework_version=DELETE,
            model_artifact_location=DELETE,
            model_package_name="arn:aws:sagemaker:us-east-1:123:model-package/x/1",
        ),
        "$.pipelines[0].model_package_name",
        "is not valid",
        marker="model-package/x/1",
    ),
    Case(
        "sns-arn-setting",
        with_settings(notification_topic_arn="arn:aws:sqs:us-east-1:123456789012:q"),
        "$.settings.notification_topic_arn",
        "is not valid",
        marker="arn:aws:sqs",
    ),
    Case(
        "five-field-cron",
        mutate(DATA_QUALITY, schedule_expression="cron(0 * * * *)"),
        "$.pipelines[5].schedule_expression",
        '"cron(0 * * * *)" is not valid',
        marker="cron(0 * * * *)",
    ),
    Case(
        "seconds-out-of-range-int",
        mutate(DATA_QUALITY, monitor_max_runtime_seconds=90000),
        "$.pipelines[5].monitor_max_runtime_seconds",
        "90000 is not valid",
        marker='"monitor_max_runtime_seconds": 90000',
    ),
    Case(
        "seconds-out-of-range-digit-string",
        mutate(DATA_QUALITY, monitor_max_runtime_seconds="90000"),
        "$.pipelines[5].monitor_max_runtime_seconds",
        "90000 is out of range",
        marker='"monitor_max_runtime_seconds": "90000"',
        code="C103",
    ),
    Case(
        "seconds-zero",
        mutate(MODEL_QUALITY, baseline_max_runtime_seconds=0),
        "$.pipelines[6].baseline_max_runtime_seconds",
        "0 is not valid",
        marker='"baseline_max_runtime_seconds": 0',
    ),
    Case(
        "seconds-negative-string",
        mutate(MODEL_QUALITY, monitor_max_runtime_seconds="-1"),
        "$.pipelines[6].monitor_max_runtime_seconds",
        '"-1" is not valid',
    ),
    Case(
        "seconds-fraction",
        mutate(DATA_QUALITY, monitor_max_runtime_seconds=3300.5),
        "$.pipelines[5].monitor_max_runtime_seconds",
        "3300.5 is not valid",
    ),
    Case(
        "volume-size-too-big",
        mutate(DATA_QUALITY, instance_volume_size=20000),
        "$.pipelines[5].instance_volume_size",
        "20000 is not valid",
        marker='"instance_volume_size": 20000',
    ),
    Case(
        "volume-size-too-big-string",
        mutate(EXPLAINABILITY, instance_volume_size="20000"),
        "$.pipelines[8].instance_volume_size",
        "20000 is out of range",
        marker='"instance_volume_size": "20000"',
    ),
    Case(
        "probability-threshold-word",
        mutate(MODEL_QUALITY, probability_threshold_attribute="high"),
        "$.pipelines[6].probability_threshold_attribute",
        '"high" is not valid',
    ),
    Case(
        "unsupported-pipeline-type",
        mutate(REALTIME_BUILTIN, pipeline_type="byom_realtime_magic"),
        "$.pipelines[0].pipeline_type",
        "pipeline type not supported",
        marker="byom_realtime_magic",
        code="S104",
    ),
    # Rules across pipelines and derived names.
    Case(
        "duplicate-pipeline",
        appended({**EXAMPLE_DATA["pipelines"][0], "endpoint_name": "another-endpoint"}),
        "$.pipelines[9].model_name",
        "duplicate pipeline: stack mlops-pipeline-linearlearner-byompipelinerealtimebuiltin "
        "is already defined by $.pipelines[0]",
        marker=pipeline_start(9) + "+2",
        code="C101",
    ),
    Case(
        "duplicate-image-tag",
        appended({**EXAMPLE_DATA["pipelines"][2], "ecr_repo_name": "other"}),
        "$.pipelines[9].image_tag",
        "stack mlops-pipeline-churn-byompipelineimagebuilder is already defined",
    ),
    Case(
        "duplicate-endpoint-name-any-case",
        mutate(REALTIME_CUSTOM, endpoint_name="LinearLearner-Endpoint"),
        "$.pipelines[3].endpoint_name",
        "endpoint linearlearner-endpoint is already deployed by $.pipelines[0]",
        marker="LinearLearner-Endpoint",
        code="C105",
    ),
    Case(
        "stack-name-too-long",
        mutate(BATCH_BUILTIN, model_name="m" * 63)
        | {"settings": {**SETTINGS, "stack_prefix": "p" * 40}},
        "$.pipelines[1].model_name",
        "is 129 characters long",
        marker="m" * 63,
        code="C102",
    ),
    Case(
        "unknown-framework",
        mutate(REALTIME_BUILTIN, model_framework="sklearn"),
        "$.pipelines[0].model_framework",
        "unknown built-in framework 'sklearn'",
        marker='"sklearn"',
        code="C104",
    ),
    Case(
        "framework-named-region",
        mutate(BATCH_BUILTIN, model_framework="region"),
        "$.pipelines[1].model_framework",
        "unknown built-in framework 'region'",
    ),
    Case(
        "unknown-framework-version",
        mutate(REALTIME_BUILTIN, model_framework="xgboost", model_framework_version="0.9"),
        "$.pipelines[0].model_framework_version",
        "unknown version '0.9' of xgboost",
        marker='"0.9"',
    ),
    Case(
        "region-without-images",
        with_settings(region="ap-southeast-7"),
        "$.settings.region",
        "no linear-learner image is known in region 'ap-southeast-7'",
        marker="ap-southeast-7",
    ),
    # Settings.
    Case(
        "bad-region",
        with_settings(region="useast1"),
        "$.settings.region",
        '"useast1" is not valid',
        marker='"useast1"',
    ),
    Case(
        "bad-assets-bucket",
        with_settings(assets_bucket="Bad_Bucket"),
        "$.settings.assets_bucket",
        '"Bad_Bucket" is not valid',
        marker='"Bad_Bucket"',
    ),
    Case(
        "bad-stack-prefix",
        with_settings(stack_prefix="1-prefix"),
        "$.settings.stack_prefix",
        "is not valid",
    ),
    Case(
        # Stack names are lower-cased but the IAM policies name stacks, roles and functions
        # by the prefix as given: every call of an upper-case prefix would be denied.
        "upper-case-stack-prefix",
        with_settings(stack_prefix="Team-A"),
        "$.settings.stack_prefix",
        '"Team-A" is not valid',
    ),
    Case(
        "region-from-env-names-its-origin",
        EXAMPLE_DATA,
        "$.settings.region",
        '"nowhere" is not valid (set by MLOPS_REGION)',
        env={"MLOPS_REGION": "nowhere"},
    ),
    Case(
        "bucket-from-flag-names-its-origin",
        EXAMPLE_DATA,
        "$.settings.assets_bucket",
        '"BAD" is not valid (set by --assets-bucket)',
        flags={"assets_bucket": "BAD"},
    ),
    Case(
        "max-deletes-from-env-names-its-origin",
        EXAMPLE_DATA,
        "$.settings.max_deletes",
        "is a string (set by MLOPS_MAX_DELETES)",
        env={"MLOPS_MAX_DELETES": "lots"},
    ),
    Case(
        "region-from-aws-region-names-its-origin",
        {"settings": {"assets_bucket": "bucket-a"}, "pipelines": []},
        "$.settings.region",
        "(set by AWS_REGION)",
        env={"AWS_REGION": "moon-1"},
    ),
    Case(
        "missing-assets-bucket",
        {"settings": {"region": "us-east-1"}, "pipelines": []},
        "$.settings.assets_bucket",
        "missing required setting",
        marker='"settings"',
        code="S107",
    ),
    Case(
        "missing-region",
        {"settings": {"assets_bucket": "bucket-a"}, "pipelines": []},
        "$.settings.region",
        "missing required setting",
        code="S107",
    ),
    Case(
        "settings-null",
        {"settings": None, "pipelines": []},
        "$.settings",
        "is null",
        env={"MLOPS_REGION": "us-east-1", "MLOPS_ASSETS_BUCKET": "bucket-a"},
    ),
    # Shape of the document.
    Case("top-level-list", [EXAMPLE_DATA], "$", "is a list", line=1, code="S103"),
    Case("top-level-string", "mlops", "$", "is a string", line=1),
    Case(
        "pipelines-not-a-list",
        {"settings": SETTINGS, "pipelines": {"pipeline_type": "byom_image_builder"}},
        "$.pipelines",
        "is an object",
        marker='"pipelines"',
    ),
    Case(
        "missing-pipelines",
        {"settings": SETTINGS},
        "$.pipelines",
        "missing required key",
        line=1,
    ),
    Case(
        "pipeline-not-an-object",
        appended("byom_image_builder"),
        "$.pipelines[9]",
        "is a string",
        marker='    "byom_image_builder"\n',
    ),
    # The text itself.
    Case("empty-file", raw=b"", path="$", message="file is empty", line=None, code="E003"),
    Case("whitespace-only", raw=b"  \n\t\r\n ", message="file is empty", line=None),
    Case(
        "invalid-json",
        raw=b'{\n  "pipelines": [\n    {"pipeline_type": "byom_image_builder",}\n  ]\n}\n',
        message="invalid JSON: Expecting property name enclosed in double quotes at line 3 "
        "column 44",
        line=3,
        code="E004",
    ),
    Case(
        "truncated-json",
        raw=b'{\n  "pipelines": [\n',
        message="invalid JSON",
        line=3,
    ),
    Case(
        "duplicate-key",
        raw=b'{\n "pipelines": [\n  {"pipeline_type": "byom_image_builder",\n'
        b'   "image_tag": "a",\n   "image_tag": "b"}\n ]\n}\n',
        path="$.pipelines[0].image_tag",
        message="key 'image_tag' appears twice in one object (first on line 4)",
        line=5,
        code="E005",
    ),
    Case(
        "not-utf8",
        raw=b'{\n "pipelines": [\n  "caf\xe9"\n ]\n}',
        message="not valid UTF-8",
        line=3,
        code="E002",
    ),
    Case(
        "deep-nesting-for-the-scanner",
        raw=b'{"pipelines": ' + b"[" * 80 + b"]" * 80 + b"}",
        message="nesting is too deep",
        code="E006",
    ),
    Case(
        "deep-nesting-for-the-parser",
        raw=b"[" * 100_000 + b"]" * 100_000,
        message="nesting is too deep",
        code="E006",
    ),
    Case(
        "huge-file",
        raw=b"{" + b" " * (6 * 1024 * 1024) + b"}",
        message="file is 6291458 bytes",
        line=None,
        code="E001",
    ),
]


def _line(text: str, marker: str) -> int:
    if marker.startswith("@pipeline"):
        index_text, _, extra = marker.removeprefix("@pipeline").partition("+")
        index = int(index_text)
        starts = [n for n, line in enumerate(text.splitlines(), 1) if line == "    {"]
        return starts[index] + int(extra or 0)
    assert text.count(marker) == 1, f"marker {marker!r} must be unique in the test file"
    return text[: text.index(marker)].count("\n") + 1


def _matching(case: Case, found: tuple[Diagnostic, ...]) -> Diagnostic:
    hits = [d for d in found if d.path == case.path and case.message in d.message]
    assert hits, f"no error at {case.path} mentioning {case.message!r}; got:\n" + "\n".join(
        d.format() for d in found
    )
    return hits[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_config_is_rejected_with_path_line_and_message(case: Case) -> None:
    raw = case.text()
    result = config.load(raw, "mlops-config.json", environ=case.env, flags=case.flags)

    assert result.config is None
    diagnostic = _matching(case, result.errors)
    assert diagnostic.file == "mlops-config.json"
    if case.code:
        assert diagnostic.code == case.code
    if case.marker:
        assert diagnostic.line == _line(raw.decode(), case.marker)
    elif case.line != "any":
        assert diagnostic.line == case.line
    formatted = diagnostic.format()
    assert formatted.startswith("mlops-config.json")
    assert f": error {diagnostic.code} {case.path}: " in formatted


def test_there_are_at_least_thirty_distinct_invalid_inputs() -> None:
    assert len({c.text() for c in CASES if not c.env and not c.flags}) >= 30


def test_every_problem_in_a_file_is_reported_not_just_the_first() -> None:
    data = mutate(
        REALTIME_BUILTIN,
        inference_instance="large",
        model_name="bad name",
        data_capture_location=DELETE,
        inference_instanse="ml.m5.large",
    )
    data["pipelines"][DATA_QUALITY]["schedule_expression"] = "daily"
    data["pipelines"].append({**EXAMPLE_DATA["pipelines"][BATCH_BUILTIN]})
    data["settings"]["region"] = "Mars"

    result = config.load(json.dumps(data, indent=2).encode(), "f.json", environ={})

    assert result.config is None
    assert {d.path for d in result.errors} == {
        "$.pipelines[0].inference_instance",
        "$.pipelines[0].model_name",
        "$.pipelines[0].data_capture_location",
        "$.pipelines[0].inference_instanse",
        "$.pipelines[5].schedule_expression",
        "$.settings.region",
    }


def test_cross_pipeline_errors_are_reported_alongside_schema_errors() -> None:
    data = mutate(REALTIME_CUSTOM, custom_image_uri="not-an-image")
    data["pipelines"].append({**EXAMPLE_DATA["pipelines"][BATCH_BUILTIN]})

    result = config.load(json.dumps(data, indent=2).encode(), "f.json", environ={})

    paths = [d.path for d in result.errors]
    assert paths == ["$.pipelines[3].custom_image_uri", "$.pipelines[9].model_name"]


def test_every_duplicate_key_is_reported_at_its_own_path() -> None:
    raw = (
        b'{\n "pipelines": [\n'
        b'  {"model_name": "a"},\n'
        b'  {"model_name": "a",\n'
        b'   "model_name": "b"}\n'
        b" ],\n"
        b' "pipelines": []\n}\n'
    )
    result = config.load(raw, "f.json", environ={})

    assert [(d.path, d.line) for d in result.errors] == [
        ("$.pipelines[1].model_name", 5),
        ("$.pipelines", 7),
    ]


def test_a_monitor_of_an_endpoint_not_in_the_file_is_a_warning_and_still_valid() -> None:
    data = mutate(DATA_QUALITY, endpoint_name="deployed-elsewhere")
    text = json.dumps(data, indent=2)

    result = config.load(text.encode(), "f.json", environ={})

    assert result.config is not None
    assert result.errors == ()
    (warning,) = result.diagnostics
    assert warning.code == "W101"
    assert warning.path == "$.pipelines[5].endpoint_name"
    assert warning.line == _line(text, "deployed-elsewhere")
    assert "endpoint deployed-elsewhere is not deployed by a realtime pipeline" in warning.message
    assert result.config.warnings == (warning,)
    assert warning.format().startswith(f"f.json:{warning.line}: warning W101 ")


def test_single_pipeline_file_reports_paths_relative_to_the_pipeline() -> None:
    pipeline = {**EXAMPLE_DATA["pipelines"][REALTIME_BUILTIN], "inference_instanse": "x"}
    text = json.dumps(pipeline, indent=2)
    env = {"MLOPS_REGION": "us-east-1", "MLOPS_ASSETS_BUCKET": "bucket-a"}

    result = config.load(text.encode(), "single.json", environ=env)

    (diagnostic,) = result.errors
    assert diagnostic.path == "$.inference_instanse"
    assert diagnostic.line == _line(text, "inference_instanse")


def test_single_pipeline_file_without_settings_names_where_to_give_them() -> None:
    text = json.dumps(EXAMPLE_DATA["pipelines"][IMAGE_BUILDER])

    result = config.load(text.encode(), "single.json", environ={})

    assert {(d.path, d.expected) for d in result.errors} == {
        (
            "$.settings.assets_bucket",
            "settings.assets_bucket in single.json, MLOPS_ASSETS_BUCKET or --assets-bucket",
        ),
        (
            "$.settings.region",
            "settings.region in single.json, MLOPS_REGION, --region, AWS_REGION, "
            "AWS_DEFAULT_REGION or a region in the AWS profile",
        ),
    }


def test_a_single_pipeline_without_its_type_is_told_it_lacks_pipeline_type() -> None:
    pipeline = dict(EXAMPLE_DATA["pipelines"][REALTIME_BUILTIN])
    del pipeline["pipeline_type"]
    env = {"MLOPS_REGION": "us-east-1", "MLOPS_ASSETS_BUCKET": "bucket-a"}

    result = config.load(json.dumps(pipeline).encode(), "single.json", environ=env)

    assert [(d.path, d.code) for d in result.errors] == [("$.pipeline_type", "S101")]
