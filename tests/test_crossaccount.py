"""Pre-flight per stage: a pipeline whose stage account may not read the orchestrator's assets
(bucket policy, KMS key policy, ECR repository policy), or whose stacks' roles are not granted
the bucket's KMS key (settings.assets_kms_key_arn), is blocked with what is missing, before
anything is written; the policies are read in the orchestrator account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from controller.cli.main import main
from controller.core import grants, intrinsics, render
from controller.core.config import load
from controller.core.config.stages import IMAGE_BUILDER
from tests.aws_calls import count_calls
from tests.conftest import repo_with
from tests.multi_account import (
    BUCKET,
    CUSTOM,
    DEV,
    MONITOR,
    PROD,
    REALTIME,
    STAGING,
    seed_orchestrator,
    staged_example,
)


@pytest.fixture
def repo(aws: str, tmp_path: Path) -> git.Repo:
    return repo_with(tmp_path / "staged-repo", staged_example(), "Three stages")


def plan(repo: git.Repo, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """Each stage's planned action and reason, by stack name; a blocked stage exits 1."""
    code = main(["plan", "--repo", str(repo.working_dir), "--output", "json"])
    stages = json.loads(capsys.readouterr().out)["stages"]
    blocked = any(c["action"] == "blocked" for s in stages for c in s["plan"]["changes"])
    assert code == (1 if blocked else 2), "a plan with a blocked pipeline cannot be applied whole"
    return {
        s["stage"]: {c["name"]: (c["action"], c["reason"]) for c in s["plan"]["changes"]}
        for s in stages
    }


def test_a_stage_the_bucket_policy_does_not_name_is_blocked_with_what_is_missing(
    repo, capsys
) -> None:
    seed_orchestrator(staged_example(), [DEV, STAGING])

    planned = plan(repo, capsys)

    assert {a for a, _ in planned["dev"].values()} == {"create"}
    assert {a for a, _ in planned["staging"].values()} == {"create"}
    action, reason = planned["prod"][REALTIME]
    assert action == "blocked"
    assert reason == (
        f"cross-account: the bucket policy of s3://{BUCKET} does not let account {PROD} "
        f"(stage prod) read model_artifact_location s3://{BUCKET}/linearlearner/model.tar.gz; "
        "add the statement `mlops-controller grants` prints (or deploy the bootstrap with "
        "StageAccountIds)"
    )
    assert {a for a, _ in planned["prod"].values()} == {"blocked"}


def test_a_bucket_policy_that_lets_stages_read_but_not_list_blocks_their_monitors(
    repo, capsys
) -> None:
    """A monitor's baseline is an S3 prefix: reading it takes s3:ListBucket on the bucket,
    which an objects-only grant (the bootstrap's before) does not give."""
    home = seed_orchestrator(staged_example())
    objects_only = {
        **grants.bucket_statement(BUCKET, [DEV, STAGING, PROD]),
        "Action": list(grants.READ_OBJECTS),
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [objects_only]}
    home.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))

    planned = plan(repo, capsys)

    for stage, account in (("dev", DEV), ("staging", STAGING), ("prod", PROD)):
        action, reason = planned[stage][MONITOR]
        assert action == "blocked"
        assert f"does not let account {account} (stage {stage}) list it" in reason
        assert planned[stage][REALTIME][0] == "create"


def test_without_a_bucket_policy_every_stage_is_blocked(repo, capsys) -> None:
    home = seed_orchestrator(staged_example())
    home.client("s3").delete_bucket_policy(Bucket=BUCKET)

    planned = plan(repo, capsys)

    for stage in ("dev", "staging", "prod"):
        assert {a for a, _ in planned[stage].values()} == {"blocked"}
    assert planned["orchestrator"]  # the image builder reads in its own account


def test_a_custom_image_the_repository_policy_does_not_share_is_blocked(
    aws: str, tmp_path: Path, capsys
) -> None:
    """An image no image builder of the config pushes: its repository's policy decides."""
    example = staged_example()
    example["pipelines"] = [p for p in example["pipelines"] if "ecr_repo_name" not in p]
    home = seed_orchestrator(example)
    home.client("ecr").delete_repository_policy(repositoryName="mlops-churn")
    repo = repo_with(tmp_path / "staged-repo", example, "Three stages, a given image")

    planned = plan(repo, capsys)

    action, reason = planned["dev"][CUSTOM]
    assert action == "blocked"
    assert "the repository policy of 123456789012/mlops-churn does not let account" in reason
    assert planned["dev"][REALTIME][0] == "create"


def test_an_image_the_configs_builder_pushes_needs_no_grants_by_hand(repo, capsys) -> None:
    """The image builder's build sets its repository's policy for the stage accounts, so the
    stages that run its image are planned before the first build has run (no policy yet)."""
    home = seed_orchestrator(staged_example())
    home.client("ecr").delete_repository_policy(repositoryName="mlops-churn")

    planned = plan(repo, capsys)

    for stage in ("dev", "staging", "prod"):
        assert planned[stage][CUSTOM][0] == "create", planned[stage][CUSTOM]


def encrypt(home: Any, key: str | None) -> None:
    """Default encryption of the assets bucket with `key` (None: the AWS managed aws/s3)."""
    default = {"SSEAlgorithm": "aws:kms", **({"KMSMasterKeyID": key} if key else {})}
    home.client("s3").put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]
        },
    )


def test_a_kms_encrypted_bucket_needs_a_key_policy_naming_the_stage_and_the_setting(
    repo, capsys, monkeypatch
) -> None:
    home = seed_orchestrator(staged_example())
    kms = home.client("kms")
    key = kms.create_key(Description="assets")["KeyMetadata"]["Arn"]
    encrypt(home, key)

    action, reason = plan(repo, capsys)["staging"][REALTIME]
    assert action == "blocked"
    assert f"cross-account: KMS key {key} of s3://{BUCKET} does not let account {STAGING}" in reason
    # The stage's roles need the key in their own policies too: without the setting, no
    # role names it, and the endpoint could not read its artifact in a real account.
    assert (
        f"cross-account: s3://{BUCKET} is encrypted with KMS key {key}, which the roles of "
        "stage staging's stacks are not granted; set settings.assets_kms_key_arn "
        "(MLOPS_ASSETS_KMS_KEY_ARN) to that key's ARN"
    ) in reason

    statement = grants.key_statement([DEV, STAGING, PROD], "us-east-1")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append(statement)
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    action, reason = plan(repo, capsys)["staging"][REALTIME]
    assert action == "blocked" and "does not let account" not in reason
    monkeypatch.setenv("MLOPS_ASSETS_KMS_KEY_ARN", key)
    assert plan(repo, capsys)["staging"][REALTIME][0] == "create"


def test_a_setting_that_names_another_key_than_the_buckets_is_blocked(
    repo, capsys, monkeypatch
) -> None:
    home = seed_orchestrator(staged_example())
    kms = home.client("kms")
    bucket_key, other = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    kms.create_alias(AliasName="alias/mlops-assets", TargetKeyId=bucket_key)
    encrypt(home, "alias/mlops-assets")
    for key in (bucket_key, other):
        policy = {"Version": "2012-10-17", "Statement": [grants.key_statement([DEV], "us-east-1")]}
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    monkeypatch.setenv("MLOPS_ASSETS_KMS_KEY_ARN", other)

    action, reason = plan(repo, capsys)["dev"][REALTIME]

    assert action == "blocked"
    assert reason == (
        f"cross-account: s3://{BUCKET} is encrypted with KMS key {bucket_key}, not with "
        f"settings.assets_kms_key_arn {other}, the key the roles of stage dev's stacks are "
        "granted"
    )
    monkeypatch.setenv("MLOPS_ASSETS_KMS_KEY_ARN", bucket_key)
    assert plan(repo, capsys)["dev"][REALTIME][0] == "create"


def test_a_bucket_encrypted_with_the_aws_managed_key_cannot_be_read_by_a_stage(
    repo, capsys
) -> None:
    encrypt(seed_orchestrator(staged_example()), None)

    action, reason = plan(repo, capsys)["prod"][REALTIME]

    assert action == "blocked"
    assert reason.startswith(
        f"cross-account: s3://{BUCKET} is encrypted with the AWS managed key aws/s3, which no "
        f"other account, such as {PROD} (stage prod), may use"
    )


def test_a_no_op_plan_reads_no_policy(repo, capsys, monkeypatch) -> None:
    seed_orchestrator(staged_example())
    for stage in ("orchestrator", "dev"):
        main(["apply", "--auto-approve", "--repo", str(repo.working_dir), "--stage", stage])
    capsys.readouterr()
    calls = count_calls(monkeypatch)

    main(["plan", "--repo", str(repo.working_dir), "--stage", "dev"])

    read = {op: n for op, n in calls.items() if op.startswith(("s3.", "kms.", "ecr."))}
    assert read == {"s3.GetObject": 1}, "only the promotion policy in force, no grant"


def test_grants_prints_the_statements_for_the_configured_stage_accounts(repo, capsys) -> None:
    path = Path(repo.working_dir) / "mlops-config.json"
    assert main(["grants", "--config", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["stage_accounts"] == [DEV, STAGING, PROD]
    assert printed["assets_bucket_policy_statement"] == grants.bucket_statement(
        BUCKET, [DEV, STAGING, PROD]
    )


def test_grants_names_the_assets_key_and_what_the_stage_roles_get(repo, capsys, monkeypatch):
    key = "arn:aws:kms:us-east-1:123456789012:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
    path = Path(repo.working_dir) / "mlops-config.json"
    assert main(["grants", "--config", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["assets_kms_key_arn"] is None and printed["stage_role_kms_statement"] is None

    monkeypatch.setenv("MLOPS_ASSETS_KMS_KEY_ARN", key)
    assert main(["grants", "--config", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["assets_kms_key_arn"] == key
    assert printed["kms_key_policy_statement"] == grants.key_statement(
        [DEV, STAGING, PROD], "us-east-1"
    )
    assert printed["stage_role_kms_statement"] == {
        "Sid": "AssetsKey",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key,
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
    }


def _builder(config: Any) -> Any:
    (stack,) = [s for s in render.render_all(config) if s.shape.pipeline_type == IMAGE_BUILDER]
    return stack


def test_the_image_builders_build_lets_every_stage_account_pull() -> None:
    """The stage accounts reach the template as a parameter; the build's command writes the
    statement `mlops-controller grants` prints, for those accounts, in the stack's partition."""
    staged = load(json.dumps(staged_example()).encode(), "mlops-config.json", environ={}).config
    assert staged is not None
    stack = _builder(staged)
    accounts = dict(stack.parameters)["PullAccounts"]
    assert accounts == ",".join(sorted([DEV, STAGING, PROD]))
    assert DEV not in stack.template_body
    project = intrinsics.load(stack.template_body)["Resources"]["BuildProject"]["Properties"]
    commands = yaml.safe_load(project["Source"]["BuildSpec"])["phases"]["pre_build"]["commands"]
    (setting,) = [c for c in commands if "set-repository-policy" in c]
    program = setting.split("python3 -c '", 1)[1].split("')\"", 1)[0]
    env = {"PULL_ACCOUNTS": accounts, "PARTITION": "aws", "PATH": os.environ["PATH"]}
    written = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    ).stdout
    policy = json.loads(written)
    assert policy["Statement"] == [grants.repository_statement(sorted([DEV, STAGING, PROD]))]
    for account in (DEV, STAGING, PROD):
        assert grants.allows(policy, account, grants.PULL_IMAGES, "*")
    assert not grants.allows(policy, "444444444444", grants.PULL_IMAGES, "*")


def test_a_single_account_image_builder_sets_no_repository_policy() -> None:
    example = {**staged_example()}
    example["settings"] = {k: v for k, v in example["settings"].items() if k != "stages"}
    example["pipelines"] = [p for p in example["pipelines"] if "ecr_repo_name" in p]
    single = load(json.dumps(example).encode(), "mlops-config.json", environ={}).config
    assert single is not None
    stack = _builder(single)
    assert "PullAccounts" not in dict(stack.parameters)
    assert "set-repository-policy" not in stack.template_body
