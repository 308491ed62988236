"""The JSON Schema of mlops-config.json and its errors in words a user can act on.

The schema file is the contract editors use through `"$schema"`; this module only turns
jsonschema's errors into diagnostics. Schema nodes may carry `x-expected` (what a valid value
looks like) and `x-message` (what is wrong), so messages live next to the rules they explain.
A valid document is recognised by the compiled check of `fastcheck` first (jsonschema takes
0.3 s for 1000 pipelines); jsonschema is imported and run only to explain an invalid one.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from controller.core.config import fastcheck
from controller.core.config.document import Document, Path, format_path
from controller.core.diagnostics import Diagnostic, error

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

STAGES = frozenset({"dev", "staging", "prod"})


@cache
def schema() -> dict[str, Any]:
    text = resources.files("controller.core.config").joinpath("schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator, validators

    strict = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})  # type: ignore[no-untyped-call]
    return strict(schema())


@cache
def _valid() -> fastcheck.Check | None:
    try:
        return fastcheck.compile_schema(schema(), _compiled)
    except fastcheck.Unsupported:
        return None  # jsonschema decides alone


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, _schema: Any
) -> Iterator[ValidationError]:
    """Patterns are ECMA-262, where `$` ends the text; in Python it also matches before a
    final newline, which would let "ml.m5.large\\n" or "bucket\\n" through to AWS."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


@cache
def pipeline_keys(pipeline_type: str) -> frozenset[str]:
    """Every key a pipeline of this type may carry, read from the schema itself."""
    defs = schema()["$defs"]
    if pipeline_type not in defs:
        return frozenset()
    return frozenset(_collect_properties(defs[pipeline_type], defs))


def _collect_properties(node: Any, defs: dict[str, Any]) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            yield from _collect_properties(defs[ref.removeprefix("#/$defs/")], defs)
        yield from node.get("properties", {})
        for key in ("allOf", "then", "else"):
            branch = node.get(key)
            for sub in branch if isinstance(branch, list) else [branch]:
                yield from _collect_properties(sub, defs)


def validate(document: Document) -> list[Diagnostic]:
    valid = _valid()
    if valid is not None and valid(document.data):
        return []
    found: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for err in _validator().iter_errors(document.data):
        for path, diagnostic in _explain(err):
            key = (diagnostic.path, diagnostic.message)
            if key not in seen:
                seen.add(key)
                found.append(document.locate(diagnostic, path))
    return sorted(found, key=lambda d: (d.line or 0, d.path))


def _explain(err: ValidationError) -> Iterator[tuple[Path, Diagnostic]]:
    path: Path = tuple(err.absolute_path)
    instance: Any = err.instance
    rule: Any = err.validator_value
    where = format_path(path)
    node = err.schema if isinstance(err.schema, dict) else {}
    expected = str(node.get("x-expected", ""))
    validator = str(err.validator)
    if validator == "required":
        for key in rule:
            if isinstance(instance, dict) and key not in instance:
                owner = _owner(instance)
                yield (
                    (*path, key),
                    error(
                        "S101",
                        format_path((*path, key)),
                        f"missing required key{owner}",
                        _key_expected(key),
                    ),
                )
    elif validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = _allowed_keys(instance, node)
        for key in sorted(k for k in instance if k not in allowed):
            yield (
                (*path, key),
                error(
                    "S102",
                    format_path((*path, key)),
                    _unknown_key_message(key, instance, allowed),
                    f"a key of {instance.get('pipeline_type') or format_path(path)}",
                ),
            )
    elif validator == "type":
        message = f"is {_json_type(instance)}"
        if _is_per_stage(instance):
            message += (
                " of per-stage values (the original's multi-account mode); the controller "
                "deploys one account per config, so give one value and override settings "
                "per account with MLOPS_* variables"
            )
        yield (path, error("S103", where, message, expected or _article(rule)))
    elif validator == "enum":
        message = str(node.get("x-message", f"{_short(instance)} is not allowed"))
        if "x-message" in node:
            message = f"{_short(instance)}: {message}"
        if isinstance(instance, str):
            close = difflib.get_close_matches(instance, [str(v) for v in rule], n=1, cutoff=0.6)
            message += f"; did you mean {close[0]!r}?" if close else ""
        yield (
            path,
            error(
                "S104",
                where,
                message,
                expected or "one of " + ", ".join(map(str, rule)),
            ),
        )
    elif validator == "not":
        yield (
            path,
            error(
                "S105", where, str(node.get("x-message", "is not allowed here")), "the key removed"
            ),
        )
    else:
        yield (
            path,
            error("S106", where, f"{_short(instance)} is not valid", expected or err.message),
        )


def _is_per_stage(instance: Any) -> bool:
    return isinstance(instance, dict) and bool(instance) and set(instance) <= STAGES


def _owner(instance: dict[str, Any]) -> str:
    pipeline_type = instance.get("pipeline_type")
    return f" for {pipeline_type}" if isinstance(pipeline_type, str) else ""


def _key_expected(key: str) -> str:
    described = _described_properties()
    return described.get(key, f"a value for {key}")


@cache
def _described_properties() -> dict[str, str]:
    """The first `x-expected` found for each property name anywhere in the schema."""
    defs = schema()["$defs"]
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                target = prop
                if isinstance(prop, dict) and prop.get("$ref", "").startswith("#/$defs/"):
                    target = defs[prop["$ref"].removeprefix("#/$defs/")]
                if isinstance(target, dict) and "x-expected" in target:
                    found.setdefault(name, str(target["x-expected"]))
            for value in node.values():
                visit(value)

    visit(schema())
    return found


def _allowed_keys(instance: Any, node: dict[str, Any]) -> frozenset[str]:
    pipeline_type = instance.get("pipeline_type") if isinstance(instance, dict) else None
    if isinstance(pipeline_type, str) and pipeline_keys(pipeline_type):
        return pipeline_keys(pipeline_type)
    return frozenset(node.get("properties", {}))


def _unknown_key_message(key: str, instance: dict[str, Any], allowed: frozenset[str]) -> str:
    """A key of another type is no typo: saying so beats the nearest spelling."""
    pipeline_type = instance.get("pipeline_type")
    all_keys = set().union(
        *(
            pipeline_keys(t)
            for t in schema()["$defs"]["pipeline"]["properties"]["pipeline_type"]["enum"]
        )
    )
    if isinstance(pipeline_type, str) and key in all_keys:
        return f"key {key!r} is not used by {pipeline_type}"
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _article(type_name: Any) -> str:
    names = {
        "object": "an object",
        "array": "a list",
        "string": "a string",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
    }
    return names.get(str(type_name), str(type_name))


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else text[:57] + "..."
