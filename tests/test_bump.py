"""`bump`: a registry approval becomes a reviewed commit pinning that version, never a deploy.

The registry is moto's (groups, versions, approval statuses); git is a real repository.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from botocore.exceptions import ClientError

from controller.core import pins
from controller.core.config import document
from controller.gitops import bump
from tests import fake_git_hosts
from tests.conftest import repo_with

EXAMPLE = Path(__file__).parent.parent / "examples" / "training-config.json"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def register(sagemaker: Any, group: str, status: str) -> str:
    found = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://mlops-assets-example/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )
    return str(found["ModelPackageArn"])


@pytest.fixture
def registry(aws: str) -> Any:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn")
    return sagemaker


def pinned_repo(tmp_path: Path, arn: str) -> git.Repo:
    config: dict[str, Any] = json.loads(EXAMPLE.read_text())
    deployed = next(p for p in config["pipelines"] if "model_package_name" in p)
    deployed["model_package_name"] = arn
    return repo_with(tmp_path / "repo", config, "pin churn")


def pinned(repo: git.Repo, ref: str) -> str:
    data = json.loads((repo.commit(ref).tree / "mlops-config.json").data_stream.read())
    return str(
        next(p for p in data["pipelines"] if "model_package_name" in p)["model_package_name"]
    )


def test_bump_pins_the_newest_approved_version_and_commits_it_on_a_branch(
    registry: Any, tmp_path: Path
) -> None:
    first = register(registry, "churn", "Approved")
    second = register(registry, "churn", "Approved")
    register(registry, "churn", "PendingManualApproval")
    repo = pinned_repo(tmp_path, first)
    head = repo.head.commit.hexsha

    result = bump.bump(repo, "mlops-config.json", bump.from_registry(registry))

    assert result.created and result.branch is not None
    assert pinned(repo, result.branch) == second
    # Nothing else changed: the diff is the one line of the pin.
    diff = repo.git.diff(head, result.branch)
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in "+++---"]
    assert changed == [
        f'-      "model_package_name": "{first}"',
        f'+      "model_package_name": "{second}"',
    ]
    # The checked-out branch and the working tree are untouched.
    assert repo.head.commit.hexsha == head and not repo.is_dirty()
    assert repo.commit(result.branch).parents[0].hexsha == head


def test_bump_never_takes_a_pending_rejected_or_older_version(
    registry: Any, tmp_path: Path
) -> None:
    older = register(registry, "churn", "Approved")
    pin = register(registry, "churn", "Approved")
    register(registry, "churn", "PendingManualApproval")
    register(registry, "churn", "Rejected")
    repo = pinned_repo(tmp_path, pin)

    result = bump.bump(repo, "mlops-config.json", bump.from_registry(registry))

    assert result.bumps == () and result.branch is None
    assert [h.name for h in repo.heads] == ["main"]
    assert older != pin


def test_a_second_run_for_the_same_approval_finds_its_branch(registry: Any, tmp_path: Path) -> None:
    first = register(registry, "churn", "Approved")
    register(registry, "churn", "Approved")
    repo = pinned_repo(tmp_path, first)
    made = bump.bump(repo, "mlops-config.json", bump.from_registry(registry))

    again = bump.bump(repo, "mlops-config.json", bump.from_registry(registry))

    assert not again.created and again.branch == made.branch and again.commit == made.commit


def test_an_unreadable_group_leaves_its_pin_and_bumps_the_others(tmp_path: Path) -> None:
    config: dict[str, Any] = json.loads(EXAMPLE.read_text())
    deployed = next(p for p in config["pipelines"] if "model_package_name" in p)
    other = copy.deepcopy(deployed)
    other["model_name"] = "fraud"
    other["model_package_name"] = deployed["model_package_name"].replace("churn/1", "fraud/4")
    config["pipelines"].append(other)
    repo = repo_with(tmp_path / "repo", config, "two pins")

    def approved(group: str) -> list[str]:
        if group.endswith("/fraud"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "List")
        return [deployed["model_package_name"].replace("churn/1", "churn/2")]

    result = bump.bump(repo, "mlops-config.json", approved)

    assert [b.to.version for b in result.bumps] == [2]
    assert result.unreadable == (
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/fraud",
    )
    assert (
        "fraud/4"
        in (repo.commit(result.branch).tree / "mlops-config.json").data_stream.read().decode()
    )


def test_replace_values_keeps_every_other_byte() -> None:
    text = '{\n  "a": [1, {"b":  "x" ,"c":"y"}],\n\t"d": "z"  \n}\n'
    edited = document.replace_values(text, {("a", 1, "b"): "new ü", ("d",): 2})
    assert edited == '{\n  "a": [1, {"b":  "new ü" ,"c":"y"}],\n\t"d": 2  \n}\n'


def test_newest_approved_compares_versions_as_numbers_within_the_group() -> None:
    base = "arn:aws:sagemaker:us-east-1:123456789012:model-package"
    pin = next(pins.pins({"pipelines": [{"model_name": "m", "model_package_name": f"{base}/g/9"}]}))
    found = pins.newest_approved(pin, [f"{base}/g/10", f"{base}/g/8", f"{base}/other/99"])
    assert found is not None and found.version == 10


def test_the_command_pushes_the_branch_for_review(registry: Any, tmp_path: Path) -> None:
    from controller.cli.main import main

    first = register(registry, "churn", "Approved")
    second = register(registry, "churn", "Approved")
    origin = pinned_repo(tmp_path, first)
    clone = git.Repo.clone_from(origin.working_dir, tmp_path / "clone")

    assert main(["bump", "--repo", str(clone.working_dir), "--push", "origin"]) == 0

    (branch,) = [h.name for h in origin.heads if h.name.startswith(bump.BRANCH_PREFIX)]
    assert pinned(origin, branch) == second
    assert pinned(origin, "main") == first  # deployment follows git, not the registry


def test_on_codecommit_the_pull_request_targets_the_deployment_branch_once_per_branch(
    aws: str,
) -> None:
    """moto has no CodeCommit pull requests: the Stubber checks the request against the
    API's input shape. The opener is the one `ci`'s host choice gives with no git host set."""
    from botocore.stub import Stubber

    from controller.aws.session import Aws
    from controller.core.render import short_hash
    from controller.gitops.providers import NewPullRequest, hosts

    session = Aws(region="us-east-1")
    target = hosts.Target(hosts.provider_of({}), "mlops-config")
    opener = hosts.opener_for(target, {}, session)
    token = short_hash("mlops-config", "mlops-bump/churn-v2-1", "main", length=32)
    with Stubber(session.client("codecommit")) as stub:
        for _ in range(2):
            stub.add_response(
                "create_pull_request",
                {"pullRequest": {"pullRequestId": "7"}},
                {
                    "title": "t",
                    "description": "d",
                    "targets": [
                        {
                            "repositoryName": "mlops-config",
                            "sourceReference": "mlops-bump/churn-v2-1",
                            "destinationReference": "main",
                        }
                    ],
                    "clientRequestToken": token,
                },
            )
        request = NewPullRequest("mlops-bump/churn-v2-1", "main", "t", "d")
        assert opener.open_pull_request(request).number == "7"
        assert opener.open_pull_request(request).number == "7"
        stub.assert_no_pending_responses()


GITHUB_TOKEN = "ghp_" + "B0mpT0ken" * 4
REPOSITORY = "acme/mlops-config"


@pytest.fixture
def github() -> Iterator[fake_git_hosts.FakeHosts]:
    yield from fake_git_hosts.serve(GITHUB_TOKEN)


@pytest.fixture
def on_github(
    registry: Any, tmp_path: Path, github: fake_git_hosts.FakeHosts, monkeypatch: Any
) -> Iterator[tuple[fake_git_hosts.GitServer, git.Repo, git.Repo, str, str]]:
    """The config repository on "GitHub": a bare repository served over HTTP with the token's
    credentials, the build's clone of it, and the bootstrap's variables of a GitHub setup."""
    first = register(registry, "churn", "Approved")
    second = register(registry, "churn", "Approved")
    origin = pinned_repo(tmp_path, first)
    remote = git.Repo.clone_from(
        origin.working_dir, tmp_path / "host" / f"{REPOSITORY}.git", bare=True
    )
    clone = git.Repo.clone_from(remote.git_dir, tmp_path / "clone")
    monkeypatch.setenv("MLOPS_GIT_PROVIDER", "github")
    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", f"{github.base}/github")
    server = fake_git_hosts.serve_git(str(tmp_path / "host"), f"x-access-token:{GITHUB_TOKEN}")
    served = next(server)
    try:
        yield served, remote, clone, first, second
    finally:
        server.close()


@pytest.mark.parametrize("token_in", ["environment", "secret"])
def test_on_github_bump_pushes_with_the_token_and_opens_the_pull_request_there(
    on_github: Any, github: fake_git_hosts.FakeHosts, capsys: Any, monkeypatch: Any, token_in: str
) -> None:
    """As the bump build runs on a GitHub setup; the token as `ci` finds it."""
    from controller.cli.main import main

    server, remote, clone, first, second = on_github
    if token_in == "secret":
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="mlops/github-token", SecretString=GITHUB_TOKEN)["ARN"]
        monkeypatch.delenv("GITHUB_TOKEN")
        monkeypatch.setenv("MLOPS_GIT_TOKEN_SECRET", arn)
    url = f"{server.url}/{REPOSITORY}.git"

    pull_request = ["--pull-request", REPOSITORY, "--into", "main"]
    code = main(["bump", "--repo", clone.working_dir, "--push", url, *pull_request])

    out = capsys.readouterr()
    assert code == 0, out.err
    (branch,) = [h.name for h in remote.heads if h.name.startswith(bump.BRANCH_PREFIX)]
    assert pinned(remote, branch) == second and pinned(remote, "main") == first
    (opened,) = github.opened
    assert (opened["host"], opened["head"], opened["base"]) == ("github", branch, "main")
    assert f"{first} -> version 2" in opened["body"]
    assert "pull request 1 into main: https://github.example/acme/mlops-config/pull/1" in out.out
    # The push carried the token (the server refuses anything else), and nothing shows it:
    # not the output, not the clone's configuration.
    assert server.authorizations and GITHUB_TOKEN not in out.out + out.err
    assert GITHUB_TOKEN not in (Path(clone.git_dir) / "config").read_text()


def test_on_github_a_refused_push_opens_no_pull_request_and_shows_no_token(
    on_github: Any, github: fake_git_hosts.FakeHosts, capsys: Any, monkeypatch: Any
) -> None:
    """The host refuses the token (revoked, or not allowed to push): the error is git's,
    without the token, and no pull request points at a branch that is not there."""
    from controller.cli.main import main

    server, remote, clone, _, _ = on_github
    wrong = GITHUB_TOKEN.replace("B0mp", "Wr0n")
    monkeypatch.setenv("GITHUB_TOKEN", wrong)

    url = f"{server.url}/{REPOSITORY}.git"
    code = main(["bump", "--repo", clone.working_dir, "--push", url, "--pull-request", REPOSITORY])

    out = capsys.readouterr()
    assert code == 1 and "error:" in out.err, out.err
    assert server.authorizations  # the host was asked, and refused the token
    assert [h.name for h in remote.heads] == ["main"] and github.opened == []
    assert wrong not in out.out + out.err


def test_bump_pushes_only_its_own_branches(tmp_path: Path) -> None:
    repo = repo_with(tmp_path / "repo", json.loads(EXAMPLE.read_text()), "config")
    with pytest.raises(bump.BumpError, match="not a bump branch"):
        bump.push(repo, str(tmp_path / "elsewhere"), "main", "x-access-token:t")
