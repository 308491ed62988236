"""The commands on a config with `settings.stages`: `plan`, `apply`, `status` and `history`
over every stage in order (or one, `--stage NAME`), and `approve` and `grants`.

`cli.main` hands a staged config over here; argument parsing and exit codes only, like main.
Heavy modules are imported inside the functions, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def add_commands(commands: Any, add_source_options: Callable[..., None]) -> None:
    approve = commands.add_parser(
        "approve", help="approve (or reject) a commit for a stage that waits for approval"
    )
    add_source_options(approve)
    approve.add_argument("--stage", required=True, help="the stage to approve the commit for")
    approve.add_argument(
        "--commit",
        metavar="SHA",
        help="the commit (default: the one waiting there, the newest the stage before applied)",
    )
    approve.add_argument("--reject", action="store_true", help="reject it instead (final)")
    approve.add_argument("--note", default="", help="why, recorded with the decision")
    approve.set_defaults(handler=approve_command)

    grants_cmd = commands.add_parser(
        "grants", help="the policy statements stage accounts need on the orchestrator's assets"
    )
    add_source_options(grants_cmd)
    grants_cmd.set_defaults(handler=grants_command)


def add_stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage", metavar="NAME", help="only this stage (default: every stage, in order)"
    )


def render_targets(config: Any, out: Path) -> list[tuple[Path, Any]]:
    """Where `render` writes each config: the directory itself for one account, else a
    directory per step (`orchestrator/`, `dev/`, ...)."""
    if not config.stages:
        return [(out, config)]
    from controller.core.gates import steps

    return [(out / step.name, step.config) for step in steps(config)]


def _unstaged(args: argparse.Namespace, config: Any) -> int | None:
    if config.stages:
        return None
    print(f"error: --stage {args.stage}: the config has no settings.stages", file=sys.stderr)
    return EXIT_ERROR


def plan(args: argparse.Namespace, config: Any) -> int:
    from controller.aws.session import Aws
    from controller.core import report, stage_report
    from controller.gitops import staged

    if (refused := _unstaged(args, config)) is not None:
        return refused
    with _errors():
        sessions = staged.Sessions(Aws(region=config.settings.region), config)
        plans = staged.plan_all(
            config,
            sessions,
            only=args.stage,
            allow_delete_all=getattr(args, "allow_delete_all", False),
        )
        if args.output == "json":
            print(report.dumps(stage_report.plans_json(plans)))
        elif args.output == "markdown":
            print(stage_report.plans_markdown(plans), end="")
        else:
            stage_report.print_plans(plans, _console(args))
        if any(p.plan is None or p.plan.refusal or p.plan.blocked for p in plans):
            return EXIT_ERROR  # a stage's plan cannot be applied as a whole
        return EXIT_CHANGES if any(p.plan and p.plan.has_changes for p in plans) else EXIT_OK
    return EXIT_ERROR


def apply(args: argparse.Namespace, config: Any) -> int:
    """Promote the commit as far as the gates allow, with what `apply` does for one account:
    confirmation on a terminal, `--parallel`/`--wait-budget`, and Ctrl-C stopping new writes."""
    from controller.aws.apply import WriteRefused
    from controller.cli.main import (
        EXIT_INTERRUPTED,
        StopOnInterrupt,
        _aws,
        _confirm,
        _profile_words,
        _repo_for,
        apply_limits,
    )
    from controller.core import report, stage_report
    from controller.core.gates import steps
    from controller.gitops import reconcile, staged
    from controller.gitops.ledger import actor

    if (refused := _unstaged(args, config)) is not None:
        return refused
    console = _console(args)
    parallel, budget = apply_limits(args)
    with _errors():
        sessions = staged.Sessions(_aws(args, config.settings.region), config)
        if not args.auto_approve:
            plans = staged.plan_all(
                config, sessions, only=args.stage, allow_delete_all=args.allow_delete_all
            )
            stage_report.print_plans(plans, console)
            where = args.stage or " -> ".join(step.name for step in steps(config))
            question = (
                f"Promote {str(config.revision)[:12]} through {where}{_profile_words(args)} "
                "as far as the gates allow?"
            )
            if not _confirm(console, question):
                console.print("Apply cancelled: nothing was changed.")
                return EXIT_ERROR
        stop = StopOnInterrupt()
        run = staged.Run(
            commit=str(config.revision),
            actor=actor(os.environ),
            options=lambda c: reconcile.options_for(
                c, parallel, wait_budget_seconds=budget, on_progress=report.ProgressLine(console)
            ),
            hooks=staged.printing_hooks(console),
            allow_delete_all=args.allow_delete_all,
            before_write=stop.gate,
            repo=_repo_for(args, config),
        )
        try:
            with stop:
                runs = staged.promote(config, sessions, run, only=args.stage)
        except WriteRefused:
            if not stop.requested.is_set():
                raise
            runs = ()
        if args.output == "json":
            print(report.dumps(stage_report.runs_json(runs)))
        stage_report.print_runs(steps(config, args.stage), runs, console)
        if line := stage_report.stopped(runs):
            console.print(line, markup=False, soft_wrap=True)
        if stop.requested.is_set():
            return EXIT_INTERRUPTED
        if any(r.failed for r in runs):
            return EXIT_ERROR
        asked = args.stage is not None and not any(r.outcome for r in runs)
        return EXIT_ERROR if asked else EXIT_OK
    return EXIT_ERROR


def status(args: argparse.Namespace, config: Any) -> int:
    from rich.text import Text

    from controller.aws import status as status_module
    from controller.aws.credentials import StageUnreachable
    from controller.aws.session import Aws
    from controller.core import report, stage_report
    from controller.core.gates import steps
    from controller.gitops import promotion, staged

    if (refused := _unstaged(args, config)) is not None:
        return refused
    console = _console(args)
    controller_id = config.settings.controller_id
    ok = True
    with _errors():
        sessions = staged.Sessions(Aws(region=config.settings.region), config)
        store = staged.promotions(config, sessions.home)
        found = []
        for step in steps(config, args.stage):
            newest = store.newest_applied(step.name)
            try:
                rows = status_module.collect(sessions.of(step), controller_id)
                problem = ""
            except StageUnreachable as exc:
                rows, problem, ok = (), str(exc), False
            found.append((step, newest, rows, problem))
        if args.output == "json":
            print(
                report.dumps(
                    [
                        {
                            "stage": step.name,
                            "problem": problem or None,
                            "last_promoted": promotion.promotion_json(newest) if newest else None,
                            "pipelines": [row.to_json() for row in rows],
                        }
                        for step, newest, rows, problem in found
                    ]
                )
            )
            return EXIT_OK if ok else EXIT_ERROR
        for step, newest, rows, problem in found:
            stage_report.print_step(step, console)
            if newest is not None:
                console.print(
                    f"Last promoted: {newest.commit[:12]} at "
                    f"{newest.time.strftime('%Y-%m-%d %H:%M:%S')} UTC by {newest.actor}",
                    markup=False,
                )
            if problem:
                console.print(Text.assemble(("Unreachable: ", "bold red"), problem))
            else:
                status_module.print_table(rows, console, controller_id)
        return EXIT_OK if ok else EXIT_ERROR
    return EXIT_ERROR


def history(args: argparse.Namespace, config: Any) -> int:
    from controller.aws.session import Aws
    from controller.core import stage_report
    from controller.core.gates import steps
    from controller.gitops import history as history_module
    from controller.gitops import promotion, staged

    if (refused := _unstaged(args, config)) is not None:
        return refused
    with _errors():
        (step,) = steps(config, args.stage) if args.stage else (None,)
        home = Aws(region=config.settings.region)
        promotions, approvals = staged.promotions(config, home).history(args.stage, args.limit)
        applies = staged.ledger_of(step, home).history(args.limit) if step else ()
        if args.output == "json":
            payload = {
                "promotions": [promotion.promotion_json(p) for p in promotions],
                "approvals": [promotion.approval_json(a) for a in approvals],
                "applies": [a.to_json() for a in applies],
            }
            print(json.dumps(payload, indent=2))
            return EXIT_OK
        console = _console(args)
        settings = config.settings
        where = f"s3://{settings.assets_bucket}"
        stage_report.print_history(promotions, approvals, console, where)
        if step is not None:
            identity = history_module.LedgerIdentity(
                settings.assets_bucket, f"{settings.controller_id} (stage {step.name})", None
            )
            history_module.print_table(applies, console, identity)
        return EXIT_OK
    return EXIT_ERROR


def approve_command(args: argparse.Namespace) -> int:
    from controller.aws.session import Aws
    from controller.cli.main import load_config
    from controller.core.gates import Decision
    from controller.gitops import staged

    loaded = load_config(args, default_to_git=True)
    if loaded.config is None:
        for diagnostic in loaded.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_ERROR
    config = loaded.config
    if (refused := _unstaged(args, config)) is not None:
        return refused
    with _errors():
        commit = _full_commit(args) if args.commit else None
        decision = Decision.REJECTED if args.reject else Decision.APPROVED
        home = Aws(region=config.settings.region)
        done = staged.decide(config, home, args.stage, commit, decision, args.note)
        when = done.time.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(
            f"{decision.value.capitalize()} {done.commit} for {done.stage} as {done.who} at {when}."
        )
        if decision is Decision.APPROVED:
            print(
                "The next run promotes it (CI's hourly run, or `mlops-controller apply`), once "
                "every stage before it has applied it completely."
            )
        return EXIT_OK
    return EXIT_ERROR


def _full_commit(args: argparse.Namespace) -> str:
    """The commit the user named, in full: from the repository when there is one."""
    from controller.core.gates import StageError
    from controller.gitops import source

    text = str(args.commit)
    try:
        return str(source.resolve(source.open_repo(args.repo or "."), text).hexsha)
    except source.SourceError:
        if re.fullmatch(r"[0-9a-f]{40}", text):
            return text
        raise StageError(f"--commit {text}: not a commit of the repository") from None


def grants_command(args: argparse.Namespace) -> int:
    from controller.cli.main import load_config
    from controller.core import grants

    loaded = load_config(args, default_to_git=False)
    if loaded.config is None:
        for diagnostic in loaded.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_ERROR
    config = loaded.config
    if not config.stages:
        print("error: the config has no settings.stages", file=sys.stderr)
        return EXIT_ERROR
    accounts = sorted({s.stage.account_id for s in config.stages if s.stage})
    settings = config.settings
    key = settings.assets_kms_key_arn
    payload = {
        "stage_accounts": accounts,
        "assets_bucket_policy_statement": grants.bucket_statement(settings.assets_bucket, accounts),
        "ecr_repository_policy_statement": grants.repository_statement(accounts),
        "assets_kms_key_arn": key,
        "kms_key_policy_statement": grants.key_statement(accounts, settings.region),
        # What the blueprints already give the stacks' roles; for roles of your own.
        "stage_role_kms_statement": grants.role_statement(key) if key else None,
    }
    print(json.dumps(payload, indent=2))
    return EXIT_OK


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Problems a user can cause with stages, like AWS errors: one line and exit 1."""
    from controller.cli.main import aws_errors
    from controller.core.gates import StageError
    from controller.gitops.promotion import PromotionError

    with aws_errors():
        try:
            yield
        except (StageError, PromotionError) as exc:
            print(f"error: {exc}", file=sys.stderr)


def _console(args: argparse.Namespace) -> Any:
    from controller.core import report

    return report.console(stderr=getattr(args, "output", "text") != "text")
