"""Command-line entry point: argument parsing and exit codes only.

Heavy modules (boto3, the renderer) are imported inside the commands that need them so that
`mlops-controller --help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from controller import __version__

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
    keys = ("assets_bucket", "stack_prefix", "controller_id", "region", "max_deletes")
    return {key: getattr(args, key, None) for key in (*keys, "deployment_branch")}


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
            count = len(result.config.pipelines)
            print(f"{result.config.source}: valid, {count} pipeline{'s' * (count != 1)}")
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
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"error: --out {out}: exists and is not a directory", file=sys.stderr)
        return EXIT_ERROR
    out.mkdir(parents=True, exist_ok=True)
    for stack in render.render_all(result.config):
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
    guards = reconcile.guards_for(config, getattr(args, "allow_delete_all", False))
    aws = Aws(region=config.settings.region)
    return config, reconcile.plan_for(config, aws, guards, detect_drift=args.detect_drift)


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
        if plan is None:
            return EXIT_ERROR
        _emit_plan(args, config, plan)
        if plan.refusal or plan.blocked:
            return EXIT_ERROR  # the plan cannot be applied as a whole
        return EXIT_CHANGES if plan.has_changes else EXIT_OK
    return EXIT_ERROR


def cmd_apply(args: argparse.Namespace) -> int:
    if args.dry_run:
        return cmd_plan(args)
    from controller.aws.session import Aws
    from controller.core import report
    from controller.gitops import reconcile, source

    with aws_errors():
        config, plan = _plan(args)
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
            repo=source.open_repo(args.repo or ".") if config.revision else None,
            allow_older=args.allow_older_commit,
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
        controller_id, region = status.identity(
            load_config(args, default_to_git=True), setting_flags(args)
        )
        rows = status.collect(Aws(region=region), controller_id)
        if args.output == "json":
            print(report.dumps([row.to_json() for row in rows]))
        else:
            status.print_table(rows, _console(args), controller_id)
        return EXIT_OK
    return EXIT_ERROR


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.cli import demo

    return demo.run(keep=args.keep, workdir=args.workdir)


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
        identity = history.identity(load_config(args, default_to_git=True), setting_flags(args))
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
            unfinished = history.unfinished(identity)
            if unfinished is not None:
                history.print_unfinished(unfinished, _console(args))
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

    from controller.core.redact import redact
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
    add_source_options(parser)
    parser.add_argument(
        "--allow-delete-all",
        action="store_true",
        help="allow a plan that deletes every managed pipeline",
    )
    parser.add_argument(
        "--detect-drift",
        action="store_true",
        help="also run CloudFormation drift detection on the managed stacks (slower: "
        "it reads every resource; scheduled ci runs always do)",
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
        "--allow-older-commit",
        action="store_true",
        help="apply even if the commit is older than the last applied one (or cannot be "
        "compared with it); it becomes the last applied commit",
    )
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
    ci_cmd.add_argument(
        "--deployment-branch",
        help="the branch whose pushes are applied (default MLOPS_DEPLOYMENT_BRANCH, else main); "
        "never read from the config file",
    )
    ci_cmd.set_defaults(handler=cmd_ci)

    history_cmd = commands.add_parser("history", help="past applies from the ledger, newest first")
    add_source_options(history_cmd)
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

    demo = commands.add_parser("demo", help="the GitOps story on an embedded AWS emulator")
    demo.add_argument(
        "--keep", action="store_true", help="leave the emulator running and print AWS_ENDPOINT_URL"
    )
    demo.add_argument("--workdir", help="where to create the demo config repo (default: temp)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR
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
