"""Per-stage values: one config file, one resolved document per stage, before any rule runs.

In the original's multi-account mode any pipeline value may be `{"dev": ..., "staging": ...,
"prod": ...}`, one value per stage. Each value written that way is replaced by its stage's
value, giving one document per stage; the schema and every check then run on each document
unchanged, so every rule holds per stage (the region's images, endpoint names per account). A
problem in a value that came from a per-stage object is reported at that stage's value and
line (`$.pipelines[0].inference_instance.prod`), which names the stage.

Pure: documents in, documents and diagnostics out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from controller.core.config.document import Document, Path, format_path
from controller.core.config.model import Config, PromoteAfter, Stage
from controller.core.diagnostics import Diagnostic, error
from controller.core.partitions import PARTITIONS, partition_of
from controller.core.pipelines import KINDS, Family

ORCHESTRATOR = "orchestrator"
"""The orchestrator account's own step (its image builders) goes by this name: no stage may."""

OBJECT_VALUED = frozenset(
    {
        "bias_config",
        "shap_config",
        "model_predicted_label_config",
        "algo_hyperparamaters",
        "tuner_configs",
        "hyperparamaters_ranges",
        "autoscaling",
        "deployment",
        "serverless",
        "async_inference",
        "vpc",
    }
)
"""Keys whose value is itself an object. Such a value is per stage only when every one of its
keys is a stage name; one that mixes stage names with other keys is ambiguous, an error."""

IMAGE_BUILDER = "byom_image_builder"
TRAINING = frozenset(t for t, kind in KINDS.items() if kind.family is Family.TRAINING)

_Key = tuple[int, str]
"""A pipeline value: (index in the pipeline list, key)."""


@dataclass(frozen=True)
class StageDocument:
    """The file as one stage sees it, and how to point its problems back into the file."""

    stage: Stage
    document: Document
    settings: dict[str, Any]
    """The merged settings, with the stage's region."""
    own_region: bool
    renamed: tuple[tuple[str, str], ...]
    """(path in this document, path in the file) for every value taken from a per-stage one."""
    hidden: frozenset[str]
    """Paths of values this stage has no value for: already reported, so not reported again."""

    def in_file(self, diagnostic: Diagnostic) -> Diagnostic | None:
        """The problem at its path in the file; None when it only repeats a reported one."""
        for inner, outer in self.renamed:
            if _under(diagnostic.path, inner):
                return replace(diagnostic, path=outer + diagnostic.path[len(inner) :])
        if any(_under(diagnostic.path, path) for path in self.hidden):
            return None
        return diagnostic

    def origin(self, origin: Mapping[str, str]) -> dict[str, str]:
        """Where settings came from; a stage's own region came from the file."""
        return {k: v for k, v in origin.items() if not (k == "region" and self.own_region)}


@dataclass(frozen=True)
class Split:
    stages: tuple[StageDocument, ...]
    problems: tuple[Diagnostic, ...]
    """Problems of the stages themselves and of per-stage objects, located in the file."""
    region: str
    """settings.region: the orchestrator account's region, where the image builders run."""


def configured(raw: Any, default_region: Any) -> tuple[Stage, ...]:
    """The stages whatever else is wrong with them: each entry with a name, first of a name."""
    if not isinstance(raw, list):
        return ()
    stages: list[Stage] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        if any(s.name == entry["name"] for s in stages):
            continue
        region = entry.get("region")
        external = entry.get("external_id")
        stages.append(
            Stage(
                name=entry["name"],
                account_id=str(entry.get("account_id", "")),
                role_arn=str(entry.get("role_arn", "")),
                region=str(region if isinstance(region, str) else default_region or ""),
                index=index,
                manual=entry.get("approval") == "manual",
                external_id=external if isinstance(external, str) else None,
                promote_after=_promote_after(entry.get("promote_after")),
            )
        )
    return tuple(stages)


def _promote_after(raw: Any) -> PromoteAfter | None:
    """The gate as written; the schema reports what is wrong with it, so a value of the
    wrong type here only has to be harmless (it is read as the strictest it could mean)."""
    if not isinstance(raw, dict):
        return None
    soak = raw.get("soak_minutes", 0)
    alarms = raw.get("alarms", [])
    return PromoteAfter(
        soak_minutes=soak if isinstance(soak, int) else 0,
        alarms=tuple(str(a) for a in alarms) if isinstance(alarms, list) else (),
        monitors_clean=raw.get("monitors") == "clean",
    )


def split(doc: Document, merged: Mapping[str, Any]) -> Split | None:
    """One document per stage; None when the config has no usable `settings.stages`."""
    stages = configured(merged.get("stages"), merged.get("region"))
    if not stages:
        return None
    names = tuple(s.name for s in stages)
    problems = list(_stage_problems(merged["stages"], merged.get("region")))
    per_stage: dict[_Key, dict[str, Any]] = {}
    for (index, key), value, pipeline in _values(doc.data):
        path = ("pipelines", index, key)
        if not _is_per_stage(key, value, names):
            problems += _ambiguous(path, key, value, names)
            continue
        per_stage[(index, key)] = value
        problems += _value_problems(path, key, value, names, pipeline)
    located = tuple(doc.locate(diagnostic, path) for path, diagnostic in problems)
    nested = _nested_lines(doc, per_stage)
    documents = tuple(_document(doc, merged, stage, per_stage, nested) for stage in stages)
    return Split(documents, located, str(merged.get("region") or ""))


def assemble(configs: Sequence[Config], split_: Split, warnings: tuple[Diagnostic, ...]) -> Config:
    """The orchestrator's config (image builders, training), holding one config per stage
    (the rest). Training runs once, in the orchestrator account, as in the original.

    Image builders run once, in the orchestrator account, whose registry the stage accounts
    pull from; everything else is deployed in every stage, in order.
    """
    parts = []
    for config, part in zip(configs, split_.stages, strict=True):
        pipelines = tuple(p for p in config.pipelines if not p.kind.orchestrator_only)
        source = stage_source(config.source, part.stage.name)
        parts.append(
            replace(config, pipelines=pipelines, source=source, stage=part.stage, warnings=warnings)
        )
    first = configs[0]
    builders = tuple(p for p in first.pipelines if p.kind.orchestrator_only)
    settings = replace(first.settings, region=split_.region)
    return replace(
        first, settings=settings, pipelines=builders, warnings=warnings, stages=tuple(parts)
    )


def stage_source(source: str, stage: str) -> str:
    """How a stage's config names where it came from: what its ledger records and its
    notifications say."""
    return f"{source} (stage {stage})"


_STAGE_SOURCE = re.compile(r" \(stage ([^()]+)\)$")


def stage_of_source(source: str) -> str | None:
    """The stage a source names (`stage_source`); None for a single account's or the
    orchestrator's own."""
    match = _STAGE_SOURCE.search(source)
    return match.group(1) if match else None


def _values(data: Any) -> Iterator[tuple[_Key, Any, dict[str, Any]]]:
    pipelines = data.get("pipelines") if isinstance(data, dict) else None
    if not isinstance(pipelines, list):
        return
    for index, pipeline in enumerate(pipelines):
        if isinstance(pipeline, dict):
            for key, value in pipeline.items():
                yield (index, key), value, pipeline


def _is_per_stage(key: str, value: Any, names: tuple[str, ...]) -> bool:
    """Any object, for a key whose value is never one; for a key whose value is an object,
    only a non-empty one whose keys are all stage names."""
    if not isinstance(value, dict):
        return False
    if key not in OBJECT_VALUED:
        return True
    return bool(value) and all(k in names for k in value)


_Found = Iterator[tuple[Path, Diagnostic]]


def _ambiguous(path: Path, key: str, value: Any, names: tuple[str, ...]) -> _Found:
    if key not in OBJECT_VALUED or not isinstance(value, dict):
        return
    stages = [k for k in value if k in names]
    others = [k for k in value if k not in names]
    if stages and others:
        hints = "".join(
            f"; did you mean {close[0]!r} instead of {other!r}?"
            for other in others
            if (close := difflib.get_close_matches(other, names, n=1, cutoff=0.6))
        )
        yield _problem(
            path,
            "C203",
            f"mixes stage names ({', '.join(stages)}) with other keys ({', '.join(others)}), "
            f"so it is neither one {key} nor one value per stage{hints}",
            f"one value per stage {_example(names)}, or one {key} without stage names as keys",
        )


def _value_problems(
    path: Path, key: str, value: dict[str, Any], names: tuple[str, ...], pipeline: dict[str, Any]
) -> _Found:
    for other in value:
        if other not in names:
            close = difflib.get_close_matches(other, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield _problem(
                (*path, other),
                "C201",
                f"unknown stage {other!r}{hint}",
                f"one of the stages in settings.stages: {', '.join(names)}",
            )
    missing = [name for name in names if name not in value]
    if missing:
        yield _problem(
            path,
            "C202",
            f"no value for stage{'s' * (len(missing) > 1)} {', '.join(missing)}",
            f"one value for each stage {_example(names)}",
        )
    if key == "pipeline_type":
        yield _problem(
            path,
            "C204",
            "pipeline_type cannot differ per stage",
            "one pipeline_type for every stage",
        )
    elif str(pipeline.get("pipeline_type")) in TRAINING:
        yield _problem(
            path,
            "C204",
            f"{pipeline['pipeline_type']} runs once, in the orchestrator account (the stages "
            "deploy the model package git pins): it has no per-stage values",
            "one value",
        )
    elif pipeline.get("pipeline_type") == IMAGE_BUILDER:
        yield _problem(
            path,
            "C204",
            f"{IMAGE_BUILDER} runs once, in the orchestrator account, and every stage pulls its "
            "image from there: it has no per-stage values",
            "one value",
        )


def _problem(path: Path, code: str, message: str, expected: str) -> tuple[Path, Diagnostic]:
    return path, error(code, format_path(path), message, expected)


def _example(names: tuple[str, ...]) -> str:
    return "{" + ", ".join(f'"{name}": ...' for name in names) + "}"


def _stage_problems(raw: list[Any], default_region: Any) -> _Found:
    first: dict[str, int] = {}
    places: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        base: Path = ("settings", "stages", index)
        name = entry.get("name")
        if isinstance(name, str):
            earlier = first.setdefault(name, index)
            if earlier != index:
                yield _problem(
                    (*base, "name"),
                    "C205",
                    f"stage {name!r} is already defined by $.settings.stages[{earlier}]",
                    "a name unique among the stages",
                )
            if name == ORCHESTRATOR:
                yield _problem(
                    (*base, "name"),
                    "C205",
                    f"{ORCHESTRATOR!r} names the orchestrator account's own step",
                    "another stage name",
                )
        account, role = entry.get("account_id"), entry.get("role_arn")
        if isinstance(account, str) and isinstance(role, str):
            role_account = role.split(":")[4] if role.count(":") >= 5 else ""
            if role_account.isdigit() and role_account != account:
                yield _problem(
                    (*base, "role_arn"),
                    "C206",
                    f"role is in account {role_account}, not in the stage's account {account}",
                    f"a role in account {account}",
                )
            region = entry.get("region")
            where = (account, str(region if isinstance(region, str) else default_region))
            yield from _placement_problems(base, role, where[1], default_region)
            earlier = places.setdefault(where, index)
            if earlier != index:
                yield _problem(
                    (*base, "account_id"),
                    "C207",
                    f"the same account and region as $.settings.stages[{earlier}]: both stages "
                    "would own the same stacks",
                    "a different account (or region) for each stage",
                )


def _placement_problems(base: Path, role: str, region: str, home: Any) -> _Found:
    """The stage's role must be of its region's partition, and the stage in the assets'
    region: SageMaker reads a model's artifacts and images in the model's region only."""
    partition = role.split(":")[1] if role.count(":") >= 5 else ""
    if partition and partition != partition_of(region):
        known = partition in PARTITIONS
        yield _problem(
            (*base, "role_arn"),
            "C208",
            f"role is in partition {partition!r}, "
            + (
                f"not in the stage's region's ({partition_of(region)!r})"
                if known
                else "which AWS has not"
            ),
            f"a role ARN arn:{partition_of(region)}:iam::...",
        )
    if isinstance(home, str) and region != home:
        yield _problem(
            (*base, "region"),
            "C209",
            f"the stage's region {region!r} is not settings.region {home!r}, where the assets "
            "bucket and the image builders' repository are: SageMaker reads a model's "
            "artifacts and images in the model's own region",
            f"{home!r} (or leave region out); use one config per region otherwise",
        )


def _nested_lines(doc: Document, per_stage: Mapping[_Key, Any]) -> dict[_Key, list[Path]]:
    """The paths under each per-stage value, gathered in one pass over the line table."""
    nested: dict[_Key, list[Path]] = {key: [] for key in per_stage}
    if not per_stage:
        return nested
    for path in doc.lines:
        if len(path) >= 3 and path[0] == "pipelines":
            found = nested.get((path[1], path[2]))  # type: ignore[arg-type]
            if found is not None:
                found.append(path)
    return nested


def _document(
    doc: Document,
    merged: Mapping[str, Any],
    stage: Stage,
    per_stage: Mapping[_Key, dict[str, Any]],
    nested: Mapping[_Key, list[Path]],
) -> StageDocument:
    data = dict(doc.data)
    pipelines = list(data["pipelines"])
    lines = dict(doc.lines)
    renamed: list[tuple[str, str]] = []
    hidden: set[str] = set()
    copied: set[int] = set()
    for (index, key), value in per_stage.items():
        if index not in copied:
            pipelines[index] = dict(pipelines[index])
            copied.add(index)
        base: Path = ("pipelines", index, key)
        for path in nested[(index, key)]:
            del lines[path]
        if stage.name in value:
            pipelines[index][key] = value[stage.name]
            chosen = (*base, stage.name)
            for path in nested[(index, key)]:
                if path[: len(chosen)] == chosen:
                    lines[base + path[len(chosen) :]] = doc.lines[path]
            renamed.append((format_path(base), format_path(chosen)))
        else:
            del pipelines[index][key]
            lines[base] = doc.lines[base]
            hidden.add(format_path(base))
    raw_stage = merged["stages"][stage.index]
    own_region = isinstance(raw_stage.get("region"), str)
    settings = {**merged, "region": stage.region} if own_region else dict(merged)
    if own_region:
        where = ("settings", "stages", stage.index, "region")
        lines[("settings", "region")] = doc.lines.get(where, doc.line_of(where) or 1)
        renamed.append(("$.settings.region", format_path(where)))
    data["pipelines"] = pipelines
    data["settings"] = settings
    return StageDocument(
        stage,
        Document(doc.name, data, lines),
        settings,
        own_region,
        tuple(renamed),
        frozenset(hidden),
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))
