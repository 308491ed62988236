"""What is deployed: every stack in the account and region, from one paginated read.

DescribeStacks without a name returns status, tags, parameters and outputs of every live
stack, which is all the planner needs; the content hash in a tag answers "did anything
change?" without fetching a single template. Stacks of other owners are returned too, so the
planner can refuse to take over a name it does not own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from controller.aws.session import Aws
from controller.core.stacks import DeployedStack


def discover(cloudformation: Any) -> tuple[DeployedStack, ...]:
    stacks: list[DeployedStack] = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        stacks.extend(from_api(item) for item in page.get("Stacks", []))
    return tuple(s for s in stacks if s.status != "DELETE_COMPLETE")


def deployed(aws: Aws) -> tuple[DeployedStack, ...]:
    """Every stack of the account and region, in one paginated read."""
    return discover(aws.client("cloudformation"))


def describe(cloudformation: Any, stack: str) -> DeployedStack | None:
    """One stack by name or id; None once it is gone."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return from_api(found[0]) if found else None


def from_api(item: Mapping[str, Any]) -> DeployedStack:
    return DeployedStack(
        name=item["StackName"],
        stack_id=item.get("StackId", item["StackName"]),
        status=item["StackStatus"],
        tags=MappingProxyType({t["Key"]: t["Value"] for t in item.get("Tags", [])}),
        parameters=MappingProxyType(
            {p["ParameterKey"]: p.get("ParameterValue", "") for p in item.get("Parameters", [])}
        ),
        outputs=MappingProxyType(
            {o["OutputKey"]: o.get("OutputValue", "") for o in item.get("Outputs", [])}
        ),
        status_reason=item.get("StackStatusReason", ""),
        last_updated=item.get("LastUpdatedTime") or item.get("CreationTime"),
        drift_status=item.get("DriftInformation", {}).get("StackDriftStatus", ""),
        drift_checked=item.get("DriftInformation", {}).get("LastCheckTimestamp"),
    )
