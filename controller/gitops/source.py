"""Where the config text comes from: a file on disk, or a file at a git revision.

Git is read through its object database (GitPython), never by checking out, so it works on
CodeBuild's detached HEAD and on a bare mirror alike. Sizes are checked before reading (the
blob's header, the file's stat, a bounded read of anything else), so a committed 1 GiB file
or `--config /dev/zero` is refused with the limit instead of filling memory.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import git

from controller.core.config.document import MAX_BYTES
from controller.core.diagnostics import Diagnostic, error
from controller.core.errors import SourceProblem

DEFAULT_CONFIG = "mlops-config.json"
SYMLINK_MODE = 0o120000
"""A git tree entry's mode for a symbolic link: its blob is the link's target, not a file."""


@dataclass(frozen=True)
class ConfigText:
    name: str
    raw: bytes
    revision: str | None = None


class SourceError(SourceProblem):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


class AncestryUnknown(Exception):
    """Git cannot tell whether one commit is older than another, even after fetching."""


def read_file(path: str | Path) -> ConfigText:
    path = Path(path)
    try:
        with path.open("rb") as stream:
            size = _stat_size(stream.fileno())
            if size > MAX_BYTES:
                raise _too_big(str(path), size)
            raw = stream.read(MAX_BYTES + 1)  # a device or pipe has no size: read a bound
        if len(raw) > MAX_BYTES:
            raise _too_big(str(path), None)
        return ConfigText(str(path), raw)
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
    """The commit `ref` names, in any syntax git itself accepts (`HEAD@{yesterday}` too)."""
    try:
        sha = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
        return repo.commit(sha)
    except (git.BadName, ValueError, git.GitCommandError):
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
    if blob.mode == SYMLINK_MODE:
        raise _fail(
            name,
            f"{path} is a symbolic link in commit {commit.hexsha[:12]}, not a file",
            "the config itself committed as a regular file",
        )
    if blob.size > MAX_BYTES:  # from the object's header: nothing is read
        raise _too_big(name, blob.size)
    return ConfigText(name, blob.data_stream.read(), commit.hexsha)


def refuse_link_out_of(root: Path, path: str) -> None:
    """SourceError when `path` in the working tree `root` is (or lies under) a symbolic link
    that leads out of the repository: the config would then be a file the repository does
    not hold, planned as "uncommitted changes" and so without the stale-commit guard."""
    on_disk = root / path
    top = root.resolve()
    target = on_disk.resolve()
    if target == top or top in target.parents:
        return
    how = "is a symbolic link" if on_disk.is_symlink() else "leads"
    raise _fail(
        str(on_disk),
        f"{path} {how} out of the repository (to {target})",
        "the config as a file inside the repository",
    )


def _fail(name: str, message: str, expected: str, code: str = "E000") -> SourceError:
    return SourceError(error(code, "$", message, expected).located(name, None))


def _too_big(name: str, size: int | None) -> SourceError:
    """The same diagnostic as the parser's size check (E001), raised before reading."""
    found = f"file is {size} bytes" if size is not None else f"file is over {MAX_BYTES} bytes"
    return _fail(name, found, f"a config under {MAX_BYTES} bytes (5 MiB)", "E001")


def _stat_size(fd: int) -> int:
    """The size of a regular file; 0 for devices and pipes, which are read with a bound."""
    status = os.fstat(fd)
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def is_superseded(repo: git.Repo, commit: str, last_applied: str | None) -> bool:
    """Strictly older than the last applied commit: applying it would roll a newer one back.

    The stale-commit guard (`reconcile` evaluates it under the apply lease). It fails
    closed: when the clone cannot tell (the last applied commit is not in it, or a shallow
    clone cuts the history between them), more history is fetched from the remotes; when
    that cannot settle it either, AncestryUnknown says why instead of answering "newer".
    """
    if not last_applied or last_applied == commit:
        return False
    known = _known_ancestry(repo, commit, last_applied)
    if known is None:
        _fetch_history(repo, last_applied)
        known = _known_ancestry(repo, commit, last_applied)
    if known is None:
        missing = not _has_commit(repo, last_applied)
        why = (
            f"{last_applied[:12]} is not in the repository"
            if missing
            else "the repository is a shallow clone that does not reach back far enough"
        )
        raise AncestryUnknown(
            f"cannot tell whether commit {commit[:12]} is older than {last_applied[:12]}, the "
            f"last applied commit: {why}, and fetching more history did not help. Nothing was "
            "applied: run from a full clone (CodeBuild: clone depth 0) that has that commit"
        )
    return known


def committed_as(repo_dir: str | PathLike[str], revision: str, name: str, text: str) -> bool | None:
    """Whether `text` is the config `name` (`path@commit`, as `read_git` names it) holds at
    `revision`: True, False, or None when it cannot be told here (no repository, the commit
    is not in it). A saved plan records its revision only when this is True."""
    path, _, short = name.rpartition("@")
    if not path or not revision.startswith(short):
        return False
    try:
        found = read_git(repo_dir, revision, path)
    except SourceError:
        try:
            resolve(open_repo(repo_dir), revision)
        except SourceError:
            return None
        return False
    return bytes(found.raw).decode("utf-8-sig", errors="replace") == text


def published(repo: git.Repo | None, commit: str | None, branch: str) -> bool:
    """Whether the deployment branch holds `commit`: as its remotes have it (a remote-tracking
    `<remote>/<branch>`), or, in a repository with no remote, as the local branch has it.
    An unpushed commit is not published: CI's clone will never see it."""
    if repo is None or not commit:
        return False
    if repo.remotes:
        refs = [f"refs/remotes/{remote.name}/{branch}" for remote in repo.remotes]
    else:
        refs = [f"refs/heads/{branch}"]
    for ref in refs:
        try:
            if repo.is_ancestor(repo.commit(commit), repo.commit(ref)):
                return True
        except (git.GitCommandError, git.BadName, ValueError):
            continue
    return False


def _known_ancestry(repo: git.Repo, commit: str, last_applied: str) -> bool | None:
    """Whether `commit` is an ancestor of `last_applied`, or None when the clone cannot say."""
    if not (_has_commit(repo, commit) and _has_commit(repo, last_applied)):
        return None
    try:
        if repo.is_ancestor(repo.commit(commit), repo.commit(last_applied)):
            return True
    except (git.GitCommandError, git.BadName, ValueError):
        return None
    return None if _is_shallow(repo) else False


def _has_commit(repo: git.Repo, sha: str) -> bool:
    try:
        repo.git.cat_file("-e", f"{sha}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _is_shallow(repo: git.Repo) -> bool:
    return (Path(repo.git_dir) / "shallow").exists()


def _fetch_history(repo: git.Repo, wanted: str) -> None:
    """Deepen a shallow clone, then fetch `wanted` itself, from each remote (best effort)."""
    for remote in repo.remotes:
        if _is_shallow(repo):
            _try_fetch(repo, "--unshallow", remote.name)
        if not _has_commit(repo, wanted):
            _try_fetch(repo, remote.name, wanted)
        if _has_commit(repo, wanted) and not _is_shallow(repo):
            return


def _try_fetch(repo: git.Repo, *args: str) -> None:
    try:
        repo.git.fetch("--quiet", *args)
    except git.GitCommandError:
        return  # an unreachable remote settles nothing; the caller then fails closed


def config_diff(
    repo_dir: str | PathLike[str], old: str, new: str, path: str = DEFAULT_CONFIG
) -> str | None:
    """A unified diff of the config text between two commits, for a pull-request comment.

    None when either commit is not in the clone or either side is over the config size
    limit; "" when the config did not change. A commit without the config diffs as an empty
    file, so a first config shows as all additions.
    """
    repo = open_repo(repo_dir)
    texts = []
    for ref in (old, new):
        try:
            tree = repo.commit(ref).tree
        except (git.BadName, ValueError):
            return None
        text = _blob_text(tree, path)
        if text is None:
            return None
        texts.append(text)
    lines = difflib.unified_diff(
        texts[0].splitlines(keepends=True),
        texts[1].splitlines(keepends=True),
        fromfile=f"a/{path}@{old[:12]}",
        tofile=f"b/{path}@{new[:12]}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _blob_text(tree: git.Tree, path: str) -> str | None:
    try:
        blob = tree / path
    except KeyError:
        return ""
    if blob.size > MAX_BYTES:
        return None
    return bytes(blob.data_stream.read()).decode("utf-8", errors="replace")
