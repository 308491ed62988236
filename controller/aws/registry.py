"""The SageMaker Model Registry, read: approved versions of a group, one package's origin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.aws.session import Aws

APPROVED = "Approved"


def client_in(aws: Aws) -> Any:
    """The SageMaker client the registry is read with (`bump`)."""
    return aws.client("sagemaker")


def approved_versions(sagemaker: Any, group_arn: str) -> list[str]:
    """ARNs of every Approved version of the group (the group's ARN works across accounts)."""
    arns: list[str] = []
    paginator = sagemaker.get_paginator("list_model_packages")
    for page in paginator.paginate(
        ModelPackageGroupName=group_arn, ModelApprovalStatus=APPROVED, ModelPackageType="Versioned"
    ):
        arns += [p["ModelPackageArn"] for p in page.get("ModelPackageSummaryList", [])]
    return arns


@dataclass(frozen=True)
class Origin:
    """Where a registered model came from, as the registry records it."""

    package_arn: str
    approval: str
    training_job: str
    """The job that trained it (set by a training pipeline's registration), or empty."""
    artifact: str


def origin(sagemaker: Any, package_arn: str) -> Origin:
    found = sagemaker.describe_model_package(ModelPackageName=package_arn)
    containers = found.get("InferenceSpecification", {}).get("Containers", [])
    metadata = found.get("CustomerMetadataProperties", {})
    return Origin(
        package_arn=package_arn,
        approval=str(found.get("ModelApprovalStatus", "")),
        training_job=str(metadata.get("TrainingJobName", "")),
        artifact=str(containers[0].get("ModelDataUrl", "")) if containers else "",
    )
