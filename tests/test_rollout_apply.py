"""Guarded endpoint updates on the emulator: a config with every rollout key applies, a
change of deployment settings goes out in place, and an update that a rollback alarm stops
is a failure that names the alarm in the output, the ledger and the notification (exit 1).
moto neither watches alarms nor rolls back: `emulated_faults.roll_back_updates` does what
SageMaker and CloudFormation do."""

from __future__ import annotations

import json
from typing import Any

import boto3
import git
import pytest

from controller.aws import demo_world
from controller.aws.session import Aws
from controller.cli.main import main
from tests import test_notify
from tests.conftest import commit_config
from tests.emulated_faults import roll_back_updates
from tests.gitops import seed_account
from tests.test_render import ALARMS, rollout_document

CANARY = "mlops-pipeline-ro-canary-byompipelinerealtimebuiltin"

inbox = test_notify.inbox
"""An SQS queue subscribed to the notification topic (the fixture of test_notify)."""


def _config(**canary: Any) -> dict[str, Any]:
    """The rollout document: every option once; `canary` changes the canary pipeline."""
    data = rollout_document()
    data["pipelines"][0].update(canary)
    return data


def _alarms() -> None:
    aws = Aws(region="us-east-1")
    for name in ALARMS:
        demo_world.alarm(aws, name)


@pytest.fixture
def repo(aws: str, config_repo: git.Repo) -> git.Repo:
    data = _config()
    seed_account(data)
    commit_config(config_repo, data, "Every rollout option")
    _alarms()
    return config_repo


def _apply(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> tuple[int, dict[str, Any]]:
    code = main(["apply", "--auto-approve", "--repo", str(repo.working_dir), "--output", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}


def _plan(capsys: pytest.CaptureFixture[str], repo: git.Repo) -> dict[str, Any]:
    main(["plan", "--repo", str(repo.working_dir), "--output", "json"])
    out = capsys.readouterr().out
    return {c["name"]: c for c in json.loads(out[out.index("{\n") :])["changes"]}


def _outputs() -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    (stack,) = cfn.describe_stacks(StackName=CANARY)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_every_rollout_option_applies_and_a_deployment_change_goes_out_in_place(
    repo, capsys
) -> None:
    code, results = _apply(capsys, repo)
    assert code == 0, results
    assert {r["outcome"] for r in results.values()} == {"succeeded"}
    before = _outputs()

    deployment = {"strategy": "linear", "linear_step_percent": 20, "rollback_alarms": ALARMS}
    commit_config(repo, _config(deployment=deployment), "Shift linearly")
    planned = _plan(capsys, repo)[CANARY]
    assert planned["action"] == "update"
    assert planned["endpoint_rollout"] == "in place, deployment settings only (no new fleet)"
    assert not any(r["type"] == "AWS::SageMaker::Endpoint" for r in planned["replacements"])
    code, results = _apply(capsys, repo)
    assert code == 0 and results[CANARY]["outcome"] == "succeeded"
    after = _outputs()
    assert after["EndpointName"] == before["EndpointName"]
    assert after["EndpointConfigName"] == before["EndpointConfigName"]


def test_an_update_rolled_back_by_an_alarm_fails_and_names_the_alarm(
    repo,
    inbox,
    capsys,
    monkeypatch,
) -> None:
    assert _apply(capsys, repo)[0] == 0
    test_notify.received(inbox)
    commit_config(
        repo,
        _config(model_artifact_location="linearlearner/model.tar.gz", instance_count=3),
        "A new fleet for the canary",
    )
    planned = _plan(capsys, repo)[CANARY]
    assert planned["endpoint_rollout"] == (
        "in place, canary 10 % then the rest after 10 min, rolls back on 2 alarms"
    )
    roll_back_updates(monkeypatch, "ro-canary", "churn-5xx")

    code, results = _apply(capsys, repo)

    assert code == 1
    failed = results[CANARY]
    assert failed["outcome"] == "failed"
    assert "rolled back by alarm churn-5xx (UPDATE_ROLLBACK_COMPLETE" in failed["message"]
    main(["history", "--repo", str(repo.working_dir), "--output", "json"])
    newest = json.loads(capsys.readouterr().out)["applies"][0]
    (record,) = [s for s in newest["stacks"] if s["stack_name"] == CANARY]
    assert record["outcome"] == "failed" and "alarm churn-5xx" in record["message"]
    (message,) = test_notify.received(inbox)
    assert "apply failed" in message["Subject"]
    assert "rolled back by alarm churn-5xx" in message["Message"]


def test_an_update_whose_alarms_stayed_quiet_is_not_blamed_on_them(
    repo, capsys, monkeypatch
) -> None:
    """A failed update with rollback alarms that never fired keeps CloudFormation's reason."""
    assert _apply(capsys, repo)[0] == 0
    commit_config(repo, _config(instance_count=3), "More instances")
    from tests.emulated_faults import stick_updates

    stick_updates(monkeypatch, "ro-canary", "Endpoint update failed: capacity")
    code, results = _apply(capsys, repo)
    assert code == 1
    assert "rolled back by alarm" not in results[CANARY]["message"]
    assert "Endpoint update failed: capacity" in results[CANARY]["message"]


def test_a_new_instance_type_on_an_autoscaled_variant_pauses_its_autoscaling_first(
    repo, capsys, monkeypatch
) -> None:
    """SageMaker refuses a new instance type while the variant is registered: the applier
    updates the stack without the scalable target first, then to the new config."""
    from tests.aws_calls import count_calls

    assert _apply(capsys, repo)[0] == 0
    commit_config(repo, _config(inference_instance="ml.c5.xlarge"), "Compute-optimised")
    planned = _plan(capsys, repo)[CANARY]
    assert planned["endpoint_rollout"].startswith(
        "autoscaling paused for the new instance type, then in place, canary 10 %"
    )
    templates: list[str] = []
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    made = count_calls(monkeypatch)
    from moto.cloudformation.models import Stack as FakeStack

    original = FakeStack.update

    def update(self: Any, template: str, *args: Any, **kwargs: Any) -> None:
        if self.name == CANARY:
            templates.append(template)
        original(self, template, *args, **kwargs)

    monkeypatch.setattr(FakeStack, "update", update)
    code, results = _apply(capsys, repo)
    assert code == 0 and results[CANARY]["outcome"] == "succeeded"
    assert made["cloudformation.UpdateStack"] == 2
    assert ["ScalableTarget:" in t for t in templates] == [False, True]
    (stack,) = cfn.describe_stacks(StackName=CANARY)["Stacks"]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert values["InferenceInstance"] == "ml.c5.xlarge"
    assert _plan(capsys, repo) == {}
