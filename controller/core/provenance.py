"""Which model a pipeline runs and where it came from, in a few words for `status` and
`history`: a registry version (and, once the registry is asked, the job that trained it), an
artifact, or for a training pipeline the job it runs and the group it registers in. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from controller.core.pins import PackageVersion


def from_parameters(parameters: Mapping[str, str], *, locations: bool = True) -> str:
    """From a rendered or deployed stack's parameters (the same names in both). Without
    `locations` only names and versions are given, never an ARN or an S3 location (the
    ledger keeps no parameter values: they may hold account ids)."""
    package = parameters.get("ModelPackageName")
    if package:
        version = PackageVersion.parse(package)
        if version is None:
            return f"registry {package}" if locations else "registry"
        group = version.group_arn.rsplit("/", 1)[1]
        return f"registry {group} v{version.version}"
    if parameters.get("JobRequest") is not None:
        job = parameters.get("JobName", "")
        registers = parameters.get("ModelPackageGroupName")
        return f"trains {job}" + (f", registers in {registers}" if registers else "")
    if parameters.get("ModelArtifactBucket") and locations:
        return f"artifact s3://{parameters['ModelArtifactBucket']}/{parameters['ModelArtifactKey']}"
    return ""


def with_origin(model: str, training_job: str) -> str:
    """A registry version, with the training job the registry names as its origin."""
    return f"{model} (trained by {training_job})" if training_job else model
