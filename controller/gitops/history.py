"""`mlops-controller history`: the ledger, newest first.

Like `status`, it must work when the config at HEAD is broken (that is when people ask "what
was deployed?"), so the bucket and controller id may come from flags and MLOPS_* variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from controller.aws.session import Aws
from controller.core.config import LoadResult
from controller.core.config.settings import DEFAULTS, merge
from controller.gitops.ledger import Deployment, Ledger, StackRecord


@dataclass(frozen=True)
class LedgerIdentity:
    bucket: str
    controller_id: str
    region: str | None


def identity(result: LoadResult, flags: Mapping[str, Any]) -> LedgerIdentity | None:
    if result.config is not None:
        settings = result.config.settings
        return LedgerIdentity(settings.assets_bucket, settings.controller_id, settings.region)
    merged, _ = merge({}, os.environ, flags)
    if not merged.get("assets_bucket"):
        return None
    controller_id = str(merged.get("controller_id", DEFAULTS["controller_id"]))
    return LedgerIdentity(str(merged["assets_bucket"]), controller_id, merged.get("region"))


def read(
    where: LedgerIdentity, limit: int | None, profile: str | None = None
) -> tuple[Deployment, ...]:
    return _ledger(where, profile).history(limit)


def unfinished(where: LedgerIdentity, profile: str | None = None) -> Deployment | None:
    """An apply whose intent is recorded but not its end: running now, or killed."""
    intent = _ledger(where, profile).pending()
    return intent.deployment if intent else None


def _ledger(where: LedgerIdentity, profile: str | None) -> Ledger:
    s3 = Aws(region=where.region, profile=profile).client("s3")
    return Ledger(s3, where.bucket, where.controller_id)


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


def print_table(records: tuple[Deployment, ...], console: Console, where: LedgerIdentity) -> None:
    if not records:
        console.print(f"No applies recorded for {where.controller_id} in s3://{where.bucket}.")
        return
    table = Table(title=f"Applies by {where.controller_id}, newest first", title_justify="left")
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
