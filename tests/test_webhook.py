"""What a CodeBuild webhook build is (core.webhook, gitops.webhook_ci), refused when its
variables contradict each other or the bootstrap; how long a rate limit is waited for; tokens
hidden from every message. No AWS, no git host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.core import webhook
from controller.core.redact import redact
from controller.gitops import ci
from controller.gitops.providers import hosts, ratelimit
from tests import fake_git_hosts

HEAD = "c" * 40
PULL = {
    "CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_UPDATED",
    "CODEBUILD_WEBHOOK_TRIGGER": "pr/7",
    "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature",
    "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
    "CODEBUILD_SOURCE_REPO_URL": "https://github.com/acme/mlops-config.git",
    "CODEBUILD_RESOLVED_SOURCE_VERSION": HEAD,
    "MLOPS_GIT_PROVIDER": "github",
    "MLOPS_GIT_REPOSITORY": "acme/mlops-config",
}
PUSH = {
    **PULL,
    "CODEBUILD_WEBHOOK_EVENT": "PUSH",
    "CODEBUILD_WEBHOOK_TRIGGER": "branch/main",
    "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/main",
    "CODEBUILD_WEBHOOK_BASE_REF": "",
}


def test_a_pull_request_build_becomes_a_pull_request_context() -> None:
    context = ci.context_from(PULL)
    assert context.event is ci.Event.PULL_REQUEST
    assert (context.pull_request_id, context.branch, context.base_branch) == (
        "7",
        "feature",
        "main",
    )
    assert context.commit == HEAD
    assert context.target is not None
    assert (context.target.provider.value, context.target.repository) == (
        "github",
        "acme/mlops-config",
    )
    assert context.destination_commit is None  # found in the clone at run time


def test_a_push_build_becomes_a_push_context_of_its_branch() -> None:
    context = ci.context_from(PUSH)
    assert (context.event, context.branch, context.pull_request_id) == (
        ci.Event.PUSH,
        "main",
        None,
    )


def test_gitlab_subgroups_and_credentials_in_the_clone_url() -> None:
    url = "https://oauth2:glpat-xxxxxxxxxxxxxxxxxxxx@gitlab.com/acme/ml/mlops-config.git"
    assert webhook.repository_path(url) == "acme/ml/mlops-config"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"MLOPS_EVENT": "push"}, "MLOPS_EVENT is set in a build CodeBuild's webhook started"),
        ({"CODEBUILD_WEBHOOK_TRIGGER": "branch/main"}, "expected pr/<number>"),
        ({"CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_MERGED"}, "CODEBUILD_WEBHOOK_EVENT is"),
        ({"CODEBUILD_WEBHOOK_BASE_REF": "refs/tags/v1"}, "a pull request's refs are branches"),
        ({"MLOPS_GIT_REPOSITORY": "acme/other"}, "not the repository the bootstrap names"),
        ({"MLOPS_GIT_PROVIDER": ""}, "MLOPS_GIT_PROVIDER is not set to a git host"),
        ({"MLOPS_GIT_PROVIDER": "gitea"}, "MLOPS_GIT_PROVIDER is 'gitea'"),
        ({"CODEBUILD_SOURCE_REPO_URL": "git@github.com:acme/x"}, "not an https URL"),
        ({"CODEBUILD_RESOLVED_SOURCE_VERSION": "main"}, "expected a 40-character commit id"),
    ],
)
def test_a_pull_request_build_that_contradicts_itself_or_the_bootstrap_is_refused(
    change: dict[str, str], expected: str
) -> None:
    with pytest.raises(ci.CiContextError) as raised:
        ci.context_from({**PULL, **change})
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"CODEBUILD_WEBHOOK_TRIGGER": "tag/v1"}, "tag pushes are not built"),
        ({"CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/other"}, "but the trigger names branch"),
    ],
)
def test_a_push_build_that_contradicts_itself_is_refused(
    change: dict[str, str], expected: str
) -> None:
    with pytest.raises(ci.CiContextError) as raised:
        ci.context_from({**PUSH, **change})
    assert expected in str(raised.value)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ci.CiContextError) as raised:
        ci.context_from({**PULL, "MLOPS_EVENT": "push", "MLOPS_GIT_REPOSITORY": "acme/other"})
    assert "MLOPS_EVENT" in str(raised.value) and "acme/other" in str(raised.value)


def test_codecommits_eventbridge_variables_still_make_the_context() -> None:
    context = ci.context_from(
        {"MLOPS_EVENT": "schedule", "CODEBUILD_RESOLVED_SOURCE_VERSION": HEAD}
    )
    assert context.event is ci.Event.SCHEDULE and context.target is None


# Rate limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (403, {"retry-after": "2"}, 2.0),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"}, 30.0),
        (429, {"RateLimit-Remaining": "0", "RateLimit-Reset": "1005"}, 5.0),
        (429, {}, ratelimit.DEFAULT_WAIT_SECONDS),
        (403, {}, None),  # a missing permission, not a rate limit
        (403, {"X-RateLimit-Remaining": "12"}, None),
        (500, {"Retry-After": "1"}, None),
    ],
)
def test_how_long_a_rate_limit_asks_to_wait(
    status: int, headers: dict[str, str], expected: float | None
) -> None:
    assert ratelimit.wait_seconds(status, headers, now=1000.0) == expected


@pytest.fixture
def fake() -> Iterator[fake_git_hosts.FakeHosts]:
    yield from fake_git_hosts.serve("t0ken")


def test_the_session_waits_as_asked_a_bounded_number_of_times(
    fake: fake_git_hosts.FakeHosts,
) -> None:
    waits: list[float] = []
    session = ratelimit.RetryingSession(sleep=waits.append, clock=lambda: 1000.0)
    session.headers["Authorization"] = "Bearer t0ken"
    fake.limit_next(2, 429, {"Retry-After": "5"})

    assert session.get(f"{fake.base}/bitbucket/2.0/user").status_code == 200
    assert waits == [5.0, 5.0]

    fake.limit_next(ratelimit.MAX_ATTEMPTS, 429, {"Retry-After": "1"})
    with pytest.raises(ratelimit.RateLimited):
        session.get(f"{fake.base}/bitbucket/2.0/user")
    assert len(waits) == 2 + ratelimit.MAX_ATTEMPTS - 1


def test_a_wait_beyond_the_bound_is_not_waited(fake: fake_git_hosts.FakeHosts) -> None:
    waits: list[float] = []
    session = ratelimit.RetryingSession(sleep=waits.append, clock=lambda: 1000.0)
    fake.limit_next(1, 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4600"})
    with pytest.raises(ratelimit.RateLimited, match="3600"):
        session.get(f"{fake.base}/github/user")
    assert waits == []


# Tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "ghp_" + "a1B2" * 9,
        "github_pat_" + "x1" * 20,
        "glpat-" + "Ab_-" * 5,
        "ATBB" + "q" * 28,
        "ATCTT3xFfGN0" + "z" * 30,
    ],
)
def test_git_hosts_tokens_are_hidden(token: str) -> None:
    assert token not in redact(f"GitHub: 401 Bad credentials for {token} in a message")


def test_authorization_headers_are_hidden() -> None:
    text = redact("sent Authorization: Bearer opaque-value and PRIVATE-TOKEN: other-value")
    assert "opaque-value" not in text and "other-value" not in text


# Which API ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "clone_url", "environ", "expected"),
    [
        ("github", "https://github.com/a/b.git", {}, "https://api.github.com"),
        (
            "github-enterprise",
            "https://git.acme.example/a/b.git",
            {},
            "https://git.acme.example/api/v3",
        ),
        ("gitlab", "https://gitlab.com/a/b.git", {}, "https://gitlab.com/api/v4"),
        (
            "gitlab",
            "https://gitlab.acme.example/g/s/b.git",
            {},
            "https://gitlab.acme.example/api/v4",
        ),
        ("bitbucket", "https://bitbucket.org/a/b.git", {}, "https://api.bitbucket.org/2.0"),
        (
            "github-enterprise",
            "https://git.acme.example/a/b.git",
            {"GITHUB_API_URL": "https://api.acme.example"},
            "https://api.acme.example",
        ),
    ],
)
def test_the_api_is_the_variable_or_the_hosts_own(
    provider: str, clone_url: str, environ: dict[str, str], expected: str
) -> None:
    target = hosts.Target(hosts.provider_of({"MLOPS_GIT_PROVIDER": provider}), "a/b", clone_url)
    assert hosts.api_url(target, environ) == expected
