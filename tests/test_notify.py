"""Apply notifications: what a subscriber of the SNS topic receives (moto SNS -> SQS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import git
import pytest

from controller.aws import notify
from controller.cli.main import main
from controller.core.records import Deployment, StackRecord
from tests.conftest import commit_config
from tests.emulated_faults import fail_creates
from tests.gitops import REALTIME, seed_account, small_config
from tests.multi_account import seed_orchestrator, staged_example


@pytest.fixture
def inbox(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An SQS queue subscribed to the topic the controller is told about; returns its URL."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="mlops-controller")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    monkeypatch.setenv("MLOPS_NOTIFICATION_TOPIC_ARN", topic)
    return str(queue)


def received(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def test_an_apply_that_changes_something_is_announced(repo, inbox, capsys) -> None:
    commit = repo.head.commit.hexsha

    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 0

    (message,) = received(inbox)
    assert message["Subject"] == f"mlops-controller: applied {commit[:12]} (1 changed, 0 failed)"
    assert f"applied commit {commit}" in message["Message"]
    assert f"create {REALTIME}: succeeded" in message["Message"]


def test_a_failed_apply_says_what_failed(repo, inbox, capsys, monkeypatch) -> None:
    fail_creates(monkeypatch, "byompipelinerealtimebuiltin", "Endpoint capacity unavailable")

    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 1

    (message,) = received(inbox)
    assert "apply failed" in message["Subject"]
    assert "Result: FAILED" in message["Message"]
    assert "Failed:" in message["Message"]
    assert "Endpoint capacity unavailable" in message["Message"]


def test_an_apply_that_changes_nothing_stays_quiet(repo, inbox, capsys) -> None:
    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 0
    received(inbox)

    assert main(["apply", "--auto-approve", "--repo", str(repo.working_dir)]) == 0

    assert received(inbox) == []


def test_subject_fits_sns_limits_whatever_the_names() -> None:
    deployment = Deployment(
        "f" * 40,
        datetime(2024, 1, 1, tzinfo=UTC),
        "ci",
        "mlops-config.json",
        True,
        "",
        (StackRecord("s", "t", "create", "new", "succeeded", "CREATE_COMPLETE"),),
    )
    subject = notify.subject(deployment, "contrôleur-" + "x" * 200)
    assert len(subject) <= 100
    assert subject.isascii() and "\n" not in subject


def test_a_stage_is_named_first_in_the_subject_whatever_the_names() -> None:
    deployment = Deployment(
        "f" * 40,
        datetime(2024, 1, 1, tzinfo=UTC),
        "ci",
        "mlops-config.json (stage prod)",
        False,
        "",
        (StackRecord("s", "t", "create", "new", "failed", "CREATE_FAILED"),),
    )
    assert notify.subject(deployment, "mlops-controller") == (
        "[prod] mlops-controller: apply failed ffffffffffff (1 changed, 1 failed)"
    )
    assert notify.subject(deployment, "x" * 200).startswith("[prod] xxx")
    assert "(stage prod)" in notify.message(deployment, "mlops-controller")


def test_a_staged_apply_announces_each_step_under_its_stage(aws, inbox, tmp_path, capsys) -> None:
    """One message per step that changed something; a stage's subject says which stage, the
    orchestrator's own step (its image builders) reads as a single account's."""
    seed_orchestrator(staged_example())
    staged = git.Repo.init(tmp_path / "staged-repo", initial_branch="main")
    commit_config(staged, staged_example(), "Three stages")
    commit = staged.head.commit.hexsha[:12]

    assert main(["apply", "--auto-approve", "--repo", str(staged.working_dir)]) == 0

    subjects = sorted(m["Subject"] for m in received(inbox))
    assert subjects == [
        f"[dev] mlops-controller: applied {commit} (3 changed, 0 failed)",
        f"mlops-controller: applied {commit} (1 changed, 0 failed)",
    ]
