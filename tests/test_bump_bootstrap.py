"""The bootstrap's loop from a registry approval to a pull request: the rule matches only an
approval, starts only the bump build, whose role may do what `bump` calls and no more."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from controller.aws import calls
from controller.cli.main import build_parser
from controller.core import intrinsics as cfn
from controller.gitops import bootstrap
from tests import iam
from tests.test_permissions import (
    CONNECTION,
    CONTROLLER_STACK,
    ON_GITHUB,
    TOKEN_SECRET,
    bootstrap_attribute,
    fill,
)

TEMPLATE = cfn.load(bootstrap.template_text())
RESOURCES = TEMPLATE["Resources"]
REPOSITORY = "arn:aws:codecommit:{region}:{account}:{repository}"


SETUPS = {
    "codecommit": {},
    "codecommit-with-a-secret": {"GitTokenSecretArn": TOKEN_SECRET},
    "github": ON_GITHUB,
    "github-without-secret": {**ON_GITHUB, "GitTokenSecretArn": ""},
    "gitlab": {**ON_GITHUB, "GitProvider": "GitLab"},
    "bitbucket": {**ON_GITHUB, "GitProvider": "Bitbucket"},
    "github-enterprise": {
        **ON_GITHUB,
        "GitProvider": "GitHubEnterprise",
        "GitServerUrl": "https://git.example.com",
    },
}
"""Bootstrap parameters of each way the config repository can be reached."""


def context(**overrides: str) -> cfn.Context:
    parameters = {
        "ConfigRepositoryName": "mlops-config",
        "ExistingS3Bucket": "",
        "DeploymentBranch": "main",
        "GitProvider": "CodeCommit",
        "ConnectionArn": "",
        "GitRepository": "",
        "GitServerUrl": "",
        "GitTokenSecretArn": "",
        "ControllerWheelKey": "mlops-controller/wheels/0123abcd/c-1-py3-none-any.whl",
        "ControllerWheelSha256": "0" * 64,
        **overrides,
    }
    return cfn.Context(parameters, CONTROLLER_STACK, bootstrap_attribute, TEMPLATE)


def role(logical_id: str, **overrides: str) -> iam.Policy:
    context_ = context(**overrides)
    statements: list[Mapping[str, Any]] = []
    for policy in RESOURCES[logical_id]["Properties"]["Policies"]:
        statements += context_.resolve(policy["PolicyDocument"])["Statement"]
    return iam.Policy.of(statements)


def state_change(status: str) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event as EventBridge delivers it."""
    return {
        "id": "7e5c0c2b-0000-0000-0000-000000000000",
        "version": "0",
        "account": "123456789012",
        "time": "2026-12-02T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/2"],
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": "churn",
            "ModelPackageVersion": 2,
            "ModelApprovalStatus": status,
        },
    }


def test_only_an_approval_starts_the_bump_build() -> None:
    """The emulator's EventBridge matching (moto has no TestEventPattern call)."""
    from moto.events.models import EventPattern

    rule = RESOURCES["ModelApprovedRule"]["Properties"]
    pattern = EventPattern.load(json.dumps(rule["EventPattern"]))
    verdicts = {
        status: pattern.matches_event(state_change(status))  # type: ignore[arg-type]
        for status in ("Approved", "PendingManualApproval", "Rejected")
    }
    assert verdicts == {"Approved": True, "PendingManualApproval": False, "Rejected": False}
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::Sub"].endswith(":project/${AWS::StackName}-bump")
    starts = role("BumpEventsRole")
    bump_project = f"arn:aws:codebuild:us-east-1:123456789012:project/{CONTROLLER_STACK}-bump"
    assert starts.allows("codebuild:StartBuild", bump_project)
    assert not starts.allows("codebuild:StartBuild", bump_project.replace("-bump", "-controller"))


def applies(call: calls.ApiCall, setup: str) -> bool:
    """Whether `bump`'s build makes this call in this setup."""
    on_codecommit = setup.startswith("codecommit")
    return {
        "": True,
        "codecommit": on_codecommit,
        "connection": not on_codecommit,
        "token secret": not on_codecommit and setup != "github-without-secret",
    }[call.when]


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize(
    "call", calls.BUMP_CALLS, ids=[f"{c.action}:{c.when or 'any'}" for c in calls.BUMP_CALLS]
)
def test_the_bump_role_allows_every_call_of_bump_in_its_setup_and_no_other(
    call: calls.ApiCall, setup: str
) -> None:
    """Least privilege per setup: a git host's bump touches no CodeCommit repository, a
    CodeCommit one uses no connection and reads no secret."""
    policy = role("BumpBuildRole", **SETUPS[setup])
    request = {"codecommit:References": ["refs/heads/mlops-bump/churn-v2-1a2b3c4d"]}
    allowed = policy.allows(call.action, fill(call.resource), request)
    assert allowed is applies(call, setup), f"{setup}: {call.action} on {fill(call.resource)}"


def test_on_a_git_host_the_bump_role_reads_only_its_token_and_uses_only_its_connection() -> None:
    policy = role("BumpBuildRole", **ON_GITHUB)
    other_secret = TOKEN_SECRET.replace("github-token", "db-password")
    assert not policy.allows("secretsmanager:GetSecretValue", other_secret)
    other_connection = CONNECTION.replace("0b3d3a80", "deadbeef")
    assert not policy.allows("codeconnections:UseConnection", other_connection)
    assert not policy.allows("codecommit:GitPush", fill(calls.PULL_REQUESTS))


@pytest.mark.parametrize("setup", list(SETUPS))
def test_the_bump_build_takes_its_source_as_the_controller_build_does(setup: str) -> None:
    """The same repository, reached the same way (CodeCommit, or the connection), and the
    provider `ci` would give feedback on: bump's pull request opens where `ci` comments."""
    resolved = context(**SETUPS[setup])
    bump_source = resolved.resolve(RESOURCES["BumpProject"]["Properties"]["Source"])
    ci_source = resolved.resolve(RESOURCES["ControllerProject"]["Properties"]["Source"])
    assert {k: v for k, v in bump_source.items() if k != "BuildSpec"} == {
        k: v for k, v in ci_source.items() if k != "BuildSpec"
    }

    def variables(logical_id: str) -> dict[str, str]:
        environment = RESOURCES[logical_id]["Properties"]["Environment"]
        found = resolved.resolve(environment["EnvironmentVariables"])
        return {v["Name"]: v["Value"] for v in found}

    bump_env, ci_env = variables("BumpProject"), variables("ControllerProject")
    assert bump_env.get("MLOPS_GIT_PROVIDER") == ci_env.get("MLOPS_GIT_PROVIDER")
    repository = SETUPS[setup].get("GitRepository", "mlops-config")
    assert bump_env["MLOPS_CONFIG_REPOSITORY"] == repository
    if setup.startswith("codecommit"):
        assert "MLOPS_GIT_TOKEN_SECRET" not in bump_env
    else:
        assert bump_env.get("MLOPS_GIT_TOKEN_SECRET") == ci_env.get("MLOPS_GIT_TOKEN_SECRET")
        assert bump_env["MLOPS_GIT_PROVIDER"] != "codecommit"
        assert bump_source["Auth"] == {"Type": "CODECONNECTIONS", "Resource": CONNECTION}


def test_the_bump_role_pushes_only_bump_branches_and_deploys_nothing() -> None:
    policy = role("BumpBuildRole")
    repository = fill(calls.PULL_REQUESTS)
    main = {"codecommit:References": ["refs/heads/main"]}
    assert not policy.allows("codecommit:GitPush", repository, main)
    assert not policy.allows("codecommit:MergePullRequestByFastForward", repository)
    stack = fill(calls.STACK)
    assert not policy.allows("cloudformation:UpdateStack", stack)
    assert not policy.allows("sagemaker:UpdateModelPackage", "*")


def test_the_build_runs_bump_with_flags_the_command_has() -> None:
    project = RESOURCES["BumpProject"]["Properties"]
    spec = yaml.safe_load(project["Source"]["BuildSpec"])
    assert spec["env"]["git-credential-helper"] is True
    command = next(c for c in spec["phases"]["build"]["commands"] if "mlops-controller" in c)
    argv = [part.strip('"') for part in command.split()[1:]]
    args = build_parser().parse_args(argv)
    # Back to where the source came from: CodeCommit or the git host.
    assert (args.push, args.into) == ("$CODEBUILD_SOURCE_REPO_URL", "$MLOPS_DEPLOYMENT_BRANCH")
    assert args.pull_request == "$MLOPS_CONFIG_REPOSITORY"
