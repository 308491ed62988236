"""`mlops-controller adopt`: the render recipe of docs/blueprints.md, then taking the stack
over explicitly.

moto refuses an UpdateStack that changes only tags ("No updates are to be performed");
CloudFormation applies it, so the benchmark's fidelity fix for that is applied here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import git
import pytest

from bench import emulated
from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.core.stacks import OWNER_TAG, PIPELINE_TAG, TYPE_TAG
from tests.aws_calls import count_calls, stack_writes

REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"


@pytest.fixture
def account(aws: str, example_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto.cloudformation.responses import CloudFormationResponse

    for owner, name, value in emulated.patches():
        if owner is CloudFormationResponse:
            monkeypatch.setattr(owner, name, value)
    seed(
        aws_module.Aws(region="us-east-1"),
        example_config["settings"]["assets_bucket"],
        example_config,
    )
    return boto3.client("cloudformation", region_name="us-east-1")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create_from_render(
    cfn: Any, repo: git.Repo, tmp_path: Path, capsys: Any, **tags: str
) -> dict[str, str]:
    """docs/blueprints.md's recipe: `render`, then CloudFormation's create-stack with its files."""
    out = tmp_path / "out"
    config = str(Path(repo.working_dir) / "mlops-config.json")
    assert run(capsys, "render", config, "--out", str(out))[0] == 0
    parameters = json.loads((out / f"{REALTIME}.parameters.json").read_text())
    cfn.create_stack(
        StackName=REALTIME,
        TemplateBody=(out / f"{REALTIME}.yaml").read_text(),
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": k, "Value": v} for k, v in {"team": "ml", **tags}.items()],
    )
    return {p["ParameterKey"]: p["ParameterValue"] for p in parameters}


def tags_of(cfn: Any) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=REALTIME)["Stacks"][0]
    return {t["Key"]: t["Value"] for t in stack["Tags"]}


def plan_of(capsys: Any, repo: git.Repo) -> dict[str, dict[str, Any]]:
    _, out, _ = run(capsys, "plan", "--repo", repo.working_dir, "-o", "json")
    payload = json.loads(out)
    changes = {c["name"]: c for c in payload["changes"]}
    return {**changes, **{n: {"action": "unchanged"} for n in payload["unchanged"]}}


def test_a_stack_made_from_render_output_is_adopted_and_then_unchanged(
    account: Any, config_repo: git.Repo, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    create_from_render(account, config_repo, tmp_path, capsys)
    before = plan_of(capsys, config_repo)[REALTIME]
    assert before["action"] == "blocked"
    assert f"`mlops-controller adopt {REALTIME}` takes it over explicitly" in before["reason"]
    calls = count_calls(monkeypatch)

    code, out, err = run(
        capsys,
        "adopt",
        "linearlearner-endpoint",
        "--repo",
        config_repo.working_dir,
        "--auto-approve",
    )
    assert code == 1 and "no pipeline of" in err, "an endpoint name is not a pipeline name"
    code, out, err = run(
        capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve"
    )

    assert code == 0, out + err
    assert "the template and every parameter stay as they are" in out
    assert f"+ {OWNER_TAG} = mlops-controller" in out
    assert "Then `plan` shows nothing: the stack is what the config renders." in out
    assert stack_writes(calls) == {"cloudformation.UpdateStack": 1}
    tags = tags_of(account)
    assert tags[OWNER_TAG] == "mlops-controller"
    assert tags[TYPE_TAG] == "byom_realtime_builtin"
    assert tags[PIPELINE_TAG] == "linearlearner"
    assert tags["team"] == "ml", "tags of others are kept"
    assert plan_of(capsys, config_repo)[REALTIME]["action"] == "unchanged"
    again = run(capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve")
    assert again[0] == 0 and "managed by this controller already" in again[1]


def test_adopting_a_stack_that_differs_from_the_config_shows_the_coming_update(
    account: Any,
    config_repo: git.Repo,
    example_config: dict[str, Any],
    tmp_path: Path,
    capsys: Any,
) -> None:
    create_from_render(account, config_repo, tmp_path, capsys)
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    Path(config_repo.working_dir, "mlops-config.json").write_text(json.dumps(example_config))

    code, out, err = run(
        capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve"
    )

    assert code == 0, out + err
    assert "Then `plan` shows an update of InferenceInstance." in out
    assert tags_of(account)[OWNER_TAG] == "mlops-controller"
    planned = plan_of(capsys, config_repo)[REALTIME]
    assert planned["action"] == "update"
    assert planned["reason"] == "changed: InferenceInstance"


def test_a_stack_of_another_controller_is_adopted_only_when_forced(
    account: Any, config_repo: git.Repo, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    create_from_render(account, config_repo, tmp_path, capsys, **{OWNER_TAG: "other"})
    calls = count_calls(monkeypatch)

    refused = run(capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve")
    assert refused[0] == 1
    assert f"error: {REALTIME} is managed by 'other'" in refused[2]
    assert "pass --force if that is intended" in refused[2]
    assert not stack_writes(calls)

    forced = run(
        capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve", "--force"
    )
    assert forced[0] == 0, forced
    assert f"~ {OWNER_TAG} = mlops-controller (was other)" in forced[1]
    assert tags_of(account)[OWNER_TAG] == "mlops-controller"


def test_adopt_never_writes_without_approval_or_a_stack(
    account: Any, config_repo: git.Repo, capsys: Any, monkeypatch: Any
) -> None:
    calls = count_calls(monkeypatch)

    unapproved = run(capsys, "adopt", REALTIME, "--repo", config_repo.working_dir)
    missing = run(capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve")

    assert unapproved[0] == 1 and "pass --auto-approve" in unapproved[2]
    assert missing[0] == 1
    assert f"no stack named {REALTIME} in us-east-1: nothing to adopt" in missing[2]
    assert not stack_writes(calls)


def _with_extra_topic(cfn: Any, repo: git.Repo, tmp_path: Path, capsys: Any) -> None:
    """A stack of the right name whose template also holds an SNS topic (the original
    orchestrator's stacks hold resources the blueprints lack), with a spec hash not ours."""
    out = tmp_path / "out"
    config = str(Path(repo.working_dir) / "mlops-config.json")
    assert run(capsys, "render", config, "--out", str(out))[0] == 0
    parameters = json.loads((out / f"{REALTIME}.parameters.json").read_text())
    for parameter in parameters:
        if parameter["ParameterKey"] == "SpecHash":
            parameter["ParameterValue"] = "0" * 64
    body = (out / f"{REALTIME}.yaml").read_text()
    body = body.replace(
        "Resources:\n", "Resources:\n  AlertsTopic:\n    Type: AWS::SNS::Topic\n", 1
    )
    cfn.create_stack(
        StackName=REALTIME,
        TemplateBody=body,
        Parameters=parameters,
        Capabilities=["CAPABILITY_IAM"],
    )


def test_adopt_shows_the_resources_the_first_apply_deletes_and_refuses_without_force(
    account: Any, config_repo: git.Repo, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    """Issue 19, item 1: `adopt` said the template stays as it is, `plan` showed parameters
    only, and `apply` deleted the topic the blueprint lacks, unannounced."""
    _with_extra_topic(account, config_repo, tmp_path, capsys)
    calls = count_calls(monkeypatch)

    refused = run(capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve")

    assert refused[0] == 1, refused
    assert "the first apply after adopting" in refused[2]
    assert "AlertsTopic (AWS::SNS::Topic)" in refused[2]
    assert "pass --force if that is intended" in refused[2]
    assert not stack_writes(calls)

    forced = run(
        capsys, "adopt", REALTIME, "--repo", config_repo.working_dir, "--auto-approve", "--force"
    )
    assert forced[0] == 0, forced
    assert "- AlertsTopic (AWS::SNS::Topic) is deleted" in forced[1]
    calls.clear()

    planned = plan_of(capsys, config_repo)[REALTIME]

    assert planned["action"] == "update"
    assert planned["resources"]["removed"] == [
        {"resource": "AlertsTopic", "type": "AWS::SNS::Topic"}
    ]
    assert calls["cloudformation.GetTemplate"] == 1, "only the stack whose template differs"
    out = run(capsys, "plan", "--repo", config_repo.working_dir)[1]
    assert "- AlertsTopic (AWS::SNS::Topic) is deleted: the new template lacks it" in out
    out = run(capsys, "plan", "--repo", config_repo.working_dir, "-o", "markdown")[1]
    assert "AlertsTopic (AWS::SNS::Topic) is deleted" in out


def test_a_no_op_plan_and_a_parameter_change_read_no_template(
    account: Any,
    config_repo: git.Repo,
    example_config: dict[str, Any],
    capsys: Any,
    monkeypatch: Any,
) -> None:
    """The template of a stack this controller rendered is known offline: reading deployed
    templates costs nothing on a no-op plan, nor on an update of values."""
    assert run(capsys, "apply", "--auto-approve", "--repo", config_repo.working_dir)[0] == 0
    calls = count_calls(monkeypatch)
    assert run(capsys, "plan", "--repo", config_repo.working_dir)[0] == 0
    example_config["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    Path(config_repo.working_dir, "mlops-config.json").write_text(json.dumps(example_config))
    assert run(capsys, "plan", "--repo", config_repo.working_dir)[0] == 2

    assert calls["cloudformation.GetTemplate"] == 0
