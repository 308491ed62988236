"""`mlops-controller history`: the ledger of a step, newest first, and the promotion records.

Like `status`, it must work when the config at HEAD is broken (that is when people ask "what
was deployed?"), so the bucket and controller id may come from flags and MLOPS_* variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from controller.aws.ledger import ChainHistory, Ledger, LedgerIdentity
from controller.aws.promotion import Promotions, stage_ledger
from controller.aws.session import Aws
from controller.core.chain import Chain
from controller.core.config import LoadResult
from controller.core.config.settings import DEFAULTS, merge
from controller.core.gates import Approval, Promotion
from controller.core.records import Deployment


def identity(result: LoadResult, flags: Mapping[str, Any]) -> LedgerIdentity | None:
    if result.config is not None:
        settings = result.config.settings
        return LedgerIdentity(settings.assets_bucket, settings.controller_id, settings.region)
    merged, _ = merge({}, os.environ, flags)
    if not merged.get("assets_bucket"):
        return None
    controller_id = str(merged.get("controller_id", DEFAULTS["controller_id"]))
    return LedgerIdentity(str(merged["assets_bucket"]), controller_id, merged.get("region"))


def collect(
    where: LedgerIdentity,
    chain: Chain | None,
    stage: str | None,
    limit: int | None,
    profile: str | None = None,
) -> ChainHistory:
    """`chain` is None for a broken config: the orchestrator's ledger from flags alone."""
    step = chain.only(stage)[0] if chain is not None else None
    if step is not None and step.stage is not None:
        where = replace(where, stage=step.name)
    several = chain is not None and len(chain.steps) > 1
    promoted, approved = promotions(where, stage, limit, profile) if several else ((), ())
    return ChainHistory(
        where,
        read(where, limit, profile),
        unfinished(where, profile),
        promoted,
        approved,
        several,
    )


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
