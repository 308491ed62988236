"""The AWS SDK's errors as `ControllerError`s: the boundary where botocore stops.

`wrapped` turns a botocore error (a refused call, an unreachable endpoint, an answer that
cannot be parsed) into `AwsError`, with any credentials in its text redacted, so `main` and
the watch loop catch one root and nothing above `aws/` names botocore.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from controller.core.errors import AwsError, ControllerError
from controller.core.redact import redact

SDK_ERRORS = (ClientError, BotoCoreError, ResponseParserError)


def wrapped(exc: BaseException) -> ControllerError | None:
    """`exc` as a `ControllerError`; None when it is neither one nor the SDK's (a bug)."""
    if isinstance(exc, ControllerError):
        return exc
    if isinstance(exc, SDK_ERRORS):
        return AwsError(redact(f"AWS call failed: {exc}"))
    return None
