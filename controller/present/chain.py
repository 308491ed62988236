"""How a chain looks: every step's plan, a promotion's progress, and its history.

Presentation only, over finished values; each step's own plan is drawn by `report`. A chain
of one step (a config without stages) looks as a single-account config always has: its plan,
its apply, with no step headings; JSON carries `version` and the `stages` list either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from controller.core.chain import (
    JSON_VERSION,
    Chain,
    ChainPlan,
    ChainResult,
    Step,
    StepPlan,
    StepResult,
)
from controller.core.gates import GateState, PromotionOutcome
from controller.present import report

OUTCOME_STYLE = {
    PromotionOutcome.APPLIED: "green",
    PromotionOutcome.VERIFIED: "green",
    PromotionOutcome.INCOMPLETE: "blue",
    PromotionOutcome.FAILED: "bold red",
    PromotionOutcome.REFUSED: "bold red",
    PromotionOutcome.UNREACHABLE: "bold red",
}


def describe(step: Step) -> str:
    """`dev: account 111111111111, us-east-1, manual approval`."""
    stage = step.stage
    if stage is None:
        return f"{step.name}: this account, {step.region}, image builders"
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


def policy_lines(chain: Chain) -> list[str]:
    """The first-class rows of a commit that changes the promotion policy."""
    if not chain.policy_changes:
        return []
    head = (
        "This commit changes the promotion policy; it is promoted under the policy in force "
        "and its own takes force once the chain has applied it completely:"
    )
    return [head, *(f"  - {line}" for line in chain.policy_changes)]


def print_plan(planned: ChainPlan, console: Console, label: str, *, show_all: bool = False) -> None:
    """One step's plan as a plain config's plan; several, each under its step's heading."""
    for line in policy_lines(planned.chain):
        console.print(Text(line, style="bold yellow"), soft_wrap=True)
    if len(planned.chain.steps) == 1 and len(planned.steps) == 1:
        only = planned.steps[0]
        if only.plan is not None:
            report.print_plan(only.plan, console, label, show_all=show_all)
        return
    for step_plan in planned.steps:
        print_step(step_plan.step, console)
        if step_plan.plan is None:
            console.print(
                Text.assemble(("No plan: ", "bold red"), step_plan.problem or step_plan.note)
            )
        else:
            report.print_plan(step_plan.plan, console, step_plan.step.source, show_all=show_all)


def plan_json(planned: ChainPlan) -> dict[str, Any]:
    """Version 2: `version`, `revision`, `policy_changes` and every step under `stages`; a
    chain of one step also keeps its plan's keys at the top level, as version 1 had them."""
    revision = planned.chain.revision
    document: dict[str, Any] = {
        "version": JSON_VERSION,
        "revision": revision,
        "policy_changes": list(planned.chain.policy_changes),
        "stages": [
            {
                **_step_json(p.step),
                "problem": p.problem or None,
                "note": p.note or None,
                "plan": report.plan_json(p.plan) if p.plan is not None else None,
            }
            for p in planned.steps
        ],
    }
    if _one(planned.chain, planned.steps) and planned.steps[0].plan is not None:
        document = {**report.plan_json(planned.steps[0].plan), **document}
    return document


def plan_markdown(planned: ChainPlan, label: str, limit: int | None = None) -> str:
    """Every step's plan in one comment, the policy rows first; when they do not all fit,
    each step gets a share of `limit` (short plans whole, the room they leave to longer ones)."""
    policy = "".join(f"> **{line.strip()}**\n" for line in policy_lines(planned.chain))
    policy += "\n" if policy else ""
    room = None if limit is None else limit - len(policy)
    if _one(planned.chain, planned.steps) and planned.steps[0].plan is not None:
        return policy + report.plan_markdown(planned.steps[0].plan, label, limit=room)
    return policy + _steps_markdown(planned.steps, room)


def _one(chain: Chain, shown: Sequence[object]) -> bool:
    return len(chain.steps) == 1 and len(shown) == 1


def _steps_markdown(plans: Sequence[StepPlan], limit: int | None) -> str:
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


def _stage_markdown(planned: StepPlan) -> Callable[[int | None], str]:
    def render(limit: int | None) -> str:
        if planned.plan is None:
            why = planned.problem or planned.note
            text = f"### {describe(planned.step)}\n\n> **No plan:** {why}\n"
            return text if limit is None else text[:limit]
        return report.plan_markdown(planned.plan, planned.step.source, limit=limit)

    return render


def print_result(done: ChainResult, console: Console, *, show_all: bool = False) -> None:
    """A chain of one step as a plain apply's summary; several as the promotion's table."""
    if _one(done.chain, done.steps) and done.steps[0].result is not None:
        report.print_apply(done.steps[0].result, console, show_all=show_all)
    elif len(done.chain.steps) > 1 or done.steps:
        if len(done.chain.steps) > 1:
            _print_table(done, console)
        if line := stopped(done.steps):
            console.print(line, markup=False, soft_wrap=True)
    if done.error is not None:
        console.print(f"error: {done.error.message} [{done.error.code}]", markup=False)


def _print_table(done: ChainResult, console: Console) -> None:
    """Where the commit got to: each step's gate and outcome, and the steps not reached."""
    commit = done.chain.revision
    title = "Promotion" + (f" of {commit[:12]}" if commit else "")
    table = Table(title=title, title_justify="left")
    for column in ("step", "where", "gate", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    reached = {r.step.name: r for r in done.steps}
    for step in done.chain.steps:
        run = reached.get(step.name)
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


def result_json(done: ChainResult) -> dict[str, Any]:
    """Version 2, as `plan_json`: every step reached under `stages`, an error as a value; a
    chain of one step also keeps its apply's keys at the top level."""
    document: dict[str, Any] = {
        "version": JSON_VERSION,
        "revision": done.chain.revision,
        "policy_changes": list(done.chain.policy_changes),
        "stages": [
            {
                **_step_json(r.step),
                "gate": r.gate.state.value,
                "gate_reason": r.gate.reason,
                "outcome": r.outcome.value if r.outcome else None,
                "message": r.message,
                "apply": report.apply_json(r.result) if r.result else None,
            }
            for r in done.steps
        ],
        "error": done.error.to_json() if done.error else None,
    }
    if _one(done.chain, done.steps) and done.steps[0].result is not None:
        document = {**report.apply_json(done.steps[0].result), **document}
    return document


def result_markdown(done: ChainResult, label: str) -> str:
    parts = [
        report.apply_markdown(r.result, r.step.source if len(done.chain.steps) > 1 else label)
        for r in done.steps
        if r.result is not None
    ]
    if line := stopped(done.steps):
        parts.append(f"_{line}_\n")
    return "\n".join(parts)


def stopped(runs: Sequence[StepResult]) -> str:
    """One line on why the promotion stopped where it did (empty when it went all the way)."""
    if not runs:
        return ""
    last = runs[-1]
    if last.gate.state is GateState.WAITING:
        return f"{last.step.name} {last.gate.reason}"
    if last.gate.state is GateState.REJECTED:
        return f"stopped at {last.step.name}: {last.gate.reason}"
    if last.outcome is not None and last.outcome is not PromotionOutcome.APPLIED:
        return f"stopped at {last.step.name}: {last.outcome.value}: {last.message}"
    return ""


def _step_json(step: Step) -> dict[str, Any]:
    stage = step.stage
    return {
        "stage": step.name,
        "account_id": stage.account_id if stage else None,
        "region": step.region,
        "approval": ("manual" if stage.manual else "automatic") if stage else "automatic",
    }
