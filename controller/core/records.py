"""What the ledger records about each apply, as values: `history`, notifications and the
stale-commit guard read them; `controller.aws.ledger` stores them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core import provenance
from controller.core.plan import Plan
from controller.core.render import RenderedStack
from controller.core.results import ActionResult, ApplyResult

STAMP = "%Y%m%dT%H%M%S.%fZ"
"""Sorts as text in time order, so S3's key order is the ledger's order."""


@dataclass(frozen=True)
class StackRecord:
    stack_name: str
    pipeline_type: str
    action: str
    reason: str
    outcome: str
    message: str
    model: str = ""
    """The model the stack runs as applied (`provenance`); empty in older records."""


def _model(desired: RenderedStack | None) -> str:
    if desired is None:
        return ""
    return provenance.from_parameters(dict(desired.parameters), locations=False)


@dataclass(frozen=True)
class Deployment:
    """One apply, as the ledger and the notification describe it."""

    commit: str | None
    time: datetime
    actor: str
    source: str
    ok: bool
    refusal: str
    stacks: tuple[StackRecord, ...]
    interrupted: bool = False
    """The apply never finished (killed, or it lost its lease); recorded by the next one."""

    @classmethod
    def of(
        cls, plan: Plan, result: ApplyResult, *, actor: str, source: str, now: datetime
    ) -> Deployment:
        outcomes: dict[str, ActionResult] = {r.stack_name: r for r in result.results}
        stacks = tuple(
            StackRecord(
                a.stack_name,
                a.pipeline_type,
                a.action.value,
                a.reason,
                outcomes[a.stack_name].outcome.value if a.stack_name in outcomes else "not run",
                outcomes[a.stack_name].message if a.stack_name in outcomes else "",
                _model(a.desired),
            )
            for a in plan.actions
        )
        return cls(result.revision, now, actor, source, result.ok, result.refusal, stacks)

    @property
    def changed(self) -> tuple[StackRecord, ...]:
        return tuple(s for s in self.stacks if s.outcome not in ("unchanged", "waiting"))

    @property
    def failed(self) -> tuple[StackRecord, ...]:
        return tuple(s for s in self.stacks if s.outcome in ("failed", "skipped", "blocked"))

    @property
    def key_name(self) -> str:
        return f"{self.time.strftime(STAMP)}-{(self.commit or 'no-commit')[:12]}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "source": self.source,
            "ok": self.ok,
            "refusal": self.refusal or None,
            "interrupted": self.interrupted,
            "stacks": [vars(s) for s in self.stacks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deployment:
        return cls(
            data.get("commit"),
            datetime.fromisoformat(str(data["time"]).replace("Z", "+00:00")),
            str(data.get("actor", "")),
            str(data.get("source", "")),
            bool(data.get("ok")),
            str(data.get("refusal") or ""),
            tuple(StackRecord(**s) for s in data.get("stacks", ())),
            bool(data.get("interrupted", False)),
        )


@dataclass(frozen=True)
class Pointer:
    """`last-applied.json`: the commit the stale-commit guard compares every apply with."""

    commit: str
    record: str
    ok: bool
    """Whether that apply succeeded; a failed one is retried by `watch`, never skipped."""


@dataclass(frozen=True)
class Intent:
    """An apply that is writing now, or was killed while it did."""

    deployment: Deployment
    """What it was about to do: every planned write, with the outcome "interrupted"."""
    record: str
    """The key its record gets when it finishes."""
    moves_pointer: bool = True
    """False for a targeted apply of a commit the deployment branch does not hold: its
    record, interrupted or not, never moves the pointer (see `Ledger.record`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "deployment": self.deployment.to_json(),
            "moves_pointer": self.moves_pointer,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Intent:
        return cls(
            Deployment.from_json(data["deployment"]),
            str(data["record"]),
            bool(data.get("moves_pointer", True)),
        )

    @classmethod
    def of(cls, plan: Plan, *, actor: str, source: str, now: datetime, prefix: str) -> Intent:
        stacks = tuple(
            StackRecord(
                a.stack_name,
                a.pipeline_type,
                a.action.value,
                a.reason,
                "interrupted",
                "the apply stopped before reporting this; the next plan re-reads the stack",
            )
            for a in plan.changes
        )
        deployment = Deployment(plan.revision, now, actor, source, False, "", stacks, True)
        return cls(deployment, prefix + deployment.key_name)
