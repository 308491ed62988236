"""`mlops-controller ci` as CodeBuild runs it: a real clone at a detached HEAD, the moto server,
and botocore's Stubber only for CodeCommit's pull-request calls (moto does not have them)."""

from __future__ import annotations

import copy
import io
import json
import os
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from botocore.stub import ANY, Stubber
from markdown_it import MarkdownIt
from rich.console import Console

from controller.aws.codecommit import request_token
from controller.aws.ledger import Ledger
from controller.aws.session import Aws
from controller.cli.main import main
from controller.gitops import ci
from tests.conftest import commit_config
from tests.emulated_drift import emulate_drift
from tests.gitops import REALTIME, instance_type, seed_account, small_config, stack_names

PR_ID = "17"
REPOSITORY = "mlops-config"
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"
"""Who moto says the caller is (sts:GetCallerIdentity) with the tests' static keys."""


@pytest.fixture
def repo(aws: str, config_repo: git.Repo, example_config: dict[str, Any]) -> git.Repo:
    """The config repo holding the one-pipeline config, in a seeded emulated account."""
    seed_account(example_config)
    commit_config(config_repo, small_config(example_config), "Keep only the realtime endpoint")
    return config_repo


def push_env(monkeypatch: pytest.MonkeyPatch, commit: str, branch: str = "main") -> None:
    monkeypatch.setenv("MLOPS_EVENT", "push")
    monkeypatch.setenv("MLOPS_BRANCH", branch)
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", commit)


def run_ci(repo: git.Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The build: CodeBuild checks the commit out at a detached HEAD, then runs the command."""
    repo.git.checkout(os.environ["CODEBUILD_RESOLVED_SOURCE_VERSION"])
    code = main(["ci", "--repo", str(repo.working_dir), "--artifacts", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    return code, out + err


def ledger() -> Ledger:
    return Ledger(Aws(region="us-east-1").client("s3"), "mlops-assets-example", "mlops-controller")


# The run context


def test_context_of_a_push_and_of_a_pull_request() -> None:
    commit, base = "a" * 40, "b" * 40
    push = ci.context_from(
        {
            "MLOPS_EVENT": "push",
            "MLOPS_BRANCH": "refs/heads/main",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        }
    )
    assert (push.event, push.commit, push.branch) == (ci.Event.PUSH, commit, "main")
    pull = ci.context_from(
        {
            "MLOPS_EVENT": "pull_request",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
            "MLOPS_PULL_REQUEST_ID": PR_ID,
            "MLOPS_REPOSITORY_NAME": REPOSITORY,
            "MLOPS_SOURCE_COMMIT": commit,
            "MLOPS_DESTINATION_COMMIT": base,
        }
    )
    assert (pull.pull_request_id, pull.repository, pull.destination_commit) == (
        PR_ID,
        REPOSITORY,
        base,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ["MLOPS_EVENT is not set", "CODEBUILD_RESOLVED_SOURCE_VERSION is not set"]),
        (
            {"MLOPS_EVENT": "merge", "CODEBUILD_RESOLVED_SOURCE_VERSION": "main"},
            ["MLOPS_EVENT is 'merge'", "expected a 40-character commit id"],
        ),
        (
            {"MLOPS_EVENT": "push", "CODEBUILD_RESOLVED_SOURCE_VERSION": "a" * 40},
            ["a push run needs MLOPS_BRANCH, which is not set"],
        ),
        (
            {
                "MLOPS_EVENT": "pull_request",
                "CODEBUILD_RESOLVED_SOURCE_VERSION": "a" * 40,
                "MLOPS_SOURCE_COMMIT": "c" * 40,
            },
            [
                "MLOPS_SOURCE_COMMIT is cccccccccccc but the build checked out aaaaaaaaaaaa",
                "MLOPS_PULL_REQUEST_ID, MLOPS_REPOSITORY_NAME, MLOPS_DESTINATION_COMMIT, "
                "which are not set",
            ],
        ),
    ],
    ids=["nothing-set", "bad-values", "push-without-branch", "pr-inconsistent"],
)
def test_context_errors_name_every_variable(environ: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(ci.CiContextError) as caught:
        ci.context_from(environ)
    for text in expected:
        assert text in str(caught.value)


def test_cli_reports_a_bad_context_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.delenv("CODEBUILD_RESOLVED_SOURCE_VERSION", raising=False)
    monkeypatch.setenv("MLOPS_EVENT", "push")
    code = main(["ci"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: CODEBUILD_RESOLVED_SOURCE_VERSION is not set")
    assert "Traceback" not in err


# Pushes


def test_push_to_main_applies_and_leaves_plan_artifacts_and_a_junit_report(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    commit = repo.head.commit.hexsha
    push_env(monkeypatch, commit)

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert REALTIME in stack_names()
    out_dir = tmp_path / "out"
    assert {p.name for p in out_dir.iterdir()} >= {
        "plan.txt",
        "plan.md",
        "plan.json",
        "apply.json",
        "report.xml",
    }
    assert json.loads((out_dir / "plan.json").read_text())["revision"] == commit
    assert json.loads((out_dir / "apply.json").read_text())["ok"] is True
    suite = ET.parse(out_dir / "report.xml").getroot().find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite.iter("testcase")] == [REALTIME]
    assert suite.get("failures") == "0"
    assert ledger().last_applied() == commit


def test_push_to_another_branch_plans_but_does_not_apply(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    push_env(monkeypatch, repo.head.commit.hexsha, branch="feature/bigger-endpoint")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert "not to the deployment branch main: planning only" in out
    assert stack_names() == set()
    assert (tmp_path / "out" / "plan.md").exists()
    assert not (tmp_path / "out" / "apply.json").exists()
    assert ledger().last_applied() is None


def test_a_late_build_of_an_older_commit_never_rolls_back(
    repo, tmp_path, monkeypatch, capsys, example_config
) -> None:
    old = repo.head.commit.hexsha
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    new = commit_config(repo, bigger, "Scale the endpoint")
    push_env(monkeypatch, new)
    assert run_ci(repo, tmp_path, capsys)[0] == 0

    push_env(monkeypatch, old)
    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0
    assert f"Nothing done: commit {old[:12]} is an ancestor of {new[:12]}" in out
    assert instance_type(REALTIME) == "ml.m5.xlarge"
    assert ledger().last_applied() == new
    assert len(ledger().history()) == 1


def test_the_same_commit_again_converges_instead_of_being_skipped(
    repo, tmp_path, monkeypatch, capsys
) -> None:
    emulate_drift(monkeypatch, polls=0)  # the hourly run also detects drift
    push_env(monkeypatch, repo.head.commit.hexsha)
    assert run_ci(repo, tmp_path, capsys)[0] == 0
    monkeypatch.setenv("MLOPS_EVENT", "schedule")

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 0, out
    assert "Nothing done" not in out
    assert "Apply complete" in out
    # Nothing was left to write for the commit the ledger records: no lease, no new record.
    assert len(ledger().history()) == 1


def test_an_invalid_config_on_main_fails_the_build_with_a_junit_failure(
    repo, tmp_path, monkeypatch, capsys, example_config
) -> None:
    broken = small_config(example_config)
    broken["pipelines"][0]["inference_instance"] = 42
    push_env(monkeypatch, commit_config(repo, broken, "Typo"))

    code, out = run_ci(repo, tmp_path, capsys)

    assert code == 1
    assert "$.pipelines[0].inference_instance" in out
    assert "is invalid: nothing was planned" in out
    suite = ET.parse(tmp_path / "out" / "report.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    assert stack_names() == set()


# Pull requests


@pytest.fixture
def pull_request(repo: git.Repo, example_config: dict[str, Any]) -> tuple[str, str]:
    """A feature branch that scales the endpoint: (destination commit, source commit)."""
    base = repo.head.commit.hexsha
    repo.git.checkout("-b", "feature")
    bigger = small_config(example_config)
    bigger["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    head = commit_config(repo, bigger, "Scale the endpoint")
    return base, head


def pr_context(base: str, head: str) -> ci.CiContext:
    return ci.context_from(
        {
            "MLOPS_EVENT": "pull_request",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": head,
            "MLOPS_PULL_REQUEST_ID": PR_ID,
            "MLOPS_REPOSITORY_NAME": REPOSITORY,
            "MLOPS_SOURCE_COMMIT": head,
            "MLOPS_DESTINATION_COMMIT": base,
        }
    )


def run_pr(
    repo: git.Repo, tmp_path: Path, context: ci.CiContext, stub: Any, aws: Aws
) -> tuple[int, str, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    codecommit = aws.client("codecommit")
    for operation in ("PostCommentForPullRequest", "UpdateComment"):
        codecommit.meta.events.register(
            f"provide-client-params.codecommit.{operation}",
            lambda params, **_: sent.append(dict(params)),
        )
    repo.git.checkout(context.commit)
    output = io.StringIO()
    options = ci.CiOptions(Path(repo.working_dir), artifacts=tmp_path / "out")
    with stub:
        code = ci.run(context, options, Console(file=output, width=200), aws=aws)
    stub.assert_no_pending_responses()
    return code, output.getvalue(), sent


def comments_page(*comments: dict[str, Any]) -> dict[str, Any]:
    return {
        "commentsForPullRequestData": [
            {"pullRequestId": PR_ID, "repositoryName": REPOSITORY, "comments": list(comments)}
        ]
    }


def test_a_pull_request_gets_the_plan_and_the_config_diff_as_one_comment(
    repo, pull_request, tmp_path
) -> None:
    base, head = pull_request
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    query = {"pullRequestId": PR_ID, "repositoryName": REPOSITORY}
    stub.add_response("get_comments_for_pull_request", comments_page(), query)
    stub.add_response(
        "post_comment_for_pull_request",
        {"comment": {"commentId": "c-1"}},
        {
            **query,
            "beforeCommitId": base,
            "afterCommitId": head,
            "content": ANY,
            "clientRequestToken": request_token(PR_ID, head),
        },
    )

    code, out, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    assert code == 0, out
    content = sent[0]["content"]
    assert content.startswith(ci.MARKER)
    assert f"`{REALTIME}`" in content
    assert "1 to create" in content
    assert '-      "inference_instance": "ml.m5.large",' in content
    assert '+      "inference_instance": "ml.m5.xlarge",' in content
    assert len(content) <= ci.MAX_COMMENT
    assert stack_names() == set()


def test_a_new_push_to_the_pull_request_updates_the_earlier_comment(
    repo, pull_request, tmp_path
) -> None:
    base, head = pull_request
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    earlier = {
        "commentId": "c-1",
        "content": f"{ci.MARKER}\nold plan",
        "deleted": False,
        "authorArn": MOTO_CALLER,
    }
    quoted = {
        "commentId": "c-2",
        "content": f"> {ci.MARKER}",
        "inReplyTo": "c-1",
        "authorArn": MOTO_CALLER,
    }
    query = {"pullRequestId": PR_ID, "repositoryName": REPOSITORY}
    stub.add_response(
        "get_comments_for_pull_request",
        {**comments_page({"commentId": "c-0", "content": "LGTM"}), "nextToken": "page-2"},
        query,
    )
    stub.add_response(
        "get_comments_for_pull_request",
        comments_page(quoted, earlier),
        {**query, "nextToken": "page-2"},
    )
    stub.add_response(
        "update_comment", {"comment": {"commentId": "c-1"}}, {"commentId": "c-1", "content": ANY}
    )

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    assert code == 0
    assert sent[0]["content"].startswith(ci.MARKER)
    assert "ml.m5.xlarge" in sent[0]["content"]


def test_an_invalid_config_on_a_pull_request_is_commented_and_fails(
    repo, tmp_path, example_config
) -> None:
    base = repo.head.commit.hexsha
    broken = small_config(example_config)
    del broken["pipelines"][0]["model_name"]
    head = commit_config(repo, broken, "Forget the model name")
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    stub.add_response("get_comments_for_pull_request", comments_page())
    stub.add_response("post_comment_for_pull_request", {"comment": {}})

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    assert code == 1
    assert f"the config at `{head[:12]}` is invalid" in sent[0]["content"]
    assert "model_name" in sent[0]["content"]


def test_the_comment_keeps_the_plan_and_drops_a_diff_too_long_to_fit(
    repo, tmp_path, example_config
) -> None:
    base = repo.head.commit.hexsha
    padded = small_config(example_config)
    text = json.dumps(padded, indent=2) + "\n"
    path = Path(repo.working_dir) / "mlops-config.json"
    path.write_text(text.replace("{\n", "{\n" + (" " * 20 + "\n") * 1000, 1))
    repo.index.add([str(path)])
    head = repo.index.commit("Reformat with a thousand blank lines").hexsha
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    stub.add_response("get_comments_for_pull_request", comments_page())
    stub.add_response("post_comment_for_pull_request", {"comment": {}})

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    content = sent[0]["content"]
    assert code == 0
    assert len(content) <= ci.MAX_COMMENT
    assert "1 to create" in content
    assert "does not fit in a comment: see plan.md in the build artifacts" in content


# The stale-commit guard under races, partial failures and shallow clones (issue 11, item 1)


def two_pipelines(example: dict[str, Any], instance: str = "ml.m5.large") -> dict[str, Any]:
    """The realtime endpoint at `instance` and the batch job: independent pipelines."""
    config = copy.deepcopy(example)
    config["pipelines"] = [copy.deepcopy(p) for p in example["pipelines"][:2]]
    config["pipelines"][0]["inference_instance"] = instance
    return config


def push(monkeypatch: pytest.MonkeyPatch, repo: git.Repo, tmp_path: Path, capsys, commit: str):
    push_env(monkeypatch, commit)
    return run_ci(repo, tmp_path, capsys)


def test_a_partly_failed_apply_still_guards_what_it_wrote_from_a_late_build(
    repo, tmp_path, monkeypatch, capsys, example_config
) -> None:
    first = commit_config(repo, two_pipelines(example_config), "O: endpoint and batch job")
    assert push(monkeypatch, repo, tmp_path, capsys, first)[0] == 0
    late = commit_config(repo, two_pipelines(example_config, "ml.m5.xlarge"), "A: scale up")
    newer = two_pipelines(example_config, "ml.m5.2xlarge")
    newer["pipelines"][1]["model_artifact_location"] = "linearlearner/missing.tar.gz"
    newest = commit_config(repo, newer, "B: scale more, and a batch model not uploaded yet")
    code, out = push(monkeypatch, repo, tmp_path, capsys, newest)
    assert code == 1 and "does not exist" in out  # the batch job is blocked, the endpoint moved
    assert instance_type(REALTIME) == "ml.m5.2xlarge"

    code, out = push(monkeypatch, repo, tmp_path, capsys, late)

    assert code == 0, out
    assert f"Nothing done: commit {late[:12]} is an ancestor of {newest[:12]}" in out
    assert instance_type(REALTIME) == "ml.m5.2xlarge"
    assert ledger().last_applied() == newest


def test_a_late_build_cannot_slip_in_while_the_newer_apply_writes_its_ledger(
    repo, tmp_path, example_config
) -> None:
    old = repo.head.commit.hexsha
    late = commit_config(repo, _scaled(example_config, "ml.m5.xlarge"), "A: scale up")
    newest = commit_config(repo, _scaled(example_config, "ml.m5.2xlarge"), "B: scale more")
    assert _ci(repo, tmp_path, old, Aws(region="us-east-1"))[0] == 0
    newer_aws, recording, late_done = Aws(region="us-east-1"), threading.Event(), threading.Event()

    def slow_ledger(params: dict[str, Any], **_: Any) -> None:
        if params["url_path"].endswith(f"-{newest[:12]}.json"):
            recording.set()
            late_done.wait(timeout=60)

    newer_aws.session.events.register("before-call.s3.PutObject", slow_ledger)
    results: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: results.update(newer=_ci(repo, tmp_path, newest, newer_aws)[0])
    )
    thread.start()
    try:
        assert recording.wait(timeout=60), "the newer apply never wrote its record"
        late_aws = Aws(region="us-east-1")
        code, out = _ci(repo, tmp_path, late, late_aws)
    finally:
        late_done.set()
        thread.join(timeout=60)

    assert code == 1 and "another apply holds the lock" in out
    assert not [
        op
        for op in late_aws.calls
        if op.startswith(("cloudformation.Create", "cloudformation.Update"))
    ]
    assert results["newer"] == 0
    assert instance_type(REALTIME) == "ml.m5.2xlarge"
    assert ledger().last_applied() == newest
    code, out = _ci(repo, tmp_path, late, Aws(region="us-east-1"))
    assert code == 0 and f"Nothing done: commit {late[:12]}" in out
    assert instance_type(REALTIME) == "ml.m5.2xlarge"


def _scaled(example: dict[str, Any], instance: str) -> dict[str, Any]:
    config = small_config(example)
    config["pipelines"][0]["inference_instance"] = instance
    return config


def _ci(repo: git.Repo, tmp_path: Path, commit: str, aws: Aws) -> tuple[int, str]:
    """A push build of `commit`, in this process, with its own AWS session."""
    output = io.StringIO()
    context = ci.CiContext(ci.Event.PUSH, commit, "main")
    options = ci.CiOptions(Path(repo.working_dir), artifacts=tmp_path / commit[:12], environ={})
    code = ci.run(context, options, Console(file=output, width=200), aws=aws)
    return code, " ".join(output.getvalue().split())


@pytest.fixture
def late_shallow_clone(
    repo: git.Repo, tmp_path: Path, example_config: dict[str, Any]
) -> tuple[git.Repo, str, str]:
    """A newer commit B is applied from the origin; a late build of A runs in a shallow
    clone (depth 1) of a branch at A, which has neither B nor A's history."""
    late = commit_config(repo, _scaled(example_config, "ml.m5.xlarge"), "A: scale up")
    repo.git.branch("late", late)
    newest = commit_config(repo, _scaled(example_config, "ml.m5.2xlarge"), "B: scale more")
    assert _ci(repo, tmp_path, newest, Aws(region="us-east-1"))[0] == 0
    url = Path(repo.working_dir).as_uri()
    clone = git.Repo.clone_from(url, tmp_path / "shallow", depth=1, branch="late")
    assert (Path(clone.git_dir) / "shallow").exists()
    return clone, late, newest


def test_in_a_shallow_clone_the_guard_fetches_the_history_it_needs(
    late_shallow_clone, tmp_path, monkeypatch, capsys
) -> None:
    clone, late, newest = late_shallow_clone
    push_env(monkeypatch, late)

    code, out = run_ci(clone, tmp_path, capsys)

    assert code == 0, out
    assert f"Nothing done: commit {late[:12]} is an ancestor of {newest[:12]}" in out
    assert instance_type(REALTIME) == "ml.m5.2xlarge"


def test_when_the_history_cannot_be_fetched_a_late_build_is_refused_not_applied(
    late_shallow_clone, tmp_path, monkeypatch, capsys
) -> None:
    clone, late, newest = late_shallow_clone
    clone.remotes.origin.set_url((tmp_path / "gone").as_uri())
    push_env(monkeypatch, late)

    code, out = run_ci(clone, tmp_path, capsys)

    assert code == 1
    text = " ".join(out.split())
    assert f"cannot tell whether commit {late[:12]} is older than {newest[:12]}" in text
    assert f"{newest[:12]} is not in the repository" in text
    assert "Traceback" not in out
    assert instance_type(REALTIME) == "ml.m5.2xlarge"


# Where a push deploys (issue 11, item 6)


def test_a_pushed_commit_cannot_make_its_own_branch_the_deployment_branch(
    repo, tmp_path, monkeypatch, capsys, example_config
) -> None:
    repo.git.checkout("-b", "feature-x")
    hijack = small_config(example_config)
    hijack["settings"]["deployment_branch"] = "feature-x"
    commit = commit_config(repo, hijack, "Deploy me from my own branch")
    push_env(monkeypatch, commit, branch="feature-x")

    code, out = run_ci(repo, tmp_path, capsys)

    text = " ".join(out.split())
    assert code == 0, out
    assert "not to the deployment branch main: planning only" in text
    ignored = "settings.deployment_branch in the file is ignored"
    assert f"warning W201 $.settings.deployment_branch: {ignored}" in text
    assert stack_names() == set()
    assert ledger().last_applied() is None
    monkeypatch.setenv("MLOPS_DEPLOYMENT_BRANCH", "feature-x")  # the controller's own choice
    code, out = run_ci(repo, tmp_path, capsys)
    assert code == 0, out
    assert REALTIME in stack_names()


# The pull-request comment cannot be spoofed (issue 11, item 9)

HOSTILE_KEY = "x](https://evil.example)![i](https://evil.example/p.png)<img/src=x>@admin<!--```"
"""A valid asset key (any non-space text): a link, an image, HTML, a mention, a comment
opener and a backtick run that would close a three-backtick fence."""


def test_config_values_in_the_plan_comment_cannot_add_links_images_html_or_mentions(
    repo, tmp_path, monkeypatch, capsys, example_config
) -> None:
    base = repo.head.commit.hexsha
    push_env(monkeypatch, base)
    assert run_ci(repo, tmp_path, capsys)[0] == 0
    repo.git.checkout("-b", "feature")
    hostile = small_config(example_config)
    hostile["pipelines"][0]["model_artifact_location"] = HOSTILE_KEY
    head = commit_config(repo, hostile, "A model key full of Markdown")
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    stub.add_response("get_comments_for_pull_request", comments_page())
    stub.add_response("post_comment_for_pull_request", {"comment": {}})

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    content = sent[0]["content"]
    assert code == 1  # the artifact does not exist: the pipeline is blocked
    assert content.count("evil.example") >= 3  # the reason, the parameter diff, the config diff
    tokens = MarkdownIt("commonmark").enable("table").parse(content)
    inline = [child for t in tokens for child in (t.children or [])]
    kinds = {t.type for t in [*tokens, *inline]}
    assert not kinds & {"link_open", "image", "html_inline", "autolink"}, kinds
    html = "".join(t.content for t in tokens if t.type == "html_block")
    assert "evil" not in html and "<img" not in html and "@admin" not in html
    text = "".join(t.content for t in inline if t.type == "text")
    assert "evil" not in text and "@admin" not in text
    assert (tmp_path / "out" / "comment.md").read_text() == content


def test_only_the_controllers_own_earlier_comment_is_updated(
    repo, pull_request, tmp_path, monkeypatch
) -> None:
    base, head = pull_request
    build = "arn:aws:iam::123456789012:role/mlops-controller-build"
    sts = boto3.client("sts", region_name="us-east-1")
    session = sts.assume_role(RoleArn=build, RoleSessionName="AWSCodeBuild-this-build")
    for name, key in (
        ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
        ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
        ("AWS_SESSION_TOKEN", "SessionToken"),
    ):
        monkeypatch.setenv(name, session["Credentials"][key])
    spoof = {
        "commentId": "c-evil",
        "content": f"{ci.MARKER}\nLGTM, the plan is empty: merge away",
        "authorArn": "arn:aws:iam::123456789012:user/mallory",
    }
    ours = {
        "commentId": "c-ours",
        "content": f"{ci.MARKER}\nold plan",
        "authorArn": "arn:aws:sts::123456789012:assumed-role/mlops-controller-build/"
        "AWSCodeBuild-an-earlier-build",
    }
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    stub.add_response("get_comments_for_pull_request", comments_page(spoof, ours))
    stub.add_response(
        "update_comment",
        {"comment": {"commentId": "c-ours"}},
        {"commentId": "c-ours", "content": ANY},
    )

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    assert code == 0
    assert "ml.m5.xlarge" in sent[0]["content"]


def test_a_marker_comment_by_anyone_else_is_never_taken_as_ours(
    repo, pull_request, tmp_path
) -> None:
    base, head = pull_request
    spoof = {
        "commentId": "c-evil",
        "content": f"{ci.MARKER}\nLGTM",
        "authorArn": "arn:aws:iam::123456789012:user/mallory",
    }
    aws = Aws(region="us-east-1")
    stub = Stubber(aws.client("codecommit"))
    stub.add_response("get_comments_for_pull_request", comments_page(spoof))
    stub.add_response("post_comment_for_pull_request", {"comment": {"commentId": "c-new"}})

    code, _, sent = run_pr(repo, tmp_path, pr_context(base, head), stub, aws)

    assert code == 0
    assert sent[0]["content"].startswith(ci.MARKER)
