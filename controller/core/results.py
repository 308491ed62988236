"""What applying a plan did, per stack and as a whole: plain values for reports and the ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from controller.core.plan import Action


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    WAITING = "waiting"
    BLOCKED = "blocked"


BAD_OUTCOMES = frozenset({Outcome.FAILED, Outcome.SKIPPED, Outcome.BLOCKED})


@dataclass(frozen=True)
class ActionResult:
    stack_name: str
    pipeline_type: str
    action: Action
    outcome: Outcome
    message: str
    seconds: float = 0.0


@dataclass(frozen=True)
class ApplyResult:
    revision: str | None
    results: tuple[ActionResult, ...]
    refusal: str = ""
    stopped: str = ""
    """Why the applier stopped before the end (its wait budget spent, a write refused): work
    was left running or not started, and the next run continues it."""
    notes: tuple[str, ...] = ()
    """What the run found besides its own actions, such as an earlier apply interrupted."""
    superseded: bool = False
    """Refused because a newer commit is applied already: a late build, not a failure."""

    @property
    def ok(self) -> bool:
        return not self.refusal and not any(r.outcome in BAD_OUTCOMES for r in self.results)


ResultSink = Callable[[ActionResult], None]
