"""GitLab (gitlab.com or self-managed) through python-gitlab, the maintained client of its API.

Merge requests are GitLab's pull requests; their comments are notes. python-gitlab is given
the controller's `RetryingSession`, which bounds rate-limit waits (python-gitlab's own retry
of 429 waits as long as the server asks).
"""

from __future__ import annotations

import gitlab
import requests
from gitlab.exceptions import GitlabError

from controller.gitops.providers import (
    CommitStatus,
    HostError,
    NewPullRequest,
    OpenedPullRequest,
    State,
)
from controller.gitops.providers.ratelimit import TIMEOUT_SECONDS, RetryingSession

API_URL = "https://gitlab.com/api/v4"
STATES = {State.SUCCESS: "success", State.FAILURE: "failed"}


class GitLabHost:
    def __init__(
        self, repository: str, token: str, api_url: str = API_URL, target_url: str = ""
    ) -> None:
        self._token = token
        self._gitlab = gitlab.Gitlab(
            api_url.rstrip("/").removesuffix("/api/v4"),
            private_token=token,
            session=RetryingSession(),
            timeout=TIMEOUT_SECONDS,
            keep_base_url=True,
        )
        self._project = self._gitlab.projects.get(repository, lazy=True)
        self._target_url = target_url

    def _failed(self, doing: str, exc: Exception) -> HostError:
        if isinstance(exc, GitlabError):
            detail = f"{exc.response_code} {exc.error_message}"
        else:
            detail = str(exc)
        return HostError(f"GitLab: {doing}: {detail}".replace(self._token, "***"))

    def _me(self) -> int | None:
        try:
            self._gitlab.auth()
        except GitlabError as exc:
            # Anything but "may not" fails: a guess would post a second comment.
            if exc.response_code in (403, 404):
                return None
            raise
        user = self._gitlab.user
        return None if user is None else int(user.id)

    def upsert_plan_comment(self, number: str, body: str, marker: str) -> bool:
        try:
            request = self._project.mergerequests.get(int(number), lazy=True)
            me = self._me()
            if me is not None:
                for note in request.notes.list(iterator=True):
                    if (
                        marker in (note.body or "")
                        and not note.system
                        and note.author.get("id") == me
                    ):
                        note.body = body
                        note.save()
                        return True
            request.notes.create({"body": body})
            return False
        except (GitlabError, requests.RequestException) as exc:
            raise self._failed(f"commenting on merge request !{number}", exc) from None

    def set_status(self, commit: str, status: CommitStatus) -> None:
        data = {
            "state": STATES[status.state],
            "name": status.context,
            "description": status.description[:255],
        }
        if self._target_url:
            data["target_url"] = self._target_url
        try:
            self._project.commits.get(commit, lazy=True).statuses.create(data)
        except (GitlabError, requests.RequestException) as exc:
            raise self._failed(f"setting status {status.context}", exc) from None

    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest:
        try:
            opened = self._project.mergerequests.create(
                {
                    "source_branch": request.head,
                    "target_branch": request.base,
                    "title": request.title,
                    "description": request.body,
                }
            )
        except (GitlabError, requests.RequestException) as exc:
            raise self._failed("opening a merge request", exc) from None
        return OpenedPullRequest(str(opened.iid), str(opened.web_url))
