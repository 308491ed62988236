"""A CloudFormation stack event as the controller shows it live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StackEvent:
    stack_name: str
    timestamp: datetime
    logical_id: str
    resource_type: str
    status: str
    reason: str


EventSink = Callable[[StackEvent], None]
