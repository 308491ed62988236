"""How `history` looks: a step's applies, newest first, and an apply left unfinished."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from controller.aws.ledger import ChainHistory
from controller.aws.promotion import approval_json, promotion_json
from controller.core.chain import JSON_VERSION
from controller.core.gates import Approval, Decision, Promotion
from controller.core.records import Deployment, StackRecord
from controller.present.chain import OUTCOME_STYLE


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
            Text(", ".join(_changed(s) for s in record.changed) or "-"),
            Text(
                ", ".join(f"{s.stack_name}: {s.message}" for s in record.failed)
                or (record.refusal or "-")
            ),
        )
    console.print(table)


def _changed(stack: StackRecord) -> str:
    model = f" ({stack.model})" if stack.model else ""
    return f"{stack.action} {stack.stack_name}{model}"


def print_history(found: ChainHistory, console: Console) -> None:
    where = found.where
    if found.several:
        print_promotions(found.promotions, found.approvals, console, f"s3://{where.bucket}")
    if found.unfinished is not None:
        print_unfinished(found.unfinished, console)
    print_table(found.applies, console, where.bucket, where.label)


def history_json(found: ChainHistory) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "applies": [a.to_json() for a in found.applies],
        "promotions": [promotion_json(p) for p in found.promotions],
        "approvals": [approval_json(a) for a in found.approvals],
    }


def print_promotions(
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
