"""Command-line entry point: argument parsing and exit codes only.

Heavy modules (boto3, the renderer) are imported inside the commands that need them so that
`mlops-controller --help` and `validate` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    return {
        key: getattr(args, key, None)
        for key in ("assets_bucket", "stack_prefix", "controller_id", "region", "max_deletes")
    }


def read_source(args: argparse.Namespace, *, default_to_git: bool) -> Any:
    """The config text the arguments point at (a `ConfigText`)."""
    from controller import source

    path = getattr(args, "path", None) or args.config
    if path:
        return source.read_file(path)
    if args.repo or default_to_git:
        return source.read_git(args.repo or ".", args.ref, args.config_path)
    return source.read_file(args.config_path)


def load_config(args: argparse.Namespace, *, default_to_git: bool) -> Any:
    """A `LoadResult`, with source problems folded into its diagnostics."""
    from controller import config, source

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


def cmd_schema(args: argparse.Namespace) -> int:
    from controller.config import schema

    print(json.dumps(schema.schema(), indent=2))
    return EXIT_OK


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

    schema_cmd = commands.add_parser("schema", help="print the JSON Schema of mlops-config.json")
    schema_cmd.set_defaults(handler=cmd_schema)
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
