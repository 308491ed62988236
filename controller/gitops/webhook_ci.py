"""`ci`'s run context for a build CodeBuild's webhook started (a connection's repository).

`core.webhook` reads what happened; this module adds what the bootstrap decided (the provider,
the repository), refuses a build whose variables contradict it, and finds the commit a pull
request's config diff starts from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import git

from controller.core import webhook
from controller.gitops import ci, source
from controller.gitops.providers import HostError, Provider, hosts


def context(environ: Mapping[str, str]) -> ci.CiContext:
    """The run a webhook build describes; every problem is reported at once."""
    problems: list[str] = []
    if environ.get("MLOPS_EVENT"):
        problems.append(
            "MLOPS_EVENT is set in a build CodeBuild's webhook started: a webhook build is "
            "described by CodeBuild's own CODEBUILD_WEBHOOK_* variables alone"
        )
    run: webhook.WebhookRun | None = None
    try:
        run = webhook.parse(environ)
    except webhook.WebhookError as exc:
        problems.append(str(exc))
    provider: Provider | None = None
    try:
        provider = hosts.provider_of(environ)
    except HostError as exc:
        problems.append(str(exc))
    if provider is Provider.CODECOMMIT:
        problems.append(
            f"{hosts.PROVIDER_VARIABLE} is not set to a git host (github, github-enterprise, "
            "gitlab, bitbucket): a webhook build comes from a connection's repository"
        )
    expected = environ.get(hosts.REPOSITORY_VARIABLE, "")
    if run is not None and expected and run.repository.lower() != expected.lower():
        problems.append(
            f"the build's source is {run.repository}, not the repository the bootstrap names "
            f"({hosts.REPOSITORY_VARIABLE}={expected})"
        )
    commit = environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "")
    if not ci.COMMIT.match(commit):
        problems.append(
            f"CODEBUILD_RESOLVED_SOURCE_VERSION is {commit!r}: expected a 40-character commit id"
        )
    if problems or run is None or provider is None:
        raise ci.CiContextError("; ".join(problems))
    target = hosts.Target(provider, run.repository, environ.get("CODEBUILD_SOURCE_REPO_URL", ""))
    if run.pull_request is None:
        return ci.CiContext(ci.Event.PUSH, commit, run.branch, run.repository, target=target)
    return ci.CiContext(
        ci.Event.PULL_REQUEST,
        commit,
        run.branch,
        run.repository,
        run.pull_request,
        target=target,
        base_branch=run.base_branch,
    )


def with_base(context: ci.CiContext, repo_dir: Path) -> ci.CiContext:
    """The pull request's diff starts where its branch left the base branch; the webhook
    names only the base branch. Without it in the clone, the comment has no diff."""
    if context.destination_commit or not context.base_branch:
        return context
    repo = source.open_repo(repo_dir)
    for ref in (f"origin/{context.base_branch}", context.base_branch):
        try:
            bases = repo.merge_base(ref, context.commit)
        except git.GitCommandError:
            continue
        if bases:
            return dataclasses.replace(context, destination_commit=bases[0].hexsha)
    return context
