"""Pipelines pinned to a model package version, and which newer version may replace a pin.

Deployment never follows "latest": what runs is the version git pins. `bump` only proposes a
new pin, as a commit to review, when the registry holds a newer *Approved* version of the
same group. Pure: documents and registry answers in, pins and choices out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from controller.core.config.document import Path

PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(?P<version>[0-9]+)$"
)


@dataclass(frozen=True)
class PackageVersion:
    arn: str
    group_arn: str
    version: int

    @classmethod
    def parse(cls, arn: str) -> PackageVersion | None:
        """A versioned package ARN; None for anything else (an unversioned package)."""
        match = PACKAGE_ARN.match(arn)
        if match is None:
            return None
        group_arn = (
            f"arn:{match['partition']}:sagemaker:{match['region']}:{match['account']}:"
            f"model-package-group/{match['group']}"
        )
        return cls(arn, group_arn, int(match["version"]))


@dataclass(frozen=True)
class Pin:
    """`model_package_name` of one pipeline, where it is written in the file."""

    path: Path
    model_name: str
    package: PackageVersion


@dataclass(frozen=True)
class Bump:
    pin: Pin
    to: PackageVersion


def pins(data: Any) -> Iterator[Pin]:
    """Every pipeline pinned to a versioned package; a per-stage value is left alone (a pin
    promotes through the stages with its commit, so stages share it)."""
    if isinstance(data, dict) and "pipeline_type" in data and "pipelines" not in data:
        yield from _pinned(data, ("model_package_name",))  # the original's single body
        return
    pipelines = data.get("pipelines") if isinstance(data, dict) else None
    for index, pipeline in enumerate(pipelines if isinstance(pipelines, list) else []):
        yield from _pinned(pipeline, ("pipelines", index, "model_package_name"))


def _pinned(pipeline: Any, path: Path) -> Iterator[Pin]:
    arn = pipeline.get("model_package_name") if isinstance(pipeline, dict) else None
    package = PackageVersion.parse(arn) if isinstance(arn, str) else None
    if package is not None:
        yield Pin(path, str(pipeline.get("model_name", "")), package)


def newest_approved(pin: Pin, approved: Iterable[str]) -> PackageVersion | None:
    """The newest of `approved` (ARNs of Approved versions of the pin's group) that is newer
    than the pin; None when the pin is the newest approved already. Versions of other groups
    and older versions never qualify: a bump never moves a pin back."""
    found = [PackageVersion.parse(arn) for arn in approved]
    newer = [
        v
        for v in found
        if v is not None
        and v.group_arn == pin.package.group_arn
        and v.version > pin.package.version
    ]
    return max(newer, key=lambda v: v.version, default=None)


def plan(found: Iterable[Pin], approved_of: dict[str, list[str]]) -> list[Bump]:
    """The bumps for `found`, given the Approved versions of each group (by group ARN)."""
    result = []
    for pin in found:
        newer = newest_approved(pin, approved_of.get(pin.package.group_arn, []))
        if newer is not None:
            result.append(Bump(pin, newer))
    return result
