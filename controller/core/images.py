"""SageMaker container image URIs, from a table instead of the SageMaker Python SDK.

The SDK would pull pandas and numpy into a deploy tool just to look up an account id. Its
`image_uri_config` files for every built-in algorithm (inference and training scopes, every
version), the Model Monitor analyzer and Clarify, in every region of every partition, are
turned into `images.json` by `python -m tools.images` (docs/images.md; the file names its
source). `custom_image_uri` is the escape hatch for everything else, for models and monitors
alike.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ImageFamily:
    repository: str
    tag: str
    accounts: Mapping[str, str]
    """Region -> the registry's account id (a string: account ids keep their leading zeros)."""


@functools.cache
def _table() -> dict[str, Any]:
    text = resources.files("controller.core").joinpath("images.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


IMAGES: Mapping[tuple[str, str, str], ImageFamily] = {
    (scope, entry["name"], entry["version"]): ImageFamily(
        entry["repository"], entry["tag"], entry["accounts"]
    )
    for entry in _table()["images"]
    for scope in entry["scopes"]
}
"""(scope, name, version) -> image; scopes are inference, training, monitoring, processing."""

DOMAINS: Mapping[str, str] = {
    region: partition["domain"]
    for partition in _table()["partitions"].values()
    for region in partition["regions"]
}
"""Region -> the DNS suffix of its partition (amazonaws.com.cn in China, ...)."""

MODEL_MONITOR = IMAGES[("monitoring", "model-monitor", "")]
CLARIFY = IMAGES[("processing", "clarify", "1.0")]

SCOPES = ("inference", "training")
"""The scopes of the built-in algorithms: deploying a model, training one."""

REGIONS = tuple(sorted(DOMAINS))
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
    uri = f"{account}.dkr.ecr.{region}.{DOMAINS[region]}/{family.repository}"
    return f"{uri}:{family.tag}" if family.tag else uri


ESCAPE_HATCH = ", or the image's URI in custom_image_uri"
CUSTOM = ", or a *_custom pipeline with custom_image_uri"


def builtin_image_uri(framework: str, version: str, region: str, scope: str = "inference") -> str:
    """The image of a built-in algorithm: `inference` serves a model, `training` trains one."""
    family = IMAGES.get((scope, framework, version))
    if family is None:
        raise _unknown(framework, version, scope)
    return image_uri(family, region, CUSTOM)


def _unknown(framework: str, version: str, scope: str) -> UnknownImage:
    known = [(name, v) for s, name, v in IMAGES if s == scope]
    frameworks = sorted({name for name, _ in known})
    if framework not in frameworks:
        return UnknownImage(
            f"unknown built-in framework {framework!r}",
            f"one of {', '.join(frameworks)}{CUSTOM}",
            "framework",
        )
    versions = [v for name, v in known if name == framework]  # the table's numeric order
    return UnknownImage(
        f"unknown version {version!r} of {framework}",
        f"one of {', '.join(versions)}{CUSTOM}",
        "version",
    )


def monitor_image_uri(monitor: str, region: str) -> str:
    """Quality monitors run the analyzer; bias and explainability run Clarify."""
    family = MODEL_MONITOR if monitor in ("data_quality", "model_quality") else CLARIFY
    return image_uri(family, region, ESCAPE_HATCH)
