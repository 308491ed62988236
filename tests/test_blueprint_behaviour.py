"""What the blueprints' resources do once deployed, checked without an account: the inference
function's answers, the image build's commands, the image pipeline's trigger, batch output in
CSV, lower-case endpoint ARNs in IAM."""

from __future__ import annotations

import io
import json
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import Stubber

from controller.core import render
from tests import iam
from tests.conftest import EXAMPLE
from tests.stack_model import DeployedModel
from tests.test_render import STACKS, load_document

REALTIME = next(s for s in STACKS if s.pipeline.type == "byom_realtime_builtin")
BUILDER = next(s for s in STACKS if s.pipeline.type == "byom_image_builder")


# The inference function ------------------------------------------------------------------


@pytest.fixture
def inference(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber]]:
    """The function's inline code, loaded as Lambda would, with its runtime client stubbed
    (moto's invoke_endpoint cannot fail the way a model does)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("ENDPOINT_NAME", "churn-endpoint")
    model = DeployedModel(REALTIME)
    code = model.resources["InferenceFunction"]["Properties"]["Code"]["ZipFile"]
    namespace: dict[str, Any] = {"__name__": "index"}
    exec(compile(code, "index.py", "exec"), namespace)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    namespace["RUNTIME"] = runtime
    with Stubber(runtime) as stubber:
        yield namespace["handler"], stubber


def _body(text: str) -> StreamingBody:
    data = text.encode()
    return StreamingBody(io.BytesIO(data), len(data))


def _event(body: Any) -> dict[str, Any]:
    return {"body": json.dumps(body)}


def test_a_json_payload_is_sent_as_json_text(inference: tuple[Any, Stubber]) -> None:
    handler, stubber = inference
    payload = {"instances": [[1, 2, 3]]}
    stubber.add_response(
        "invoke_endpoint",
        {"Body": _body('{"predictions": [0.4]}'), "ContentType": "application/json"},
        {
            "EndpointName": "churn-endpoint",
            "ContentType": "application/json",
            "Body": json.dumps(payload),
        },
    )
    answer = handler(_event({"payload": payload, "content_type": "application/json"}), None)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"predictions": [0.4]}
    assert answer["headers"]["Content-Type"] == "application/json"


def test_a_csv_payload_is_sent_unchanged(inference: tuple[Any, Stubber]) -> None:
    handler, stubber = inference
    stubber.add_response(
        "invoke_endpoint",
        {"Body": _body("0.7\n"), "ContentType": "text/csv"},
        {"EndpointName": "churn-endpoint", "ContentType": "text/csv", "Body": "1,2,3"},
    )
    answer = handler(_event({"payload": "1,2,3", "content_type": "text/csv"}), None)
    assert (answer["statusCode"], answer["body"]) == (200, "0.7\n")


def test_the_models_own_4xx_reaches_the_caller(inference: tuple[Any, Stubber]) -> None:
    handler, stubber = inference
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (415) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 415, "OriginalMessage": "unsupported content type"},
    )
    answer = handler(_event({"payload": "x", "content_type": "text/plain"}), None)
    assert (answer["statusCode"], answer["body"]) == (415, "unsupported content type")


def test_a_model_crash_is_a_502_with_its_message(inference: tuple[Any, Stubber]) -> None:
    handler, stubber = inference
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received server error (500) from primary",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": "Traceback ..."},
    )
    answer = handler(_event({"payload": "1,2", "content_type": "text/csv"}), None)
    assert (answer["statusCode"], answer["body"]) == (502, "Traceback ...")


def test_a_bad_request_is_a_400(inference: tuple[Any, Stubber]) -> None:
    handler, _ = inference
    assert handler({"body": "[1, 2]"}, None)["statusCode"] == 400
    assert handler({"body": '{"payload": "x"}'}, None)["statusCode"] == 400
    assert handler({"body": "not json"}, None)["statusCode"] == 400


# The image build ---------------------------------------------------------------------------


def _buildspec() -> dict[str, Any]:
    model = DeployedModel(BUILDER)
    spec: dict[str, Any] = yaml.safe_load(
        model.resources["BuildProject"]["Properties"]["Source"]["BuildSpec"]
    )
    return spec


def test_the_build_makes_serve_and_train_executable(tmp_path: Path) -> None:
    """The command the build runs before `docker build`, run on a zip's unpacked files."""
    command = next(c for c in _buildspec()["phases"]["pre_build"]["commands"] if "chmod" in c)
    for name in ("program/serve", "program/train", "program/helper.py", "serve.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o644)
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    mode = {
        p.relative_to(tmp_path).as_posix(): p.stat().st_mode
        for p in tmp_path.rglob("*")
        if p.is_file()
    }
    assert mode["program/serve"] & stat.S_IXUSR and mode["program/train"] & stat.S_IXOTH
    assert not mode["program/helper.py"] & stat.S_IXUSR
    assert not mode["serve.txt"] & stat.S_IXUSR


def _matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's matching for the pattern forms the blueprints use: a list of exact
    values, or a nested object."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        if isinstance(wanted, list):
            if event[key] not in wanted:
                return False
        elif not _matches(wanted, event[key]):
            return False
    return True


def test_a_new_zip_starts_the_image_pipeline_without_polling() -> None:
    model = DeployedModel(BUILDER)
    resources = {logical: properties for logical, _, properties in model.existing()}
    source = resources["Pipeline"]["Stages"][0]["Actions"][0]["Configuration"]
    assert source["PollForSourceChanges"] is False
    rule = resources["SourceChanged"]
    uploaded = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": source["S3Bucket"]},
            "object": {"key": source["S3ObjectKey"]},
        },
    }
    assert _matches(rule["EventPattern"], uploaded)
    other = json.loads(json.dumps(uploaded))
    other["detail"]["object"]["key"] = "other.zip"
    assert not _matches(rule["EventPattern"], other)
    (target,) = rule["Targets"]
    pipeline = f"arn:aws:codepipeline:us-east-1:123456789012:{resources['Pipeline']['Name']}"
    assert target["Arn"] == pipeline
    role = resources["SourceChangedRole"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert iam.Policy.of(role).allows("codepipeline:StartPipelineExecution", pipeline)


def test_the_pipelines_artifacts_are_under_its_first_20_characters() -> None:
    model = DeployedModel(BUILDER)
    name = model.parameters["PipelineName"]
    assert model.parameters["ArtifactPrefix"] == name[:20]
    assert name.startswith(BUILDER.pipeline.stack_name[:20]) and len(name) <= 100


# Batch output and endpoint ARNs ------------------------------------------------------------


def test_batch_output_is_csv_like_the_input() -> None:
    for stack in (s for s in STACKS if s.pipeline.kind.family.value == "batch"):
        model = DeployedModel(stack)
        definition = model.context.resolve(
            model.resources["RunOnceStateMachine"]["Properties"]["Definition"]
        )
        job = definition["States"]["Transform"]["Parameters"]
        assert job["TransformInput"]["ContentType"] == "text/csv"
        assert job["TransformOutput"]["Accept"] == "text/csv"


def _arns(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "Resource":
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from _arns(value)
    elif isinstance(document, list):
        for item in document:
            yield from _arns(item)


def _mixed_case() -> tuple[render.RenderedStack, ...]:
    document = json.loads(EXAMPLE.read_text())
    for pipeline in document["pipelines"]:
        if "model_name" in pipeline:
            pipeline["model_name"] = pipeline["model_name"].upper()
        if "endpoint_name" in pipeline:
            pipeline["endpoint_name"] = pipeline["endpoint_name"].title()
    return render.render_all(load_document(document))


def test_sagemaker_arns_in_policies_are_lower_case() -> None:
    """SageMaker lower-cases names in ARNs; a policy naming `Churn-Endpoint` grants nothing."""
    for stack in (*STACKS, *_mixed_case()):
        model = DeployedModel(stack)
        for _, rtype, properties in model.existing():
            if rtype not in ("AWS::IAM::Role", "AWS::IAM::Policy"):
                continue
            for arn in _arns(properties):
                if arn.startswith("arn:aws:sagemaker:") and ":model-package/" not in arn:
                    assert arn == arn.lower(), (stack.stack_name, arn)


def test_recording_a_run_changes_a_resource_not_only_an_output() -> None:
    """CloudFormation may refuse an update that changes outputs only ("No updates are to be
    performed"): recording a started transform must change a resource too."""
    for stack in (s for s in STACKS if s.pipeline.kind.family.value == "batch"):
        before, after = DeployedModel(stack, open_gate=False), DeployedModel(stack)

        def machine(model: DeployedModel) -> Any:
            definition = model.resources["RunOnceStateMachine"]["Properties"]["Definition"]
            return model.context.resolve(definition)

        assert machine(before) != machine(after)
        assert stack.run is not None and stack.run.execution_name in json.dumps(machine(after))
