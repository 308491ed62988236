"""Which git host a build talks to, with which token and API, and the feedback it leaves there.

Everything here comes from the build's environment, which the bootstrap sets
(`MLOPS_GIT_PROVIDER`, `MLOPS_GIT_TOKEN_SECRET`) or the operator does (`GITHUB_TOKEN`,
`GITHUB_API_URL`, ...): never from the commit being built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from controller.aws import secrets
from controller.aws.session import Aws
from controller.gitops.providers import (
    CommitStatus,
    GitHost,
    HostError,
    Provider,
    PullRequestOpener,
)

TOKEN_VARIABLES = {
    Provider.GITHUB: "GITHUB_TOKEN",
    Provider.GITHUB_ENTERPRISE: "GITHUB_TOKEN",
    Provider.GITLAB: "GITLAB_TOKEN",
    Provider.BITBUCKET: "BITBUCKET_TOKEN",
}
API_VARIABLES = {
    Provider.GITHUB: "GITHUB_API_URL",
    Provider.GITHUB_ENTERPRISE: "GITHUB_API_URL",
    Provider.GITLAB: "GITLAB_API_URL",
    Provider.BITBUCKET: "BITBUCKET_API_URL",
}
GIT_USERS = {
    Provider.GITHUB: "x-access-token",
    Provider.GITHUB_ENTERPRISE: "x-access-token",
    Provider.GITLAB: "oauth2",
    Provider.BITBUCKET: "x-token-auth",
}
"""The user name each host expects beside an API token in git over HTTPS."""
SECRET_VARIABLE = "MLOPS_GIT_TOKEN_SECRET"
PROVIDER_VARIABLE = "MLOPS_GIT_PROVIDER"
REPOSITORY_VARIABLE = "MLOPS_GIT_REPOSITORY"


@dataclass(frozen=True)
class Target:
    """Where a build's feedback goes: the host, the repository on it, and its web address
    (an Enterprise or self-managed server's API is found from it)."""

    provider: Provider
    repository: str
    repository_url: str = ""


def provider_of(environ: Mapping[str, str]) -> Provider:
    """The bootstrap's provider; CodeCommit when unset (the stacks before connections)."""
    name = environ.get(PROVIDER_VARIABLE, "") or Provider.CODECOMMIT.value
    try:
        return Provider(name)
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise HostError(f"{PROVIDER_VARIABLE} is {name!r}: expected one of {choices}") from None


def api_url(target: Target, environ: Mapping[str, str]) -> str:
    """The API base: the variable when set, else the host's public API, else (GitHub
    Enterprise, GitLab self-managed) the server the repository is cloned from."""
    from controller.gitops.providers import bitbucket, github, gitlab

    explicit = environ.get(API_VARIABLES[target.provider], "")
    if explicit:
        return explicit
    server = urlsplit(target.repository_url)
    origin = f"{server.scheme}://{server.hostname}" if server.hostname else ""
    if target.provider is Provider.GITHUB_ENTERPRISE:
        if not origin:
            raise HostError("GitHub Enterprise: set GITHUB_API_URL (https://<server>/api/v3)")
        return f"{origin}/api/v3"
    if target.provider is Provider.GITLAB:
        return f"{origin}/api/v4" if origin else gitlab.API_URL
    if target.provider is Provider.BITBUCKET:
        return bitbucket.API_URL
    return github.API_URL


def token(provider: Provider, environ: Mapping[str, str], aws: Aws) -> str:
    variable = TOKEN_VARIABLES[provider]
    if environ.get(variable):
        return environ[variable]
    secret = environ.get(SECRET_VARIABLE, "")
    if not secret:
        raise HostError(
            f"no token for {provider.value}: set {variable}, or bootstrap with "
            f"GitTokenSecretArn (the build reads it from {SECRET_VARIABLE})"
        )
    try:
        return secrets.token_in(aws, secret)
    except secrets.SecretError as exc:
        raise HostError(str(exc)) from None


def git_credentials(provider: Provider, secret: str) -> str:
    """`user:password` for git over HTTPS with the same token the API calls use (`bump`'s
    push). A Bitbucket API token or app password already names its user (`user:secret`)."""
    if provider is Provider.BITBUCKET and ":" in secret:
        return secret
    return f"{GIT_USERS[provider]}:{secret}"


def host_for(target: Target, environ: Mapping[str, str], aws: Aws) -> GitHost:
    # Imported here, as in `api_url`: `ci` imports this module for every build, and a
    # CodeCommit build need not load PyGithub and python-gitlab.
    from controller.gitops.providers import bitbucket, github, gitlab

    if target.provider is Provider.CODECOMMIT:
        raise HostError("CodeCommit's comment is posted through its AWS API, not a token")
    secret = token(target.provider, environ, aws)
    base = api_url(target, environ)
    build_url = environ.get("CODEBUILD_BUILD_URL", "")
    if target.provider is Provider.GITLAB:
        return gitlab.GitLabHost(target.repository, secret, base, build_url)
    if target.provider is Provider.BITBUCKET:
        return bitbucket.Bitbucket(target.repository, secret, base, target_url=build_url)
    return github.GitHubHost(target.repository, secret, base, build_url)


def opener_for(target: Target, environ: Mapping[str, str], aws: Aws) -> PullRequestOpener:
    """What `bump` opens its pull requests with, on the config repository's own host."""
    if target.provider is Provider.CODECOMMIT:
        from controller.gitops.providers.codecommit import CodeCommitOpener

        return CodeCommitOpener(aws, target.repository)
    return host_for(target, environ, aws)


def publish(
    host: GitHost,
    number: str,
    commit: str,
    body: str,
    statuses: Sequence[CommitStatus],
    marker: str,
    say: Callable[[str], None],
) -> None:
    """The plan comment (one per pull request, edited by later builds), then the statuses."""
    edited = host.upsert_plan_comment(number, body, marker)
    say(f"{'Updated the' if edited else 'Posted the'} plan comment on pull request {number}.")
    for status in statuses:
        host.set_status(commit, status)
        say(f"Set {status.context} to {status.state.value} on {commit[:12]}.")
