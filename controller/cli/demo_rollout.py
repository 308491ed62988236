"""The demo's guarded update: the endpoint gets deployment guardrails (a canary with a
rollback alarm) and autoscaling, and the next new fleet goes out as a canary; the plan says
so before the apply (docs/rollout.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import git

from controller.aws import demo_world
from controller.present import Console

ALARM = "linearlearner-5xx"

Reconcile = Callable[[Console, git.Repo, Any], bool]
Commit = Callable[[git.Repo, dict[str, Any], str], None]


def canary_update(
    console: Console,
    repo: git.Repo,
    example: dict[str, Any],
    aws: Any,
    reconcile: Reconcile,
    commit: Commit,
) -> bool:
    """Two commits: guardrails alone (an in-place update, no new fleet), then two instances
    (a new fleet, shifted as a canary). The alarm is the team's own, made here as they would
    make it in their account."""
    demo_world.alarm(aws, ALARM)
    realtime = example["pipelines"][0]
    realtime["deployment"] = {
        "strategy": "canary",
        "canary_percent": 10,
        "wait_seconds": 600,
        "rollback_alarms": [ALARM],
    }
    realtime["autoscaling"] = {
        "min_instances": 1,
        "max_instances": 4,
        "target_invocations_per_instance": 1000,
    }
    commit(repo, example, f"Guard {realtime['model_name']}: canary 10 %, roll back on {ALARM}")
    ok = reconcile(console, repo, aws)
    realtime["instance_count"] = 2
    commit(repo, example, f"Serve {realtime['model_name']} from two instances")
    return reconcile(console, repo, aws) and ok
