"""`mlops-controller history`: the ledger of a step, newest first, and the promotion records.

Like `status`, it must work when the config at HEAD is broken (that is when people ask "what
was deployed?"), so the bucket and controller id may come from flags and MLOPS_* variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.aws.ledger import Ledger
from controller.aws.promotion import Promotions, stage_ledger
from controller.aws.session import Aws
from controller.core.config import LoadResult
from controller.core.config.settings import DEFAULTS, merge
from controller.core.gates import Approval, Promotion
from controller.core.records import Deployment


@dataclass(frozen=True)
class LedgerIdentity:
    bucket: str
    controller_id: str
    region: str | None
    stage: str | None = None
    """A stage's own ledger; None: the orchestrator's step (the controller's ledger)."""

    @property
    def label(self) -> str:
        return f"{self.controller_id} (stage {self.stage})" if self.stage else self.controller_id


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


def promotions(
    where: LedgerIdentity, stage: str | None, limit: int | None, profile: str | None = None
) -> tuple[tuple[Promotion, ...], tuple[Approval, ...]]:
    aws = Aws(region=where.region, profile=profile)
    return Promotions.of(aws, where.bucket, where.controller_id).history(stage, limit)


def _ledger(where: LedgerIdentity, profile: str | None) -> Ledger:
    aws = Aws(region=where.region, profile=profile)
    if where.stage:
        return stage_ledger(aws, where.bucket, where.controller_id, where.stage)
    return Ledger.of(aws, where.bucket, where.controller_id)
