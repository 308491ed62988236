"""Configs of N pipelines of every type, built from the example's nine request bodies.

Pipelines come in groups of nine (one of each type); group `i` gets its own model name, image
tag, repository and endpoints, so stack names and endpoint names are unique, every custom model
depends on its group's image builder and every monitor watches its group's custom endpoint.
Assets are shared keys, so seeding the emulator costs the same at any N.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlops-config.json"
ASSETS_BUCKET = "mlops-assets-bench"
DATA_BUCKET = "mlops-data-bench"
ACCOUNT_REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
ORDER = (
    "byom_realtime_builtin",
    "byom_realtime_custom",
    "byom_batch_builtin",
    "byom_batch_custom",
    "byom_image_builder",
    "byom_data_quality_monitor",
    "byom_model_quality_monitor",
    "byom_model_bias_monitor",
    "byom_model_explainability_monitor",
)
"""A group's order: its realtime pipelines come before the monitors that watch them, so the
first N pipelines of any N never hold a monitor without its endpoint."""

CHANGED_KEY = "inference_instance"
CHANGED_VALUES = ("ml.m5.large", "ml.m5.xlarge")


def _bodies() -> dict[str, dict[str, Any]]:
    example = json.loads(EXAMPLE.read_text())
    return {p["pipeline_type"]: p for p in example["pipelines"]}


def _retarget(value: Any) -> Any:
    """Point the example's buckets at the benchmark's own."""
    if isinstance(value, str):
        return value.replace("mlops-data-example", DATA_BUCKET)
    if isinstance(value, dict):
        return {k: _retarget(v) for k, v in value.items()}
    return value


def group(index: int, bodies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    model = f"m{index:04d}"
    tag = f"img{index:04d}"
    repository = f"mlops-bench-{index:04d}"
    image = f"{ACCOUNT_REGISTRY}/{repository}:{tag}"
    endpoints = {
        "byom_realtime_builtin": f"{model}-builtin-endpoint",
        "byom_realtime_custom": f"{model}-custom-endpoint",
    }
    pipelines = []
    for kind in ORDER:
        body = _retarget(copy.deepcopy(bodies[kind]))
        if kind == "byom_image_builder":
            body.update(ecr_repo_name=repository, image_tag=tag)
        else:
            body["model_name"] = model
        if "custom_image_uri" in body:
            body["custom_image_uri"] = image
        if kind in endpoints:
            body["endpoint_name"] = endpoints[kind]
        elif "monitor" in kind:
            body["endpoint_name"] = endpoints["byom_realtime_custom"]
        for key in ("data_capture_location", "batch_job_output_location"):
            if key in body:
                body[key] = f"{body[key]}/{model}"
        pipelines.append(body)
    return pipelines


def make_config(n: int) -> dict[str, Any]:
    """A valid mlops-config.json document with exactly `n` pipelines."""
    bodies = _bodies()
    pipelines: list[dict[str, Any]] = []
    index = 0
    while len(pipelines) < n:
        pipelines.extend(group(index, bodies))
        index += 1
    return {
        "settings": {
            "assets_bucket": ASSETS_BUCKET,
            "region": "us-east-1",
            "stack_prefix": "mlops-pipeline",
            "controller_id": "mlops-controller",
        },
        "pipelines": pipelines[:n],
    }


def make_config_of(pipeline_type: str, n: int) -> dict[str, Any]:
    """`n` pipelines of one type, each of its own group (distinct names, no dependencies)."""
    bodies = _bodies()
    index = ORDER.index(pipeline_type)
    document = make_config(0)
    document["pipelines"] = [group(i, bodies)[index] for i in range(n)]
    return document


def change_one(document: dict[str, Any], round_: int) -> dict[str, Any]:
    """The same config with the first pipeline's instance type flipped (one stack update)."""
    changed = copy.deepcopy(document)
    changed["pipelines"][0][CHANGED_KEY] = CHANGED_VALUES[(round_ + 1) % 2]
    return changed


def asset_keys(document: dict[str, Any]) -> set[str]:
    """Every key inside the assets bucket the config needs (for seeding the emulator)."""
    keys: set[str] = set()
    for pipeline in document["pipelines"]:
        for key in ("model_artifact_location", "custom_algorithm_docker", "baseline_data"):
            if key in pipeline:
                keys.add(pipeline[key])
        baseline = pipeline.get("shap_config", {}).get("baseline")
        if baseline:
            keys.add(baseline)
    return keys


def write(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path
