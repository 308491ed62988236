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
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from controller.aws.session import Aws
from controller.core import config as config_module
from controller.core import report
from controller.core.config.settings import AwsDefaults
from controller.core.redact import redact
from controller.gitops import reconcile, source
from controller.gitops.ledger import LedgerError
from controller.gitops.ledger import actor as ledger_actor

UNITS = {"h": 3600, "m": 60, "s": 1}
DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms])")
DEFAULT_CACHE = Path.home() / ".cache" / "mlops-controller" / "repos"


class WatchError(Exception):
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
    ledger = reconcile.ledger_for(config, aws)
    pointer = ledger.pointer()
    applied = pointer is not None and pointer.commit == commit and pointer.ok
    if applied and commit != resume and not config.stages:
        return Tick(commit, False, True, f"{commit[:12]} is applied already")
    early = reconcile.stale(ledger, commit, repo)
    if early is not None:
        # A shortcut that spares planning each round; apply_plan decides under the lease.
        return Tick(commit, False, early.superseded, early.message)
    if config.stages:
        return _promote(repo, commit, config, aws, options, console)
    plan = reconcile.plan_for(config, aws, reconcile.guards_for(config, False))
    report.print_plan(plan, console, config.source)
    result = reconcile.apply_shown(
        config,
        plan,
        aws,
        console,
        parallel=options.parallel,
        wait_budget_seconds=options.wait_budget_seconds,
        ledger=ledger,
        actor=ledger_actor(options.environ, str(repo.commit(commit).committer.name or "")),
        repo=repo,
    )
    if result.superseded:
        for note in result.notes:
            console.print(f"Note: {note}", markup=False, soft_wrap=True)
        return Tick(commit, False, True, result.refusal)
    report.print_apply(result, console)
    verdict = "applied" if result.ok else "apply failed for"
    message = f"{verdict} {commit[:12]}"
    if result.stopped:
        message = f"stopped waiting for {commit[:12]} ({result.stopped}); the next round continues"
    return Tick(commit, True, result.ok, message, bool(result.stopped))


def _promote(
    repo: git.Repo,
    commit: str,
    config: config_module.Config,
    aws: Aws,
    options: WatchOptions,
    console: Console,
) -> Tick:
    """With stages, every round continues the promotion of the tip as far as the gates allow
    (an approval may have arrived since the last round)."""
    from controller.core import stage_report
    from controller.core.gates import steps
    from controller.gitops import staged

    actor = ledger_actor(options.environ, str(repo.commit(commit).committer.name or ""))
    run = staged.Run(
        commit=commit,
        actor=actor,
        options=lambda c: reconcile.options_for(
            c, options.parallel, wait_budget_seconds=options.wait_budget_seconds
        ),
        hooks=staged.printing_hooks(console),
        repo=repo,
    )
    runs = staged.promote(config, staged.Sessions(aws, config), run)
    stage_report.print_runs(steps(config), runs, console)
    reached = [r.step.name for r in runs if r.outcome is not None]
    message = f"promoted {commit[:12]} through {', '.join(reached) or 'no stage'}"
    if line := stage_report.stopped(runs):
        message += f"; {line}"
    return Tick(commit, True, not any(r.failed for r in runs), message)


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
        except (ClientError, BotoCoreError, LedgerError, source.SourceError) as exc:
            console.print(redact(f"error: {exc}"), markup=False, soft_wrap=True)
            ok = False
        except git.GitCommandError as exc:
            message = f"error: git {exc.command[1]}: {exc.stderr.strip()}"
            console.print(redact(message), markup=False, soft_wrap=True)
            ok = False
        if once:
            return 0 if ok else 1
        if stop.wait(interval):
            return 0
