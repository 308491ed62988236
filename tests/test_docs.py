"""The documentation a user reads stays true: the config reference is what the schema says, the
README is a front page that starts with the two commands a newcomer needs, and no link in the
documents leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.core.config.docgen import COMMAND, reference
from controller.core.config.schema import schema

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "DEVELOPMENT.md",
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_the_config_reference_is_what_the_schema_says() -> None:
    checked_in = (ROOT / "docs" / "config-reference.md").read_text()

    assert checked_in == reference(schema()), f"the schema changed; regenerate: {COMMAND}"


def test_every_key_and_pipeline_type_is_in_the_reference() -> None:
    text = reference(schema())
    defs = schema()["$defs"]

    for name in defs["pipeline"]["properties"]["pipeline_type"]["enum"]:
        assert f"### {name}\n" in text
        for key in defs[name]["properties"]:
            assert f"| `{key}` |" in text.split(f"### {name}\n", 1)[1]
    for key in [*defs["settings"]["properties"], *defs["stage"]["properties"]]:
        assert f"| `{key}` |" in text


def test_a_conditional_rule_the_generator_cannot_word_is_an_error() -> None:
    document = schema()
    odd = {"if": {"not": {"required": ["model_name"]}}, "then": {"required": ["endpoint_name"]}}
    node = {**document["$defs"]["byom_realtime_builtin"], "allOf": [odd]}

    with pytest.raises(ValueError, match="cannot describe"):
        reference({**document, "$defs": {**document["$defs"], "byom_realtime_builtin": node}})


def test_a_table_cell_keeps_pipes_and_placeholders() -> None:
    defs = schema()["$defs"]
    prop = {"description": "a | b, <region> and `<kept>`", "x-expected": "x"}
    node = {**defs["stage"], "properties": {"name": prop}}

    text = reference({**schema(), "$defs": {**defs, "stage": node}})

    assert "| `name` | yes | x | a \\| b, \\<region> and `<kept>` |  |" in text


def test_the_readme_is_a_front_page_that_starts_with_demo_and_test() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```", 2)[1]
    targets = re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.MULTILINE)

    assert len(readme.splitlines()) <= 300
    assert "make demo" in first_block and "make test" in first_block
    assert {"demo", "test", "setup"} <= set(targets)


def _links() -> list[tuple[Path, str]]:
    found = []
    for document in DOCUMENTS:
        text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
        found += [(document, link) for link in LINK.findall(text) if "://" not in link]
    return found


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces become hyphens."""
    prose = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", prose, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    ("document", "link"), _links(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_every_relative_link_leads_somewhere(document: Path, link: str) -> None:
    target, _, anchor = link.partition("#")
    path = (document.parent / target).resolve() if target else document
    assert path.exists(), f"{document.name}: {link}"
    if anchor:
        assert anchor in _anchors(path), f"{document.name}: {link}"
