"""The published schema explains itself: editors show each key's description on hover, offer
its examples, and document every enum value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from controller.cli.main import main

CONDITIONS = ("if", "then", "else", "not")
"""Conditional branches repeat keys to constrain them, not to define them: they are not docs."""


@pytest.fixture(scope="module")
def published() -> dict[str, Any]:
    """What `mlops-controller schema` prints (and editors load through `$schema`)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    loaded: dict[str, Any] = json.loads(out.getvalue())
    return loaded


def properties(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from properties(item, f"{path}[{index}]")
    elif isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{path}.properties.{name}", prop
        for key, value in node.items():
            if key not in CONDITIONS:
                yield from properties(value, f"{path}.{key}")


def test_every_key_has_a_description(published: dict[str, Any]) -> None:
    found = list(properties(published))
    missing = [path for path, prop in found if not str(prop.get("description", "")).strip()]

    assert len(found) > 100
    assert missing == []


def test_every_pipeline_type_and_its_settings_are_described(published: dict[str, Any]) -> None:
    defs = published["$defs"]
    pipeline_types = defs["pipeline"]["properties"]["pipeline_type"]["enum"]

    for name in [*pipeline_types, "pipeline", "settings"]:
        assert defs[name]["description"], name


@pytest.mark.parametrize(("where", "enum"), [("pipeline", "pipeline_type"), ("problemType", "")])
def test_every_enum_value_is_documented(published: dict[str, Any], where: str, enum: str) -> None:
    node = published["$defs"][where]
    node = node["properties"][enum] if enum else node

    assert len(node["enumDescriptions"]) == len(node["enum"])
    assert all(node["enumDescriptions"])
    assert all(value in node["description"] for value in node["enum"])


def test_every_example_is_a_valid_value(published: dict[str, Any]) -> None:
    checked = 0
    for path, prop in properties(published):
        for example in prop.get("examples", ()):
            alone = {"$defs": {**published["$defs"], "example": prop}, "$ref": "#/$defs/example"}
            validator = Draft202012Validator(alone)
            errors = [e.message for e in validator.iter_errors(example)]
            assert errors == [], f"{path}: example {example!r}: {errors}"
            checked += 1

    assert checked > 60
