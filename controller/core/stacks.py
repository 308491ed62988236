"""A deployed stack as the planner sees it, and the tags that record ownership and intent.

Plain data: discovery (in `controller.aws`) builds these from DescribeStacks; the pure
planner reads them. The tags are how the controller knows what it owns (Flux's inventory,
recorded on what was deployed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.core.render import RenderedStack

OWNER_TAG = "mlops:managed-by"
HASH_TAG = "mlops:spec-hash"
TYPE_TAG = "mlops:pipeline-type"
PIPELINE_TAG = "mlops:pipeline"
RUN_TAG = "mlops:run"
"""The run-once job (by execution name) the stack has started or finished; it changes only
when the job's inputs change, never per commit."""


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
        return self.tags.get(HASH_TAG)

    @property
    def pipeline_type(self) -> str | None:
        return self.tags.get(TYPE_TAG)

    def run_done(self, execution_name: str) -> bool:
        return self.tags.get(RUN_TAG) == execution_name

    def owned_by(self, controller_id: str) -> bool:
        return self.owner == controller_id


def stack_tags(
    controller_id: str, rendered: RenderedStack, *, run_done: bool = False
) -> list[dict[str, str]]:
    """The tags every create and update writes: ownership, what was asked for, and the
    run-once job once it may be recorded. Stack tags propagate to the stack's resources."""
    tags = {
        OWNER_TAG: controller_id,
        HASH_TAG: rendered.spec_hash,
        TYPE_TAG: rendered.pipeline.type,
        PIPELINE_TAG: rendered.pipeline.name,
    }
    if rendered.run is not None and run_done:
        tags[RUN_TAG] = rendered.run.execution_name
    return [{"Key": k, "Value": v} for k, v in tags.items()]
