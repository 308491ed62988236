"""`mlops-controller demo --stages`: a commit promoted through three accounts, on one emulator.

The emulator gives credentials assumed into another account's role their own account, so
the orchestrator (the demo's own credentials) and the dev, staging and prod accounts of
examples/mlops-config.stages.json all live on the one server. The story runs the same
library calls as `apply` and `approve`; only the setup (assets, grants, repository) is the
demo's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git

from controller.aws import demo_world
from controller.aws.session import Aws, account_of
from controller.core.chain import Chain, StepResult
from controller.core.config.model import Config
from controller.core.gates import Decision
from controller.gitops import chain as use_case
from controller.gitops import reconcile
from controller.present import Console, report
from controller.present import chain as present
from controller.present import history as history_view

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlops-config.stages.json"


def story(console: Console, workdir: Path) -> bool:
    from controller.cli import demo

    aws = Aws(region=demo.REGION)
    example = json.loads(EXAMPLE.read_text())
    stages = example["settings"]["stages"]
    bucket = example["settings"]["assets_bucket"]
    accounts = [s["account_id"] for s in stages]
    demo_world.seed(aws, bucket, _flattened(example))
    demo_world.grant(aws, bucket, accounts)
    account = account_of(aws)
    console.print(
        f"Orchestrator account {account} (these credentials) holds the assets, the "
        "image builders and the records; stages: "
        + ", ".join(f"{s['name']} {s['account_id']}" for s in stages)
    )
    repo = demo.config_repo(workdir / "config-repo", example, "Three stages for the models")
    console.print(f"Config repository: {repo.working_dir}")
    ok = True

    report.heading(console, "1. Push: the orchestrator's image builder, then dev; staging waits")
    runs = _promote(console, repo, aws)
    ok &= _reached(runs) == ["orchestrator", "dev"] and _waits(runs, "staging")

    report.heading(console, "2. Approve this commit for staging: the next run takes it there")
    _decide(console, repo, aws, "staging")
    runs = _promote(console, repo, aws)
    ok &= "staging" in _reached(runs) and _waits(runs, "prod")

    report.heading(console, "3. Approve it for prod: every account converges")
    _decide(console, repo, aws, "prod")
    runs = _promote(console, repo, aws)
    ok &= _reached(runs) == ["orchestrator", "dev", "staging", "prod"]
    _status(console, repo, aws)

    report.heading(
        console, "4. staging loses its grant; a new commit fails there and never reaches prod"
    )
    demo_world.grant(aws, bucket, [a for a in accounts if a != stages[1]["account_id"]])
    example["pipelines"][0]["model_artifact_location"] = "linearlearner/model-v2.tar.gz"
    demo_world.put_artifact(aws, bucket, "linearlearner/model-v2.tar.gz")
    demo.commit(repo, example, "Model v2 for linearlearner")
    _promote(console, repo, aws)
    _decide(console, repo, aws, "staging")
    _decide(console, repo, aws, "prod")
    runs = _promote(console, repo, aws)
    failed = [r for r in runs if r.failed]
    ok &= [r.step.name for r in failed] == ["staging"] and "prod" not in _reached(runs)

    report.heading(console, "5. History: every promotion and approval, as records")
    config = _load(repo)
    promotions, approvals = use_case.promotions(config, aws).history(limit=20)
    history_view.print_promotions(promotions, approvals, console, f"s3://{bucket}")
    console.print("[green]Demo complete.[/]" if ok else "[red]Demo finished with failures.[/]")
    return bool(ok)


def _flattened(example: dict[str, Any]) -> dict[str, Any]:
    """Every stage's values as plain pipelines, so the demo's seeding finds every location."""
    names = {s["name"] for s in example["settings"]["stages"]}
    pipelines = [
        {k: v[name] if isinstance(v, dict) and set(v) == names else v for k, v in p.items()}
        for p in example["pipelines"]
        for name in sorted(names)
    ]
    return {**example, "pipelines": pipelines}


def _load(repo: git.Repo) -> Config:
    from controller.cli import demo

    config: Config = demo.load(repo)
    return config


def _chain(repo: git.Repo, aws: Aws) -> Chain:
    return use_case.judged(_load(repo), aws)


def _promote(console: Console, repo: git.Repo, aws: Aws) -> tuple[StepResult, ...]:
    chain = _chain(repo, aws)
    request = use_case.PromoteRequest(
        commit=chain.revision,
        actor=str(repo.head.commit.committer.name),
        options=lambda c: reconcile.options_for(c, poll_seconds=0.2),
        hooks=use_case.Hooks(on_plan=use_case.printing_hooks(console, chain).on_plan),
        repo=repo,
    )
    done = use_case.promote(chain, use_case.Sessions(aws, chain.config), request)
    present.print_result(done, console)
    return done.steps


def _decide(console: Console, repo: git.Repo, aws: Aws, stage: str) -> None:
    chain = _chain(repo, aws)
    done = use_case.decide(chain, aws, stage, str(chain.revision), Decision.APPROVED)
    console.print(
        f"$ mlops-controller approve --stage {stage}    # approved {done.commit[:12]} as "
        f"{done.who}",
        markup=False,
    )


def _status(console: Console, repo: git.Repo, aws: Aws) -> None:
    from controller.aws import status
    from controller.present import status as status_view

    chain = _chain(repo, aws)
    sessions = use_case.Sessions(aws, chain.config)
    controller_id = chain.config.settings.controller_id
    for step in chain.steps:
        present.print_step(step, console)
        rows = status.collect(sessions.of(step), controller_id)
        status_view.print_table(rows, console, controller_id)


def _reached(runs: tuple[StepResult, ...]) -> list[str]:
    return [r.step.name for r in runs if r.outcome is not None and not r.failed]


def _waits(runs: tuple[StepResult, ...], stage: str) -> bool:
    return bool(runs) and runs[-1].step.name == stage and runs[-1].outcome is None
