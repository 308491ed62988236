"""Opening a pull request for a pushed branch. CodeCommit here; other providers plug in as
another `PullRequests` with the same one method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from controller.core.render import short_hash


class PullRequests(Protocol):
    def open(self, branch: str, base: str, title: str, description: str) -> str:
        """Open a pull request of `branch` into `base`; its id."""
        ...


@dataclass(frozen=True)
class CodeCommitPullRequests:
    codecommit: Any
    repository: str

    def open(self, branch: str, base: str, title: str, description: str) -> str:
        """The token names the branch, so a retried build opens one pull request, not two."""
        found = self.codecommit.create_pull_request(
            title=title[:150],
            description=description[:10240],
            targets=[
                {
                    "repositoryName": self.repository,
                    "sourceReference": branch,
                    "destinationReference": base,
                }
            ],
            clientRequestToken=short_hash(self.repository, branch, base, length=32),
        )
        return str(found["pullRequest"]["pullRequestId"])
