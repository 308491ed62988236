"""The operator's checkout: the config as the working tree has it, and who is applying.

`plan` and `apply` run where someone has just edited mlops-config.json. Reading only HEAD
would plan something else than what `validate` checks and the editor shows, so an edited
file is planned as it is, and the plan says that it holds uncommitted changes; `--ref` still
reads a committed revision only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import git

from controller.gitops import source


@dataclass(frozen=True)
class Checkout:
    text: source.ConfigText
    head: str | None
    """The commit HEAD names (None before the first commit)."""
    uncommitted: bool
    """The working tree's file differs from HEAD's (or HEAD has none): `text` is the file."""

    @property
    def label(self) -> str:
        """The config's name for plan headers and the ledger."""
        if not self.uncommitted:
            return self.text.name
        base = f"on top of {self.head[:12]}" if self.head else "no commits yet"
        return f"{self.text.name} (working tree, uncommitted changes; {base})"


def read(repo_dir: str | PathLike[str], path: str = source.DEFAULT_CONFIG) -> Checkout:
    """The working tree's config when it differs from HEAD's, else HEAD's (with its commit)."""
    repo = source.open_repo(repo_dir)
    head = str(repo.head.commit.hexsha) if repo.head.is_valid() else None
    if repo.bare or repo.working_tree_dir is None:
        return Checkout(source.read_git(repo_dir, "HEAD", path), head, False)
    on_disk = Path(repo.working_tree_dir) / path
    committed = _committed(repo_dir, path) if head else None
    if not on_disk.exists() and head:
        return Checkout(committed or source.read_git(repo_dir, "HEAD", path), head, False)
    source.refuse_link_out_of(Path(repo.working_tree_dir), path)
    text = source.read_file(_shown(on_disk))
    if committed is not None and committed.raw == text.raw:
        return Checkout(committed, head, False)
    return Checkout(text, head, True)


def _committed(repo_dir: str | PathLike[str], path: str) -> source.ConfigText | None:
    try:
        return source.read_git(repo_dir, "HEAD", path)
    except source.SourceError:
        return None


def _shown(path: Path) -> Path:
    """Relative to the current directory when inside it, as a user would type it."""
    relative = os.path.relpath(path)
    return Path(relative) if not relative.startswith("..") else path


def who(repo_dir: str | PathLike[str], revision: str | None) -> str:
    """The committer of `revision`, or for uncommitted changes the repository's user.name:
    the ledger's actor when the environment names nobody (no USER, no CodeBuild)."""
    try:
        repo = source.open_repo(repo_dir)
        if revision:
            return str(repo.commit(revision).committer.name or "")
        return str(repo.config_reader().get_value("user", "name", ""))
    except (source.SourceError, git.BadName, ValueError):
        return ""
