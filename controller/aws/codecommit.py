"""The pull-request comment on CodeCommit: post the plan once, then edit that comment.

Retried builds post once (a request token from the pull request and commit), and only a
comment this controller's own identity wrote is edited: anyone can paste the marker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.aws.session import Aws
from controller.core.render import short_hash


@dataclass(frozen=True)
class PullRequest:
    id: str
    repository: str
    destination_commit: str
    commit: str


def request_token(pull_request_id: str, commit: str) -> str:
    """The same PR and commit give the same token: a retried build posts only once."""
    digest = hashlib.sha256(f"{pull_request_id}\0{commit}".encode()).hexdigest()[:32]
    return f"mlops-plan-{digest}"


def post_or_update(aws: Aws, pull_request: PullRequest, body: str, marker: str) -> bool:
    """Edit our earlier comment (True), or post a new one (False)."""
    client = aws.client("codecommit")
    existing = find_plan_comment(client, pull_request, caller_arn(aws.client("sts")), marker)
    if existing is not None:
        try:
            client.update_comment(commentId=existing, content=body)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "CommentNotCreatedByCallerException":
                raise
    client.post_comment_for_pull_request(
        pullRequestId=pull_request.id,
        repositoryName=pull_request.repository,
        beforeCommitId=pull_request.destination_commit,
        afterCommitId=pull_request.commit,
        content=body,
        clientRequestToken=request_token(pull_request.id, pull_request.commit),
    )
    return False


def caller_arn(sts: Any) -> str | None:
    """Who this build is (sts:GetCallerIdentity needs no permission); None if unknown."""
    try:
        return str(sts.get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError):
        return None


def principal(arn: str) -> tuple[str, ...]:
    """The identity an ARN names, without the session: CodeBuild assumes its role with a new
    session name for every build, and an IAM role ARN may carry a path."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return (arn,)
    partition, account, resource = parts[1], parts[4], parts[5]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return (partition, account, "role", rest.split("/")[0])
    if kind in ("role", "user"):
        return (partition, account, kind, rest.rsplit("/", 1)[-1])
    return (partition, account, resource)


def find_plan_comment(
    client: Any, pull_request: PullRequest, caller: str | None, marker: str
) -> str | None:
    """The id of our earlier plan comment, if there is one.

    Only a top-level comment written by this controller's own identity counts: anyone can
    paste the marker into a comment, and a reply may quote it. With no known identity, no
    comment is trusted and a new one is posted.
    """
    if caller is None:
        return None
    ours = principal(caller)
    kwargs: dict[str, str] = {
        "pullRequestId": pull_request.id,
        "repositoryName": pull_request.repository,
    }
    while True:
        page = client.get_comments_for_pull_request(**kwargs)
        for thread in page.get("commentsForPullRequestData", ()):
            for comment in thread.get("comments", ()):
                if (
                    marker in comment.get("content", "")
                    and not comment.get("deleted")
                    and not comment.get("inReplyTo")
                    and principal(str(comment.get("authorArn", ""))) == ours
                ):
                    return str(comment["commentId"])
        if not page.get("nextToken"):
            return None
        kwargs["nextToken"] = page["nextToken"]


@dataclass(frozen=True)
class CodeCommitPullRequests:
    codecommit: Any
    repository: str

    def open(self, branch: str, base: str, title: str, description: str) -> str:
        """The pull request's id. The token names the branch, so a retried build opens one
        pull request, not two."""
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

    @classmethod
    def of(cls, aws: Aws, repository: str) -> CodeCommitPullRequests:
        return cls(aws.client("codecommit"), repository)
