"""How `history` looks: a step's applies, newest first, and an apply left unfinished."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from controller.core.records import Deployment


def print_unfinished(deployment: Deployment, console: Console) -> None:
    started = deployment.time.strftime("%Y-%m-%d %H:%M:%S UTC")
    console.print(
        Text(
            f"Unfinished: the apply of {(deployment.commit or 'a working-tree file')[:12]} by "
            f"{deployment.actor}, started {started}, is running now or was interrupted "
            "(the next apply records it).",
            style="yellow",
        ),
        soft_wrap=True,
    )


def print_table(records: tuple[Deployment, ...], console: Console, bucket: str, label: str) -> None:
    if not records:
        console.print(f"No applies recorded for {label} in s3://{bucket}.")
        return
    table = Table(title=f"Applies by {label}, newest first", title_justify="left")
    for column in ("time (UTC)", "commit", "actor", "result", "changed", "failed"):
        table.add_column(column, overflow="fold")
    for record in records:
        verdict = (
            Text("interrupted", style="bold yellow")
            if record.interrupted
            else Text("ok", style="green")
            if record.ok
            else Text("failed", style="bold red")
        )
        table.add_row(
            record.time.strftime("%Y-%m-%d %H:%M:%S"),
            (record.commit or "-")[:12],
            Text(record.actor),  # Text, not str: recorded text is never read as markup
            verdict,
            Text(", ".join(f"{s.action} {s.stack_name}" for s in record.changed) or "-"),
            Text(
                ", ".join(f"{s.stack_name}: {s.message}" for s in record.failed)
                or (record.refusal or "-")
            ),
        )
    console.print(table)
