"""How far an apply has come, as the applier reports it while it works."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    running: int
    """Actions started and not finished: operations in flight and calls being made."""
    waiting: int
    """Actions not started yet: their dependencies are not done, or the cap is reached."""
    limit: int
    """Operations allowed in flight now: the cap, lowered while AWS throttles."""
    cap: int
    seconds: float

    def same_counts(self, other: Progress | None) -> bool:
        return other is not None and (self.done, self.running, self.waiting, self.limit) == (
            other.done,
            other.running,
            other.waiting,
            other.limit,
        )


ProgressSink = Callable[[Progress], None]
