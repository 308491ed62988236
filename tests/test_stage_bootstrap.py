"""blueprints/stage-role.yaml and the stage parameters of blueprints/bootstrap.yaml.

moto deploys both but applies neither bucket, repository nor key policies, and checks no IAM;
so the grants are read back from the templates and judged with the same rules the pre-flight
uses, and the stage role's permissions are derived from the CloudFormation provider schemas
that cfn-lint ships (what each resource handler calls), as the house rules ask.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import cfnlint
import pytest
import yaml
from cfnlint.api import lint

from controller.aws import calls
from controller.core import grants
from controller.core.pipelines import KINDS, Family
from controller.gitops import bootstrap
from tests import iam
from tests.conftest import ROOT
from tests.multi_account import DEV, PROD, STAGING, account_client

STAGE_ROLE = ROOT / "blueprints" / "stage-role.yaml"
ACCOUNTS = [DEV, STAGING, PROD]
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"


class _Loader(yaml.SafeLoader):
    """CloudFormation short forms kept as {"Fn": value}, so conditions can be resolved."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_Loader.add_multi_constructor("!", _tagged)


def resolved(node: Any, values: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """The template with `!If`, `!Ref`, `!Sub` and `!GetAtt` of known names resolved; a
    value that resolves to AWS::NoValue disappears, as in CloudFormation."""
    if isinstance(node, list):
        items = [resolved(item, values, conditions) for item in node]
        return [item for item in items if item != "AWS::NoValue"]
    if not isinstance(node, dict):
        return node
    if set(node) == {"If"}:
        condition, then, otherwise = node["If"]
        return resolved(then if conditions[condition] else otherwise, values, conditions)
    if set(node) == {"Ref"}:
        return values.get(node["Ref"], node["Ref"])
    if set(node) == {"GetAtt"}:
        return values.get(node["GetAtt"], node["GetAtt"])
    if set(node) == {"Sub"}:
        text, names = (node["Sub"], {}) if isinstance(node["Sub"], str) else node["Sub"]
        local = {k: resolved(v, values, conditions) for k, v in names.items()}
        return re.sub(
            r"\$\{(!?[\w:.]+)\}",
            lambda m: (
                m.group(0).replace("!", "")
                if m.group(1).startswith("!")
                else str({**values, **local}.get(m.group(1), m.group(0)))
            ),
            text,
        )
    items = {k: resolved(v, values, conditions) for k, v in node.items()}
    return {k: v for k, v in items.items() if v != "AWS::NoValue"}


def bootstrap_with(accounts: list[str]) -> dict[str, Any]:
    document = yaml.load(bootstrap.template_text(), Loader=_Loader)
    values: dict[str, Any] = {
        "StageAccountIds": accounts,
        "StageRoleName": "mlops-controller-stage",
        "AssetsBucket": "assets",
        "AssetsBucket.Arn": "arn:aws:s3:::assets",
        "ControllerKey.Arn": "arn:aws:kms:us-east-1:123456789012:key/k",
        "ControllerBuildRole.Arn": (
            "arn:aws:iam::123456789012:role/mlops-controller-ControllerBuildRole-1A2B"
        ),
        "StackPrefix": "mlops-pipeline",
        "AWS::Partition": "aws",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
    }
    conditions = {"HasStages": bool(accounts), "CreateBucket": True, "CreateEcrRepo": True}
    conditions["CreateModelRegistry"] = False
    conditions |= {"UseCodeCommit": True, "UseConnection": False, "HasTokenSecret": False}
    conditions["UseGitHubEnterprise"] = False
    resources = {
        name: resource
        for name, resource in document["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    return resolved(resources, values, conditions)  # type: ignore[no-any-return]


def policy_of(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


# The orchestrator's bootstrap


def test_the_bootstrap_grants_every_stage_account_what_the_pre_flight_checks() -> None:
    resources = bootstrap_with(ACCOUNTS)
    bucket = policy_of(resources["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"])
    key = policy_of(resources["ControllerKey"]["Properties"]["KeyPolicy"]["Statement"])
    repository = json.dumps(resources["EcrRepository"]["Properties"]["RepositoryPolicyText"])
    for account in ACCOUNTS:
        assert grants.allows(bucket, account, grants.READ_OBJECTS, "arn:aws:s3:::assets/m.tar.gz")
        assert grants.allows(bucket, account, grants.LIST_OBJECTS, "arn:aws:s3:::assets")
        assert grants.allows(key, account, ("kms:Decrypt",), "*")
        assert grants.allows(repository, account, grants.PULL_IMAGES, "*")
    assert not grants.allows(bucket, "444444444444", grants.READ_OBJECTS, "arn:aws:s3:::assets/m")


def test_without_stage_accounts_the_bootstrap_grants_nothing_more() -> None:
    resources = bootstrap_with([])
    assert "StagePromotionPolicy" not in resources and "ApproverPolicy" not in resources
    assert "RepositoryPolicyText" not in resources["EcrRepository"]["Properties"]
    bucket = resources["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in bucket] == [
        "DenyInsecureTransport",
        "NoApprovalsByTheController",
        "NoApprovalsFromOtherAccounts",
    ]
    key = resources["ControllerKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert "StageAccountsDecryptAssets" not in [s["Sid"] for s in key]


def test_the_controller_may_assume_stage_roles_and_read_policies_but_never_approve() -> None:
    statements = bootstrap_with(ACCOUNTS)["StagePromotionPolicy"]["Properties"]
    by_sid = {s["Sid"]: s for s in statements["PolicyDocument"]["Statement"]}
    assert by_sid["AssumeStageRoles"]["Resource"] == "arn:aws:iam::*:role/mlops-controller-stage"
    assert by_sid["AssumeStageRoles"]["Condition"] == {
        "StringEquals": {"aws:ResourceAccount": ACCOUNTS}
    }
    deny = by_sid["NoSelfApproval"]
    assert deny["Effect"] == "Deny"
    approval = "arn:aws:s3:::assets/mlops-controller/mlops-controller/approvals/prod/c/AIDA/x.json"
    assert grants._glob(deny["Resource"], False).fullmatch(approval)


def _controller_state() -> list[str]:
    """The keys under mlops-controller/ the controller reads and writes for itself (every S3
    call of calls.py there), but for the Clarify analysis configurations, which the stage's
    jobs read; templates go to CloudFormation through URLs the orchestrator signs."""
    keys = []
    for call in calls.CALLS:
        if not call.resource.startswith(calls.BUCKET + "/mlops-controller/"):
            continue
        if "/analysis/" in call.resource:
            continue
        keys.append(
            call.resource.format(
                partition="aws",
                assets_bucket="assets",
                controller_id="mlops-controller",
                stack_prefix="mlops-pipeline",
            ).replace("*", "x")
        )
    return keys


def test_stage_accounts_read_what_their_stacks_read_and_not_the_controllers_state() -> None:
    """Artifacts, baselines, datasets and analysis configurations, yes; the ledger, the
    lease, promotions, approvals, the controller's wheel and build artifacts, no."""
    statements = bootstrap_with(ACCOUNTS)["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]
    bucket = policy_of(statements["Statement"])
    state = [
        *_controller_state(),
        "arn:aws:s3:::assets/mlops-controller/builds/x/report.xml",
    ]
    assert any("/ledger/" in k for k in state) and any("/approvals/" in k for k in state)
    assert any("/wheels/" in k for k in state)
    read = [
        "arn:aws:s3:::assets/churn/model.tar.gz",
        "arn:aws:s3:::assets/churn/baseline/data.csv",
        "arn:aws:s3:::assets/mlops-controller/analysis/0123abcd.json",
    ]
    for account in ACCOUNTS:
        for key in read:
            assert grants.allows(bucket, account, grants.READ_OBJECTS, key), key
        for key in state:
            assert not grants.allows(bucket, account, grants.READ_OBJECTS, key), key


def test_an_approver_may_record_decisions_only_under_their_own_user_id() -> None:
    policy = bootstrap_with(ACCOUNTS)["ApproverPolicy"]["Properties"]["PolicyDocument"]
    (own,) = [s for s in policy["Statement"] if s["Sid"] == "RecordOwnDecisions"]
    pattern = own["Resource"]
    assert "${aws:userid}" in pattern
    mine = pattern.replace("${aws:userid}", "AIDAALICE")
    key = (
        "mlops-controller/mlops-controller/approvals/prod/{c}/{who}/"
        "20261125T100000.000000Z-approved.json"
    )
    assert grants._glob(mine, False).fullmatch(
        "arn:aws:s3:::assets/" + key.format(c="c" * 40, who="AIDAALICE")
    )
    assert not grants._glob(mine, False).fullmatch(
        "arn:aws:s3:::assets/" + key.format(c="c" * 40, who="AIDABOB")
    )


APPROVAL = "arn:aws:s3:::assets/mlops-controller/mlops-controller/approvals/prod/{c}/{who}/x.json"


def test_the_bucket_policy_keeps_every_role_of_the_controller_from_writing_an_approval() -> None:
    """Whatever a role's own policies allow (here: all of S3), the bucket refuses an approval
    written by the build role, a role its stacks create, a stage role or another account; an
    approver of the account may still write theirs."""
    statements = bootstrap_with(ACCOUNTS)["AssetsBucketPolicy"]["Properties"]["PolicyDocument"]
    everything = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    policy = iam.Policy.of([everything, *statements["Statement"]])
    approval = APPROVAL.format(c="c" * 40, who="AIDAX")

    def writes(principal: str) -> bool:
        account = principal.split(":")[4]
        context = {
            "aws:PrincipalArn": principal,
            "aws:PrincipalAccount": account,
            "aws:SecureTransport": "true",
        }
        return policy.allows("s3:PutObject", approval, context)

    assert not writes("arn:aws:iam::123456789012:role/mlops-controller-ControllerBuildRole-1A2B")
    assert not writes("arn:aws:iam::123456789012:role/mlops-pipeline-x-StateMachineRole-1A2B")
    assert not writes(f"arn:aws:iam::{PROD}:role/mlops-controller-stage")
    assert not writes(f"arn:aws:iam::{PROD}:role/anything")
    assert writes("arn:aws:iam::123456789012:user/alice")


def test_people_sharing_an_approver_role_cannot_approve_as_each_other() -> None:
    """`${aws:userid}` of a role session is ROLEID:<session name>, chosen by its caller: only
    a session named after its source identity may record a decision under that id."""
    policy_document = bootstrap_with(ACCOUNTS)["ApproverPolicy"]["Properties"]["PolicyDocument"]
    policy = iam.Policy.of(policy_document["Statement"])

    def writes(userid: str, source_identity: str | None = None) -> bool:
        context = {"aws:userid": userid}
        if source_identity is not None:
            context["aws:SourceIdentity"] = source_identity
        return policy.allows("s3:PutObject", APPROVAL.format(c="c" * 40, who=userid), context)

    assert writes("AIDAALICE")
    assert writes("AROAAPPROVER:alice", "alice")
    assert not writes("AROAAPPROVER:bob", "alice")
    assert not writes("AROAAPPROVER:bob")
    bob_as_alice = {"aws:userid": "AROAAPPROVER:bob", "aws:SourceIdentity": "alice"}
    assert not policy.allows(
        "s3:PutObject", APPROVAL.format(c="c" * 40, who="AROAAPPROVER:alice"), bob_as_alice
    )


def test_the_bootstrap_with_stage_accounts_deploys_on_the_emulator(aws, capsys) -> None:
    from controller.cli.main import main

    code = main(
        [
            "bootstrap",
            "--stack-name",
            "mlops-controller",
            "--notification-email",
            "a@b.io",
            "--parameter",
            f"StageAccountIds={','.join(ACCOUNTS)}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    stack = boto3.client("cloudformation", region_name="us-east-1").describe_stacks(
        StackName="mlops-controller"
    )["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ApproverPolicyArn"].startswith("arn:aws:iam::123456789012:policy/")


# The stage role


@cache
def stage_role() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(STAGE_ROLE.read_text(), Loader=_Loader)
    return loaded


def role_statements(external_id: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    values = {
        "ControllerRoleArn": "arn:aws:iam::123456789012:role/controller",
        "ExternalId": external_id,
        "StackPrefix": "mlops-pipeline",
        "AWS::Partition": "aws",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": DEV,
    }
    role = resolved(
        stage_role()["Resources"]["StageRole"], values, {"HasExternalId": bool(external_id)}
    )
    properties = role["Properties"]
    return (
        properties["AssumeRolePolicyDocument"]["Statement"],
        properties["Policies"][0]["PolicyDocument"]["Statement"],
    )


def test_the_stage_role_template_is_clean_under_cfn_lint() -> None:
    matches = lint(STAGE_ROLE.read_text(), regions=["us-east-1"])
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_the_stage_role_trusts_only_the_orchestrators_controller_role() -> None:
    (trust,) = role_statements()[0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/controller"}
    assert trust["Action"] == "sts:AssumeRole" and "Condition" not in trust
    (trust,) = role_statements("mlops-dev-7f3a")[0]
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "mlops-dev-7f3a"}}


def allowed(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and any(grants._glob(a, True).fullmatch(action) for a in grants._listed(s["Action"]))
    ]


CONDITIONAL = {
    "lambda:DeleteProvisionedConcurrencyConfig": "Lambda scalable targets (ours scale endpoints)",
    "lambda:GetProvisionedConcurrencyConfig": "Lambda scalable targets (ours scale endpoints)",
    "lambda:PutProvisionedConcurrencyConfig": "Lambda scalable targets (ours scale endpoints)",
    "ec2:": "VPC configuration (the blueprints deploy no VPC)",
    "elasticfilesystem:": "EFS mounts",
    "s3files:": "EFS mounts",
    "s3:": "code and definitions from S3 (the blueprints inline them)",
    "lambda:AssociateRuntimeAlias": "runtime aliases",
    "lambda:GetLayerVersion": "layers",
    "lambda:PassCapacityProvider": "capacity providers",
    "lambda:PutFunctionScalingConfig": "capacity providers",
    "lambda:GetCodeSigningConfig": "code signing",
    "lambda:PutFunctionCodeSigningConfig": "code signing",
    "lambda:DeleteFunctionCodeSigningConfig": "code signing",
    "iam:AttachRolePolicy": "managed policies (no blueprint attaches one)",
    "iam:PutRolePermissionsBoundary": "permission boundaries",
    "iam:DeleteRolePermissionsBoundary": "permission boundaries",
    "iam:PutGroupPolicy": "policies on groups",
    "iam:GetGroupPolicy": "policies on groups",
    "iam:DeleteGroupPolicy": "policies on groups",
    "iam:PutUserPolicy": "policies on users",
    "iam:GetUserPolicy": "policies on users",
    "iam:DeleteUserPolicy": "policies on users",
}


def stage_resource_types() -> set[str]:
    """Every resource type the pipelines deployed in a stage use (not the image builder)."""
    types: set[str] = set()
    for snapshot in (ROOT / "tests" / "snapshots").glob("*.yaml"):
        if "imagebuilder" not in snapshot.name:
            types |= set(re.findall(r"Type: (AWS::[A-Za-z0-9:]+)", snapshot.read_text()))
    assert any(k.family is Family.IMAGE_BUILDER for k in KINDS.values())
    return types


def handler_permissions(resource_type: str) -> set[str]:
    providers = json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{providers[resource_type]}.json").read_text())
    handlers = schema.get("handlers", {})
    return {
        permission
        for verb in ("create", "update", "delete")
        for permission in handlers.get(verb, {}).get("permissions", [])
    }


@pytest.mark.parametrize("resource_type", sorted(stage_resource_types()))
def test_the_stage_role_allows_what_each_resource_handler_calls(resource_type: str) -> None:
    statements = role_statements()[1]
    missing = [
        permission
        for permission in sorted(handler_permissions(resource_type))
        if not allowed(statements, permission)
        and not any(permission.startswith(prefix) for prefix in CONDITIONAL)
    ]
    assert missing == []


def test_the_stage_role_allows_every_call_the_controller_makes_in_a_stage_account() -> None:
    statements = role_statements()[1]
    calls = [
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:CreateStack",
        "cloudformation:UpdateStack",
        "cloudformation:DeleteStack",
        "states:StartExecution",
        "states:DescribeExecution",
        "sagemaker:DescribeEndpoint",
        "cloudwatch:DescribeAlarms",
        "sagemaker:ListMonitoringExecutions",
    ]
    assert [c for c in calls if not allowed(statements, c)] == []
    assert not allowed(statements, "s3:GetObject")
    assert not allowed(statements, "iam:CreateUser")


def test_the_stage_role_writes_only_stacks_roles_and_functions_under_the_prefix() -> None:
    statements = role_statements()[1]
    for action in (
        "cloudformation:CreateStack",
        "iam:CreateRole",
        "iam:PassRole",
        "lambda:CreateFunction",
    ):
        for statement in allowed(statements, action):
            assert all("mlops-pipeline-*" in r for r in grants._listed(statement["Resource"])), (
                action
            )
    for statement in statements:
        actions = grants._listed(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), statement["Sid"]


def test_the_stage_role_deploys_in_a_stage_account_on_the_emulator(aws) -> None:
    cfn = account_client(DEV, "cloudformation")
    cfn.create_stack(
        StackName="mlops-controller-stage",
        TemplateBody=STAGE_ROLE.read_text(),
        Parameters=[
            {
                "ParameterKey": "ControllerRoleArn",
                "ParameterValue": "arn:aws:iam::123456789012:role/c",
            }
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName="mlops-controller-stage")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RoleArn"] == f"arn:aws:iam::{DEV}:role/mlops-controller-stage"
    role = account_client(DEV, "iam").get_role(RoleName="mlops-controller-stage")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/c"}
    assert "mlops-controller-stage" not in {
        r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]
    }


def test_the_build_gets_the_buckets_key_so_both_halves_of_the_kms_grant_hold() -> None:
    """Cross-account KMS needs the key policy naming the stage account and a statement in the
    stage's role: the bootstrap's key policy is one, and the key it hands the build
    (MLOPS_ASSETS_KMS_KEY_ARN) is what the stage stacks' roles are granted, the other."""
    from controller.core import config, render
    from tests.multi_account import staged_example

    resources = bootstrap_with(ACCOUNTS)
    variables = resources["ControllerProject"]["Properties"]["Environment"]
    environment = {v["Name"]: v["Value"] for v in variables["EnvironmentVariables"]}
    key = environment["MLOPS_ASSETS_KMS_KEY_ARN"]
    assert key == "arn:aws:kms:us-east-1:123456789012:key/k"
    (on_key_side,) = [
        s
        for s in resources["ControllerKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Sid"] == "StageAccountsDecryptAssets"
    ]
    loaded = config.load(
        json.dumps(staged_example()).encode(),
        "mlops-config.json",
        environ={"MLOPS_ASSETS_KMS_KEY_ARN": key},
    )
    assert loaded.config is not None, [d.format() for d in loaded.errors]
    for stage in loaded.config.stages:
        assert stage.stage is not None
        account = stage.stage.account_id
        assert grants.allows(policy_of([on_key_side]), account, ("kms:Decrypt",), "*")
        for stack in render.render_all(stage):
            assert dict(stack.parameters)["AssetsKmsKeyArn"] == key
        on_role_side = grants.role_statement(key)
        assert on_role_side["Condition"] == on_key_side["Condition"]


def test_with_an_existing_bucket_the_build_gets_no_key() -> None:
    document = yaml.load(bootstrap.template_text(), Loader=_Loader)
    project = document["Resources"]["ControllerProject"]["Properties"]
    conditions = {"CreateBucket": False, "HasStages": True}
    conditions |= {"UseConnection": False, "HasTokenSecret": False}
    variables = resolved(project["Environment"]["EnvironmentVariables"], {}, conditions)
    assert "MLOPS_ASSETS_KMS_KEY_ARN" not in {v["Name"] for v in variables}
