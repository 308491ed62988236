"""`mlops-controller ci` with stages, as CodeBuild runs it: a push promotes as far as the gates
allow, the hourly run continues once an approval arrives, a pull request gets every stage's
plan in one comment (botocore's Stubber stands in for CodeCommit's comments, as in test_ci)."""

from __future__ import annotations

import copy
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import git
import pytest
from botocore.stub import ANY, Stubber
from rich.console import Console

from controller.aws.codecommit import request_token
from controller.aws.session import Aws
from controller.cli.main import main
from controller.gitops import ci
from tests.conftest import commit_config, repo_with
from tests.multi_account import (
    DEV,
    PROD,
    STAGING,
    fail_creates_in,
    seed_orchestrator,
    stacks_in,
    staged_example,
)
from tests.test_ci import PR_ID, REPOSITORY, comments_page, pr_context, push_env


@pytest.fixture
def example() -> dict[str, Any]:
    return staged_example()


@pytest.fixture
def repo(aws: str, tmp_path: Path, example: dict[str, Any]) -> git.Repo:
    seed_orchestrator(example)
    return repo_with(tmp_path / "staged-repo", example, "Three stages")


def build(repo: git.Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    repo.git.checkout(os.environ["CODEBUILD_RESOLVED_SOURCE_VERSION"])
    code = main(["ci", "--repo", str(repo.working_dir), "--artifacts", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    return code, out + err


def approve(repo: git.Repo, stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approve", "--stage", stage, "--repo", str(repo.working_dir)]) == 0
    capsys.readouterr()


def applied(tmp_path: Path) -> dict[str, dict[str, Any]]:
    runs = json.loads((tmp_path / "out" / "apply.json").read_text())["stages"]
    return {r["stage"]: r for r in runs}


def test_a_push_promotes_to_dev_and_the_hourly_run_continues_once_approved(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    commit = repo.head.commit.hexsha
    push_env(monkeypatch, commit)

    code, out = build(repo, tmp_path, capsys)

    assert code == 0, out
    assert (
        f"staging waits for approval: mlops-controller approve --stage staging --commit {commit}"
        in out
    )
    assert [applied(tmp_path)[s]["outcome"] for s in ("orchestrator", "dev")] == ["applied"] * 2
    assert applied(tmp_path)["staging"]["gate"] == "waiting"
    assert stacks_in(DEV) and not stacks_in(STAGING)
    suites = ET.parse(tmp_path / "out" / "report.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "mlops-controller apply [orchestrator]",
        "mlops-controller apply [dev]",
    ]
    assert (tmp_path / "out" / "dev" / "plan.md").exists()

    approve(repo, "staging", capsys)
    monkeypatch.setenv("MLOPS_EVENT", "schedule")
    code, out = build(repo, tmp_path, capsys)

    assert code == 0, out
    assert applied(tmp_path)["staging"]["outcome"] == "applied"
    assert applied(tmp_path)["prod"]["gate"] == "waiting"
    assert stacks_in(STAGING) and not stacks_in(PROD)


def test_a_late_build_of_an_older_commit_promotes_nothing(
    repo, tmp_path, monkeypatch, capsys, example
) -> None:
    old = repo.head.commit.hexsha
    example["pipelines"][0]["inference_instance"]["dev"] = "ml.m5.large"
    new = commit_config(repo, example, "Bigger dev endpoint")
    push_env(monkeypatch, new)
    assert build(repo, tmp_path, capsys)[0] == 0

    push_env(monkeypatch, old)
    code, out = build(repo, tmp_path, capsys)

    assert code == 0
    assert f"Nothing done: commit {old[:12]} is an ancestor of {new[:12]}" in out


def test_a_failed_stage_fails_the_build_and_its_cases_fail(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    push_env(monkeypatch, repo.head.commit.hexsha)
    fail_creates_in(monkeypatch, DEV, "Endpoint capacity unavailable")

    code, out = build(repo, tmp_path, capsys)

    assert code == 1
    assert "stopped at dev: failed" in out
    suites = ET.parse(tmp_path / "out" / "report.xml").getroot().findall("testsuite")
    dev = next(s for s in suites if s.get("name", "").endswith("[dev]"))
    assert int(dev.get("failures", "0")) >= 1
    assert "staging" not in applied(tmp_path)


def test_a_push_to_another_branch_plans_every_stage_and_applies_nothing(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    push_env(monkeypatch, repo.head.commit.hexsha, branch="feature/x")

    code, out = build(repo, tmp_path, capsys)

    assert code == 0, out
    assert "planning only" in out
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert [s["stage"] for s in plan["stages"]] == ["orchestrator", "dev", "staging", "prod"]
    assert not stacks_in(DEV)


def pull_request_comment(
    repo: git.Repo, tmp_path: Path, example: dict[str, Any]
) -> tuple[int, str]:
    base = repo.head.commit.hexsha
    repo.git.checkout("-b", "feature")
    head = commit_config(repo, example, "Change")
    aws = Aws(region="us-east-1")
    sent: list[dict[str, Any]] = []
    codecommit = aws.client("codecommit")
    codecommit.meta.events.register(
        "provide-client-params.codecommit.PostCommentForPullRequest",
        lambda params, **_: sent.append(dict(params)),
    )
    stub = Stubber(codecommit)
    stub.add_response("get_comments_for_pull_request", comments_page())
    stub.add_response(
        "post_comment_for_pull_request",
        {"comment": {"commentId": "c-1"}},
        {
            "pullRequestId": PR_ID,
            "repositoryName": REPOSITORY,
            "beforeCommitId": base,
            "afterCommitId": head,
            "content": ANY,
            "clientRequestToken": request_token(PR_ID, head),
        },
    )
    options = ci.CiOptions(Path(repo.working_dir), artifacts=tmp_path / "out")
    with stub:
        code = ci.run(pr_context(base, head), options, Console(file=io.StringIO()), aws=aws)
    stub.assert_no_pending_responses()
    return code, sent[0]["content"]


def test_a_pull_request_is_commented_with_the_plan_of_every_stage(repo, tmp_path, example) -> None:
    example["pipelines"][0]["inference_instance"]["prod"] = "ml.m5.4xlarge"

    code, content = pull_request_comment(repo, tmp_path, example)

    assert code == 0
    assert content.startswith(ci.MARKER)
    assert "**Promotion order:** orchestrator -> dev -> staging (approval) -> prod (approval)" in (
        content
    )
    for stage in ("dev", "staging", "prod"):
        assert f"(stage {stage})`" in content
    assert any(
        line.startswith("+") and '"prod": "ml.m5.4xlarge"' in line for line in content.splitlines()
    )
    assert len(content) <= ci.MAX_COMMENT
    assert not stacks_in(DEV)


def test_every_stages_plan_fits_in_one_comment_however_many_pipelines(
    repo, tmp_path, example
) -> None:
    template = example["pipelines"][0]
    example["pipelines"] = [example["pipelines"][2]]
    for index in range(60):
        pipeline = copy.deepcopy(template)
        pipeline["model_name"] = f"model-with-a-rather-long-name-{index:03d}"
        pipeline["endpoint_name"] = {
            stage: f"endpoint-{stage}-{index:03d}" for stage in ("dev", "staging", "prod")
        }
        example["pipelines"].append(pipeline)

    code, content = pull_request_comment(repo, tmp_path, example)

    assert code == 0
    assert len(content) <= ci.MAX_COMMENT
    for stage in ("dev", "staging", "prod"):
        assert f"(stage {stage})`" in content
    assert content.count("more row(s) not shown") == 3
