"""The controller under IAM enforcement: the roles of the bootstrap stack (and of
stage-role.yaml in each stage account), as moto created them from the blueprints, are all it
has, and moto refuses whatever they do not allow.

A moto server of its own (tests/iam_server.py, which names each call's resource as IAM does),
so enforcement never reaches the session's shared server. Set-up runs before enforcement is
switched on (`POST /moto-api/reset-auth`, body `0`); the controller then runs with the build
role's credentials only. What moto does not evaluate (policy variables, conditions as IAM does,
bucket policies) is judged by tests/iam.py in tests/test_permissions.py and
tests/test_stage_bootstrap.py: here an approver records decisions with enforcement paused.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from botocore.exceptions import ClientError

from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.gitops import bootstrap
from tests.conftest import EXAMPLE, ROOT, _free_port, commit_config, repo_with
from tests.multi_account import (
    ACCOUNTS,
    BUCKET,
    REGION,
    flattened,
    grant,
    staged_example,
)

STAGE_ROLE = ROOT / "blueprints" / "stage-role.yaml"
CONTROLLER = "mlops-controller"
WHEEL = f"mlops-controller/wheels/{'0' * 64}/mlops_controller-1-py3-none-any.whl"


@pytest.fixture(scope="module")
def enforcing_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.iam_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _post(url: str, body: bytes = b"") -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request).read()


class Account:
    """The emulator's accounts, set up with moto's root credentials, then enforced."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        self.monkeypatch = monkeypatch
        _post(f"{url}/moto-api/reset-auth", b"inf")
        _post(f"{url}/moto-api/reset")
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name in list(__import__("os").environ):
            if name.startswith("MLOPS_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        # A role that cannot see its stacks finish would wait its whole budget: fail soon.
        monkeypatch.setenv("MLOPS_WAIT_BUDGET", "30s")

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        keys = {}
        if credentials:
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials.get("SessionToken"),
            }
        return boto3.client(service, region_name=REGION, endpoint_url=self.url, **keys)

    def in_account(self, account: str, service: str) -> Any:
        credentials = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup"
        )["Credentials"]
        return self.client(service, credentials)

    def bootstrap(self, stage_accounts: list[str]) -> dict[str, str]:
        cfn = self.client("cloudformation")
        parameters = {
            "NotificationEmail": "ops@example.com",
            "ExistingS3Bucket": BUCKET,
            "ExistingECRRepo": "mlops-churn",
            "ControllerWheelKey": WHEEL,
            "ControllerWheelSha256": "0" * 64,
            "StageAccountIds": ",".join(stage_accounts),
        }
        cfn.create_stack(
            StackName=CONTROLLER,
            TemplateBody=bootstrap.template_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        stack = cfn.describe_stacks(StackName=CONTROLLER)["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}

    def stage_role(self, account: str, controller_role: str) -> None:
        cfn = self.in_account(account, "cloudformation")
        cfn.create_stack(
            StackName="mlops-controller-stage",
            TemplateBody=STAGE_ROLE.read_text(),
            Parameters=[{"ParameterKey": "ControllerRoleArn", "ParameterValue": controller_role}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )

    def enforce_as(self, role_arn: str) -> None:
        """From now on, only the role's credentials, and IAM says what they may do."""
        credentials = self.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="mlops-controller-build"
        )["Credentials"]
        self.act_with(credentials)
        _post(f"{self.url}/moto-api/reset-auth", b"0")

    def act_with(self, credentials: dict[str, str]) -> None:
        self.monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
        self.monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
        if credentials.get("SessionToken"):
            self.monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
        else:
            self.monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    def paused(self) -> Any:
        """Enforcement off for what moto cannot judge (see the module's docstring)."""
        account = self

        class _Paused:
            def __enter__(self) -> None:
                _post(f"{account.url}/moto-api/reset-auth", b"inf")

            def __exit__(self, *_: Any) -> None:
                _post(f"{account.url}/moto-api/reset-auth", b"0")

        return _Paused()


def _results(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--output", "json"])
    out, err = capsys.readouterr()
    assert "AccessDenied" not in out + err and "{\n" in out, out + err
    return code, {r["name"]: r for r in json.loads(out[out.index("{\n") :])["results"]}


def test_the_demo_story_runs_with_the_build_roles_permissions_alone(
    enforcing_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Create, update and delete pipelines, then plan, status and history, each as the
    bootstrap's build role: every call and every key it touches (the lease, the ledger's
    records and intent, templates, analyses) is allowed, the first apply and the next."""
    account = Account(enforcing_server, monkeypatch)
    document = json.loads(EXAMPLE.read_text())
    document["pipelines"] = [
        p for p in document["pipelines"] if p["pipeline_type"] != "byom_image_builder"
    ][:4]
    seed(account, BUCKET, document)
    account.client("ecr").create_repository(repositoryName="mlops-churn")
    outputs = account.bootstrap([])
    monkeypatch.setenv("MLOPS_NOTIFICATION_TOPIC_ARN", outputs["NotificationTopicArn"])
    account.enforce_as(outputs["ControllerBuildRoleArn"])
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ClientError, match="AccessDenied"):
        boto3.session.Session().client("cloudformation").delete_stack(StackName=CONTROLLER)
    with pytest.raises(ClientError, match="AccessDenied"):
        boto3.session.Session().client("s3").delete_object(Bucket=BUCKET, Key="churn/x.tar.gz")

    code, results = _results(capsys, ["apply", "--auto-approve", "--config", str(path)])
    assert code == 0, results
    assert {r["outcome"] for r in results.values()} == {"succeeded"}

    changed = copy.deepcopy(document)
    changed["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    removed = changed["pipelines"].pop()
    path.write_text(json.dumps(changed))
    code, results = _results(capsys, ["apply", "--auto-approve", "--config", str(path)])
    assert code == 0, results
    assert sorted(r["action"] for r in results.values() if r["outcome"] == "succeeded") == [
        "delete",
        "update",
    ]
    assert any(removed["model_name"].lower() in name for name in results)

    assert main(["plan", "--config", str(path)]) == 0
    assert main(["status", "--config", str(path)]) == 0
    assert main(["history", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "AccessDenied" not in out


def test_a_promotion_through_stages_runs_with_the_build_and_stage_roles_alone(
    enforcing_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The orchestrator's image builder, then dev, staging and prod, each through its stage
    role, with the approvals people record: every stage reaches its stacks, watches them
    finish (ListStacks) and records its ledger and promotions."""
    account = Account(enforcing_server, monkeypatch)
    example = staged_example()
    seed(account, BUCKET, flattened(example))
    grant(account, list(ACCOUNTS.values()))
    outputs = account.bootstrap(list(ACCOUNTS.values()))
    for stage_account in ACCOUNTS.values():
        account.stage_role(stage_account, outputs["ControllerBuildRoleArn"])
    repo: git.Repo = repo_with(tmp_path / "staged-repo", example, "Three stages")
    approver = _approver(account, outputs["ApproverPolicyArn"])
    account.enforce_as(outputs["ControllerBuildRoleArn"])
    build = _credentials_of_env(monkeypatch)

    def promote() -> dict[str, Any]:
        code = main(["apply", "--auto-approve", "--repo", str(repo.working_dir), "-o", "json"])
        out, err = capsys.readouterr()
        assert "AccessDenied" not in out + err, out + err
        runs = json.loads(out)["stages"]
        return {"exit": code, **{r["stage"]: r for r in runs}}

    first = promote()
    assert first["dev"]["outcome"] == "applied", first["dev"]
    assert first["staging"]["gate"] == "waiting", first["staging"]
    for stage in ("staging", "prod"):
        with account.paused():
            account.act_with(approver)
            code = main(["approve", "--stage", stage, "--repo", str(repo.working_dir)])
            account.act_with(build)
        assert code == 0, capsys.readouterr()
        capsys.readouterr()
        promoted = promote()
        assert promoted[stage]["outcome"] == "applied", promoted[stage]
    commit_config(repo, example, "Again")  # a second commit: later applies work too
    assert promote()["exit"] == 0


def _approver(account: Account, policy_arn: str) -> dict[str, str]:
    iam = account.client("iam")
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=policy_arn)
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    return {
        "AccessKeyId": key["AccessKeyId"],
        "SecretAccessKey": key["SecretAccessKey"],
        "SessionToken": "",
    }


def _credentials_of_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    import os

    return {
        "AccessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
        "SessionToken": os.environ["AWS_SESSION_TOKEN"],
    }
