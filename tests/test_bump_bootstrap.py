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
from tests.test_permissions import CONTROLLER_STACK, bootstrap_attribute, fill

TEMPLATE = cfn.load(bootstrap.template_text())
RESOURCES = TEMPLATE["Resources"]
REPOSITORY = "arn:aws:codecommit:{region}:{account}:{repository}"


def role(logical_id: str) -> iam.Policy:
    parameters = {
        "ConfigRepositoryName": "mlops-config",
        "ExistingS3Bucket": "",
        "DeploymentBranch": "main",
    }
    context = cfn.Context(parameters, CONTROLLER_STACK, bootstrap_attribute, TEMPLATE)
    statements: list[Mapping[str, Any]] = []
    for policy in RESOURCES[logical_id]["Properties"]["Policies"]:
        statements += context.resolve(policy["PolicyDocument"])["Statement"]
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


@pytest.mark.parametrize("call", calls.BUMP_CALLS, ids=[c.action for c in calls.BUMP_CALLS])
def test_the_bump_role_allows_every_call_of_bump(call: calls.ApiCall) -> None:
    context = {"codecommit:References": ["refs/heads/mlops-bump/churn-v2-1a2b3c4d"]}
    assert role("BumpBuildRole").allows(call.action, fill(call.resource), context)


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
    assert (args.push, args.into) == ("config", "$MLOPS_DEPLOYMENT_BRANCH")
    assert args.pull_request == "$MLOPS_CONFIG_REPOSITORY"
