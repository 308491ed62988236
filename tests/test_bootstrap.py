"""blueprints/bootstrap.yaml and buildspec.yml: lint-clean, complete, wired to `ci`, deployable."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import lint

from controller import __version__
from controller.cli.main import main
from controller.core import intrinsics, render
from controller.gitops import bootstrap, ci, wheel
from tests import iam
from tests.conftest import ROOT
from tests.test_stage_bootstrap import bootstrap_with

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
        "ControllerWheelKey",
        "ControllerWheelSha256",
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
    # A conditional variable is `!If [condition, variable, !Ref AWS::NoValue]`.
    variables = project["Environment"]["EnvironmentVariables"]
    names = {(v if isinstance(v, dict) else v[1])["Name"] for v in variables}
    assert {
        "CONTROLLER_WHEEL_KEY",
        "CONTROLLER_WHEEL_SHA256",
        "MLOPS_ASSETS_BUCKET",
        "MLOPS_NOTIFICATION_TOPIC_ARN",
    } <= names


def test_buildspec_runs_ci_and_publishes_the_plan_and_a_junit_report() -> None:
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    assert spec["version"] == 0.2
    install = spec["phases"]["install"]["commands"]
    assert [c.split()[0] for c in install] == ["aws", "echo", "pip"]
    assert "sha256sum --check --strict" in install[1]
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
    listed = role["Policies"][0]["PolicyDocument"]["Statement"]
    statements = {s["Sid"]: s for s in listed if isinstance(s, dict)}  # not the !If ones
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


# The controller the build runs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def built_wheel() -> wheel.Wheel:
    return wheel.this_controller()


def test_the_checkout_builds_the_same_wheel_twice(built_wheel: wheel.Wheel) -> None:
    again = wheel.this_controller()
    assert again.sha256 == built_wheel.sha256
    assert built_wheel.filename == f"mlops_controller-{__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(io.BytesIO(built_wheel.body)).namelist()
    assert "controller/gitops/wheel.py" in names
    assert "controller/blueprints/monitor.yaml.j2" in names
    assert "controller/core/create_only.json" in names


def test_an_installed_controller_rebuilds_the_same_code(
    built_wheel: wheel.Wheel, tmp_path: Path
) -> None:
    """Installed from a wheel, away from any checkout, the controller rebuilds a wheel with
    the same files and contents (only the archive's RECORD is written afresh)."""
    site = tmp_path / "site"
    source = tmp_path / built_wheel.filename
    source.write_bytes(built_wheel.body)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--target", str(site), str(source)], check=True)
    script = (
        "import sys; from controller.gitops import wheel; "
        "assert wheel.source_root() is None; w = wheel.this_controller(); "
        "open(sys.argv[1] + '/' + w.filename, 'wb').write(w.body)"
    )
    out = tmp_path / "rebuilt"
    out.mkdir()
    subprocess.run(
        [sys.executable, "-S", "-c", script, str(out)],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
    )

    def contents(data: bytes) -> dict[str, bytes]:
        archive = zipfile.ZipFile(io.BytesIO(data))
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/RECORD")}

    (rebuilt,) = out.iterdir()
    assert rebuilt.name == built_wheel.filename
    assert contents(rebuilt.read_bytes()) == contents(built_wheel.body)
    subprocess.run([*pip, "--target", str(tmp_path / "again"), str(rebuilt)], check=True)


def _verify(key: str, digest: str, body: bytes) -> int:
    """The buildspec's own check, run as CodeBuild runs it."""
    spec = yaml.safe_load((ROOT / "buildspec.yml").read_text())
    check = spec["phases"]["install"]["commands"][1]
    target = Path("/tmp") / Path(key).name
    target.write_bytes(body)
    try:
        env = {**os.environ, "CONTROLLER_WHEEL_KEY": key, "CONTROLLER_WHEEL_SHA256": digest}
        return subprocess.run(["bash", "-c", check], env=env, capture_output=True).returncode
    finally:
        target.unlink()


def test_the_build_installs_only_the_wheel_with_the_recorded_digest(
    built_wheel: wheel.Wheel,
) -> None:
    name = f"mlops_controller-0.0.0+{os.getpid()}-py3-none-any.whl"
    key = f"mlops-controller/wheels/{built_wheel.sha256}/{name}"
    assert _verify(key, built_wheel.sha256, built_wheel.body) == 0
    assert _verify(key, built_wheel.sha256, built_wheel.body + b"tampered") != 0
    assert _verify(key, "0" * 64, built_wheel.body) != 0


def test_bootstrap_publishes_the_controller_that_runs_it(
    aws: str, capsys: pytest.CaptureFixture[str], built_wheel: wheel.Wheel
) -> None:
    argv = ["bootstrap", "--stack-name", "mlops-controller", "--notification-email", "a@b.io"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stack = cfn.describe_stacks(StackName="mlops-controller")["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert parameters["ControllerWheelSha256"] == built_wheel.sha256
    assert parameters["ControllerWheelKey"] == built_wheel.key
    body = (
        boto3.client("s3", region_name="us-east-1")
        .get_object(Bucket=outputs["AssetsBucket"], Key=parameters["ControllerWheelKey"])["Body"]
        .read()
    )
    assert hashlib.sha256(body).hexdigest() == built_wheel.sha256
    assert f"The build installs s3://{outputs['AssetsBucket']}/{built_wheel.key}" in out
    assert main(argv) == 0
    assert "unchanged" in capsys.readouterr().out


def test_bootstrap_can_publish_a_given_wheel_into_an_existing_bucket(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], built_wheel: wheel.Wheel
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="existing-assets")
    path = tmp_path / built_wheel.filename
    path.write_bytes(built_wheel.body)
    argv = ["bootstrap", "--stack-name", "ctl", "--notification-email", "a@b.io"]
    argv += ["--wheel", str(path), "--parameter", "ExistingS3Bucket=existing-assets"]
    assert main(argv) == 0, capsys.readouterr()
    keys = [
        o["Key"]
        for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket="existing-assets"
        )["Contents"]
    ]
    assert keys == [built_wheel.key]
    assert main([*argv[:-3], str(tmp_path / "missing.txt")]) == 1
    assert "not a wheel" in capsys.readouterr().err


def test_what_holds_state_outlives_the_stack() -> None:
    """Deleting or replacing the bootstrap stack keeps the config history, the artifacts and
    ledger, the key that decrypts them, the images and the registered models."""
    for name in ("ControllerKey", "AssetsBucket", "ConfigRepository", "EcrRepository"):
        resource = RESOURCES[name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert RESOURCES["ModelPackageGroup"]["DeletionPolicy"] == "Retain"
    bucket = RESOURCES["AssetsBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]


# A config repository on a git host, through a CodeConnections connection (issue 22)

CONNECTION = "arn:aws:codeconnections:us-east-1:123456789012:connection/0b3d3a80-1e8e-11ef"
HOSTS = {
    "GitHub": ("GITHUB", "https://github.com", "github", {"GITHUB_MAINTAIN", "GITHUB_ADMIN"}),
    "GitLab": ("GITLAB", "https://gitlab.com", "gitlab", {"GITLAB_MAINTAINER", "GITLAB_OWNER"}),
    "Bitbucket": (
        "BITBUCKET",
        "https://bitbucket.org",
        "bitbucket",
        {"BITBUCKET_WRITE", "BITBUCKET_ADMIN"},
    ),
    "GitHubEnterprise": (
        "GITHUB_ENTERPRISE",
        "https://git.acme.example",
        "github-enterprise",
        {"GITHUB_MAINTAIN", "GITHUB_ADMIN"},
    ),
}


REQUIRED = {
    "NotificationEmail": "a@b.io",
    "ControllerWheelKey": f"mlops-controller/wheels/{'0' * 64}/c-1-py3-none-any.whl",
    "ControllerWheelSha256": "0" * 64,
}


def deployed(**parameters: str) -> dict[str, Any]:
    """The template's resources as CloudFormation would create them with these parameters."""
    template = intrinsics.load(bootstrap.template_text())
    context = intrinsics.Context(
        {**REQUIRED, **parameters},
        "mlops-controller",
        template=template,
    )
    return {
        name: context.resolve(resource.get("Properties", {}))
        for name, resource in template["Resources"].items()
        if context.exists(resource)
    }


@pytest.mark.parametrize("provider", HOSTS)
def test_a_git_hosts_repository_is_built_through_the_connection_on_its_webhook(
    provider: str,
) -> None:
    source_type, server, name, approvers = HOSTS[provider]
    resources = deployed(
        GitProvider=provider,
        ConnectionArn=CONNECTION,
        GitRepository="acme/mlops-config",
        GitServerUrl="https://git.acme.example",
    )
    project = resources["ControllerProject"]
    source = project["Source"]
    assert source["Type"] == source_type
    assert source["Location"] == f"{server}/acme/mlops-config.git"
    assert source["Auth"] == {"Type": "CODECONNECTIONS", "Resource": CONNECTION}
    assert source["GitCloneDepth"] == 0
    triggers = project["Triggers"]
    assert triggers["Webhook"] is True
    push, pulls = triggers["FilterGroups"]
    assert push == [
        {"Type": "EVENT", "Pattern": "PUSH"},
        {"Type": "HEAD_REF", "Pattern": "^refs/heads/main$"},
    ]
    assert pulls == [
        {
            "Type": "EVENT",
            "Pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED",
        },
        {"Type": "BASE_REF", "Pattern": "^refs/heads/main$"},
    ]
    policy = triggers["PullRequestBuildPolicy"]
    assert policy["RequiresCommentApproval"] == "FORK_PULL_REQUESTS"
    assert set(policy["ApproverRoles"]) == approvers
    variables = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert variables["MLOPS_GIT_PROVIDER"] == name
    assert variables["MLOPS_GIT_REPOSITORY"] == "acme/mlops-config"
    assert "MLOPS_GIT_TOKEN_SECRET" not in variables
    # No CodeCommit repository and no CodeCommit rules; the hourly converge run stays.
    assert "ConfigRepository" not in resources
    assert "PushRule" not in resources and "PullRequestRule" not in resources
    assert "ConvergeRule" in resources


def test_the_project_settings_are_valid_for_codebuilds_api() -> None:
    """The webhook's filters and the fork policy as CodeBuild's API takes them (botocore's
    shapes), since the provider schema leaves a FilterGroup untyped."""
    model = boto3.session.Session().client("codebuild", region_name="us-east-1").meta
    shapes = model.service_model
    project = deployed(GitProvider="GitHub", ConnectionArn=CONNECTION, GitRepository="a/b")[
        "ControllerProject"
    ]
    filter_types = set(shapes.shape_for("WebhookFilterType").enum)
    for group in project["Triggers"]["FilterGroups"]:
        assert {f["Type"] for f in group} <= filter_types
    events = {"PUSH", "PULL_REQUEST_CREATED", "PULL_REQUEST_UPDATED", "PULL_REQUEST_REOPENED"}
    patterns = [f["Pattern"] for g in project["Triggers"]["FilterGroups"] for f in g]
    assert {e.strip() for p in patterns if "^" not in p for e in p.split(",")} == events
    policy = project["Triggers"]["PullRequestBuildPolicy"]
    approval = shapes.shape_for("PullRequestBuildCommentApproval").enum
    assert policy["RequiresCommentApproval"] in approval
    assert set(policy["ApproverRoles"]) <= set(
        shapes.shape_for("PullRequestBuildApproverRole").enum
    )
    assert project["Source"]["Type"] in shapes.shape_for("SourceType").enum
    assert project["Source"]["Auth"]["Type"] in shapes.shape_for("SourceAuthType").enum


def test_codecommit_is_built_as_before() -> None:
    resources = deployed()
    project = resources["ControllerProject"]
    assert project["Source"]["Type"] == "CODECOMMIT"
    assert "Auth" not in project["Source"] and "Triggers" not in project
    assert project["Source"]["Location"].endswith("/v1/repos/mlops-config")
    names = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert not {n for n in names if n.startswith("MLOPS_GIT_")}
    assert {"ConfigRepository", "PushRule", "PullRequestRule", "ConvergeRule"} <= set(resources)


def test_a_token_secret_is_handed_to_the_build_by_name() -> None:
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlops/token-AbC123"
    project = deployed(
        GitProvider="GitLab",
        ConnectionArn=CONNECTION,
        GitRepository="acme/sub/mlops-config",
        GitTokenSecretArn=secret,
    )["ControllerProject"]
    variables = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert variables["MLOPS_GIT_TOKEN_SECRET"] == secret
    assert not any("TOKEN" in n and n != "MLOPS_GIT_TOKEN_SECRET" for n in variables)


def test_a_git_host_without_its_connection_or_repository_is_refused_at_deploy_time() -> None:
    rules = intrinsics.load(bootstrap.template_text())["Rules"]
    asserted = json.dumps(rules["ConnectionNeedsItsRepository"]["Assertions"])
    assert "ConnectionArn" in asserted and "GitRepository" in asserted
    assert "GitServerUrl" in json.dumps(rules["EnterpriseNeedsItsServer"])


def test_bootstrap_deploys_a_git_host_setup_on_the_emulator(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bootstrap", "--stack-name", "mlops-controller", "--notification-email", "a@b.io"]
    for pair in (
        "GitProvider=GitHub",
        f"ConnectionArn={CONNECTION}",
        "GitRepository=acme/mlops-config",
    ):
        argv += ["--parameter", pair]

    code = main(argv)

    out = capsys.readouterr().out
    assert code == 0, out
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stack = cfn.describe_stacks(StackName="mlops-controller")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    assert outputs["ConfigRepositoryName"] == "acme/mlops-config"
    assert "PushRuleArn" not in outputs and "ConfigRepositoryCloneUrlHttp" not in outputs


# Issue 18 item 13: names and conditions a real account checks

LONGEST_STACK_NAME = "m" + "-controller" * 11 + "x" * 6
"""CloudFormation's longest stack name, 128 characters."""


def test_a_stack_name_of_any_length_gives_a_model_group_sagemaker_accepts(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """SageMaker refuses a group name over 63 characters, so `<stack>-models` failed the
    bootstrap for a stack name over 56; the name stays `<stack>-models` when it fits."""
    assert len(LONGEST_STACK_NAME) == 128
    argv = ["bootstrap", "--stack-name", LONGEST_STACK_NAME, "--notification-email", "a@b.io"]

    code = main([*argv, "--parameter", "UseModelRegistry=Yes"])

    assert code == 0, capsys.readouterr().out
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    (stack,) = cfn.describe_stacks(StackName=LONGEST_STACK_NAME)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    group = outputs["ModelPackageGroupArn"].rsplit("/", 1)[1]
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", group), group
    assert group.startswith("m-controller-controller")
    other = render.model_group_name(LONGEST_STACK_NAME[:-1] + "y")
    assert other != group and len(other) <= 63
    assert render.model_group_name("mlops-controller") == "mlops-controller-models"


def test_sns_may_use_the_key_only_for_this_accounts_topics() -> None:
    """The key's statement for the SNS service principal holds for a topic of this account,
    not for SNS acting for another account's topic (the confused deputy)."""
    statements = bootstrap_with([])["ControllerKey"]["Properties"]["KeyPolicy"]["Statement"]
    (sns,) = [s for s in statements if s.get("Principal", {}).get("Service") == "sns.amazonaws.com"]
    policy = iam.Policy.of([sns])

    def for_topic(arn: str) -> dict[str, str]:
        return {"aws:SourceArn": arn, "aws:SourceAccount": arn.split(":")[4]}

    own = "arn:aws:sns:us-east-1:123456789012:mlops-controller-NotificationTopic-1A2B"
    foreign = "arn:aws:sns:us-east-1:444444444444:someone-elses-topic"
    assert policy.allows("kms:GenerateDataKey", "*", for_topic(own))
    assert not policy.allows("kms:GenerateDataKey", "*", for_topic(foreign))
    assert not policy.allows("kms:Decrypt", "*", {})
