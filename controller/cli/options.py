"""Typed options, built once from argparse's namespace: the commands never ask the namespace
what it may hold (`getattr(args, ..., None)`), so a flag a command lacks cannot be misread as
one left unset.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from controller.core.errors import UsageError

SETTING_FLAGS = (
    "assets_bucket",
    "stack_prefix",
    "controller_id",
    "region",
    "max_deletes",
    "deployment_branch",
    "assets_kms_key_arn",
)


def _get(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    """The one place a flag a parser may lack is read."""
    return vars(args).get(name, default)


@dataclass(frozen=True)
class Source:
    """Where the config comes from, the settings overrides, and the AWS profile."""

    path: str | None
    paths: tuple[str, ...]
    config: str | None
    repo: str | None
    ref: str | None
    config_path: str
    flags: dict[str, Any]
    profile: str | None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Source:
        return cls(
            _get(args, "path"),
            tuple(_get(args, "paths") or ()),
            _get(args, "config"),
            _get(args, "repo"),
            _get(args, "ref"),
            _get(args, "config_path", "mlops-config.json"),
            {key: _get(args, key) for key in SETTING_FLAGS},
            _get(args, "profile"),
        )

    @property
    def profile_words(self) -> str:
        profile = self.profile or os.environ.get("AWS_PROFILE")
        return f" with AWS profile {profile}" if profile else ""


@dataclass(frozen=True)
class Limits:
    """`--parallel` and `--wait-budget`, else `MLOPS_PARALLEL` and `MLOPS_WAIT_BUDGET`."""

    parallel: int | None = None
    wait_budget_seconds: float | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Limits:
        from controller.gitops.watch import parse_interval

        parallel_text = _get(args, "parallel") or os.environ.get("MLOPS_PARALLEL") or None
        budget_text = _get(args, "wait_budget") or os.environ.get("MLOPS_WAIT_BUDGET") or None
        parallel: int | None = None
        if parallel_text is not None:
            if not str(parallel_text).isdigit() or int(parallel_text) < 1:
                raise UsageError(
                    f"--parallel / MLOPS_PARALLEL {parallel_text!r}: expected a whole number of "
                    "operations in flight, at least 1"
                )
            parallel = int(parallel_text)
        try:
            budget = parse_interval(budget_text) if budget_text else None
        except UsageError:
            raise UsageError(
                f"--wait-budget / MLOPS_WAIT_BUDGET {budget_text!r}: expected a duration such "
                "as 45m, 2h or 600 (seconds)"
            ) from None
        return cls(parallel, budget)


@dataclass(frozen=True)
class Options:
    """Every option of every command, typed; a command reads the ones it offers."""

    command: str
    source: Source
    output: str
    stage: str | None
    targets: tuple[str, ...]
    allow_delete_all: bool
    detect_drift: bool
    show_all: bool
    out: str | None
    plan_file: str | None
    allow_older_commit: bool
    auto_approve: bool
    dry_run: bool
    limits: Limits
    limit: int
    name: str
    force: bool
    commit: str | None
    reject: bool
    note: str
    artifacts: str
    stack_name: str
    notification_email: str
    parameters: tuple[str, ...]
    wheel: str | None
    branch: str
    interval: str
    once: bool
    cache_dir: str | None
    keep: bool
    workdir: str | None
    stages: bool
    """`demo --stages`."""
    base: str
    """`bump --base`: the commit to start from."""
    push: str | None
    pull_request: str | None
    into: str

    @classmethod
    def of(cls, args: argparse.Namespace) -> Options:
        offers_limits = "parallel" in vars(args)
        return cls(
            command=str(_get(args, "command", "")),
            source=Source.of(args),
            output=_get(args, "output", "text"),
            stage=_get(args, "stage"),
            targets=tuple(_get(args, "target") or ()),
            allow_delete_all=bool(_get(args, "allow_delete_all", False)),
            detect_drift=bool(_get(args, "detect_drift", False)),
            show_all=bool(_get(args, "all", False)),
            out=_get(args, "out"),
            plan_file=_get(args, "plan_file"),
            allow_older_commit=bool(_get(args, "allow_older_commit", False)),
            auto_approve=bool(_get(args, "auto_approve", False)),
            dry_run=bool(_get(args, "dry_run", False)),
            limits=Limits.of(args) if offers_limits else Limits(),
            limit=int(_get(args, "limit", 20)),
            name=str(_get(args, "name", "")),
            force=bool(_get(args, "force", False)),
            commit=_get(args, "commit"),
            reject=bool(_get(args, "reject", False)),
            note=str(_get(args, "note", "")),
            artifacts=str(_get(args, "artifacts", "mlops-artifacts")),
            stack_name=str(_get(args, "stack_name", "")),
            notification_email=str(_get(args, "notification_email", "")),
            parameters=tuple(_get(args, "parameter") or ()),
            wheel=_get(args, "wheel"),
            branch=str(_get(args, "branch", "main")),
            interval=str(_get(args, "interval", "30s")),
            once=bool(_get(args, "once", False)),
            cache_dir=_get(args, "cache_dir"),
            keep=bool(_get(args, "keep", False)),
            workdir=_get(args, "workdir"),
            stages=bool(_get(args, "stages", False)),
            base=str(_get(args, "base", "HEAD")),
            push=_get(args, "push"),
            pull_request=_get(args, "pull_request"),
            into=str(_get(args, "into", "main")),
        )
