"""What the controller manages right now, with the live state of realtime endpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.aws import registry
from controller.aws.discover import discover
from controller.aws.session import Aws
from controller.core import provenance
from controller.core.config import LoadResult
from controller.core.config.settings import DEFAULTS, merge
from controller.core.gates import Promotion
from controller.core.pipelines import KINDS, Family
from controller.core.stacks import DeployedStack

ENDPOINT_OUTPUT = "EndpointName"


@dataclass(frozen=True)
class PipelineStatus:
    stack_name: str
    pipeline_type: str
    stack_status: str
    last_updated: datetime | None
    endpoint_name: str = ""
    endpoint_status: str = ""
    run: str = ""
    drift: str = ""
    """The last drift detection's verdict and when it ran (scheduled runs, --detect-drift)."""
    model: str = ""
    """The model it runs and where it came from (`provenance`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.stack_name,
            "pipeline_type": self.pipeline_type,
            "stack_status": self.stack_status,
            "last_updated": self.last_updated.isoformat() if self.last_updated else None,
            "endpoint_name": self.endpoint_name or None,
            "endpoint_status": self.endpoint_status or None,
            "run": self.run or None,
            "drift": self.drift or None,
            "model": self.model or None,
        }


def identity(result: LoadResult, flags: Mapping[str, Any]) -> tuple[str, str | None]:
    """Whose stacks, where: from the config when it loads, else from flags and environment.

    Status must work when the config is broken; that is when people most need it.
    """
    if result.config is not None:
        return result.config.settings.controller_id, result.config.settings.region
    merged, _ = merge({}, os.environ, flags)
    return str(merged.get("controller_id", DEFAULTS["controller_id"])), merged.get("region")


def collect(aws: Aws, controller_id: str) -> tuple[PipelineStatus, ...]:
    sagemaker = aws.client("sagemaker")
    origins: dict[str, str] = {}
    rows = []
    for stack in discover(aws.client("cloudformation")):
        if not stack.owned_by(controller_id):
            continue
        kind = KINDS.get(stack.pipeline_type or "")
        endpoint, endpoint_status = "", ""
        if kind is not None and kind.family is Family.REALTIME:
            endpoint = stack.outputs.get(ENDPOINT_OUTPUT, "")
            endpoint_status = _endpoint_status(sagemaker, endpoint)
        run = stack.recorded_run
        if not run and kind is not None and kind.family in RUNS_ONCE:
            run = "pending"
        rows.append(
            PipelineStatus(
                stack.name,
                stack.pipeline_type or "unknown",
                stack.status,
                stack.last_updated,
                endpoint,
                endpoint_status,
                run,
                _drift(stack),
                _model(sagemaker, stack, origins),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.stack_name))


RUNS_ONCE = (Family.BATCH, Family.MONITOR, Family.TRAINING)


def _model(sagemaker: Any, stack: DeployedStack, origins: dict[str, str]) -> str:
    """What the stack runs; a registry version also names the job that trained it (one
    DescribeModelPackage per package, whatever the number of stacks deploying it)."""
    model = provenance.from_parameters(stack.parameters)
    package = stack.parameters.get("ModelPackageName")
    if not package:
        return model
    if package not in origins:
        try:
            origins[package] = registry.origin(sagemaker, package).training_job
        except (ClientError, BotoCoreError):
            origins[package] = ""
    return provenance.with_origin(model, origins[package])


def _drift(stack: DeployedStack) -> str:
    if not stack.drift_status or stack.drift_status == "NOT_CHECKED":
        return "not checked"
    checked = stack.drift_checked.strftime(" %Y-%m-%d %H:%M") if stack.drift_checked else ""
    return f"{stack.drift_status}{checked}"


def _endpoint_status(sagemaker: Any, name: str) -> str:
    if not name:
        return "unknown"
    try:
        return str(sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"])
    except sagemaker.exceptions.ClientError:
        return "NotFound"


@dataclass(frozen=True)
class StepStatus:
    name: str
    description: str
    last_promoted: Promotion | None
    pipelines: tuple[PipelineStatus, ...]
    problem: str = ""
    """Why the step could not be read: its role cannot be assumed."""


@dataclass(frozen=True)
class ChainStatus:
    controller_id: str
    steps: tuple[StepStatus, ...]
    several: bool
    """The chain has stages: each step is shown under its heading."""

    @property
    def ok(self) -> bool:
        return not any(s.problem for s in self.steps)
