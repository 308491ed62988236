"""One watcher for every stack operation in flight, at a cost that does not grow with them.

Each poll lists the account's stacks that are in progress (`ListStacks` filtered to the
`*_IN_PROGRESS` states, paginated): an operation whose stack left that list has finished, and
only then is its stack read, one `DescribeStacks` each, or one listing when that is cheaper.
Events are read for stacks that failed (for the reason) and, for live output, for a few
operations per poll in turn (`live_budget`), so a thousand stacks in flight cost the listing
pages plus a constant, where polling each stack would cost a thousand calls.

Events belong to an operation by their `ClientRequestToken` (CloudFormation stamps every event
of an operation with the token the request carried), so the events of the previous operation
on the same stack are never replayed as if they were new.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.aws.discover import describe, discover
from controller.core.events import EventSink, StackEvent
from controller.core.stacks import DeployedStack

IN_PROGRESS = (
    "CREATE_IN_PROGRESS",
    "DELETE_IN_PROGRESS",
    "ROLLBACK_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
    "IMPORT_ROLLBACK_IN_PROGRESS",
)
"""Every state an operation passes through; REVIEW_IN_PROGRESS is left out: it never ends by
itself (a change set nobody executed)."""
LIVE_BUDGET = 3
"""DescribeStackEvents calls per poll for live output, whatever the number of stacks."""
LISTING_PAGE = 100
"""Stacks in one DescribeStacks page on CloudFormation."""


@dataclass(frozen=True)
class Operation:
    """A stack operation to wait for: one this run started (with its token) or found running."""

    stack_name: str
    stack_id: str
    token: str | None
    started: datetime
    """Events without a token (an endpoint that does not stamp them) count from here."""


@dataclass(frozen=True)
class Settled:
    """Where a stack came to rest, with the first failure reason its events gave."""

    stack: DeployedStack | None
    failure_reason: str
    timed_out: bool = False

    @property
    def status(self) -> str:
        return self.stack.status if self.stack else "DELETE_COMPLETE"


@dataclass
class _Tracked:
    operation: Operation
    seen: set[str] = field(default_factory=set)
    token: str | None = None


class Watcher:
    """Not thread-safe: one loop calls `track` and `poll`."""

    def __init__(
        self,
        cloudformation: Any,
        on_event: EventSink,
        *,
        live_budget: int = LIVE_BUDGET,
        account_stacks: int = 0,
    ) -> None:
        self.cfn = cloudformation
        self.on_event = on_event
        self.live_budget = live_budget
        self.account_stacks = account_stacks
        """About how many stacks a full listing returns: it decides listing vs one read each."""
        self._tracked: dict[str, _Tracked] = {}
        self._turn = 0
        self.pages = 1
        """Pages the last in-progress listing took."""

    def track(self, operation: Operation) -> None:
        self._tracked[operation.stack_id] = _Tracked(operation, token=operation.token)

    def forget(self, stack_id: str) -> None:
        self._tracked.pop(stack_id, None)

    @property
    def in_flight(self) -> int:
        return len(self._tracked)

    def poll(self) -> list[tuple[Operation, Settled]]:
        """One round: the operations that finished since the last one, with their stacks."""
        if not self._tracked:
            return []
        busy = self._busy()
        candidates = [t for t in self._tracked.values() if t.operation.stack_id not in busy]
        now = self._read([t.operation for t in candidates])
        finished: list[tuple[Operation, Settled]] = []
        budget = self.live_budget
        for tracked in candidates:
            stack = now.get(tracked.operation.stack_id)
            if stack is not None and stack.status in IN_PROGRESS:
                continue  # the listing lagged behind; look again next round
            failed = stack is not None and _failed(stack.status)
            reason = ""
            if failed or budget > 0:
                budget -= 0 if failed else 1
                reason = self._emit(tracked)
            if stack is not None and stack.status == "DELETE_COMPLETE":
                stack = None
            if not reason and stack is not None:
                reason = stack.status_reason
            del self._tracked[tracked.operation.stack_id]
            finished.append((tracked.operation, Settled(stack, reason)))
        self._live(budget)
        return finished

    def _busy(self) -> set[str]:
        busy: set[str] = set()
        pages = self.cfn.get_paginator("list_stacks").paginate(StackStatusFilter=list(IN_PROGRESS))
        self.pages = 0
        for page in pages:
            self.pages += 1
            for summary in page.get("StackSummaries", ()):
                busy.add(summary.get("StackId", ""))
        return busy

    def _read(self, operations: list[Operation]) -> dict[str, DeployedStack]:
        """The stacks of finished operations: one read each, or one listing when cheaper."""
        if not operations:
            return {}
        pages = max(1, math.ceil(self.account_stacks / LISTING_PAGE))
        if len(operations) > pages:
            return {s.stack_id: s for s in discover(self.cfn)}
        found: dict[str, DeployedStack] = {}
        for operation in operations:
            stack = describe(self.cfn, operation.stack_id)
            if stack is not None:
                found[operation.stack_id] = stack
        return found

    def _live(self, budget: int) -> None:
        """A few operations in flight show their new events each round, in turn."""
        if budget <= 0 or not self._tracked:
            return
        tracked = list(self._tracked.values())
        for i in range(min(budget, len(tracked))):
            self._emit(tracked[(self._turn + i) % len(tracked)])
        self._turn = (self._turn + budget) % max(1, len(tracked))

    def _emit(self, tracked: _Tracked) -> str:
        """Show the operation's new events; return the first failure reason among them."""
        try:
            page = self.cfn.describe_stack_events(StackName=tracked.operation.stack_id)
        except self.cfn.exceptions.ClientError:
            return ""
        items = page.get("StackEvents", [])
        if tracked.token is None:
            tracked.token = _newest_token(items)
        fresh = [
            item
            for item in of_operation(items, tracked.token, tracked.operation.started)
            if item.get("EventId", "") not in tracked.seen
        ]
        reasons = []
        for item in reversed(fresh):
            tracked.seen.add(item.get("EventId", ""))
            event = _event(item, tracked.operation)
            self.on_event(event)
            if event.status.endswith("FAILED") and _is_cause(event.reason):
                reasons.append(f"{event.logical_id}: {event.reason}")
        return reasons[0] if reasons else ""


def of_operation(
    items: Iterable[Mapping[str, Any]], token: str | None, started: datetime
) -> list[Mapping[str, Any]]:
    """The events (newest first, as CloudFormation lists them) of one operation.

    By the operation's ClientRequestToken when events carry one; by time only for an event
    without a token, as a last resort."""
    out = []
    for item in items:
        stamp = item.get("ClientRequestToken")
        if stamp:
            if token is not None and stamp == token:
                out.append(item)
        elif (when := item.get("Timestamp")) is None or _utc(when) >= _utc(started):
            out.append(item)
    return out


def _newest_token(items: list[Mapping[str, Any]]) -> str | None:
    """An operation this run did not start: its events carry the newest event's token."""
    for item in items:
        if item.get("ClientRequestToken"):
            return str(item["ClientRequestToken"])
    return None


def _event(item: Mapping[str, Any], operation: Operation) -> StackEvent:
    return StackEvent(
        stack_name=operation.stack_name,
        timestamp=item.get("Timestamp") or operation.started,
        logical_id=item.get("LogicalResourceId", ""),
        resource_type=item.get("ResourceType", ""),
        status=item.get("ResourceStatus", ""),
        reason=item.get("ResourceStatusReason", "") or "",
    )


def _failed(status: str) -> bool:
    return "ROLLBACK" in status or status.endswith("FAILED")


def _is_cause(reason: str) -> bool:
    """CloudFormation marks the siblings of a failed resource as cancelled; those are noise."""
    return bool(reason) and "cancelled" not in reason.lower()


def _utc(stamp: datetime) -> datetime:
    """Compare instants whatever the server's timezone style (moto and AWS differ)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
