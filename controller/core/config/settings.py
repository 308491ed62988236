"""Where each setting comes from: a command-line flag, then the environment, then the file.

The file is the desired state and wins over generic AWS configuration (AWS_REGION, then
AWS_DEFAULT_REGION, then the AWS profile's region are only the last fallbacks for `region`,
in the AWS CLI's order); MLOPS_* variables and flags are explicit overrides, for CI jobs that
deploy one config to several accounts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.core.diagnostics import Diagnostic, error

ENVIRONMENT = {
    "assets_bucket": "MLOPS_ASSETS_BUCKET",
    "stack_prefix": "MLOPS_STACK_PREFIX",
    "controller_id": "MLOPS_CONTROLLER_ID",
    "region": "MLOPS_REGION",
    "max_deletes": "MLOPS_MAX_DELETES",
    "notification_topic_arn": "MLOPS_NOTIFICATION_TOPIC_ARN",
    "deployment_branch": "MLOPS_DEPLOYMENT_BRANCH",
    "assets_kms_key_arn": "MLOPS_ASSETS_KMS_KEY_ARN",
}

DEFAULTS: dict[str, Any] = {
    "stack_prefix": "mlops-pipeline",
    "controller_id": "mlops-controller",
    "deployment_branch": "main",
}

REGION_FALLBACKS = ("AWS_REGION", "AWS_DEFAULT_REGION")

NOT_FROM_FILE = frozenset({"deployment_branch"})
"""Settings only the controller's environment may set: a pushed commit whose own file named
its branch as the deployment branch would decide by itself that it deploys."""
KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:key/[a-zA-Z0-9-]+")


@dataclass(frozen=True)
class AwsDefaults:
    """What the local AWS configuration says, read at the edge (`controller.aws.session`) so
    that this module stays pure: the profile in use, its `region` in the AWS config file (the
    last fallback for `settings.region`, as for the AWS CLI), and the regions the SDK knows
    (empty: a region is checked only for its shape)."""

    profile: str | None = None
    """`--profile`, else AWS_PROFILE; None: the default profile."""
    profile_region: str | None = None
    regions: frozenset[str] = frozenset()


def merge(
    from_file: Mapping[str, Any],
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
    aws: AwsDefaults | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The effective raw settings and, for each overridden key, where its value came from."""
    kept = {k: v for k, v in from_file.items() if k not in NOT_FROM_FILE}
    merged: dict[str, Any] = {**DEFAULTS, **kept}
    origin: dict[str, str] = {}
    if "region" not in merged:
        for name in REGION_FALLBACKS:
            if environ.get(name):
                merged["region"] = environ[name]
                origin["region"] = name
                break
        else:
            if aws is not None and aws.profile_region:
                merged["region"] = aws.profile_region
                origin["region"] = f"the region of AWS profile {aws.profile or 'default'!r}"
    for key, variable in ENVIRONMENT.items():
        if environ.get(variable):
            merged[key] = _coerce(key, environ[variable])
            origin[key] = variable
    for key, value in flags.items():
        if value is not None:
            merged[key] = value
            origin[key] = "--" + key.replace("_", "-")
    return merged, origin


def _coerce(key: str, text: str) -> Any:
    if key == "max_deletes" and text.strip().isascii() and text.strip().isdigit():
        return int(text)
    return text


def key_problems(merged: Mapping[str, Any]) -> list[Diagnostic]:
    """`assets_kms_key_arn` against `region`, the orchestrator's: S3 encrypts a bucket only
    with a key of the bucket's own region, and the assets bucket is in that region (the
    bootstrap creates both there), so a key of another region cannot be the bucket's key and
    a role granted it still could not read. A malformed ARN is the schema's to report."""
    key, region = merged.get("assets_kms_key_arn"), merged.get("region")
    match = KEY_ARN.fullmatch(key) if isinstance(key, str) else None
    if match is None or not isinstance(region, str) or match["region"] == region:
        return []
    return [
        error(
            "C107",
            "$.settings.assets_kms_key_arn",
            f"the key is in region {match['region']}, but the assets bucket is in {region} "
            "(settings.region) and S3 encrypts a bucket only with a key of its own region",
            f"the KMS key of the assets bucket, a key in {region}",
        )
    ]
