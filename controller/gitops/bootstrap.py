"""`mlops-controller bootstrap`: deploy blueprints/bootstrap.yaml, the controller's own stack.

The template is plain CloudFormation so `aws cloudformation deploy` works as well; this command
saves people from typing the parameters, shows the stack's events while it waits, and
publishes the controller that runs it: its wheel goes to the assets bucket under a key named by
its SHA-256, and the stack records key and digest, so the build installs exactly that code
(verified) rather than whatever a package index serves under a name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import yaml
from botocore.exceptions import ClientError

from controller.aws.discover import describe
from controller.aws.session import Aws
from controller.aws.waiting import POLL_SECONDS, wait_until_settled
from controller.core.events import EventSink
from controller.core.render import model_group_name
from controller.gitops.wheel import Wheel

DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
UNUSABLE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED")


class BootstrapError(Exception):
    """Bad parameters or a stack that did not deploy; the message says which and why."""


@dataclass(frozen=True)
class Bootstrapped:
    stack_name: str
    status: str
    verb: str
    """created, updated or unchanged."""
    outputs: Mapping[str, str]
    published: str = ""
    """s3:// URI of the controller wheel the build installs, when one was published."""


def template_text() -> str:
    return resources.files("controller.blueprints").joinpath("bootstrap.yaml").read_text()


def template() -> dict[str, Any]:
    """The template as data, CloudFormation's short tags (!Ref, !Sub, ...) read as values."""
    loaded: dict[str, Any] = yaml.load(template_text(), Loader=_CfnLoader)
    return loaded


def template_parameters() -> tuple[str, ...]:
    return tuple(template()["Parameters"])


def parameters(notification_email: str, pairs: Sequence[str]) -> dict[str, str]:
    """`K=V` strings as template parameters, refusing names the template does not have."""
    known = template_parameters()
    values = {"NotificationEmail": notification_email}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BootstrapError(f"--parameter {pair!r}: expected KEY=VALUE")
        if key not in known:
            raise BootstrapError(
                f"--parameter {key}: the template has no such parameter; "
                f"expected one of {', '.join(known)}"
            )
        values[key] = value
    return values


def deploy(
    aws: Aws,
    stack_name: str,
    values: Mapping[str, str],
    on_event: EventSink,
    poll_seconds: float = POLL_SECONDS,
    wheel: Wheel | None = None,
) -> Bootstrapped:
    """Create the stack, or update it keeping the previous value of parameters not given.

    With a `wheel`, publish it and point the build at it: before the update when the assets
    bucket exists already, right after the create otherwise (no build runs before a push).
    """
    cfn = aws.client("cloudformation")
    existing = describe(cfn, stack_name)
    if existing is not None and existing.status in UNUSABLE:
        raise BootstrapError(
            f"stack {stack_name} is {existing.status} and cannot be updated: "
            "delete it (aws cloudformation delete-stack) and run bootstrap again"
        )
    if wheel is None and existing is None:
        raise BootstrapError("a new stack needs the controller's wheel to publish")
    values = dict(values)
    published = ""
    bucket = (existing.outputs.get("AssetsBucket") if existing else None) or values.get(
        "ExistingS3Bucket"
    )
    if wheel is not None:
        values |= {"ControllerWheelKey": wheel.key, "ControllerWheelSha256": wheel.sha256}
        if bucket:
            published = publish(aws, bucket, wheel)
    previous = existing.parameters if existing else {}
    if "ModelPackageGroupName" not in values and not previous.get("ModelPackageGroupName"):
        values["ModelPackageGroupName"] = model_group_name(stack_name)
    since = datetime.now(UTC) - timedelta(seconds=5)
    request: dict[str, Any] = {
        "StackName": stack_name,
        "TemplateBody": template_text(),
        "Capabilities": ["CAPABILITY_IAM"],
        "Parameters": _boto_parameters(values, existing.parameters if existing else {}),
    }
    if existing is None:
        stack_id = cfn.create_stack(**request)["StackId"]
        verb = "created"
    else:
        try:
            stack_id = cfn.update_stack(**request)["StackId"]
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            return Bootstrapped(
                stack_name, existing.status, "unchanged", existing.outputs, published
            )
        verb = "updated"
    settled = wait_until_settled(
        cfn, stack_id, stack_name, since, on_event, poll_seconds=poll_seconds
    )
    if settled.stack is None or settled.status not in DONE:
        reason = settled.failure_reason or "no reason given"
        raise BootstrapError(f"stack {stack_name} ended {settled.status}: {reason}")
    outputs = settled.stack.outputs
    if wheel is not None and not published:
        published = publish(aws, outputs["AssetsBucket"], wheel)
    return Bootstrapped(stack_name, settled.status, verb, outputs, published)


def publish(aws: Aws, bucket: str, wheel: Wheel) -> str:
    """The wheel under its content-addressed key; writing it again changes nothing."""
    aws.client("s3").put_object(
        Bucket=bucket, Key=wheel.key, Body=wheel.body, ContentType="application/zip"
    )
    return f"s3://{bucket}/{wheel.key}"


def _boto_parameters(
    values: Mapping[str, str], previous: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Given values, and the previous value of every other parameter the stack has."""
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
    kept = [{"ParameterKey": k, "UsePreviousValue": True} for k in previous if k not in values]
    return given + kept


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tagged(loader: yaml.SafeLoader, _: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node.tag}")


_CfnLoader.add_multi_constructor("!", _construct_tagged)
