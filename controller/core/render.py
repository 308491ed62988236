"""From a validated `Pipeline` to the CloudFormation stack that deploys it. No AWS calls.

Two rules keep rendering safe and fast:
- Config values never become template text. The Jinja template sees only the pipeline's
  `Shape` (type and structural switches from fixed sets); every value reaches CloudFormation
  as a stack Parameter. A value holding YAML or Jinja syntax therefore cannot change a stack.
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
from dataclasses import dataclass
from typing import Any

import jinja2

from controller.core import images
from controller.core.config.model import Config, Pipeline, S3Location, Settings
from controller.core.pipelines import Family

BLUEPRINT_VERSION = "1"
"""Bump when a blueprint changes meaningfully: it is part of every spec hash."""

GATE_PARAMETER = "BaselineReady"
"""Monitors create their schedule only once the applier sets this to "true"."""

STARTED_PARAMETER = "TransformStarted"
"""Batch stacks record here that their transform job was started, as a real stack change
(a tag alone would do on AWS, but emulators ignore tag-only updates)."""

GATES = frozenset({GATE_PARAMETER, STARTED_PARAMETER})

CAPABILITIES = ("CAPABILITY_IAM",)
"""Blueprints create IAM roles with generated names only."""

DEFAULT_BASELINE_MAX_RUNTIME = 3600


@dataclass(frozen=True)
class RunOnce:
    """A job the controller starts after the stack is ready (batch transform, monitor baseline)."""

    kind: str
    """"batch_transform" or "baseline"."""
    output_key: str
    """Stack Output that holds the Step Functions state machine ARN."""
    execution_name: str
    """Same job inputs, same name: starting it again is a no-op rather than a second job."""
    gate_parameter: str | None
    """Parameter the applier sets to "true" once the job succeeded (monitors) or started
    (batch)."""


@dataclass(frozen=True)
class RenderedStack:
    pipeline: Pipeline
    stack_name: str
    template_body: str
    parameters: tuple[tuple[str, str], ...]
    capabilities: tuple[str, ...]
    spec_hash: str
    """What was asked for: template, parameters except the gate, capabilities, version."""
    run: RunOnce | None

    def boto_parameters(self, **overrides: str) -> list[dict[str, str]]:
        """CloudFormation's parameter list; `overrides` replace values (e.g. the gate)."""
        unknown = set(overrides) - {key for key, _ in self.parameters}
        if unknown:
            raise KeyError(f"{self.stack_name} has no parameter {', '.join(sorted(unknown))}")
        return [
            {"ParameterKey": key, "ParameterValue": overrides.get(key, value)}
            for key, value in self.parameters
        ]


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


def render(pipeline: Pipeline, settings: Settings) -> RenderedStack:
    shape = shape_of(pipeline)
    builder = _PARAMETER_BUILDERS[pipeline.kind.family]
    values, run = builder(pipeline, settings)
    if shape.kms:
        values["KmsKeyArn"] = str(pipeline.get("kms_key_arn"))
    parameters = tuple(sorted(values.items()))
    body = template_text(shape)
    return RenderedStack(
        pipeline=pipeline,
        stack_name=pipeline.stack_name,
        template_body=body,
        parameters=parameters,
        capabilities=CAPABILITIES,
        spec_hash=spec_hash(body, parameters, CAPABILITIES),
        run=run,
    )


def render_all(config: Config) -> tuple[RenderedStack, ...]:
    return tuple(render(pipeline, config.settings) for pipeline in config.pipelines)


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


def shape_of(pipeline: Pipeline) -> Shape:
    kind = pipeline.kind
    problem_type = str(pipeline.get("problem_type", ""))
    return Shape(
        blueprint=kind.blueprint,
        pipeline_type=kind.type,
        monitor=kind.monitor,
        registry=pipeline.get("model_package_name") is not None,
        custom_image=pipeline.get("custom_image_uri") is not None,
        kms=pipeline.get("kms_key_arn") is not None,
        named_endpoint=kind.family is Family.REALTIME and pipeline.endpoint_name is not None,
        problem_type=problem_type if kind.monitor == "model_quality" else "",
        has_threshold=kind.monitor == "model_quality"
        and pipeline.get("probability_threshold_attribute") is not None,
    )


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


def json_escaped(text: str) -> str:
    """`text` as the inside of a JSON string, for values substituted into a state machine's
    JSON definition: a quote in an S3 key must not end the string it is placed in."""
    return json.dumps(text)[1:-1]


def short_hash(*parts: Any, length: int = 10) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:length]


def sagemaker_name(base: str, digest: str) -> str:
    """`<base>-<digest>` that fits SageMaker's `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, lower case
    so that the job's ARN (which SageMaker lower-cases) matches the role's policy."""
    head = base[: 62 - len(digest)].rstrip("-")
    return f"{head}-{digest}".lower()


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


def _escaped(values: dict[str, str], *keys: str) -> dict[str, str]:
    return {k: json_escaped(v) if k in keys else v for k, v in values.items()}


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _repository_arn(image_uri: str) -> str:
    """`<account>.dkr.ecr.<region>.<domain>/<repo>:<tag>` -> the repository's ARN."""
    registry, _, rest = image_uri.partition("/")
    account, _, _, region = registry.split(".")[:4]
    repository = rest.split("@")[0].rsplit(":", 1)[0]
    return f"arn:{_partition(region)}:ecr:{region}:{account}:repository/{repository}"


# Parameters per family --------------------------------------------------------------------

Parameters = dict[str, str]


def _model(pipeline: Pipeline, settings: Settings) -> Parameters:
    """The model's identity: a registry package, or an image plus an artifact."""
    values: Parameters = {"InferenceInstance": str(pipeline.get("inference_instance"))}
    package = pipeline.get("model_package_name")
    if package is not None:
        return {**values, "ModelPackageName": str(package), "AssetsBucket": settings.assets_bucket}
    custom = pipeline.get("custom_image_uri")
    if custom is not None:
        values["ImageUri"] = str(custom)
        values["ImageRepositoryArn"] = _repository_arn(str(custom))
    else:
        values["ImageUri"] = images.builtin_image_uri(
            str(pipeline.get("model_framework")),
            str(pipeline.get("model_framework_version")),
            settings.region,
        )
    return {**values, **_object("ModelArtifact", pipeline.get("model_artifact_location"))}


def _realtime(pipeline: Pipeline, settings: Settings) -> tuple[Parameters, RunOnce | None]:
    values = {
        **_model(pipeline, settings),
        **_folder("DataCapture", pipeline.get("data_capture_location")),
    }
    if pipeline.endpoint_name is not None:
        values["EndpointName"] = pipeline.endpoint_name
    return values, None


def _batch(pipeline: Pipeline, settings: Settings) -> tuple[Parameters, RunOnce | None]:
    values = {
        **_model(pipeline, settings),
        **_object("BatchInput", pipeline.get("batch_inference_data")),
        **_folder("BatchOutput", pipeline.get("batch_job_output_location")),
    }
    values = _escaped(values, "BatchInputKey", "BatchOutputPrefix")
    job = sagemaker_name(pipeline.name, short_hash(values, pipeline.get("kms_key_arn")))
    values["TransformJobName"] = job
    values["StateMachineName"] = state_machine_name(pipeline)
    values[STARTED_PARAMETER] = "false"
    return values, RunOnce("batch_transform", "RunStateMachineArn", job, STARTED_PARAMETER)


def _image_builder(pipeline: Pipeline, settings: Settings) -> tuple[Parameters, RunOnce | None]:
    source: S3Location = pipeline.get("custom_algorithm_docker")
    values = {
        **_object("Source", source),
        "AssetsBucket": settings.assets_bucket,
        "EcrRepoName": str(pipeline.get("ecr_repo_name")),
        "ImageTag": str(pipeline.get("image_tag")),
        # CodePipeline keeps artifacts under the first 20 characters of its name: a name of
        # at most 20 characters is the prefix the roles are scoped to.
        "PipelineName": _short_name(pipeline.name, pipeline.stack_name, 20),
    }
    return values, None


def _short_name(base: str, seed: str, limit: int) -> str:
    digest = short_hash(seed, length=8)
    return f"{base[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def _monitor(pipeline: Pipeline, settings: Settings) -> tuple[Parameters, RunOnce | None]:
    monitor = pipeline.kind.monitor
    baseline = {
        **_object("BaselineData", pipeline.get("baseline_data")),
        **_folder("BaselineOutput", pipeline.get("baseline_job_output_location")),
        "ImageUri": images.monitor_image_uri(monitor, settings.region),
        "InstanceType": str(pipeline.get("instance_type")),
        "InstanceVolumeSize": str(pipeline.get("instance_volume_size")),
        "BaselineMaxRuntimeSeconds": str(
            pipeline.get("baseline_max_runtime_seconds", DEFAULT_BASELINE_MAX_RUNTIME)
        ),
        **_MONITOR_BASELINE[monitor](pipeline),
    }
    baseline = _escaped(baseline, "BaselineDataKey", "BaselineOutputPrefix")
    job = sagemaker_name(
        f"{pipeline.name}-{monitor.replace('_', '-')}",
        short_hash(baseline, pipeline.get("kms_key_arn"), BLUEPRINT_VERSION),
    )
    schedule = {
        "EndpointName": str(pipeline.endpoint_name),
        **_folder("DataCapture", pipeline.get("data_capture_location")),
        **_folder("MonitoringOutput", pipeline.get("monitoring_output_location")),
        "ScheduleExpression": str(pipeline.get("schedule_expression")),
        "MonitorMaxRuntimeSeconds": str(pipeline.get("monitor_max_runtime_seconds")),
        "MonitoringScheduleName": sagemaker_name(
            f"{pipeline.name}-{monitor.replace('_', '-')}", short_hash(pipeline.stack_name)
        ),
        **_MONITOR_SCHEDULE[monitor](pipeline),
    }
    definition = {k: v for k, v in schedule.items() if k not in _SCHEDULE_ONLY}
    values = {
        **baseline,
        **schedule,
        "BaselineJobName": job,
        "StateMachineName": state_machine_name(pipeline),
        "JobDefinitionName": sagemaker_name(
            f"{pipeline.name}-{monitor.replace('_', '-')}",
            short_hash(job, definition, pipeline.get("kms_key_arn"), BLUEPRINT_VERSION),
        ),
        GATE_PARAMETER: "false",
    }
    return values, RunOnce("baseline", "BaselineStateMachineArn", job, GATE_PARAMETER)


_SCHEDULE_ONLY = frozenset({"ScheduleExpression", "MonitoringScheduleName"})
"""Schedule values that are not part of the job definition: changing them keeps it."""


def _optional(pipeline: Pipeline, key: str) -> str:
    value = pipeline.get(key)
    return "" if value is None else str(value)


def _nothing(pipeline: Pipeline) -> Parameters:
    return {}


def _model_quality_baseline(pipeline: Pipeline) -> Parameters:
    values = {
        "ProblemType": str(pipeline.get("problem_type")),
        "BaselineInferenceAttribute": str(pipeline.get("baseline_inference_attribute")),
        "BaselineGroundTruthAttribute": str(pipeline.get("baseline_ground_truth_attribute")),
    }
    if pipeline.get("problem_type") == "BinaryClassification":
        values["BaselineProbabilityAttribute"] = str(pipeline.get("baseline_probability_attribute"))
    if pipeline.get("probability_threshold_attribute") is not None:
        values["ProbabilityThreshold"] = str(pipeline.get("probability_threshold_attribute"))
    return _escaped(values, *values)


def _clarify_baseline(pipeline: Pipeline) -> Parameters:
    """Clarify reads its analysis configuration from S3: the state machine writes it there
    from this parameter before the baseline job runs."""
    return {"AnalysisConfig": json_escaped(canonical_json(analysis_config(pipeline)))}


def analysis_config(pipeline: Pipeline) -> dict[str, Any]:
    """The Clarify analysis configuration of a bias or explainability monitor."""
    predictor: dict[str, Any] = {
        "endpoint_name": pipeline.endpoint_name,
        "content_type": "text/csv",
        "accept_type": "text/csv",
    }
    config: dict[str, Any] = {"dataset_type": "text/csv", "predictor": predictor}
    if pipeline.kind.monitor == "model_bias":
        config.update(_bias_section(pipeline))
        for key, value in (pipeline.get("model_predicted_label_config") or {}).items():
            # ModelPredictedLabelConfig: the threshold is top-level, the rest describe output.
            if key == "probability_threshold":
                config[key] = value
            else:
                predictor[key] = value
    else:
        config["methods"] = {"shap": dict(pipeline.get("shap_config"))}
        if pipeline.get("model_scores") is not None:
            predictor["label"] = pipeline.get("model_scores")
    if pipeline.get("features_attribute") is not None:
        config["features"] = pipeline.get("features_attribute")
    return config


def _bias_section(pipeline: Pipeline) -> dict[str, Any]:
    """The SageMaker SDK's BiasConfig keywords, translated to the analysis-config keys Clarify
    reads; other keywords (a `label` column, say; the first column by default) pass through."""
    bias = dict(pipeline.get("bias_config"))
    facet = {"name_or_index": bias.pop("facet_name", None)}
    if "facet_values_or_threshold" in bias:
        facet["value_or_threshold"] = bias.pop("facet_values_or_threshold")
    section: dict[str, Any] = {
        "label": 0,
        "facet": [facet],
        "methods": {"post_training_bias": {"methods": "all"}},
    }
    if "group_name" in bias:
        section["group_variable"] = bias.pop("group_name")
    return section | bias


def _model_quality_schedule(pipeline: Pipeline) -> Parameters:
    return {
        **_folder("GroundTruth", pipeline.get("monitor_ground_truth_input")),
        "MonitorInferenceAttribute": _optional(pipeline, "monitor_inference_attribute"),
        "MonitorProbabilityAttribute": _optional(pipeline, "monitor_probability_attribute"),
    }


def _model_bias_schedule(pipeline: Pipeline) -> Parameters:
    return {
        **_folder("GroundTruth", pipeline.get("monitor_ground_truth_input")),
        "MonitorInferenceAttribute": _optional(pipeline, "monitor_inference_attribute"),
        "FeaturesAttribute": _optional(pipeline, "features_attribute"),
    }


def _model_explainability_schedule(pipeline: Pipeline) -> Parameters:
    return {
        "MonitorInferenceAttribute": _optional(pipeline, "monitor_inference_attribute"),
        "FeaturesAttribute": _optional(pipeline, "features_attribute"),
    }


_MONITOR_BASELINE = {
    "data_quality": _nothing,
    "model_quality": _model_quality_baseline,
    "model_bias": _clarify_baseline,
    "model_explainability": _clarify_baseline,
}
"""Per monitor kind: the inputs of its baseline job (they decide the baseline job's name)."""

_MONITOR_SCHEDULE = {
    "data_quality": _nothing,
    "model_quality": _model_quality_schedule,
    "model_bias": _model_bias_schedule,
    "model_explainability": _model_explainability_schedule,
}
"""Per monitor kind: the inputs of the scheduled job only (changing them keeps the baseline)."""

_PARAMETER_BUILDERS = {
    Family.REALTIME: _realtime,
    Family.BATCH: _batch,
    Family.IMAGE_BUILDER: _image_builder,
    Family.MONITOR: _monitor,
}
