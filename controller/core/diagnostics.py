"""Problems found in user input, as values.

Like cfn-lint's matches, every problem is collected rather than raised, so a user sees all of
them in one run, each with the file, line and JSON path that locate it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    path: str
    message: str
    expected: str = ""
    severity: Severity = Severity.ERROR
    file: str = ""
    line: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def located(self, file: str, line: int | None) -> Diagnostic:
        return replace(self, file=file, line=line)

    def format(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        text = f"{where}: {self.severity.value} {self.code} {self.path}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "expected": self.expected,
        }


def error(code: str, path: str, message: str, expected: str = "") -> Diagnostic:
    return Diagnostic(code=code, path=path, message=message, expected=expected)


def warning(code: str, path: str, message: str, expected: str = "") -> Diagnostic:
    return Diagnostic(
        code=code, path=path, message=message, expected=expected, severity=Severity.WARNING
    )
