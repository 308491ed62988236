"""`apply FILE`: a saved plan of one step, made again from the file and compared with what
it saw; applied only if it still holds (`core.planfile.stale` says what moved otherwise)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from controller.aws.session import Aws, account_of
from controller.core import planfile
from controller.core.chain import Chain, Step
from controller.core.config.model import Config
from controller.core.errors import UsageError
from controller.core.plan import Plan, targeted
from controller.gitops import chain as use_case
from controller.gitops import source


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
    account = account_of(sessions.of(step))
    reason = planfile.stale(saved, full, plan, account)
    if reason:
        raise UsageError(
            f"the saved plan {name} no longer holds: {reason}. Nothing was changed: make a new plan"
        )
    return Replanned(chain, sessions, request, step, plan)


def revision_of(saved: planfile.SavedPlan, name: str) -> str | None:
    """The saved plan's commit, recorded only when its config is that commit's file (in the
    repository of the working directory); None, with a note, when that cannot be checked."""
    if not saved.revision:
        return None
    holds = source.committed_as(".", saved.revision, saved.config_name, saved.config_text)
    if holds is False:
        raise UsageError(
            f"the saved plan {name} no longer holds: its config is not {saved.config_name} at "
            f"commit {saved.revision[:12]}. Nothing was changed: make a new plan"
        )
    if holds is None:
        print(
            f"Note: commit {saved.revision[:12]} is not in this directory's repository, so the "
            "plan's config cannot be checked against it: it is applied as a config without a "
            "commit, and the ledger records none.",
            file=sys.stderr,
        )
        return None
    return str(saved.revision)
