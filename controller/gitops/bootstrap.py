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
from importlib import resources
from typing import Any

import yaml

from controller.aws import stack_deploy
from controller.aws.session import Aws
from controller.aws.waiting import POLL_SECONDS
from controller.core.errors import DeployError
from controller.core.events import EventSink
from controller.core.render import model_group_name
from controller.gitops.wheel import Wheel

DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
UNUSABLE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED")


class BootstrapError(DeployError):
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
    found = stack_deploy.existing(aws, stack_name)
    if found is not None and found.status in UNUSABLE:
        raise BootstrapError(
            f"stack {stack_name} is {found.status} and cannot be updated: "
            "delete it (aws cloudformation delete-stack) and run bootstrap again"
        )
    if wheel is None and found is None:
        raise BootstrapError("a new stack needs the controller's wheel to publish")
    values = dict(values)
    published = ""
    bucket = (found.outputs.get("AssetsBucket") if found else None) or values.get(
        "ExistingS3Bucket"
    )
    if wheel is not None:
        values |= {"ControllerWheelKey": wheel.key, "ControllerWheelSha256": wheel.sha256}
        if bucket:
            published = publish(aws, bucket, wheel)
    previous = found.parameters if found else {}
    if "ModelPackageGroupName" not in values and not previous.get("ModelPackageGroupName"):
        values["ModelPackageGroupName"] = model_group_name(stack_name)
    done = stack_deploy.deploy(
        aws,
        stack_name,
        template_text(),
        _boto_parameters(values, found.parameters if found else {}),
        on_event,
        create=found is None,
        poll_seconds=poll_seconds,
    )
    if done.verb == "unchanged" and found is not None:
        return Bootstrapped(stack_name, found.status, "unchanged", found.outputs, published)
    if not done.settled or done.status not in DONE:
        reason = done.failure_reason or "no reason given"
        raise BootstrapError(f"stack {stack_name} ended {done.status}: {reason}")
    outputs = dict(done.outputs)
    if wheel is not None and not published:
        published = publish(aws, outputs["AssetsBucket"], wheel)
    return Bootstrapped(stack_name, done.status, done.verb, outputs, published)


def publish(aws: Aws, bucket: str, wheel: Wheel) -> str:
    """The wheel under its content-addressed key; writing it again changes nothing."""
    stack_deploy.put_file(aws, bucket, wheel.key, wheel.body, "application/zip")
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
