"""Which planned actions may start now: the plan's dependency graph, kept as counters.

Each action counts the dependencies it still waits for and knows its dependants, so finishing
one action touches only its own dependants; deletes wait on one barrier per rank rather than
on every removed stack of a lower rank. Everything is linear in the number of actions.
Plain bookkeeping: no AWS here, the applier asks and tells.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from controller.core.plan import PlannedAction
from controller.core.results import BAD_OUTCOMES, ActionResult, Outcome

_WHICH = {
    Outcome.FAILED: "failed",
    Outcome.SKIPPED: "was skipped",
    Outcome.BLOCKED: "is blocked",
    Outcome.WAITING: "is not ready yet",
}


@dataclass
class _Node:
    action: PlannedAction | None
    """None for a rank barrier."""
    waiting_for: int = 0
    dependants: tuple[str, ...] = ()
    height: int = 0
    """How many levels of dependants hang below: the longest chains start first."""


def _barrier(rank: int) -> str:
    return f"\0deletes of rank < {rank}"


class Schedule:
    def __init__(self, actions: Sequence[PlannedAction]) -> None:
        self._order = {a.stack_name: i for i, a in enumerate(actions)}
        self._nodes: dict[str, _Node] = {a.stack_name: _Node(a) for a in actions}
        edges: dict[str, list[str]] = {name: [] for name in self._nodes}
        for action in actions:
            for dep in action.depends_on:
                if dep in self._nodes and dep != action.stack_name:
                    edges[dep].append(action.stack_name)
        self._add_rank_barriers(actions, edges)
        for name, dependants in edges.items():
            self._nodes[name].dependants = tuple(dependants)
            for dependant in dependants:
                self._nodes[dependant].waiting_for += 1
        self._heights()
        self._ready: list[tuple[int, int, str]] = []
        self._unfinished = len(actions)
        for name, node in self._nodes.items():
            if node.waiting_for == 0 and node.action is not None:
                self._push(name)

    def _add_rank_barriers(
        self, actions: Sequence[PlannedAction], edges: dict[str, list[str]]
    ) -> None:
        """Barrier r is passed once every removed stack of a rank below r is done."""
        ranks = sorted({a.delete_rank for a in actions if a.delete_rank is not None})
        for lower, upper in itertools.pairwise(ranks):
            key = _barrier(upper)
            self._nodes[key] = _Node(None)
            edges[key] = []
            below = _barrier(lower)
            if below in self._nodes:
                edges[below].append(key)
            for action in actions:
                if action.delete_rank == lower:
                    edges[action.stack_name].append(key)
                elif action.delete_rank == upper:
                    edges[key].append(action.stack_name)

    def _heights(self) -> None:
        """Depth-first, without recursion: a post-order walk of each dependant chain."""
        done: dict[str, int] = {}
        entered: set[str] = set()
        for root in self._nodes:
            walk = [root]
            while walk:
                current = walk[-1]
                node = self._nodes[current]
                if current in done:
                    walk.pop()
                elif current not in entered:
                    entered.add(current)
                    walk.extend(d for d in node.dependants if d not in entered)
                else:
                    walk.pop()
                    below = (done.get(d, 0) for d in node.dependants)
                    node.height = done[current] = 1 + max(below, default=-1)

    def _push(self, name: str) -> None:
        heapq.heappush(self._ready, (-self._nodes[name].height, self._order[name], name))

    @property
    def finished(self) -> bool:
        return self._unfinished == 0

    @property
    def remaining(self) -> int:
        return self._unfinished

    def ready(self, limit: int | None = None) -> list[PlannedAction]:
        """Actions whose dependencies are all done, the longest chains first."""
        out: list[PlannedAction] = []
        while self._ready and (limit is None or len(out) < limit):
            action = self._nodes[heapq.heappop(self._ready)[2]].action
            assert action is not None
            out.append(action)
        return out

    def height(self, name: str) -> int:
        """Levels of dependants below the action: the longest chains go first."""
        return self._nodes[name].height

    def has_ready(self) -> bool:
        return bool(self._ready)

    def finish(self, result: ActionResult) -> list[ActionResult]:
        """Record a finished action; returns the results of dependants that cannot run now."""
        self._unfinished -= 1
        if result.outcome in BAD_OUTCOMES | {Outcome.WAITING}:
            return self._cut(result.stack_name, result)
        released: list[str] = [result.stack_name]
        while released:
            for dependant in self._nodes[released.pop()].dependants:
                node = self._nodes[dependant]
                node.waiting_for -= 1
                if node.waiting_for == 0:
                    if node.action is None:
                        released.append(dependant)
                    else:
                        self._push(dependant)
        return []

    def drain(self, outcome: Outcome, message: str) -> list[ActionResult]:
        """End every action that has not started (a refused write, a spent wait budget)."""
        ended = self.ready()
        ended += [
            node.action
            for node in self._nodes.values()
            if node.action is not None and node.waiting_for > 0
        ]
        for node in self._nodes.values():
            node.waiting_for = -1
        results = [_result(a, outcome, message) for a in ended]
        self._unfinished -= len(results)
        return results

    def _cut(self, name: str, cause: ActionResult) -> list[ActionResult]:
        """Dependants of a failure are skipped; those of a stack not ready yet wait with it."""
        outcome = Outcome.WAITING if cause.outcome is Outcome.WAITING else Outcome.SKIPPED
        verb = "waits for" if outcome is Outcome.WAITING else "skipped: depends on"
        message = f"{verb} {cause.stack_name}, which {_WHICH[cause.outcome]}"
        out: list[ActionResult] = []
        pending = list(self._nodes[name].dependants)
        while pending:
            node = self._nodes[pending.pop()]
            if node.waiting_for < 0:
                continue
            node.waiting_for = -1
            pending.extend(node.dependants)
            if node.action is not None:
                out.append(_result(node.action, outcome, message))
        self._unfinished -= len(out)
        return out


def _result(action: PlannedAction, outcome: Outcome, message: str) -> ActionResult:
    return ActionResult(action.stack_name, action.pipeline_type, action.action, outcome, message)
