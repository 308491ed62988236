"""Objects a stack's jobs read from the assets bucket, written before the stack that names them.

Render produces them (a Clarify analysis configuration is too large for a stack parameter);
their keys are their content's hash, so writing one again is harmless and an object is never
changed under a running job.
"""

from __future__ import annotations

from typing import Any

from controller.core.render import RenderedStack


def put_uploads(s3: Any, bucket: str, rendered: RenderedStack) -> None:
    for upload in rendered.uploads:
        s3.put_object(
            Bucket=bucket, Key=upload.key, Body=upload.body, ContentType=upload.content_type
        )
