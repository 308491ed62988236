"""The controller's own stack (`bootstrap`): create or update one stack and wait for it with
the applier's waiting machinery (`aws.waiting`: the same events, the same settled states),
and publish the controller's wheel next to it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from controller.aws.discover import describe
from controller.aws.session import Aws
from controller.aws.waiting import POLL_SECONDS, wait_until_settled
from controller.core.events import EventSink
from controller.core.stacks import DeployedStack


@dataclass(frozen=True)
class Deployed:
    status: str
    verb: str
    """created, updated or unchanged."""
    outputs: Mapping[str, str] = field(default_factory=dict)
    failure_reason: str = ""
    settled: bool = True


def existing(aws: Aws, stack_name: str) -> DeployedStack | None:
    return describe(aws.client("cloudformation"), stack_name)


def deploy(
    aws: Aws,
    stack_name: str,
    template_body: str,
    parameters: list[dict[str, Any]],
    on_event: EventSink,
    *,
    create: bool,
    poll_seconds: float = POLL_SECONDS,
) -> Deployed:
    """Create (or update) the stack and wait until it settles; "No updates" is unchanged."""
    cfn = aws.client("cloudformation")
    since = datetime.now(UTC) - timedelta(seconds=5)
    # The operation's own token: its events, never those of an earlier operation on the stack.
    token = f"mlops-bootstrap-{uuid.uuid4().hex}"
    request: dict[str, Any] = {
        "StackName": stack_name,
        "ClientRequestToken": token,
        "TemplateBody": template_body,
        "Capabilities": ["CAPABILITY_IAM"],
        "Parameters": parameters,
    }
    if create:
        stack_id = cfn.create_stack(**request)["StackId"]
        verb = "created"
    else:
        try:
            stack_id = cfn.update_stack(**request)["StackId"]
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            return Deployed("", "unchanged")
        verb = "updated"
    settled = wait_until_settled(
        cfn, stack_id, stack_name, since, on_event, token=token, poll_seconds=poll_seconds
    )
    outputs = settled.stack.outputs if settled.stack is not None else {}
    return Deployed(
        settled.status, verb, outputs, settled.failure_reason or "", settled.stack is not None
    )


def put_file(aws: Aws, bucket: str, key: str, body: bytes, content_type: str) -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
