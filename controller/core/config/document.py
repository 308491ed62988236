"""Turning the bytes of a config file into data, with a line number for every JSON path.

`json` gives no positions, so after it has accepted the text a small scanner walks the same
text and records where each value starts. Errors about the text itself (encoding, syntax,
duplicate keys) become diagnostics, never tracebacks.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from controller.core.diagnostics import Diagnostic, error

Path = tuple[str | int, ...]

MAX_BYTES = 5 * 1024 * 1024
"""A config far larger than any real one is refused before parsing (huge or hostile files)."""

MAX_DEPTH = 64


def format_path(path: Path) -> str:
    text = "$"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


@dataclass(frozen=True)
class Document:
    """Parsed JSON plus the line each path starts on."""

    name: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor when the path itself is absent."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def locate(self, diagnostic: Diagnostic, path: Path) -> Diagnostic:
        return diagnostic.located(self.name, self.line_of(path))


def parse(name: str, raw: bytes) -> tuple[Document | None, list[Diagnostic]]:
    if len(raw) > MAX_BYTES:
        return None, [
            _at(
                name,
                None,
                error(
                    "E001", "$", f"file is {len(raw)} bytes", f"a config under {MAX_BYTES} bytes"
                ),
            )
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + len(raw) - len(exc.object)  # the decoder drops a byte order mark
        line = raw[:start].count(b"\n") + 1
        return None, [
            _at(
                name,
                line,
                error(
                    "E002",
                    "$",
                    f"not valid UTF-8: byte 0x{raw[start]:02x} at offset {start}",
                    "a UTF-8 encoded JSON file",
                ),
            )
        ]
    if not text.strip():
        return None, [_at(name, None, error("E003", "$", "file is empty", "a JSON object"))]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [
            _at(
                name,
                exc.lineno,
                error(
                    "E004",
                    "$",
                    f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                    "valid JSON",
                ),
            )
        ]
    except RecursionError:
        return None, [
            _at(
                name, None, error("E006", "$", "nesting is too deep", f"at most {MAX_DEPTH} levels")
            )
        ]
    except ValueError:
        return None, [_too_long_number(name, text)]
    scanner = _Scanner(text)
    try:
        scanner.value(_skip_ws(text, 0), ())
    except _TooDeep:
        return None, [
            _at(
                name, None, error("E006", "$", "nesting is too deep", f"at most {MAX_DEPTH} levels")
            )
        ]
    if scanner.duplicates:
        return None, [
            _at(
                name,
                line,
                error(
                    "E005",
                    format_path(path),
                    f"key {path[-1]!r} appears twice in one object (first on line "
                    f"{scanner.lines[path]})",
                    "each key once: JSON would silently keep only the last value",
                ),
            )
            for path, line in scanner.duplicates
        ]
    return Document(name=name, data=data, lines=scanner.lines), []


def replace_values(text: str, changes: dict[Path, Any]) -> str:
    """`text` with the scalar at each path replaced by a new JSON value, and nothing else
    touched: indentation, key order and every other byte stay as the author wrote them (a
    pinned version bumped in git is a one-line diff). The text must be valid JSON."""
    scanner = _Scanner(text)
    scanner.value(_skip_ws(text, 0), ())
    edited = text
    for path in sorted(changes, key=lambda p: scanner.spans[p][0], reverse=True):
        start, end = scanner.spans[path]
        edited = edited[:start] + json.dumps(changes[path], ensure_ascii=False) + edited[end:]
    return edited


def _too_long_number(name: str, text: str) -> Diagnostic:
    """Python refuses to convert integers of more than 4300 digits (a denial-of-service
    guard); JSON has no such limit, so this is the one ValueError json.loads leaves."""
    digits = max(re.finditer(r"\d+", text), key=lambda m: len(m.group()))
    line = text.count("\n", 0, digits.start()) + 1
    return _at(
        name,
        line,
        error(
            "E007",
            "$",
            f"a number with {len(digits.group())} digits",
            f"numbers of at most {sys.get_int_max_str_digits()} digits",
        ),
    )


def _at(name: str, line: int | None, diagnostic: Diagnostic) -> Diagnostic:
    return diagnostic.located(name, line)


class _TooDeep(ValueError):
    pass


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip_ws(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


class _Scanner:
    """Walks text that `json` already accepted, so it needs no error handling of its own.

    It also finds duplicate keys, which `json` accepts silently (the last one wins), here
    rather than in an `object_pairs_hook` because only the scanner knows their path and line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines: dict[Path, int] = {}
        self.spans: dict[Path, tuple[int, int]] = {}
        self.duplicates: list[tuple[Path, int]] = []
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def value(self, pos: int, path: Path) -> int:
        if len(path) > MAX_DEPTH:
            raise _TooDeep()
        self.lines[path] = self._line(pos)
        char = self.text[pos]
        if char == "{":
            return self._object(pos + 1, path)
        if char == "[":
            return self._array(pos + 1, path)
        _, end = _DECODER.raw_decode(self.text, pos)
        self.spans[path] = (pos, int(end))
        return int(end)

    def _object(self, pos: int, path: Path) -> int:
        pos = _skip_ws(self.text, pos)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            key_start = pos
            key, pos = _DECODER.raw_decode(self.text, pos)
            pos = _skip_ws(self.text, pos) + 1  # the colon
            pos = _skip_ws(self.text, pos)
            if (*path, key) in self.lines:
                self.duplicates.append(((*path, key), self._line(key_start)))
                pos = self._member_end(_DECODER.raw_decode(self.text, pos)[1])
                if self.text[pos - 1] == "}":
                    return pos
                continue
            self.lines[(*path, key)] = self._line(key_start)
            pos = self._member_end(self.value(pos, (*path, key)))
            if self.text[pos - 1] == "}":
                return pos

    def _array(self, pos: int, path: Path) -> int:
        pos = _skip_ws(self.text, pos)
        if self.text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            pos = self._member_end(self.value(pos, (*path, index)))
            if self.text[pos - 1] == "]":
                return pos
            index += 1

    def _member_end(self, pos: int) -> int:
        """Skip to just after the `,` or closing bracket; after a comma, to the next value."""
        pos = _skip_ws(self.text, pos)
        if self.text[pos] == ",":
            return _skip_ws(self.text, pos + 1)
        return pos + 1
