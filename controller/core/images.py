"""SageMaker container image URIs, from a table instead of the SageMaker Python SDK.

The SDK would pull pandas and numpy into a deploy tool just to look up an account id; its
image registries for the frameworks we support, the Model Monitor analyzer and Clarify, in
every region of the commercial (`aws`) partition, are copied into `images.json` (the file
names its source). `custom_image_uri` is the escape hatch for everything else, for models and
monitors alike.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ImageFamily:
    repository: str
    tag: str
    accounts: Mapping[str, str]
    """Region -> the registry's account id (a string: account ids keep their leading zeros)."""


@functools.cache
def _families() -> dict[str, ImageFamily]:
    data = json.loads(resources.files("controller.core").joinpath("images.json").read_text())
    return {
        name: ImageFamily(entry["repository"], entry["tag"], entry["accounts"])
        for name, entry in data["families"].items()
    }


MODEL_MONITOR = _families()["model-monitor"]
CLARIFY = _families()["clarify"]

BUILTIN: dict[tuple[str, str], ImageFamily] = {
    tuple(name.split(":", 1)): family  # type: ignore[misc]
    for name, family in _families().items()
    if ":" in name
}

REGIONS = tuple(sorted({r for f in _families().values() for r in f.accounts}))
"""Every region some image is known in."""


class UnknownImage(LookupError):
    """No image is known; `setting` names what to change: framework, version or region."""

    def __init__(self, message: str, expected: str, setting: str) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.setting = setting


def image_uri(family: ImageFamily, region: str, alternative: str) -> str:
    account = family.accounts.get(region)
    if account is None:
        raise UnknownImage(
            f"no {family.repository} image is known in region {region!r}",
            f"one of {', '.join(sorted(family.accounts))}{alternative}",
            "region",
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    uri = f"{account}.dkr.ecr.{region}.{domain}/{family.repository}"
    return f"{uri}:{family.tag}" if family.tag else uri


ESCAPE_HATCH = ", or the image's URI in custom_image_uri"


def builtin_image_uri(framework: str, version: str, region: str, scope: str = "inference") -> str:
    """`scope` is "inference" (deploying) or "training"; this table's images serve both (a
    table generated per scope answers each from its own entries)."""
    del scope
    family = BUILTIN.get((framework, version))
    if family is None:
        frameworks = sorted({f for f, _ in BUILTIN})
        if framework not in frameworks:
            raise UnknownImage(
                f"unknown built-in framework {framework!r}",
                f"one of {', '.join(frameworks)}, or a *_custom pipeline with custom_image_uri",
                "framework",
            )
        versions = sorted(v for f, v in BUILTIN if f == framework)
        raise UnknownImage(
            f"unknown version {version!r} of {framework}",
            f"one of {', '.join(versions)}, or a *_custom pipeline with custom_image_uri",
            "version",
        )
    return image_uri(family, region, ", or a *_custom pipeline with custom_image_uri")


def monitor_image_uri(monitor: str, region: str) -> str:
    """Quality monitors run the analyzer; bias and explainability run Clarify."""
    family = MODEL_MONITOR if monitor in ("data_quality", "model_quality") else CLARIFY
    return image_uri(family, region, ESCAPE_HATCH)
