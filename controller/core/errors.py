"""The one root of every error a user can cause or meet: a `ControllerError` has a code.

Like Sceptre's `SceptreException` under one `catch_exceptions`, the CLI's `main` and the watch
loop catch this root once and print one line (`error: <message>` and the code), or carry it as
a value in JSON output (`{"code": ..., "message": ...}`); only a bug is a traceback. Errors of
the AWS SDK become `AwsError` at the `aws/` boundary (`controller.aws.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class ControllerError(Exception):
    """A problem to report, not a bug: the message says what and what to do."""

    code: ClassVar[str] = "MC000"

    def refusal(self) -> Refusal:
        return Refusal(self.code, str(self))


class UsageError(ControllerError):
    """The command line asks for something that cannot be done as asked."""

    code = "MC001"


class SourceProblem(ControllerError):
    """The config cannot be read from where it was asked for (file, repository, revision)."""

    code = "MC002"


class AwsError(ControllerError):
    """An AWS call failed, or AWS cannot be reached (wrapped at the aws/ boundary)."""

    code = "MC100"


class AwsSetupError(ControllerError):
    """The local AWS configuration (profile, region) is unusable."""

    code = "MC101"


class RecordError(ControllerError):
    """The ledger or the promotion records cannot be read or written."""

    code = "MC200"


class StageError(ControllerError):
    """A request about the chain's steps that cannot be met."""

    code = "MC300"


class DeployError(ControllerError):
    """A deployment of the controller's own stack, or of its wheel, failed."""

    code = "MC400"


@dataclass(frozen=True)
class Refusal:
    """An error as a value: what JSON output carries instead of a traceback."""

    code: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}
