"""Opening a pull request on a CodeCommit config repository (`bump`'s change proposals).

CodeCommit's plan comment stays in `gitops.ci`; it has no commit statuses.
"""

from __future__ import annotations

from typing import Any

from controller.gitops.providers import NewPullRequest, OpenedPullRequest


class CodeCommitOpener:
    def __init__(self, codecommit: Any, repository: str) -> None:
        self._codecommit = codecommit
        self._repository = repository

    def open_pull_request(self, request: NewPullRequest) -> OpenedPullRequest:
        created = self._codecommit.create_pull_request(
            title=request.title,
            description=request.body,
            targets=[
                {
                    "repositoryName": self._repository,
                    "sourceReference": request.head,
                    "destinationReference": request.base,
                }
            ],
        )["pullRequest"]
        number = str(created["pullRequestId"])
        region = self._codecommit.meta.region_name
        url = (
            f"https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/"
            f"{self._repository}/pull-requests/{number}"
        )
        return OpenedPullRequest(number, url)
