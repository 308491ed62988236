"""Waiting for CloudFormation, with its events streamed as they happen.

All polling lives here and in `watcher` (as kopf keeps its machinery away from handlers):
boto3's waiters poll every 30 s and say nothing, while a person watching a deploy wants each
resource event live. The applier shares one `Watcher` among all its operations; a single
stack (the bootstrap) waits through the same watcher here.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from controller.aws.discover import describe
from controller.aws.watcher import Operation, Settled, Watcher
from controller.core.events import EventSink

POLL_SECONDS = float(os.environ.get("MLOPS_POLL_SECONDS", "1"))
"""One watcher polls for every stack, so a short interval costs one listing a second."""
TIMEOUT_SECONDS = float(os.environ.get("MLOPS_STACK_TIMEOUT_SECONDS", "3600"))

__all__ = ["POLL_SECONDS", "TIMEOUT_SECONDS", "Settled", "wait_until_settled"]


def wait_until_settled(
    cloudformation: Any,
    stack_id: str,
    stack_name: str,
    since: datetime,
    on_event: EventSink,
    *,
    token: str | None = None,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> Settled:
    """One stack's operation (identified by `token` when the request carried one)."""
    watcher = Watcher(cloudformation, on_event, live_budget=1)
    operation = Operation(stack_name, stack_id, token, since)
    watcher.track(operation)
    deadline = time.monotonic() + timeout_seconds
    while True:
        for _, settled in watcher.poll():
            return settled
        if time.monotonic() > deadline:
            stack = describe(cloudformation, stack_id)
            status = stack.status if stack else "gone"
            return Settled(stack, f"still {status} after {timeout_seconds:.0f} s", True)
        time.sleep(poll_seconds)
