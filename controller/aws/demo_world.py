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
