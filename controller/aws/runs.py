"""Run-once jobs (batch transform, monitor baseline) started through the stack's state machine.

The execution name is derived from the inputs that define the job, and Step Functions refuses
to start a second execution of the same name: starting twice (a retry, a crash, two
controllers) is harmless, and a changed model or input gets a new name and a new job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controller.core.render import RunOnce

FINISHED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
NOT_STARTED = "NOT_STARTED"


@dataclass(frozen=True)
class RunStatus:
    status: str
    """NOT_STARTED, RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED."""
    detail: str = ""


def execution_arn(state_machine_arn: str, name: str) -> str:
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


def start(
    stepfunctions: Any, state_machine_arn: str, run: RunOnce, *, describe: bool = True
) -> RunStatus:
    """Start the run, or find it started: one call when it is new and `describe` is off.

    A started job that must be waited for (a baseline) is described at once, since a fast
    one may be done already; one that is only started (a batch transform) need not be."""
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=run.execution_name, input="{}"
        )
    except stepfunctions.exceptions.ExecutionAlreadyExists:
        return status(stepfunctions, state_machine_arn, run)
    if not describe:
        return RunStatus("RUNNING")
    return status(stepfunctions, state_machine_arn, run)


def status(stepfunctions: Any, state_machine_arn: str, run: RunOnce) -> RunStatus:
    try:
        found = stepfunctions.describe_execution(
            executionArn=execution_arn(state_machine_arn, run.execution_name)
        )
    except stepfunctions.exceptions.ExecutionDoesNotExist:
        return RunStatus(NOT_STARTED)
    detail = found.get("cause") or found.get("error") or ""
    if not detail and found.get("output"):
        detail = json.dumps(found["output"])[:200]
    return RunStatus(found["status"], detail)
