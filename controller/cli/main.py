"""Command-line entry point: argument parsing and exit codes only.

Heavy modules (boto3, the renderer) are imported inside the commands that need them so that
`mlops-controller --help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from controller import __version__
from controller.cli import stages

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Command = Callable[[argparse.Namespace], int]


def add_source_options(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    group = parser.add_argument_group("config source")
    if positional:
        group.add_argument("path", nargs="?", help="config file (default ./mlops-config.json)")
    group.add_argument("--config", metavar="PATH", help="read the config from this file")
    group.add_argument("--repo", metavar="DIR", help="read the config from this git repository")
    group.add_argument("--ref", default="HEAD", help="git revision to read (default HEAD)")
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
    settings.add_argument("--max-deletes", type=int)


def setting_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key: getattr(args, key, None)
        for key in ("assets_bucket", "stack_prefix", "controller_id", "region", "max_deletes")
    }


def read_source(args: argparse.Namespace, *, default_to_git: bool) -> Any:
    """The config text the arguments point at (a `ConfigText`)."""
    from controller.gitops import source

    path = getattr(args, "path", None) or args.config
    if path:
        return source.read_file(path)
    if args.repo or default_to_git:
        return source.read_git(args.repo or ".", args.ref, args.config_path)
    return source.read_file(args.config_path)


def load_config(args: argparse.Namespace, *, default_to_git: bool) -> Any:
    """A `LoadResult`, with source problems folded into its diagnostics."""
    from controller.core import config
    from controller.gitops import source

    try:
        text = read_source(args, default_to_git=default_to_git)
    except source.SourceError as exc:
        return config.LoadResult(None, (exc.diagnostic,))
    return config.load(text.raw, text.name, revision=text.revision, flags=setting_flags(args))


def cmd_validate(args: argparse.Namespace) -> int:
    result = load_config(args, default_to_git=False)
    if args.output == "json":
        payload = {
            "valid": result.config is not None,
            "diagnostics": [d.to_json() for d in result.diagnostics],
        }
        print(json.dumps(payload, indent=2))
    else:
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stdout if result.config else sys.stderr)
        if result.config is not None:
            stages = result.config.stages
            count = len(result.config.pipelines) + (len(stages[0].pipelines) if stages else 0)
            order = " -> ".join(s.stage.name for s in stages if s.stage)
            where = f" in stages {order}" if stages else ""
            print(f"{result.config.source}: valid, {count} pipeline{'s' * (count != 1)}{where}")
        else:
            errors = len(result.errors)
            print(f"{errors} error{'s' * (errors != 1)}", file=sys.stderr)
    return EXIT_OK if result.config is not None else EXIT_ERROR


def cmd_render(args: argparse.Namespace) -> int:
    """Write each stack's template and parameters, to review or deploy by other means."""
    from pathlib import Path

    from controller.core import render

    result = load_config(args, default_to_git=False)
    if result.config is None:
        for diagnostic in result.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_ERROR
    for out, config in stages.render_targets(result.config, Path(args.out)):
        out.mkdir(parents=True, exist_ok=True)
        for stack in render.render_all(config):
            (out / f"{stack.stack_name}.yaml").write_text(stack.template_body)
            parameters = json.dumps(stack.boto_parameters(), indent=2) + "\n"
            (out / f"{stack.stack_name}.parameters.json").write_text(parameters)
            print(f"{out / stack.stack_name}.yaml  spec {stack.spec_hash[:12]}")
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


def _plan(args: argparse.Namespace) -> tuple[Any, Any]:
    """(config, plan); plan is None when the config is invalid (already reported)."""
    from controller.aws.session import Aws
    from controller.gitops import reconcile

    result = load_config(args, default_to_git=True)
    if result.config is None:
        _print_diagnostics(result)
        return None, None
    for warning in result.config.warnings:
        print(warning.format(), file=sys.stderr)
    config = result.config
    if config.stages or getattr(args, "stage", None):
        return config, None  # cli.stages plans each stage
    guards = reconcile.guards_for(config, getattr(args, "allow_delete_all", False))
    return config, reconcile.plan_for(config, Aws(region=config.settings.region), guards)


def _emit_plan(args: argparse.Namespace, config: Any, plan: Any) -> None:
    from controller.core import report

    if args.output == "json":
        print(report.dumps(report.plan_json(plan)))
    elif args.output == "markdown":
        print(report.plan_markdown(plan, config.source), end="")
    else:
        report.print_plan(plan, _console(args), config.source)


def cmd_plan(args: argparse.Namespace) -> int:
    with aws_errors():
        config, plan = _plan(args)
        if config is not None and plan is None:
            return stages.plan(args, config)
        if plan is None:
            return EXIT_ERROR
        _emit_plan(args, config, plan)
        if plan.refusal:
            return EXIT_ERROR
        return EXIT_CHANGES if plan.has_changes else EXIT_OK
    return EXIT_ERROR


def cmd_apply(args: argparse.Namespace) -> int:
    if args.dry_run:
        return cmd_plan(args)
    from controller.aws.session import Aws
    from controller.core import report
    from controller.gitops import reconcile

    with aws_errors():
        config, plan = _plan(args)
        if config is not None and plan is None:
            return stages.apply(args, config)
        if plan is None:
            return EXIT_ERROR
        console = _console(args)
        report.print_plan(plan, console, config.source)
        aws = Aws(region=config.settings.region)
        outcome = reconcile.apply_plan(
            config,
            plan,
            aws,
            reconcile.options_for(config, parallel=args.parallel),
            on_event=lambda event: report.print_event(event, console),
            on_result=lambda result: report.print_result(result, console),
        )
        if args.output == "json":
            print(report.dumps(report.apply_json(outcome)))
        report.print_apply(outcome, console)
        return EXIT_OK if outcome.ok else EXIT_ERROR
    return EXIT_ERROR


def cmd_status(args: argparse.Namespace) -> int:
    from controller.aws import status
    from controller.aws.session import Aws
    from controller.core import report

    with aws_errors():
        loaded = load_config(args, default_to_git=True)
        if loaded.config is not None and (loaded.config.stages or args.stage):
            return stages.status(args, loaded.config)
        controller_id, region = status.identity(loaded, setting_flags(args))
        rows = status.collect(Aws(region=region), controller_id)
        if args.output == "json":
            print(report.dumps([row.to_json() for row in rows]))
        else:
            status.print_table(rows, _console(args), controller_id)
        return EXIT_OK
    return EXIT_ERROR


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.cli import demo

    return demo.run(keep=args.keep, workdir=args.workdir, stages=args.stages)


def cmd_ci(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from rich.console import Console

    from controller.gitops import ci, source

    try:
        context = ci.context_from(os.environ)
    except ci.CiContextError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    options = ci.CiOptions(
        Path(args.repo), args.config_path, Path(args.artifacts), setting_flags(args), os.environ
    )
    with aws_errors():
        try:
            return ci.run(context, options, Console(highlight=False))
        except source.SourceError as exc:
            print(str(exc), file=sys.stderr)
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
        records = history.read(identity, args.limit)
        if args.output == "json":
            print(json.dumps([r.to_json() for r in records], indent=2))
        else:
            history.print_table(records, _console(args), identity)
        return EXIT_OK
    return EXIT_ERROR


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from rich.console import Console

    from controller.aws.session import Aws
    from controller.core import report
    from controller.gitops import bootstrap

    console = Console(highlight=False)
    with aws_errors():
        try:
            values = bootstrap.parameters(args.notification_email, args.parameter)
            done = bootstrap.deploy(
                Aws(region=args.region),
                args.stack_name,
                values,
                on_event=lambda event: report.print_event(event, console),
            )
        except bootstrap.BootstrapError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        console.print(f"Stack {done.stack_name} {done.verb} ({done.status}).")
        for key, value in sorted(done.outputs.items()):
            console.print(f"  {key}: {value}", markup=False)
        return EXIT_OK
    return EXIT_ERROR


def cmd_watch(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from rich.console import Console

    from controller.gitops import watch

    options = watch.WatchOptions(
        args.repo,
        args.branch,
        args.config_path,
        Path(args.cache_dir) if args.cache_dir else watch.DEFAULT_CACHE,
        setting_flags(args),
        os.environ,
    )
    try:
        interval = watch.parse_interval(args.interval)
        return watch.watch(options, interval, Console(highlight=False), once=args.once)
    except watch.WatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_ERROR


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn "cannot reach AWS" into one line and exit 1, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    from controller.gitops.ledger import LedgerError

    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)


def _add_plan_options(parser: argparse.ArgumentParser) -> None:
    add_source_options(parser)
    parser.add_argument(
        "--allow-delete-all",
        action="store_true",
        help="allow a plan that deletes every managed pipeline",
    )
    stages.add_stage_option(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-controller",
        description="GitOps controller for SageMaker ML pipelines: commit mlops-config.json, "
        "see the plan, merge, and AWS converges.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check a config and print every problem")
    add_source_options(validate, positional=True)
    validate.add_argument("--output", choices=("text", "json"), default="text")
    validate.set_defaults(handler=cmd_validate)

    render_cmd = commands.add_parser(
        "render", help="write every stack's template and parameters to a directory"
    )
    add_source_options(render_cmd, positional=True)
    render_cmd.add_argument("--out", required=True, metavar="DIR", help="output directory")
    render_cmd.set_defaults(handler=cmd_render)

    schema_cmd = commands.add_parser("schema", help="print the JSON Schema of mlops-config.json")
    schema_cmd.set_defaults(handler=cmd_schema)

    plan = commands.add_parser(
        "plan", help="show what apply would change (exit 0 none, 2 changes, 1 error)"
    )
    _add_plan_options(plan)
    plan.add_argument("--output", choices=("text", "json", "markdown"), default="text")
    plan.set_defaults(handler=cmd_plan)

    apply = commands.add_parser("apply", help="make AWS match the config")
    _add_plan_options(apply)
    apply.add_argument("--dry-run", action="store_true", help="only plan")
    apply.add_argument(
        "--parallel",
        type=int,
        default=4,
        metavar="N",
        help="stack operations in flight at once (default 4)",
    )
    apply.add_argument("--output", choices=("text", "json", "markdown"), default="text")
    apply.set_defaults(handler=cmd_apply)

    status_cmd = commands.add_parser("status", help="every managed pipeline and its state")
    add_source_options(status_cmd)
    stages.add_stage_option(status_cmd)
    status_cmd.add_argument("--output", choices=("text", "json"), default="text")
    status_cmd.set_defaults(handler=cmd_status)

    ci_cmd = commands.add_parser(
        "ci", help="CodeBuild entry point: apply a push, comment a pull request's plan"
    )
    ci_cmd.add_argument("--repo", default=".", metavar="DIR", help="the build's git clone")
    ci_cmd.add_argument("--config-path", default="mlops-config.json", help="config in the repo")
    ci_cmd.add_argument(
        "--artifacts", default="mlops-artifacts", metavar="DIR", help="where plan files go"
    )
    for flag in ("--assets-bucket", "--stack-prefix", "--controller-id", "--region"):
        ci_cmd.add_argument(flag)
    ci_cmd.add_argument("--max-deletes", type=int)
    ci_cmd.set_defaults(handler=cmd_ci)

    history_cmd = commands.add_parser("history", help="past applies from the ledger, newest first")
    add_source_options(history_cmd)
    stages.add_stage_option(history_cmd)
    history_cmd.add_argument("--output", choices=("text", "json"), default="text")
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
    boot.add_argument("--region")
    boot.set_defaults(handler=cmd_bootstrap)

    watch_cmd = commands.add_parser(
        "watch", help="poll a branch and apply each new commit (GitOps without CodeBuild)"
    )
    watch_cmd.add_argument("--repo", required=True, metavar="DIR|URL")
    watch_cmd.add_argument("--branch", default="main")
    watch_cmd.add_argument("--interval", default="30s", help="30s, 5m, 1h (default 30s)")
    watch_cmd.add_argument("--once", action="store_true", help="one round, then exit")
    watch_cmd.add_argument("--config-path", default="mlops-config.json")
    watch_cmd.add_argument("--cache-dir", metavar="DIR", help="where URLs are mirrored")
    for flag in ("--assets-bucket", "--stack-prefix", "--controller-id", "--region"):
        watch_cmd.add_argument(flag)
    watch_cmd.add_argument("--max-deletes", type=int)
    watch_cmd.set_defaults(handler=cmd_watch)

    stages.add_commands(commands, add_source_options)

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
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
