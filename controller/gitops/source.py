"""Where the config text comes from: a file on disk, or a file at a git revision.

Git is read through its object database (GitPython), never by checking out, so it works on
CodeBuild's detached HEAD and on a bare mirror alike.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import git

from controller.core.diagnostics import Diagnostic, error

DEFAULT_CONFIG = "mlops-config.json"


@dataclass(frozen=True)
class ConfigText:
    name: str
    raw: bytes
    revision: str | None = None


class SourceError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def read_file(path: str | Path) -> ConfigText:
    path = Path(path)
    try:
        return ConfigText(str(path), path.read_bytes())
    except FileNotFoundError:
        raise _fail(str(path), "file not found", "an existing mlops-config.json") from None
    except IsADirectoryError:
        raise _fail(str(path), "is a directory", "a JSON file") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot read file: {exc.strerror}", "a readable file") from None


def open_repo(repo_dir: str | PathLike[str]) -> git.Repo:
    try:
        return git.Repo(repo_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise _fail(str(repo_dir), "not a git repository", "a git working tree or clone") from None


def resolve(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, ValueError):
        if not repo.head.is_valid():
            raise _fail(
                str(repo.working_dir), "the repository has no commits yet", "a committed config"
            ) from None
        raise _fail(
            str(repo.working_dir), f"unknown revision {ref!r}", "a branch, tag or commit id"
        ) from None


def read_git(
    repo_dir: str | PathLike[str], ref: str = "HEAD", path: str = DEFAULT_CONFIG
) -> ConfigText:
    repo = open_repo(repo_dir)
    commit = resolve(repo, ref)
    name = f"{path}@{commit.hexsha[:12]}"
    try:
        blob = commit.tree / path
    except KeyError:
        raise _fail(
            name,
            f"no {path} in commit {commit.hexsha[:12]}",
            "the config committed at the repository root (or --config-path)",
        ) from None
    if blob.type != "blob":
        raise _fail(name, f"{path} is a directory in commit {commit.hexsha[:12]}", "a JSON file")
    return ConfigText(name, blob.data_stream.read(), commit.hexsha)


def _fail(name: str, message: str, expected: str) -> SourceError:
    return SourceError(error("E000", "$", message, expected).located(name, None))


def commit_id(repo_dir: str | PathLike[str], ref: str = "HEAD") -> str:
    """The full commit id a ref names (a detached HEAD is just another ref)."""
    return str(resolve(open_repo(repo_dir), ref).hexsha)


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor).

    A commit the clone does not have cannot be proved older, so the answer is then False.
    """
    try:
        return bool(repo.is_ancestor(repo.commit(ancestor), repo.commit(descendant)))
    except (git.BadName, ValueError, git.GitCommandError):
        return False


def is_superseded(repo: git.Repo, commit: str, last_applied: str | None) -> bool:
    """Strictly older than the last applied commit: applying it would roll a newer one back.

    The stale-commit guard of `ci` and `watch`; a late build or poll of such a commit is
    never applied.
    """
    return (
        bool(last_applied)
        and last_applied != commit
        and is_ancestor(repo, commit, str(last_applied))
    )


def config_diff(
    repo_dir: str | PathLike[str], old: str, new: str, path: str = DEFAULT_CONFIG
) -> str | None:
    """A unified diff of the config text between two commits, for a pull-request comment.

    None when either commit is not in the clone; "" when the config did not change. A commit
    without the config diffs as an empty file, so a first config shows as all additions.
    """
    repo = open_repo(repo_dir)
    texts = []
    for ref in (old, new):
        try:
            tree = repo.commit(ref).tree
        except (git.BadName, ValueError):
            return None
        texts.append(_blob_text(tree, path))
    lines = difflib.unified_diff(
        texts[0].splitlines(keepends=True),
        texts[1].splitlines(keepends=True),
        fromfile=f"a/{path}@{old[:12]}",
        tofile=f"b/{path}@{new[:12]}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _blob_text(tree: git.Tree, path: str) -> str:
    try:
        blob = tree / path
    except KeyError:
        return ""
    return bytes(blob.data_stream.read()).decode("utf-8", errors="replace")
