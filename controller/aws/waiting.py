"""Waiting for CloudFormation, with its events streamed as they happen.

All polling lives here (as kopf keeps its machinery away from handlers): boto3's waiters poll
every 30 s and say nothing, while a person watching a deploy wants each resource event live.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.aws.discover import describe
from controller.core.events import EventSink, StackEvent
from controller.core.stacks import DeployedStack

POLL_SECONDS = float(os.environ.get("MLOPS_POLL_SECONDS", "2"))
TIMEOUT_SECONDS = float(os.environ.get("MLOPS_STACK_TIMEOUT_SECONDS", "3600"))


@dataclass(frozen=True)
class Settled:
    """Where a stack came to rest, with the first failure reason its events gave."""

    stack: DeployedStack | None
    failure_reason: str
    timed_out: bool = False

    @property
    def status(self) -> str:
        return self.stack.status if self.stack else "DELETE_COMPLETE"


def wait_until_settled(
    cloudformation: Any,
    stack_id: str,
    stack_name: str,
    since: datetime,
    on_event: EventSink,
    *,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Settled:
    seen: set[str] = set()
    failures: list[str] = []
    deadline = time.monotonic() + timeout_seconds
    while True:
        stack = describe(cloudformation, stack_id)
        for event in _new_events(cloudformation, stack_id, stack_name, since, seen):
            on_event(event)
            if event.status.endswith("FAILED") and _is_cause(event.reason):
                failures.append(f"{event.logical_id}: {event.reason}")
        if stack is None or not stack.status.endswith("_IN_PROGRESS"):
            reason = failures[0] if failures else (stack.status_reason if stack else "")
            return Settled(stack, reason)
        if time.monotonic() > deadline:
            return Settled(stack, f"still {stack.status} after {timeout_seconds:.0f} s", True)
        time.sleep(poll_seconds)


def _is_cause(reason: str) -> bool:
    """CloudFormation marks the siblings of a failed resource as cancelled; those are noise."""
    return bool(reason) and "cancelled" not in reason.lower()


def _new_events(
    cloudformation: Any, stack_id: str, stack_name: str, since: datetime, seen: set[str]
) -> list[StackEvent]:
    try:
        page = cloudformation.describe_stack_events(StackName=stack_id)
    except cloudformation.exceptions.ClientError:
        return []
    fresh = []
    for item in page.get("StackEvents", []):
        event_id = item.get("EventId", "")
        stamp = item.get("Timestamp")
        if event_id in seen or (stamp is not None and _utc(stamp) < _utc(since)):
            continue
        seen.add(event_id)
        fresh.append(
            StackEvent(
                stack_name=stack_name,
                timestamp=stamp or since,
                logical_id=item.get("LogicalResourceId", ""),
                resource_type=item.get("ResourceType", ""),
                status=item.get("ResourceStatus", ""),
                reason=item.get("ResourceStatusReason", "") or "",
            )
        )
    return list(reversed(fresh))


def _utc(stamp: datetime) -> datetime:
    """Compare instants whatever the server's timezone style (moto and AWS differ)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
