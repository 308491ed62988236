"""Git hosts the config repository can live on, behind one interface.

CodeCommit's pull-request comment stays in `gitops.ci` (it is an AWS API, with the build's
role as identity). GitHub, GitHub Enterprise, GitLab and Bitbucket Cloud are reached through
their REST APIs with a token (see `providers.hosts`): the plan comment on a pull request, kept
as one comment that later builds edit; a commit status on the pull request's head commit that
branch protection can require; and opening a pull request (what `bump` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from controller.core.errors import ControllerError

STATUS_CONTEXT = "mlops-controller/plan"
"""The status a branch protection rule requires; a staged config adds one per stage below it."""


class Provider(StrEnum):
    CODECOMMIT = "codecommit"
    GITHUB = "github"
    GITHUB_ENTERPRISE = "github-enterprise"
    GITLAB = "gitlab"
    BITBUCKET = "bitbucket"


class State(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: State
    description: str
    """One line; hosts cut it (GitHub at 140 characters)."""

    @staticmethod
    def of(ok: bool, description: str, context: str = STATUS_CONTEXT) -> CommitStatus:
        return CommitStatus(context, State.SUCCESS if ok else State.FAILURE, description)


def stage_context(stage: str) -> str:
    return f"{STATUS_CONTEXT}/{stage}"


@dataclass(frozen=True)
class NewPullRequest:
    head: str
    """The branch with the change (already pushed)."""
    base: str
    title: str
    body: str


@dataclass(frozen=True)
class OpenedPullRequest:
    number: str
    url: str


class HostError(ControllerError):
    """A git host refused or failed a call; the message never holds the token."""

    code = "MC110"


class PullRequestOpener(Protocol):
    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest: ...


class GitHost(PullRequestOpener, Protocol):
    """A host with an HTTP API; each call retries rate limits (see `providers.ratelimit`)."""

    def upsert_plan_comment(self, number: str, body: str, marker: str) -> bool:
        """Edit our comment holding `marker` on pull request `number`, or post one; True if
        an existing comment was edited."""
        ...

    def set_status(self, commit: str, status: CommitStatus) -> None: ...
