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
from rich.console import Console
from rich.rule import Rule

from controller.aws.session import Aws
from controller.core import grants, report, stage_report
from controller.core.config.model import Config
from controller.core.gates import Decision, StageRun, Step, steps
from controller.core.plan import Plan
from controller.gitops import reconcile, staged

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlops-config.stages.json"


def story(console: Console, workdir: Path) -> bool:
    from controller.cli import demo

    aws = Aws(region=demo.REGION)
    example = json.loads(EXAMPLE.read_text())
    stages = example["settings"]["stages"]
    bucket = example["settings"]["assets_bucket"]
    accounts = [s["account_id"] for s in stages]
    demo.seed(aws, bucket, _flattened(example))
    _grant(aws, bucket, accounts)
    identity = aws.client("sts").get_caller_identity()
    console.print(
        f"Orchestrator account {identity['Account']} (these credentials) holds the assets, the "
        "image builders and the records; stages: "
        + ", ".join(f"{s['name']} {s['account_id']}" for s in stages)
    )
    repo = demo.config_repo(workdir / "config-repo", example, "Three stages for the models")
    console.print(f"Config repository: {repo.working_dir}")
    ok = True

    console.print(Rule("1. Push: the orchestrator's image builder, then dev; staging waits"))
    runs = _promote(console, repo, aws)
    ok &= _reached(runs) == ["orchestrator", "dev"] and _waits(runs, "staging")

    console.print(Rule("2. Approve this commit for staging: the next run takes it there"))
    _decide(console, repo, aws, "staging")
    runs = _promote(console, repo, aws)
    ok &= "staging" in _reached(runs) and _waits(runs, "prod")

    console.print(Rule("3. Approve it for prod: every account converges"))
    _decide(console, repo, aws, "prod")
    runs = _promote(console, repo, aws)
    ok &= _reached(runs) == ["orchestrator", "dev", "staging", "prod"]
    _status(console, repo, aws)

    console.print(
        Rule("4. staging loses its grant; a new commit fails there and never reaches prod")
    )
    _grant(aws, bucket, [a for a in accounts if a != stages[1]["account_id"]])
    example["pipelines"][0]["model_artifact_location"] = "linearlearner/model-v2.tar.gz"
    aws.client("s3").put_object(
        Bucket=bucket,
        Key="linearlearner/model-v2.tar.gz",
        Body=demo.stand_in_artifact("model.tar.gz"),
    )
    demo.commit(repo, example, "Model v2 for linearlearner")
    _promote(console, repo, aws)
    _decide(console, repo, aws, "staging")
    _decide(console, repo, aws, "prod")
    runs = _promote(console, repo, aws)
    failed = [r for r in runs if r.failed]
    ok &= [r.step.name for r in failed] == ["staging"] and "prod" not in _reached(runs)

    console.print(Rule("5. History: every promotion and approval, as records"))
    config = _load(repo)
    promotions, approvals = staged.promotions(config, aws).history(limit=20)
    stage_report.print_history(promotions, approvals, console, f"s3://{bucket}")
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


def _grant(aws: Aws, bucket: str, accounts: list[str]) -> None:
    """What the bootstrap's StageAccountIds deploys: the stage accounts may read the assets
    and pull the custom image."""
    statement = grants.bucket_statement(bucket, accounts)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=policy)
    ecr = aws.client("ecr")
    if not ecr.describe_repositories().get("repositories"):
        ecr.create_repository(repositoryName="mlops-churn")
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": [grants.repository_statement(accounts)]}
    )
    ecr.set_repository_policy(repositoryName="mlops-churn", policyText=text)


def _load(repo: git.Repo) -> Config:
    from controller.cli import demo

    config: Config = demo.load(repo)
    return config


def _promote(console: Console, repo: git.Repo, aws: Aws) -> tuple[StageRun, ...]:
    config = _load(repo)

    def on_plan(step: Step, plan: Plan) -> None:
        stage_report.print_step(step, console)
        report.print_plan(plan, console, step.config.source)

    run = staged.Run(
        commit=str(config.revision),
        actor=str(repo.head.commit.committer.name),
        options=lambda c: reconcile.options_for(c, poll_seconds=0.2),
        hooks=staged.Hooks(on_plan=on_plan),
        repo=repo,
    )
    runs = staged.promote(config, staged.Sessions(aws, config), run)
    stage_report.print_runs(steps(config), runs, console)
    if line := stage_report.stopped(runs):
        console.print(line, markup=False, soft_wrap=True)
    return runs


def _decide(console: Console, repo: git.Repo, aws: Aws, stage: str) -> None:
    config = _load(repo)
    done = staged.decide(config, aws, stage, str(config.revision), Decision.APPROVED)
    console.print(
        f"$ mlops-controller approve --stage {stage}    # approved {done.commit[:12]} as "
        f"{done.who}",
        markup=False,
    )


def _status(console: Console, repo: git.Repo, aws: Aws) -> None:
    from controller.aws import status

    config = _load(repo)
    sessions = staged.Sessions(aws, config)
    for step in steps(config):
        stage_report.print_step(step, console)
        controller_id = config.settings.controller_id
        status.print_table(status.collect(sessions.of(step), controller_id), console, controller_id)


def _reached(runs: tuple[StageRun, ...]) -> list[str]:
    return [r.step.name for r in runs if r.outcome is not None and not r.failed]


def _waits(runs: tuple[StageRun, ...], stage: str) -> bool:
    return bool(runs) and runs[-1].step.name == stage and runs[-1].outcome is None
