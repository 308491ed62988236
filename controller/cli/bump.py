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
    cmd.add_argument(
        "--push",
        metavar="REMOTE",
        help="push the new branch to this remote (a name or a URL); on a git host "
        "(MLOPS_GIT_PROVIDER) with its token, as `ci` finds it",
    )
    cmd.add_argument(
        "--pull-request",
        metavar="REPOSITORY",
        help="open a pull request in this repository (with --push), on the host "
        "MLOPS_GIT_PROVIDER names (codecommit when unset; owner/name on a git host)",
    )
    cmd.add_argument(
        "--into",
        default="main",
        help="the branch the pull request targets: the deployment branch (default: main)",
    )
    add_aws_options(cmd)
    cmd.set_defaults(handler=run)


def run(options: Options) -> int:
    """Errors of AWS and of git hosts are `ControllerError`s, which `main` reports."""
    import os

    import git

    from controller.aws import registry
    from controller.aws.session import Aws
    from controller.core.redact import redact
    from controller.gitops import bump
    from controller.gitops.providers import HostError, NewPullRequest, Provider, hosts

    clients: dict[str, Any] = {}
    profile = options.source.profile

    def approved(group_arn: str) -> list[str]:
        region = group_arn.split(":")[3]
        if region not in clients:
            clients[region] = registry.client_in(Aws(region=region, profile=profile))
        return bump.from_registry(clients[region])(group_arn)

    try:
        # The host is chosen as `ci` chooses it: from the bootstrap's variables.
        provider = hosts.provider_of(os.environ)
        repo = git.Repo(str(options.source.repo))
        result = bump.bump(repo, str(options.source.config), approved, options.base)
    except (bump.BumpError, git.GitError, ValueError, HostError) as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    if result.branch is None:
        print("every pin is the newest Approved version; nothing to bump")
        if result.unreadable:
            print(result.summary())
        return EXIT_OK
    verb = "committed" if result.created else "already proposed"
    print(f"{verb} on {result.branch} ({result.commit}):\n{result.summary()}")
    aws = Aws(profile=profile)
    environ = dict(os.environ)
    try:
        if options.push:
            credentials = None
            if provider is not Provider.CODECOMMIT:
                # Read once (the secret, maybe): the pull request is opened with it too.
                token = hosts.token(provider, environ, aws)
                environ[hosts.TOKEN_VARIABLES[provider]] = token
                credentials = hosts.git_credentials(provider, token)
            bump.push(repo, options.push, result.branch, credentials)
        if options.pull_request:
            # GitHub Enterprise's and self-managed GitLab's API is found from the address.
            url = bump.remote_url(repo, options.push) if options.push else ""
            target = hosts.Target(provider, options.pull_request, url)
            opener = hosts.opener_for(target, environ, aws)
            title, text = describe(result)
            opened = opener.open_pull_request(
                NewPullRequest(result.branch, options.into, title, text)
            )
            print(f"pull request {opened.number} into {options.into}: {opened.url}")
    except (git.GitError, HostError, bump.BumpError) as exc:
        # A git error repeats the command and the remote's answer: no credential shows.
        print(f"error: {redact(str(exc))}", file=sys.stderr)
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
