"""`mlops-controller bump`: a registry approval becomes a commit to review, never a deploy.

For each pipeline pinned to a model package version (`model_package_name`) whose group has a
newer Approved version, the config is rewritten to pin that version, on a new branch, in one
commit. The file is edited at the exact JSON value, so the diff is the pin alone. The
branch's name says what it pins, so a second run for the same approvals finds it and does
nothing. Merging it promotes through the stages like any other commit.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import git
from gitdb.base import IStream

from controller.aws import registry
from controller.aws.errors import wrapped
from controller.core import pins
from controller.core.config import document
from controller.core.render import short_hash

BRANCH_PREFIX = "mlops-bump/"


class BumpError(Exception):
    """The config cannot be read from the commit: nothing was written."""


@dataclass(frozen=True)
class BumpResult:
    bumps: tuple[pins.Bump, ...]
    branch: str | None
    """The branch holding the commit; None when there is nothing to bump."""
    commit: str | None
    created: bool
    """False when the branch already existed (an earlier run proposed the same pins)."""
    unreadable: tuple[str, ...] = ()
    """Groups the registry did not answer for: their pins are left as they are."""

    def summary(self) -> str:
        lines = [
            f"- {b.pin.model_name or document.format_path(b.pin.path)}: "
            f"{b.pin.package.arn} -> version {b.to.version} (Approved)"
            for b in self.bumps
        ]
        lines += [
            f"- registry not readable for {group}; left as pinned" for group in self.unreadable
        ]
        return "\n".join(lines)


Approved = Callable[[str], list[str]]
"""Group ARN -> ARNs of its Approved versions."""


def from_registry(sagemaker: Any) -> Approved:
    return lambda group: registry.approved_versions(sagemaker, group)


def bump(repo: git.Repo, config_path: str, approved: Approved, base: str = "HEAD") -> BumpResult:
    """Propose the newest Approved version for every pin, as one commit on a new branch."""
    parent = repo.commit(base)
    try:
        blob = parent.tree / config_path
    except KeyError as exc:
        raise BumpError(f"{config_path} is not in {base}") from exc
    raw = blob.data_stream.read()
    parsed, problems = document.parse(config_path, raw)
    if parsed is None:
        raise BumpError("; ".join(d.format() for d in problems))
    found = list(pins.pins(parsed.data))
    approved_of: dict[str, list[str]] = {}
    unreadable: list[str] = []
    for group in sorted({p.package.group_arn for p in found}):
        try:
            approved_of[group] = approved(group)
        except Exception as exc:
            if wrapped(exc) is None:
                raise
            unreadable.append(group)  # one group's failure never stops the others
    bumps = tuple(pins.plan(found, approved_of))
    if not bumps:
        return BumpResult((), None, None, False, tuple(unreadable))
    branch = branch_name(bumps)
    if branch in repo.heads:
        return BumpResult(bumps, branch, repo.heads[branch].commit.hexsha, False, tuple(unreadable))
    text = raw.decode("utf-8-sig")
    edited = document.replace_values(text, {b.pin.path: b.to.arn for b in bumps})
    _check(parsed.data, json.loads(edited), bumps)
    commit = _commit(repo, parent, config_path, blob.mode, edited.encode(), message(bumps))
    repo.create_head(branch, commit)
    return BumpResult(bumps, branch, commit.hexsha, True, tuple(unreadable))


def push(repo: git.Repo, remote: str, branch: str, credentials: str | None = None) -> None:
    """Push one of bump's branches to `remote` (a remote's name or a URL).

    `credentials` (`user:token`, a git host's) go to the remote's server alone, as git's
    `http.<server>/.extraHeader` set through its environment: never on a command line, in the
    remote's URL or in .git/config, so neither `ps`, a git error nor the clone holds them.
    """
    if not branch.startswith(BRANCH_PREFIX):
        raise BumpError(f"{branch} is not a bump branch ({BRANCH_PREFIX}*): not pushed")
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if credentials is not None:
        server = urlsplit(remote_url(repo, remote))
        port = f":{server.port}" if server.port else ""
        encoded = base64.b64encode(credentials.encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{server.scheme}://{server.hostname}{port}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {encoded}",
        }
    repo.git.push(remote, f"refs/heads/{branch}:refs/heads/{branch}", env=env)


def remote_url(repo: git.Repo, remote: str) -> str:
    """The address of a remote given by name, or `remote` itself (already a URL or path)."""
    try:
        return str(repo.remote(remote).url)
    except ValueError:
        return remote


def branch_name(bumps: tuple[pins.Bump, ...]) -> str:
    """Readable, and the same for the same target versions."""
    names = "-".join(f"{b.pin.model_name or 'model'}-v{b.to.version}" for b in bumps)
    digest = short_hash(sorted(b.to.arn for b in bumps), length=8)
    return f"{BRANCH_PREFIX}{names[:80].strip('-')}-{digest}"


def message(bumps: tuple[pins.Bump, ...]) -> str:
    title = "bump: pin the newest Approved model package version"
    body = "\n".join(f"{b.pin.model_name}: {b.pin.package.arn} -> {b.to.arn}" for b in bumps)
    return f"{title}\n\n{body}\n"


def _check(before: Any, after: Any, bumps: tuple[pins.Bump, ...]) -> None:
    """The edit changed exactly the pins: the data equals the original with them replaced."""
    expected = json.loads(json.dumps(before))
    for b in bumps:
        node = expected
        for part in b.pin.path[:-1]:
            node = node[part]
        node[b.pin.path[-1]] = b.to.arn
    if after != expected:
        raise BumpError("editing the pins changed more than the pins; nothing was written")


def _commit(
    repo: git.Repo, parent: git.Commit, path: str, mode: int, data: bytes, text: str
) -> git.Commit:
    """A commit of `parent` with one file replaced, built from objects: neither the working
    tree nor the checked-out branch is touched."""
    stored = repo.odb.store(IStream("blob", len(data), BytesIO(data)))
    index = git.IndexFile.from_tree(repo, parent.tree)
    index.add([git.BaseIndexEntry((mode, stored.binsha, 0, path))])
    tree = index.write_tree()
    return git.Commit.create_from_tree(repo, tree, text, parent_commits=[parent], head=False)
