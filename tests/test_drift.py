"""Drift is seen, and corrected where CloudFormation can (issue 11, item 5).

A parameter changed by hand shows in every plan at no extra call; a resource deleted or
edited by hand is found by drift detection (emulated: moto has none) in scheduled runs and
on `--detect-drift`, within a bounded number of calls.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from controller.aws import drift as drift_module
from controller.aws.session import Aws
from controller.cli.main import main
from controller.core import config as config_module
from controller.gitops import reconcile
from tests.aws_calls import count_calls
from tests.conftest import commit_config
from tests.emulated_drift import emulate_drift
from tests.gitops import REALTIME, instance_type, seed_account, small_config

DETECTION_CALLS = (
    "cloudformation.DetectStackDrift",
    "cloudformation.DescribeStackDriftDetectionStatus",
    "cloudformation.DescribeStackResourceDrifts",
)


@pytest.fixture
def deployed(aws: str, workdir: Path, example_config: dict[str, Any], capsys) -> Path:
    """The realtime endpoint, applied from a config file."""
    seed_account(example_config)
    path = workdir / "mlops-config.json"
    path.write_text(json.dumps(small_config(example_config)))
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    capsys.readouterr()
    return path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_calls(monkeypatch)


@pytest.fixture
def detection(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(drift_module, "POLL_SECONDS", 0.01)
    return emulate_drift(monkeypatch)


def plan(capsys, path: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    code = main(["plan", "--config", str(path), "--output", "json", *flags])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


def _endpoint() -> str:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    outputs = cfn.describe_stacks(StackName=REALTIME)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "EndpointName")


def test_a_parameter_changed_by_hand_is_drift_and_apply_corrects_it(
    deployed, capsys, calls
) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stack = cfn.describe_stacks(StackName=REALTIME)["Stacks"][0]
    cfn.update_stack(  # a person, by hand: same template, tags kept, one value changed
        StackName=REALTIME,
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": p["ParameterKey"], "ParameterValue": "ml.c5.4xlarge"}
            if p["ParameterKey"] == "InferenceInstance"
            else {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in stack["Parameters"]
        ],
        Capabilities=["CAPABILITY_IAM"],
        Tags=stack["Tags"],
    )
    assert instance_type(REALTIME) == "ml.c5.4xlarge"
    calls.clear()

    code, planned = plan(capsys, deployed)

    assert code == 2
    (change,) = planned["changes"]
    assert change["action"] == "update"
    assert change["reason"] == "drifted: InferenceInstance is ml.c5.4xlarge, git says ml.m5.large"
    assert [op for op in calls if op.startswith("cloudformation.")] == [
        "cloudformation.DescribeStacks"
    ]
    assert main(["apply", "--auto-approve", "--config", str(deployed)]) == 0
    assert instance_type(REALTIME) == "ml.m5.large"
    capsys.readouterr()
    assert plan(capsys, deployed)[0] == 0


def test_an_endpoint_deleted_by_hand_is_found_by_drift_detection_and_replaced(
    deployed, capsys, calls, detection
) -> None:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    endpoint = _endpoint()
    sagemaker.delete_endpoint(EndpointName=endpoint)
    assert plan(capsys, deployed)[0] == 0  # unseen without detection: it costs calls
    assert not [op for op in calls if op in DETECTION_CALLS]
    calls.clear()

    code, planned = plan(capsys, deployed, "--detect-drift")

    assert code == 2
    (change,) = planned["changes"]
    assert change["action"] == "replace"
    assert change["reason"].startswith(
        "drifted: Endpoint (AWS::SageMaker::Endpoint) was deleted outside CloudFormation, "
        "which an update cannot re-create: delete and create the stack"
    )
    assert change["drift"] == [
        {
            "logical_id": "Endpoint",
            "resource_type": "AWS::SageMaker::Endpoint",
            "status": "DELETED",
            "differences": [],
        }
    ]
    assert [calls[op] for op in DETECTION_CALLS] == [1, 2, 1]  # one poll in progress, one done
    assert main(["status", "--config", str(deployed), "--output", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["pipelines"]
    assert row["drift"].startswith("DRIFTED ")

    assert main(["apply", "--auto-approve", "--config", str(deployed), "--detect-drift"]) == 0
    assert sagemaker.describe_endpoint(EndpointName=_endpoint())["EndpointStatus"] == "InService"
    capsys.readouterr()
    assert plan(capsys, deployed, "--detect-drift")[0] == 0


def test_an_endpoint_modified_by_hand_is_blocked_with_the_way_to_repair_it(
    deployed, capsys, detection
) -> None:
    from moto.sagemaker.models import sagemaker_backends

    live = sagemaker_backends["123456789012"]["us-east-1"].endpoints[_endpoint()]
    live.endpoint_config_name = "hand-made-config"  # what UpdateEndpoint would do

    code, planned = plan(capsys, deployed, "--detect-drift")

    assert code == 1
    (change,) = planned["changes"]
    assert change["action"] == "blocked"
    assert (
        "Endpoint (AWS::SageMaker::Endpoint) was modified: EndpointConfigName is "
        in (change["reason"])
    )
    assert "hand-made-config, the template says" in change["reason"]
    assert change["reason"].endswith(
        "which an update does not revert: undo the change, or delete the stack for the next "
        "apply to create it again"
    )


def test_drift_detection_stops_after_its_bounded_polls_and_says_so(
    aws, workdir, example_config, capsys, calls, detection
) -> None:
    seed_account(example_config)
    config = small_config(example_config)
    config["pipelines"] += [example_config["pipelines"][1], example_config["pipelines"][3]]
    path = workdir / "mlops-config.json"
    path.write_text(json.dumps(config))
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    capsys.readouterr()
    detection.finishes = False
    calls.clear()

    code, planned = plan(capsys, path, "--detect-drift")

    stacks = 3
    assert code == 0
    assert calls["cloudformation.DetectStackDrift"] == stacks
    polls = calls["cloudformation.DescribeStackDriftDetectionStatus"]
    assert polls == stacks * drift_module.MAX_POLLS
    assert sum(calls[op] for op in DETECTION_CALLS) <= stacks * (2 + drift_module.MAX_POLLS)
    assert planned["summary"] == {"unchanged": stacks}
    loaded = config_module.load(path.read_bytes(), str(path))
    assert loaded.config is not None
    guards = reconcile.guards_for(loaded.config, False)
    again = reconcile.plan_for(loaded.config, Aws(), guards, detect_drift=True)
    assert {a.reason for a in again.actions} == {
        "up to date; drift not checked: drift detection did not finish in 12 polls; "
        "next run retries"
    }
    # Issue 19, item 6: every output format says so, not only `plan --all` as text.
    why = "drift detection did not finish in 12 polls; next run retries"
    assert planned["drift_not_checked"] == [
        {"name": name, "reason": why} for name in planned["unchanged"]
    ]
    for output in ("markdown", "text"):
        assert main(["plan", "--config", str(path), "--output", output, "--detect-drift"]) == 0
        shown = " ".join(capsys.readouterr().out.split())
        assert shown.count(f"drift not checked: {why}" if output == "text" else why) == stacks
        assert "Drift not checked on 3 stack(s)" in shown or output == "text"


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def _ci(monkeypatch, repo: git.Repo, tmp_path: Path, event: str) -> int:
    monkeypatch.setenv("MLOPS_EVENT", event)
    monkeypatch.setenv("MLOPS_BRANCH", "main")
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", repo.head.commit.hexsha)
    return main(["ci", "--repo", str(repo.working_dir), "--artifacts", str(tmp_path / event)])


def test_the_scheduled_run_detects_drift_and_repairs_a_deleted_endpoint(
    repo, tmp_path, monkeypatch, capsys, calls, detection
) -> None:
    assert _ci(monkeypatch, repo, tmp_path, "push") == 0
    assert not [op for op in calls if op in DETECTION_CALLS]  # pushes do not pay for it
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.delete_endpoint(EndpointName=_endpoint())
    capsys.readouterr()

    code = _ci(monkeypatch, repo, tmp_path, "schedule")

    assert code == 0, capsys.readouterr().out
    assert calls["cloudformation.DetectStackDrift"] == 1
    (change,) = json.loads((tmp_path / "schedule" / "plan.json").read_text())["changes"]
    assert change["action"] == "replace"
    assert change["reason"].startswith("drifted: Endpoint (AWS::SageMaker::Endpoint) was deleted")
    assert sagemaker.describe_endpoint(EndpointName=_endpoint())["EndpointStatus"] == "InService"
