"""`mlops-controller bump`: argument parsing and exit codes only (see `gitops.bump`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.cli.options import Options

EXIT_OK = 0
EXIT_ERROR = 1


def add_command(commands: Any, add_aws_options: Callable[[argparse.ArgumentParser], None]) -> None:
    cmd = commands.add_parser(
        "bump",
        help="pin the newest Approved model package versions, as a commit on a new branch",
    )
    cmd.add_argument("--repo", default=".", help="the config repository (default: .)")
    cmd.add_argument(
        "--config", default="mlops-config.json", help="the config's path in the repository"
    )
    cmd.add_argument("--base", default="HEAD", help="the commit to start from (default: HEAD)")
    cmd.add_argument("--push", metavar="REMOTE", help="push the new branch to this remote")
    cmd.add_argument(
        "--pull-request",
        metavar="REPOSITORY",
        help="open a CodeCommit pull request in this repository (with --push)",
    )
    cmd.add_argument(
        "--into",
        default="main",
        help="the branch the pull request targets: the deployment branch (default: main)",
    )
    add_aws_options(cmd)
    cmd.set_defaults(handler=run)


def run(options: Options) -> int:
    import git

    from controller.aws import registry
    from controller.aws.codecommit import CodeCommitPullRequests
    from controller.aws.session import Aws
    from controller.gitops import bump

    clients: dict[str, Any] = {}

    def approved(group_arn: str) -> list[str]:
        region = group_arn.split(":")[3]
        if region not in clients:
            clients[region] = registry.client_in(Aws(region=region, profile=options.source.profile))
        return bump.from_registry(clients[region])(group_arn)

    try:
        repo = git.Repo(str(options.source.repo))
        result = bump.bump(repo, str(options.source.config), approved, options.base)
    except (bump.BumpError, git.GitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if result.branch is None:
        print("every pin is the newest Approved version; nothing to bump")
        if result.unreadable:
            print(result.summary())
        return EXIT_OK
    verb = "committed" if result.created else "already proposed"
    print(f"{verb} on {result.branch} ({result.commit}):\n{result.summary()}")
    try:
        if options.push:
            repo.remote(options.push).push(f"refs/heads/{result.branch}:refs/heads/{result.branch}")
        if options.pull_request:
            requests = CodeCommitPullRequests.of(
                Aws(profile=options.source.profile), options.pull_request
            )
            number = requests.open(result.branch, options.into, *describe(result))
            print(f"pull request {number} into {options.into}")
    except git.GitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def describe(result: Any) -> tuple[str, str]:
    """The pull request's title and text: the pins it moves; the plan follows as the CI
    build's comment on the pull request, as for any other change."""
    title = "Pin newly approved model versions"
    text = (
        "A model package version was approved in the SageMaker Model Registry. Merging this "
        "pins it; the stages then promote it like any other commit.\n\n"
        f"{result.summary()}\n\nThe plan of this change follows as a comment."
    )
    return title, text
