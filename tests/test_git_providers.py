"""`ci` as CodeBuild's webhook runs it for a repository on GitHub, GitLab or Bitbucket, against a
local fake of each host's API (tests/fake_git_hosts.py): one plan comment per pull request,
edited by every later build, a commit status per build, the same spoofing protections as the
CodeCommit comment, tokens never printed, rate limits retried."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest

from controller.cli.main import main
from controller.gitops import ci
from controller.gitops.providers import STATUS_CONTEXT, NewPullRequest, hosts
from tests import fake_git_hosts
from tests.conftest import commit_config, repo_with
from tests.gitops import seed_account, small_config, stack_names
from tests.multi_account import seed_orchestrator, staged_example

TOKEN = "glpat-" + "S3cr3tT0ken" * 3
REPOSITORY = "acme/mlops-config"
PR = "7"


@dataclass(frozen=True)
class Host:
    provider: str
    token_variable: str
    api_variable: str
    api_path: str
    clone_url: str
    comments_key: str
    status_context_key: str

    def api(self, fake: fake_git_hosts.FakeHosts) -> str:
        return f"{fake.base}{self.api_path}"


GITHUB = Host(
    "github",
    "GITHUB_TOKEN",
    "GITHUB_API_URL",
    "/github",
    f"https://github.com/{REPOSITORY}.git",
    f"github:{REPOSITORY}#{PR}",
    "context",
)
GITLAB = Host(
    "gitlab",
    "GITLAB_TOKEN",
    "GITLAB_API_URL",
    "/gitlab/api/v4",
    f"https://gitlab.com/{REPOSITORY}.git",
    f"gitlab:{REPOSITORY}!{PR}",
    "name",
)
BITBUCKET = Host(
    "bitbucket",
    "BITBUCKET_TOKEN",
    "BITBUCKET_API_URL",
    "/bitbucket/2.0",
    f"https://bitbucket.org/{REPOSITORY}.git",
    f"bitbucket:{REPOSITORY}#{PR}",
    "name",
)
HOSTS = [GITHUB, GITLAB, BITBUCKET]


@pytest.fixture
def fake() -> Iterator[fake_git_hosts.FakeHosts]:
    yield from fake_git_hosts.serve(TOKEN)


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def feature(repo: git.Repo, example_config: dict[str, Any], instance: str) -> str:
    """Commit a config that scales the endpoint on branch `feature` (made from main if new)."""
    if "feature" not in [h.name for h in repo.heads]:
        repo.git.checkout("main")
        repo.git.checkout("-b", "feature")
    else:
        repo.git.checkout("feature")
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = instance
    return commit_config(repo, bigger, f"Scale the endpoint to {instance}")


def webhook_env(
    monkeypatch: pytest.MonkeyPatch,
    host: Host,
    fake: fake_git_hosts.FakeHosts,
    commit: str,
    event: str = "PULL_REQUEST_CREATED",
) -> None:
    """What CodeBuild sets for a webhook build, and what the bootstrap and operator set."""
    pull = event.startswith("PULL_REQUEST")
    values = {
        "CODEBUILD_WEBHOOK_EVENT": event,
        "CODEBUILD_WEBHOOK_TRIGGER": f"pr/{PR}" if pull else "branch/main",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature" if pull else "refs/heads/main",
        "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main" if pull else "",
        "CODEBUILD_SOURCE_REPO_URL": host.clone_url,
        "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        "CODEBUILD_BUILD_URL": "https://console.aws.example/codebuild/build/1",
        "MLOPS_GIT_PROVIDER": host.provider,
        "MLOPS_GIT_REPOSITORY": REPOSITORY,
        host.token_variable: TOKEN,
        host.api_variable: host.api(fake),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def run_ci(repo: git.Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    repo.git.checkout(os.environ["CODEBUILD_RESOLVED_SOURCE_VERSION"])
    code = main(["ci", "--repo", str(repo.working_dir), "--artifacts", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.provider)
def test_a_pull_request_gets_one_comment_edited_by_its_update_and_a_status_per_build(
    host: Host, repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    first = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, host, fake, first)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    (comment,) = fake.comments[host.comments_key]
    assert comment.body.startswith(ci.MARKER)
    assert "ml.m5.xlarge" in comment.body and "1 to create" in comment.body
    assert '+      "inference_instance": "ml.m5.xlarge",' in comment.body  # the config diff
    (status,) = fake.statuses_of(host.provider, first)
    assert status[host.status_context_key] == STATUS_CONTEXT
    assert status["state"] in ("success", "SUCCESSFUL")
    assert stack_names() == set()  # a pull request never applies

    second = feature(repo, example_config, "ml.m5.2xlarge")
    webhook_env(monkeypatch, host, fake, second, "PULL_REQUEST_UPDATED")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    (edited,) = fake.comments[host.comments_key]
    assert edited.id == comment.id
    assert "ml.m5.2xlarge" in edited.body and 'ml.m5.xlarge"' not in edited.body.split("```")[0]
    assert len(fake.statuses_of(host.provider, second)) == 1
    assert len(fake.statuses) == 2
    assert TOKEN not in out
    assert stack_names() == set()


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.provider)
def test_a_marker_comment_by_someone_else_or_a_reply_is_never_taken_as_ours(
    host: Host, repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    spoof = fake.add_comment(host.comments_key, f"{ci.MARKER}\nLGTM, merge away", "mallory")
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, host, fake, commit)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    theirs, ours = fake.comments[host.comments_key]
    assert theirs.body == spoof.body
    assert ours.author == fake_git_hosts.BOT and "ml.m5.xlarge" in ours.body


def test_a_reply_holding_the_marker_is_not_edited_on_bitbucket(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    """Bitbucket's comments are threads: a reply by our own token quoting the marker is not
    the plan comment."""
    quoted = fake.add_comment(BITBUCKET.comments_key, f"> {ci.MARKER}", "mlops-bot", reply=True)
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, BITBUCKET, fake, commit)

    assert run_ci(repo, tmp_path, capsys)[0] == 0
    reply, plan = fake.comments[BITBUCKET.comments_key]
    assert reply.body == quoted.body and plan.body.startswith(ci.MARKER)


def test_a_staged_config_gets_a_status_per_stage(aws, fake, tmp_path, monkeypatch, capsys) -> None:
    example = staged_example()
    seed_orchestrator(example)
    repo = repo_with(tmp_path / "staged-repo", example, "Three stages")
    repo.git.checkout("-b", "feature")
    example["pipelines"][0]["inference_instance"]["prod"] = "ml.m5.4xlarge"
    commit = commit_config(repo, example, "Scale prod")
    webhook_env(monkeypatch, GITHUB, fake, commit)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    contexts = [s["context"] for s in fake.statuses_of("github", commit)]
    steps = ("orchestrator", "dev", "staging", "prod")
    assert contexts == [STATUS_CONTEXT, *(f"{STATUS_CONTEXT}/{step}" for step in steps)]
    (comment,) = fake.comments[GITHUB.comments_key]
    assert "(stage prod)" in comment.body


def test_an_invalid_config_fails_the_status_and_says_so_in_the_comment(
    repo, fake, tmp_path, monkeypatch, capsys
) -> None:
    repo.git.checkout("-b", "feature")
    path = Path(repo.working_dir) / "mlops-config.json"
    path.write_text('{"settings": {}}')
    repo.index.add([str(path)])
    commit = repo.index.commit("Break the config").hexsha
    webhook_env(monkeypatch, GITLAB, fake, commit)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 1, out
    (comment,) = fake.comments[GITLAB.comments_key]
    assert "is invalid" in comment.body
    (status,) = fake.statuses_of("gitlab", commit)
    assert status["state"] == "failed"


def test_a_push_to_the_deployment_branch_applies_without_feedback(
    repo, fake, tmp_path, monkeypatch, capsys
) -> None:
    commit = repo.head.commit.hexsha
    webhook_env(monkeypatch, GITHUB, fake, commit, "PUSH")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert stack_names() != set()
    assert fake.calls == []


def test_a_webhook_push_to_another_branch_only_plans(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    """The deployment branch is the environment's, whatever the webhook or the file says."""
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, GITHUB, fake, commit, "PUSH")
    monkeypatch.setenv("CODEBUILD_WEBHOOK_TRIGGER", "branch/feature")
    monkeypatch.setenv("CODEBUILD_WEBHOOK_HEAD_REF", "refs/heads/feature")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert "planning only" in out
    assert stack_names() == set()


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.provider)
def test_rate_limited_calls_are_retried(
    host: Host, repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, host, fake, commit)
    fake.limit_next(2, 429, {"Retry-After": "0"})

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert [c[2] for c in fake.calls[:2]] == [429, 429]
    assert len(fake.comments[host.comments_key]) == 1
    assert len(fake.statuses) == 1


def test_a_github_403_rate_limit_is_retried(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, GITHUB, fake, commit)
    fake.limit_next(1, 403, {"Retry-After": "0"}, "You have exceeded a secondary rate limit")

    assert run_ci(repo, tmp_path, capsys)[0] == 0
    assert len(fake.comments[GITHUB.comments_key]) == 1


def test_a_host_that_keeps_limiting_fails_the_build_without_waiting_long(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, BITBUCKET, fake, commit)
    fake.limit_next(50, 429, {"Retry-After": "3600"})

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 1, out
    assert "rate limited" in out and "3600" in out
    assert len(fake.calls) == 1  # an hour's wait is not waited for
    assert TOKEN not in out


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.provider)
def test_a_wrong_token_fails_the_build_and_is_never_printed(
    host: Host, repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, host, fake, commit)
    wrong = "glpat-WrongTokenWrongToken"
    monkeypatch.setenv(host.token_variable, wrong)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 1, out
    assert "401" in out
    assert wrong not in out and TOKEN not in out


def test_the_token_comes_from_the_secret_the_bootstrap_names(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="git-token", SecretString=TOKEN)["ARN"]
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, GITLAB, fake, commit)
    monkeypatch.delenv("GITLAB_TOKEN")
    monkeypatch.setenv(hosts.SECRET_VARIABLE, arn)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert len(fake.comments[GITLAB.comments_key]) == 1
    assert TOKEN not in out


def test_without_a_token_the_build_says_where_to_put_one(
    repo, fake, tmp_path, monkeypatch, capsys, example_config
) -> None:
    commit = feature(repo, example_config, "ml.m5.xlarge")
    webhook_env(monkeypatch, GITHUB, fake, commit)
    monkeypatch.delenv("GITHUB_TOKEN")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 1
    assert "set GITHUB_TOKEN" in out and "GitTokenSecretArn" in out


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.provider)
def test_a_pull_request_opens_on_the_same_host(host: Host, fake, aws, monkeypatch) -> None:
    from controller.aws.session import Aws

    environ = {host.token_variable: TOKEN, host.api_variable: host.api(fake)}
    target = hosts.Target(hosts.provider_of({"MLOPS_GIT_PROVIDER": host.provider}), REPOSITORY)
    opener = hosts.opener_for(target, environ, Aws(region="us-east-1"))

    opened = opener.open_pull_request(
        NewPullRequest("bump/churn", "main", "Retrain churn", "New model")
    )

    assert opened.number == "1"
    assert REPOSITORY in opened.url
    (request,) = fake.opened
    assert "bump/churn" in str(request) and "Retrain churn" in str(request)


def test_on_codecommit_a_pull_request_opens_through_its_api(aws) -> None:
    """moto has no CodeCommit pull requests: botocore's Stubber checks the request's shape."""
    from botocore.stub import Stubber

    from controller.aws.session import Aws
    from controller.core.render import short_hash

    session = Aws(region="us-east-1")
    target = hosts.Target(hosts.provider_of({}), "mlops-config")
    opener = hosts.opener_for(target, {}, session)
    stub = Stubber(session.client("codecommit"))
    stub.add_response(
        "create_pull_request",
        {"pullRequest": {"pullRequestId": "3", "title": "Retrain churn"}},
        {
            "title": "Retrain churn",
            "description": "New model",
            "targets": [
                {
                    "repositoryName": "mlops-config",
                    "sourceReference": "bump/churn",
                    "destinationReference": "main",
                }
            ],
            "clientRequestToken": short_hash("mlops-config", "bump/churn", "main", length=32),
        },
    )

    with stub:
        opened = opener.open_pull_request(
            NewPullRequest("bump/churn", "main", "Retrain churn", "New model")
        )

    assert opened.number == "3"
    assert opened.url.endswith("/repositories/mlops-config/pull-requests/3")
