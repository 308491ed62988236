"""`watch`: a real git repository (local, or cloned from a URL), polled against the moto server."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import git
import pytest
from rich.console import Console

from controller.aws.ledger import Ledger
from controller.aws.session import Aws
from controller.cli.main import main
from controller.gitops import watch
from tests.conftest import commit_config
from tests.gitops import REALTIME, instance_type, seed_account, small_config, stack_names

INTERVAL = 0.5


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def last_applied() -> str | None:
    s3 = Aws(region="us-east-1").client("s3")
    return Ledger(s3, "mlops-assets-example", "mlops-controller").last_applied()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("0.5s", 0.5),
        ("45", 45),
        ("1m30s", 90),
        ("1h30m", 5400),
        ("1.5m", 90),
    ],
)
def test_interval_units(text: str, seconds: float) -> None:
    assert watch.parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1s", "0s", "m", "1m30", "1m 30s", "0m0s"])
def test_a_bad_interval_is_named(text: str, capsys) -> None:
    assert main(["watch", "--repo", ".", f"--interval={text}"]) == 1
    assert capsys.readouterr().err.startswith(f"error: --interval {text!r}: expected")


def test_watch_applies_a_new_commit_within_one_interval(repo, example_config) -> None:
    stop = threading.Event()
    output = io.StringIO()
    options = watch.WatchOptions(str(repo.working_dir), environ={})
    thread = threading.Thread(
        target=watch.watch, args=(options, INTERVAL, Console(file=output)), kwargs={"stop": stop}
    )
    thread.start()
    try:
        first = repo.head.commit.hexsha
        _wait_for(lambda: last_applied() == first, "the first commit")
        assert REALTIME in stack_names()

        bigger = small_config(example_config)
        bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
        second = commit_config(repo, bigger, "Scale the endpoint")
        started = time.monotonic()
        _wait_for(lambda: last_applied() == second, "the second commit")
        assert time.monotonic() - started < INTERVAL + 10
        assert instance_type(REALTIME) == "ml.m5.xlarge"
        _wait_for(lambda: f"{second[:12]} is applied already" in output.getvalue(), "nothing")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert output.getvalue().count(f"applied {second[:12]}") == 1


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"watch did not apply {what}"
        time.sleep(0.1)


def test_watch_once_clones_a_url_and_skips_what_is_applied(repo, tmp_path, capsys) -> None:
    url = Path(repo.working_dir).as_uri()
    argv = ["watch", "--repo", url, "--once", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--interval", "1m30s"]

    assert main(argv) == 0
    assert last_applied() == repo.head.commit.hexsha
    capsys.readouterr()

    assert main(argv) == 0
    assert f"{repo.head.commit.hexsha[:12]} is applied already" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_watch_follows_the_remote_branch_of_a_working_clone(repo, tmp_path, example_config):
    clone = git.Repo.clone_from(repo.working_dir, tmp_path / "clone")
    assert main(["watch", "--repo", str(clone.working_dir), "--once"]) == 0
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    pushed = commit_config(repo, bigger, "Scale the endpoint")

    assert main(["watch", "--repo", str(clone.working_dir), "--once"]) == 0

    assert last_applied() == pushed
    assert instance_type(REALTIME) == "ml.m5.xlarge"


def test_watch_never_goes_back_to_an_older_commit(repo, capsys, example_config) -> None:
    old = repo.head.commit.hexsha
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    new = commit_config(repo, bigger, "Scale the endpoint")
    assert main(["watch", "--repo", str(repo.working_dir), "--once"]) == 0
    repo.git.branch("old", old)
    capsys.readouterr()

    assert main(["watch", "--repo", str(repo.working_dir), "--branch", "old", "--once"]) == 0

    out = " ".join(capsys.readouterr().out.split())
    assert f"Nothing done: commit {old[:12]} is an ancestor of {new[:12]}" in out
    assert instance_type(REALTIME) == "ml.m5.xlarge"


def test_an_unreachable_url_is_a_clear_error(aws, tmp_path, capsys) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    code = main(["watch", "--repo", missing, "--once", "--cache-dir", str(tmp_path / "c")])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"error: cannot clone {missing}")
