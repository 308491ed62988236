"""Rendering: every pipeline type and its structural variants, values only in parameters,
stable output (snapshots, determinism), hashes that move when and only when they should."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from controller.cli.main import main
from controller.core import grants, intrinsics, render
from controller.core.config import Config, load
from controller.core.config.model import Pipeline, Settings
from tests.conftest import EXAMPLE, ROOT
from tests.stack_model import DeployedModel

SNAPSHOTS = Path(__file__).parent / "snapshots"
TRAINING_EXAMPLE = EXAMPLE.parent / "training-config.json"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ASSETS_KEY = "arn:aws:kms:us-east-1:123456789012:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
"""The assets bucket's key (settings.assets_kms_key_arn), as the bootstrap's build sets it."""
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3"


def _example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def _by_type(data: dict[str, Any], pipeline_type: str) -> dict[str, Any]:
    return copy.deepcopy(next(p for p in data["pipelines"] if p["pipeline_type"] == pipeline_type))


def _variant(
    data: dict[str, Any], pipeline_type: str, name: str, drop: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    pipeline = _by_type(data, pipeline_type)
    for key in drop:
        pipeline.pop(key, None)
    return {**pipeline, "model_name": name, **extra}


def _problem_types(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The three problem-type monitors with each problem type and the keys it requires."""
    found = []
    for problem in ("Regression", "BinaryClassification", "MulticlassClassification"):
        short = problem.lower()[:5]
        found.append(
            _variant(
                data,
                "byom_model_quality_monitor",
                f"mq-{short}",
                problem_type=problem,
                monitor_inference_attribute="0",
            )
        )
        bias = _variant(
            data,
            "byom_model_bias_monitor",
            f"bias-{short}",
            problem_type=problem,
            monitor_inference_attribute="0",
        )
        if problem == "Regression":
            bias.pop("model_predicted_label_config")
        found.append(bias)
        found.append(
            _variant(
                data,
                "byom_model_explainability_monitor",
                f"shap-{short}",
                problem_type=problem,
                monitor_inference_attribute="0",
                model_scores=0,
                features_attribute="features",
            )
        )
    found[0].pop("probability_threshold_attribute")
    return found


def variants_document() -> dict[str, Any]:
    """Edge variants of the example: registry models, KMS, a generated endpoint name and every
    problem type of the three problem-type monitors."""
    data = _example()
    model_keys = ("model_framework", "model_framework_version", "model_artifact_location")
    pipelines = [
        _variant(
            data,
            "byom_realtime_builtin",
            "registry-rt",
            drop=(*model_keys, "endpoint_name"),
            model_package_name=PACKAGE,
        ),
        _variant(
            data,
            "byom_batch_custom",
            "registry-batch",
            drop=("custom_image_uri", "model_artifact_location"),
            model_package_name=PACKAGE,
        ),
        _variant(data, "byom_realtime_custom", "kms-rt", kms_key_arn=KMS, endpoint_name="kms-ep"),
        _variant(data, "byom_batch_builtin", "kms-batch", kms_key_arn=KMS),
        _variant(data, "byom_data_quality_monitor", "kms-dq", kms_key_arn=KMS),
        _variant(data, "byom_model_bias_monitor", "kms-bias", kms_key_arn=KMS),
        _variant(data, "byom_realtime_builtin", "generated-ep", drop=("endpoint_name",)),
        *_problem_types(data),
    ]
    return {"settings": data["settings"], "pipelines": pipelines}


def assets_key_document() -> dict[str, Any]:
    """Every blueprint whose roles read the assets bucket, with settings.assets_kms_key_arn:
    the model artifact, a registered model, a custom image's artifact, a baseline, Clarify's
    analysis configuration and a SHAP baseline, the image builder's zip; one also with a
    pipeline key of its own."""
    data = _example()
    model_keys = ("model_framework", "model_framework_version", "model_artifact_location")
    pipelines = [
        _variant(data, "byom_realtime_builtin", "akey-rt"),
        _variant(
            data,
            "byom_realtime_builtin",
            "akey-registry",
            drop=(*model_keys, "endpoint_name"),
            model_package_name=PACKAGE,
        ),
        _variant(data, "byom_batch_custom", "akey-batch"),
        _variant(data, "byom_data_quality_monitor", "akey-dq"),
        _variant(data, "byom_model_bias_monitor", "akey-bias", kms_key_arn=KMS),
        _variant(data, "byom_model_explainability_monitor", "akey-shap"),
        {**_by_type(data, "byom_image_builder"), "image_tag": "akey-img"},
    ]
    return {
        "settings": {**data["settings"], "assets_kms_key_arn": ASSETS_KEY},
        "pipelines": pipelines,
    }


ALARMS = ["churn-5xx", "churn-latency-p99"]
VPC = {"subnet_ids": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"], "security_group_ids": ["sg-0a1b2c3d"]}


def rollout_document() -> dict[str, Any]:
    """Realtime pipelines with every rollout key (docs/rollout.md): each deployment strategy,
    autoscaling, instance counts, a VPC, serverless and asynchronous endpoints, with and
    without their optional values."""
    data = _example()
    builtin, custom = "byom_realtime_builtin", "byom_realtime_custom"
    scaling = {"min_instances": 2, "max_instances": 8, "target_invocations_per_instance": 1000}
    canary = {
        "strategy": "canary",
        "canary_percent": 10,
        "wait_seconds": 600,
        "rollback_alarms": ALARMS,
        "termination_wait_seconds": 300,
        "max_execution_seconds": 3600,
    }
    pipelines = [
        _variant(
            data,
            builtin,
            "ro-canary",
            endpoint_name="ro-canary",
            instance_count=2,
            autoscaling=scaling,
            deployment=canary,
            vpc=VPC,
        ),
        _variant(
            data,
            custom,
            "ro-linear",
            endpoint_name="ro-linear",
            deployment={"strategy": "linear", "linear_step_percent": 20, "rollback_alarms": ["a"]},
        ),
        _variant(
            data,
            builtin,
            "ro-rolling",
            endpoint_name="ro-rolling",
            instance_count=4,
            deployment={"strategy": "rolling", "rolling_batch_percent": 25, "wait_seconds": 300},
        ),
        _variant(
            data,
            custom,
            "ro-once",
            endpoint_name="ro-once",
            kms_key_arn=KMS,
            deployment={"strategy": "all_at_once"},
        ),
        _variant(
            data,
            builtin,
            "ro-serverless",
            drop=("inference_instance",),
            endpoint_name="ro-serverless",
            serverless={
                "memory_size_mb": 2048,
                "max_concurrency": 20,
                "provisioned_concurrency": 2,
            },
            deployment={"strategy": "canary", "canary_percent": 20, "rollback_alarms": ALARMS},
        ),
        _variant(
            data,
            custom,
            "ro-async",
            endpoint_name="ro-async",
            kms_key_arn=KMS,
            async_inference={
                "output_location": "mlops-data-example/async/out",
                "failure_location": "s3://mlops-data-example/async/failed",
                "max_concurrent_invocations_per_instance": 4,
                "success_topic_arn": "arn:aws:sns:us-east-1:123456789012:churn-results",
                "error_topic_arn": "arn:aws:sns:us-east-1:123456789012:churn-errors",
            },
            autoscaling={**scaling, "min_instances": 1},
        ),
        _variant(
            data,
            builtin,
            "ro-async-min",
            endpoint_name="ro-async-min",
            async_inference={"output_location": "mlops-data-example/async/min"},
        ),
    ]
    return {"settings": data["settings"], "pipelines": pipelines}


def staged_document() -> dict[str, Any]:
    """The staged example, its image builder named apart from the single-account one: the
    orchestrator's part, an image builder whose build lets the stage accounts pull."""
    data: dict[str, Any] = json.loads((ROOT / "examples" / "mlops-config.stages.json").read_text())
    for pipeline in data["pipelines"]:
        if pipeline["pipeline_type"] == "byom_image_builder":
            pipeline["image_tag"] = "staged"
    return data


def load_document(document: dict[str, Any]) -> Config:
    result = load(json.dumps(document).encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    return result.config


def example_config() -> Config:
    return load_document(_example())


def all_rendered() -> tuple[render.RenderedStack, ...]:
    """Every example pipeline and every variant, rendered."""
    return tuple(stack for config in _configs() for stack in render.render_all(config))


def training_config() -> Config:
    """The training example: the original's training, tuning and Autopilot bodies."""
    return load_document(json.loads(TRAINING_EXAMPLE.read_text()))


def _configs() -> tuple[Config, ...]:
    return (
        example_config(),
        load_document(variants_document()),
        load_document(assets_key_document()),
        training_config(),
        load_document(rollout_document()),
        load_document(staged_document()),
    )


def settings_of(stack: render.RenderedStack) -> Settings:
    """The settings a stack of STACKS was rendered with."""
    return next(
        c.settings for c in CONFIGS if any(p.stack_name == stack.stack_name for p in c.pipelines)
    )


def template(stack: render.RenderedStack) -> dict[str, Any]:
    """The template as data, short-form tags in their long form (`!Ref X` as {"Ref": "X"})."""
    return intrinsics.load(stack.template_body)


CONFIGS = _configs()
STACKS = all_rendered()
IDS = [s.stack_name.removeprefix("mlops-pipeline-") for s in STACKS]


def test_every_pipeline_type_renders_with_a_parameter_for_every_declared_slot() -> None:
    types = {stack.pipeline.type for stack in STACKS}
    assert len(types) == 12
    for stack in STACKS:
        declared = set(template(stack)["Parameters"])
        given = {p["ParameterKey"] for p in stack.boto_parameters()}
        assert given == declared, stack.stack_name
        assert [k for k, _ in stack.parameters] == sorted(given - {"SpecHash"})


@pytest.mark.parametrize("stack", STACKS, ids=IDS)
def test_state_machine_definitions_name_their_job(stack: render.RenderedStack) -> None:
    definition = _definition(stack)
    if definition is None:
        assert stack.run is None
        return
    assert stack.run is not None
    assert stack.run.execution_name in json.dumps(definition)


def _definition(stack: render.RenderedStack) -> Any:
    """The state machine's definition as CloudFormation would serialise it."""
    model = DeployedModel(stack)
    machine = model.resources.get("RunOnceStateMachine")
    if machine is None:
        return None
    return model.context.resolve(machine["Properties"]["Definition"])


def test_a_quote_in_an_s3_key_cannot_change_the_job() -> None:
    pipeline, config = _example_of("byom_batch_builtin")
    key = 'batch/in", "ModelName": "other.csv'
    data = replace(pipeline.get("batch_inference_data"), key=key)
    definition = _definition(
        render.render(_edit(pipeline, batch_inference_data=data), config.settings)
    )
    job = definition["States"]["Transform"]["Parameters"]
    assert (
        job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://mlops-data-example/{key}"
    )
    assert job["ModelName"].startswith("mlops-pipeline-linearlearner")


def test_injection_leaves_the_template_alone_and_lands_in_a_parameter() -> None:
    """A value holding Jinja and YAML syntax changes parameters only, never the template."""
    config = example_config()
    hostile = "{{ 7*7 }}\n: !Ref x"
    for pipeline in config.pipelines:
        values = dict(pipeline.values)
        for key in ("inference_instance", "instance_type", "schedule_expression", "image_tag"):
            if key in values:
                values[key] = hostile
        if "bias_config" in values:
            values["bias_config"] = {**values["bias_config"], "facet_name": hostile}
        poisoned = replace(pipeline, values=MappingProxyType(values))
        clean = render.render(pipeline, config.settings)
        dirty = render.render(poisoned, config.settings)
        assert dirty.template_body == clean.template_body
        assert "49" not in dirty.template_body and hostile not in dirty.template_body
        assert any("7*7" in value for _, value in dirty.parameters)
        assert dirty.spec_hash != clean.spec_hash


def test_rendering_twice_gives_identical_bytes() -> None:
    render.template_text.cache_clear()
    again = all_rendered()
    assert [(s.template_body, s.parameters, s.spec_hash) for s in again] == [
        (s.template_body, s.parameters, s.spec_hash) for s in STACKS
    ]


def _edit(pipeline: Pipeline, **changes: Any) -> Pipeline:
    return replace(pipeline, values=MappingProxyType({**pipeline.values, **changes}))


def _example_of(pipeline_type: str) -> tuple[Pipeline, Config]:
    config = example_config()
    return next(p for p in config.pipelines if p.type == pipeline_type), config


def test_the_hash_moves_with_a_value_and_not_with_the_gate() -> None:
    pipeline, config = _example_of("byom_data_quality_monitor")
    stack = render.render(pipeline, config.settings)
    edited = render.render(_edit(pipeline, instance_type="ml.m5.xlarge"), config.settings)
    assert edited.spec_hash != stack.spec_hash
    opened = replace(
        stack,
        parameters=tuple((k, "true" if k == "BaselineReady" else v) for k, v in stack.parameters),
    )
    assert render.spec_hash(opened.template_body, opened.parameters, opened.capabilities) == (
        stack.spec_hash
    )


def test_the_gate_is_closed_on_render_and_opened_through_boto_parameters() -> None:
    pipeline, config = _example_of("byom_model_bias_monitor")
    stack = render.render(pipeline, config.settings)
    assert stack.run == render.RunOnce(
        "baseline",
        "BaselineStateMachineArn",
        stack.run.execution_name if stack.run else "",
        "BaselineReady",
    )
    assert dict(stack.parameters)["BaselineReady"] == ""
    opened = {
        p["ParameterKey"]: p["ParameterValue"] for p in stack.boto_parameters(BaselineReady="true")
    }
    # Opening records which baseline: the schedule's condition compares it with the job name.
    assert opened["BaselineReady"] == stack.run.execution_name == opened["BaselineJobName"]
    assert opened["SpecHash"] == stack.spec_hash
    with pytest.raises(KeyError):
        stack.boto_parameters(NoSuchParameter="x")


def test_a_new_schedule_keeps_the_baseline_and_new_baseline_data_makes_a_new_job() -> None:
    pipeline, config = _example_of("byom_model_quality_monitor")
    stack = render.render(pipeline, config.settings)
    rescheduled = render.render(
        _edit(pipeline, schedule_expression="cron(0 0 ? * * *)"), config.settings
    )
    assert stack.run and rescheduled.run
    assert rescheduled.run.execution_name == stack.run.execution_name
    assert (
        dict(rescheduled.parameters)["JobDefinitionName"]
        == dict(stack.parameters)["JobDefinitionName"]
    )
    data = replace(pipeline.get("baseline_data"), key="churn/baseline/v2.csv")
    rebaselined = render.render(_edit(pipeline, baseline_data=data), config.settings)
    assert rebaselined.run and rebaselined.run.execution_name != stack.run.execution_name


def test_batch_job_names_follow_the_model_and_the_input_only() -> None:
    pipeline, config = _example_of("byom_batch_builtin")
    stack = render.render(pipeline, config.settings)
    assert stack.run and stack.run.kind == "batch_transform"
    assert stack.run.gate_parameter == "TransformStarted"
    assert dict(stack.parameters)["TransformStarted"] == ""
    started = stack.boto_parameters(TransformStarted="true")
    assert {"ParameterKey": "TransformStarted", "ParameterValue": stack.run.execution_name} in (
        started
    )
    assert stack.run.output_key == "RunStateMachineArn"
    assert dict(stack.parameters)["TransformJobName"] == stack.run.execution_name
    same = render.render(_edit(pipeline), config.settings)
    assert same.run == stack.run
    artifact = replace(pipeline.get("model_artifact_location"), key="linearlearner/v2.tar.gz")
    retrained = render.render(_edit(pipeline, model_artifact_location=artifact), config.settings)
    assert retrained.run and retrained.run.execution_name != stack.run.execution_name


def test_derived_names_are_valid_sagemaker_names_even_for_long_models() -> None:
    pattern = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    pipeline, config = _example_of("byom_model_explainability_monitor")
    long_name = "m" * 63
    stack = render.render(replace(pipeline, name=long_name), config.settings)
    names = [
        v for k, v in stack.parameters if k.endswith(("JobName", "DefinitionName", "ScheduleName"))
    ]
    assert len(names) == 3
    for stack_ in (*STACKS, stack):
        for key, value in stack_.parameters:
            if key.endswith(("JobName", "DefinitionName", "ScheduleName")):
                assert pattern.match(value), (key, value)
    for name in names:
        assert pattern.match(name)
    assert all(
        s.run is None or re.fullmatch(r"[A-Za-z0-9_-]{1,80}", s.run.execution_name) for s in STACKS
    )


def test_analysis_configs_go_to_the_assets_bucket_keyed_by_their_hash() -> None:
    """A CloudFormation parameter holds at most 4,096 bytes; an analysis configuration with an
    inline SHAP baseline holds more, so it is an object the stack names by its hash."""
    pipeline, config = _example_of("byom_model_explainability_monitor")
    rows = [[i, 0.5, "a" * 40] for i in range(200)]
    big = {**pipeline.get("shap_config"), "baseline": rows}
    stack = render.render(_edit(pipeline, shap_config=big), config.settings)
    (upload,) = stack.uploads
    assert len(upload.body) > 4096
    assert all(len(value.encode()) <= 4096 for _, value in stack.parameters)
    key = dict(stack.parameters)["AnalysisConfigKey"]
    assert (
        key
        == upload.key
        == f"mlops-controller/analysis/{hashlib.sha256(upload.body).hexdigest()}.json"
    )
    document = json.loads(upload.body)
    assert document["baseline"]["methods"]["shap"]["baseline"] == rows
    assert dict(stack.parameters)["AssetsBucket"] == config.settings.assets_bucket
    again = render.render(_edit(pipeline, shap_config=big), config.settings)
    assert again.uploads == stack.uploads


def test_bias_settings_become_clarify_keys_in_the_uploaded_configuration() -> None:
    pipeline, config = _example_of("byom_model_bias_monitor")
    stack = render.render(pipeline, config.settings)
    document = json.loads(stack.uploads[0].body)
    facet = [{"name_or_index": "Account Length", "value_or_threshold": [100]}]
    assert document["baseline"]["facet"] == document["monitor"]["facet"] == facet
    assert document["baseline"]["probability_threshold"] == 0.8
    assert "probability_threshold" not in document["monitor"]
    assert dict(stack.parameters)["ProbabilityThreshold"] == "0.8"


def test_templates_are_cached_per_shape() -> None:
    shapes = {s.shape for s in STACKS}
    assert {s.template_body for s in STACKS} == {render.template_text(shape) for shape in shapes}
    assert render.template_text.cache_info().currsize >= len(shapes)


def test_no_iam_statement_grants_every_action() -> None:
    for stack in STACKS:
        for statement in _statements(template(stack)):
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "*" not in actions and not any(a.endswith(":*") for a in actions), (
                stack.stack_name
            )
            if statement.get("Resource") == "*":
                assert actions in (
                    ["ecr:GetAuthorizationToken"],
                    ["cloudwatch:PutMetricData"],
                    [f"ec2:Describe{what}" for what in VPC_DESCRIBES],
                )


VPC_DESCRIBES = ("DhcpOptions", "NetworkInterfaces", "SecurityGroups", "Subnets", "Vpcs")
"""What SageMaker reads to place a model in a VPC: EC2's Describe actions have no
resource-level permissions."""


def test_no_template_creates_a_bucket_or_hard_codes_a_sagemaker_name() -> None:
    for stack in STACKS:
        resources = template(stack)["Resources"]
        assert not any(r["Type"] == "AWS::S3::Bucket" for r in resources.values())
        config = resources.get("EndpointConfig")
        if config is not None:
            assert "EndpointConfigName" not in config["Properties"]


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict):
        found = [document] if "Effect" in document and "Action" in document else []
        for value in document.values():
            found.extend(_statements(value))
        return found
    if isinstance(document, list):
        return [s for item in document for s in _statements(item)]
    return []


@pytest.mark.parametrize("stack", STACKS, ids=IDS)
def test_snapshot(stack: render.RenderedStack) -> None:
    """Pins rendered output; regenerate with UPDATE_SNAPSHOTS=1 after a deliberate change."""
    path = SNAPSHOTS / f"{stack.stack_name}.yaml"
    parameters = "".join(f"# {key} = {value}\n" for key, value in stack.parameters)
    uploads = "".join(f"# upload {u.key} = {u.body.decode()}\n" for u in stack.uploads)
    text = (
        f"# spec_hash = {stack.spec_hash}\n# run = {stack.run}\n{parameters}{uploads}"
        f"{stack.template_body}"
    )
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    assert path.read_text() == text


def _render_cli(out: Path) -> dict[str, bytes]:
    assert main(["render", str(EXAMPLE), "--out", str(out)]) == 0
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_render_command_writes_template_and_parameters_per_stack(tmp_path: Path) -> None:
    first = _render_cli(tmp_path / "a")
    second = _render_cli(tmp_path / "b")
    assert first == second
    stacks = render.render_all(example_config())
    names = {s.stack_name for s in stacks}
    uploads = {f"assets/{u.key}": u.body for s in stacks for u in s.uploads}
    assert len(uploads) == 2
    assert set(first) == (
        {f"{n}.yaml" for n in names} | {f"{n}.parameters.json" for n in names} | set(uploads)
    )
    for name in names:
        parameters = json.loads(first[f"{name}.parameters.json"])
        assert all(set(p) == {"ParameterKey", "ParameterValue"} for p in parameters)
    assert all(first[path] == body for path, body in uploads.items())


def test_render_command_rejects_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "mlops-config.json"
    bad.write_text('{"pipelines": [{"pipeline_type": "nope"}]}')
    assert main(["render", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


# The assets bucket's KMS key ----------------------------------------------------------------

KEY_ROLES = {
    "realtime.yaml.j2": {"SageMakerRole"},
    "batch.yaml.j2": {"SageMakerRole"},
    "image_builder.yaml.j2": {"PipelineRole"},
}
"""The roles that read the assets bucket, per blueprint (monitors: see below)."""


def _key_roles(stack: render.RenderedStack) -> set[str]:
    """The roles whose policies hold the assets key's statement."""
    found = set()
    for logical, resource in template(stack)["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            for statement in _statements(resource["Properties"]["Policies"]):
                if statement.get("Sid") == "AssetsKey":
                    assert statement["Action"] == "kms:Decrypt"
                    assert statement["Resource"] == {"Ref": "AssetsKmsKeyArn"}
                    found.add(logical)
    return found


def test_the_assets_key_is_a_parameter_and_a_statement_only_where_the_bucket_is_read() -> None:
    keyed = load_document(assets_key_document())
    for stack in render.render_all(keyed):
        assert stack.shape.assets_key
        assert dict(stack.parameters)["AssetsKmsKeyArn"] == ASSETS_KEY
        assert ASSETS_KEY not in stack.template_body
        expected = KEY_ROLES.get(stack.shape.blueprint, {"SageMakerRole"})
        if stack.shape.monitor in ("model_bias", "model_explainability"):
            expected = {"SageMakerRole", "StateMachineRole"}  # Clarify's configuration
        assert _key_roles(stack) == expected, stack.stack_name
    # The same pipelines without the setting render as they always did: no parameter, no
    # statement, the same job names; a key set later only updates the roles.
    document = assets_key_document()
    del document["settings"]["assets_kms_key_arn"]
    plain = render.render_all(load_document(document))
    for stack, before in zip(render.render_all(keyed), plain, strict=True):
        assert not before.shape.assets_key and _key_roles(before) == set()
        assert "AssetsKmsKeyArn" not in before.template_body
        assert before.template_body == render.template_text(replace(stack.shape, assets_key=False))
        assert stack.run == before.run
        names = ("JobDefinitionName", "MonitoringScheduleName", "PipelineName")
        assert [v for k, v in stack.parameters if k in names] == [
            v for k, v in before.parameters if k in names
        ]


def test_a_stack_that_reads_nothing_from_the_assets_bucket_is_not_granted_its_key() -> None:
    pipeline, _ = _example_of("byom_realtime_custom")
    settings = load_document(assets_key_document()).settings
    elsewhere = _edit(
        pipeline,
        model_artifact_location=replace(
            pipeline.get("model_artifact_location"), bucket="mlops-data-example"
        ),
    )
    stack = render.render(elsewhere, settings)
    assert not stack.shape.assets_key
    assert "AssetsKmsKeyArn" not in dict(stack.parameters)
    assert render.render(pipeline, settings).shape.assets_key


def test_the_shape_of_a_deployed_stack_reads_the_assets_key_back() -> None:
    for stack in STACKS:
        shape = render.shape_for_parameters(stack.pipeline.type, dict(stack.parameters))
        assert shape == stack.shape, stack.stack_name


def test_the_assets_key_statement_is_the_one_grants_prints() -> None:
    """For roles of one's own, `mlops-controller grants` prints what the blueprints give."""
    for stack in render.render_all(load_document(assets_key_document())):
        model = DeployedModel(stack)
        statements = [
            statement
            for logical, rtype, properties in model.existing()
            if rtype == "AWS::IAM::Role"
            for statement in _statements(properties.get("Policies", []))
            if statement.get("Sid") == "AssetsKey"
        ]
        assert statements and all(s == grants.role_statement(ASSETS_KEY) for s in statements)
