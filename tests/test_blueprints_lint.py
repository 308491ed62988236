"""Every rendered template passes cfn-lint: no errors, and no warnings either (a warning that
does not apply must be ignored in the template's Metadata with the reason beside it)."""

from __future__ import annotations

import pytest
from cfnlint.api import lint

from controller.core import render
from tests.test_render import STACKS

SHAPES = {stack.shape: stack for stack in STACKS}


@pytest.mark.parametrize(
    "stack",
    SHAPES.values(),
    ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in SHAPES.values()],
)
def test_template_is_clean_under_cfn_lint(stack: render.RenderedStack) -> None:
    matches = lint(stack.template_body, regions=["us-east-1"])
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_a_broken_template_is_caught() -> None:
    """The check above can fail: a reference to a missing parameter is an error."""
    broken = STACKS[0].template_body.replace("!Ref InferenceInstance", "!Ref NoSuchParameter")
    assert any(m.rule.id.startswith("E") for m in lint(broken, regions=["us-east-1"]))
