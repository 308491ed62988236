"""The demos' emulated world: the buckets, stand-in artifacts and cross-account grants that a
real account would already have (the bootstrap's StageAccountIds grants, for the stages)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from typing import Any

from controller.aws.session import Aws
from controller.core import grants


def seed(aws: Aws, assets_bucket: str, example: dict[str, Any]) -> None:
    """The buckets and small stand-ins for the artifacts the example config names."""
    from controller.core.config.model import S3Location
    from controller.core.pipelines import ASSET_KEYS, LOCATION_KEYS

    s3 = aws.client("s3")
    buckets = {assets_bucket}
    objects: set[str] = set()
    for pipeline in example["pipelines"]:
        for key, value in pipeline.items():
            if key in LOCATION_KEYS:
                buckets.add(S3Location.parse(value).bucket)
            if key in ASSET_KEYS:
                objects.add(value)
        baseline = pipeline.get("shap_config", {}).get("baseline")
        if baseline:
            objects.add(baseline)
    for bucket in sorted(buckets):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=assets_bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in sorted(objects):
        s3.put_object(Bucket=assets_bucket, Key=key, Body=stand_in_artifact(key))


def stand_in_artifact(key: str) -> bytes:
    """A tiny file of the right kind (model tarball, Docker zip, CSV) for an emulated bucket."""
    buffer = io.BytesIO()
    if key.endswith(".tar.gz"):
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            data = b"demo model weights\n"
            info = tarfile.TarInfo("model.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()
    if key.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("Dockerfile", "FROM python:3.11-slim\nCOPY . /opt/program\n")
        return buffer.getvalue()
    return b"label,feature_a,feature_b\n1,0.5,3\n0,0.1,7\n"


def grant(aws: Aws, bucket: str, accounts: list[str]) -> None:
    """What the bootstrap's StageAccountIds deploys: the stage accounts may read the assets
    and pull the custom image."""
    statement = grants.bucket_statement(bucket, accounts)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    aws.client("s3").put_bucket_policy(Bucket=bucket, Policy=policy)
    ecr = aws.client("ecr")
    if not ecr.describe_repositories().get("repositories"):
        ecr.create_repository(repositoryName="mlops-churn")
    text = json.dumps(
        {"Version": "2012-10-17", "Statement": [grants.repository_statement(accounts)]}
    )
    ecr.set_repository_policy(repositoryName="mlops-churn", policyText=text)


def put_artifact(aws: Aws, bucket: str, key: str) -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=stand_in_artifact(key))


def seed_training(aws: Aws, example: dict[str, Any]) -> None:
    """The buckets (if an earlier story has not made them) and the training data."""
    from controller.core.config.model import S3Location

    s3 = aws.client("s3")
    assets = example["settings"]["assets_bucket"]
    buckets = {assets, S3Location.parse(example["pipelines"][-1]["data_capture_location"]).bucket}
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for bucket in sorted(buckets - existing):
        s3.create_bucket(Bucket=bucket)
    for pipeline in example["pipelines"]:
        for key in ("training_data", "validation_data"):
            if key in pipeline:
                s3.put_object(Bucket=assets, Key=pipeline[key], Body=stand_in_artifact(".csv"))
    s3.put_object(
        Bucket=assets, Key="training-output/model.tar.gz", Body=stand_in_artifact(".tar.gz")
    )


def register(sagemaker: Any, group: str, training_job: str, approval: str) -> str:
    """What the training state machine's Register step sends once its job has finished."""
    found = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"Trained by {training_job}",
        ModelApprovalStatus=approval,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                    "ModelDataUrl": "s3://mlops-assets-example/training-output/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"TrainingJobName": training_job},
    )
    return str(found["ModelPackageArn"])


def create_group(sagemaker: Any, group: str) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName=group)


def approve(sagemaker: Any, package_arn: str, training_job: str) -> None:
    """What a person does in the registry. The metadata is given again only because moto's
    update drops what it is not given."""
    sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"TrainingJobName": training_job},
    )


def alarm(aws: Aws, name: str) -> None:
    """An endpoint's 5xx alarm, as a team makes it in their account."""
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
