"""The config reference (docs/config-reference.md), written from the JSON Schema.

The schema's descriptions are what editors show on hover, so they are the one place a key is
explained; the reference is generated from them so that it can never say something else.
`tests/test_docs.py` fails when the checked-in file differs from what this module makes, so a
schema change without regenerating is caught. Regenerate with:

    python -m controller.core.config.docgen > docs/config-reference.md

A conditional rule of a shape this module does not know how to put in words is an error, not
a silent omission: teach `_condition` the new shape.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from controller.core.config.schema import schema

COMMAND = "python -m controller.core.config.docgen > docs/config-reference.md"


def reference(document: dict[str, Any]) -> str:
    """The whole reference as Markdown, deterministic for a given schema."""
    defs: dict[str, Any] = document["$defs"]
    types: dict[str, Any] = defs["pipeline"]["properties"]["pipeline_type"]
    lines = [
        "# Config reference",
        "",
        "<!-- Generated from controller/core/config/schema.json; do not edit by hand. -->",
        f"<!-- Regenerate: {COMMAND} -->",
        "",
        "Every key of `mlops-config.json`, from the descriptions of the JSON Schema that "
        "`mlops-controller schema` prints (the text editors show on hover). How settings are "
        "overridden, what `validate` checks beyond the schema and per-stage values are "
        "explained in [config.md](config.md) and [promotion.md](promotion.md).",
        "",
        "## The file",
        "",
        _cell(document["description"]),
        "",
        *_table(document, defs),
        "",
        "## `settings`",
        "",
        _cell(defs["settings"]["description"]),
        "",
        *_table(defs["settings"], defs),
        "",
        "## `settings.stages[]`",
        "",
        _cell(defs["stage"]["description"]),
        "",
        *_table(defs["stage"], defs),
        "",
        "## Pipeline types",
        "",
        _cell(defs["pipeline"]["description"]),
        "",
        "| `pipeline_type` | what it is |",
        "|---|---|",
        *(
            f"| [`{name}`](#{name}) | {_cell(text)} |"
            for name, text in zip(types["enum"], types["enumDescriptions"], strict=True)
        ),
    ]
    for name in types["enum"]:
        node = defs[name]
        lines += ["", f"### {name}", "", _cell(node["description"]), "", *_table(node, defs)]
        rules = [_condition(rule, defs) for rule in node.get("allOf", [])]
        if rules:
            lines += ["", *(f"- {text}" for rule in rules for text in rule)]
    problem = defs["problemType"]
    lines += [
        "",
        "## `problem_type` values",
        "",
        "| value | meaning |",
        "|---|---|",
        *(
            f"| `{value}` | {_cell(text)} |"
            for value, text in zip(problem["enum"], problem["enumDescriptions"], strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"


def _table(node: dict[str, Any], defs: dict[str, Any]) -> Iterator[str]:
    required = set(node.get("required", ()))
    yield "| key | required | value | description | example |"
    yield "|---|---|---|---|---|"
    for key, prop in node["properties"].items():
        example = " ".join(f"`{_cell(json.dumps(e))}`" for e in prop.get("examples", ()))
        yield (
            f"| `{key}` | {'yes' if key in required else ''} | {_cell(_expected(prop, defs))} "
            f"| {_cell(prop.get('description', ''))} | {example} |"
        )


def _expected(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    """What a valid value looks like: the node's own `x-expected`, else its definition's."""
    if "x-expected" in prop:
        return str(prop["x-expected"])
    target = _target(prop, defs)
    if target is not None and target is not prop:
        return _expected(target, defs)
    if "enum" in prop:
        return "one of " + ", ".join(str(value) for value in prop["enum"])
    return str(prop.get("type", ""))


def _target(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    ref = prop.get("$ref")
    if not isinstance(ref, str):
        return None
    found: dict[str, Any] = defs[ref.removeprefix("#/$defs/")]
    return found


def _condition(rule: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """One `if`/`then`/`else` of a pipeline type in words."""
    when = rule["if"]
    keys = [k for k in when.get("required", ()) if k not in when.get("properties", {})]
    values = [
        f"`{key}` is {' or '.join(f'`{v}`' for v in cond['enum'])}"
        for key, cond in when.get("properties", {}).items()
    ]
    if set(rule) - {"if", "then", "else"} or (not keys and not values):
        raise ValueError(f"a conditional rule docgen cannot describe: {rule}")
    texts = [f"{_clause(keys, values, 'With')}: {_outcome(rule['then'], defs)}."]
    if "else" in rule:
        if values:
            raise ValueError(f"an else on a value docgen cannot describe: {rule}")
        texts.append(f"{_clause(keys, [], 'Without')}: {_outcome(rule['else'], defs)}.")
    return texts


def _clause(keys: list[str], values: list[str], word: str) -> str:
    parts = [f"{word} " + " and ".join(f"`{k}`" for k in keys)] if keys else []
    return ", ".join([*parts, *(f"When {v}" for v in values)])


def _outcome(then: dict[str, Any], defs: dict[str, Any]) -> str:
    parts = []
    if then.get("required"):
        parts.append(", ".join(f"`{k}`" for k in then["required"]) + " required")
    refused: dict[str, list[str]] = {}
    for key, prop in then.get("properties", {}).items():
        target = _target(prop, defs) or prop
        if "x-message" not in target:
            raise ValueError(f"a property rule docgen cannot describe: {key}: {prop}")
        refused.setdefault(target["x-message"], []).append(f"`{key}`")
    parts += [f"{', '.join(keys)} {message}" for message, keys in refused.items()]
    if not parts or set(then) - {"required", "properties"}:
        raise ValueError(f"a consequence docgen cannot describe: {then}")
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: GFM splits cells at every unescaped `|`, and
    outside code spans `<region>` would be read as an HTML tag and vanish."""
    spans = " ".join(str(text).split()).replace("|", "\\|").split("`")
    return "`".join(s if i % 2 else s.replace("<", "\\<") for i, s in enumerate(spans))


if __name__ == "__main__":
    sys.stdout.write(reference(schema()))
