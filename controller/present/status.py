"""How `status` looks: each step's managed pipelines and the commit it last promoted."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from controller.aws.status import PipelineStatus
from controller.core.gates import Promotion


def print_table(rows: tuple[PipelineStatus, ...], console: Console, controller_id: str) -> None:
    table = Table(title=f"Pipelines managed by {controller_id}", title_justify="left")
    for column in ("stack", "type", "stack status", "last update", "endpoint", "run", "drift"):
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
