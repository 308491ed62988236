"""A commit promoted through three accounts on one moto server, through the real CLI and a
real git repository: every gate, every way a stage can stop a promotion, and what is recorded.
"""

from __future__ import annotations

import ast
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from rich.console import Console

from controller.cli.main import main
from controller.core import grants
from tests.aws_calls import count_calls
from tests.conftest import commit_config, repo_with
from tests.gitops import seed_account
from tests.multi_account import (
    ACCOUNTS,
    BUILDER,
    CUSTOM,
    DEV,
    ORCHESTRATOR,
    PROD,
    REALTIME,
    STAGING,
    account_client,
    fail_creates_in,
    parameter,
    refuse_role,
    seed_orchestrator,
    stacks_in,
    staged_example,
)


@pytest.fixture
def example() -> dict[str, Any]:
    return staged_example()


@pytest.fixture
def repo(aws: str, tmp_path: Path, example: dict[str, Any]) -> git.Repo:
    """A config repository whose commit holds the staged example, in a seeded orchestrator."""
    seed_orchestrator(example)
    return repo_with(tmp_path / "staged-repo", example, "Three stages")


def run(capsys: pytest.CaptureFixture[str], repo: git.Repo, *argv: str) -> tuple[int, str]:
    code = main([*argv, "--repo", str(repo.working_dir)])
    out, err = capsys.readouterr()
    return code, out + err


def promotion(capsys: pytest.CaptureFixture[str], repo: git.Repo, *argv: str) -> dict[str, Any]:
    """`apply --output json`: each step's gate and outcome, by step name."""
    code = main(["apply", "--auto-approve", "--repo", str(repo.working_dir), "-o", "json", *argv])
    out = capsys.readouterr().out
    document = json.loads(out)
    return {"exit": code, **{r["stage"]: r for r in document["stages"]}}


def approve(capsys: pytest.CaptureFixture[str], repo: git.Repo, stage: str, *extra: str) -> str:
    code, out = run(capsys, repo, "approve", "--stage", stage, *extra)
    assert code == 0, out
    return out


# Planning


def test_plan_shows_every_stage_in_order_and_costs_one_listing_per_account(
    repo, capsys, monkeypatch
) -> None:
    calls = count_calls(monkeypatch)
    code, out = run(capsys, repo, "plan", "--output", "json")

    assert code == 2
    plan = json.loads(out)
    assert [s["stage"] for s in plan["stages"]] == ["orchestrator", "dev", "staging", "prod"]
    assert [s["account_id"] for s in plan["stages"]] == [None, DEV, STAGING, PROD]
    assert [len(s["plan"]["changes"]) for s in plan["stages"]] == [1, 4, 4, 4]
    assert plan["stages"][0]["plan"]["changes"][0]["name"] == BUILDER
    assert plan["revision"] == repo.head.commit.hexsha
    assert calls["cloudformation.DescribeStacks"] == 4
    assert calls["sts.AssumeRole"] == 3
    assert {s["StackName"] for s in stacks_in(DEV).values()} == set()


def test_plan_of_one_stage_shows_its_own_values(repo, capsys) -> None:
    promotion(capsys, repo)
    code, out = run(capsys, repo, "plan", "--stage", "dev", "--output", "json")
    assert code == 0
    (dev,) = json.loads(out)["stages"]
    assert (dev["stage"], dev["account_id"], dev["approval"]) == ("dev", DEV, "automatic")

    example = staged_example()
    example["pipelines"][0]["inference_instance"]["dev"] = "ml.m5.large"
    commit_config(repo, example, "Bigger dev endpoint")
    code, out = run(capsys, repo, "plan", "--stage", "dev", "--output", "json")
    assert code == 2
    (change,) = json.loads(out)["stages"][0]["plan"]["changes"][:1]
    assert change["name"] == REALTIME and change["action"] == "update"
    instance = {"key": "InferenceInstance", "old": "ml.t2.medium", "new": "ml.m5.large"}
    assert instance | {"replaces": ["EndpointConfig"]} in change["parameters"]


def test_an_unknown_stage_and_a_stage_without_stages_are_errors(repo, capsys, config_repo) -> None:
    code, out = run(capsys, repo, "plan", "--stage", "qa")
    assert code == 1
    assert "--stage qa: no such stage; expected one of orchestrator, dev, staging, prod" in out
    code, out = run(capsys, config_repo, "plan", "--stage", "dev")
    assert code == 1
    assert "--stage dev: the config has no settings.stages" in out


# Promoting through the gates


def test_a_commit_goes_to_dev_then_waits_at_staging_for_its_approval(repo, capsys) -> None:
    commit = repo.head.commit.hexsha
    done = promotion(capsys, repo)

    assert done["exit"] == 0
    assert (done["orchestrator"]["outcome"], done["dev"]["outcome"]) == ("applied", "applied")
    assert done["staging"]["gate"] == "waiting"
    assert done["staging"]["gate_reason"] == (
        f"waits for approval: mlops-controller approve --stage staging --commit {commit}"
    )
    assert "prod" not in done
    assert set(stacks_in(ORCHESTRATOR)) == {BUILDER}
    assert set(stacks_in(DEV)) == {
        REALTIME,
        CUSTOM,
        "mlops-pipeline-linearlearner-byompipelinebatchbuiltin",
        "mlops-pipeline-churnxgb-byomdataqualitymonitor",
    }
    assert parameter(stacks_in(DEV)[REALTIME], "InferenceInstance") == "ml.t2.medium"
    assert stacks_in(STAGING) == {} and stacks_in(PROD) == {}


def test_approving_each_stage_promotes_the_commit_through_every_account(repo, capsys) -> None:
    assert promotion(capsys, repo)["staging"]["gate"] == "waiting"
    out = approve(capsys, repo, "staging")
    assert f"Approved {repo.head.commit.hexsha} for staging as arn:aws:sts::" in out

    done = promotion(capsys, repo)
    assert done["staging"]["outcome"] == "applied"
    # Shown by the user id the record's key proves, not by a claim in its body.
    assert done["staging"]["gate_reason"].startswith("approved by AKIAIOSFODNN7EXAMPLE at ")
    assert done["prod"]["gate"] == "waiting" and stacks_in(PROD) == {}

    approve(capsys, repo, "prod")
    done = promotion(capsys, repo)

    assert [done[s]["outcome"] for s in ("orchestrator", "dev", "staging", "prod")] == [
        "applied"
    ] * 4
    expected = {"dev": "ml.t2.medium", "staging": "ml.m5.large", "prod": "ml.m5.xlarge"}
    for stage, account in ACCOUNTS.items():
        realtime = stacks_in(account)[REALTIME]
        assert parameter(realtime, "InferenceInstance") == expected[stage]
        assert realtime["StackStatus"] == "CREATE_COMPLETE"
    again = promotion(capsys, repo)
    assert again["prod"]["apply"]["results"] and all(
        r["outcome"] in ("unchanged", "waiting") for r in again["prod"]["apply"]["results"]
    )


def test_a_newer_commit_never_inherits_an_older_commits_approval(repo, capsys, example) -> None:
    promotion(capsys, repo)
    approve(capsys, repo, "staging")
    example["pipelines"][0]["inference_instance"]["staging"] = "ml.m5.2xlarge"
    newer = commit_config(repo, example, "Bigger staging endpoint")

    done = promotion(capsys, repo)

    assert done["dev"]["outcome"] == "applied"
    assert done["staging"]["gate"] == "waiting"
    assert newer in done["staging"]["gate_reason"]
    assert stacks_in(STAGING) == {}


def test_a_rejection_stops_the_promotion_and_is_final(repo, capsys) -> None:
    promotion(capsys, repo)
    approve(capsys, repo, "staging", "--reject", "--note", "wrong model")

    done = promotion(capsys, repo)
    assert done["exit"] == 0
    assert done["staging"]["gate"] == "rejected"
    assert "by AKIAIOSFODNN7EXAMPLE" in done["staging"]["gate_reason"]
    assert "(wrong model); a rejection is final" in done["staging"]["gate_reason"]
    assert stacks_in(STAGING) == {}

    code, out = run(capsys, repo, "approve", "--stage", "staging")
    assert code == 1
    assert "was rejected for staging by AKIAIOSFODNN7EXAMPLE" in out


def test_a_failure_in_staging_stops_prod_even_when_prod_is_approved(
    repo, capsys, monkeypatch
) -> None:
    promotion(capsys, repo)
    commit = repo.head.commit.hexsha
    approve(capsys, repo, "staging")
    approve(capsys, repo, "prod", "--commit", commit[:10])

    with monkeypatch.context() as patch:
        fail_creates_in(patch, STAGING, "Endpoint capacity unavailable in staging")
        done = promotion(capsys, repo)

    assert done["exit"] == 1
    assert done["staging"]["outcome"] == "failed"
    assert "Endpoint capacity unavailable in staging" in done["staging"]["message"]
    assert "prod" not in done
    assert stacks_in(PROD) == {}


def test_a_stage_whose_role_cannot_be_assumed_blocks_it_and_the_later_ones(
    repo, capsys, monkeypatch
) -> None:
    refuse_role(monkeypatch, DEV)

    done = promotion(capsys, repo)

    assert done["exit"] == 1
    assert done["orchestrator"]["outcome"] == "applied"
    assert done["dev"]["outcome"] == "unreachable"
    assert done["dev"]["message"].startswith(
        "stage dev: cannot assume arn:aws:iam::111111111111:role/mlops-controller-stage: "
        "AccessDenied"
    )
    assert "staging" not in done
    code, out = run(capsys, repo, "plan", "--output", "json")
    assert code == 1
    stages = {s["stage"]: s for s in json.loads(out)["stages"]}
    assert stages["dev"]["plan"] is None and "AccessDenied" in stages["dev"]["problem"]
    assert stages["prod"]["plan"] is not None


def test_one_stage_alone_needs_the_stage_before_it_to_have_applied_that_commit(
    repo, capsys
) -> None:
    done = promotion(capsys, repo, "--stage", "dev")
    assert done["exit"] == 1
    assert done["dev"]["gate_reason"].startswith("waits until orchestrator has applied")
    assert stacks_in(DEV) == {}

    assert promotion(capsys, repo, "--stage", "orchestrator")["exit"] == 0
    assert promotion(capsys, repo, "--stage", "dev")["dev"]["outcome"] == "applied"
    approve(capsys, repo, "staging")
    done = promotion(capsys, repo, "--stage", "staging")
    assert done["exit"] == 0 and done["staging"]["outcome"] == "applied"
    assert set(done) == {"exit", "staging"}


def test_a_stage_in_the_orchestrators_own_account_and_region_is_refused(
    aws, tmp_path, capsys
) -> None:
    example = staged_example()
    stage = example["settings"]["stages"][0]
    stage["account_id"] = ORCHESTRATOR
    stage["role_arn"] = f"arn:aws:iam::{ORCHESTRATOR}:role/mlops-controller-stage"
    seed_orchestrator(example, [ORCHESTRATOR, STAGING, PROD])
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    commit_config(repo, example, "dev in the orchestrator account")

    done = promotion(capsys, repo)

    assert done["exit"] == 1
    assert done["dev"]["outcome"] == "refused"
    assert "deploys to the orchestrator's own account 123456789012" in done["dev"]["message"]
    assert set(stacks_in(ORCHESTRATOR)) == {BUILDER}


def test_roles_are_assumed_with_a_session_naming_the_commit_and_the_external_id(
    aws, tmp_path, capsys, example
) -> None:
    from moto.sts.models import sts_backends

    example["settings"]["stages"][0]["external_id"] = "mlops-dev-7f3a"
    seed_orchestrator(example)
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    commit = commit_config(repo, example, "external id")

    assert run(capsys, repo, "plan", "--stage", "dev")[0] == 2

    (assumed,) = sts_backends[DEV]["aws"].assumed_roles
    assert assumed.session_name == f"mlops-controller@{commit[:12]}"
    assert assumed.external_id == "mlops-dev-7f3a"
    assert assumed.role_arn == "arn:aws:iam::111111111111:role/mlops-controller-stage"


# What is recorded


def test_history_lists_promotions_and_approvals_and_status_every_stage(repo, capsys) -> None:
    promotion(capsys, repo)
    approve(capsys, repo, "staging", "--note", "looks good")
    promotion(capsys, repo)
    promotion(capsys, repo)  # nothing new: no new promotion record

    code, out = run(capsys, repo, "history", "--output", "json")
    assert code == 0
    recorded = json.loads(out)
    assert [(p["stage"], p["outcome"]) for p in recorded["promotions"]] == [
        ("staging", "applied"),
        ("dev", "applied"),
        ("orchestrator", "applied"),
    ]
    (decision,) = recorded["approvals"]
    assert (decision["stage"], decision["decision"], decision["note"]) == (
        "staging",
        "approved",
        "looks good",
    )
    # Only what the key proves: the body's ARN was written by its author, so it is not shown.
    assert (decision["user_id"], decision["arn"]) == ("AKIAIOSFODNN7EXAMPLE", "")
    assert decision["commit"] == repo.head.commit.hexsha

    code, out = run(capsys, repo, "history", "--stage", "dev", "--output", "json")
    dev = json.loads(out)
    assert {p["stage"] for p in dev["promotions"]} == {"dev"}
    assert len(dev["applies"]) == 3
    assert dev["applies"][0]["source"].endswith("(stage dev)")

    code, out = run(capsys, repo, "status", "--output", "json")
    assert code == 0
    status = {s["stage"]: s for s in json.loads(out)["stages"]}
    assert len(status["dev"]["pipelines"]) == 4 and status["prod"]["pipelines"] == []
    assert status["staging"]["last_promoted"]["commit"] == repo.head.commit.hexsha
    assert status["prod"]["last_promoted"] is None


def test_approve_without_a_commit_takes_the_one_waiting_there(repo, capsys) -> None:
    code, out = run(capsys, repo, "approve", "--stage", "staging")
    assert code == 1
    assert "nothing waits at staging: dev has applied no commit completely yet" in out
    promotion(capsys, repo)
    assert repo.head.commit.hexsha in approve(capsys, repo, "staging")
    code, out = run(capsys, repo, "approve", "--stage", "dev")
    assert code == 1
    assert 'stage dev needs no approval: only stages with "approval": "manual" do' in out


def test_stage_records_live_next_to_the_ledger(repo, capsys) -> None:
    import boto3

    promotion(capsys, repo)
    approve(capsys, repo, "staging")
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="mlops-assets-example", Prefix="mlops-controller/")[
            "Contents"
        ]
    ]
    commit = repo.head.commit.hexsha
    prefixes = Counter("/".join(k.split("/")[:3]) for k in keys)
    assert set(prefixes) == {
        "mlops-controller/mlops-controller/ledger",
        "mlops-controller/mlops-controller/stages",
        "mlops-controller/mlops-controller/promotions",
        "mlops-controller/mlops-controller/approvals",
        "mlops-controller/mlops-controller/policy.json",
    }
    assert any(
        k.startswith(f"mlops-controller/mlops-controller/promotions/dev/{commit}/")
        and k.endswith("-applied.json")
        for k in keys
    )
    assert any(k.startswith("mlops-controller/mlops-controller/stages/dev/ledger/") for k in keys)
    (approval,) = [k for k in keys if "/approvals/" in k]
    assert approval.split("/")[3:6] == ["staging", commit, "AKIAIOSFODNN7EXAMPLE"]
    assert approval.endswith("-approved.json")


def test_a_single_account_config_keeps_its_plans_keys_and_gains_the_chains(
    config_repo, capsys, aws, example_config
) -> None:
    seed_account(example_config)
    code, out = run(capsys, config_repo, "plan", "--output", "json")
    assert code == 2
    plan = json.loads(out)
    version_1 = {"revision", "refusal", "summary", "changes", "unchanged"}
    assert set(plan) == version_1 | {"version", "policy_changes", "stages"}
    assert plan["version"] == 2
    (only,) = plan["stages"]
    assert only["stage"] == "orchestrator" and only["plan"]["changes"] == plan["changes"]


def test_watch_continues_the_promotion_each_round_once_approved(repo, capsys) -> None:
    from controller.gitops import watch

    options = watch.WatchOptions(str(repo.working_dir), environ={})
    tick = watch.poll(watch.open_source(options), options, Console(file=io.StringIO()))
    assert tick.ok and tick.applied
    assert tick.message.startswith(
        f"promoted {repo.head.commit.hexsha[:12]} through orchestrator, dev"
    )
    assert "staging waits for approval" in tick.message
    approve(capsys, repo, "staging")

    tick = watch.poll(watch.open_source(options), options, Console(file=io.StringIO()))

    assert "through orchestrator, dev, staging;" in tick.message
    assert set(stacks_in(STAGING)) == set(stacks_in(DEV))


def test_the_stages_demo_tells_the_whole_story_on_one_emulator(aws, tmp_path) -> None:
    from controller.cli import demo_stages

    output = io.StringIO()

    assert demo_stages.story(Console(file=output, width=200), tmp_path) is True

    text = output.getvalue()
    assert "staging waits for approval: mlops-controller approve --stage staging" in text
    assert "prod waits for approval" in text
    assert "stopped at staging: failed:" in text
    assert set(stacks_in(PROD)) == set(stacks_in(DEV))
    realtime = stacks_in(PROD)[REALTIME]
    assert parameter(realtime, "ModelArtifactKey") == "linearlearner/model.tar.gz"
    assert (
        parameter(stacks_in(DEV)[REALTIME], "ModelArtifactKey") == "linearlearner/model-v2.tar.gz"
    )


def test_render_writes_each_steps_stacks_to_a_directory_of_its_own(tmp_path, capsys) -> None:
    from tests.multi_account import STAGED

    code = main(["render", str(STAGED), "--out", str(tmp_path / "out")])

    assert code == 0, capsys.readouterr().err
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "orchestrator",
        "dev",
        "staging",
        "prod",
    }
    assert {p.name for p in (tmp_path / "out" / "orchestrator").glob("*.yaml")} == {
        f"{BUILDER}.yaml"
    }
    prod = json.loads((tmp_path / "out" / "prod" / f"{REALTIME}.parameters.json").read_text())
    assert {"ParameterKey": "InferenceInstance", "ParameterValue": "ml.m5.xlarge"} in prod


def test_a_staged_config_is_promoted_from_git_never_from_a_file(aws, tmp_path, capsys) -> None:
    from tests.multi_account import STAGED

    seed_orchestrator(staged_example())
    code = main(["apply", "--auto-approve", "--config", str(STAGED)])
    err = capsys.readouterr().err
    assert code == 1
    assert "a staged config is promoted from a commit: read it from git (--repo)" in err
    assert stacks_in(ORCHESTRATOR) == {} and stacks_in(DEV) == {}


def test_approve_names_a_commit_it_cannot_find_and_grants_needs_stages(
    repo, capsys, workdir
) -> None:
    code, out = run(capsys, repo, "approve", "--stage", "staging", "--commit", "not-a-commit")
    assert code == 1
    assert "error: --commit not-a-commit: not a commit of the repository" in out
    assert main(["grants", "--config", str(workdir / "mlops-config.json")]) == 1
    assert "error: the config has no settings.stages" in capsys.readouterr().err


def test_a_kms_encrypted_assets_bucket_is_promoted_with_its_key_granted_in_every_account(
    repo, capsys, monkeypatch
) -> None:
    """The bootstrap's setup: the bucket encrypted with the orchestrator's key, the key policy
    naming the stage accounts, and the key given as settings.assets_kms_key_arn. Every stage's
    stacks that read the bucket get the key as a parameter, and the roles CloudFormation
    created in each stage account may decrypt with it, through S3."""
    from tests import iam

    kms, s3 = boto3.client("kms", region_name="us-east-1"), boto3.client("s3", "us-east-1")
    key = kms.create_key(Description="assets")["KeyMetadata"]["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append(grants.key_statement(list(ACCOUNTS.values()), "us-east-1"))
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    s3.put_bucket_encryption(
        Bucket="mlops-assets-example",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]
        },
    )
    _, out = run(capsys, repo, "plan", "--stage", "dev", "--output", "json")
    (dev,) = json.loads(out)["stages"]
    assert {c["action"] for c in dev["plan"]["changes"]} == {"blocked"}

    monkeypatch.setenv("MLOPS_ASSETS_KMS_KEY_ARN", key)
    assert promotion(capsys, repo)["dev"]["outcome"] == "applied"
    for stage in ("staging", "prod"):
        approve(capsys, repo, stage)
        assert promotion(capsys, repo)[stage]["outcome"] == "applied"

    through_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    for account in (ORCHESTRATOR, *ACCOUNTS.values()):
        stacks = stacks_in(account)
        assert stacks and all(parameter(s, "AssetsKmsKeyArn") == key for s in stacks.values())
        roles = account_client(account, "iam").list_roles()["Roles"]
        readers = [r["RoleName"] for r in roles if "SageMakerRole" in r["RoleName"]]
        readers += [r["RoleName"] for r in roles if "PipelineRole" in r["RoleName"]]
        assert len(readers) == len(stacks)
        for name in readers:
            statements = [
                statement
                for policy in account_client(account, "iam").list_role_policies(RoleName=name)[
                    "PolicyNames"
                ]
                for statement in _statements(account, name, policy)
            ]
            assert iam.Policy.of(statements).allows("kms:Decrypt", key, through_s3), name


def _statements(account: str, role: str, policy: str) -> list[dict[str, Any]]:
    client = account_client(account, "iam")
    document = client.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto answers with the policy's Python repr
        document = ast.literal_eval(document)
    loaded: dict[str, Any] = document
    statements = loaded["Statement"]
    return statements if isinstance(statements, list) else [statements]
