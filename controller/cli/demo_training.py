"""The demo's training story: train -> register -> approve -> bump -> promote.

A training pipeline and an endpoint pinned to a registry version live in one config repo
(`examples/training-config.json`, under a controller id of its own so that the other
stories' stacks are not its business). The emulator runs no SageMaker job, so the one step
the state machine would take itself, registering the trained model as PendingManualApproval,
is done here in its stead, with the same fields. Everything else is the product's own calls.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from controller.present import Console

CONTROLLER_ID = "mlops-training-demo"
GROUP = "churn"


def story(console: Console, workdir: Path) -> bool:
    from controller.aws import demo_world, registry, status
    from controller.aws.session import Aws
    from controller.cli import demo
    from controller.present import status as status_view

    aws = Aws(region=demo.REGION)
    example = json.loads(
        resources.files("controller.examples").joinpath("training-config.json").read_text("utf-8")
    )
    example["settings"]["controller_id"] = CONTROLLER_ID
    example["pipelines"] = [
        p for p in example["pipelines"] if p["pipeline_type"] != "model_autopilot_training"
    ]
    demo_world.seed_training(aws, example)
    sagemaker = registry.client_in(aws)
    demo_world.create_group(sagemaker, GROUP)
    first = demo_world.register(sagemaker, GROUP, "churn-xgb-training-0", "Approved")
    served = next(p for p in example["pipelines"] if "model_package_name" in p)
    served["model_package_name"] = first
    repo = demo.config_repo(workdir / "training-repo", example, "Train churn; serve churn v1")
    ok = True

    demo._rule(console, "T1. Train: a training and a tuning job start once; churn v1 serves")
    ok &= demo._reconcile(console, repo, aws)

    demo._rule(console, "T2. Register: the trained model waits for approval in the registry")
    trained = _trained_job(aws, repo)
    second = demo_world.register(sagemaker, GROUP, trained, "PendingManualApproval")
    console.print(f"Registered {second} as PendingManualApproval (trained by {trained})")
    ok &= _bump(console, repo, sagemaker) is None  # pending: nothing to pin

    demo._rule(console, "T3. Approve in the registry: bump proposes a commit, deploys nothing")
    demo_world.approve(sagemaker, second, trained)
    branch = _bump(console, repo, sagemaker)
    ok &= branch is not None
    plan = demo._plan(console, repo, aws)
    ok &= plan is not None and not plan.has_changes  # main still pins v1

    demo._rule(console, "T4. Promote: merge the pull request; the endpoint moves to v2")
    if branch is not None:
        repo.git.merge("--ff-only", branch)
        ok &= demo._reconcile(console, repo, aws)
    rows = status.collect(aws, CONTROLLER_ID)
    status_view.print_table(rows, console, CONTROLLER_ID)
    ok &= any(r.model.startswith("registry churn v2 (trained by") for r in rows)
    return bool(ok)


def _trained_job(aws: Any, repo: Any) -> str:
    from controller.cli import demo
    from controller.core import render

    config = demo.load(repo)
    stack = next(
        s for s in render.render_all(config) if s.pipeline.type == "model_training_builtin"
    )
    return stack.run.execution_name if stack.run else ""


def _bump(console: Console, repo: Any, sagemaker: Any) -> str | None:
    from controller.gitops import bump

    result = bump.bump(repo, "mlops-config.json", bump.from_registry(sagemaker))
    if result.branch is None:
        console.print("bump: every pin is the newest Approved version; nothing to propose")
        return None
    console.print(f"bump: committed on {result.branch}\n{result.summary()}", markup=False)
    console.print(repo.git.diff(repo.head.commit.hexsha, result.branch), markup=False)
    return result.branch
