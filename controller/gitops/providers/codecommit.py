"""Opening a pull request on a CodeCommit config repository (`bump`'s change proposals).

CodeCommit's plan comment stays in `gitops.ci`; it has no commit statuses. The AWS call is
made by `controller.aws.codecommit.CodeCommitPullRequests`.
"""

from __future__ import annotations

from controller.aws.codecommit import CodeCommitPullRequests
from controller.aws.session import Aws
from controller.gitops.providers import NewPullRequest, OpenedPullRequest


class CodeCommitOpener:
    def __init__(self, aws: Aws, repository: str) -> None:
        self._requests = CodeCommitPullRequests.of(aws, repository)
        self._region = aws.region
        self._repository = repository

    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest:
        """The token names the branch, so a retried build opens one pull request, not two."""
        number = self._requests.open(request.head, request.base, request.title, request.body)
        url = (
            f"https://{self._region}.console.aws.amazon.com/codesuite/codecommit/repositories/"
            f"{self._repository}/pull-requests/{number}"
        )
        return OpenedPullRequest(number, url)
