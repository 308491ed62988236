"""The rendered stacks deploy: each example pipeline plus a registry and a KMS variant is
created through boto3 on the moto server and reaches CREATE_COMPLETE.

moto creates IAM, Lambda, API Gateway, Step Functions and SageMaker Model, EndpointConfig and
Endpoint for real; it skips CodeBuild, CodePipeline and the monitoring resources with a
warning (and cannot run a state machine's SageMaker job). The blueprints avoid Fn::GetAtt on
those types so that moto can still resolve every reference.
"""

from __future__ import annotations

import boto3
import pytest

from controller.core import render
from tests.test_render import STACKS, example_config

EXAMPLES = {s.stack_name for s in render.render_all(example_config())}
DEPLOYED = [
    s
    for s in STACKS
    if s.stack_name in EXAMPLES
    or s.pipeline.name in {"registry-rt", "registry-batch", "kms-rt", "kms-bias"}
]


@pytest.fixture
def cloudformation(aws: str) -> object:
    s3 = boto3.client("s3")
    for bucket in ("mlops-assets-example", "mlops-data-example"):
        s3.create_bucket(Bucket=bucket)
    return boto3.client("cloudformation")


def _create(
    cloudformation: object, stack: render.RenderedStack, **overrides: str
) -> dict[str, str]:
    client = cloudformation
    client.create_stack(  # type: ignore[attr-defined]
        StackName=stack.stack_name,
        TemplateBody=stack.template_body,
        Parameters=stack.boto_parameters(**overrides),
        Capabilities=list(stack.capabilities),
    )
    described = client.describe_stacks(StackName=stack.stack_name)["Stacks"][0]  # type: ignore[attr-defined]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


@pytest.mark.parametrize(
    "stack", DEPLOYED, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in DEPLOYED]
)
def test_stack_reaches_create_complete_with_its_run_once_output(
    cloudformation: object, stack: render.RenderedStack
) -> None:
    outputs = _create(cloudformation, stack)
    if stack.run is not None:
        assert outputs[stack.run.output_key].startswith("arn:aws:states:")
    if stack.pipeline.kind.family.value == "realtime":
        assert outputs["ApiUrl"].endswith("/prod/inference")
        # moto ignores EndpointName and always generates one, so only its presence is checked.
        assert outputs["EndpointName"]


def test_opening_the_gate_updates_a_monitor_stack(cloudformation: object) -> None:
    monitor = next(s for s in DEPLOYED if s.pipeline.type == "byom_model_bias_monitor")
    _create(cloudformation, monitor)
    client = cloudformation
    client.update_stack(  # type: ignore[attr-defined]
        StackName=monitor.stack_name,
        TemplateBody=monitor.template_body,
        Parameters=monitor.boto_parameters(BaselineReady="true"),
        Capabilities=list(monitor.capabilities),
    )
    described = client.describe_stacks(StackName=monitor.stack_name)["Stacks"][0]  # type: ignore[attr-defined]
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    assert monitor.run is not None
    recorded = {"ParameterKey": "BaselineReady", "ParameterValue": monitor.run.execution_name}
    assert recorded in described["Parameters"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    assert outputs["MonitoringScheduleName"]
    assert outputs["SpecHash"] == monitor.spec_hash
