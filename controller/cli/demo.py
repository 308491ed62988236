"""`mlops-controller demo`: the GitOps story, told with real commits on an embedded AWS.

It runs the same library calls as `plan` and `apply` against moto's server; only the setup
(buckets, small artifacts, a throwaway config repo) is demo-specific.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import tarfile
import tempfile
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import git
from rich.console import Console
from rich.rule import Rule

from controller.aws.emulator import Emulator, MissingEmulator
from controller.cli import demo_rollout, demo_stages, demo_training
from controller.core import config as config_module
from controller.core import report
from controller.gitops import source

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
    seed(aws, settings["assets_bucket"], example)
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

    settings_id = settings.get("controller_id", "mlops-controller")
    status.print_table(status.collect(aws, settings_id), console, settings_id)
    ok &= demo_training.story(console, workdir)
    console.print("[green]Demo complete.[/]" if ok else "[red]Demo finished with failures.[/]")
    return bool(ok)


def _rule(console: Console, title: str) -> None:
    """A heading at most 100 columns wide (a build log's console is much wider)."""
    console.print(Rule(title), width=min(console.width, 100))


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
    from controller.gitops import reconcile

    config = load(repo)
    plan = reconcile.plan_for(config, aws, reconcile.guards_for(config, False))
    report.print_plan(plan, console, config.source)
    return plan


def _reconcile(console: Console, repo: git.Repo, aws: Any) -> bool:
    from controller.gitops import reconcile

    config = load(repo)
    plan = _plan(console, repo, aws)
    result = reconcile.apply_plan(
        config,
        plan,
        aws,
        reconcile.options_for(config, poll_seconds=0.2),
        on_event=lambda e: report.print_event(e, console),
        on_result=lambda r: report.print_result(r, console),
        actor=str(repo.head.commit.committer.name),
        repo=repo,
    )
    report.print_apply(result, console)
    return result.ok


def seed(aws: Any, assets_bucket: str, example: dict[str, Any]) -> None:
    """The buckets and small stand-ins for the artifacts the example config names."""
    from controller.core.config.model import S3Location
    from controller.core.pipelines import ASSET_KEYS, LOCATION_KEYS

    s3 = aws.client("s3")
    buckets = {assets_bucket}
    objects: set[str] = set()
    for pipeline in example["pipelines"]:
        for key, value in pipeline.items():
            if key in LOCATION_KEYS:
                buckets.add(S3Location.parse(value).bucket)
            if key in ASSET_KEYS:
                objects.add(value)
        baseline = pipeline.get("shap_config", {}).get("baseline")
        if baseline:
            objects.add(baseline)
    for bucket in sorted(buckets):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=assets_bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in sorted(objects):
        s3.put_object(Bucket=assets_bucket, Key=key, Body=stand_in_artifact(key))


def stand_in_artifact(key: str) -> bytes:
    """A tiny file of the right kind (model tarball, Docker zip, CSV) for an emulated bucket."""
    buffer = io.BytesIO()
    if key.endswith(".tar.gz"):
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            data = b"demo model weights\n"
            info = tarfile.TarInfo("model.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()
    if key.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("Dockerfile", "FROM python:3.11-slim\nCOPY . /opt/program\n")
        return buffer.getvalue()
    return b"label,feature_a,feature_b\n1,0.5,3\n0,0.1,7\n"


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
