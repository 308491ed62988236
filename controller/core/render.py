"""From a validated `Pipeline` to the CloudFormation stack that deploys it. No AWS calls.

Two rules keep rendering safe and fast:
- Config values never become template text. The Jinja template sees only the pipeline's
  `Shape` (type and structural switches from fixed sets); every value reaches CloudFormation
  as a stack Parameter. A value holding YAML or Jinja syntax therefore cannot change a stack.
  State machines are written as a `Definition` object, not a string, so CloudFormation itself
  serialises each value into their JSON: a quote or a non-ASCII character arrives exactly as
  written, in the job and in the IAM policy alike.
- Because a template depends only on its shape, its text is rendered once per shape and
  cached; rendering a pipeline is then building its parameter list and one hash.

Jobs with no CloudFormation resource (batch transform, monitor baseline) are run by a state
machine in the stack. Render names each job from a hash of the inputs that define it, so the
same config names the same job (SageMaker refuses a duplicate name: the job never runs twice)
and a changed model or input names a new one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import jinja2

from controller.core import clarify, images, rollout, training
from controller.core.clarify import Upload
from controller.core.config.model import Config, Pipeline, S3Location, Settings
from controller.core.partitions import partition_of
from controller.core.pipelines import KINDS, Family, PipelineKind
from controller.core.stacks import RUN_PARAMETERS, SPEC_HASH_PARAMETER, ownership_tags

BLUEPRINT_VERSION = "2"
"""Bump when a blueprint changes meaningfully: it is part of every spec hash and of the name
of every resource whose tags are create-only (monitoring job definitions), so that a new
version may replace them."""

BASELINE_VERSION = "1"
"""Part of every baseline job's name: bump only when a baseline must be computed again."""

GATE_PARAMETER, STARTED_PARAMETER = RUN_PARAMETERS
"""A stack's record of its run-once job: the execution name of the baseline that was written
(monitors: the schedule exists only while it is the current baseline job) or of the transform
job that was started (batch). Render leaves it empty; the applier opens it."""

GATES = frozenset(RUN_PARAMETERS)

OPEN = "true"
"""What the applier passes for a gate it opens; recorded as the run's execution name."""

CAPABILITIES = ("CAPABILITY_IAM",)
"""Blueprints create IAM roles with generated names only."""

DEFAULT_BASELINE_MAX_RUNTIME = 3600


@dataclass(frozen=True)
class RunOnce:
    """A job the controller starts after the stack is ready (batch transform, monitor baseline)."""

    kind: str
    """"batch_transform", "baseline" or "training" (training, tuning and AutoML jobs)."""
    output_key: str
    """Stack Output that holds the Step Functions state machine ARN."""
    execution_name: str
    """Same job inputs, same name: starting it again is a no-op rather than a second job."""
    gate_parameter: str | None
    """Parameter that records the job once it succeeded (monitors) or started (batch)."""


@dataclass(frozen=True)
class RenderedStack:
    pipeline: Pipeline
    stack_name: str
    template_body: str
    parameters: tuple[tuple[str, str], ...]
    """The values of the pipeline; `boto_parameters` adds the spec hash."""
    capabilities: tuple[str, ...]
    spec_hash: str
    """What was asked for: template, parameters except the gate, capabilities, version."""
    shape: Shape
    """What the template was rendered from (one template per shape)."""
    run: RunOnce | None
    uploads: tuple[Upload, ...] = ()
    """Objects the stack's jobs read from the assets bucket; written before create/update."""

    def boto_parameters(self, **overrides: str) -> list[dict[str, str]]:
        """CloudFormation's parameter list, with the spec hash; `overrides` replace values.

        Opening the gate (`<gate>="true"`) records the run: the parameter then holds the
        run's execution name, which is what `DeployedStack.run_done` reads back.
        """
        unknown = set(overrides) - {key for key, _ in self.parameters}
        if unknown:
            raise KeyError(f"{self.stack_name} has no parameter {', '.join(sorted(unknown))}")
        values = {**dict(self.parameters), **overrides}
        gate = self.run.gate_parameter if self.run else None
        if gate is not None and self.run is not None and values.get(gate) == OPEN:
            values[gate] = self.run.execution_name
        values[SPEC_HASH_PARAMETER] = self.spec_hash
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@dataclass(frozen=True)
class Shape:
    """Everything a template's text may depend on: no config values, only switches."""

    blueprint: str
    pipeline_type: str
    monitor: str = ""
    registry: bool = False
    custom_image: bool = False
    kms: bool = False
    named_endpoint: bool = False
    problem_type: str = ""
    has_threshold: bool = False
    shap_baseline: bool = False
    """An explainability monitor whose SHAP baseline is a file its jobs must read."""
    assets_key: bool = False
    """`settings.assets_kms_key_arn` is given and the stack reads from the assets bucket: the
    roles that read it may decrypt with that key."""
    validation: bool = False
    """A training job with a validation channel, which its role may read."""
    register: bool = False
    """A training or tuning job whose model is registered in `model_package_group_name`."""
    spot: bool = False
    """A training or tuning job on spot instances, which checkpoints."""
    instance_count: bool = False
    autoscaling: bool = False
    deployment: str = ""
    """The deployment strategy (`rollout.STRATEGIES`), empty for SageMaker's default."""
    rollback_alarms: int = 0
    """How many alarms roll an update back: one parameter each."""
    serverless: bool = False
    async_inference: bool = False
    vpc: bool = False
    pull_accounts: bool = False
    """An image builder of a config with stages: its build lets the stage accounts pull."""
    scaling_paused: bool = False
    """The autoscaling resources left out while the applier changes an autoscaled variant's
    instance type (`scaling_pause`); never rendered from a config."""


def boundary_name(stack_prefix: str) -> str:
    """The permissions boundary policy of an account (blueprints/bootstrap.yaml and
    stage-role.yaml create it under this name): every role the stacks create carries it."""
    return f"{stack_prefix}-boundary"


def render(
    pipeline: Pipeline, settings: Settings, pull_accounts: tuple[str, ...] = ()
) -> RenderedStack:
    """`pull_accounts`: the stage accounts of the config, which an image builder's build
    grants the pull of its image (`pull_accounts_of`)."""
    shape = shape_of(pipeline, settings, pull_accounts)
    builder = _PARAMETER_BUILDERS[pipeline.kind.family]
    values, run, uploads = builder(pipeline, settings)
    if shape.pull_accounts:
        values["PullAccounts"] = ",".join(pull_accounts)
    if shape.kms:
        values["KmsKeyArn"] = str(pipeline.get("kms_key_arn"))
    # After the builders named the jobs: the key lets roles read, it changes no job.
    if shape.assets_key:
        values["AssetsKmsKeyArn"] = str(settings.assets_kms_key_arn)
    values["PermissionsBoundary"] = boundary_name(settings.stack_prefix)
    parameters = tuple(sorted(values.items()))
    body = template_text(shape)
    return RenderedStack(
        pipeline=pipeline,
        stack_name=pipeline.stack_name,
        template_body=body,
        parameters=parameters,
        capabilities=CAPABILITIES,
        spec_hash=spec_hash(body, parameters, CAPABILITIES),
        shape=shape,
        run=run,
        uploads=uploads,
    )


def render_all(config: Config) -> tuple[RenderedStack, ...]:
    pull = pull_accounts_of(config)
    return tuple(render(pipeline, config.settings, pull) for pipeline in config.pipelines)


def pull_accounts_of(config: Config) -> tuple[str, ...]:
    """The accounts of the config's stages, sorted and once each: those that pull the images
    the orchestrator's image builders push (none for a single-account config)."""
    return tuple(sorted({part.stage.account_id for part in config.stages if part.stage}))


def image_grants(config: Config) -> dict[str, frozenset[str]]:
    """Repository name -> the accounts whose pull the image builder pushing to it grants (its
    build sets the repository's policy): what the cross-account pre-flight may count on."""
    accounts = frozenset(pull_accounts_of(config))
    return {
        str(p.get("ecr_repo_name")): accounts
        for p in config.pipelines
        if p.kind.family is Family.IMAGE_BUILDER and accounts
    }


def spec_hash(
    body: str, parameters: tuple[tuple[str, str], ...], capabilities: tuple[str, ...]
) -> str:
    """The gate is left out: opening it is the applier's follow-up, not a change of spec."""
    document = {
        "blueprint_version": BLUEPRINT_VERSION,
        "capabilities": list(capabilities),
        "parameters": [[k, v] for k, v in parameters if k not in GATES],
        "template_sha256": _body_digest(body),
    }
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _body_digest(body: str) -> str:
    """Bodies are shared per shape, so each is hashed once rather than once per pipeline."""
    return hashlib.sha256(body.encode()).hexdigest()


def shape_of(pipeline: Pipeline, settings: Settings, pull_accounts: tuple[str, ...] = ()) -> Shape:
    kind = pipeline.kind
    problem_type = str(pipeline.get("problem_type", ""))
    shap = pipeline.get("shap_config")
    return Shape(
        blueprint=kind.blueprint,
        pipeline_type=kind.type,
        monitor=kind.monitor,
        registry=pipeline.get("model_package_name") is not None,
        custom_image=pipeline.get("custom_image_uri") is not None,
        kms=pipeline.get("kms_key_arn") is not None,
        named_endpoint=kind.family is Family.REALTIME and pipeline.endpoint_name is not None,
        problem_type=problem_type if _typed_problem(kind) else "",
        has_threshold=kind.monitor in ("model_quality", "model_bias")
        and clarify.probability_threshold(pipeline) is not None,
        shap_baseline=isinstance(shap, dict) and isinstance(shap.get("baseline"), str),
        assets_key=settings.assets_kms_key_arn is not None and reads_assets(pipeline, settings),
        validation=pipeline.get("validation_data") is not None,
        register=pipeline.get("model_package_group_name") is not None,
        spot=kind.builtin and kind.family is Family.TRAINING and training.spot(pipeline),
        pull_accounts=kind.family is Family.IMAGE_BUILDER and bool(pull_accounts),
        **_rollout_shape(pipeline),
    )


def _typed_problem(kind: PipelineKind) -> bool:
    """Templates that differ per problem type: model quality monitors, and Autopilot, which
    takes an objective only together with a problem type."""
    return kind.monitor == "model_quality" or kind.type == "model_autopilot_training"


def _rollout_shape(pipeline: Pipeline) -> dict[str, Any]:
    """The rollout switches of a realtime pipeline, all off when it sets none of the keys."""
    if pipeline.kind.family is not Family.REALTIME:
        return {}
    plan = rollout.of(pipeline.values)
    return {
        "instance_count": plan.instance_count is not None,
        "autoscaling": plan.autoscaling is not None,
        "deployment": plan.deployment.strategy if plan.deployment else "",
        "rollback_alarms": len(plan.deployment.rollback_alarms) if plan.deployment else 0,
        "serverless": plan.serverless is not None,
        "async_inference": plan.async_inference is not None,
        "vpc": plan.vpc is not None,
    }


def reads_assets(pipeline: Pipeline, settings: Settings) -> bool:
    """Whether the stack's roles read objects of the assets bucket: a location in it (asset
    keys are, unless written with another bucket), a registered model's artifacts, or the
    analysis configuration of a Clarify monitor (always there)."""
    if pipeline.get("model_package_name") is not None or pipeline.kind.monitor in CLARIFY:
        return True
    shap = pipeline.get("shap_config")
    baseline = shap.get("baseline") if isinstance(shap, dict) else None
    locations = [*pipeline.values.values()]
    if isinstance(baseline, str):
        locations.append(S3Location.parse(baseline))
    return any(
        isinstance(location, S3Location) and location.bucket == settings.assets_bucket
        for location in locations
    )


CLARIFY = frozenset({"model_bias", "model_explainability"})


def shape_for_parameters(pipeline_type: str, parameters: Mapping[str, str]) -> Shape | None:
    """The shape a deployed stack was rendered from, read back from its parameters (each
    structural switch declares parameters of its own); None for an unknown type."""
    kind = KINDS.get(pipeline_type)
    if kind is None:
        return None
    return Shape(
        blueprint=kind.blueprint,
        pipeline_type=kind.type,
        monitor=kind.monitor,
        registry="ModelPackageName" in parameters,
        custom_image="ImageRepositoryArn" in parameters,
        kms="KmsKeyArn" in parameters,
        named_endpoint=kind.family is Family.REALTIME and "EndpointName" in parameters,
        problem_type=parameters.get("ProblemType", "") if _typed_problem(kind) else "",
        has_threshold="ProbabilityThreshold" in parameters,
        shap_baseline="ShapBaselineKey" in parameters,
        assets_key="AssetsKmsKeyArn" in parameters,
        validation="ValidationDataBucket" in parameters,
        register="ModelPackageGroupName" in parameters,
        spot='"CheckpointConfig"' in parameters.get("JobRequest", ""),
        instance_count="InstanceCount" in parameters,
        autoscaling="MinInstances" in parameters,
        deployment=_strategy_of(parameters),
        rollback_alarms=sum(1 for key in parameters if key.startswith("RollbackAlarm")),
        serverless="ServerlessMemorySize" in parameters,
        async_inference="AsyncOutputBucket" in parameters,
        vpc="VpcSubnetIds" in parameters,
        pull_accounts="PullAccounts" in parameters,
    )


def _strategy_of(parameters: Mapping[str, str]) -> str:
    routing = parameters.get("TrafficRoutingType")
    if routing is not None:
        return routing.lower()
    return "rolling" if "DeploymentStepPercent" in parameters else ""


SCALING_PAUSED = "scaling-paused"
"""The spec hash a stack holds while its autoscaling is paused: no render has it, so a stack
left paused (the second update failed) is planned for an update, never taken as done."""


def scaling_pause(rendered: RenderedStack, deployed: Mapping[str, str]) -> str | None:
    """The template that deregisters a deployed variant's autoscaling, when the update to
    `rendered` changes the variant's instance type: SageMaker refuses to change it while the
    variant is registered. The applier updates the stack to this first (same parameters),
    then to `rendered`, which registers the variant again. None when no pause is needed."""
    old = shape_for_parameters(rendered.pipeline.type, deployed)
    if old is None or not old.autoscaling:
        return None
    instance = dict(rendered.parameters).get("InferenceInstance")
    if deployed.get("InferenceInstance") == instance:
        return None
    return template_text(replace(old, scaling_paused=True))


@functools.cache
def template_text(shape: Shape) -> str:
    """Blank lines are dropped: macros end in a newline wherever they are called, and a
    template is easier to read and diff without the gaps that leaves."""
    text = _environment().get_template(shape.blueprint).render(shape=shape)
    return "".join(line for line in text.splitlines(keepends=True) if line.strip())


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("controller.blueprints", ""),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# Values and names -------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def short_hash(*parts: Any, length: int = 10) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:length]


def sagemaker_name(base: str, digest: str) -> str:
    """`<base>-<digest>` that fits SageMaker's `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, lower case
    so that the job's ARN (which SageMaker lower-cases) matches the role's policy."""
    head = base[: 62 - len(digest)].rstrip("-")
    return f"{head}-{digest}".lower()


MAX_SAGEMAKER_NAME = 63


def model_group_name(stack_name: str) -> str:
    """The bootstrap's model package group: `<stack>-models` as it always was when that fits
    SageMaker's 63 characters (so no deployed group is renamed), else the stack name cut and
    made unique again by its hash (a stack name may have 128)."""
    name = f"{stack_name}-models"
    if len(name) <= MAX_SAGEMAKER_NAME:
        return name
    return sagemaker_name(stack_name, f"models-{short_hash(stack_name, length=8)}")


def state_machine_name(pipeline: Pipeline) -> str:
    """Stable for the stack (a rename would replace the machine), unique because the stack
    name is, and within Step Functions' 80 characters."""
    return f"{pipeline.stack_name[:71]}-{short_hash(pipeline.stack_name, length=8)}"


def _object(prefix: str, location: S3Location) -> dict[str, str]:
    return {f"{prefix}Bucket": location.bucket, f"{prefix}Key": location.key}


def _folder(prefix: str, location: S3Location) -> dict[str, str]:
    """A prefix parameter is empty or ends in `/`, so `${Prefix}*` in a policy never matches a
    sibling folder and `s3://${Bucket}/${Prefix}` is always a folder URI."""
    key = f"{location.key}/" if location.key else ""
    return {f"{prefix}Bucket": location.bucket, f"{prefix}Prefix": key}


def _repository_arn(image_uri: str) -> str:
    """`<account>.dkr.ecr.<region>.<domain>/<repo>:<tag>` -> the repository's ARN."""
    registry, _, rest = image_uri.partition("/")
    account, _, _, region = registry.split(".")[:4]
    repository = rest.split("@")[0].rsplit(":", 1)[0]
    return f"arn:{partition_of(region)}:ecr:{region}:{account}:repository/{repository}"


# Parameters per family --------------------------------------------------------------------

Parameters = dict[str, str]
Built = tuple[Parameters, RunOnce | None, tuple[Upload, ...]]


def _image(pipeline: Pipeline, provided: Callable[[], str]) -> Parameters:
    """An explicit `custom_image_uri`, with its repository for the pull permission, or the
    image SageMaker provides for this framework or monitor in this region."""
    custom = pipeline.get("custom_image_uri")
    if custom is None:
        return {"ImageUri": provided()}
    return {"ImageUri": str(custom), "ImageRepositoryArn": _repository_arn(str(custom))}


def _model(pipeline: Pipeline, settings: Settings) -> Parameters:
    """The model's identity: a registry package, or an image plus an artifact."""
    instance = pipeline.get("inference_instance")
    values: Parameters = {} if instance is None else {"InferenceInstance": str(instance)}
    package = pipeline.get("model_package_name")
    if package is not None:
        return {**values, "ModelPackageName": str(package), "AssetsBucket": settings.assets_bucket}
    builtin = functools.partial(
        images.builtin_image_uri,
        str(pipeline.get("model_framework")),
        str(pipeline.get("model_framework_version")),
        settings.region,
    )
    return {
        **values,
        **_image(pipeline, builtin),
        **_object("ModelArtifact", pipeline.get("model_artifact_location")),
    }


def _realtime(pipeline: Pipeline, settings: Settings) -> Built:
    values = {
        **_model(pipeline, settings),
        **_folder("DataCapture", pipeline.get("data_capture_location")),
    }
    if pipeline.endpoint_name is not None:
        values["EndpointName"] = pipeline.endpoint_name
    values |= _rollout_values(rollout.of(pipeline.values))
    return values, None, ()


def _rollout_values(plan: rollout.Rollout) -> Parameters:
    """The parameters of the rollout switches `_rollout_shape` turned on; "" for an optional
    value that is not given (the template then leaves its property out)."""
    values: Parameters = {}
    if plan.instance_count is not None:
        values["InstanceCount"] = str(plan.instance_count)
    if plan.autoscaling is not None:
        values["MinInstances"] = str(plan.autoscaling.min_instances)
        values["MaxInstances"] = str(plan.autoscaling.max_instances)
        values["TargetInvocationsPerInstance"] = _number(
            plan.autoscaling.target_invocations_per_instance
        )
    deployment = plan.deployment
    if deployment is not None:
        if deployment.blue_green:
            values["TrafficRoutingType"] = rollout.TRAFFIC_ROUTING[deployment.strategy]
            values["TerminationWaitSeconds"] = _optional(deployment.termination_wait_seconds)
        if deployment.step_percent is not None:
            values["DeploymentStepPercent"] = str(deployment.step_percent)
        values["DeploymentWaitSeconds"] = _optional(deployment.wait_seconds)
        values["MaxExecutionSeconds"] = _optional(deployment.max_execution_seconds)
        for index, alarm in enumerate(deployment.rollback_alarms, 1):
            values[f"RollbackAlarm{index}"] = alarm
    if plan.serverless is not None:
        values["ServerlessMemorySize"] = str(plan.serverless.memory_size_mb)
        values["ServerlessMaxConcurrency"] = str(plan.serverless.max_concurrency)
        values["ProvisionedConcurrency"] = _optional(plan.serverless.provisioned_concurrency)
    if plan.async_inference is not None:
        config = plan.async_inference
        values |= _folder("AsyncOutput", S3Location.parse(config["output_location"]))
        failure = config.get("failure_location")
        values |= (
            _folder("AsyncFailure", S3Location.parse(failure))
            if failure
            else {"AsyncFailureBucket": "", "AsyncFailurePrefix": ""}
        )
        values["MaxConcurrentInvocations"] = _optional(
            config.get("max_concurrent_invocations_per_instance")
        )
        values["SuccessTopicArn"] = str(config.get("success_topic_arn", ""))
        values["ErrorTopicArn"] = str(config.get("error_topic_arn", ""))
    if plan.vpc is not None:
        values["VpcSubnetIds"] = ",".join(plan.vpc["subnet_ids"])
        values["VpcSecurityGroupIds"] = ",".join(plan.vpc["security_group_ids"])
    return values


def _optional(value: int | None) -> str:
    return "" if value is None else str(value)


def _number(value: float) -> str:
    """1000.0 as "1000": the parameter reads as the user wrote it."""
    return str(int(value)) if value == int(value) else repr(value)


def _batch(pipeline: Pipeline, settings: Settings) -> Built:
    values = {
        **_model(pipeline, settings),
        **_object("BatchInput", pipeline.get("batch_inference_data")),
        **_folder("BatchOutput", pipeline.get("batch_job_output_location")),
    }
    job = sagemaker_name(pipeline.name, short_hash(values, pipeline.get("kms_key_arn")))
    values["TransformJobName"] = job
    values["StateMachineName"] = state_machine_name(pipeline)
    values[STARTED_PARAMETER] = ""
    return values, RunOnce("batch_transform", "RunStateMachineArn", job, STARTED_PARAMETER), ()


def _image_builder(pipeline: Pipeline, settings: Settings) -> Built:
    source: S3Location = pipeline.get("custom_algorithm_docker")
    name = pipeline_name(pipeline)
    values = {
        **_object("Source", source),
        "AssetsBucket": settings.assets_bucket,
        "EcrRepoName": str(pipeline.get("ecr_repo_name")),
        "ImageTag": str(pipeline.get("image_tag")),
        "PipelineName": name,
        "ArtifactPrefix": name[:ARTIFACT_PREFIX_LENGTH],
    }
    return values, None, ()


ARTIFACT_PREFIX_LENGTH = 20
"""CodePipeline keeps a pipeline's artifacts under the first 20 characters of its name."""


def pipeline_name(pipeline: Pipeline) -> str:
    """The image pipeline's name: the stack's name (so that it falls under the controller
    role's `<StackPrefix>-*`), cut to CodePipeline's 100 characters with a hash kept unique."""
    return f"{pipeline.stack_name[:91]}-{short_hash(pipeline.stack_name, length=8)}"


def _monitor(pipeline: Pipeline, settings: Settings) -> Built:
    monitor = pipeline.kind.monitor
    baseline = {
        **_object("BaselineData", pipeline.get("baseline_data")),
        **_folder("BaselineOutput", pipeline.get("baseline_job_output_location")),
        **_image(pipeline, lambda: images.monitor_image_uri(monitor, settings.region)),
        "InstanceType": str(pipeline.get("instance_type")),
        "InstanceVolumeSize": str(pipeline.get("instance_volume_size")),
        "BaselineMaxRuntimeSeconds": str(
            pipeline.get("baseline_max_runtime_seconds", DEFAULT_BASELINE_MAX_RUNTIME)
        ),
    }
    uploads: tuple[Upload, ...] = ()
    if monitor in CLARIFY:
        upload = clarify.analysis_parts(pipeline).upload()
        baseline |= {"AssetsBucket": settings.assets_bucket, "AnalysisConfigKey": upload.key}
        uploads = (upload,)
    elif monitor == "model_quality":
        baseline |= _model_quality_baseline(pipeline)
    base = f"{pipeline.name}-{monitor.replace('_', '-')}"
    job = sagemaker_name(base, short_hash(baseline, pipeline.get("kms_key_arn"), BASELINE_VERSION))
    schedule = {
        "EndpointName": str(pipeline.endpoint_name),
        **_folder("DataCapture", pipeline.get("data_capture_location")),
        **_folder("MonitoringOutput", pipeline.get("monitoring_output_location")),
        "ScheduleExpression": str(pipeline.get("schedule_expression")),
        "MonitorMaxRuntimeSeconds": str(pipeline.get("monitor_max_runtime_seconds")),
        "MonitoringScheduleName": sagemaker_name(base, short_hash(pipeline.stack_name)),
        **_monitor_inputs(pipeline),
    }
    shap = pipeline.get("shap_config")
    if monitor == "model_explainability" and isinstance(shap.get("baseline"), str):
        schedule |= _object("ShapBaseline", S3Location.parse(shap["baseline"]))
    definition = {k: v for k, v in schedule.items() if k not in _SCHEDULE_ONLY}
    # Job definitions are replaced by any change, their tags included: the name changes with
    # everything that reaches one, so that CloudFormation may replace it.
    tags = ownership_tags(settings.controller_id, pipeline.type, pipeline.name)
    digest = short_hash(job, definition, pipeline.get("kms_key_arn"), tags, BLUEPRINT_VERSION)
    values = {
        **baseline,
        **schedule,
        "BaselineJobName": job,
        "StateMachineName": state_machine_name(pipeline),
        "JobDefinitionName": sagemaker_name(base, digest),
        GATE_PARAMETER: "",
    }
    return values, RunOnce("baseline", "BaselineStateMachineArn", job, GATE_PARAMETER), uploads


_SCHEDULE_ONLY = frozenset({"ScheduleExpression", "MonitoringScheduleName"})
"""Schedule values that are not part of the job definition: changing them keeps it."""


def _model_quality_baseline(pipeline: Pipeline) -> Parameters:
    values = {
        "ProblemType": str(pipeline.get("problem_type")),
        "BaselineInferenceAttribute": str(pipeline.get("baseline_inference_attribute")),
        "BaselineGroundTruthAttribute": str(pipeline.get("baseline_ground_truth_attribute")),
    }
    if pipeline.get("problem_type") == "BinaryClassification":
        values["BaselineProbabilityAttribute"] = str(pipeline.get("baseline_probability_attribute"))
    threshold = clarify.probability_threshold(pipeline)
    if threshold is not None:
        values["ProbabilityThreshold"] = str(threshold)
    return values


def _monitor_inputs(pipeline: Pipeline) -> Parameters:
    """What the monitoring job reads besides captured data: ground truth, the attributes of
    the endpoint's input and output, the probability threshold."""
    monitor = pipeline.kind.monitor
    values: Parameters = {}
    if monitor in ("model_quality", "model_bias"):
        values |= _folder("GroundTruth", pipeline.get("monitor_ground_truth_input"))
    attributes = clarify.endpoint_attributes(pipeline)
    values |= {k: attributes[k] for k in OPTIONAL_ATTRIBUTES[monitor]}
    threshold = clarify.probability_threshold(pipeline)
    if monitor == "model_bias" and threshold is not None:
        values["ProbabilityThreshold"] = str(threshold)
    return values


OPTIONAL_ATTRIBUTES = {
    "data_quality": (),
    "model_quality": ("MonitorInferenceAttribute", "MonitorProbabilityAttribute"),
    "model_bias": ("MonitorInferenceAttribute", "MonitorProbabilityAttribute", "FeaturesAttribute"),
    "model_explainability": ("MonitorInferenceAttribute", "FeaturesAttribute"),
}
"""Per monitor kind: the EndpointInput attributes it may set; empty means not set. The
blueprint declares the same lists."""


def _training(pipeline: Pipeline, settings: Settings) -> Built:
    """A training, tuning or Autopilot job, named from a hash of its request like the other
    run-once jobs; the request reaches the state machine as one JSON parameter."""
    image = None
    if pipeline.kind.builtin:
        image = images.builtin_image_uri(
            str(pipeline.get("model_framework")),
            str(pipeline.get("model_framework_version")),
            settings.region,
            scope="training",
        )
    found = training.request(pipeline, image)
    output: S3Location = pipeline.get("job_output_location")
    values = {
        **_object("TrainingData", pipeline.get("training_data")),
        **_folder("Output", output),
    }
    if pipeline.get("validation_data") is not None:
        values |= _object("ValidationData", pipeline.get("validation_data"))
    if pipeline.get("problem_type") is not None and _typed_problem(pipeline.kind):
        values["ProblemType"] = str(pipeline.get("problem_type"))
    group = pipeline.get("model_package_group_name")
    digest = short_hash(values, found, group)
    job = _job_name(training.job_base(pipeline), digest, training.NAME_LIMITS[pipeline.type])
    if "TrainingJobDefinition" in found:
        definition = training.with_checkpoints(found["TrainingJobDefinition"], output, job)
        found = {**found, "TrainingJobDefinition": definition}
    elif "AlgorithmSpecification" in found:
        found = training.with_checkpoints(found, output, job)
    if group is not None:
        values["ModelPackageGroupName"] = str(group)
    values |= {
        "JobName": job,
        "JobRequest": training.as_text(found),
        "StateMachineName": state_machine_name(pipeline),
        STARTED_PARAMETER: "",
    }
    return values, RunOnce("training", "RunStateMachineArn", job, STARTED_PARAMETER), ()


def _job_name(base: str, digest: str, limit: int) -> str:
    """`sagemaker_name` within a job type's own limit (32 for tuning and AutoML jobs)."""
    head = base[: limit - 1 - len(digest)].rstrip("-")
    return f"{head}-{digest}".lower()


_PARAMETER_BUILDERS = {
    Family.REALTIME: _realtime,
    Family.BATCH: _batch,
    Family.IMAGE_BUILDER: _image_builder,
    Family.MONITOR: _monitor,
    Family.TRAINING: _training,
}
