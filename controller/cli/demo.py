"""`mlops-controller demo`: the GitOps story, told with real commits on an embedded AWS.

It runs the same library calls as `plan` and `apply` against moto's server; only the setup
(buckets, small artifacts, a throwaway config repo) is demo-specific.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import git

from controller.aws import demo_world
from controller.aws.emulator import Emulator, MissingEmulator
from controller.cli import demo_rollout, demo_stages, demo_training
from controller.core import config as config_module
from controller.gitops import source
from controller.present import Console, report

REGION = "us-east-1"


def run(keep: bool = False, workdir: str | None = None, stages: bool = False) -> int:
    console = report.console()
    emulator = Emulator(REGION)
    try:
        url = emulator.start()
    except MissingEmulator as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        return 1
    os.environ.update(emulator.environment())
    console.print(f"Embedded AWS emulator (moto) listening on {url}")
    try:
        base = (Path(workdir) if workdir else Path(tempfile.mkdtemp())).resolve()
        story = demo_stages.story if stages else _story
        ok = story(console, base)
        if keep:
            _keep_running(console, emulator, base / "config-repo")
        return 0 if ok else 1
    finally:
        emulator.stop()


def _story(console: Console, workdir: Path) -> bool:
    from controller.aws.session import Aws

    example = json.loads(_example_text())
    settings = example["settings"]
    aws = Aws(region=REGION)
    demo_world.seed(aws, settings["assets_bucket"], example)
    repo = config_repo(workdir / "config-repo", example, "Add the example pipelines")
    console.print(f"Config repository: {repo.working_dir}")
    ok = True

    _rule(console, "1. First commit: apply all nine pipelines")
    ok &= _reconcile(console, repo, aws)

    _rule(console, "2. Change one pipeline's instance type: only that stack updates")
    realtime = example["pipelines"][0]
    realtime["inference_instance"] = "ml.m5.xlarge"
    commit(repo, example, f"Scale {realtime['model_name']} endpoint to ml.m5.xlarge")
    ok &= _reconcile(console, repo, aws)

    _rule(console, "2b. Guard the endpoint, then a new fleet goes out as a canary")
    ok &= demo_rollout.canary_update(console, repo, example, aws, _reconcile, commit)

    _rule(console, "3. Remove a pipeline: only it is deleted")
    removed = example["pipelines"].pop(4)
    commit(repo, example, f"Retire the {removed['model_name']} batch pipeline")
    ok &= _reconcile(console, repo, aws)

    _rule(console, "4. Nothing changed: the plan is empty and costs only reads")
    aws.calls.clear()
    plan = _plan(console, repo, aws)
    reads = sum(aws.calls.values())
    console.print(
        f"No-op plan made {reads} AWS call(s): "
        + ", ".join(f"{op} x{n}" for op, n in sorted(aws.calls.items()))
    )
    ok &= plan is not None and not plan.has_changes

    _rule(console, "5. Status")
    from controller.aws import status
    from controller.present import status as status_view

    settings_id = settings.get("controller_id", "mlops-controller")
    status_view.print_table(status.collect(aws, settings_id), console, settings_id)
    ok &= demo_training.story(console, workdir)
    console.print("[green]Demo complete.[/]" if ok else "[red]Demo finished with failures.[/]")
    return bool(ok)


def _rule(console: Console, title: str) -> None:
    """A heading at most 100 columns wide (a build log's console is much wider)."""
    report.heading(console, title)


def _example_text() -> str:
    """`examples/mlops-config.json` of the repository, shipped as package data."""
    return resources.files("controller.examples").joinpath("mlops-config.json").read_text("utf-8")


def load(repo: git.Repo) -> Any:
    text = source.read_git(str(repo.working_dir), "HEAD")
    result = config_module.load(text.raw, text.name, revision=text.revision, environ={})
    if result.config is None:
        raise SystemExit("\n".join(d.format() for d in result.diagnostics))
    return result.config


def _plan(console: Console, repo: git.Repo, aws: Any) -> Any:
    from controller.gitops import chain as use_case
    from controller.present import chain as present

    config = load(repo)
    chain = use_case.judged(config, aws)
    planned = use_case.plan(chain, use_case.Sessions(aws, config))
    present.print_plan(planned, console, config.source)
    return planned


def _reconcile(console: Console, repo: git.Repo, aws: Any) -> bool:
    """What `apply` does: the chain's promotion (here, of one step)."""
    from controller.gitops import chain as use_case
    from controller.gitops import reconcile
    from controller.present import chain as present

    config = load(repo)
    chain = use_case.judged(config, aws)
    request = use_case.PromoteRequest(
        commit=config.revision,
        actor=str(repo.head.commit.committer.name),
        options=lambda c: reconcile.options_for(c, poll_seconds=0.2),
        hooks=use_case.printing_hooks(console, chain, quiet=True),
        repo=repo,
    )
    done = use_case.promote(chain, use_case.Sessions(aws, config), request)
    present.print_result(done, console)
    return not done.failed


def config_repo(path: Path, example: dict[str, Any], message: str) -> git.Repo:
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as writer:
        writer.set_value("user", "name", "Demo User")
        writer.set_value("user", "email", "demo@example.invalid")
    commit(repo, example, message)
    return repo


def commit(repo: git.Repo, example: dict[str, Any], message: str) -> None:
    path = Path(repo.working_dir) / source.DEFAULT_CONFIG
    path.write_text(json.dumps(example, indent=2) + "\n")
    repo.index.add([str(path)])
    repo.index.commit(message)


def _keep_running(console: Console, emulator: Emulator, repo: Path) -> None:
    """Commands that work from any directory: absolute paths, every variable exported."""
    console.print("The emulator keeps running. In another shell, from any directory:")
    lines = [
        f"export {name}={shlex.quote(value)}" for name, value in emulator.environment().items()
    ]
    where = shlex.quote(str(repo))
    lines += [
        f"mlops-controller status --repo {where}",
        f"mlops-controller plan --repo {where}",
        f"mlops-controller history --repo {where}",
        f"mlops-controller watch --repo {where} --once",
    ]
    for line in lines:
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("Stopping the emulator.")
