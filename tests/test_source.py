"""Reading the config from a file or from a git revision, and the errors when it is not there."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import git
import pytest

from controller.cli.main import main
from controller.gitops import source
from tests.conftest import EXAMPLE, commit_config


def test_read_file_returns_the_bytes_and_the_name(tmp_path: Path) -> None:
    path = tmp_path / "mlops-config.json"
    path.write_bytes(b"{}")

    text = source.read_file(path)

    assert (text.name, text.raw, text.revision) == (str(path), b"{}", None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.json", "file not found"),
        (lambda tmp: tmp, "is a directory"),
    ],
    ids=["missing", "directory"],
)
def test_read_file_errors_are_source_errors_naming_the_path(
    tmp_path: Path, make: Any, message: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(source.SourceError) as caught:
        source.read_file(path)

    assert caught.value.diagnostic.file == str(path)
    assert caught.value.diagnostic.message == message
    assert str(caught.value).startswith(f"{path}: error E000 $: {message}")


def test_read_git_reads_the_committed_config_not_the_working_tree(config_repo: git.Repo) -> None:
    work = Path(config_repo.working_dir)
    (work / "mlops-config.json").write_text("uncommitted edits")

    text = source.read_git(work)

    assert text.raw == (json.dumps(json.loads(EXAMPLE.read_text()), indent=2) + "\n").encode()
    assert text.revision == config_repo.head.commit.hexsha
    assert text.name == f"mlops-config.json@{text.revision[:12]}"


def test_read_git_reads_an_older_revision_by_branch_tag_or_id(
    config_repo: git.Repo, example_config: dict[str, Any]
) -> None:
    first = config_repo.head.commit.hexsha
    config_repo.create_tag("v1")
    commit_config(config_repo, {**example_config, "pipelines": []}, "Remove all pipelines")
    work = config_repo.working_dir

    assert json.loads(source.read_git(work, "HEAD").raw)["pipelines"] == []
    for ref in ("v1", first, first[:8], "HEAD~1", "main~1"):
        text = source.read_git(work, ref)
        assert len(json.loads(text.raw)["pipelines"]) == 9
        assert text.revision == first


def test_read_git_finds_the_repository_from_a_subdirectory(config_repo: git.Repo) -> None:
    sub = Path(config_repo.working_dir) / "docs"
    sub.mkdir()

    assert source.read_git(sub).revision == config_repo.head.commit.hexsha


def test_read_git_takes_a_path_inside_the_repository(config_repo: git.Repo) -> None:
    work = Path(config_repo.working_dir)
    (work / "envs").mkdir()
    (work / "envs" / "prod.json").write_text('{"pipelines": []}')
    config_repo.index.add(["envs/prod.json"])
    config_repo.index.commit("Add prod")

    assert source.read_git(work, path="envs/prod.json").raw == b'{"pipelines": []}'


@pytest.mark.parametrize(
    ("ref", "path", "message"),
    [
        ("no-such-branch", "mlops-config.json", "unknown revision 'no-such-branch'"),
        ("HEAD~5", "mlops-config.json", "unknown revision 'HEAD~5'"),
        ("HEAD", "other.json", "no other.json in commit "),
    ],
)
def test_read_git_errors_name_the_revision_or_path(
    config_repo: git.Repo, ref: str, path: str, message: str
) -> None:
    with pytest.raises(source.SourceError) as caught:
        source.read_git(config_repo.working_dir, ref, path)

    assert caught.value.diagnostic.message.startswith(message)


def test_config_path_that_is_a_directory_in_the_commit(config_repo: git.Repo) -> None:
    work = Path(config_repo.working_dir)
    (work / "envs").mkdir()
    (work / "envs" / "a.json").write_text("{}")
    config_repo.index.add(["envs/a.json"])
    config_repo.index.commit("Add envs")

    with pytest.raises(source.SourceError) as caught:
        source.read_git(work, path="envs")

    assert "envs is a directory in commit" in caught.value.diagnostic.message


@pytest.mark.parametrize("name", ["plain-directory", "does-not-exist"])
def test_a_directory_that_is_not_a_repository(tmp_path: Path, name: str) -> None:
    if name == "plain-directory":
        (tmp_path / name).mkdir()

    with pytest.raises(source.SourceError) as caught:
        source.read_git(tmp_path / name)

    assert caught.value.diagnostic.message == "not a git repository"
    assert caught.value.diagnostic.file == str(tmp_path / name)


def test_a_repository_without_commits(tmp_path: Path) -> None:
    git.Repo.init(tmp_path / "empty")

    with pytest.raises(source.SourceError) as caught:
        source.read_git(tmp_path / "empty")

    assert caught.value.diagnostic.message == "the repository has no commits yet"


# Bounded input (issue 11, item 8): the size is checked before anything is read.

HUGE = 64 * 1024 * 1024
LIMIT_MESSAGE = (
    f"error E001 $: file is {HUGE} bytes (expected a config under 5242880 bytes (5 MiB))"
)


def _peak_of(argv: list[str]) -> tuple[int, int]:
    """Exit status and the peak of memory Python allocated while `argv` ran."""
    tracemalloc.start()
    try:
        code = main(argv)
        return code, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_committed_file_over_the_limit_is_refused_from_its_header(
    config_repo: git.Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    work = Path(config_repo.working_dir)
    with (work / "mlops-config.json").open("wb") as big:
        big.truncate(HUGE)  # 64 MiB of zero bytes, committed as the config
    config_repo.git.add("mlops-config.json")
    config_repo.git.commit("-m", "A huge config")

    code, peak = _peak_of(["validate", "--repo", str(work)])

    err = capsys.readouterr().err
    assert code == 1
    assert LIMIT_MESSAGE in err
    assert peak < 8 * 1024 * 1024, f"{peak} bytes allocated to refuse it"


def test_a_file_over_the_limit_is_refused_by_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mlops-config.json"
    with path.open("wb") as big:
        big.truncate(HUGE)

    code, peak = _peak_of(["validate", "--config", str(path)])

    assert code == 1
    assert f"{path}: {LIMIT_MESSAGE}" in capsys.readouterr().err
    assert peak < 8 * 1024 * 1024, f"{peak} bytes allocated to refuse it"


def test_an_endless_device_is_read_with_a_bound() -> None:
    def one_gib_of_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    done = subprocess.run(
        [sys.executable, "-m", "controller", "validate", "--config", "/dev/zero"],
        preexec_fn=one_gib_of_address_space,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert done.stderr.startswith(
        "/dev/zero: error E001 $: file is over 5242880 bytes (expected a config under"
    )
    assert "Traceback" not in done.stderr
