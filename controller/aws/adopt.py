"""`mlops-controller adopt NAME`: take ownership of a stack made by other means, explicitly.

A stack created from `render` output with the AWS CLI carries no ownership tags, so the
planner (rightly) refuses to touch it. Adopting writes the tags `stack_tags` gives, with an
UpdateStack that keeps the template and every parameter as they are, so nothing but the tags
changes. The next apply, though, puts the config's blueprint in place: adopting reads the
deployed template, shows what that does to its resources, and refuses without `--force` when
it would delete one (a stack of the original orchestrator holding an SNS topic, say).
What was deployed keeps its own `SpecHash` parameter (render writes it), so when it
differs from what the config asks for the next plan shows the update instead of calling it
unchanged. It never happens implicitly, and a stack another controller owns is adopted only
when forced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.aws import templates
from controller.aws.discover import from_api
from controller.aws.lock import Lease, this_process
from controller.aws.session import Aws
from controller.aws.waiting import POLL_SECONDS, TIMEOUT_SECONDS, wait_until_settled
from controller.core.errors import UsageError
from controller.core.events import EventSink
from controller.core.plan import FAILED_CREATE, ParameterChange
from controller.core.render import RenderedStack
from controller.core.stacks import BOOKKEEPING_PARAMETERS, DeployedStack, stack_tags
from controller.core.template_diff import ResourceChanges, compare

UPDATABLE = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)


class AdoptError(UsageError):
    """The stack cannot be adopted; the message says why and what to do instead."""


@dataclass(frozen=True)
class Adoption:
    """What adopting one stack would change, shown before anything is written."""

    stack: DeployedStack
    desired: RenderedStack
    tags: tuple[tuple[str, str], ...]
    """The stack's whole tag set after adoption (tags of others are kept)."""
    tag_changes: tuple[ParameterChange, ...]
    capabilities: tuple[str, ...]
    deployed_hash: str
    parameter_changes: tuple[ParameterChange, ...]
    """How the deployed parameters differ from the config's: the next apply changes these."""
    resources: ResourceChanges = field(default_factory=ResourceChanges)
    """What the next apply's template does to the stack's resources (deployed template read)."""

    @property
    def already_owned(self) -> bool:
        return not self.tag_changes

    @property
    def matches_config(self) -> bool:
        return self.deployed_hash == self.desired.spec_hash


def inspect(aws: Aws, desired: RenderedStack, controller_id: str, *, force: bool) -> Adoption:
    """Read the stack and say what adopting it changes; AdoptError when it must not be."""
    cfn = aws.client("cloudformation")
    raw = _describe(cfn, desired.stack_name)
    if raw is None:
        raise AdoptError(
            f"no stack named {desired.stack_name} in {aws.region}: nothing to adopt "
            "(`mlops-controller apply` creates it)"
        )
    stack = from_api(raw)
    owner = stack.owner
    if owner and owner != controller_id and not force:
        raise AdoptError(
            f"{stack.name} is managed by {owner!r}; adopting it takes it away from that "
            "controller, which will then refuse to touch it: pass --force if that is intended"
        )
    if stack.status not in UPDATABLE:
        advice = (
            "delete it, and `apply` creates it again"
            if stack.status in FAILED_CREATE or stack.status == "REVIEW_IN_PROGRESS"
            else "wait until it settles, then adopt it"
        )
        raise AdoptError(f"{stack.name} is {stack.status} and cannot be updated: {advice}")
    resources = _resource_changes(cfn, stack, desired)
    if (resources.deletes or resources.problem) and not force:
        raise AdoptError(
            f"the first apply after adopting {stack.name} would change its resources, since "
            f"its template is not the config's blueprint: {_listed(resources)}. Nothing was "
            "written: move what must stay out of the stack first, or pass --force if that "
            "is intended"
        )
    capabilities = tuple(raw.get("Capabilities") or desired.capabilities)
    deployed = {k: v for k, v in stack.parameters.items() if k not in BOOKKEEPING_PARAMETERS}
    wanted = {k: v for k, v in desired.parameters if k not in BOOKKEEPING_PARAMETERS}
    ours = stack_tags(controller_id, desired)
    tags = {**stack.tags, **{t["Key"]: t["Value"] for t in ours}}
    return Adoption(
        stack=stack,
        desired=desired,
        tags=tuple(tags.items()),
        tag_changes=_changes(stack.tags, tags),
        capabilities=capabilities,
        deployed_hash=stack.spec_hash or "",
        parameter_changes=_changes(deployed, wanted),
        resources=resources,
    )


def _resource_changes(cfn: Any, stack: DeployedStack, desired: RenderedStack) -> ResourceChanges:
    """The deployed template against the blueprint, read with GetTemplate: an adopted stack's
    template is by definition not one this controller rendered."""
    body = templates.body(cfn, stack.stack_id)
    if isinstance(body, Exception):
        return ResourceChanges(problem=f"the deployed template could not be read ({body})")
    return compare(body, desired.template_body)


def _listed(resources: ResourceChanges) -> str:
    if resources.problem:
        return resources.problem
    return "; ".join(line.split(": the new")[0] for line in resources.lines() if line[0] == "-")


def adopt(
    aws: Aws,
    adoption: Adoption,
    assets_bucket: str,
    controller_id: str,
    on_event: EventSink,
    *,
    poll_seconds: float = POLL_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> str:
    """Write the tags under the apply lease, if the stack is still as it was shown."""
    cfn = aws.client("cloudformation")
    with Lease(aws.client("s3"), assets_bucket, controller_id, this_process(None)):
        raw = _describe(cfn, adoption.stack.name)
        now = from_api(raw) if raw is not None else None
        if now is None or _fingerprint(now) != _fingerprint(adoption.stack):
            raise AdoptError(
                f"{adoption.stack.name} changed since it was shown; nothing was written: "
                "run adopt again"
            )
        since = datetime.now(UTC) - timedelta(seconds=5)
        cfn.update_stack(
            StackName=now.stack_id,
            UsePreviousTemplate=True,
            Parameters=[{"ParameterKey": k, "UsePreviousValue": True} for k in now.parameters],
            Capabilities=list(adoption.capabilities),
            Tags=[{"Key": k, "Value": v} for k, v in adoption.tags],
            ClientRequestToken=_token(now, adoption.tags),
        )
        settled = wait_until_settled(
            cfn,
            now.stack_id,
            now.name,
            since,
            on_event,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
        )
    if settled.status != "UPDATE_COMPLETE":
        raise AdoptError(
            f"{now.name}: the tag update ended {settled.status}: "
            f"{settled.failure_reason or 'no reason given'}"
        )
    return settled.status


def _describe(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[ParameterChange, ...]:
    keys = sorted(set(old) | set(new))
    return tuple(
        ParameterChange(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)
    )


def _fingerprint(stack: DeployedStack) -> tuple[Any, ...]:
    return (stack.stack_id, stack.status, stack.last_updated, dict(stack.tags))


def _token(stack: DeployedStack, tags: tuple[tuple[str, str], ...]) -> str:
    """The same adoption of the same stack state sends the same token (a retry is no-op)."""
    seed = repr((stack.stack_id, stack.status, str(stack.last_updated), tags))
    return "mlops-adopt-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
