"""From the bytes of mlops-config.json to a validated `Config`, or every reason it is not one.

Order matters: text (encoding, syntax) -> schema (shape of every value) -> settings (merged
with the environment and flags) -> normalization -> cross-pipeline checks. A later stage runs
only on input the earlier ones accepted, so it never meets a value of the wrong type.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from controller.core.config import checks, document, original, schema, settings, stages
from controller.core.config.model import (
    POLICY_SETTINGS,
    Config,
    Pipeline,
    Policy,
    S3Location,
    Settings,
)
from controller.core.diagnostics import Diagnostic, error, warning
from controller.core.pipelines import (
    ASSET_KEYS,
    ASSET_PREFIXES,
    BOOLEAN_KEYS,
    INTEGER_KEYS,
    KINDS,
    LOCATION_KEYS,
    stack_name,
)

_PIPELINE = re.compile(r"\$\.pipelines\[(\d+)\]")


@dataclass(frozen=True)
class LoadResult:
    config: Config | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.is_error)


def load(
    raw: bytes,
    name: str,
    *,
    revision: str | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    aws: settings.AwsDefaults | None = None,
) -> LoadResult:
    doc, problems = document.parse(name, raw)
    if doc is None:
        return LoadResult(None, tuple(problems))
    single = _is_single_pipeline(doc.data)
    if single:
        doc = _wrap_single(doc)
    from_file = doc.data.get("settings", {}) if isinstance(doc.data, dict) else {}
    merged, origin = settings.merge(
        from_file if isinstance(from_file, dict) else {},
        os.environ if environ is None else environ,
        flags or {},
        aws,
    )
    if isinstance(doc.data, dict) and isinstance(from_file, dict):
        doc = document.Document(doc.name, {**doc.data, "settings": merged}, doc.lines)
    ignored = [doc.locate(d, _path_tuple(d.path)) for d in _ignored_settings(from_file)]
    staged = stages.split(doc, merged)
    if staged is not None:
        validated = _validated_stages(staged, origin, revision, name, aws)
    else:
        validated = _validated(doc, merged, origin, revision, name, aws)
    config, found = _noting(validated, ignored)
    # Against the orchestrator's region, which a stage's document replaces with its own.
    key = ("settings", "assets_kms_key_arn")
    wrong_key = [doc.locate(_with_origin(d, origin), key) for d in settings.key_problems(merged)]
    if wrong_key:
        config, found = None, [*found, *wrong_key]
    if config is not None:
        config = replace(config, policy=_policy(from_file, merged, origin, revision))
    return _result(config, found, single)


def _policy(
    from_file: Any, merged: Mapping[str, Any], origin: Mapping[str, str], revision: str | None
) -> Policy:
    written = from_file if isinstance(from_file, dict) else {}
    return Policy(
        {k: written[k] for k in POLICY_SETTINGS if k in written},
        str(merged.get("region") or ""),
        {k: merged[k] for k in POLICY_SETTINGS if k in origin},
        revision,
    )


def _noting(
    validated: tuple[Config | None, list[Diagnostic]], ignored: list[Diagnostic]
) -> tuple[Config | None, list[Diagnostic]]:
    """Warnings about the file itself (settings it may not set) join every result."""
    config, found = validated
    if config is not None and ignored:
        config = replace(config, warnings=tuple(_unique([*config.warnings, *ignored])))
    return config, found + ignored


def _validated(
    doc: document.Document,
    merged: Mapping[str, Any],
    origin: Mapping[str, str],
    revision: str | None,
    name: str,
    aws: settings.AwsDefaults | None,
) -> tuple[Config | None, list[Diagnostic]]:
    doc, ignored = original.without_other_types_keys(doc)
    ignored = [doc.locate(d, _path_tuple(d.path)) for d in ignored]
    found = [_with_origin(d, origin) for d in schema.validate(doc)]
    if not any(d.path in ("$", "$.settings") for d in found):
        found += [doc.locate(d, ("settings",)) for d in _required_settings(merged, name)]
    if aws is not None and not any(d.path == "$.settings.region" for d in found):
        found += [
            doc.locate(_with_origin(d, origin), ("settings", "region"))
            for d in _unknown_region(merged.get("region"), aws.regions)
        ]
    if found:
        found += _checks_of_valid_pipelines(doc, merged, found)
        return None, ignored + found
    config = _build(doc, merged, revision)
    found = ignored + [doc.locate(d, _path_tuple(d.path)) for d in checks.run(config)]
    warnings = tuple(d for d in found if not d.is_error)
    if any(d.is_error for d in found):
        return None, found
    config = Config(config.settings, config.pipelines, name, revision, tuple(_unique(warnings)))
    return config, found


def _validated_stages(
    staged: stages.Split,
    origin: Mapping[str, str],
    revision: str | None,
    name: str,
    aws: settings.AwsDefaults | None,
) -> tuple[Config | None, list[Diagnostic]]:
    """Every rule, once per stage, on the file as that stage sees it (see `stages`)."""
    found = list(staged.problems)
    configs = []
    for part in staged.stages:
        config, diagnostics = _validated(
            part.document, part.settings, part.origin(origin), revision, name, aws
        )
        found += [d for d in map(part.in_file, diagnostics) if d is not None]
        configs.append(config)
    found = _unique(found)
    complete = [c for c in configs if c is not None]
    if any(d.is_error for d in found) or len(complete) < len(configs):
        return None, found
    warnings = tuple(d for d in found if not d.is_error)
    return stages.assemble(complete, staged, warnings), found


def _checks_of_valid_pipelines(
    doc: document.Document, merged: Mapping[str, Any], found: list[Diagnostic]
) -> list[Diagnostic]:
    """Cross-pipeline checks over the pipelines the schema accepted, so one run shows all.

    They need valid settings (the region picks images, the prefix makes stack names) and a
    list of pipelines; the pipelines with schema errors are left out, keeping their index.
    """
    if any(not d.path.startswith("$.pipelines[") for d in found):
        return []
    rejected = frozenset(int(m.group(1)) for d in found if (m := _PIPELINE.match(d.path)))
    config = _build(doc, merged, None, skip=rejected)
    return [doc.locate(d, _path_tuple(d.path)) for d in checks.run(config) if d.is_error]


def _result(config: Config | None, found: list[Diagnostic], single: bool) -> LoadResult:
    found = _unique(found)
    if single:
        found = [_unwrap_path(d) for d in found]
    return LoadResult(config, tuple(found))


def _unique(found: list[Diagnostic] | tuple[Diagnostic, ...]) -> list[Diagnostic]:
    seen: set[tuple[str, str]] = set()
    result = []
    for diagnostic in found:
        key = (diagnostic.path, diagnostic.message)
        if key not in seen:
            seen.add(key)
            result.append(diagnostic)
    return result


def _is_single_pipeline(data: Any) -> bool:
    """The original's request body: one pipeline object instead of a whole config; a key
    only a pipeline has says so even when `pipeline_type` is the one missing."""
    if not isinstance(data, dict) or "pipelines" in data:
        return False
    return any(key in data for key in _PIPELINE_ONLY)


_PIPELINE_ONLY = frozenset(
    {"pipeline_type", "model_name", "image_tag", "endpoint_name", "model_artifact_location"}
)


def _wrap_single(doc: document.Document) -> document.Document:
    lines = {("pipelines", 0, *path): line for path, line in doc.lines.items()}
    lines[()] = doc.lines.get((), 1)
    return document.Document(doc.name, {"pipelines": [doc.data]}, lines)


def _unwrap_path(diagnostic: Diagnostic) -> Diagnostic:
    from dataclasses import replace

    path = diagnostic.path
    if path.startswith("$.pipelines[0]"):
        path = "$" + path.removeprefix("$.pipelines[0]")
    return replace(diagnostic, path=path)


def _with_origin(diagnostic: Diagnostic, origin: Mapping[str, str]) -> Diagnostic:
    from dataclasses import replace

    for key, source in origin.items():
        if diagnostic.path == f"$.settings.{key}":
            return replace(diagnostic, message=f"{diagnostic.message} (set by {source})")
    return diagnostic


def _ignored_settings(from_file: Any) -> list[Diagnostic]:
    """A warning, not an error, so configs written when the file could set it stay valid."""
    if not isinstance(from_file, dict):
        return []
    return [
        warning(
            "W201",
            f"$.settings.{key}",
            f"settings.{key} in the file is ignored: the controller's environment decides "
            "where it deploys, never the commit it deploys",
            f"{settings.ENVIRONMENT[key]} (the bootstrap stack's DeploymentBranch) or "
            f"--{key.replace('_', '-')}",
        )
        for key in sorted(settings.NOT_FROM_FILE)
        if key in from_file
    ]


def _required_settings(merged: Mapping[str, Any], name: str) -> list[Diagnostic]:
    found = []
    for key, variable in (("assets_bucket", "MLOPS_ASSETS_BUCKET"), ("region", "MLOPS_REGION")):
        if not merged.get(key):
            flag = "--" + key.replace("_", "-")
            where = f"settings.{key} in {name}, {variable} or {flag}"
            if key == "region":
                where = (
                    f"settings.region in {name}, MLOPS_REGION, --region, AWS_REGION, "
                    "AWS_DEFAULT_REGION or a region in the AWS profile"
                )
            found.append(error("S107", f"$.settings.{key}", "missing required setting", where))
    return found


def _unknown_region(region: Any, known: frozenset[str]) -> list[Diagnostic]:
    """A well-formed but unknown region (`us-east-9`) would only fail at the first AWS call."""
    if not known or not isinstance(region, str) or region in known:
        return []
    close = difflib.get_close_matches(region, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return [
        error(
            "C106",
            "$.settings.region",
            f"unknown region {region!r}{hint}",
            "a region the AWS SDK knows, such as us-east-1; a newer region needs a newer boto3",
        )
    ]


def _path_tuple(path: str) -> document.Path:
    """Parse the simple `$.a[0].b` paths that checks produce back into a tuple."""
    parts: list[str | int] = []
    for chunk in path.removeprefix("$").replace("[", ".[").split("."):
        if not chunk:
            continue
        parts.append(int(chunk[1:-1]) if chunk.startswith("[") else chunk)
    return tuple(parts)


def _build(
    doc: document.Document,
    merged: Mapping[str, Any],
    revision: str | None,
    skip: frozenset[int] = frozenset(),
) -> Config:
    known = {f for f in Settings.__dataclass_fields__}
    resolved = Settings(**{k: v for k, v in merged.items() if k in known})
    pipelines = tuple(
        _pipeline(index, raw, resolved)
        for index, raw in enumerate(doc.data["pipelines"])
        if index not in skip
    )
    return Config(resolved, pipelines, doc.name, revision)


def _pipeline(index: int, raw: Mapping[str, Any], resolved: Settings) -> Pipeline:
    kind = KINDS[raw["pipeline_type"]]
    values = {key: _normalize(key, value, resolved) for key, value in raw.items()}
    infix = str(values[kind.identity_key])
    return Pipeline(
        kind=kind,
        name=infix,
        stack_name=stack_name(resolved.stack_prefix, infix, kind),
        index=index,
        values=MappingProxyType(values),
    )


def _normalize(key: str, value: Any, resolved: Settings) -> Any:
    if key in ASSET_KEYS or key in ASSET_PREFIXES:
        return S3Location.parse(value, default_bucket=resolved.assets_bucket)
    if key in LOCATION_KEYS:
        return S3Location.parse(value)
    if key in INTEGER_KEYS:
        return int(value)
    if key in BOOLEAN_KEYS:
        return value in (True, "True")
    if key == "attribute_names" and isinstance(value, str):
        return _attribute_names(value)
    if key == "endpoint_name":
        return str(value).lower()
    if key == "probability_threshold_attribute":
        return float(value)
    if key == "shap_config" and isinstance(value.get("baseline"), str):
        baseline = S3Location.parse(value["baseline"], default_bucket=resolved.assets_bucket)
        return {**value, "baseline": baseline.uri}
    return value


def _attribute_names(text: str) -> list[str]:
    """The original took a JSON list as text; a bare name is a list of one."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(parsed, list) and parsed and all(isinstance(v, str) for v in parsed):
        return parsed
    return [text]
