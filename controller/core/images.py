"""SageMaker container image URIs, from a table instead of the SageMaker Python SDK.

The SDK would pull pandas and numpy into a deploy tool just to look up an account id; the
table below holds the facts we support (read from SDK 2.257) and `custom_image_uri` is the
escape hatch for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")


def _accounts(*ids: str) -> dict[str, str]:
    return dict(zip(REGIONS, ids, strict=True))


@dataclass(frozen=True)
class ImageFamily:
    repository: str
    tag: str
    accounts: dict[str, str]


_LINEAR_LEARNER = ImageFamily(
    "linear-learner",
    "1",
    _accounts(
        "382416733822",
        "404615174143",
        "174872318107",
        "438346466558",
        "664544806723",
        "475088953585",
    ),
)
_XGBOOST_LEGACY = ImageFamily(
    "xgboost",
    "1",
    _accounts(
        "811284229777",
        "825641698319",
        "433757028032",
        "685385470294",
        "813361260812",
        "475088953585",
    ),
)
_XGBOOST_ACCOUNTS = _accounts(
    "683313688378",
    "257758044811",
    "246618743249",
    "141502667606",
    "492215442770",
    "121021644041",
)
MODEL_MONITOR = ImageFamily(
    "sagemaker-model-monitor-analyzer",
    "",
    _accounts(
        "156813124566",
        "777275614652",
        "159807026194",
        "468650794304",
        "048819808253",
        "245545462676",
    ),
)
CLARIFY = ImageFamily(
    "sagemaker-clarify-processing",
    "1.0",
    _accounts(
        "205585389593",
        "211330385671",
        "306415355426",
        "131013547314",
        "017069133835",
        "834264404009",
    ),
)

BUILTIN: dict[tuple[str, str], ImageFamily] = {
    ("linear-learner", "1"): _LINEAR_LEARNER,
    ("xgboost", "1"): _XGBOOST_LEGACY,
    ("xgboost", "1.5-1"): ImageFamily("sagemaker-xgboost", "1.5-1", _XGBOOST_ACCOUNTS),
    ("xgboost", "1.7-1"): ImageFamily("sagemaker-xgboost", "1.7-1", _XGBOOST_ACCOUNTS),
}


class UnknownImage(LookupError):
    """No image is known; `setting` names what to change: framework, version or region."""

    def __init__(self, message: str, expected: str, setting: str) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.setting = setting


def image_uri(family: ImageFamily, region: str, alternative: str = "") -> str:
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


def builtin_image_uri(framework: str, version: str, region: str) -> str:
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
    return image_uri(family, region)
