"""A deployed stack as the planner sees it, and what records ownership and intent on it.

Plain data: discovery (in `controller.aws`) builds these from DescribeStacks; the pure
planner reads them. Ownership is a stack tag (Flux's inventory, recorded on what was
deployed); what was asked for is a stack parameter.

Stack tags are copied onto every taggable resource, and for some resource types (SageMaker
monitoring job definitions, for example) `Tags` is a create-only property: a changed stack tag
replaces those resources, which CloudFormation refuses for a resource with a fixed name. So a
tag holds only what never changes for a stack (owner, pipeline type and name); the spec hash
and the run-once record, which change on ordinary updates, are parameters that no resource
uses. DescribeStacks returns parameters in the same paginated read as tags, so discovery stays
one read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.core.render import RenderedStack

OWNER_TAG = "mlops:managed-by"
TYPE_TAG = "mlops:pipeline-type"
PIPELINE_TAG = "mlops:pipeline"

SPEC_HASH_PARAMETER = "SpecHash"
"""The content hash of what was deployed; echoed by the output of the same name."""

RUN_PARAMETERS = ("BaselineReady", "TransformStarted")
"""Gate parameters of the run-once stacks (monitors, batch). Each holds the execution name of
the job that was written (baseline) or started (transform), empty before; the template opens
its gate only when that name is the current job's."""

BOOKKEEPING_PARAMETERS = frozenset({SPEC_HASH_PARAMETER, *RUN_PARAMETERS})
"""Parameters the controller keeps for itself: never a change a user asked for."""

LEGACY_HASH_TAG = "mlops:spec-hash"
LEGACY_RUN_TAG = "mlops:run"
"""Where versions before 0.2 kept the spec hash and the run record. Read as a fallback so that
stacks deployed by them are recognised; never written again."""


@dataclass(frozen=True)
class DeployedStack:
    name: str
    stack_id: str
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    status_reason: str = ""
    last_updated: datetime | None = None
    drift_status: str = ""
    """The stack's verdict at the last drift detection (DRIFTED, IN_SYNC, NOT_CHECKED)."""
    drift_checked: datetime | None = None

    @property
    def owner(self) -> str | None:
        return self.tags.get(OWNER_TAG)

    @property
    def spec_hash(self) -> str | None:
        return self.parameters.get(SPEC_HASH_PARAMETER) or self.tags.get(LEGACY_HASH_TAG)

    @property
    def pipeline_type(self) -> str | None:
        return self.tags.get(TYPE_TAG)

    @property
    def recorded_run(self) -> str:
        """The run-once job (execution name) recorded as started or written; empty if none."""
        for name in RUN_PARAMETERS:
            value = self.parameters.get(name, "")
            if value not in ("", "true", "false"):
                return value
        return self.tags.get(LEGACY_RUN_TAG, "")

    def run_done(self, execution_name: str) -> bool:
        return bool(execution_name) and self.recorded_run == execution_name

    def owned_by(self, controller_id: str) -> bool:
        return self.owner == controller_id


def ownership_tags(controller_id: str, pipeline_type: str, pipeline_name: str) -> dict[str, str]:
    """The stable tags of a stack: a change to any of them must rename what they would replace,
    so render derives the names of resources with create-only tags from these too."""
    return {OWNER_TAG: controller_id, TYPE_TAG: pipeline_type, PIPELINE_TAG: pipeline_name}


def stack_tags(
    controller_id: str, rendered: RenderedStack, *, run_done: bool = False
) -> list[dict[str, str]]:
    """The tags every create and update writes: ownership only, which never changes for a stack.

    `run_done` is accepted for callers that still pass it; the run is recorded by the gate
    parameter (`RenderedStack.boto_parameters`), never by a tag.
    """
    del run_done
    tags = ownership_tags(controller_id, rendered.pipeline.type, rendered.pipeline.name)
    return [{"Key": k, "Value": v} for k, v in tags.items()]
