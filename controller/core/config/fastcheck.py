"""A compiled validity check of mlops-config.json: the schema turned into Python closures once.

jsonschema walks the schema for every value and resolves each `$ref` as it goes: about 0.3 s
for a valid config of 1000 pipelines, on every plan. Most configs are valid, and a valid one
needs no explanation, so `schema.validate` asks this check first and only runs jsonschema,
with its diagnostics, when this check says no. It knows exactly the keywords schema.json
uses, with jsonschema's meaning (ECMA-262 patterns, bool distinct from numbers); a schema
with any other keyword does not compile, and then jsonschema decides everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "title",
        "description",
        "markdownDescription",
        "enumDescriptions",
        "examples",
        "default",
        "deprecated",
    }
)
"""Keywords that say something about a value without constraining it (also every `x-`):
jsonschema's own, and the descriptions editors show."""


class Unsupported(Exception):
    """The schema uses a keyword this module does not compile."""


def compile_schema(root: Mapping[str, Any], pattern: Callable[[str], re.Pattern[str]]) -> Check:
    """A function telling whether a document is valid against `root`.

    `pattern` compiles a schema pattern as the full validator does (`$` ends the text)."""
    defs: dict[str, Check] = {}
    shapes = root.get("$defs", {})

    def reference(ref: str) -> Check:
        name = ref.removeprefix("#/$defs/")
        if ref == name or name not in shapes:
            raise Unsupported(f"$ref {ref}")

        def check(value: Any) -> bool:
            return defs[name](value)

        return check

    def build(node: Any) -> Check:
        if node is True:
            return _always
        if node is False:
            return _never
        if not isinstance(node, Mapping):
            raise Unsupported(f"schema {node!r}")
        checks = [
            _keyword(key, rule, node, build, reference, pattern)
            for key, rule in node.items()
            if key not in ANNOTATIONS and not key.startswith("x-") and key != "$defs"
        ]
        checks = [c for c in checks if c is not _always]
        return lambda value: all(check(value) for check in checks)

    for name, shape in shapes.items():
        defs[name] = build(shape)
    return build(root)


def _keyword(
    key: str,
    rule: Any,
    node: Mapping[str, Any],
    build: Callable[[Any], Check],
    reference: Callable[[str], Check],
    pattern: Callable[[str], re.Pattern[str]],
) -> Check:
    if key == "$ref":
        return reference(rule)
    if key == "type":
        return _type(rule)
    if key == "enum":
        return lambda value: any(_equal(value, allowed) for allowed in rule)
    if key == "const":
        return lambda value: _equal(value, rule)
    if key == "properties":
        props = {name: build(sub) for name, sub in rule.items()}
        return lambda v: (
            not isinstance(v, dict)
            or all(check(v[name]) for name, check in props.items() if name in v)
        )
    if key == "required":
        return lambda v: not isinstance(v, dict) or all(name in v for name in rule)
    if key == "additionalProperties":
        if "patternProperties" in node:
            raise Unsupported("patternProperties")
        known = frozenset(node.get("properties", {}))
        extra = build(rule)
        return lambda v: (
            not isinstance(v, dict)
            or all(extra(item) for name, item in v.items() if name not in known)
        )
    if key == "items":
        item = build(rule)
        return lambda v: not isinstance(v, list) or all(item(x) for x in v)
    if key == "pattern":
        compiled = pattern(rule)
        return lambda v: not isinstance(v, str) or compiled.search(v) is not None
    if key in ("minItems", "maxItems"):
        fewest = key == "minItems"
        return lambda v: not isinstance(v, list) or (len(v) >= rule if fewest else len(v) <= rule)
    if key in ("minLength", "maxLength"):
        low = key == "minLength"
        return lambda v: not isinstance(v, str) or (len(v) >= rule if low else len(v) <= rule)
    if key in ("minimum", "maximum"):
        low = key == "minimum"
        return lambda v: not _is_number(v) or (v >= rule if low else v <= rule)
    if key in ("exclusiveMinimum", "exclusiveMaximum"):
        low = key == "exclusiveMinimum"
        return lambda v: not _is_number(v) or (v > rule if low else v < rule)
    if key == "uniqueItems":
        return lambda v: not rule or not isinstance(v, list) or _unique(v)
    if key in ("allOf", "anyOf"):
        subs = [build(sub) for sub in rule]
        if key == "allOf":
            return lambda v: all(sub(v) for sub in subs)
        return lambda v: any(sub(v) for sub in subs)
    if key == "not":
        negated = build(rule)
        return lambda v: not negated(v)
    if key == "if":
        condition = build(rule)
        then = build(node.get("then", True))
        otherwise = build(node.get("else", True))
        return lambda v: then(v) if condition(v) else otherwise(v)
    if key in ("then", "else"):
        return _always  # with their `if`
    raise Unsupported(key)


def _type(rule: Any) -> Check:
    names = [rule] if isinstance(rule, str) else list(rule)
    tests = [_TYPES[name] for name in names]
    return lambda value: any(test(value) for test in tests)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or float(v).is_integer()),
}


def _equal(one: Any, two: Any) -> bool:
    """JSON equality, as jsonschema's: true is not 1, lists and objects compare deeply."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one is two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(v, two[k]) for k, v in one.items())
    if isinstance(one, list | dict) or isinstance(two, list | dict):
        return False
    return bool(one == two)


def _unique(items: list[Any]) -> bool:
    """No two items equal as JSON values (lists here are short: alarm names, subnets)."""
    return not any(_equal(a, b) for i, a in enumerate(items) for b in items[i + 1 :])


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False
