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
    )
}

ASSET_KEYS = frozenset({"model_artifact_location", "custom_algorithm_docker", "baseline_data"})
"""Locations that, written without a bucket, are keys inside the assets bucket."""

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
    {"monitor_max_runtime_seconds", "baseline_max_runtime_seconds", "instance_volume_size"}
)
"""Numbers the original accepted as digit strings too."""


def stack_name(prefix: str, infix: str, kind: PipelineKind) -> str:
    return f"{prefix}-{infix}-{kind.postfix}".lower()
