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
from pathlib import Path
from typing import Any

import boto3
import pytest

from bench.proxy import FaultProxy
from controller.aws import session as aws_module
from controller.aws.lock import lock_key
from controller.cli.demo import seed
from controller.cli.main import main
from tests.test_config_invalid import EXAMPLE_DATA

PIPELINES = (0, 1, 3)


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
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "MLOPS_POLL_SECONDS": "0.1"}
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
