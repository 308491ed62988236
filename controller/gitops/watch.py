"""`mlops-controller watch`: GitOps without CodeBuild, like Flux's source controller.

It polls a branch (fetching when the repository has a remote, or keeping a mirror of a URL in
a cache directory) and applies each new tip through the same `reconcile.apply_plan` as every
other entry point. The ledger says what was applied last, so a restarted watcher does not
apply the same commit again and never goes back to an older one.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git

from controller.aws.errors import wrapped
from controller.aws.ledger import actor as ledger_actor
from controller.aws.session import Aws
from controller.core import config as config_module
from controller.core.chain import Chain, reached
from controller.core.config.settings import AwsDefaults
from controller.core.errors import UsageError
from controller.core.redact import redact
from controller.gitops import chain as use_case
from controller.gitops import reconcile, source
from controller.present import Console, report
from controller.present import chain as present

UNITS = {"h": 3600, "m": 60, "s": 1}
DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms])")
DEFAULT_CACHE = Path.home() / ".cache" / "mlops-controller" / "repos"


class WatchError(UsageError):
    """A watch that cannot start: a bad interval or a repository that cannot be opened."""


def parse_interval(text: str) -> float:
    """A Go duration as Flux's `interval` takes it (`30s`, `5m`, `1h`, `1m30s`, `1.5h`), or a
    bare number of seconds."""
    compact = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", compact):
        seconds = float(compact)
    elif re.fullmatch(f"(?:{DURATION.pattern})+", compact):
        seconds = sum(float(n) * UNITS[unit] for n, unit in DURATION.findall(compact))
    else:
        seconds = 0.0
    if seconds <= 0:
        raise WatchError(
            f"--interval {text!r}: expected a positive duration such as 30s, 5m, 1h or 1m30s"
        )
    return seconds


def _profile(options: WatchOptions) -> str | None:
    return options.local_aws.profile if options.local_aws else None


@dataclass(frozen=True)
class WatchOptions:
    location: str
    """A local repository directory or a git URL."""
    branch: str = "main"
    config_path: str = source.DEFAULT_CONFIG
    cache_dir: Path = DEFAULT_CACHE
    flags: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    local_aws: AwsDefaults | None = None
    """`--profile` and what the local AWS configuration says (see `aws.session`)."""
    parallel: int | None = None
    wait_budget_seconds: float | None = None


@dataclass(frozen=True)
class Tick:
    """What one poll did."""

    commit: str
    applied: bool
    ok: bool
    message: str
    unfinished: bool = False
    """The apply left operations running or actions waiting: the next round continues."""


def is_url(location: str) -> bool:
    return "://" in location or (location.startswith("git@") and ":" in location)


def open_source(options: WatchOptions) -> git.Repo:
    if not is_url(options.location):
        try:
            return source.open_repo(options.location)
        except source.SourceError as exc:
            raise WatchError(f"--repo {options.location}: not a git repository") from exc
    digest = hashlib.sha256(options.location.encode()).hexdigest()[:16]
    mirror = options.cache_dir / digest
    try:
        if mirror.exists():
            return git.Repo(mirror)
        return git.Repo.clone_from(options.location, mirror, mirror=True)
    except git.GitCommandError as exc:
        # A URL may carry a token, and git repeats the URL in its errors.
        raise WatchError(redact(f"cannot clone {options.location}: {exc.stderr.strip()}")) from exc


def tip(repo: git.Repo, branch: str) -> str:
    """Fetch, then the branch's tip: the remote's branch in a working clone, else the local one."""
    if repo.bare and repo.remotes:
        repo.git.fetch("--prune", "origin")
        ref = branch
    elif repo.remotes:
        repo.remotes[0].fetch()
        ref = f"{repo.remotes[0].name}/{branch}"
    else:
        ref = branch
    return str(source.resolve(repo, ref).hexsha)


def poll(repo: git.Repo, options: WatchOptions, console: Console, resume: str = "") -> Tick:
    """One round: apply the branch's tip unless the ledger says it is applied or newer is.

    `resume` names a commit whose last apply left work waiting (operations left running by the
    wait budget, baselines still running): it is applied again to continue that work."""
    commit = tip(repo, options.branch)
    path = repo.working_tree_dir or repo.git_dir
    text = source.read_git(path, commit, options.config_path)
    loaded = config_module.load(
        text.raw,
        text.name,
        revision=commit,
        flags=options.flags,
        environ=options.environ,
        aws=options.local_aws,
    )
    if loaded.config is None:
        for diagnostic in loaded.diagnostics:
            console.print(diagnostic.format(), markup=False, soft_wrap=True)
        return Tick(commit, False, False, f"the config at {commit[:12]} is invalid")
    config = loaded.config
    aws = Aws(region=config.settings.region, profile=_profile(options))
    chain = use_case.judged(config, aws)
    ledger = reconcile.ledger_for(config, aws)
    pointer = ledger.pointer()
    applied = pointer is not None and pointer.commit == commit and pointer.ok
    if applied and commit != resume and len(chain.steps) == 1:
        return Tick(commit, False, True, f"{commit[:12]} is applied already")
    early = reconcile.stale(ledger, commit, repo)
    if early is not None:
        # A shortcut that spares planning each round; apply_plan decides under the lease.
        return Tick(commit, False, early.superseded, early.message)
    return _promote(repo, commit, chain, aws, options, console)


def _promote(
    repo: git.Repo,
    commit: str,
    chain: Chain,
    aws: Aws,
    options: WatchOptions,
    console: Console,
) -> Tick:
    """Every round continues the promotion of the tip as far as the gates allow (an approval
    may have arrived since the last round)."""
    for line in present.policy_lines(chain):
        console.print(line, markup=False, soft_wrap=True)
    request = use_case.PromoteRequest(
        commit=commit,
        actor=ledger_actor(options.environ, str(repo.commit(commit).committer.name or "")),
        options=lambda c: reconcile.options_for(
            c,
            options.parallel,
            wait_budget_seconds=options.wait_budget_seconds,
            on_progress=report.ProgressLine(console),
        ),
        hooks=use_case.printing_hooks(console, chain, quiet=True),
        repo=repo,
    )
    done = use_case.promote(chain, use_case.Sessions(aws, chain.config), request)
    if done.superseded:
        for step_result in done.steps:
            for note in step_result.result.notes if step_result.result else ():
                console.print(f"Note: {note}", markup=False, soft_wrap=True)
        return Tick(commit, False, True, done.superseded)
    present.print_result(done, console)
    if done.error is not None:
        return Tick(commit, True, False, f"error: {done.error.message} [{done.error.code}]")
    stopped = next((r.result.stopped for r in done.steps if r.result and r.result.stopped), "")
    if len(chain.steps) == 1:
        verdict = "apply failed for" if done.failed else "applied"
        message = f"{verdict} {commit[:12]}"
    else:
        message = f"promoted {commit[:12]} through {', '.join(reached(done.steps)) or 'no stage'}"
        if line := present.stopped(done.steps):
            message += f"; {line}"
    if stopped:
        message = f"stopped waiting for {commit[:12]} ({stopped}); the next round continues"
    return Tick(commit, True, not done.failed, message, bool(stopped))


def watch(
    options: WatchOptions,
    interval: float,
    console: Console,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Poll until stopped; with `once`, one round and its exit status.

    A round that fails (AWS unreachable, fetch refused) is reported and retried next interval:
    a watcher that dies on the first network blip converges nothing.
    """
    repo = open_source(options)
    stop = stop or threading.Event()
    resume = ""
    while True:
        try:
            tick = poll(repo, options, console, resume)
            console.print(tick.message, markup=False, soft_wrap=True)
            ok = tick.ok
            resume = tick.commit if tick.unfinished else ""
        except Exception as exc:
            error = wrapped(exc)
            if error is None and not isinstance(exc, git.GitCommandError):
                raise
            text = f"error: {error} [{error.code}]" if error else _git_error(exc)
            console.print(redact(text), markup=False, soft_wrap=True)
            ok = False
        if once:
            return 0 if ok else 1
        if stop.wait(interval):
            return 0


def _git_error(exc: Exception) -> str:
    assert isinstance(exc, git.GitCommandError)
    return f"error: git {exc.command[1]}: {exc.stderr.strip()}"
