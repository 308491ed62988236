"""Objects a stack's jobs read from the assets bucket, written before the stack that names them.

Render produces them (a Clarify analysis configuration is too large for a stack parameter);
their keys are their content's hash, so writing one again is harmless and an object is never
changed under a running job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controller.core.clarify import Upload


def put_uploads(s3: Any, bucket: str, uploads: Iterable[Upload]) -> None:
    for upload in uploads:
        s3.put_object(
            Bucket=bucket, Key=upload.key, Body=upload.body, ContentType=upload.content_type
        )
