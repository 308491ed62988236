"""The controller killed in the middle of an apply, then run again: it converges.

`mlops-controller apply` runs as a real process against the moto server through the fault
proxy (with latency, so the apply is slow enough to be caught mid-way); the test kills it with
SIGKILL once the proxy has seen the chosen write, then runs apply again.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from bench.proxy import FaultProxy
from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.aws.lock import LeaseRecord, lock_key
from controller.cli.main import main
from tests.conftest import commit_config
from tests.test_config_invalid import EXAMPLE_DATA

PIPELINES = (0, 1, 3)
LEASE_SECONDS = 2
"""The killed process's lease: nothing may break it before it expires, so keep it short."""


@pytest.fixture
def config_file(aws: str, tmp_path: Path) -> Path:
    data = {
        "settings": EXAMPLE_DATA["settings"],
        "pipelines": [copy.deepcopy(EXAMPLE_DATA["pipelines"][i]) for i in PIPELINES],
    }
    seed(aws_module.Aws(region="us-east-1"), data["settings"]["assets_bucket"], data)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(data))
    return path


def _kill_after(proxy: FaultProxy, operation: str, count: int, argv: list[str]) -> int:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": proxy.url,
        "MLOPS_POLL_SECONDS": "0.1",
        "MLOPS_LOCK_SECONDS": str(LEASE_SECONDS),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = threading.Event()
    while process.poll() is None and not seen.wait(0.02):
        if proxy.operations[operation] >= count:
            seen.set()
    process.send_signal(signal.SIGKILL)
    return process.wait()


def wait_for_expiry(s3: Any, bucket: str, key: str) -> None:
    """A killed apply's lease is taken over only once it has expired."""
    left = LeaseRecord.from_json(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    time.sleep(max(0.0, (left.expires - datetime.now(UTC)).total_seconds()) + 0.1)


@pytest.mark.parametrize("creates_seen", [1, 2])
def test_killed_mid_apply_then_run_again_converges_without_duplicates(
    aws: str, config_file: Path, capsys: pytest.CaptureFixture[str], creates_seen: int
) -> None:
    with FaultProxy(aws, latency_ms=150) as proxy:
        status = _kill_after(
            proxy,
            "cloudformation.CreateStack",
            creates_seen,
            ["apply", "--auto-approve", "--config", str(config_file), "--parallel", "1"],
        )
        settled = threading.Event()
        while proxy.stats["finished"] < proxy.stats["requests"] and not settled.wait(0.02):
            pass  # requests the dead process sent still reach the emulator
    assert status == -signal.SIGKILL, "the apply finished before it could be killed"
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    before = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
    assert 1 <= len(before) < len(PIPELINES)
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = EXAMPLE_DATA["settings"]["assets_bucket"]
    key = lock_key(EXAMPLE_DATA["settings"]["controller_id"])
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] == 1, "lease left behind"
    wait_for_expiry(s3, bucket, key)

    code = main(["apply", "--auto-approve", "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    stacks: list[dict[str, Any]] = cfn.describe_stacks()["Stacks"]
    names = [s["StackName"] for s in stacks]
    assert len(names) == len(set(names)) == len(PIPELINES)
    assert set(before) <= set(names)
    assert {s["StackStatus"] for s in stacks} <= {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
    assert main(["plan", "--config", str(config_file)]) == 0
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"] == 0


@pytest.fixture
def config_repo_of_three(aws: str, config_repo: git.Repo, config_file: Path) -> git.Repo:
    """The three pipelines committed to a real repository (the account is seeded)."""
    commit_config(config_repo, json.loads(config_file.read_text()), "Three pipelines")
    return config_repo


def test_a_killed_apply_is_reported_by_the_next_run_in_its_output_history_and_ledger(
    aws: str, config_repo_of_three: git.Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(config_repo_of_three.working_dir)
    commit = config_repo_of_three.head.commit.hexsha
    with FaultProxy(aws, latency_ms=150) as proxy:
        status = _kill_after(
            proxy,
            "cloudformation.CreateStack",
            1,
            ["apply", "--auto-approve", "--repo", repo, "--parallel", "1"],
        )
        settled = threading.Event()
        while proxy.stats["finished"] < proxy.stats["requests"] and not settled.wait(0.02):
            pass
    assert status == -signal.SIGKILL, "the apply finished before it could be killed"
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = EXAMPLE_DATA["settings"]["assets_bucket"]
    wait_for_expiry(s3, bucket, lock_key(EXAMPLE_DATA["settings"]["controller_id"]))

    code = main(["apply", "--auto-approve", "--repo", repo])

    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    assert f"An earlier apply did not finish: {commit[:12]} by" in out
    assert main(["history", "--repo", repo, "--output", "json"]) == 0
    latest, interrupted = json.loads(capsys.readouterr().out)["applies"]
    assert (latest["commit"], latest["ok"], latest["interrupted"]) == (commit, True, False)
    assert (interrupted["commit"], interrupted["ok"]) == (commit, False)
    assert interrupted["interrupted"] is True
    assert len(interrupted["stacks"]) == len(PIPELINES)
    assert {s["outcome"] for s in interrupted["stacks"]} == {"interrupted"}
    assert main(["history", "--repo", repo]) == 0
    assert "interrupted" in capsys.readouterr().out
    prefix = f"mlops-controller/{EXAMPLE_DATA['settings']['controller_id']}/ledger/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert prefix + "intent.json" not in keys
    assert len([k for k in keys if k.endswith(f"-{commit[:12]}.json")]) == 2
