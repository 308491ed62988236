"""blueprints/bootstrap.yaml and buildspec.yml: lint-clean, complete, wired to `ci`, deployable."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import lint

from controller.cli.main import main
from controller.gitops import bootstrap, ci
from tests.conftest import ROOT

TEMPLATE = bootstrap.template()
RESOURCES = TEMPLATE["Resources"]


def of_type(resource_type: str) -> dict[str, Any]:
    found = [r for r in RESOURCES.values() if r["Type"] == resource_type]
    assert found, f"no {resource_type}"
    return found[0]


def test_template_is_clean_under_cfn_lint() -> None:
    matches = lint(bootstrap.template_text(), regions=["us-east-1"])
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_template_has_every_part_of_the_gitops_setup() -> None:
    types = {r["Type"] for r in RESOURCES.values()}
    assert types >= {
        "AWS::CodeCommit::Repository",
        "AWS::CodeBuild::Project",
        "AWS::Events::Rule",
        "AWS::IAM::Role",
        "AWS::SNS::Topic",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::KMS::Key",
        "AWS::ECR::Repository",
        "AWS::SageMaker::ModelPackageGroup",
    }
    assert set(TEMPLATE["Parameters"]) >= {
        "NotificationEmail",
        "ExistingS3Bucket",
        "ExistingECRRepo",
        "UseModelRegistry",
        "ConfigRepositoryName",
        "DeploymentBranch",
        "ControllerSource",
    }
    assert len(TEMPLATE["Outputs"]) >= 12


def test_bucket_is_versioned_encrypted_private_and_tls_only() -> None:
    bucket = of_type("AWS::S3::Bucket")["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    statement = of_type("AWS::S3::BucketPolicy")["Properties"]["PolicyDocument"]["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert "KmsMasterKeyId" in of_type("AWS::SNS::Topic")["Properties"]


def test_build_project_clones_fully_runs_one_at_a_time_and_uses_the_buildspec() -> None:
    project = of_type("AWS::CodeBuild::Project")["Properties"]
    assert project["Source"]["GitCloneDepth"] == 0
    assert project["ConcurrentBuildLimit"] == 1
    assert yaml.safe_load(project["Source"]["BuildSpec"]) == yaml.safe_load(
        (ROOT / "buildspec.yml").read_text()
    )
    names = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert {"CONTROLLER_SOURCE", "MLOPS_ASSETS_BUCKET", "MLOPS_NOTIFICATION_TOPIC_ARN"} <= names


def test_buildspec_runs_ci_and_publishes_the_plan_and_a_junit_report() -> None:
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    assert spec["version"] == 0.2
    assert any("pip install" in c for c in spec["phases"]["install"]["commands"])
    assert spec["phases"]["build"]["commands"] == [
        "mlops-controller ci --artifacts mlops-artifacts"
    ]
    assert spec["artifacts"]["base-directory"] == "mlops-artifacts"
    (report,) = spec["reports"].values()
    assert report["file-format"] == "JUNITXML"
    assert report["files"] == ["report.xml"]


def transform(target: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge's input transformer does with the rule's paths and template."""
    transformer = target["InputTransformer"]
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for part in re.findall(r"\w+|\[\d+\]", path.removeprefix("$.")):
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        values[name] = value
    template = transformer["InputTemplate"]
    text = re.sub(r"<(\w+)>", lambda m: json.dumps(values[m.group(1)]), template)
    start: dict[str, Any] = json.loads(text)
    return start


def build_environment(start: dict[str, Any]) -> dict[str, str]:
    """The variables the build sees: overrides, and the commit CodeBuild resolved."""
    env = {v["name"]: v["value"] for v in start["environmentVariablesOverride"]}
    return {**env, "CODEBUILD_RESOLVED_SOURCE_VERSION": start["sourceVersion"]}


def rule(description_start: str) -> dict[str, Any]:
    return next(
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"]["Description"].startswith(description_start)
    )


def test_a_push_event_becomes_a_push_context() -> None:
    push = rule("A push")
    assert push["EventPattern"]["detail-type"] == ["CodeCommit Repository State Change"]
    assert push["EventPattern"]["detail"]["referenceType"] == ["branch"]
    event = {
        "detail": {
            "event": "referenceUpdated",
            "referenceType": "branch",
            "referenceName": "main",
            "commitId": "a" * 40,
            "oldCommitId": "b" * 40,
        }
    }
    context = ci.context_from(build_environment(transform(push["Targets"][0], event)))
    assert (context.event, context.commit, context.branch) == (ci.Event.PUSH, "a" * 40, "main")


def test_a_pull_request_event_becomes_a_pull_request_context() -> None:
    pull = rule("A pull request")
    assert pull["EventPattern"]["detail"]["event"] == [
        "pullRequestCreated",
        "pullRequestSourceBranchUpdated",
    ]
    event = {
        "detail": {
            "event": "pullRequestSourceBranchUpdated",
            "pullRequestId": "42",
            "repositoryNames": ["mlops-config"],
            "sourceCommit": "c" * 40,
            "destinationCommit": "d" * 40,
        }
    }
    context = ci.context_from(build_environment(transform(pull["Targets"][0], event)))
    assert context.event is ci.Event.PULL_REQUEST
    assert (context.pull_request_id, context.repository) == ("42", "mlops-config")
    assert (context.commit, context.destination_commit) == ("c" * 40, "d" * 40)


def test_an_hourly_run_converges_the_deployment_branch() -> None:
    schedule = rule("Hourly")
    assert schedule["ScheduleExpression"] == "rate(1 hour)"
    text = schedule["Targets"][0]["Input"].replace("${DeploymentBranch}", "main")
    start = json.loads(text)
    assert start["sourceVersion"] == "refs/heads/main"
    env = build_environment({**start, "sourceVersion": "e" * 40})
    assert ci.context_from(env).event is ci.Event.SCHEDULE


def test_build_role_may_only_touch_the_controllers_stacks() -> None:
    role = RESOURCES["ControllerBuildRole"]["Properties"]
    statements = {s["Sid"]: s for s in role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["ManagedStacks"]["Resource"].endswith(":stack/${StackPrefix}-*/*")
    assert {
        "codecommit:GetCommentsForPullRequest",
        "codecommit:PostCommentForPullRequest",
        "codecommit:UpdateComment",
    } <= set(statements["ConfigRepository"]["Action"])
    assert statements["Notify"]["Action"] == "sns:Publish"
    assert all(s["Resource"] != "*" or s["Sid"] == "DiscoverStacks" for s in statements.values())
    events = RESOURCES["EventsRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in events] == ["codebuild:StartBuild"]


def test_bootstrap_command_deploys_the_stack_on_the_emulator_and_reruns_unchanged(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bootstrap", "--stack-name", "mlops-controller", "--notification-email", "a@b.io"]

    code = main([*argv, "--parameter", "UseModelRegistry=Yes"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "Stack mlops-controller created (CREATE_COMPLETE)" in out
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stack = cfn.describe_stacks(StackName="mlops-controller")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    topics = boto3.client("sns", region_name="us-east-1").list_topics()["Topics"]
    assert len(topics) == 1
    assert main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


def test_bootstrap_rejects_a_parameter_the_template_does_not_have(capsys) -> None:
    code = main(
        [
            "bootstrap",
            "--stack-name",
            "s",
            "--notification-email",
            "a@b.io",
            "--parameter",
            "Bucket=x",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: --parameter Bucket: the template has no such parameter")
    assert "ExistingS3Bucket" in err
