"""`mlops-controller validate` as a user runs it: exit codes, one error per line, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest

from controller.cli import main as cli
from tests.conftest import EXAMPLE, ROOT, commit_config
from tests.test_config_invalid import CASES, DATA_QUALITY, Case, mutate

EXECUTABLE = Path(sys.executable).with_name("mlops-controller")
ERROR_LINE = re.compile(
    r"^(?P<file>[^:]+)(:(?P<line>\d+))?: (?P<severity>error|warning) (?P<code>[A-Z]\d{3}) "
    r"(?P<path>\$\S*): (?P<message>.+?)( \(expected (?P<expected>.+)\))?$"
)


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLOPS_") and k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [str(EXECUTABLE), "validate", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**clean_env(), **(env or {})},
        timeout=60,
    )


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("MLOPS_") or name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(name)


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_example_is_valid() -> None:
    done = run(str(EXAMPLE))

    assert done.returncode == 0
    assert done.stdout == f"{EXAMPLE}: valid, 9 pipelines\n"
    assert done.stderr == ""


def test_invalid_file_exits_one_with_one_error_per_line(tmp_path: Path) -> None:
    data = mutate(0, inference_instanse="ml.m5.large", model_name=7)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data, indent=2))

    done = run(str(path))

    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[-1] == "2 errors"
    parsed = [ERROR_LINE.match(line) for line in lines[:-1]]
    assert all(parsed), lines
    assert [(m["file"], m["line"], m["code"], m["path"]) for m in parsed if m] == [
        (str(path), "12", "S103", "$.pipelines[0].model_name"),
        (str(path), "19", "S102", "$.pipelines[0].inference_instanse"),
    ]
    assert lines[1] == (
        f"{path}:19: error S102 $.pipelines[0].inference_instanse: unknown key "
        "'inference_instanse'; did you mean 'inference_instance'? "
        "(expected a key of byom_realtime_builtin)"
    )


def test_warnings_are_printed_and_the_file_is_still_valid(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(mutate(DATA_QUALITY, endpoint_name="elsewhere"), indent=2))

    done = run(str(path))

    assert done.returncode == 0
    first, last = done.stdout.splitlines()
    assert ERROR_LINE.match(first)
    assert first.startswith(f"{path}:") and " warning W101 $.pipelines[5].endpoint_name: " in first
    assert last == f"{path}: valid, 9 pipelines"


def test_json_output(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(mutate(0, inference_instance="large"), indent=2))

    done = run(str(path), "--output", "json")

    assert done.returncode == 1
    payload = json.loads(done.stdout)
    assert payload == {
        "version": 2,
        "valid": False,
        "diagnostics": [
            {
                "code": "S106",
                "severity": "error",
                "file": str(path),
                "line": 16,
                "path": "$.pipelines[0].inference_instance",
                "message": '"large" is not valid',
                "expected": "an ML instance type such as ml.m5.large",
            }
        ],
    }
    valid = json.loads(run(str(EXAMPLE), "--output", "json").stdout)
    assert valid == {"version": 2, "valid": True, "diagnostics": []}


def test_default_path_is_mlops_config_json_in_the_working_directory(workdir: Path) -> None:
    assert run(cwd=workdir).stdout == "mlops-config.json: valid, 9 pipelines\n"

    (workdir / "mlops-config.json").unlink()
    done = run(cwd=workdir)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "mlops-config.json: error E000 $: file not found (expected an existing mlops-config.json)"
    )


def test_settings_flags_and_environment_reach_the_check(tmp_path: Path) -> None:
    pipeline = json.loads(EXAMPLE.read_text())["pipelines"][2]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(pipeline))

    missing = run(str(path))
    from_env = run(str(path), env={"MLOPS_ASSETS_BUCKET": "bucket-a", "MLOPS_REGION": "us-east-1"})
    bad_flag = run(
        str(path),
        "--region",
        "us-east-1",
        "--assets-bucket",
        "Bad_Bucket",
        env={"MLOPS_ASSETS_BUCKET": "bucket-a"},
    )

    assert missing.returncode == 1
    assert "S107 $.settings.assets_bucket: missing required setting" in missing.stderr
    assert from_env.returncode == 0
    assert bad_flag.returncode == 1
    assert '$.settings.assets_bucket: "Bad_Bucket" is not valid (set by --assets-bucket)' in (
        bad_flag.stderr
    )


def test_repo_and_ref_read_a_committed_config(
    config_repo: git.Repo, example_config: dict[str, Any]
) -> None:
    first = config_repo.head.commit.hexsha
    commit_config(config_repo, mutate(0, inference_instance="large"), "Break it")
    work = config_repo.working_dir

    broken = run("--repo", work)
    fixed = run("--repo", work, "--ref", first)
    by_branch = run("--repo", work, "--ref", "main~1")

    assert broken.returncode == 1
    head = config_repo.head.commit.hexsha[:12]
    assert broken.stderr.startswith(
        f"mlops-config.json@{head}:16: error S106 $.pipelines[0].inference_instance: "
    )
    assert fixed.returncode == 0
    assert fixed.stdout == f"mlops-config.json@{first[:12]}: valid, 9 pipelines\n"
    assert by_branch.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ref", "no-such-branch"], "unknown revision 'no-such-branch'"),
        (["--config-path", "missing.json"], "no missing.json in commit"),
    ],
)
def test_repo_errors(config_repo: git.Repo, args: list[str], message: str) -> None:
    done = run("--repo", config_repo.working_dir, *args)

    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_config_missing_at_the_requested_ref(config_repo: git.Repo) -> None:
    first = config_repo.head.commit.hexsha
    config_repo.index.remove(["mlops-config.json"], working_tree=True)
    config_repo.index.commit("Remove config")

    done = run("--repo", config_repo.working_dir, "--ref", "HEAD")

    assert done.returncode == 1
    assert f"no mlops-config.json in commit {config_repo.head.commit.hexsha[:12]}" in done.stderr
    assert run("--repo", config_repo.working_dir, "--ref", first).returncode == 0


def test_repo_that_is_not_a_repository(tmp_path: Path) -> None:
    done = run("--repo", str(tmp_path))

    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"{tmp_path}: error E000 $: not a git repository (expected a git working tree or clone)"
    )


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe", b"[" * 100_000, b'{"pipelines": [1, {}, "x", null]}', b"{" * 3],
    ids=["empty", "binary", "deep", "wrong-types", "truncated"],
)
def test_subprocess_never_prints_a_traceback(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(raw)

    done = run(str(path))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert all(ERROR_LINE.match(line) for line in done.stderr.splitlines()[:-1])


def test_a_directory_and_a_missing_file(tmp_path: Path) -> None:
    for target, message in ((tmp_path, "is a directory"), (tmp_path / "no.json", "file not found")):
        done = run(str(target))
        assert done.returncode == 1
        assert f"{target}: error E000 $: {message}" in done.stderr


def test_usage_errors_exit_one_without_a_traceback() -> None:
    done = run("--output", "yaml")

    assert done.returncode == 1  # 2 would read as "changes" to a caller of plan
    assert "invalid choice: 'yaml'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_main_reports_every_invalid_case_in_the_error_line_format(
    case: Case,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "mlops-config.json"
    path.write_bytes(case.text())
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in case.flags.items()]

    code, out, err = main(capsys, str(path), *flags)

    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    *lines, summary = err.splitlines()
    assert re.fullmatch(r"\d+ errors?", summary)
    matches = [ERROR_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert any(
        m["path"] == case.path and case.message in m["message"] and m["file"] == str(path)
        for m in matches
        if m
    )


def test_main_with_the_default_path(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)

    assert main(capsys) == (0, "mlops-config.json: valid, 9 pipelines\n", "")


def test_main_with_repo_and_ref(config_repo: git.Repo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = main(
        capsys, "--repo", config_repo.working_dir, "--ref", "main", "--output", "json"
    )

    assert code == 0
    assert json.loads(out) == {"version": 2, "valid": True, "diagnostics": []}


def test_the_pre_commit_hook_runs_validate_on_the_config(workdir: Path) -> None:
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "mlops-controller-validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert re.search(hook["files"], "mlops-config.json")
    assert not re.search(hook["files"], "docs/mlops-config.json.bak")
    command = [str(EXECUTABLE), *hook["entry"].split()[1:], "mlops-config.json"]

    ok = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=clean_env())
    (workdir / "mlops-config.json").write_text('{"pipelines": [}')
    broken = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=clean_env())

    assert hook["entry"].split()[0] == EXECUTABLE.name
    assert ok.returncode == 0
    assert broken.returncode == 1
    assert broken.stderr.startswith("mlops-config.json:1: error E004 $: invalid JSON")


def _documented_sample_config() -> dict[str, Any]:
    """The mistakes the sample output of docs/config.md shows, made to the example config."""
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    first = data["pipelines"][0]
    data["pipelines"][0] = {
        ("inference_instanse" if k == "inference_instance" else k): v for k, v in first.items()
    }
    data["pipelines"][2]["pipeline_type"] = "byom_image_bulder"
    data["pipelines"][5]["monitor_max_runtime_seconds"] = 90000
    return data


def test_the_documented_sample_output_is_what_validate_prints(workdir: Path) -> None:
    documented = (ROOT / "docs" / "config.md").read_text()
    sample = documented.split("Every problem is reported in one run", 1)[1]
    sample = sample.split("```text\n", 1)[1].split("```", 1)[0]
    (workdir / "mlops-config.json").write_text(json.dumps(_documented_sample_config(), indent=2))

    done = run(cwd=workdir)

    assert done.returncode == 1
    assert done.stderr == sample


def test_a_mistyped_pipeline_type_gets_a_did_you_mean(workdir: Path) -> None:
    (workdir / "mlops-config.json").write_text(json.dumps(_documented_sample_config(), indent=2))

    done = run(cwd=workdir)

    assert (
        '$.pipelines[2].pipeline_type: "byom_image_bulder": pipeline type not supported; '
        "did you mean 'byom_image_builder'?"
    ) in done.stderr


def test_several_paths_are_each_validated(tmp_path: Path) -> None:
    broken = tmp_path / "envs" / "prod" / "mlops-config.json"
    broken.parent.mkdir(parents=True)
    broken.write_text(json.dumps(mutate(0, inference_instance="large"), indent=2))

    done = run(str(EXAMPLE), str(broken))
    as_json = json.loads(run(str(EXAMPLE), str(broken), "-o", "json").stdout)

    assert done.returncode == 1
    assert done.stdout == f"{EXAMPLE}: valid, 9 pipelines\n"
    assert done.stderr.splitlines() == [
        f'{broken}:16: error S106 $.pipelines[0].inference_instance: "large" is not valid '
        "(expected an ML instance type such as ml.m5.large)",
        f"{broken}: 1 error",
    ]
    assert as_json["valid"] is False
    assert [d["file"] for d in as_json["diagnostics"]] == [str(broken)]
    assert run(str(EXAMPLE), str(EXAMPLE)).returncode == 0


def test_the_pre_commit_hook_passes_every_config_in_the_repository(tmp_path: Path) -> None:
    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    names = ["mlops-config.json", "envs/prod/mlops-config.json", "envs/dev/mlops-config.json"]
    assert all(re.search(hook["files"], name) for name in names)
    assert not re.search(hook["files"], "envs/prod/old-mlops-config.json")
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(EXAMPLE.read_text())
    (tmp_path / names[1]).write_text('{"pipelines": [}')
    command = [str(EXECUTABLE), *hook["entry"].split()[1:], *names]

    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=clean_env())

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "mlops-config.json: valid, 9 pipelines",
        "envs/dev/mlops-config.json: valid, 9 pipelines",
    ]
    assert done.stderr.startswith("envs/prod/mlops-config.json:1: error E004 $: invalid JSON")
