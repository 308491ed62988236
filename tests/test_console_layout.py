"""Logs read well in CI: off a terminal (CodeBuild, a pipe), `ci`, `watch` and `bootstrap`
print a wide, plain layout: no colour, no wrapped lines, no name or ARN split in two."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from controller.aws.demo_world import seed
from controller.aws.session import Aws
from controller.cli.main import main

STACK = re.compile(r"mlops-pipeline-[a-z0-9-]+")
ESCAPE = "\x1b["


def _names(config: dict[str, Any]) -> set[str]:
    import json

    from controller.core import config as config_module

    loaded = config_module.load(json.dumps(config).encode(), "c.json", environ={})
    assert loaded.config is not None
    return {p.stack_name for p in loaded.config.pipelines}


def test_ci_prints_whole_stack_names_and_event_lines_in_a_build_log(
    aws: str,
    config_repo: git.Repo,
    example_config: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(Aws(region="us-east-1"), example_config["settings"]["assets_bucket"], example_config)
    monkeypatch.setenv("MLOPS_EVENT", "push")
    monkeypatch.setenv("MLOPS_BRANCH", "main")
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", config_repo.head.commit.hexsha)

    code = main(["ci", "--repo", str(config_repo.working_dir), "--artifacts", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert ESCAPE not in out
    assert set(STACK.findall(out)) == _names(example_config), "no stack name split"
    events = [line for line in out.splitlines() if " CREATE_COMPLETE " in line and "(AWS::" in line]
    assert events and all(re.match(r"^\d\d:\d\d:\d\d mlops-pipeline-", line) for line in events)
    assert max(len(line) for line in out.splitlines()) > 120, "not folded at 80 columns"


def test_bootstrap_prints_every_output_and_arn_on_one_line(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bootstrap", "--stack-name", "mlops-controller", "--notification-email", "a@b.io"]

    assert main(argv) == 0

    lines = capsys.readouterr().out.splitlines()
    stack = boto3.client("cloudformation").describe_stacks(StackName="mlops-controller")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}
    assert any(value.startswith("arn:aws:") for value in outputs.values())
    for key, value in outputs.items():
        assert f"  {key}: {value}" in lines


def test_demo_keep_prints_commands_that_work_from_anywhere(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))}
    executable = Path(sys.executable).with_name("mlops-controller")
    demo = subprocess.Popen(
        [str(executable), "demo", "--keep", "--workdir", str(tmp_path / "demo")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert demo.stdout is not None
        while "Press Ctrl-C to stop." not in lines:
            line = demo.stdout.readline()
            assert line, "".join(lines[-40:])
            lines.append(line.rstrip("\n"))
        shown = lines[
            lines.index("The emulator keeps running. In another shell, from any directory:")
            + 1 : -1
        ]
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in shown
            if line.strip().startswith("export ")
        )
        commands = [line.strip() for line in shown if line.strip().startswith("mlops-controller ")]
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        assert {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID"} <= set(exports)
        assert [c.split()[1] for c in commands] == ["status", "plan", "history", "watch"]
        for command in commands:
            done = subprocess.run(
                [str(executable), *command.split()[1:]],
                cwd=elsewhere,
                env={**env, **exports},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)


def test_an_apply_shows_what_changed_and_counts_what_did_not(
    aws: str,
    config_repo: git.Repo,
    example_config: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Quiet output: an unchanged stack is a count, never a line of its own (`--all` lists
    every row of the summary)."""
    from tests.conftest import commit_config
    from tests.gitops import REALTIME

    seed(Aws(region="us-east-1"), example_config["settings"]["assets_bucket"], example_config)
    repo = str(config_repo.working_dir)
    assert main(["apply", "--auto-approve", "--repo", repo]) == 0
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(config_repo, example_config, "Bigger endpoint")
    capsys.readouterr()

    assert main(["apply", "--auto-approve", "--repo", repo]) == 0
    out = capsys.readouterr().out
    shown = set(STACK.findall(out))
    unchanged = re.search(r"Apply complete: .*\b(\d+) unchanged\b", out)
    assert REALTIME in shown and unchanged is not None
    assert len(shown) == len(_names(example_config)) - int(unchanged.group(1))

    assert main(["apply", "--auto-approve", "--repo", repo, "--all"]) == 0
    assert set(STACK.findall(capsys.readouterr().out)) == _names(example_config)
