"""Drift detection on the emulator, which moto does not implement at all.

These patches add DetectStackDrift, DescribeStackDriftDetectionStatus and
DescribeStackResourceDrifts to the in-process moto server, and DriftInformation to its
DescribeStacks, answering the way CloudFormation does. Detection compares the SageMaker
resources a stack created with what the emulated account holds when it runs: a model,
endpoint config or endpoint that is gone is DELETED; an endpoint now serving another
endpoint config than the stack's is MODIFIED (moto has no UpdateEndpoint, so a test plays
that person by changing the emulated endpoint). Each detection answers IN_PROGRESS `polls`
times before it completes. And deleting a stack whose resource is already gone succeeds, as
CloudFormation treats a resource's NotFound on delete as deleted (moto fails the stack
delete instead). The controller talks to all of it over HTTP, unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.cloudformation.models import Stack as FakeStack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.models import sagemaker_backends


@dataclass
class DriftDetection:
    """The emulated service's state: set `polls` or `finishes` to shape later detections."""

    polls: int = 1
    finishes: bool = True
    started: dict[str, dict[str, Any]] = field(default_factory=dict)


def emulate_drift(monkeypatch: pytest.MonkeyPatch, polls: int = 1) -> DriftDetection:
    service = DriftDetection(polls)

    def detect_stack_drift(self: Any) -> ActionResult:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        detection = str(uuid.uuid4())
        service.started[detection] = {
            "stack": stack,
            "left": service.polls,
            "drifts": _compare(stack),
        }
        return ActionResult({"StackDriftDetectionId": detection})

    def describe_stack_drift_detection_status(self: Any) -> ActionResult:
        detection = self._get_param("StackDriftDetectionId")
        entry = service.started[detection]
        stack = entry["stack"]
        answer = {"StackId": stack.stack_id, "StackDriftDetectionId": detection}
        if entry["left"] > 0 or not service.finishes:
            entry["left"] -= 1
            return ActionResult(
                {**answer, "DetectionStatus": "DETECTION_IN_PROGRESS", "Timestamp": utcnow()}
            )
        verdict = "DRIFTED" if entry["drifts"] else "IN_SYNC"
        stack.drift_information = {"StackDriftStatus": verdict, "LastCheckTimestamp": utcnow()}
        return ActionResult(
            {
                **answer,
                "StackDriftStatus": verdict,
                "DetectionStatus": "DETECTION_COMPLETE",
                "DriftedStackResourceCount": len(entry["drifts"]),
                "Timestamp": utcnow(),
            }
        )

    def describe_stack_resource_drifts(self: Any) -> ActionResult:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        latest = [e for e in service.started.values() if e["stack"] is stack][-1]
        return ActionResult({"StackResourceDrifts": latest["drifts"]})

    for handler in (
        detect_stack_drift,
        describe_stack_drift_detection_status,
        describe_stack_resource_drifts,
    ):
        monkeypatch.setattr(CloudFormationResponse, handler.__name__, handler, raising=False)
    monkeypatch.setattr(FakeStack, "drift_information", None, raising=False)
    delete_resource = ResourceMap._delete_resource

    def delete_even_if_gone(self: Any, resource: Any, resource_json: Any) -> None:
        try:
            delete_resource(self, resource, resource_json)
        except Exception as exc:
            if "Could not find" not in str(exc):
                raise

    monkeypatch.setattr(ResourceMap, "_delete_resource", delete_even_if_gone)
    return service


def _compare(stack: Any) -> list[dict[str, Any]]:
    sagemaker = sagemaker_backends[stack.account_id][stack.region_name]
    live = {
        "AWS::SageMaker::Model": (sagemaker._models, "model_name"),
        "AWS::SageMaker::EndpointConfig": (sagemaker.endpoint_configs, "endpoint_config_name"),
        "AWS::SageMaker::Endpoint": (sagemaker.endpoints, "endpoint_name"),
    }
    drifts = []
    for logical_id, spec in stack.template_dict.get("Resources", {}).items():
        if spec["Type"] not in live or logical_id not in stack.resource_map._parsed_resources:
            continue
        created = stack.resource_map[logical_id]
        existing, name = live[spec["Type"]]
        now = existing.get(getattr(created, name))
        drift = {
            "StackId": stack.stack_id,
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": getattr(created, name),
            "ResourceType": spec["Type"],
            "Timestamp": utcnow(),
        }
        if now is None:
            drifts.append({**drift, "StackResourceDriftStatus": "DELETED"})
        elif spec["Type"] == "AWS::SageMaker::Endpoint":
            expected = stack.resource_map["EndpointConfig"].endpoint_config_name
            if now.endpoint_config_name != expected:
                difference = {
                    "PropertyPath": "/EndpointConfigName",
                    "ExpectedValue": expected,
                    "ActualValue": now.endpoint_config_name,
                    "DifferenceType": "NOT_EQUAL",
                }
                drifts.append(
                    {
                        **drift,
                        "StackResourceDriftStatus": "MODIFIED",
                        "PropertyDifferences": [difference],
                    }
                )
    return drifts
