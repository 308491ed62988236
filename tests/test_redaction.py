"""No credential in any output (issue 11, item 7): a token in a git URL or a signed S3 URL
quoted by AWS is hidden on the console, in errors, the ledger, build artifacts and e-mails."""

from __future__ import annotations

import json
import socket
from typing import Any

import boto3
import git
import pytest

from controller.cli.main import main
from controller.core.redact import redact
from tests.conftest import commit_config
from tests.emulated_faults import fail_creates
from tests.gitops import seed_account, small_config

TOKEN = "ghp-SECRET-TOKEN-5f4e3d"
SIGNATURE = "SECRET-SIGNATURE-a1b2c3"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "https://alice:" + TOKEN + "@git.example.com/ml/config.git",
            "https://***@git.example.com",
        ),
        ("fetch https://" + TOKEN + "@github.com/o/r failed", "https://***@github.com/o/r"),
        ("https://a:p@ss@host/x", "https://***@host/x"),
        (
            "https://b.s3.amazonaws.com/t.yaml?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature="
            + SIGNATURE
            + "&X-Amz-Security-Token="
            + TOKEN,
            "X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***",
        ),
        (
            "s3://bucket/key and git@github.com:o/r.git",
            "s3://bucket/key and git@github.com:o/r.git",
        ),
        # Issue 19, item 8: every credential-shaped query parameter, not a list of names.
        ("https://api.example.com/v1?api_key=" + TOKEN + "&q=1", "?api_key=***&q=1"),
        ("http://proxy.example.com:3128/?apikey=" + TOKEN, "?apikey=***"),
        ("https://idp.example.com/t?client_id=ml&client_secret=" + TOKEN, "client_id=ml&"),
        ("https://gitlab.example.com/r.git?private_token=" + TOKEN, "?private_token=***"),
        ("https://h.example.com/o?X-Goog-Signature=" + SIGNATURE + "#top", "Signature=***#top"),
        ("https://h.example.com/?AccessKey=" + TOKEN + ";session_id=" + SIGNATURE, "Key=***;"),
        ("https://h.example.com/?db_password=" + TOKEN, "?db_password=***"),
    ],
)
def test_redact_hides_url_credentials_and_keeps_the_rest(text: str, shown: str) -> None:
    assert shown in redact(text)
    assert TOKEN not in redact(text) and SIGNATURE not in redact(text)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_watch_never_prints_the_token_of_its_repository_url(aws, tmp_path, capsys) -> None:
    url = f"http://alice:{TOKEN}@127.0.0.1:{_closed_port()}/ml/config.git"

    code = main(["watch", "--repo", url, "--once", "--cache-dir", str(tmp_path / "cache")])

    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("error: cannot clone http://***@127.0.0.1:")
    assert TOKEN not in out + err


@pytest.fixture
def topic_queue(aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An SNS topic the controller notifies, and a queue subscribed to it to read the mail."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="mlops-notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    monkeypatch.setenv("MLOPS_NOTIFICATION_TOPIC_ARN", topic)
    return sqs, queue


def test_a_credential_quoted_by_aws_reaches_no_console_ledger_artifact_or_email(
    aws, config_repo: git.Repo, example_config, topic_queue, tmp_path, monkeypatch, capsys
) -> None:
    seed_account(example_config)
    commit = commit_config(config_repo, small_config(example_config), "One endpoint")
    leak = (
        f"template https://deploy:{TOKEN}@git.example.com/t.yaml?X-Amz-Signature={SIGNATURE} "
        "is not reachable"
    )
    fail_creates(monkeypatch, "realtimebuiltin", leak)
    monkeypatch.setenv("MLOPS_EVENT", "push")
    monkeypatch.setenv("MLOPS_BRANCH", "main")
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", commit)
    artifacts = tmp_path / "artifacts"

    code = main(["ci", "--repo", str(config_repo.working_dir), "--artifacts", str(artifacts)])

    out, err = capsys.readouterr()
    sqs, queue = topic_queue
    mail = [m["Body"] for m in sqs.receive_message(QueueUrl=queue).get("Messages", [])]
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = example_config["settings"]["assets_bucket"]
    ledger = [
        s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode()
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="mlops-controller/")["Contents"]
    ]
    files = {p.name: p.read_text() for p in artifacts.iterdir()}
    assert code == 1
    assert "https://***@git.example.com/t.yaml?X-Amz-Signature=***" in out
    assert len(mail) == 1 and "git.example.com" in json.loads(mail[0])["Message"]
    assert any("git.example.com" in record for record in ledger)
    assert "git.example.com" in files["apply.json"] and "git.example.com" in files["report.xml"]
    for text in [out, err, *mail, *ledger, *files.values()]:
        assert TOKEN not in text and SIGNATURE not in text
