"""Drift of deployed resources, as CloudFormation's drift detection reports it.

Plain data: `controller.aws.drift` builds these from DescribeStackResourceDrifts; the pure
planner decides what each kind of drift calls for.
"""

from __future__ import annotations

from dataclasses import dataclass

DELETED = "DELETED"
MODIFIED = "MODIFIED"


@dataclass(frozen=True)
class ResourceDrift:
    logical_id: str
    resource_type: str
    status: str
    """DELETED or MODIFIED (resources in sync are not reported)."""
    differences: tuple[str, ...] = ()
    """For MODIFIED: `EndpointConfigName is X, the template says Y`, one per property."""

    def describe(self) -> str:
        what = f"{self.logical_id} ({self.resource_type})"
        if self.status == DELETED:
            return f"{what} was deleted"
        changed = "; ".join(self.differences) or "changed"
        return f"{what} was modified: {changed}"

    def to_json(self) -> dict[str, object]:
        return {
            "logical_id": self.logical_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "differences": list(self.differences),
        }


@dataclass(frozen=True)
class StackDrift:
    """What drift detection found on one stack, or why it could not tell."""

    resources: tuple[ResourceDrift, ...] = ()
    problem: str = ""
