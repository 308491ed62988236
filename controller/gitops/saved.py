"""`apply FILE`: a saved plan of one step, made again from the file and compared with what
it saw; applied only if it still holds (`core.planfile.stale` says what moved otherwise)."""

from __future__ import annotations

from dataclasses import dataclass

from controller.aws.session import Aws, account_of
from controller.core import planfile
from controller.core.chain import Chain, Step
from controller.core.config.model import Config
from controller.core.errors import UsageError
from controller.core.plan import Plan, targeted
from controller.gitops import chain as use_case


@dataclass(frozen=True)
class Replanned:
    chain: Chain
    sessions: use_case.Sessions
    request: use_case.PlanRequest
    step: Step
    plan: Plan


def replan(saved: planfile.SavedPlan, config: Config, home: Aws, name: str) -> Replanned:
    """The saved step's plan, made again under the policy in force; a `UsageError` saying
    what changed when it no longer holds."""
    chain = use_case.judged(config, home)
    sessions = use_case.Sessions(home, config)
    request = use_case.PlanRequest(saved.step, saved.allow_delete_all, False, saved.targets)
    step = chain.step(saved.step)
    full = use_case.plan_step(step, chain, sessions, request)
    plan = targeted(full, saved.targets, use_case.guards(chain, saved.allow_delete_all))
    account = account_of(sessions.of(step)) if saved.account else None
    reason = planfile.stale(saved, full, plan, account)
    if reason:
        raise UsageError(
            f"the saved plan {name} no longer holds: {reason}. Nothing was changed: make a new plan"
        )
    return Replanned(chain, sessions, request, step, plan)
