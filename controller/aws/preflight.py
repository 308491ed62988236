"""Pre-flight checks: the S3 objects a pending change needs must exist before AWS is asked.

A missing model artifact otherwise surfaces twenty minutes later as a failed endpoint. Only
pipelines with a pending create/update/replace are checked, so a no-op plan makes no calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from controller.aws.session import Aws
from controller.core.config.model import Pipeline, S3Location
from controller.core.pipelines import ASSET_KEYS
from controller.core.plan import Action, Plan

NEEDS_ASSETS = frozenset({Action.CREATE, Action.UPDATE, Action.REPLACE})


def required_objects(pipeline: Pipeline) -> Iterator[tuple[str, S3Location]]:
    for key in sorted(ASSET_KEYS):
        location = pipeline.get(key)
        if isinstance(location, S3Location):
            yield key, location
    shap = pipeline.get("shap_config")
    if isinstance(shap, dict) and isinstance(shap.get("baseline"), str):
        yield "shap_config.baseline", S3Location.parse(shap["baseline"])


def check_in(aws: Aws, plan: Plan) -> dict[str, str]:
    """`check` with the session's S3 client."""
    return check(plan, aws.client("s3"))


def check(plan: Plan, s3: Any, parallel: int = 8) -> dict[str, str]:
    """Stack name -> what is missing, for every pending change whose inputs are absent."""
    wanted = [
        (action.stack_name, key, location)
        for action in plan.actions
        if action.action in NEEDS_ASSETS and action.desired is not None
        for key, location in required_objects(action.desired.pipeline)
    ]
    if not wanted:
        return {}
    # Pipelines often share an object (one model behind a realtime and a batch pipeline, one
    # baseline for several monitors): each distinct object is asked about once.
    objects = sorted({location for _, _, location in wanted})
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        problems = dict(zip(objects, pool.map(lambda o: _missing(s3, o), objects), strict=True))
    failures: dict[str, str] = {}
    for stack_name, key, location in wanted:
        problem = problems[location]
        if problem is not None:
            message = f"pre-flight: {key} {location.uri}{problem}"
            failures[stack_name] = (
                f"{failures[stack_name]}; {message}" if (stack_name in failures) else message
            )
    return failures


def _missing(s3: Any, location: S3Location) -> str | None:
    """What is wrong with the object, said after its URI; None when it is there."""
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
    except s3.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return " does not exist"
        if code in ("403", "AccessDenied"):
            return " is not readable (access denied)"
        return f": {code}"
    return None
