"""What a CodeBuild webhook build is, from the variables CodeBuild itself sets.

A project whose source comes through a CodeConnections connection (GitHub, GitHub Enterprise,
GitLab, Bitbucket) is started by CodeBuild's webhook, not by EventBridge: the build has no
`MLOPS_EVENT`, and CodeBuild describes the event in `CODEBUILD_WEBHOOK_*` variables. Nobody
who opens a pull request can set those (the buildspec is the project's own, not the
repository's), so they say what happened; what to do about it (which branch deploys) is
still decided by the policy in force, never here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

PULL_REQUEST_EVENTS = frozenset(
    {"PULL_REQUEST_CREATED", "PULL_REQUEST_UPDATED", "PULL_REQUEST_REOPENED"}
)
"""The pull-request events the bootstrap's filter groups build; a merged or closed pull
request is followed by the push to the deployment branch, which is what applies."""
PUSH = "PUSH"
_PR_TRIGGER = re.compile(r"^pr/(?P<number>[1-9][0-9]{0,9})$")
_BRANCH_TRIGGER = re.compile(r"^branch/(?P<branch>.+)$")
HEADS = "refs/heads/"


class WebhookError(Exception):
    """The webhook variables do not describe a build `ci` runs; the message names each."""


@dataclass(frozen=True)
class WebhookRun:
    pull_request: str | None
    """The pull (merge) request's number for a pull-request build, else None (a push)."""
    branch: str
    """The pushed branch, or the pull request's head (source) branch."""
    base_branch: str | None
    """The branch a pull request would merge into."""
    repository: str
    """The repository's path on its host (`owner/name`, `group/subgroup/name`)."""


def is_webhook(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("CODEBUILD_WEBHOOK_EVENT") or environ.get("CODEBUILD_WEBHOOK_TRIGGER"))


def parse(environ: Mapping[str, str]) -> WebhookRun:
    """The run a webhook build describes, reporting every missing or inconsistent variable."""
    problems: list[str] = []
    event = environ.get("CODEBUILD_WEBHOOK_EVENT", "")
    trigger = environ.get("CODEBUILD_WEBHOOK_TRIGGER", "")
    head = environ.get("CODEBUILD_WEBHOOK_HEAD_REF", "")
    base = environ.get("CODEBUILD_WEBHOOK_BASE_REF", "")
    repository = ""
    try:
        repository = repository_path(environ.get("CODEBUILD_SOURCE_REPO_URL", ""))
    except WebhookError as exc:
        problems.append(str(exc))
    pull_request: str | None = None
    branch = ""
    if event in PULL_REQUEST_EVENTS:
        number = _PR_TRIGGER.match(trigger)
        if number is None:
            problems.append(
                f"CODEBUILD_WEBHOOK_TRIGGER is {trigger!r} for a {event} build: "
                "expected pr/<number>"
            )
        else:
            pull_request = number.group("number")
        for name, value in (("HEAD_REF", head), ("BASE_REF", base)):
            if not value.startswith(HEADS):
                problems.append(
                    f"CODEBUILD_WEBHOOK_{name} is {value!r}: a pull request's refs are branches"
                )
        branch = head.removeprefix(HEADS)
    elif event == PUSH:
        pushed = _BRANCH_TRIGGER.match(trigger)
        if pushed is None:
            problems.append(
                f"CODEBUILD_WEBHOOK_TRIGGER is {trigger!r} for a push: expected branch/<name> "
                "(tag pushes are not built)"
            )
        else:
            branch = pushed.group("branch")
            if head and head != HEADS + branch:
                problems.append(
                    f"CODEBUILD_WEBHOOK_HEAD_REF is {head!r} but the trigger names branch "
                    f"{branch!r}"
                )
    else:
        expected = ", ".join(sorted({PUSH, *PULL_REQUEST_EVENTS}))
        problems.append(f"CODEBUILD_WEBHOOK_EVENT is {event!r}: expected one of {expected}")
    if problems:
        raise WebhookError("; ".join(problems))
    base_branch = base.removeprefix(HEADS) if pull_request else None
    return WebhookRun(pull_request, branch, base_branch, repository)


def repository_path(url: str) -> str:
    """`owner/name` from a clone URL (`https://github.com/owner/name.git`), credentials and
    `.git` dropped; GitLab's subgroups are kept (`group/sub/name`)."""
    parts = urlsplit(url)
    path = parts.path.strip("/").removesuffix(".git")
    if parts.scheme not in ("https", "http") or not parts.hostname or path.count("/") < 1:
        raise WebhookError(
            "CODEBUILD_SOURCE_REPO_URL is not an https URL of a repository "
            "(https://<host>/<owner>/<name>)"
        )
    return path
