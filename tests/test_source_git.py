"""Git facts CI relies on: detached HEADs, commit ids, ancestry and the config diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import git
import pytest

from controller.gitops import source
from tests.conftest import commit_config


def test_a_detached_head_reads_like_any_revision(config_repo: git.Repo, example_config) -> None:
    first = config_repo.head.commit.hexsha
    commit_config(config_repo, {**example_config, "pipelines": []}, "Empty")
    config_repo.git.checkout(first)
    assert config_repo.head.is_detached

    assert source.read_git(config_repo.working_dir).revision == first
    assert b'"pipelines": []' in source.read_git(config_repo.working_dir, "main").raw


def test_a_commit_is_superseded_only_by_a_strictly_newer_descendant(
    config_repo: git.Repo, example_config
) -> None:
    old = config_repo.head.commit.hexsha
    new = commit_config(config_repo, {**example_config, "pipelines": []}, "Empty")
    config_repo.git.checkout("-b", "side", old)
    side = commit_config(config_repo, {**example_config, "pipelines": []}, "Elsewhere")

    assert source.is_superseded(config_repo, old, new)
    assert not source.is_superseded(config_repo, new, old)
    assert not source.is_superseded(config_repo, new, new)
    assert not source.is_superseded(config_repo, new, None)
    assert not source.is_superseded(config_repo, side, new)


def test_ancestry_the_clone_cannot_establish_fails_closed(
    config_repo: git.Repo, example_config
) -> None:
    head = config_repo.head.commit.hexsha

    with pytest.raises(source.AncestryUnknown) as unknown:
        source.is_superseded(config_repo, head, "f" * 40)

    assert f"cannot tell whether commit {head[:12]} is older than ffffffffffff" in str(
        unknown.value
    )
    assert "ffffffffffff is not in the repository" in str(unknown.value)


def test_config_diff_is_a_unified_diff_of_the_config_text(
    config_repo: git.Repo, example_config: dict[str, Any]
) -> None:
    old = config_repo.head.commit.hexsha
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    new = commit_config(config_repo, example_config, "Scale")

    diff = source.config_diff(config_repo.working_dir, old, new)

    assert diff is not None
    assert diff.startswith(
        f"--- a/mlops-config.json@{old[:12]}\n+++ b/mlops-config.json@{new[:12]}"
    )
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[1:2] == " "]
    assert changed == [
        '-      "inference_instance": "ml.m5.large",',
        '+      "inference_instance": "ml.m5.xlarge",',
    ]


def test_config_diff_of_equal_configs_is_empty_and_unknown_commits_are_none(
    config_repo: git.Repo,
) -> None:
    head = config_repo.head.commit.hexsha
    (Path(config_repo.working_dir) / "README.md").write_text("notes\n")
    config_repo.index.add(["README.md"])
    other = config_repo.index.commit("Docs only").hexsha

    assert source.config_diff(config_repo.working_dir, head, other) == ""
    assert source.config_diff(config_repo.working_dir, "0" * 40, head) is None


def test_a_first_config_diffs_as_all_additions(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path / "r", initial_branch="main")
    with repo.config_writer() as writer:
        writer.set_value("user", "name", "T")
        writer.set_value("user", "email", "t@example.invalid")
    (tmp_path / "r" / "README.md").write_text("x\n")
    repo.index.add(["README.md"])
    empty = repo.index.commit("Start").hexsha
    (tmp_path / "r" / "mlops-config.json").write_text('{\n  "pipelines": []\n}\n')
    repo.index.add(["mlops-config.json"])
    added = repo.index.commit("Add config").hexsha

    diff = source.config_diff(repo.working_dir, empty, added)

    assert diff is not None
    assert [line for line in diff.splitlines()[3:]] == ["+{", '+  "pipelines": []', "+}"]


def test_a_config_linked_out_of_the_repository_is_refused_naming_the_file(
    aws: str, tmp_path: Path, example_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19, item 4: a committed symlink to a file outside the repository is neither
    planned as "uncommitted changes" (without the stale-commit guard) nor read at a commit."""
    import json

    from controller.cli.main import main

    outside = tmp_path / "elsewhere" / "config.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps(example_config))
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    with repo.config_writer() as writer:
        writer.set_value("user", "name", "Test").set_value("user", "email", "t@example.com")
    link = Path(repo.working_dir) / "mlops-config.json"
    link.symlink_to(outside)
    repo.index.add(["mlops-config.json"])
    repo.index.commit("config as a link")

    code = main(["plan", "--repo", repo.working_dir])

    out, err = capsys.readouterr()
    assert code == 1
    assert "mlops-config.json is a symbolic link out of the repository" in out + err
    assert "Traceback" not in out + err
    with pytest.raises(source.SourceError, match="is a symbolic link in commit"):
        source.read_git(repo.working_dir, "HEAD")
