"""Command-line entry point: argument parsing and exit codes only.

Heavy modules (boto3, the renderer) are imported inside the commands that need them so that
`mlops-controller --help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from controller import __version__
from controller.cli import bump, stages

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C."""

Command = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem with what the command line asks for; printed as one `error:` line, exit 1."""


def add_source_options(
    parser: argparse.ArgumentParser, *, paths: str = "", deletes: bool = False
) -> None:
    """Where the config comes from and the settings overrides; `paths` is "" (none), "one"
    or "many" positional files; `--max-deletes` only where deletes are planned."""
    group = parser.add_argument_group("config source")
    if paths == "one":
        group.add_argument("path", nargs="?", help="config file (default ./mlops-config.json)")
    elif paths == "many":
        group.add_argument(
            "paths", nargs="*", metavar="PATH", help="config files (default ./mlops-config.json)"
        )
    group.add_argument("--config", metavar="PATH", help="read the config from this file")
    group.add_argument("--repo", metavar="DIR", help="read the config from this git repository")
    group.add_argument(
        "--ref",
        help="git revision to read (default: the working tree's file when it has uncommitted "
        "changes, else HEAD)",
    )
    group.add_argument(
        "--config-path",
        default="mlops-config.json",
        help="path of the config inside the repository",
    )
    settings = parser.add_argument_group("settings overrides (flag > MLOPS_* variable > file)")
    settings.add_argument("--assets-bucket")
    settings.add_argument("--stack-prefix")
    settings.add_argument("--controller-id")
    settings.add_argument("--region")
    settings.add_argument("--assets-kms-key-arn", metavar="ARN")
    if deletes:
        settings.add_argument("--max-deletes", type=int)
    add_aws_options(parser)


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("AWS").add_argument(
        "--profile",
        help="AWS profile in ~/.aws/config (default AWS_PROFILE); its region is the last "
        "fallback for settings.region",
    )


def add_output_option(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument("-o", "--output", choices=("text", *choices), default="text")


def setting_flags(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("assets_bucket", "stack_prefix", "controller_id", "region", "max_deletes")
    more = ("deployment_branch", "assets_kms_key_arn")
    return {key: getattr(args, key, None) for key in (*keys, *more)}


def aws_defaults(args: argparse.Namespace) -> Any:
    """The local AWS configuration (`AwsDefaults`): profile, its region, known regions."""
    from controller.aws import session

    try:
        return session.local_defaults(getattr(args, "profile", None))
    except session.AwsConfigError as exc:
        raise CliError(str(exc)) from None


@dataclass(frozen=True)
class Loaded:
    result: Any
    """The `LoadResult`."""
    label: str
    """How plans, headers and the ledger name the config (says when it is uncommitted)."""
    raw: bytes
    repo: str | None
    """The git repository it was read from, if any (to name who applies)."""


def load(args: argparse.Namespace, *, default_to_git: bool, path: str | None = None) -> Loaded:
    """The config the arguments point at: a file, a revision (`--ref`), or, in a repository
    without `--ref`, the working tree's file when it differs from HEAD."""
    from controller.core import config
    from controller.gitops import checkout, source

    path = path or getattr(args, "path", None) or args.config
    repo = None
    try:
        if path:
            text, label = source.read_file(path), path
        elif args.ref:
            text = source.read_git(args.repo or ".", args.ref or "HEAD", args.config_path)
            label, repo = text.name, args.repo or "."
        elif args.repo or default_to_git:
            local = checkout.read(args.repo or ".", args.config_path)
            text, label, repo = local.text, local.label, args.repo or "."
        else:
            text, label = source.read_file(args.config_path), args.config_path
    except source.SourceError as exc:
        return Loaded(config.LoadResult(None, (exc.diagnostic,)), str(path or ""), b"", None)
    # After the text is read (and its size checked): the AWS configuration costs memory.
    defaults = aws_defaults(args)
    result = config.load(
        text.raw, text.name, revision=text.revision, flags=setting_flags(args), aws=defaults
    )
    if result.config is not None and label != result.config.source:
        result = replace(result, config=replace(result.config, source=label))
    return Loaded(result, label, text.raw, repo)


def load_config(args: argparse.Namespace, *, default_to_git: bool) -> Any:
    """A `LoadResult`, with source problems folded into its diagnostics."""
    return load(args, default_to_git=default_to_git).result


def cmd_validate(args: argparse.Namespace) -> int:
    """Every file given (the pre-commit hook passes each changed config); exit 1 if any fails."""
    results = [load(args, default_to_git=False, path=p).result for p in args.paths or [None]]
    valid = all(r.config is not None for r in results)
    if args.output == "json":
        diagnostics = [d.to_json() for r in results for d in r.diagnostics]
        print(json.dumps({"valid": valid, "diagnostics": diagnostics}, indent=2))
        return EXIT_OK if valid else EXIT_ERROR
    for result in results:
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stdout if result.config else sys.stderr)
        if result.config is not None:
            staged = result.config.stages
            count = len(result.config.pipelines) + (len(staged[0].pipelines) if staged else 0)
            order = " -> ".join(s.stage.name for s in staged if s.stage)
            where = f" in stages {order}" if staged else ""
            print(f"{result.config.source}: valid, {count} pipeline{'s' * (count != 1)}{where}")
        else:
            errors = len(result.errors)
            name = f"{result.diagnostics[0].file}: " if len(results) > 1 else ""
            print(f"{name}{errors} error{'s' * (errors != 1)}", file=sys.stderr)
    return EXIT_OK if valid else EXIT_ERROR


def cmd_render(args: argparse.Namespace) -> int:
    """Write each stack's template and parameters, to review or deploy by other means."""
    from controller.core import render

    result = load_config(args, default_to_git=False)
    if result.config is None:
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_ERROR
    target = Path(args.out)
    if target.exists() and not target.is_dir():
        print(f"error: --out {target}: exists and is not a directory", file=sys.stderr)
        return EXIT_ERROR
    for out, config in stages.render_targets(result.config, target):
        out.mkdir(parents=True, exist_ok=True)
        for stack in render.render_all(config):
            (out / f"{stack.stack_name}.yaml").write_text(stack.template_body)
            parameters = json.dumps(stack.boto_parameters(), indent=2) + "\n"
            (out / f"{stack.stack_name}.parameters.json").write_text(parameters)
            print(f"{out / stack.stack_name}.yaml  spec {stack.spec_hash[:12]}")
            for upload in stack.uploads:
                # Objects the stack's jobs read from the assets bucket: copy assets/ there.
                path = out / "assets" / upload.key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(upload.body)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from controller.core.config import schema

    print(json.dumps(schema.schema(), indent=2))
    return EXIT_OK


def _print_diagnostics(result: Any) -> None:
    for diagnostic in result.diagnostics:
        print(diagnostic.format(), file=sys.stderr)


def _console(args: argparse.Namespace) -> Any:
    """Human output goes to stderr when stdout carries JSON or Markdown."""
    from controller.core import report

    return report.console(stderr=getattr(args, "output", "text") != "text")


def _aws(args: argparse.Namespace, region: str | None) -> Any:
    from controller.aws.session import Aws

    return Aws(region=region, profile=getattr(args, "profile", None))


@dataclass(frozen=True)
class Planned:
    """A plan and what it was made from, for showing, saving and applying it."""

    loaded: Loaded
    config: Any
    full: Any
    """The plan before `--target`: what a saved plan records as seen."""
    plan: Any
    aws: Any
    guards: Any


@dataclass(frozen=True)
class Staged:
    """A config with `settings.stages`: `cli.stages` plans and applies it stage by stage."""

    config: Any


def _plan(args: argparse.Namespace) -> Planned | Staged | None:
    """None when the config is invalid (already reported)."""
    from controller.core.plan import TargetError, targeted
    from controller.gitops import reconcile

    loaded = load(args, default_to_git=True)
    if loaded.result.config is None:
        _print_diagnostics(loaded.result)
        return None
    config = loaded.result.config
    for warning in config.warnings:
        print(warning.format(), file=sys.stderr)
    if config.stages or getattr(args, "stage", None):
        if getattr(args, "target", None) or getattr(args, "out", None):
            raise CliError(
                "--target and --out plan one account; a config with settings.stages is "
                "planned and applied per stage: use --stage NAME"
            )
        return Staged(config)  # cli.stages plans each stage
    guards = reconcile.guards_for(config, getattr(args, "allow_delete_all", False))
    aws = _aws(args, config.settings.region)
    detect_drift = getattr(args, "detect_drift", False)
    full = reconcile.plan_for(config, aws, guards, detect_drift=detect_drift)
    try:
        plan = targeted(full, args.target or (), guards)
    except TargetError as exc:
        raise CliError(str(exc)) from None
    return Planned(loaded, config, full, plan, aws, guards)


def _emit_plan(args: argparse.Namespace, planned: Planned) -> None:
    from controller.core import report

    label, plan = planned.loaded.label, planned.plan
    if args.output == "json":
        print(report.dumps(report.plan_json(plan)))
    elif args.output == "markdown":
        print(report.plan_markdown(plan, label), end="")
    else:
        report.print_plan(plan, _console(args), label, show_all=getattr(args, "all", False))
    _note_targets(args, planned)


def _note_targets(args: argparse.Namespace, planned: Planned) -> None:
    if args.target:
        left = len(planned.full.actions) - len(planned.plan.actions)
        print(
            f"Targeted: {len(planned.plan.actions)} of {len(planned.full.actions)} pipelines "
            f"planned; {left} left out. As with Terraform's -target, the config is not wholly "
            "applied: use it to fix one pipeline, then apply without --target.",
            file=sys.stderr,
        )


def cmd_plan(args: argparse.Namespace) -> int:
    with aws_errors():
        planned = _plan(args)
        if planned is None:
            return EXIT_ERROR
        if isinstance(planned, Staged):
            return stages.plan(args, planned.config)
        _emit_plan(args, planned)
        if getattr(args, "out", None):
            _save_plan(args, planned)
        if planned.plan.refusal or planned.plan.blocked:
            return EXIT_ERROR  # the plan cannot be applied as a whole
        return EXIT_CHANGES if planned.plan.has_changes else EXIT_OK
    return EXIT_ERROR


def _save_plan(args: argparse.Namespace, planned: Planned) -> None:
    from datetime import UTC, datetime

    from controller.aws.session import account_of
    from controller.core import planfile

    if planned.plan.refusal:
        print(f"The plan is refused: nothing was written to {args.out}.", file=sys.stderr)
        return
    text = planfile.dumps(
        config=planned.config,
        config_raw=planned.loaded.raw,
        source=planned.loaded.label,
        full=planned.full,
        shown=planned.plan,
        targets=args.target or (),
        allow_delete_all=args.allow_delete_all,
        account=account_of(planned.aws),
        created=datetime.now(UTC),
        controller_version=__version__,
    )
    try:
        Path(args.out).write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write the plan to {args.out}: {exc.strerror}") from None
    print(
        f"Saved the plan to {args.out}. Apply exactly this plan with: "
        f"mlops-controller apply {args.out}",
        file=sys.stderr,
    )


def cmd_apply(args: argparse.Namespace) -> int:
    apply_limits(args)  # a bad --parallel or --wait-budget is refused before any AWS call
    if args.plan_file:
        return _apply_saved(args)
    if args.dry_run:
        return cmd_plan(args)
    from controller.core import report

    if not args.auto_approve and not _interactive():
        raise CliError(
            "apply asks for confirmation, and stdin is not a terminal: pass --auto-approve "
            "(as CI does), or save a plan with `plan --out FILE` and apply it with "
            "`apply FILE`"
        )
    with aws_errors():
        planned = _plan(args)
        if planned is None:
            return EXIT_ERROR
        if isinstance(planned, Staged):
            return stages.apply(args, planned.config)
        console = _console(args)
        report.print_plan(planned.plan, console, planned.loaded.label)
        _note_targets(args, planned)
        plan = planned.plan
        if not (args.auto_approve or plan.refusal or not plan.has_changes):
            question = (
                f"Apply these {len(plan.changes)} change(s) in {planned.config.settings.region}"
                f"{_profile_words(args)}?"
            )
            if not _confirm(console, question):
                console.print("Apply cancelled: nothing was changed.")
                return EXIT_ERROR
        return _apply(args, planned.config, plan, planned.aws, console, partial=bool(args.target))
    return EXIT_ERROR


def _apply_saved(args: argparse.Namespace) -> int:
    """`apply FILE`: exactly the saved plan, or a refusal saying what changed since."""
    from controller.aws.session import account_of
    from controller.core import config as config_module
    from controller.core import planfile, report
    from controller.core.plan import Guards, targeted
    from controller.gitops import reconcile

    given = [flag for flag, value in _source_flags(args).items() if value]
    if given:
        raise CliError(
            f"apply {args.plan_file} takes the config, settings, targets and guards from the "
            f"plan file: drop {', '.join(given)}"
        )
    try:
        saved = planfile.loads(Path(args.plan_file).read_text("utf-8"), args.plan_file)
    except OSError as exc:
        raise CliError(f"cannot read {args.plan_file}: {exc.strerror}") from None
    except (planfile.PlanFileError, UnicodeDecodeError) as exc:
        raise CliError(str(exc)) from None
    revision = _saved_revision(args, saved)
    result = config_module.load(
        saved.config_text.encode(),
        saved.config_name,
        revision=revision,
        flags=saved.settings,
        environ={},
    )
    if result.config is None:
        _print_diagnostics(result)
        raise CliError(f"the config in {args.plan_file} is not valid for this mlops-controller")
    config = replace(result.config, source=saved.source)
    with aws_errors():
        aws = _aws(args, config.settings.region)
        guards = Guards(saved.allow_delete_all, config.settings.max_deletes)
        full = reconcile.plan_for(config, aws, guards)
        plan = targeted(full, saved.targets, guards)
        reason = planfile.stale(saved, full, plan, account_of(aws))
        if reason:
            raise CliError(
                f"the saved plan {args.plan_file} no longer holds: {reason}. Nothing was "
                "changed: make a new plan"
            )
        console = _console(args)
        report.print_plan(plan, console, f"{saved.source} (saved plan {args.plan_file})")
        return _apply(args, config, plan, aws, console, partial=bool(saved.targets))
    return EXIT_ERROR


def _saved_revision(args: argparse.Namespace, saved: Any) -> str | None:
    """The saved plan's commit, recorded only when its config is that commit's file."""
    from controller.gitops import source

    if not saved.revision:
        return None
    holds = source.committed_as(".", saved.revision, saved.config_name, saved.config_text)
    if holds is False:
        raise CliError(
            f"the saved plan {args.plan_file} no longer holds: its config is not "
            f"{saved.config_name} at commit {saved.revision[:12]}. Nothing was changed: make "
            "a new plan"
        )
    if holds is None:
        print(
            f"Note: commit {saved.revision[:12]} is not in this directory's repository, so the "
            "plan's config cannot be checked against it: it is applied as a config without a "
            "commit, and the ledger records none.",
            file=sys.stderr,
        )
        return None
    return str(saved.revision)


def _source_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "--config": args.config,
        "--repo": args.repo,
        "--ref": args.ref,
        "--target": args.target,
        "--allow-delete-all": args.allow_delete_all,
        "--dry-run": args.dry_run,
        **{f"--{k.replace('_', '-')}": v for k, v in setting_flags(args).items()},
    }


def _apply(
    args: argparse.Namespace, config: Any, plan: Any, aws: Any, console: Any, *, partial: bool
) -> int:
    """Apply under Ctrl-C protection, print the outcome; the exit status."""
    from controller.aws.apply import WriteRefused
    from controller.core import report
    from controller.gitops import reconcile

    parallel, budget = apply_limits(args)
    stop = StopOnInterrupt()
    try:
        with stop:
            outcome = reconcile.apply_shown(
                config,
                plan,
                aws,
                console,
                parallel=parallel,
                wait_budget_seconds=budget,
                actor=_actor(args, config),
                before_write=stop.gate,
                partial=partial,
                repo=_repo_for(args, config),
                allow_older=getattr(args, "allow_older_commit", False),
            )
    except WriteRefused:
        if not stop.requested.is_set():
            raise
        outcome = None
    if outcome is not None:
        if args.output == "json":
            print(report.dumps(report.apply_json(outcome)))
        elif args.output == "markdown":
            print(report.apply_markdown(outcome, config.source), end="")
        report.print_apply(outcome, console)
    if stop.requested.is_set():
        console.print(
            "Interrupted: no stack operation was started after Ctrl-C; those in flight "
            "finished. Run apply again to converge.",
            markup=False,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK if outcome is not None and outcome.ok else EXIT_ERROR


def _repo_for(args: argparse.Namespace, config: Any) -> Any:
    """The repository the applied commit comes from, for the stale-commit guard; None for a
    working-tree file or a saved plan applied away from its repository (the guard then
    refuses a commit it cannot compare with the last applied one)."""
    from controller.gitops import source

    if not config.revision:
        return None
    try:
        return source.open_repo(getattr(args, "repo", None) or ".")
    except source.SourceError:
        return None


def _actor(args: argparse.Namespace, config: Any) -> str:
    """Who applies: CodeBuild's initiator, else USER, else the committer (or git user.name)."""
    from controller.gitops import checkout
    from controller.gitops.ledger import actor

    config_file = getattr(args, "config", None)
    where = Path(config_file).parent if config_file else (args.repo or ".")
    return actor(os.environ, checkout.who(where, config.revision))


class StopOnInterrupt:
    """Ctrl-C while applying. The first stops new writes: the applier's write gate refuses
    every one after it, operations in flight finish, the ledger records the run, and the
    command exits 130; every CloudFormation write is idempotent, so the next run converges.
    A second Ctrl-C exits at once (a lease left behind is taken over by the next run on this
    host, or expires)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: Any = None

    def gate(self, stack_name: str) -> None:
        from controller.aws.apply import WriteRefused

        if self.requested.is_set():
            raise WriteRefused(
                f"interrupted (Ctrl-C) before writing {stack_name}", "interrupted (Ctrl-C)"
            )

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._interrupted)
        return self

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _interrupted(self, _signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            print("\nInterrupted again: stopping at once.", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)
        self.requested.set()
        print(
            "\nInterrupted: starting no new stack operation; waiting for those in flight "
            "(Ctrl-C again to stop at once).",
            file=sys.stderr,
            flush=True,
        )


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _profile_words(args: argparse.Namespace) -> str:
    profile = getattr(args, "profile", None) or os.environ.get("AWS_PROFILE")
    return f" with AWS profile {profile}" if profile else ""


def _confirm(console: Any, question: str) -> bool:
    """Terraform's question: only `yes` goes ahead."""
    console.print(f"{question} Only 'yes' is accepted.", markup=False)
    console.print("Enter a value: ", end="", markup=False)
    answer = sys.stdin.readline()
    return answer.strip() == "yes"


def apply_limits(args: argparse.Namespace) -> tuple[int | None, float | None]:
    """`--parallel` and `--wait-budget`, else `MLOPS_PARALLEL` and `MLOPS_WAIT_BUDGET`."""
    from controller.gitops.watch import WatchError, parse_interval

    parallel_text = args.parallel or os.environ.get("MLOPS_PARALLEL") or None
    budget_text = args.wait_budget or os.environ.get("MLOPS_WAIT_BUDGET") or None
    parallel: int | None = None
    if parallel_text is not None:
        if not str(parallel_text).isdigit() or int(parallel_text) < 1:
            raise CliError(
                f"--parallel / MLOPS_PARALLEL {parallel_text!r}: expected a whole number of "
                "operations in flight, at least 1"
            )
        parallel = int(parallel_text)
    try:
        budget = parse_interval(budget_text) if budget_text else None
    except WatchError:
        raise CliError(
            f"--wait-budget / MLOPS_WAIT_BUDGET {budget_text!r}: expected a duration such as "
            "45m, 2h or 600 (seconds)"
        ) from None
    return parallel, budget


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--parallel",
        metavar="N",
        help="stack operations in flight at most (default 100, or MLOPS_PARALLEL); "
        "lowered while AWS throttles",
    )
    parser.add_argument(
        "--wait-budget",
        metavar="DURATION",
        help="stop waiting after this long (45m, 2h; or MLOPS_WAIT_BUDGET): operations in "
        "flight are left running and the next run continues them",
    )


def cmd_status(args: argparse.Namespace) -> int:
    from controller.aws import status
    from controller.core import report

    with aws_errors():
        loaded = load_config(args, default_to_git=True)
        if loaded.config is not None and (loaded.config.stages or args.stage):
            return stages.status(args, loaded.config)
        controller_id, region = status.identity(loaded, setting_flags(args))
        rows = status.collect(_aws(args, region), controller_id)
        if args.output == "json":
            print(report.dumps([row.to_json() for row in rows]))
        else:
            status.print_table(rows, _console(args), controller_id)
        return EXIT_OK
    return EXIT_ERROR


def cmd_adopt(args: argparse.Namespace) -> int:
    """Take ownership of a stack made by other means: show what changes, ask, write tags."""
    from controller.aws import adopt
    from controller.core import report
    from controller.core.render import render

    if not args.auto_approve and not _interactive():
        raise CliError(
            "adopt asks for confirmation, and stdin is not a terminal: pass --auto-approve"
        )
    loaded = load(args, default_to_git=True)
    config = loaded.result.config
    if config is None:
        _print_diagnostics(loaded.result)
        return EXIT_ERROR
    pipeline = _pipeline_named(config, args.name)
    settings = config.settings
    console = report.console()
    with aws_errors():
        aws = _aws(args, settings.region)
        try:
            adoption = adopt.inspect(
                aws, render(pipeline, settings), settings.controller_id, force=args.force
            )
            if adoption.already_owned:
                console.print(f"{pipeline.stack_name} is managed by this controller already.")
                return EXIT_OK
            adopt.print_adoption(adoption, console)
            if not args.auto_approve and not _confirm(console, "Write these tags?"):
                console.print("Adopt cancelled: nothing was changed.")
                return EXIT_ERROR
            adopt.adopt(
                aws,
                adoption,
                settings.assets_bucket,
                settings.controller_id,
                on_event=lambda event: report.print_event(event, console),
            )
        except adopt.AdoptError as exc:
            raise CliError(str(exc)) from None
        console.print(
            f"Adopted {pipeline.stack_name}: this controller now plans and applies it.",
            markup=False,
        )
        return EXIT_OK
    return EXIT_ERROR


def _pipeline_named(config: Any, name: str) -> Any:
    """The pipeline whose stack or model is `name`; one, or a CliError naming the choices."""
    import difflib

    found = [p for p in config.pipelines if name in (p.stack_name, p.name)]
    if len(found) == 1:
        return found[0]
    if found:
        choices = ", ".join(p.stack_name for p in found)
        raise CliError(f"{name!r} names {len(found)} pipelines: give the stack name ({choices})")
    known = [p.stack_name for p in config.pipelines] + [p.name for p in config.pipelines]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CliError(
        f"{name!r} is no pipeline of {config.source}{hint} (adopt a stack by adding its "
        "pipeline to the config first: the config says what the stack should be)"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.cli import demo

    return demo.run(keep=args.keep, workdir=args.workdir, stages=args.stages)


def cmd_ci(args: argparse.Namespace) -> int:
    from controller.core import report
    from controller.core.redact import redact
    from controller.gitops import ci, source
    from controller.gitops.providers import HostError

    try:
        context = ci.context_from(os.environ)
    except ci.CiContextError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    parallel, budget = apply_limits(args)
    options = ci.CiOptions(
        Path(args.repo),
        args.config_path,
        Path(args.artifacts),
        setting_flags(args),
        os.environ,
        local_aws=aws_defaults(args),
        parallel=parallel,
        wait_budget_seconds=budget,
    )
    with aws_errors():
        try:
            return ci.run(context, options, report.console())
        except (source.SourceError, HostError) as exc:
            print(redact(str(exc)), file=sys.stderr)
    return EXIT_ERROR


def cmd_history(args: argparse.Namespace) -> int:
    from controller.gitops import history

    with aws_errors():
        loaded = load_config(args, default_to_git=True)
        if loaded.config is not None and (loaded.config.stages or args.stage):
            return stages.history(args, loaded.config)
        identity = history.identity(loaded, setting_flags(args))
        if identity is None:
            print(
                "error: history needs the assets bucket: give --assets-bucket or a valid config",
                file=sys.stderr,
            )
            return EXIT_ERROR
        records = history.read(identity, args.limit, profile=args.profile)
        if args.output == "json":
            print(json.dumps([r.to_json() for r in records], indent=2))
        else:
            unfinished = history.unfinished(identity)
            if unfinished is not None:
                history.print_unfinished(unfinished, _console(args))
            history.print_table(records, _console(args), identity)
        return EXIT_OK
    return EXIT_ERROR


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from controller.core import report
    from controller.gitops import bootstrap, wheel

    console = report.console()
    with aws_errors():
        try:
            values = bootstrap.parameters(args.notification_email, args.parameter)
            built = wheel.Wheel.read(Path(args.wheel)) if args.wheel else wheel.this_controller()
            console.print(
                f"Controller wheel {built.filename} (sha256 {built.sha256}).", soft_wrap=True
            )
            done = bootstrap.deploy(
                _aws(args, args.region),
                args.stack_name,
                values,
                on_event=lambda event: report.print_event(event, console),
                wheel=built,
            )
        except (bootstrap.BootstrapError, wheel.WheelError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        console.print(f"Stack {done.stack_name} {done.verb} ({done.status}).")
        if done.published:
            console.print(f"The build installs {done.published}", markup=False, soft_wrap=True)
        for key, value in sorted(done.outputs.items()):
            console.print(f"  {key}: {value}", markup=False, soft_wrap=True)
        return EXIT_OK
    return EXIT_ERROR


def cmd_watch(args: argparse.Namespace) -> int:
    from controller.core import report
    from controller.core.redact import redact
    from controller.gitops import watch

    parallel, budget = apply_limits(args)
    options = watch.WatchOptions(
        args.repo,
        args.branch,
        args.config_path,
        Path(args.cache_dir) if args.cache_dir else watch.DEFAULT_CACHE,
        setting_flags(args),
        os.environ,
        local_aws=aws_defaults(args),
        parallel=parallel,
        wait_budget_seconds=budget,
    )
    try:
        interval = watch.parse_interval(args.interval)
        return watch.watch(options, interval, report.console(), once=args.once)
    except watch.WatchError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)
    return EXIT_ERROR


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn "cannot reach AWS" into one line and exit 1, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    from controller.core.redact import redact
    from controller.gitops.ledger import LedgerError

    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        print(redact(f"error: AWS call failed: {exc}"), file=sys.stderr)
    except LedgerError as exc:
        print(redact(f"error: {exc}"), file=sys.stderr)


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    add_source_options(parser, deletes=True)
    parser.add_argument(
        "--allow-delete-all",
        action="store_true",
        help="allow a plan that deletes every managed pipeline",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="NAME",
        help="plan only this stack or model name (repeatable), and what it depends on, as "
        "Terraform's -target",
    )
    parser.add_argument(
        "--detect-drift",
        action="store_true",
        help="also run CloudFormation drift detection on the managed stacks (slower: "
        "it reads every resource; scheduled ci runs always do)",
    )
    stages.add_stage_option(parser)


def _add_approval_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="do not ask for confirmation (needed when stdin is not a terminal)",
    )


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1, like every other error: 2 means "changes" to `plan`'s callers."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops-controller",
        description="GitOps controller for SageMaker ML pipelines: commit mlops-config.json, "
        "see the plan, merge, and AWS converges.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check configs and print every problem")
    add_source_options(validate, paths="many")
    add_output_option(validate, "json")
    validate.set_defaults(handler=cmd_validate)

    render_cmd = commands.add_parser(
        "render", help="write every stack's template and parameters to a directory"
    )
    add_source_options(render_cmd, paths="one")
    render_cmd.add_argument("--out", required=True, metavar="DIR", help="output directory")
    render_cmd.set_defaults(handler=cmd_render)

    schema_cmd = commands.add_parser("schema", help="print the JSON Schema of mlops-config.json")
    schema_cmd.set_defaults(handler=cmd_schema)

    plan = commands.add_parser(
        "plan", help="show what apply would change (exit 0 none, 2 changes, 1 error)"
    )
    _add_plan_options(plan)
    add_output_option(plan, "json", "markdown")
    plan.add_argument(
        "--out", metavar="FILE", help="also save the plan, to apply exactly it with `apply FILE`"
    )
    plan.add_argument(
        "--all", action="store_true", help="list unchanged pipelines too (default: only changes)"
    )
    plan.set_defaults(handler=cmd_plan)

    apply = commands.add_parser("apply", help="make AWS match the config (or a saved plan)")
    apply.add_argument(
        "plan_file", nargs="?", metavar="PLAN", help="a plan saved by `plan --out PLAN`"
    )
    apply.add_argument(
        "--allow-older-commit",
        action="store_true",
        help="apply even if the commit is older than the last applied one (or cannot be "
        "compared with it); it becomes the last applied commit",
    )
    _add_plan_options(apply)
    _add_approval_option(apply)
    apply.add_argument("--dry-run", action="store_true", help="only plan")
    add_limit_options(apply)
    add_output_option(apply, "json", "markdown")
    apply.set_defaults(handler=cmd_apply)

    status_cmd = commands.add_parser("status", help="every managed pipeline and its state")
    add_source_options(status_cmd)
    stages.add_stage_option(status_cmd)
    add_output_option(status_cmd, "json")
    status_cmd.set_defaults(handler=cmd_status)

    adopt_cmd = commands.add_parser(
        "adopt", help="take ownership of a stack created by other means (writes its tags)"
    )
    adopt_cmd.add_argument("name", metavar="NAME", help="stack name or model name")
    add_source_options(adopt_cmd)
    _add_approval_option(adopt_cmd)
    adopt_cmd.add_argument(
        "--force", action="store_true", help="adopt a stack another controller manages"
    )
    adopt_cmd.set_defaults(handler=cmd_adopt)

    ci_cmd = commands.add_parser(
        "ci", help="CodeBuild entry point: apply a push, comment a pull request's plan"
    )
    ci_cmd.add_argument("--repo", default=".", metavar="DIR", help="the build's git clone")
    ci_cmd.add_argument("--config-path", default="mlops-config.json", help="config in the repo")
    ci_cmd.add_argument(
        "--artifacts", default="mlops-artifacts", metavar="DIR", help="where plan files go"
    )
    for flag in (
        "--assets-bucket",
        "--stack-prefix",
        "--controller-id",
        "--region",
        "--assets-kms-key-arn",
    ):
        ci_cmd.add_argument(flag)
    ci_cmd.add_argument("--max-deletes", type=int)
    add_aws_options(ci_cmd)
    add_limit_options(ci_cmd)
    ci_cmd.add_argument(
        "--deployment-branch",
        help="the branch whose pushes are applied (default MLOPS_DEPLOYMENT_BRANCH, else main); "
        "never read from the config file",
    )
    ci_cmd.set_defaults(handler=cmd_ci)

    history_cmd = commands.add_parser("history", help="past applies from the ledger, newest first")
    add_source_options(history_cmd)
    stages.add_stage_option(history_cmd)
    add_output_option(history_cmd, "json")
    history_cmd.add_argument("--limit", type=int, default=20, metavar="N")
    history_cmd.set_defaults(handler=cmd_history)

    boot = commands.add_parser(
        "bootstrap", help="deploy the controller's own stack (repo, CodeBuild, events, topic)"
    )
    boot.add_argument("--stack-name", required=True)
    boot.add_argument("--notification-email", required=True, metavar="E")
    boot.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="K=V",
        help="another template parameter, e.g. ExistingS3Bucket=my-bucket (repeatable)",
    )
    boot.add_argument(
        "--wheel",
        metavar="FILE",
        help="publish this controller wheel instead of the controller running the command",
    )
    boot.add_argument("--region")
    add_aws_options(boot)
    boot.set_defaults(handler=cmd_bootstrap)

    watch_cmd = commands.add_parser(
        "watch", help="poll a branch and apply each new commit (GitOps without CodeBuild)"
    )
    watch_cmd.add_argument("--repo", required=True, metavar="DIR|URL")
    watch_cmd.add_argument("--branch", default="main")
    watch_cmd.add_argument("--interval", default="30s", help="30s, 5m, 1h, 1m30s (default 30s)")
    watch_cmd.add_argument("--once", action="store_true", help="one round, then exit")
    watch_cmd.add_argument("--config-path", default="mlops-config.json")
    watch_cmd.add_argument("--cache-dir", metavar="DIR", help="where URLs are mirrored")
    for flag in (
        "--assets-bucket",
        "--stack-prefix",
        "--controller-id",
        "--region",
        "--assets-kms-key-arn",
    ):
        watch_cmd.add_argument(flag)
    watch_cmd.add_argument("--max-deletes", type=int)
    add_aws_options(watch_cmd)
    add_limit_options(watch_cmd)
    watch_cmd.set_defaults(handler=cmd_watch)

    stages.add_commands(commands, add_source_options)
    bump.add_command(commands, add_aws_options)

    demo = commands.add_parser("demo", help="the GitOps story on an embedded AWS emulator")
    demo.add_argument(
        "--keep", action="store_true", help="leave the emulator running and print AWS_ENDPOINT_URL"
    )
    demo.add_argument("--workdir", help="where to create the demo config repo (default: temp)")
    demo.add_argument(
        "--stages", action="store_true", help="the multi-account story: dev, staging, prod"
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    try:
        return handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        guarded, sys.stdout = sys.stdout, stdout
        guarded.flush()
        if isinstance(guarded, _Stdout) and guarded.closed_early:
            print("note: standard output was closed early; the rest was dropped", file=sys.stderr)


class _Stdout:
    """Standard output that outlives its reader (`mlops-controller render ... | head`).

    A closed pipe must not stop a command half-way (render writing 4 of 18 files, an apply
    stopping between two stack writes): later output is dropped and the command finishes.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.closed_early = False

    def write(self, text: str) -> int:
        if not self.closed_early:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_early:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        """Point the descriptor at /dev/null, so that the interpreter's last flush is quiet."""
        self.closed_early = True
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    raise SystemExit(main())
