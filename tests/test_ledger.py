"""The deployment ledger, written by every apply and read by `history`, on the moto server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import git
import pytest

from controller.aws import ledger
from controller.cli.main import main
from tests.conftest import commit_config
from tests.emulated_faults import fail_creates
from tests.gitops import REALTIME, seed_account, small_config

BUCKET = "mlops-assets-example"
PREFIX = "mlops-controller/mlops-controller/ledger/"


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def history(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "history", "--repo", str(repo.working_dir), "--output", "json")
    assert code == 0, err
    records: list[dict[str, Any]] = json.loads(out)["applies"]
    return records


def objects() -> dict[str, str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return {
        o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode() for o in listed
    }


def test_cli_apply_records_who_applied_which_commit_and_what_happened(
    repo, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    commit = repo.head.commit.hexsha

    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 0

    (record,) = history(capsys, repo)
    assert record["commit"] == commit
    assert record["actor"] == "alice"
    assert record["ok"] is True
    assert record["time"].endswith("Z")
    assert [(s["stack_name"], s["action"], s["outcome"]) for s in record["stacks"]] == [
        (REALTIME, "create", "succeeded")
    ]
    stored = objects()
    assert json.loads(stored[PREFIX + "last-applied.json"])["commit"] == commit
    (key,) = [k for k in stored if not k.endswith("last-applied.json")]
    assert key.startswith(PREFIX) and key.endswith(f"-{commit[:12]}.json")


def test_history_is_newest_first_and_limited(repo, capsys, example_config) -> None:
    first = repo.head.commit.hexsha
    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 0
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    second = commit_config(repo, bigger, "Scale the endpoint")
    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 0

    assert [r["commit"] for r in history(capsys, repo)] == [second, first]
    code, out, _ = run(capsys, "history", "--repo", str(repo.working_dir), "--limit", "1")
    assert code == 0
    assert second[:12] in out and first[:12] not in out


def test_the_ledger_holds_no_parameter_values(repo, capsys, example_config) -> None:
    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 0
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    commit_config(repo, bigger, "Scale the endpoint")
    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 0

    text = "\n".join(objects().values())
    for value in ("ml.m5.xlarge", "ml.m5.large", "linearlearner/model.tar.gz", "mlops-data"):
        assert value not in text


def test_a_failed_apply_that_wrote_is_recorded_and_moves_the_pointer_marked_failed(
    repo, capsys, monkeypatch
) -> None:
    fail_creates(monkeypatch, "byompipelinerealtimebuiltin", "Endpoint capacity unavailable")

    assert run(capsys, "apply", "--auto-approve", "--repo", str(repo.working_dir))[0] == 1

    (record,) = history(capsys, repo)
    assert record["ok"] is False
    assert "Endpoint capacity unavailable" in record["stacks"][0]["message"]
    pointer = json.loads(objects()[PREFIX + "last-applied.json"])
    assert (pointer["commit"], pointer["ok"]) == (repo.head.commit.hexsha, False)
    assert PREFIX + "intent.json" not in objects()
    code, out, _ = run(capsys, "history", "--repo", str(repo.working_dir))
    assert code == 0
    assert "failed" in out


def test_history_without_records_says_so(repo, capsys) -> None:
    code, out, _ = run(capsys, "history", "--repo", str(repo.working_dir))
    assert code == 0
    assert f"No applies recorded for mlops-controller in s3://{BUCKET}" in out


def test_history_names_a_missing_bucket_without_a_traceback(aws, capsys, tmp_path) -> None:
    code, _, err = run(
        capsys, "history", "--config", str(tmp_path / "none.json"), "--assets-bucket", "nope"
    )
    assert code == 1
    assert "cannot list the deployment ledger in s3://nope/" in err
    assert "NoSuchBucket" in err
    assert "Traceback" not in err


def test_actor_prefers_codebuild_then_the_user_then_the_committer() -> None:
    assert ledger.actor({"CODEBUILD_INITIATOR": "rule/push", "USER": "bob"}, "Carol") == (
        "rule/push"
    )
    assert ledger.actor({"USER": "bob"}, "Carol") == "bob"
    assert ledger.actor({}, "Carol") == "Carol"


def test_records_round_trip_and_sort_by_time() -> None:
    early = ledger.Deployment(
        "a" * 40, datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "x", "s", True, "", ()
    )
    late = ledger.Deployment(
        "b" * 40, datetime(2024, 1, 2, 3, 4, 6, tzinfo=UTC), "x", "s", True, "", ()
    )
    assert ledger.Deployment.from_json(early.to_json()) == early
    assert sorted([late.key_name, early.key_name]) == [early.key_name, late.key_name]
