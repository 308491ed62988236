"""Never a traceback, and exit codes that tell the truth (issue 11, items 10 and 11).

Each odd input gets one clear line and the exit code docs/commands.md documents.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from rich.console import Console

from controller.cli.main import main
from controller.gitops import watch
from tests.conftest import EXAMPLE, commit_config
from tests.gitops import REALTIME, seed_account, small_config

BUCKET = "mlops-assets-example"
POINTER = "mlops-controller/mlops-controller/ledger/last-applied.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_max_deletes_variable_that_is_not_an_ascii_number_is_a_config_error(
    workdir: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("MLOPS_MAX_DELETES", "²")

    code, _, err = run(capsys, "validate", str(workdir / "mlops-config.json"))

    assert code == 1
    assert "$.settings.max_deletes: is a string (set by MLOPS_MAX_DELETES)" in err


def test_a_five_thousand_digit_number_is_a_config_error_with_its_line(
    tmp_path: Path, capsys
) -> None:
    text = EXAMPLE.read_text().replace(
        '"settings": {', '"settings": {\n    "max_deletes": ' + "9" * 5000 + ",", 1
    )
    path = tmp_path / "mlops-config.json"
    path.write_text(text)

    code, _, err = run(capsys, "validate", str(path))

    assert code == 1
    assert err.startswith(f"{path}:3: error E007 $: a number with 5000 digits")


def test_any_revision_git_understands_resolves_and_others_are_one_line(
    config_repo: git.Repo, capsys
) -> None:
    repo = str(config_repo.working_dir)

    code, out, _ = run(capsys, "validate", "--repo", repo, "--ref", "HEAD@{yesterday}")
    assert code == 0 and "valid, 9 pipelines" in out
    code, _, err = run(capsys, "validate", "--repo", repo, "--ref", "main@{upstream}")
    assert code == 1
    assert err.startswith(f"{repo}: error E000 $: unknown revision 'main@{{upstream}}'")


def test_render_into_an_existing_file_is_one_line(workdir: Path, capsys) -> None:
    taken = workdir / "out"
    taken.write_text("not a directory")

    code, _, err = run(capsys, "render", str(workdir / "mlops-config.json"), "--out", str(taken))

    assert code == 1
    assert err == f"error: --out {taken}: exists and is not a directory\n"


def test_output_piped_into_head_still_writes_every_file(workdir: Path) -> None:
    out = workdir / "rendered"
    piped = subprocess.run(
        [
            "bash",
            "-c",
            f'"{sys.executable}" -m controller render mlops-config.json --out "{out}" | head -1;'
            ' exit "${PIPESTATUS[0]}"',
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == 1
    written = [p for p in out.iterdir() if p.name.endswith((".yaml", ".parameters.json"))]
    assert len(written) == 18  # every pipeline's template and parameters
    assert "Traceback" not in piped.stderr


def test_watch_of_a_directory_that_is_not_a_repository_is_one_line(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "watch", "--repo", str(tmp_path / "nope"), "--once")

    assert code == 1
    assert err == f"error: --repo {tmp_path / 'nope'}: not a git repository\n"


def test_a_usage_error_exits_1_not_2_which_means_changes(capsys) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["plan", "--max-deletes", "9" * 5000])
    assert usage.value.code == 1
    assert "argument --max-deletes: invalid int value" in capsys.readouterr().err


# A corrupt ledger pointer: ci stops with one line, watch retries until it is fixed.


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=BUCKET, Key=POINTER, Body=b'{"commit": "abc", "ti')
    return config_repo


def test_a_corrupt_ledger_pointer_stops_ci_with_one_line(repo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MLOPS_EVENT", "push")
    monkeypatch.setenv("MLOPS_BRANCH", "main")
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", repo.head.commit.hexsha)

    code, _, err = run(
        capsys, "ci", "--repo", str(repo.working_dir), "--artifacts", str(tmp_path / "a")
    )

    assert code == 1
    assert err.startswith(f"error: s3://{BUCKET}/{POINTER} is not a valid ledger pointer (")
    assert "restore it, or delete it after checking `mlops-controller history`" in err
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    assert cfn.describe_stacks()["Stacks"] == []


def test_watch_retries_past_a_corrupt_ledger_pointer(repo) -> None:
    output, stop = io.StringIO(), threading.Event()
    options = watch.WatchOptions(str(repo.working_dir), environ={})
    thread = threading.Thread(
        target=watch.watch, args=(options, 0.2, Console(file=output)), kwargs={"stop": stop}
    )
    thread.start()
    try:
        _wait_for(lambda: output.getvalue().count("is not a valid ledger pointer") >= 2)
        assert thread.is_alive()
        boto3.client("s3", region_name="us-east-1").delete_object(Bucket=BUCKET, Key=POINTER)
        _wait_for(lambda: f"applied {repo.head.commit.hexsha[:12]}" in output.getvalue())
    finally:
        stop.set()
        thread.join(timeout=30)
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == [REALTIME]


def _wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# Exit codes tell the truth (item 11)


def test_a_plan_with_a_blocked_pipeline_exits_1(aws, workdir: Path, example_config, capsys):
    seed_account(example_config)
    config = small_config(example_config)
    path = workdir / "mlops-config.json"
    path.write_text(json.dumps(config))
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName=REALTIME, TemplateBody=template, Tags=[{"Key": "team", "Value": "other"}]
    )

    code, out, _ = run(capsys, "plan", "--config", str(path), "--output", "json")

    assert code == 1
    (change,) = json.loads(out)["changes"]
    assert change["action"] == "blocked"
    assert run(capsys, "apply", "--config", str(path), "--dry-run")[0] == 1


def test_console_markup_in_a_value_is_printed_as_text(aws, workdir, example_config, capsys):
    seed_account(example_config)
    config = small_config(example_config)
    config["pipelines"][0]["model_artifact_location"] = "m[/]x[link=https://evil.example]y"
    path = workdir / "mlops-config.json"
    path.write_text(json.dumps(config))

    code, out, _ = run(capsys, "plan", "--config", str(path))

    assert code == 1  # that artifact does not exist: the pipeline is blocked
    assert "m[/]x[link=https://evil.example]y" in re.sub(r"[\s│]", "", out)  # cells fold
