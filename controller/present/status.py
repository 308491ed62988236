"""How `status` looks: each step's managed pipelines and the commit it last promoted."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from controller.aws.promotion import promotion_json
from controller.aws.status import ChainStatus, PipelineStatus
from controller.core.chain import JSON_VERSION
from controller.core.gates import Promotion


def print_table(rows: tuple[PipelineStatus, ...], console: Console, controller_id: str) -> None:
    table = Table(title=f"Pipelines managed by {controller_id}", title_justify="left")
    columns = ("stack", "type", "stack status", "last update", "endpoint", "run", "drift", "model")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        endpoint = f"{row.endpoint_name} {row.endpoint_status}".strip()
        updated = row.last_updated.strftime("%Y-%m-%d %H:%M:%S") if row.last_updated else ""
        table.add_row(  # Text, not str: what AWS holds is never read as console markup
            *(Text(cell) for cell in (row.stack_name, row.pipeline_type, row.stack_status)),
            updated,
            Text(endpoint),
            Text(row.run),
            row.drift,
            Text(row.model),
        )
    console.print(table)
    if not rows:
        console.print("No managed pipelines found.")


def print_step_status(
    rows: tuple[PipelineStatus, ...] | list[PipelineStatus],
    console: Console,
    controller_id: str,
    newest: Promotion | None,
    problem: str,
) -> None:
    """One step: the commit it last applied completely (with stages), then its pipelines."""
    if newest is not None:
        console.print(
            f"Last promoted: {newest.commit[:12]} at "
            f"{newest.time.strftime('%Y-%m-%d %H:%M:%S')} UTC by {newest.actor}",
            markup=False,
        )
    if problem:
        console.print(Text.assemble(("Unreachable: ", "bold red"), problem))
    else:
        print_table(tuple(rows), console, controller_id)


def print_status(found: ChainStatus, console: Console) -> None:
    for step in found.steps:
        if found.several:
            console.print(Rule(step.description, align="left"))
        print_step_status(
            step.pipelines, console, found.controller_id, step.last_promoted, step.problem
        )


def status_json(found: ChainStatus) -> dict[str, Any]:
    """Version 2: every step under `stages`; a chain of one step also keeps its pipelines at
    the top level (version 1 printed that list alone)."""
    stages = [
        {
            "stage": step.name,
            "problem": step.problem or None,
            "last_promoted": promotion_json(step.last_promoted) if step.last_promoted else None,
            "pipelines": [row.to_json() for row in step.pipelines],
        }
        for step in found.steps
    ]
    document: dict[str, Any] = {"version": JSON_VERSION, "stages": stages}
    if not found.several:
        document["pipelines"] = stages[0]["pipelines"]
    return document
