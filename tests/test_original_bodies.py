"""The original orchestrator's request bodies, pasted in unchanged.

tests/data/original_bodies/ holds the bodies the original's own tests send
(source/lambdas/pipeline_orchestration/tests/fixtures/orchestrator_fixtures.py of
aws-solutions/mlops-workload-orchestrator at debb689: `api_byom_event` in single-account mode,
`api_*_event`, `api_training_event`), one file each, key for key and value for value what those
fixtures build. Their image (xgboost 1.2-2) resolves and the keys they carry for neighbouring
pipeline types are ignored with a warning, as the original ignored them. What the controller
still refuses is a handful of test placeholders that AWS itself would refuse (a wildcard ARN,
an image URI that names no registry, an endpoint name with an underscore, JSON text where an
object goes, a key the original required too): each is listed below with its reason, and with
it replaced the body loads and renders.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.core import render
from controller.core.config import Config, load
from controller.core.config.schema import pipeline_keys
from controller.core.diagnostics import Diagnostic
from tests.conftest import EXAMPLE

BODIES = Path(__file__).parent / "data" / "original_bodies"
ENVIRON = {"MLOPS_REGION": "us-east-1", "MLOPS_ASSETS_BUCKET": "testassetsbucket"}
XGBOOST_1_2_2 = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.2-2"
DELETE = object()

DEPLOYMENT = (
    "byom_realtime_builtin",
    "byom_realtime_builtin_endpoint_name",
    "byom_realtime_custom",
    "byom_batch_builtin",
    "byom_batch_custom",
    "byom_data_quality_monitor",
    "byom_model_quality_monitor",
    "byom_model_bias_monitor",
    "byom_model_explainability_monitor",
    "byom_image_builder",
)
TRAINING = ("model_training_builtin", "model_tuner_builtin", "model_autopilot_training")

OTHER_TYPES_KEYS = {
    "byom_model_bias_monitor": {"baseline_inference_attribute", "baseline_ground_truth_attribute"},
    "byom_model_explainability_monitor": {
        "baseline_inference_attribute",
        "baseline_ground_truth_attribute",
        "bias_config",
        "model_predicted_label_config",
    },
    "model_training_builtin": {"target_attribute", "tuner_configs", "hyperparamaters_ranges"},
    "model_tuner_builtin": {"target_attribute"},
    "model_autopilot_training": {"algo_hyperparamaters", "tuner_configs", "hyperparamaters_ranges"},
}
"""Keys a body carries for another of the original's types: warning W202 each."""

# The placeholders of the original's fixtures that AWS would refuse, and their real values.
NO_REGISTRY = {"model_package_name": DELETE}
"""The fixtures run with USE_MODEL_REGISTRY=No and still send
arn:aws:sagemaker:*:*:model-package/xgboost/1, an ARN with wildcards that CreateModel refuses;
beside the artifact and framework it would also replace them (S105)."""
ECR_IMAGE = {"custom_image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/custom:1"}
"""`custom-image-uri` names no registry: SageMaker could not pull it."""
ENDPOINT = {"endpoint_name": "test-endpoint"}
"""`test_endpoint`: SageMaker endpoint names take no underscore."""
JSON_OBJECTS = {
    "bias_config": {
        "label_values_or_threshold": [1],
        "facet_name": "age",
        "facet_values_or_threshold": [40],
        "group_name": "personal_status_sex",
    },
    "model_predicted_label_config": {"probability": 0},
}
"""The fixtures hold these as JSON text (their environment variables); the original dumped
that text again, so its baseline job's BiasConfig(**...) met a string."""
SHAP = {
    "shap_config": {"baseline": "shap/baseline.csv", "num_samples": 50, "agg_method": "mean_abs"}
}
"""The explainability fixture has none; the original's own validation requires it."""
FRAMEWORK = {"model_framework": "xgboost", "model_framework_version": "1.2-2"}
"""The training fixture has none; the original's own validation requires both."""

PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "byom_realtime_builtin": NO_REGISTRY,
    "byom_realtime_builtin_endpoint_name": NO_REGISTRY,
    "byom_realtime_custom": NO_REGISTRY | ECR_IMAGE,
    "byom_batch_builtin": NO_REGISTRY,
    "byom_batch_custom": NO_REGISTRY | ECR_IMAGE,
    "byom_data_quality_monitor": ENDPOINT,
    "byom_model_quality_monitor": ENDPOINT,
    "byom_model_bias_monitor": ENDPOINT | JSON_OBJECTS,
    "byom_model_explainability_monitor": ENDPOINT | SHAP,
    "byom_image_builder": {},
    "model_training_builtin": FRAMEWORK,
    "model_tuner_builtin": FRAMEWORK,
    "model_autopilot_training": {},
}

REGISTRY_WITH_BUILTIN = {
    ("S106", "$.model_package_name"),
    ("S105", "$.model_artifact_location"),
    ("S105", "$.model_framework"),
    ("S105", "$.model_framework_version"),
}
REGISTRY_WITH_CUSTOM = {
    ("S106", "$.model_package_name"),
    ("S105", "$.model_artifact_location"),
    ("S105", "$.custom_image_uri"),
    ("S106", "$.custom_image_uri"),
}
REFUSED_AS_PASTED = {
    "byom_realtime_builtin": REGISTRY_WITH_BUILTIN,
    "byom_realtime_builtin_endpoint_name": REGISTRY_WITH_BUILTIN,
    "byom_realtime_custom": REGISTRY_WITH_CUSTOM,
    "byom_batch_builtin": REGISTRY_WITH_BUILTIN,
    "byom_batch_custom": REGISTRY_WITH_CUSTOM,
    "byom_data_quality_monitor": {("S106", "$.endpoint_name")},
    "byom_model_quality_monitor": {("S106", "$.endpoint_name")},
    "byom_model_bias_monitor": {
        ("S106", "$.endpoint_name"),
        ("S103", "$.bias_config"),
        ("S103", "$.model_predicted_label_config"),
    },
    "byom_model_explainability_monitor": {
        ("S106", "$.endpoint_name"),
        ("S101", "$.shap_config"),
    },
    "byom_image_builder": set(),
}
"""Exactly the placeholders above, and never the image (C104) or an unknown key (S102)."""


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BODIES / f"{name}.json").read_text())
    return loaded


def load_body(data: dict[str, Any]) -> tuple[Config | None, tuple[Diagnostic, ...]]:
    result = load(json.dumps(data, indent=2).encode(), "body.json", environ=ENVIRON)
    return result.config, result.diagnostics


def with_real_values(name: str) -> dict[str, Any]:
    data = body(name)
    for key, value in PLACEHOLDERS[name].items():
        if value is DELETE:
            del data[key]
        else:
            data[key] = copy.deepcopy(value)
    return data


def skip_unknown_type(name: str) -> None:
    """The training types arrive on another branch; their bodies are checked once they do."""
    pipeline_type = body(name)["pipeline_type"]
    if not pipeline_keys(pipeline_type):
        pytest.skip(f"{pipeline_type} is not a pipeline type of this schema yet")


@pytest.mark.parametrize("name", DEPLOYMENT + TRAINING)
def test_each_original_body_loads_once_its_placeholders_are_real(name: str) -> None:
    skip_unknown_type(name)

    config, diagnostics = load_body(with_real_values(name))

    assert config is not None, "\n".join(d.format() for d in diagnostics)
    ignored = {d.path.removeprefix("$.") for d in diagnostics if d.code == "W202"}
    assert ignored == OTHER_TYPES_KEYS.get(name, set())
    if name in TRAINING:
        return
    (stack,) = render.render_all(config)
    if "builtin" in name:
        assert dict(stack.parameters)["ImageUri"] == XGBOOST_1_2_2


@pytest.mark.parametrize("name", DEPLOYMENT)
def test_as_pasted_only_the_placeholders_aws_would_refuse_are_errors(name: str) -> None:
    config, diagnostics = load_body(body(name))

    errors = {(d.code, d.path) for d in diagnostics if d.is_error}
    assert errors == REFUSED_AS_PASTED[name]
    assert (config is None) == bool(errors)
    ignored = {d.path.removeprefix("$.") for d in diagnostics if d.code == "W202"}
    assert ignored == OTHER_TYPES_KEYS.get(name, set())


def test_the_bodies_are_those_of_the_original_tests_for_every_type() -> None:
    files = {p.stem for p in BODIES.glob("*.json")}
    assert files == set(DEPLOYMENT + TRAINING)
    types = {body(name)["pipeline_type"] for name in files}
    assert len(types) == 12
    assert body("byom_realtime_builtin")["model_framework_version"] == "1.2-2"


# Keys of the original's other pipeline types -----------------------------------------------

EXAMPLE_DATA: dict[str, Any] = json.loads(EXAMPLE.read_text())
SETTINGS = {"MLOPS_ASSETS_BUCKET": "assets-bucket", "MLOPS_REGION": "us-east-1"}


def load_example(data: dict[str, Any]) -> tuple[Config | None, tuple[Diagnostic, ...], str]:
    text = json.dumps(data, indent=2)
    result = load(text.encode(), "mlops-config.json", environ=SETTINGS)
    return result.config, result.diagnostics, text


def index_of(pipeline_type: str) -> int:
    types = [p["pipeline_type"] for p in EXAMPLE_DATA["pipelines"]]
    return types.index(pipeline_type)


def test_a_key_of_another_type_is_a_warning_with_its_line_and_changes_nothing() -> None:
    bias = index_of("byom_model_bias_monitor")
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"][bias]["baseline_ground_truth_attribute"] = "label"

    config, diagnostics, text = load_example(data)

    assert config is not None
    (found,) = [d for d in diagnostics if d.code == "W202"]
    assert found.path == f"$.pipelines[{bias}].baseline_ground_truth_attribute"
    assert not found.is_error
    assert "byom_model_bias_monitor does not use it" in found.message
    assert "byom_model_quality_monitor" in found.message
    lines = text.splitlines()
    assert found.line is not None
    assert '"baseline_ground_truth_attribute"' in lines[found.line - 1]
    assert found in config.warnings
    plain, _, _ = load_example(EXAMPLE_DATA)
    assert plain is not None
    assert render.render_all(config) == render.render_all(plain)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("bias_confg", "unknown key 'bias_confg'; did you mean 'bias_config'?"),
        ("colour", "unknown key 'colour'"),
    ],
)
def test_a_key_unknown_to_every_type_stays_an_error_with_its_did_you_mean(
    key: str, message: str
) -> None:
    bias = index_of("byom_model_bias_monitor")
    data = copy.deepcopy(EXAMPLE_DATA)
    data["pipelines"][bias][key] = {}

    config, diagnostics, _ = load_example(data)

    assert config is None
    (error,) = [d for d in diagnostics if d.is_error]
    assert (error.code, error.path, error.message) == (
        "S102",
        f"$.pipelines[{bias}].{key}",
        message,
    )


def test_warnings_for_other_types_keys_come_with_the_errors_of_the_same_file() -> None:
    """One run shows everything: the ignored key beside a real error elsewhere."""
    data = copy.deepcopy(EXAMPLE_DATA)
    realtime = index_of("byom_realtime_builtin")
    data["pipelines"][realtime]["ecr_repo_name"] = "mlops-ecrrep"
    data["pipelines"][realtime]["inference_instance"] = 5

    config, diagnostics, _ = load_example(data)

    assert config is None
    assert {(d.code, d.path) for d in diagnostics} >= {
        ("W202", f"$.pipelines[{realtime}].ecr_repo_name"),
        ("S103", f"$.pipelines[{realtime}].inference_instance"),
    }


def test_validate_prints_the_ignored_keys_of_a_pasted_body_and_accepts_it(tmp_path: Path) -> None:
    path = tmp_path / "bias.json"
    path.write_text(json.dumps(with_real_values("byom_model_bias_monitor"), indent=2))
    executable = Path(sys.executable).with_name("mlops-controller")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")} | ENVIRON

    done = subprocess.run(
        [str(executable), "validate", str(path)], capture_output=True, text=True, env=env
    )

    assert done.returncode == 0, done.stdout + done.stderr
    warned = [line for line in done.stdout.splitlines() if " warning W202 " in line]
    assert [line.split(" W202 ")[1].split(":")[0] for line in warned] == [
        "$.baseline_ground_truth_attribute",
        "$.baseline_inference_attribute",
    ]
    assert done.stdout.splitlines()[-1].startswith(f"{path}: valid")


def test_a_key_of_another_type_in_a_staged_config_is_one_warning() -> None:
    """Every rule runs once per stage; the warning is about the file, so it is said once."""
    data = json.loads((EXAMPLE.parent / "mlops-config.stages.json").read_text())
    data["pipelines"][0]["baseline_ground_truth_attribute"] = "label"

    config, diagnostics, _ = load_example(data)

    assert config is not None
    assert [(d.code, d.path) for d in diagnostics] == [
        ("W202", "$.pipelines[0].baseline_ground_truth_attribute")
    ]
