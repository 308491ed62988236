"""How multi-account runs look: every stage's plan, a promotion's progress, and its history.

Presentation only, over finished values; each stage's own plan is drawn by `report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from controller.core import report
from controller.core.gates import (
    Approval,
    Decision,
    GateState,
    Outcome,
    Promotion,
    StagePlan,
    StageRun,
    Step,
)

OUTCOME_STYLE = {
    Outcome.APPLIED: "green",
    Outcome.VERIFIED: "green",
    Outcome.INCOMPLETE: "blue",
    Outcome.FAILED: "bold red",
    Outcome.REFUSED: "bold red",
    Outcome.UNREACHABLE: "bold red",
}


def describe(step: Step) -> str:
    """`dev: account 111111111111, us-east-1, manual approval`."""
    stage = step.stage
    if stage is None:
        return f"{step.name}: this account, {step.config.settings.region}, image builders"
    approval = ", manual approval" if stage.manual else ""
    verified = f", promotes after {stage.promote_after.describe()}" if stage.promote_after else ""
    return f"{step.name}: account {stage.account_id}, {stage.region}{approval}{verified}"


def order(chain: Sequence[Step]) -> str:
    return " -> ".join(
        s.name
        + (" (approval)" if s.stage and s.stage.manual else "")
        + (f" ({s.stage.promote_after.describe()})" if s.stage and s.stage.promote_after else "")
        for s in chain
    )


def print_step(step: Step, console: Console) -> None:
    console.print(Rule(describe(step), align="left"))


def print_plans(plans: Sequence[StagePlan], console: Console) -> None:
    for planned in plans:
        print_step(planned.step, console)
        if planned.plan is None:
            console.print(Text.assemble(("No plan: ", "bold red"), planned.problem))
        else:
            report.print_plan(planned.plan, console, planned.step.config.source)


def plans_json(plans: Sequence[StagePlan]) -> dict[str, Any]:
    revision = next((p.plan.revision for p in plans if p.plan is not None), None)
    return {
        "revision": revision,
        "stages": [
            {
                **_step_json(p.step),
                "problem": p.problem or None,
                "plan": report.plan_json(p.plan) if p.plan is not None else None,
            }
            for p in plans
        ],
    }


def plans_markdown(plans: Sequence[StagePlan], limit: int | None = None) -> str:
    """Every stage's plan in one comment; when they do not all fit, each stage gets a share
    of `limit` (short plans whole, the room they leave to longer ones)."""
    head = f"**Promotion order:** {order([p.step for p in plans])}\n\n"
    renderers = [_stage_markdown(p) for p in plans]
    full = [render(None) for render in renderers]
    room = None if limit is None else limit - len(head)
    if room is None or sum(len(text) + 1 for text in full) <= room:
        return head + "\n".join(full)
    shown = [""] * len(full)
    remaining = room
    by_length = sorted(range(len(full)), key=lambda i: len(full[i]))
    for done, index in enumerate(by_length):
        share = remaining // (len(full) - done) - 1
        shown[index] = full[index] if len(full[index]) <= share else renderers[index](share)
        remaining -= len(shown[index]) + 1
    return head + "\n".join(shown)


def _stage_markdown(planned: StagePlan) -> Callable[[int | None], str]:
    def render(limit: int | None) -> str:
        if planned.plan is None:
            text = f"### {describe(planned.step)}\n\n> **No plan:** {planned.problem}\n"
            return text if limit is None else text[:limit]
        return report.plan_markdown(planned.plan, planned.step.config.source, limit=limit)

    return render


def print_runs(chain: Sequence[Step], runs: Sequence[StageRun], console: Console) -> None:
    """Where the commit got to: each step's gate and outcome, and the steps not reached."""
    commit = next((r.result.revision for r in runs if r.result and r.result.revision), None)
    title = "Promotion" + (f" of {commit[:12]}" if commit else "")
    table = Table(title=title, title_justify="left")
    for column in ("step", "where", "gate", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    done = {r.step.name: r for r in runs}
    for step in chain:
        run = done.get(step.name)
        where = describe(step).partition(": ")[2]
        if run is None:
            table.add_row(step.name, where, "", Text("not reached", style="dim"), "")
            continue
        # Reasons and messages quote users and AWS: shown as text, never read as markup.
        gate_style = {"open": "green", "waiting": "blue", "rejected": "bold red"}
        gate = Text(run.gate.state.value, style=gate_style[run.gate.state.value])
        if run.outcome is None:
            table.add_row(step.name, where, gate, Text("-", style="dim"), Text(run.gate.reason))
        else:
            verdict = Text(run.outcome.value, style=OUTCOME_STYLE[run.outcome])
            table.add_row(step.name, where, gate, verdict, Text(run.message))
    console.print(table)


def runs_json(runs: Sequence[StageRun]) -> list[dict[str, Any]]:
    return [
        {
            **_step_json(r.step),
            "gate": r.gate.state.value,
            "gate_reason": r.gate.reason,
            "outcome": r.outcome.value if r.outcome else None,
            "message": r.message,
            "apply": report.apply_json(r.result) if r.result else None,
        }
        for r in runs
    ]


def stopped(runs: Sequence[StageRun]) -> str:
    """One line on why the promotion stopped where it did (empty when it went all the way)."""
    if not runs:
        return ""
    last = runs[-1]
    if last.gate.state is GateState.WAITING:
        return f"{last.step.name} {last.gate.reason}"
    if last.gate.state is GateState.REJECTED:
        return f"stopped at {last.step.name}: {last.gate.reason}"
    if last.outcome is not None and last.outcome is not Outcome.APPLIED:
        return f"stopped at {last.step.name}: {last.outcome.value}: {last.message}"
    return ""


def print_history(
    promotions: Sequence[Promotion], approvals: Sequence[Approval], console: Console, where: str
) -> None:
    table = Table(title=f"Promotions in {where}, newest first", title_justify="left")
    for column in ("time (UTC)", "stage", "commit", "outcome", "actor", "detail"):
        table.add_column(column, overflow="fold")
    for item in promotions:
        table.add_row(
            item.time.strftime("%Y-%m-%d %H:%M:%S"),
            item.stage,
            item.commit[:12],
            Text(item.outcome.value, style=OUTCOME_STYLE[item.outcome]),
            Text(item.actor),
            Text(item.message),
        )
    console.print(table if promotions else "No promotions recorded.")
    table = Table(title="Approvals, newest first", title_justify="left")
    for column in ("time (UTC)", "stage", "commit", "decision", "by", "note"):
        table.add_column(column, overflow="fold")
    for decision in approvals:
        style = "green" if decision.decision is Decision.APPROVED else "bold red"
        table.add_row(
            decision.time.strftime("%Y-%m-%d %H:%M:%S"),
            decision.stage,
            decision.commit[:12],
            Text(decision.decision.value, style=style),
            Text(decision.who),
            Text(decision.note),
        )
    console.print(table if approvals else "No approvals recorded.")


def _step_json(step: Step) -> dict[str, Any]:
    stage = step.stage
    return {
        "stage": step.name,
        "account_id": stage.account_id if stage else None,
        "region": stage.region if stage else step.config.settings.region,
        "approval": ("manual" if stage.manual else "automatic") if stage else "automatic",
    }
