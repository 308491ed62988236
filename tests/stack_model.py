"""A rendered stack as it would exist in an account: physical names, ARNs and the values of
every reference, as CloudFormation would produce them for the controller's blueprints.

Generated names follow CloudFormation's pattern `<stack name>-<logical id>-<random>`, cut to
the service's limit with the stack name's start kept (what the build role's
`<StackPrefix>-*` patterns rely on); explicit names are the template's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from controller.core import intrinsics as cfn
from controller.core.intrinsics import ACCOUNT, REGION
from controller.core.render import OPEN, RenderedStack

RANDOM = "1A2B3C4D5E6F7"
"""CloudFormation's 13-character suffix of a generated name."""

NAME_LIMITS = {"AWS::IAM::Role": 64, "AWS::Lambda::Function": 64, "AWS::Events::Rule": 64}

NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::MonitoringSchedule": "MonitoringScheduleName",
    "AWS::SageMaker::DataQualityJobDefinition": "JobDefinitionName",
    "AWS::SageMaker::ModelQualityJobDefinition": "JobDefinitionName",
    "AWS::SageMaker::ModelBiasJobDefinition": "JobDefinitionName",
    "AWS::SageMaker::ModelExplainabilityJobDefinition": "JobDefinitionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::Events::Rule": "Name",
}

SAGEMAKER_ARN_TYPES = {
    "AWS::SageMaker::Model": "model",
    "AWS::SageMaker::EndpointConfig": "endpoint-config",
    "AWS::SageMaker::Endpoint": "endpoint",
    "AWS::SageMaker::MonitoringSchedule": "monitoring-schedule",
    "AWS::SageMaker::DataQualityJobDefinition": "data-quality-job-definition",
    "AWS::SageMaker::ModelQualityJobDefinition": "model-quality-job-definition",
    "AWS::SageMaker::ModelBiasJobDefinition": "model-bias-job-definition",
    "AWS::SageMaker::ModelExplainabilityJobDefinition": "model-explainability-job-definition",
}

REF_IS_ARN = frozenset(
    {*SAGEMAKER_ARN_TYPES, "AWS::StepFunctions::StateMachine", "AWS::Lambda::Permission"}
)
API_ID = "a1b2c3d4e5"


def generated_name(stack_name: str, logical_id: str, limit: int = 64) -> str:
    head = f"{stack_name}-{logical_id}"[: limit - len(RANDOM) - 1]
    return f"{head}-{RANDOM}"


@dataclass
class DeployedModel:
    """A rendered stack, resolved: its parameters with the run-once gate open (so that the
    resources that exist only after the baseline are there too)."""

    stack: RenderedStack
    open_gate: bool = True

    def __post_init__(self) -> None:
        self.template = cfn.load(self.stack.template_body)
        overrides = {}
        if self.open_gate and self.stack.run and self.stack.run.gate_parameter:
            overrides[self.stack.run.gate_parameter] = OPEN
        self.parameters = {
            p["ParameterKey"]: p["ParameterValue"] for p in self.stack.boto_parameters(**overrides)
        }
        self.context = cfn.Context(
            self.parameters, self.stack.stack_name, self.attribute, template=self.template
        )

    @property
    def resources(self) -> Mapping[str, Any]:
        resources: Mapping[str, Any] = self.template["Resources"]
        return resources

    def existing(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(logical id, type, resolved properties) of each resource that exists."""
        for logical, resource in self.resources.items():
            if self.context.exists(resource):
                properties = self.context.resolve(resource.get("Properties", {}))
                yield logical, resource["Type"], properties

    def name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        rtype = resource["Type"]
        explicit = resource.get("Properties", {}).get(NAME_PROPERTIES.get(rtype, ""))
        if explicit is not None:
            return str(self.context.resolve(explicit))
        return generated_name(self.stack.stack_name, logical_id, NAME_LIMITS.get(rtype, 64))

    def arn(self, logical_id: str) -> str:
        rtype = self.resources[logical_id]["Type"]
        name = self.name(logical_id)
        if rtype in SAGEMAKER_ARN_TYPES:
            # SageMaker lower-cases the name in every ARN it returns.
            return (
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{SAGEMAKER_ARN_TYPES[rtype]}/{name.lower()}"
            )
        return {
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::StepFunctions::StateMachine": (
                f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
            ),
            "AWS::CodeBuild::Project": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{name}",
            "AWS::CodePipeline::Pipeline": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::ApiGateway::RestApi": f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}",
            "AWS::ApiGateway::Resource": (
                f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}/resources/{logical_id.lower()}"
            ),
            "AWS::ApiGateway::Method": (
                f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}/resources/res/methods/POST"
            ),
            "AWS::ApiGateway::Deployment": (
                f"arn:aws:apigateway:{REGION}::/restapis/{API_ID}/deployments/dep"
            ),
        }.get(rtype, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{logical_id}")

    def attribute(self, logical_id: str, attribute: str | None) -> str:
        rtype = self.resources[logical_id]["Type"]
        if attribute is None:
            if rtype == "AWS::ApiGateway::RestApi":
                return API_ID
            return self.arn(logical_id) if rtype in REF_IS_ARN else self.name(logical_id)
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "RootResourceId":
            return "root0000"
        return self.name(logical_id)

    def roles(self) -> list[str]:
        return [self.arn(k) for k, r in self.resources.items() if r["Type"] == "AWS::IAM::Role"]
