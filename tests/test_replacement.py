"""Replacement safety, derived from the provider schemas:

- `controller/core/create_only.json`, which the planner ships, is exactly what cfn-lint's
  provider schemas say for every resource type the blueprints use (regenerate it with
  `UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_replacement.py`);
- for every resource with an explicit name, no create-only property (stack tags included
  where `Tags` is create-only) changes between two renders that differ in any config value
  or setting, unless its name changes with it: CloudFormation refuses to replace a resource
  that keeps its name, and the update rolls back;
- the analysis itself finds the replacements the schemas imply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from controller.aws.demo_world import seed
from controller.aws.session import Aws
from controller.cli.main import main
from controller.core import intrinsics, render, replacement
from controller.core.config.model import S3Location
from controller.core.stacks import DeployedStack, stack_tags
from tests import provider_schemas
from tests.aws_calls import count_calls
from tests.conftest import EXAMPLE
from tests.test_render import STACKS, settings_of

DATA = Path(replacement.__file__).parent / "create_only.json"


def _name_property(resource_type: str, create_only: list[str]) -> str | None:
    """The property that names a resource: `Name`, or `<Type>Name` for a type ending in
    <Type> (`EndpointName` of an Endpoint, `JobDefinitionName` of a job definition)."""
    last = resource_type.split("::")[-1]
    for name in create_only:
        if name == "Name" or (name.endswith("Name") and last.endswith(name[:-4])):
            return name
    return None


def expected_data() -> dict[str, Any]:
    types = sorted(
        {r["Type"] for s in STACKS for r in intrinsics.load(s.template_body)["Resources"].values()}
    )
    described: dict[str, Any] = {}
    for resource_type in types:
        paths = provider_schemas.schema(resource_type).get("createOnlyProperties", [])
        properties = sorted(p.removeprefix("/properties/") for p in paths)
        described[resource_type] = {
            "create_only": properties,
            "name": _name_property(resource_type, [p for p in properties if "/" not in p]),
            "tags_create_only": "Tags" in properties,
        }
    return {
        "source": f"cfn-lint {version('cfn-lint')} provider schemas, {provider_schemas.REGION}",
        "types": described,
    }


def test_the_shipped_create_only_data_is_the_provider_schemas() -> None:
    expected = expected_data()
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        DATA.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    shipped = json.loads(DATA.read_text())
    assert shipped["types"] == expected["types"], (
        "create_only.json is stale: UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_replacement.py"
    )
    assert shipped["types"]["AWS::SageMaker::DataQualityJobDefinition"]["tags_create_only"]
    assert shipped["types"]["AWS::SageMaker::Endpoint"]["name"] == "EndpointName"
    assert shipped["types"]["AWS::Lambda::Permission"]["name"] is None


# Two renders that differ in one value ------------------------------------------------------


def _changed(value: Any) -> Any:
    if isinstance(value, S3Location):
        return replace(value, key=f"{value.key}-2" if value.key else "other")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, dict):
        if "num_samples" in value:
            return {**value, "seed": 7}
        if value and all(isinstance(v, list) for v in value.values()):  # search ranges
            return {**value, "group_name": ["categorical", ["x"]]}
        return {**value, "group_name": "x"}
    if isinstance(value, list):
        return [*value, value[-1]]
    text = str(value)
    if text.startswith("arn:") or ".dkr.ecr." in text:
        return text[:-1] + ("2" if text[-1] != "2" else "3")
    return f"{text}2"


FIXED = frozenset({"pipeline_type", "model_framework", "model_framework_version", "problem_type"})
"""Keys whose change is a different shape or image, covered by the settings and other keys."""


def variations(stack: render.RenderedStack) -> Iterator[tuple[str, render.RenderedStack]]:
    pipeline = stack.pipeline
    settings = stack_settings(stack)
    for key, value in pipeline.values.items():
        if key in FIXED:
            continue
        values = MappingProxyType({**pipeline.values, key: _changed(value)})
        yield key, render.render(replace(pipeline, values=values), settings)
    for setting in ("controller_id", "assets_bucket", "assets_kms_key_arn"):
        if getattr(settings, setting) is None:
            continue
        changed = replace(settings, **{setting: f"{getattr(settings, setting)}-2"})
        yield f"settings.{setting}", render.render(pipeline, changed)


def stack_settings(stack: render.RenderedStack) -> Any:
    return settings_of(stack)


def side(stack: render.RenderedStack, settings: Any) -> replacement.Side:
    gate = stack.run.gate_parameter if stack.run else None
    opened = {gate: render.OPEN} if gate else {}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.boto_parameters(**opened)}
    tags = {t["Key"]: t["Value"] for t in stack_tags(settings.controller_id, stack)}
    return replacement.Side(intrinsics.load(stack.template_body), parameters, tags)


@pytest.mark.parametrize(
    "stack", STACKS, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in STACKS]
)
def test_no_named_resource_is_replaced_without_a_new_name(stack: render.RenderedStack) -> None:
    settings = stack_settings(stack)
    before = side(stack, settings)
    refused = []
    for what, other in variations(stack):
        changed_settings = settings
        if what.startswith("settings."):
            key = what.removeprefix("settings.")
            changed_settings = replace(settings, **{key: f"{getattr(settings, key)}-2"})
        after = side(other, changed_settings)
        refused += [
            f"{what}: {r.logical_id} keeps its name but {', '.join(r.properties)} change"
            for r in replacement.replacements(before, after)
            if r.refused
        ]
    assert refused == []


def test_a_tag_that_changes_on_every_update_would_be_caught() -> None:
    """The check can fail: what the controller used to do, a spec hash in the stack tags."""
    monitor = next(s for s in STACKS if s.pipeline.type == "byom_data_quality_monitor")
    settings = stack_settings(monitor)
    schedule = replace(
        monitor.pipeline,
        values=MappingProxyType(
            {**monitor.pipeline.values, "schedule_expression": "cron(5 * ? * * *)"}
        ),
    )
    rescheduled = render.render(schedule, settings)
    before, after = side(monitor, settings), side(rescheduled, settings)
    assert not [r for r in replacement.replacements(before, after) if r.refused]
    tagged_before = replace(before, tags={**before.tags, "mlops:spec-hash": monitor.spec_hash})
    tagged_after = replace(after, tags={**after.tags, "mlops:spec-hash": rescheduled.spec_hash})
    refused = [r for r in replacement.replacements(tagged_before, tagged_after) if r.refused]
    assert [r.logical_id for r in refused] == ["JobDefinition"]
    assert refused[0].causes == ("stack tags",)


# The analysis ------------------------------------------------------------------------------


def _realtime(**changes: Any) -> tuple[render.RenderedStack, render.RenderedStack]:
    stack = next(s for s in STACKS if s.pipeline.type == "byom_realtime_builtin")
    values = {**stack.pipeline.values, **changes}
    values = {k: v for k, v in values.items() if v is not None}
    edited = replace(stack.pipeline, values=MappingProxyType(values))
    return stack, render.render(edited, stack_settings(stack))


def test_a_new_model_artifact_replaces_model_and_config_but_not_the_endpoint() -> None:
    stack, retrained = _realtime(
        model_artifact_location=S3Location("mlops-assets-example", "linearlearner/v2.tar.gz")
    )
    settings = stack_settings(stack)
    found = {
        r.logical_id: r
        for r in replacement.replacements(side(stack, settings), side(retrained, settings))
    }
    assert set(found) == {"Model", "EndpointConfig"}
    assert found["EndpointConfig"].causes == ("ModelArtifactKey",)
    assert "Model" in found["EndpointConfig"].properties
    assert not any(r.highlighted for r in found.values())


def test_a_new_endpoint_name_replaces_the_endpoint_and_says_so() -> None:
    stack, renamed = _realtime(endpoint_name="linearlearner-endpoint-2")
    settings = stack_settings(stack)
    (endpoint,) = replacement.replacements(side(stack, settings), side(renamed, settings))
    assert (endpoint.logical_id, endpoint.highlighted) == ("Endpoint", True)
    assert not endpoint.refused
    assert endpoint.causes == ("EndpointName",)


def test_for_update_reads_the_old_shape_from_the_deployed_parameters() -> None:
    """Removing endpoint_name: the deployed template named the endpoint, the new one does not."""
    stack, generated = _realtime(endpoint_name=None)
    deployed = DeployedStack(
        stack.stack_name,
        "arn:stack",
        "UPDATE_COMPLETE",
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.boto_parameters()},
    )
    (endpoint,) = replacement.for_update(generated, deployed)
    assert endpoint.logical_id == "Endpoint" and endpoint.highlighted
    assert endpoint.causes == ("EndpointName",)


def test_a_pipeline_of_unknown_type_is_not_analysed() -> None:
    stack = STACKS[0]
    deployed = DeployedStack(stack.stack_name, "arn", "UPDATE_COMPLETE", parameters={})
    kind = replace(stack.pipeline.kind, type="nope")
    other = replace(stack, pipeline=replace(stack.pipeline, kind=kind))
    assert replacement.for_update(other, deployed) == ()


# Through the CLI: what a plan says about replacements ---------------------------------------


def test_plan_says_which_change_replaces_the_endpoint(
    aws: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline (from the deployed parameters, no template read), in text, JSON and Markdown:
    removing endpoint_name replaces the endpoint; a new instance type replaces only the
    unnamed endpoint configuration, which is not highlighted."""
    document = json.loads(EXAMPLE.read_text())
    document["pipelines"] = [document["pipelines"][0]]
    seed(Aws(region="us-east-1"), document["settings"]["assets_bucket"], document)
    path = tmp_path / "mlops-config.json"
    path.write_text(json.dumps(document))
    assert main(["apply", "--auto-approve", "--config", str(path)]) == 0
    capsys.readouterr()
    del document["pipelines"][0]["endpoint_name"]
    document["pipelines"][0]["inference_instance"] = "ml.m5.xlarge"
    path.write_text(json.dumps(document))

    calls = count_calls(monkeypatch)
    assert main(["plan", "--config", str(path), "--output", "json"]) == 2
    (change,) = json.loads(capsys.readouterr().out)["changes"]
    assert not [c for c in calls if c.startswith("cloudformation.GetTemplate")]
    by_key = {p["key"]: p for p in change["parameters"]}
    assert by_key["EndpointName"]["replaces"] == ["Endpoint"]
    assert by_key["InferenceInstance"]["replaces"] == ["EndpointConfig"]
    endpoint = next(r for r in change["replacements"] if r["resource"] == "Endpoint")
    assert endpoint["highlighted"] and endpoint["because"] == ["EndpointName"]
    config = next(r for r in change["replacements"] if r["resource"] == "EndpointConfig")
    assert not config["highlighted"]

    assert main(["plan", "--config", str(path)]) == 2
    text = capsys.readouterr().out
    assert "EndpointName: linearlearner-endpoint -> (none)  (forces replacement: Endpoint)" in text
    assert "! replaces Endpoint (AWS::SageMaker::Endpoint): EndpointName" in text
    assert "replaces EndpointConfig" not in text

    assert main(["plan", "--config", str(path), "--output", "markdown"]) == 2
    markdown = capsys.readouterr().out
    assert "+ EndpointName: (none)  (forces replacement: Endpoint)" in markdown
    assert "replaces Endpoint (AWS::SageMaker::Endpoint)" in markdown
