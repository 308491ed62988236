"""GitHub and GitHub Enterprise Server through PyGithub, the maintained client of the GitHub API.

PyGithub follows the API's own links (pagination, an object's `url`), so an Enterprise server
is only another `base_url` (`GITHUB_API_URL`, as GitHub Actions names it), and it already
knows GitHub's rate-limit answers (403 with a rate-limit message, `Retry-After`,
`X-RateLimit-Reset`); `BoundedRetry` bounds how long it waits.
"""

from __future__ import annotations

from typing import Any

from github import Auth, Github, GithubException, GithubRetry, RateLimitExceededException

from controller.gitops.providers import (
    CommitStatus,
    HostError,
    NewPullRequest,
    OpenedPullRequest,
)
from controller.gitops.providers.ratelimit import (
    MAX_ATTEMPTS,
    MAX_WAIT_SECONDS,
    TIMEOUT_SECONDS,
)

API_URL = "https://api.github.com"
MAX_DESCRIPTION = 140


class BoundedRetry(GithubRetry):
    """GitHub's rate limits retried a few times, never waiting past `MAX_WAIT_SECONDS`; 429
    (which GitHub also answers) retried as 403 is."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("total", MAX_ATTEMPTS - 1)
        kwargs.setdefault("status_forcelist", [*range(500, 600), 429])
        kwargs.setdefault("max_rate_limit_wait", MAX_WAIT_SECONDS)
        kwargs.setdefault("secondary_rate_wait", min(MAX_WAIT_SECONDS, 60.0))
        super().__init__(**kwargs)

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(float(after), MAX_WAIT_SECONDS)


class GitHubHost:
    def __init__(
        self, repository: str, token: str, api_url: str = API_URL, target_url: str = ""
    ) -> None:
        self._token = token
        self._target_url = target_url
        self._github = Github(
            auth=Auth.Token(token),
            base_url=api_url.rstrip("/"),
            timeout=TIMEOUT_SECONDS,
            retry=BoundedRetry(),
            lazy=True,
        )
        self._repo = self._github.get_repo(repository)

    def _failed(self, doing: str, exc: GithubException) -> HostError:
        message = str(exc.data.get("message") if isinstance(exc.data, dict) else exc.data)
        return HostError(f"GitHub: {doing}: {exc.status} {message}".replace(self._token, "***"))

    def _me(self) -> str | None:
        """Our login; None for a token that cannot read its user (a GitHub App's)."""
        try:
            return str(self._github.get_user().login)
        except RateLimitExceededException:
            raise
        except GithubException as exc:
            # Anything but "may not" fails: a guess would post a second comment.
            if exc.status in (403, 404):
                return None
            raise

    def upsert_plan_comment(self, number: str, body: str, marker: str) -> bool:
        try:
            issue = self._repo.get_issue(int(number))
            me = self._me()
            if me is not None:
                for comment in issue.get_comments():
                    if marker in (comment.body or "") and comment.user.login == me:
                        comment.edit(body)
                        return True
            issue.create_comment(body)
            return False
        except GithubException as exc:
            raise self._failed(f"commenting on pull request {number}", exc) from None

    def set_status(self, commit: str, status: CommitStatus) -> None:
        try:
            self._repo.get_commit(commit).create_status(
                state=status.state.value,
                description=status.description[:MAX_DESCRIPTION],
                context=status.context,
                **({"target_url": self._target_url} if self._target_url else {}),
            )
        except GithubException as exc:
            raise self._failed(f"setting status {status.context}", exc) from None

    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest:
        try:
            pull = self._repo.create_pull(
                base=request.base, head=request.head, title=request.title, body=request.body
            )
        except GithubException as exc:
            raise self._failed("opening a pull request", exc) from None
        return OpenedPullRequest(str(pull.number), str(pull.html_url))
