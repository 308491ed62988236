"""The text layer: a line for every JSON path, and text problems as diagnostics."""

from __future__ import annotations

import pytest

from controller.core.config import document
from controller.core.config.document import MAX_BYTES, format_path

TEXT = """{
  "settings": {"region": "us-east-1"},
  "pipelines": [
    {
      "pipeline_type": "byom_image_builder",
      "tags": ["a",
               "b"]
    },
    {"model_name":
       "x"}
  ]
}
"""


def parsed(text: str = TEXT) -> document.Document:
    doc, problems = document.parse("f.json", text.encode())
    assert problems == []
    assert doc is not None
    return doc


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 1),
        (("settings",), 2),
        (("settings", "region"), 2),
        (("pipelines",), 3),
        (("pipelines", 0), 4),
        (("pipelines", 0, "pipeline_type"), 5),
        (("pipelines", 0, "tags", 0), 6),
        (("pipelines", 0, "tags", 1), 7),
        (("pipelines", 1), 9),
        (("pipelines", 1, "model_name"), 10),
    ],
)
def test_every_path_has_the_line_its_value_starts_on(path: document.Path, line: int) -> None:
    assert parsed().lines[path] == line


def test_an_absent_path_takes_the_line_of_its_nearest_ancestor() -> None:
    doc = parsed()

    assert doc.line_of(("pipelines", 1, "endpoint_name")) == 9
    assert doc.line_of(("pipelines", 0, "tags", 5)) == 6
    assert doc.line_of(("nothing",)) == 1


def test_data_is_the_same_as_json_gives() -> None:
    assert parsed().data["pipelines"][1] == {"model_name": "x"}


def test_strings_with_brackets_commas_and_escapes_do_not_confuse_the_scanner() -> None:
    text = '{"a": "},{\\"]", \n"b": [1, "[", {"c": "\\u007d"}],\n "d": 2}'
    doc = parsed(text)

    assert doc.lines[("b", 2, "c")] == 2
    assert doc.lines[("d",)] == 3


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), "$"),
        (("pipelines", 0, "model_name"), "$.pipelines[0].model_name"),
        (("bias_config", "facet name"), '$.bias_config["facet name"]'),
        (("a.b",), '$["a.b"]'),
    ],
)
def test_format_path(path: document.Path, text: str) -> None:
    assert format_path(path) == text


def test_duplicate_keys_in_separate_objects_are_fine_but_within_one_are_each_reported() -> None:
    text = '{"p": [\n{"k": 1, "k": 2},\n{"k": 1}\n],\n"q": {"k": {"x": 1}, "k": 3, "k": 4}}'

    doc, problems = document.parse("f.json", text.encode())

    assert doc is None
    assert [(d.code, d.path, d.line) for d in problems] == [
        ("E005", "$.p[0].k", 2),
        ("E005", "$.q.k", 5),
        ("E005", "$.q.k", 5),
    ]


def test_a_file_just_under_the_size_limit_is_parsed() -> None:
    raw = b"{" + b" " * (MAX_BYTES - 2) + b"}"

    doc, problems = document.parse("f.json", raw)

    assert problems == []
    assert doc is not None


def test_nesting_at_the_limit_is_accepted_and_one_deeper_is_not() -> None:
    ok = "[" * (document.MAX_DEPTH + 1) + "]" * (document.MAX_DEPTH + 1)
    too_deep = "[" + ok + "]"

    assert document.parse("f.json", ok.encode())[1] == []
    (problem,) = document.parse("f.json", too_deep.encode())[1]
    assert problem.code == "E006"


def test_invalid_utf8_names_the_byte_and_line() -> None:
    (problem,) = document.parse("f.json", b'{\n\n "a": "\xff"}')[1]

    assert (problem.code, problem.line) == ("E002", 3)
    assert "byte 0xff at offset 10" in problem.message


def test_invalid_utf8_offset_counts_a_byte_order_mark() -> None:
    (problem,) = document.parse("f.json", b'\xef\xbb\xbf{\n"a": "\xfe"}')[1]

    assert problem.line == 2
    assert "byte 0xfe at offset 11" in problem.message
