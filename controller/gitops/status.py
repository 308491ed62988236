"""`mlops-controller status`: what each step of the chain manages now, and the commit each
stage last applied completely.

Status must work when the config is broken (that is when people most need it): then the
chain is the orchestrator's step alone, its controller id and region from flags and MLOPS_*.
"""

from __future__ import annotations

from controller.aws import status
from controller.aws.credentials import StageUnreachable
from controller.aws.session import Aws
from controller.aws.status import ChainStatus, StepStatus
from controller.core.chain import Chain
from controller.core.config.stages import ORCHESTRATOR
from controller.gitops import chain as use_case
from controller.present.chain import describe


def of_chain(chain: Chain, home: Aws, only: str | None) -> ChainStatus:
    controller_id = chain.config.settings.controller_id
    sessions = use_case.Sessions(home, chain.config)
    several = len(chain.steps) > 1
    store = use_case.promotions(chain.config, home) if several else None
    found = []
    for step in chain.only(only):
        newest = store.newest_applied(step.name) if store is not None else None
        try:
            rows, problem = status.collect(sessions.of(step), controller_id), ""
        except StageUnreachable as exc:
            rows, problem = (), str(exc)
        found.append(StepStatus(step.name, describe(step), newest, rows, problem))
    return ChainStatus(controller_id, tuple(found), several)


def of_account(home: Aws, controller_id: str) -> ChainStatus:
    """Without a valid config: the stacks this controller id owns in one account."""
    rows = status.collect(home, controller_id)
    return ChainStatus(controller_id, (StepStatus(ORCHESTRATOR, "", None, rows),), False)
