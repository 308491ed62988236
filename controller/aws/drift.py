"""Resource drift, found with CloudFormation's drift detection.

A parameter changed by hand shows in the DescribeStacks that every plan reads, at no extra
call; a resource deleted or edited outside CloudFormation does not. Drift detection finds
those, but it costs calls and time (it reads every resource of a stack), so it runs on
scheduled runs and on `plan --detect-drift`, never on every plan.

Calls, for N stacks: one DetectStackDrift each, at most MAX_POLLS
DescribeStackDriftDetectionStatus each, and one DescribeStackResourceDrifts (per 100
drifted resources) for each stack that drifted: at most N * (2 + MAX_POLLS), usually 3N.
At most IN_FLIGHT detections run at once. A detection that is refused, fails or does not
finish within its polls is reported as "drift not checked" with the reason, and the run goes
on: detection only looks, so it never stops an apply; the next run tries again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.aws.session import Aws
from controller.core.drift import DELETED, MODIFIED, ResourceDrift, StackDrift
from controller.core.stacks import DeployedStack

DETECTABLE = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
"""Stack states CloudFormation runs drift detection in."""
MAX_POLLS = 12
IN_FLIGHT = 20
POLL_SECONDS = float(os.environ.get("MLOPS_DRIFT_POLL_SECONDS", "5"))


def detect_in(aws: Aws, stacks: Sequence[DeployedStack]) -> dict[str, StackDrift]:
    """`detect` with the session's CloudFormation client."""
    return detect(aws.client("cloudformation"), stacks) if stacks else {}


def detect(cfn: Any, stacks: Sequence[DeployedStack]) -> dict[str, StackDrift]:
    """Drift of each stack in a state drift detection runs in, by stack name."""
    waiting = [s for s in stacks if s.status in DETECTABLE]
    ids = {s.name: s.stack_id for s in waiting}
    running: dict[str, tuple[str, int]] = {}
    """Stack name -> (detection id, polls left)."""
    found: dict[str, StackDrift] = {}
    while waiting or running:
        while waiting and len(running) < IN_FLIGHT:
            stack = waiting.pop(0)
            try:
                started = cfn.detect_stack_drift(StackName=stack.stack_id)
                running[stack.name] = (str(started["StackDriftDetectionId"]), MAX_POLLS)
            except (ClientError, BotoCoreError, ResponseParserError) as exc:
                found[stack.name] = StackDrift(problem=f"drift detection refused: {exc}")
        for name, (detection, polls) in list(running.items()):
            state, problem = _status(cfn, detection)
            if state == "running" and polls > 1:
                running[name] = (detection, polls - 1)
                continue
            del running[name]
            if state == "running":
                problem = f"drift detection did not finish in {MAX_POLLS} polls; next run retries"
            found[name] = (
                _resources(cfn, ids[name]) if state == "drifted" else StackDrift(problem=problem)
            )
        if running:
            time.sleep(POLL_SECONDS)
    return found


def _status(cfn: Any, detection: str) -> tuple[str, str]:
    """("running" | "drifted" | "done", why it could not tell)."""
    try:
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        return "done", f"drift detection status unreadable: {exc}"
    state = status.get("DetectionStatus")
    if state == "DETECTION_IN_PROGRESS":
        return "running", ""
    if status.get("StackDriftStatus") == "DRIFTED":
        return "drifted", ""  # a failed detection may still have found drift on some resources
    if state == "DETECTION_FAILED":
        return (
            "done",
            f"drift detection failed: {status.get('DetectionStatusReason') or 'no reason given'}",
        )
    return "done", ""


def _resources(cfn: Any, stack_id: str) -> StackDrift:
    """The drifted resources, page by page (botocore has no paginator for this call)."""
    resources: list[ResourceDrift] = []
    kwargs: dict[str, Any] = {
        "StackName": stack_id,
        "StackResourceDriftStatusFilters": [MODIFIED, DELETED],
        "MaxResults": 100,
    }
    try:
        while True:
            page = cfn.describe_stack_resource_drifts(**kwargs)
            resources += [_resource(item) for item in page.get("StackResourceDrifts", ())]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        return StackDrift(problem=f"drifted resources unreadable: {exc}")
    return StackDrift(tuple(sorted(resources, key=lambda r: r.logical_id)))


def _resource(item: dict[str, Any]) -> ResourceDrift:
    differences = tuple(
        f"{d.get('PropertyPath', '').lstrip('/')} is {d.get('ActualValue')}, "
        f"the template says {d.get('ExpectedValue')}"
        for d in item.get("PropertyDifferences", ())
    )
    return ResourceDrift(
        str(item.get("LogicalResourceId", "")),
        str(item.get("ResourceType", "")),
        str(item.get("StackResourceDriftStatus", "")),
        differences,
    )
