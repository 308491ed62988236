"""Keys of the original orchestrator's other pipeline types: ignored with a warning.

The original read the keys its pipeline type needed and ignored every other key of the
request body, so its users' bodies carry keys of neighbouring types (its own tests send a
bias monitor body that still holds the model quality monitor's
`baseline_ground_truth_attribute`). Such a key is dropped before the schema sees it, with
warning W202, so the body works as it did; a key no type of the original knows stays an
error of the schema (S102, with its did-you-mean), since it is most likely a typo, and so
does a key the original read for this very type but the controller does not support.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.core.config.document import Document, format_path
from controller.core.config.schema import pipeline_keys
from controller.core.diagnostics import Diagnostic, warning

_REALTIME_BATCH = frozenset(
    {
        "pipeline_type",
        "model_name",
        "model_artifact_location",
        "model_package_name",
        "inference_instance",
        "kms_key_arn",
    }
)
_BUILTIN = frozenset({"model_framework", "model_framework_version"})
_CUSTOM = frozenset({"custom_image_uri"})
_REALTIME = frozenset({"data_capture_location", "endpoint_name"})
_BATCH = frozenset({"batch_inference_data", "batch_job_output_location"})
_MONITOR = frozenset(
    {
        "pipeline_type",
        "model_name",
        "endpoint_name",
        "baseline_data",
        "baseline_job_output_location",
        "data_capture_location",
        "monitoring_output_location",
        "schedule_expression",
        "instance_type",
        "instance_volume_size",
        "baseline_max_runtime_seconds",
        "monitor_max_runtime_seconds",
        "kms_key_arn",
    }
)
_MODEL_MONITOR = _MONITOR | {
    "problem_type",
    "monitor_inference_attribute",
    "monitor_probability_attribute",
    "probability_threshold_attribute",
}
_TRAINING = frozenset(
    {
        "pipeline_type",
        "model_name",
        "job_name",
        "training_data",
        "job_output_location",
        "compression_type",
        "encrypt_inner_traffic",
        "max_runtime_per_job",
        "kms_key_arn",
    }
)
_BUILTIN_TRAINING = _TRAINING | {
    "model_framework",
    "model_framework_version",
    "algo_hyperparamaters",
    "instance_type",
    "instance_count",
    "instance_volume_size",
    "validation_data",
    "use_spot_instances",
    "max_wait_time_spot_instances",
    "content_type",
    "s3_data_type",
    "data_distribution",
    "data_input_mode",
    "data_record_wrapping",
    "attribute_names",
}

KEYS: Mapping[str, frozenset[str]] = {
    "byom_realtime_builtin": _REALTIME_BATCH | _BUILTIN | _REALTIME,
    "byom_realtime_custom": _REALTIME_BATCH | _CUSTOM | _REALTIME,
    "byom_batch_builtin": _REALTIME_BATCH | _BUILTIN | _BATCH,
    "byom_batch_custom": _REALTIME_BATCH | _CUSTOM | _BATCH,
    "byom_data_quality_monitor": _MONITOR,
    "byom_model_quality_monitor": _MODEL_MONITOR
    | {
        "baseline_inference_attribute",
        "baseline_probability_attribute",
        "baseline_ground_truth_attribute",
        "monitor_ground_truth_input",
    },
    "byom_model_bias_monitor": _MODEL_MONITOR
    | {
        "monitor_ground_truth_input",
        "model_predicted_label_config",
        "bias_config",
        "features_attribute",
    },
    "byom_model_explainability_monitor": _MODEL_MONITOR
    | {"shap_config", "model_scores", "features_attribute"},
    "byom_image_builder": frozenset(
        {"pipeline_type", "custom_algorithm_docker", "ecr_repo_name", "image_tag"}
    ),
    "model_training_builtin": _BUILTIN_TRAINING,
    "model_tuner_builtin": _BUILTIN_TRAINING | {"tuner_configs", "hyperparamaters_ranges"},
    "model_autopilot_training": _TRAINING
    | {
        "target_attribute",
        "problem_type",
        "job_objective",
        "job_max_candidates",
        "total_max_runtime",
        "generate_definition_only",
    },
}
"""Pipeline type -> the request keys the original read for it (its
source/lambdas/pipeline_orchestration/lambda_helpers.py: get_required_keys and the
get_*_params functions)."""


def without_other_types_keys(doc: Document) -> tuple[Document, list[Diagnostic]]:
    """The document less the keys of the original's other pipeline types, and a warning for
    each. Pipelines of a type the schema does not know are left to the schema's error."""
    pipelines = doc.data.get("pipelines") if isinstance(doc.data, dict) else None
    if not isinstance(pipelines, list):
        return doc, []
    found: list[Diagnostic] = []
    kept: list[object] = []
    for index, pipeline in enumerate(pipelines):
        ignored = _ignored(pipeline)
        if not ignored:
            kept.append(pipeline)
            continue
        kept.append({k: v for k, v in pipeline.items() if k not in ignored})
        found += [_warning(index, pipeline["pipeline_type"], key) for key in sorted(ignored)]
    if not found:
        return doc, []
    return Document(doc.name, {**doc.data, "pipelines": kept}, doc.lines), found


def _ignored(pipeline: object) -> frozenset[str]:
    if not isinstance(pipeline, dict):
        return frozenset()
    pipeline_type = pipeline.get("pipeline_type")
    if not isinstance(pipeline_type, str) or not (allowed := pipeline_keys(pipeline_type)):
        return frozenset()
    own = KEYS.get(pipeline_type, frozenset())
    return frozenset(
        k for k in pipeline.keys() - allowed if k not in own and _owners(k, pipeline_type)
    )


def _owners(key: str, pipeline_type: str) -> list[str]:
    """The original's other types that read this key."""
    return [t for t, keys in KEYS.items() if key in keys and t != pipeline_type]


def _warning(index: int, pipeline_type: str, key: str) -> Diagnostic:
    owners = _owners(key, pipeline_type)
    named = ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
    return warning(
        "W202",
        format_path(("pipelines", index, key)),
        f"key {key!r} is ignored: {pipeline_type} does not use it (it is a key of {named}); "
        "the original orchestrator ignored it too",
        "the key removed",
    )
