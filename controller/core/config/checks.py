"""Rules the JSON Schema cannot express: they look across pipelines or at derived names."""

from __future__ import annotations

import re
from collections.abc import Iterator

from controller.core import images, rollout
from controller.core.config.model import Config, Pipeline
from controller.core.diagnostics import Diagnostic, error, warning
from controller.core.pipelines import INTEGER_KEYS, Family

STACK_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]*")
MAX_STACK_NAME = 128
LIMITS = {
    "monitor_max_runtime_seconds": (1, 86400),
    "baseline_max_runtime_seconds": (1, 86400),
    "instance_volume_size": (1, 16384),
    "instance_count": (1, 1000),
    "max_runtime_per_job": (1, 2592000),
    "max_wait_time_spot_instances": (1, 2592000),
    "job_max_candidates": (1, 1000),
    "total_max_runtime": (1, 2592000),
}


def run(config: Config) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for rule in (
        _duplicates,
        _stack_names,
        _ranges,
        _images,
        _endpoints,
        _search_ranges,
        _rollouts,
    ):
        found.extend(rule(config))
    return found


def _path(pipeline: Pipeline, key: str | None = None) -> str:
    base = f"$.pipelines[{pipeline.index}]"
    return f"{base}.{key}" if key else base


def _duplicates(config: Config) -> Iterator[Diagnostic]:
    first: dict[str, Pipeline] = {}
    for pipeline in config.pipelines:
        earlier = first.setdefault(pipeline.stack_name, pipeline)
        if earlier is not pipeline:
            yield error(
                "C101",
                _path(pipeline, pipeline.kind.identity_key),
                f"duplicate pipeline: stack {pipeline.stack_name} is already defined by "
                f"$.pipelines[{earlier.index}]",
                f"a {pipeline.kind.identity_key} unique among {pipeline.type} pipelines",
            )


def _stack_names(config: Config) -> Iterator[Diagnostic]:
    for pipeline in config.pipelines:
        name = pipeline.stack_name
        if len(name) > MAX_STACK_NAME:
            yield error(
                "C102",
                _path(pipeline, pipeline.kind.identity_key),
                f"stack name {name} is {len(name)} characters long",
                f"a shorter {pipeline.kind.identity_key}: stack names are at most "
                f"{MAX_STACK_NAME} characters",
            )
        elif not STACK_NAME.fullmatch(name):
            yield error(
                "C102",
                _path(pipeline, pipeline.kind.identity_key),
                f"stack name {name} is not a valid CloudFormation stack name",
                "a name that starts with a letter and holds only letters, digits and hyphens",
            )


def _ranges(config: Config) -> Iterator[Diagnostic]:
    for pipeline in config.pipelines:
        for key in INTEGER_KEYS & set(pipeline.values):
            low, high = LIMITS[key]
            value = pipeline.values[key]
            if not low <= value <= high:
                yield error(
                    "C103",
                    _path(pipeline, key),
                    f"{value} is out of range",
                    f"a whole number from {low} to {high}",
                )


def _images(config: Config) -> Iterator[Diagnostic]:
    region = config.settings.region
    for pipeline in config.pipelines:
        try:
            if pipeline.kind.builtin and "model_package_name" not in pipeline.values:
                images.builtin_image_uri(
                    pipeline.values["model_framework"],
                    pipeline.values["model_framework_version"],
                    region,
                    scope="training" if pipeline.kind.family is Family.TRAINING else "inference",
                )
            if pipeline.kind.family is Family.MONITOR and "custom_image_uri" not in pipeline.values:
                images.monitor_image_uri(pipeline.kind.monitor, region)
        except images.UnknownImage as exc:
            if exc.setting == "region":
                yield error("C104", "$.settings.region", exc.message, exc.expected)
            else:
                key = "model_framework" if exc.setting == "framework" else "model_framework_version"
                yield error("C104", _path(pipeline, key), exc.message, exc.expected)


def _endpoints(config: Config) -> Iterator[Diagnostic]:
    served: dict[str, Pipeline] = {}
    for pipeline in config.pipelines:
        name = pipeline.endpoint_name
        if pipeline.kind.family is Family.REALTIME and name:
            earlier = served.setdefault(name, pipeline)
            if earlier is not pipeline:
                yield error(
                    "C105",
                    _path(pipeline, "endpoint_name"),
                    f"endpoint {name} is already deployed by $.pipelines[{earlier.index}]",
                    "an endpoint name unique among realtime pipelines",
                )
    for pipeline in config.pipelines:
        name = pipeline.endpoint_name
        if pipeline.kind.family is Family.MONITOR and name and name not in served:
            yield warning(
                "W101",
                _path(pipeline, "endpoint_name"),
                f"endpoint {name} is not deployed by a realtime pipeline in this file; it must "
                "exist in the account before the monitor is created",
                "the endpoint_name of a realtime pipeline",
            )


RANGE_KINDS = ("continuous", "integer", "categorical")


def _search_ranges(config: Config) -> Iterator[Diagnostic]:
    """`hyperparamaters_ranges` in the original's form, which the schema cannot express:
    `["continuous" | "integer", [min, max]]` (min below max) or `["categorical", [values]]`."""
    for pipeline in config.pipelines:
        ranges = pipeline.values.get("hyperparamaters_ranges") or {}
        for name, spec in ranges.items():
            if not _valid_range(spec):
                yield error(
                    "C110",
                    _path(pipeline, f"hyperparamaters_ranges.{name}"),
                    f"{name}: {spec!r} is not a search range",
                    '["continuous", [0.1, 0.5]], ["integer", [1, 15]] or '
                    '["categorical", ["sgd", "Adam"]]',
                )


def _valid_range(spec: list[object]) -> bool:
    kind, values = spec
    if kind not in RANGE_KINDS or not isinstance(values, list) or not values:
        return False
    if kind == "categorical":
        return all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values)
    if len(values) != 2 or not all(isinstance(v, int | float) for v in values):
        return False
    low, high = values
    if isinstance(low, bool) or isinstance(high, bool) or low >= high:
        return False
    return kind == "continuous" or (isinstance(low, int) and isinstance(high, int))


def _rollouts(config: Config) -> Iterator[Diagnostic]:
    """SageMaker's exclusions for how an endpoint is sized and updated (see `rollout`), and
    Model Monitor, which cannot watch a serverless endpoint."""
    serverless: dict[str, Pipeline] = {}
    for pipeline in config.pipelines:
        if pipeline.kind.family is Family.REALTIME:
            plan = rollout.of(pipeline.values)
            yield from rollout.problems(plan, pipeline.values, _path(pipeline))
            if plan.serverless is not None and pipeline.endpoint_name:
                serverless[pipeline.endpoint_name] = pipeline
    for pipeline in config.pipelines:
        name = pipeline.endpoint_name
        if pipeline.kind.family is Family.MONITOR and name in serverless:
            yield error(
                "C108",
                _path(pipeline, "endpoint_name"),
                f"endpoint {name} is serverless ($.pipelines[{serverless[name].index}]): "
                "SageMaker captures no data of it, so no monitor can watch it",
                "an endpoint served by instances",
            )
