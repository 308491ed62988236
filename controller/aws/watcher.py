"""One watcher for every stack operation in flight, at a cost that does not grow with them.

Each poll lists the account's stacks that are in progress (`ListStacks` filtered to the
`*_IN_PROGRESS` states, paginated): an operation whose stack left that list has finished, and
only then is its stack read, one `DescribeStacks` each, or one listing when that is cheaper.
Events are read for stacks that failed (for the reason) and, for live output, for a few
operations per poll interval in turn (`live_budget`), so a thousand stacks in flight cost the
listing pages plus a constant, where polling each stack would cost a thousand calls.

Events belong to an operation by their `ClientRequestToken` (CloudFormation stamps every event
of an operation with the token the request carried), so the events of the previous operation
on the same stack are never replayed as if they were new.

The watcher also learns how long operations of a kind (a create of an image builder, say)
take: the shortest time one was still listed in progress. Others of that kind are then
"due" from that point on, so the applier may look sooner, and only then, rather than poll
everything faster.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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
"""DescribeStackEvents calls per poll interval for live output, whatever the number of
stacks."""
LISTING_PAGE = 100
"""Stacks in one DescribeStacks page on CloudFormation."""
UNREAD_POLLS = 3
"""Polls that try to read a failed stack's events (for its reason) before settling without."""
READ_EACH = 8
"""Up to this many finished stacks are read one by one, at once, rather than by a listing: a
page of the listing carries a hundred stacks' parameters and outputs and takes CloudFormation
(and the emulator) far longer to build than a few single reads."""


@dataclass(frozen=True)
class Operation:
    """A stack operation to wait for: one this run started (with its token) or found running."""

    stack_name: str
    stack_id: str
    token: str | None
    started: datetime
    """Events without a token (an endpoint that does not stamp them) count from here."""
    kind: str = ""
    """Operations of one kind take about as long as each other (`create byom_image_builder`);
    empty when unknown (an operation another run started)."""


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
    since: float = field(default_factory=time.monotonic)
    """When the request that started the operation was answered (monotonic)."""
    busy_at: float | None = None
    """When a listing, sent at that moment, last showed it still in progress."""
    reason: str = ""
    """The first failure reason among its events (live output may read them first)."""
    unread: int = 0
    """Polls that found it failed but could not read its events."""


class Watcher:
    """`track` and `forget` may be called while `poll` runs on another thread; one thread
    polls at a time."""

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
        self._lock = threading.Lock()
        self._turn = 0
        self._finished: deque[_Tracked] = deque(maxlen=live_budget)
        """The last operations to finish well, whose final events are still to be shown."""
        self._emitting = threading.Lock()
        """One operation's events are read and shown by one thread at a time."""
        self._shortest: dict[str, float] = {}
        """Per kind (and per verb, for kinds not seen finish yet), the shortest time a finished
        operation of it is known to have taken: from its start to the last listing that still
        showed it in progress."""
        self.pages = 1
        """Pages the last in-progress listing took."""

    def track(self, operation: Operation) -> None:
        with self._lock:
            self._tracked[operation.stack_id] = _Tracked(operation, token=operation.token)

    def forget(self, stack_id: str) -> None:
        with self._lock:
            self._tracked.pop(stack_id, None)

    @property
    def in_flight(self) -> int:
        return len(self._tracked)

    def next_due(self, after: float, window: float) -> float | None:
        """The earliest moment, not before `after`, at which an operation in flight is due.

        An operation is due for `window` seconds from the time the shortest finished
        operation of its kind took; outside such windows nothing is expected to finish."""
        with self._lock:
            tracked = list(self._tracked.values())
        due = None
        for t in tracked:
            kind = t.operation.kind
            took = self._shortest.get(kind, self._shortest.get(_verb(kind)))
            if took is None or t.since + took + window <= after:
                continue
            moment = max(after, t.since + took)
            due = moment if due is None else min(due, moment)
        return due

    def poll(self, live: bool = True) -> list[tuple[Operation, Settled]]:
        """One round: the operations that finished since the last one, with their stacks.

        `live`: then show new events (`show_live`); the applier shows them apart, after it
        has the finished operations in hand."""
        with self._lock:
            watched = list(self._tracked.values())
        if not watched:
            return []
        listed_at = time.monotonic()
        busy = self._busy()
        candidates = []
        for t in watched:
            if t.operation.stack_id in busy:
                t.busy_at = listed_at
            else:
                candidates.append(t)
        now = self._read([t.operation for t in candidates])
        finished: list[tuple[Operation, Settled]] = []
        for tracked in candidates:
            stack = now.get(tracked.operation.stack_id)
            if stack is not None and stack.status in IN_PROGRESS:
                continue  # the listing lagged behind; look again next round
            failed = stack is not None and _failed(stack.status)
            reason = self._emit(tracked) if failed else ""
            if reason is None:
                tracked.unread += 1
                if tracked.unread < UNREAD_POLLS:
                    continue  # read its reason at the next poll
                reason = tracked.reason
            if stack is not None and stack.status == "DELETE_COMPLETE":
                stack = None
            if not reason and stack is not None:
                reason = stack.status_reason
            if not failed:
                self._finished.append(tracked)
            self._learn(tracked)
            self.forget(tracked.operation.stack_id)
            finished.append((tracked.operation, Settled(stack, reason)))
        if live:
            self.show_live()
        return finished

    def show_live(self) -> None:
        """New events of `live_budget` operations: the last to finish (a failed one's were
        read for its reason already), then those in flight, in turn."""
        budget = self.live_budget
        while budget > 0 and self._finished:
            self._emit(self._finished.popleft())
            budget -= 1
        with self._lock:
            tracked = list(self._tracked.values())
        for i in range(min(budget, len(tracked))):
            self._emit(tracked[(self._turn + i) % len(tracked)])
        self._turn = (self._turn + max(0, budget)) % max(1, len(tracked))

    def _learn(self, tracked: _Tracked) -> None:
        kind = tracked.operation.kind
        if kind and tracked.busy_at is not None:
            took = max(0.0, tracked.busy_at - tracked.since)
            for key in (kind, _verb(kind)):
                self._shortest[key] = min(took, self._shortest.get(key, took))

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
        if len(operations) > max(pages, READ_EACH):
            return {s.stack_id: s for s in discover(self.cfn)}
        with ThreadPoolExecutor(max_workers=len(operations)) as readers:
            stacks = readers.map(lambda o: describe(self.cfn, o.stack_id), operations)
            return {o.stack_id: s for o, s in zip(operations, stacks, strict=True) if s}

    def _emit(self, tracked: _Tracked) -> str | None:
        """Show the operation's new events; the first failure reason seen in its events so
        far ("" when none); None when the events could not be read."""
        with self._emitting:
            try:
                page = self.cfn.describe_stack_events(StackName=tracked.operation.stack_id)
            except self.cfn.exceptions.ClientError:
                return None
            items = page.get("StackEvents", [])
            if tracked.token is None:
                tracked.token = _newest_token(items)
            fresh = [
                item
                for item in of_operation(items, tracked.token, tracked.operation.started)
                if item.get("EventId", "") not in tracked.seen
            ]
            for item in reversed(fresh):
                tracked.seen.add(item.get("EventId", ""))
                event = _event(item, tracked.operation)
                self.on_event(event)
                cause = event.status.endswith("FAILED") and _is_cause(event.reason)
                if cause and not tracked.reason:
                    tracked.reason = f"{event.logical_id}: {event.reason}"
            return tracked.reason


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


def _verb(kind: str) -> str:
    """`create` of `create byom_image_builder`: a kind not seen finish yet is expected to take
    at least as long as the shortest operation of the same verb."""
    return kind.split(" ", 1)[0] + " (any)"


def _failed(status: str) -> bool:
    return "ROLLBACK" in status or status.endswith("FAILED")


def _is_cause(reason: str) -> bool:
    """CloudFormation marks the siblings of a failed resource as cancelled; those are noise."""
    return bool(reason) and "cancelled" not in reason.lower()


def _utc(stamp: datetime) -> datetime:
    """Compare instants whatever the server's timezone style (moto and AWS differ)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
