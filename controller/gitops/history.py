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
from controller.gitops.ledger import Deployment, Ledger


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
    s3 = Aws(region=where.region, profile=profile).client("s3")
    return Ledger(s3, where.bucket, where.controller_id).history(limit)


def print_table(records: tuple[Deployment, ...], console: Console, where: LedgerIdentity) -> None:
    if not records:
        console.print(f"No applies recorded for {where.controller_id} in s3://{where.bucket}.")
        return
    table = Table(title=f"Applies by {where.controller_id}, newest first", title_justify="left")
    for column in ("time (UTC)", "commit", "actor", "result", "changed", "failed"):
        table.add_column(column, overflow="fold")
    for record in records:
        verdict = Text("ok", style="green") if record.ok else Text("failed", style="bold red")
        table.add_row(
            record.time.strftime("%Y-%m-%d %H:%M:%S"),
            (record.commit or "-")[:12],
            record.actor,
            verdict,
            ", ".join(f"{s.action} {s.stack_name}" for s in record.changed) or "-",
            ", ".join(f"{s.stack_name}: {s.message}" for s in record.failed)
            or (record.refusal or "-"),
        )
    console.print(table)
