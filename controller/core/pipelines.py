"""The registry of pipeline types.

Adding a pipeline type means one entry here, one branch in the JSON Schema and one blueprint.
Stack identity follows the original orchestrator (`<prefix>-<model_name|image_tag>-<postfix>`,
lower case) so that stacks it created keep their names under the controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    REALTIME = "realtime"
    BATCH = "batch"
    IMAGE_BUILDER = "image_builder"
    MONITOR = "monitor"
    TRAINING = "training"


@dataclass(frozen=True)
class PipelineKind:
    type: str
    postfix: str
    blueprint: str
    family: Family
    identity_key: str = "model_name"
    monitor: str = ""
    """For monitors: data_quality, model_quality, model_bias or model_explainability."""

    @property
    def builtin(self) -> bool:
        return self.type.endswith("_builtin")

    @property
    def orchestrator_only(self) -> bool:
        """Deployed once, in the orchestrator account, even with stages: image builders (the
        stages pull their images) and, as in the original, training (stages deploy what the
        registry holds, pinned in git)."""
        return self.family in (Family.IMAGE_BUILDER, Family.TRAINING)


KINDS: dict[str, PipelineKind] = {
    k.type: k
    for k in (
        PipelineKind(
            "byom_realtime_builtin",
            "byompipelinerealtimebuiltin",
            "realtime.yaml.j2",
            Family.REALTIME,
        ),
        PipelineKind(
            "byom_realtime_custom",
            "byompipelinerealtimecustom",
            "realtime.yaml.j2",
            Family.REALTIME,
        ),
        PipelineKind(
            "byom_batch_builtin", "byompipelinebatchbuiltin", "batch.yaml.j2", Family.BATCH
        ),
        PipelineKind("byom_batch_custom", "byompipelinebatchcustom", "batch.yaml.j2", Family.BATCH),
        PipelineKind(
            "byom_image_builder",
            "byompipelineimagebuilder",
            "image_builder.yaml.j2",
            Family.IMAGE_BUILDER,
            identity_key="image_tag",
        ),
        PipelineKind(
            "byom_data_quality_monitor",
            "byomdataqualitymonitor",
            "monitor.yaml.j2",
            Family.MONITOR,
            monitor="data_quality",
        ),
        PipelineKind(
            "byom_model_quality_monitor",
            "byommodelqualitymonitor",
            "monitor.yaml.j2",
            Family.MONITOR,
            monitor="model_quality",
        ),
        PipelineKind(
            "byom_model_bias_monitor",
            "byommodelbiasmonitor",
            "monitor.yaml.j2",
            Family.MONITOR,
            monitor="model_bias",
        ),
        PipelineKind(
            "byom_model_explainability_monitor",
            "byommodelexplainabilitymonitor",
            "monitor.yaml.j2",
            Family.MONITOR,
            monitor="model_explainability",
        ),
        PipelineKind(
            "model_training_builtin", "modeltraining", "training.yaml.j2", Family.TRAINING
        ),
        PipelineKind("model_tuner_builtin", "tunertraining", "training.yaml.j2", Family.TRAINING),
        PipelineKind(
            "model_autopilot_training", "autopilottraining", "training.yaml.j2", Family.TRAINING
        ),
    )
}

ASSET_KEYS = frozenset(
    {
        "model_artifact_location",
        "custom_algorithm_docker",
        "baseline_data",
    }
)
"""Locations that, written without a bucket, are keys inside the assets bucket."""

ASSET_PREFIXES = frozenset({"training_data", "validation_data", "job_output_location"})
"""Training locations, in the assets bucket unless written with one (as the original had
them): prefixes a job reads under or writes to, not single objects pre-flight could check."""

LOCATION_KEYS = frozenset(
    {
        "data_capture_location",
        "batch_inference_data",
        "batch_job_output_location",
        "baseline_job_output_location",
        "monitoring_output_location",
        "monitor_ground_truth_input",
    }
)
"""Locations always written `bucket/prefix` or `s3://bucket/prefix`."""

INTEGER_KEYS = frozenset(
    {
        "monitor_max_runtime_seconds",
        "baseline_max_runtime_seconds",
        "instance_volume_size",
        "instance_count",
        "max_runtime_per_job",
        "max_wait_time_spot_instances",
        "job_max_candidates",
        "total_max_runtime",
    }
)
"""Numbers the original accepted as digit strings too."""

BOOLEAN_KEYS = frozenset(
    {"encrypt_inner_traffic", "use_spot_instances", "generate_definition_only"}
)
"""Switches the original took as the strings "True" and "False" (JSON booleans work too)."""


def stack_name(prefix: str, infix: str, kind: PipelineKind) -> str:
    return f"{prefix}-{infix}-{kind.postfix}".lower()
