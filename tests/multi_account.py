"""Helpers for multi-account tests: one moto server, an account per assumed role.

moto gives credentials from `sts.assume_role` into another account's role ARN their own
account, so the orchestrator (moto's default account) and three stage accounts live on the
one server the suite starts. What moto does not do (refuse a role, fail a stack in one
account only) is emulated here, in the in-process server, as `emulated_faults` does.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend

from controller.aws.demo_world import seed
from controller.aws.session import Aws
from controller.core import grants
from tests.conftest import ROOT
from tests.emulated_faults import fail_creates_where

STAGED = ROOT / "examples" / "mlops-config.stages.json"
REGION = "us-east-1"
ORCHESTRATOR = "123456789012"
DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
ACCOUNTS = {"dev": DEV, "staging": STAGING, "prod": PROD}
BUCKET = "mlops-assets-example"
REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
CUSTOM = "mlops-pipeline-churnxgb-byompipelinerealtimecustom"
BUILDER = "mlops-pipeline-churn-byompipelineimagebuilder"
MONITOR = "mlops-pipeline-churnxgb-byomdataqualitymonitor"


def staged_example() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(STAGED.read_text())
    return loaded


def flattened(example: dict[str, Any]) -> dict[str, Any]:
    """Every stage's values as plain pipelines, for seeding the buckets and artifacts."""
    names = [s["name"] for s in example["settings"]["stages"]]
    pipelines = [
        {k: v[name] if isinstance(v, dict) and set(v) == set(names) else v for k, v in p.items()}
        for p in example["pipelines"]
        for name in names
    ]
    return {**copy.deepcopy(example), "pipelines": pipelines}


def seed_orchestrator(example: dict[str, Any], accounts: list[str] | None = None) -> Aws:
    """The orchestrator account: assets, and grants that let `accounts` (default: every
    stage) read them and pull the custom image."""
    home = Aws(region=REGION)
    seed(home, BUCKET, flattened(example))
    granted = accounts if accounts is not None else list(ACCOUNTS.values())
    grant(home, granted)
    return home


def grant(home: Aws, accounts: list[str]) -> None:
    policy = {"Version": "2012-10-17", "Statement": [grants.bucket_statement(BUCKET, accounts)]}
    home.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    ecr = home.client("ecr")
    if not ecr.describe_repositories().get("repositories"):
        ecr.create_repository(repositoryName="mlops-churn")
    statement = grants.repository_statement(accounts)
    ecr.set_repository_policy(
        repositoryName="mlops-churn",
        policyText=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )


def account_client(account: str, service: str) -> Any:
    """A client in another account, the way the controller gets one: assume a role there."""
    sts = boto3.client("sts", region_name=REGION)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/inspector", RoleSessionName="test-inspector"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def stacks_in(account: str) -> dict[str, dict[str, Any]]:
    cfn = account_client(account, "cloudformation")
    return {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}


def parameter(stack: dict[str, Any], key: str) -> str:
    return next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == key)


def refuse_role(monkeypatch: pytest.MonkeyPatch, account: str) -> None:
    """sts:AssumeRole into `account` is denied (a trust policy that does not name us)."""
    original = STSBackend.assume_role

    def assume_role(self: Any, *args: Any, **kwargs: Any) -> Any:
        role_arn = str(kwargs.get("role_arn", args[2] if len(args) > 2 else ""))
        if f"::{account}:" in role_arn:
            raise STSClientError(
                "AccessDenied",
                f"User: arn:aws:sts::{ORCHESTRATOR}:user/moto is not authorized to perform: "
                f"sts:AssumeRole on resource: {role_arn}",
            )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(STSBackend, "assume_role", assume_role)


def fail_creates_in(monkeypatch: pytest.MonkeyPatch, account: str, reason: str) -> None:
    """Every stack created in `account` fails and rolls back; other accounts are unaffected."""
    fail_creates_where(monkeypatch, lambda stack: stack.account_id == account, reason)
