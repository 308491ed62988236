"""Command-line entry point: argument parsing, typed options, exit codes.

Every command runs on the chain of steps a config is (one step for a plain config): the use
cases live in `controller.gitops.chain`, the looks in `controller.present`. Heavy modules
(boto3, the renderer) are imported inside the commands that need them so that
`mlops-controller --help` and `validate` stay fast. `main` catches the one error root,
`ControllerError`, once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

from controller import __version__
from controller.cli import bump
from controller.cli.options import Options, Source
from controller.core.errors import ControllerError, StageError, UsageError

if TYPE_CHECKING:
    from controller.aws.session import Aws
    from controller.core.chain import Chain, ChainPlan, ChainResult
    from controller.core.config import LoadResult
    from controller.core.config.model import Config
    from controller.core.config.settings import AwsDefaults
    from controller.gitops.chain import PlanRequest, Sessions
    from controller.present import Console

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command stopped by Ctrl-C."""

Command = Callable[[Options], int]

CliError = UsageError
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


def add_stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage", metavar="NAME", help="only this step of the chain (default: every one, in order)"
    )


def aws_defaults(source: Source) -> AwsDefaults:
    """The local AWS configuration: profile, its region, known regions."""
    from controller.aws import session

    return session.local_defaults(source.profile)


# Loading


@dataclass(frozen=True)
class Loaded:
    result: LoadResult
    label: str
    """How plans, headers and the ledger name the config (says when it is uncommitted)."""
    raw: bytes
    repo: str | None
    """The git repository it was read from, if any (to name who applies)."""


def load(source: Source, *, default_to_git: bool, path: str | None = None) -> Loaded:
    """The config the options point at: a file, a revision (`--ref`), or, in a repository
    without `--ref`, the working tree's file when it differs from HEAD."""
    from controller.core import config
    from controller.gitops import checkout
    from controller.gitops import source as git_source

    path = path or source.path or source.config
    repo = None
    try:
        if path:
            text, label = git_source.read_file(path), path
        elif source.ref:
            text = git_source.read_git(source.repo or ".", source.ref, source.config_path)
            label, repo = text.name, source.repo or "."
        elif source.repo or default_to_git:
            local = checkout.read(source.repo or ".", source.config_path)
            text, label, repo = local.text, local.label, source.repo or "."
        else:
            text, label = git_source.read_file(source.config_path), source.config_path
    except git_source.SourceError as exc:
        return Loaded(config.LoadResult(None, (exc.diagnostic,)), str(path or ""), b"", None)
    # After the text is read (and its size checked): the AWS configuration costs memory.
    defaults = aws_defaults(source)
    result = config.load(
        text.raw, text.name, revision=text.revision, flags=source.flags, aws=defaults
    )
    if result.config is not None and label != result.config.source:
        result = replace(result, config=replace(result.config, source=label))
    return Loaded(result, label, text.raw, repo)


def _valid(loaded: Loaded) -> Config:
    """The config, or a ConfigInvalid after printing why."""
    config = loaded.result.config
    if config is None:
        _print_diagnostics(loaded.result)
        raise ConfigInvalid()
    for warning in config.warnings:
        print(warning.format(), file=sys.stderr)
    return config


class ConfigInvalid(ControllerError):
    """The config is invalid; its diagnostics are printed already."""

    code = "MC003"


def _print_diagnostics(result: LoadResult) -> None:
    for diagnostic in result.diagnostics:
        print(diagnostic.format(), file=sys.stderr)


def _console(options: Options) -> Console:
    """Human output goes to stderr when stdout carries JSON or Markdown."""
    from controller.present import report

    return report.console(stderr=options.output != "text")


def _aws(source: Source, region: str | None) -> Aws:
    from controller.aws.session import Aws

    return Aws(region=region, profile=source.profile)


def _dumps(document: Any) -> str:
    from controller.present import report

    return report.dumps(document)


# validate, render, schema


def cmd_validate(options: Options) -> int:
    """Every file given (the pre-commit hook passes each changed config); exit 1 if any fails."""
    paths = options.source.paths or (None,)
    results = [load(options.source, default_to_git=False, path=p).result for p in paths]
    valid = all(r.config is not None for r in results)
    if options.output == "json":
        diagnostics = [d.to_json() for r in results for d in r.diagnostics]
        from controller.core.chain import JSON_VERSION

        document = {"version": JSON_VERSION, "valid": valid, "diagnostics": diagnostics}
        print(json.dumps(document, indent=2))
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


def cmd_render(options: Options) -> int:
    """Write each stack's template and parameters, to review or deploy by other means: the
    directory itself for a chain of one step, else a directory per step."""
    from controller.core import render
    from controller.core.chain import chain_of

    config = _valid(load(options.source, default_to_git=False))
    target = Path(str(options.out))
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out {target}: exists and is not a directory")
    chain = chain_of(config)
    for step in chain.steps:
        out = target if len(chain.steps) == 1 else target / step.name
        if step.config is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        for stack in render.render_all(step.config):
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


def cmd_schema(options: Options) -> int:
    from controller.core.config import schema

    print(json.dumps(schema.schema(), indent=2))
    return EXIT_OK


# plan and apply: the chain's use cases


@dataclass(frozen=True)
class Judged:
    """A loaded config as a chain under the policy in force, with its sessions."""

    loaded: Loaded
    chain: Chain
    sessions: Sessions
    request: PlanRequest


def _judged(options: Options) -> Judged:
    from controller.gitops import chain as use_case

    loaded = load(options.source, default_to_git=True)
    config = _valid(loaded)
    home = _aws(options.source, config.settings.region)
    chain = use_case.judged(config, home)
    request = use_case.PlanRequest(
        options.stage, options.allow_delete_all, options.detect_drift, options.targets
    )
    chain.only(options.stage)  # an unknown --stage is an error before any plan
    return Judged(loaded, chain, use_case.Sessions(home, config), request)


def _planned(judged: Judged) -> tuple[ChainPlan, ChainPlan]:
    """The full plan of each step and the shown one (`--target`)."""
    from controller.gitops import chain as use_case

    full = use_case.plan(judged.chain, judged.sessions, judged.request)
    return full, use_case.targeted_plan(full, judged.request)


def _emit_plan(options: Options, judged: Judged, full: ChainPlan, shown: ChainPlan) -> None:
    from controller.present import chain as present

    label = judged.loaded.label
    if options.output == "json":
        print(_dumps(present.plan_json(shown)))
    elif options.output == "markdown":
        print(present.plan_markdown(shown, label), end="")
    else:
        present.print_plan(shown, _console(options), label, show_all=options.show_all)
    _note_targets(options, full, shown)


def _note_targets(options: Options, full: ChainPlan, shown: ChainPlan) -> None:
    if options.targets:
        total = sum(len(p.plan.actions) for p in full.steps if p.plan is not None)
        planned = sum(len(p.plan.actions) for p in shown.steps if p.plan is not None)
        steps = f" in {len(shown.steps)} steps" if len(full.steps) > 1 else ""
        print(
            f"Targeted: {planned} of {total} pipelines planned{steps}; {total - planned} left "
            "out. As with Terraform's -target, the config is not wholly applied: use it to "
            "fix one pipeline, then apply without --target.",
            file=sys.stderr,
        )


def _plan_status(shown: ChainPlan) -> int:
    if shown.blocked:
        return EXIT_ERROR  # a step's plan cannot be applied as a whole
    return EXIT_CHANGES if shown.has_changes else EXIT_OK


def cmd_plan(options: Options) -> int:
    judged = _judged(options)
    full, shown = _planned(judged)
    _emit_plan(options, judged, full, shown)
    if options.out:
        _save_plan(options, judged, full, shown)
    return _plan_status(shown)


def _save_plan(options: Options, judged: Judged, full: ChainPlan, shown: ChainPlan) -> None:
    """A saved plan is of one step: the only one, or the one `--stage` names."""
    from datetime import UTC, datetime

    from controller.aws.session import account_of
    from controller.core import planfile

    if len(full.steps) != 1:
        raise UsageError(
            f"plan --out saves the plan of one step: give --stage NAME (one of "
            f"{', '.join(s.name for s in judged.chain.steps)})"
        )
    step_full = full.steps[0]
    step_shown = shown.steps[0] if shown.steps else None
    if step_full.plan is None or step_shown is None or step_shown.plan is None:
        raise UsageError(f"step {step_full.step.name} has no plan to save: {step_full.problem}")
    if step_shown.plan.refusal:
        print(f"The plan is refused: nothing was written to {options.out}.", file=sys.stderr)
        return
    text = planfile.dumps(
        config=judged.chain.config,
        config_raw=judged.loaded.raw,
        source=judged.loaded.label,
        full=step_full.plan,
        shown=step_shown.plan,
        targets=options.targets,
        allow_delete_all=options.allow_delete_all,
        account=account_of(judged.sessions.of(step_full.step)),
        created=datetime.now(UTC),
        controller_version=__version__,
        step=step_full.step.name,
    )
    try:
        Path(str(options.out)).write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write the plan to {options.out}: {exc.strerror}") from None
    print(
        f"Saved the plan to {options.out}. Apply exactly this plan with: "
        f"mlops-controller apply {options.out}",
        file=sys.stderr,
    )


def cmd_apply(options: Options) -> int:
    if options.plan_file:
        return _apply_saved(options)
    if options.dry_run:
        return cmd_plan(options)
    if not options.auto_approve and not _interactive():
        raise UsageError(
            "apply asks for confirmation, and stdin is not a terminal: pass --auto-approve "
            "(as CI does), or save a plan with `plan --out FILE` and apply it with "
            "`apply FILE`"
        )
    judged = _judged(options)
    console = _console(options)
    confirmed: dict[str, Any] = {}
    if options.auto_approve:
        from controller.present import chain as present

        for line in present.policy_lines(judged.chain):
            console.print(line, markup=False, soft_wrap=True)
    if options.auto_approve and options.targets:
        _planned(judged)  # a --target that names no pipeline is refused before any write
    if not options.auto_approve:
        from controller.present import chain as present

        full, shown = _planned(judged)
        present.print_plan(shown, console, judged.loaded.label)
        _note_targets(options, full, shown)
        if len(judged.chain.steps) == 1:
            confirmed = {p.step.name: p.plan for p in shown.steps if p.plan is not None}
        asks = shown.has_changes or len(judged.chain.steps) > 1
        if asks and not _confirm(console, _question(options, judged, shown)):
            console.print("Apply cancelled: nothing was changed.")
            return EXIT_ERROR
    return _promote(options, judged, console, confirmed)


def _question(options: Options, judged: Judged, shown: ChainPlan) -> str:
    chain = judged.chain
    if len(chain.steps) == 1:
        changes = sum(len(p.plan.changes) for p in shown.steps if p.plan is not None)
        return (
            f"Apply these {changes} change(s) in {chain.config.settings.region}"
            f"{options.source.profile_words}?"
        )
    where = options.stage or " -> ".join(step.name for step in chain.steps)
    return (
        f"Promote {str(chain.revision)[:12]} through {where}{options.source.profile_words} "
        "as far as the gates allow?"
    )


def _promote(options: Options, judged: Judged, console: Console, plans: dict[str, Any]) -> int:
    """Promote under Ctrl-C protection, print the outcome; the exit status."""
    from controller.aws.apply import WriteRefused
    from controller.core.chain import ChainResult
    from controller.gitops import chain as use_case
    from controller.gitops import reconcile
    from controller.present import chain as present
    from controller.present import report

    config = judged.chain.config
    stop = StopOnInterrupt()
    limits = options.limits
    request = use_case.PromoteRequest(
        commit=config.revision,
        actor=_actor(options, config),
        plan=judged.request,
        options=lambda c: reconcile.options_for(
            c,
            limits.parallel,
            wait_budget_seconds=limits.wait_budget_seconds,
            on_progress=report.ProgressLine(console),
        ),
        hooks=use_case.printing_hooks(
            console, judged.chain, planned=bool(plans), quiet=len(judged.chain.steps) == 1
        ),
        before_write=stop.gate,
        repo=_repo_for(options.source, config),
        allow_older=options.allow_older_commit,
        plans=plans,
    )
    try:
        with stop:
            done = use_case.promote(judged.chain, judged.sessions, request)
    except WriteRefused:
        if not stop.requested.is_set():
            raise
        done = ChainResult(judged.chain, (), interrupted=True)
    if options.output == "json":
        print(_dumps(present.result_json(done)))
    elif options.output == "markdown":
        print(present.result_markdown(done, judged.loaded.label), end="")
    present.print_result(done, console, show_all=options.show_all)
    if stop.requested.is_set():
        console.print(
            "Interrupted: no stack operation was started after Ctrl-C; those in flight "
            "finished. Run apply again to converge.",
            markup=False,
        )
        return EXIT_INTERRUPTED
    return _apply_status(options, done)


def _apply_status(options: Options, done: ChainResult) -> int:
    if done.failed:
        return EXIT_ERROR
    asked = options.stage is not None and not any(r.outcome for r in done.steps)
    return EXIT_ERROR if asked else EXIT_OK


def _apply_saved(options: Options) -> int:
    """`apply FILE`: exactly the saved plan of its step, or a refusal saying what changed."""
    from controller.core import config as config_module
    from controller.core import planfile
    from controller.core.chain import ChainPlan, StepPlan
    from controller.gitops import saved as saved_plans
    from controller.present import chain as present

    given = [flag for flag, value in _source_flags(options).items() if value]
    if given:
        raise UsageError(
            f"apply {options.plan_file} takes the config, settings, targets and guards from "
            f"the plan file: drop {', '.join(given)}"
        )
    name = str(options.plan_file)
    try:
        saved = planfile.loads(Path(name).read_text("utf-8"), name)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(str(exc)) from None
    revision = saved_plans.revision_of(saved, name)
    result = config_module.load(
        saved.config_text.encode(),
        saved.config_name,
        revision=revision,
        flags=saved.settings,
        environ={},
    )
    if result.config is None:
        _print_diagnostics(result)
        raise UsageError(f"the config in {name} is not valid for this mlops-controller")
    config = replace(result.config, source=saved.source)
    again = saved_plans.replan(saved, config, _aws(options.source, config.settings.region), name)
    console = _console(options)
    shown = ChainPlan(again.chain, (StepPlan(again.step, again.plan),))
    present.print_plan(shown, console, f"{saved.source} (saved plan {name})")
    loaded = Loaded(result, saved.source, saved.config_text.encode(), None)
    judged = Judged(loaded, again.chain, again.sessions, again.request)
    plans = {again.step.name: again.plan}
    return _promote(replace(options, stage=saved.step), judged, console, plans)


def _source_flags(options: Options) -> dict[str, Any]:
    source = options.source
    return {
        "--config": source.config,
        "--repo": source.repo,
        "--ref": source.ref,
        "--target": options.targets,
        "--stage": options.stage,
        "--allow-delete-all": options.allow_delete_all,
        "--dry-run": options.dry_run,
        **{f"--{k.replace('_', '-')}": v for k, v in source.flags.items()},
    }


def _repo_for(source: Source, config: Config) -> Any:
    """The repository the applied commit comes from, for the stale-commit guard; None for a
    working-tree file or a saved plan applied away from its repository (the guard then
    refuses a commit it cannot compare with the last applied one)."""
    from controller.gitops import source as git_source

    if not config.revision:
        return None
    try:
        return git_source.open_repo(source.repo or ".")
    except git_source.SourceError:
        return None


def _actor(options: Options, config: Config) -> str:
    """Who applies: CodeBuild's initiator, else USER, else the committer (or git user.name)."""
    from controller.aws.ledger import actor
    from controller.gitops import checkout

    config_file = options.source.config
    where = Path(config_file).parent if config_file else (options.source.repo or ".")
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


def _confirm(console: Console, question: str) -> bool:
    """Terraform's question: only `yes` goes ahead."""
    console.print(f"{question} Only 'yes' is accepted.", markup=False)
    console.print("Enter a value: ", end="", markup=False)
    answer = sys.stdin.readline()
    return answer.strip() == "yes"


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


# status, history, approve, grants: the chain's records


def cmd_status(options: Options) -> int:
    from controller.aws import status
    from controller.gitops import chain as use_case
    from controller.gitops import status as chain_status
    from controller.present import status as status_view

    loaded = load(options.source, default_to_git=True)
    if loaded.result.config is not None:
        config = loaded.result.config
        home = _aws(options.source, config.settings.region)
        chain = use_case.judged(config, home)
        found = chain_status.of_chain(chain, home, options.stage)
    else:
        if options.stage:
            _print_diagnostics(loaded.result)
            raise ConfigInvalid()
        controller_id, region = status.identity(loaded.result, options.source.flags)
        found = chain_status.of_account(_aws(options.source, region), controller_id)
    if options.output == "json":
        print(_dumps(status_view.status_json(found)))
    else:
        status_view.print_status(found, _console(options))
    return EXIT_OK if found.ok else EXIT_ERROR


def cmd_history(options: Options) -> int:
    from controller.gitops import chain as use_case
    from controller.gitops import history
    from controller.present import history as history_view

    loaded = load(options.source, default_to_git=True)
    chain = None
    if loaded.result.config is not None:
        config = loaded.result.config
        chain = use_case.judged(config, _aws(options.source, config.settings.region))
    elif options.stage:
        _print_diagnostics(loaded.result)
        raise ConfigInvalid()
    where = history.identity(loaded.result, options.source.flags)
    if where is None:
        raise UsageError("history needs the assets bucket: give --assets-bucket or a valid config")
    found = history.collect(where, chain, options.stage, options.limit, options.source.profile)
    if options.output == "json":
        print(json.dumps(history_view.history_json(found), indent=2))
    else:
        history_view.print_history(found, _console(options))
    return EXIT_OK


def cmd_approve(options: Options) -> int:
    """Record a decision with the caller's own identity (`--profile`, else the environment's
    credentials): the record's key names who decided."""
    from controller.core.gates import Decision
    from controller.gitops import chain as use_case

    config = _valid(load(options.source, default_to_git=True))
    home = _aws(options.source, config.settings.region)
    chain = use_case.judged(config, home)
    if len(chain.steps) == 1:
        raise StageError(f"--stage {options.stage}: the config has no settings.stages")
    commit = _full_commit(options) if options.commit else None
    decision = Decision.REJECTED if options.reject else Decision.APPROVED
    done = use_case.decide(chain, home, str(options.stage), commit, decision, options.note)
    when = done.time.strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"{decision.value.capitalize()} {done.commit} for {done.stage} as {done.who} at {when}.")
    if decision is Decision.APPROVED:
        print(
            "The next run promotes it (CI's hourly run, or `mlops-controller apply`), once "
            "every stage before it has applied it completely."
        )
    return EXIT_OK


def _full_commit(options: Options) -> str:
    """The commit the user named, in full: from the repository when there is one."""
    from controller.gitops import source

    text = str(options.commit)
    try:
        return str(source.resolve(source.open_repo(options.source.repo or "."), text).hexsha)
    except source.SourceError:
        if re.fullmatch(r"[0-9a-f]{40}", text):
            return text
        raise StageError(f"--commit {text}: not a commit of the repository") from None


def cmd_grants(options: Options) -> int:
    from controller.core import grants

    config = _valid(load(options.source, default_to_git=False))
    if not config.stages:
        raise StageError("the config has no settings.stages")
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


# adopt, ci, bootstrap, watch, demo


def cmd_adopt(options: Options) -> int:
    """Take ownership of a stack made by other means: show what changes, ask, write tags. The
    stack is looked for in every step of the chain that deploys the pipeline (`--stage`)."""
    from controller.aws import adopt
    from controller.core.render import render
    from controller.gitops import chain as use_case
    from controller.present import adopt as adopt_view
    from controller.present import report

    if not options.auto_approve and not _interactive():
        raise UsageError(
            "adopt asks for confirmation, and stdin is not a terminal: pass --auto-approve"
        )
    config = _valid(load(options.source, default_to_git=True))
    home = _aws(options.source, config.settings.region)
    chain = use_case.judged(config, home)
    step, pipeline = _pipeline_named(chain, options.name, options.stage)
    assert step.config is not None
    settings = step.config.settings
    console = report.console()
    aws = use_case.Sessions(home, config).of(step)
    adoption = adopt.inspect(
        aws, render(pipeline, settings), settings.controller_id, force=options.force
    )
    if adoption.already_owned:
        console.print(f"{pipeline.stack_name} is managed by this controller already.")
        return EXIT_OK
    adopt_view.print_adoption(adoption, console)
    if not options.auto_approve and not _confirm(console, "Write these tags?"):
        console.print("Adopt cancelled: nothing was changed.")
        return EXIT_ERROR
    adopt.adopt(
        aws,
        adoption,
        settings.assets_bucket,
        settings.controller_id,
        on_event=lambda event: report.print_event(event, console),
    )
    console.print(
        f"Adopted {pipeline.stack_name}: this controller now plans and applies it.",
        markup=False,
    )
    return EXIT_OK


def _pipeline_named(chain: Chain, name: str, stage: str | None) -> tuple[Any, Any]:
    """The step and pipeline whose stack or model is `name`: one, or an error naming the
    choices. Without `--stage`, the first step that deploys it."""
    import difflib

    candidates = [s for s in chain.only(stage) if s.config is not None]
    for step in candidates:
        assert step.config is not None
        found = [p for p in step.config.pipelines if name in (p.stack_name, p.name)]
        if len(found) == 1:
            return step, found[0]
        if found:
            choices = ", ".join(p.stack_name for p in found)
            raise UsageError(
                f"{name!r} names {len(found)} pipelines: give the stack name ({choices})"
            )
    known = sorted(
        {
            x
            for s in candidates
            if s.config
            for p in s.config.pipelines
            for x in (p.stack_name, p.name)
        }
    )
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(
        f"{name!r} is no pipeline of {chain.config.source}{hint} (adopt a stack by adding its "
        "pipeline to the config first: the config says what the stack should be)"
    )


def cmd_ci(options: Options) -> int:
    from controller.gitops import ci
    from controller.present import report

    context = ci.context_from(os.environ)
    settings = ci.CiOptions(
        Path(str(options.source.repo or ".")),
        options.source.config_path,
        Path(options.artifacts),
        options.source.flags,
        os.environ,
        local_aws=aws_defaults(options.source),
        parallel=options.limits.parallel,
        wait_budget_seconds=options.limits.wait_budget_seconds,
    )
    return ci.run(context, settings, report.console())


def cmd_bootstrap(options: Options) -> int:
    from controller.gitops import bootstrap, wheel
    from controller.present import report

    console = report.console()
    values = bootstrap.parameters(options.notification_email, options.parameters)
    built = wheel.Wheel.read(Path(options.wheel)) if options.wheel else wheel.this_controller()
    console.print(f"Controller wheel {built.filename} (sha256 {built.sha256}).", soft_wrap=True)
    done = bootstrap.deploy(
        _aws(options.source, options.source.flags.get("region")),
        options.stack_name,
        values,
        on_event=lambda event: report.print_event(event, console),
        wheel=built,
    )
    console.print(f"Stack {done.stack_name} {done.verb} ({done.status}).")
    if done.published:
        console.print(f"The build installs {done.published}", markup=False, soft_wrap=True)
    for key, value in sorted(done.outputs.items()):
        console.print(f"  {key}: {value}", markup=False, soft_wrap=True)
    return EXIT_OK


def cmd_watch(options: Options) -> int:
    from controller.gitops import watch
    from controller.present import report

    settings = watch.WatchOptions(
        str(options.source.repo),
        options.branch,
        options.source.config_path,
        Path(options.cache_dir) if options.cache_dir else watch.DEFAULT_CACHE,
        options.source.flags,
        os.environ,
        local_aws=aws_defaults(options.source),
        parallel=options.limits.parallel,
        wait_budget_seconds=options.limits.wait_budget_seconds,
    )
    interval = watch.parse_interval(options.interval)
    return watch.watch(settings, interval, report.console(), once=options.once)


def cmd_demo(options: Options) -> int:
    from controller.cli import demo

    return demo.run(keep=options.keep, workdir=options.workdir, stages=options.stages)


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
    add_stage_option(parser)


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
    apply.add_argument(
        "--all", action="store_true", help="list unchanged stacks in the summary too"
    )
    apply.set_defaults(handler=cmd_apply)

    status_cmd = commands.add_parser("status", help="every managed pipeline and its state")
    add_source_options(status_cmd)
    add_stage_option(status_cmd)
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
    add_stage_option(adopt_cmd)
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
    add_stage_option(history_cmd)
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
    approve.set_defaults(handler=cmd_approve)

    grants_cmd = commands.add_parser(
        "grants", help="the policy statements stage accounts need on the orchestrator's assets"
    )
    add_source_options(grants_cmd)
    grants_cmd.set_defaults(handler=cmd_grants)
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
    """Run one command; every error a user can meet ends here, as one line (and, with
    `--output json`, as a JSON value), never as a traceback."""
    from controller.core.chain import JSON_VERSION
    from controller.core.redact import redact

    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    output = vars(args).get("output", "text")
    try:
        return handler(Options.of(args))
    except ConfigInvalid:
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        error = _controller_error(exc)
        if error is None:
            raise
        refusal = error.refusal()
        print(redact(f"error: {refusal.message}"), file=sys.stderr)
        if output == "json":
            document = {"version": JSON_VERSION, "error": refusal.to_json()}
            print(redact(json.dumps(document, indent=2)))
        return EXIT_ERROR
    finally:
        guarded, sys.stdout = sys.stdout, stdout
        guarded.flush()
        if isinstance(guarded, _Stdout) and guarded.closed_early:
            print("note: standard output was closed early; the rest was dropped", file=sys.stderr)


def _controller_error(exc: Exception) -> ControllerError | None:
    """The one root: a ControllerError, or the AWS SDK's error wrapped as one (without
    importing botocore for a command that never loaded it)."""
    if isinstance(exc, ControllerError):
        return exc
    if "botocore" not in sys.modules:
        return None
    from controller.aws.errors import wrapped

    return wrapped(exc)


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
