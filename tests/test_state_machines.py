"""The run-once state machines do in an account what they are meant to, checked offline:

- each definition is run, after CloudFormation's substitution and serialisation, by a Step
  Functions simulation (`tests/states.py`) against a stand-in account, and every task's
  parameters validate against botocore's input shape of the API it calls;
- the Clarify analysis configurations the baseline state machine writes (baseline and
  monitor) validate against the documented analysis-config schemas
  (`tests/data/clarify/`), with the header row, the label and the shadow endpoint's model;
- every S3 object a job, a monitoring run or the state machine reads or writes is one its
  role's policy grants, for keys with non-ASCII characters and quotes too, and is the very
  key the config named (the one pre-flight checked);
- with the assets bucket encrypted by a KMS key (`settings.assets_kms_key_arn`), every role of
  a stage's stacks that reads from that bucket may also decrypt with the key, through S3.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
from referencing import Registry, Resource

from controller.core import render
from controller.core.config.model import S3Location
from tests import iam
from tests.stack_model import DeployedModel
from tests.states import StatesError, TaskCall, api_shape, run, validate
from tests.test_render import STACKS, TRAINING_EXAMPLE, load_document, variants_document

HEADER = ["churn", "Account Length", "VMail Message", "Day Mins"]
HEADER_ROW = ",".join(HEADER) + "\r\n1,128,25,265.1\r\n"
MODEL = "Model-Q2w3E4r5T6y7"
ENDPOINT_CONFIG = "EndpointConfig-Z9x8C7v6B5n4"
CLARIFY = Path(__file__).parent / "data" / "clarify"
ARN_PREFIX = "arn:aws:sagemaker:us-east-1:123456789012"


@dataclass
class Account:
    """What the state machine meets in an account: S3 objects and the monitored endpoint."""

    model: DeployedModel
    metrics: bool = True
    """Whether training jobs report final metrics (some algorithms report none)."""

    def __post_init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.packages: list[dict[str, Any]] = []
        parameters = self.model.parameters
        self.objects: dict[tuple[str, str], str] = {}
        for upload in self.model.stack.uploads:
            self.objects[(parameters["AssetsBucket"], upload.key)] = upload.body.decode()
        if "BaselineDataKey" in parameters:
            self.objects[(parameters["BaselineDataBucket"], parameters["BaselineDataKey"])] = (
                HEADER_ROW
            )

    def answer(self, resource: str, parameters: dict[str, Any]) -> Any:
        shape = api_shape(resource)
        operation = (shape.service, shape.operation)
        if operation == ("s3", "GetObject"):
            body = self.objects.get((parameters["Bucket"], parameters["Key"]))
            if body is None:
                raise StatesError(f"NoSuchKey: s3://{parameters['Bucket']}/{parameters['Key']}")
            return {"Body": body}
        if operation == ("s3", "PutObject"):
            self.objects[(parameters["Bucket"], parameters["Key"])] = parameters["Body"]
            return {"ETag": '"x"'}
        if operation == ("sagemaker", "DescribeEndpoint"):
            assert parameters["EndpointName"] == self.model.parameters["EndpointName"]
            return {
                "EndpointName": parameters["EndpointName"],
                "EndpointConfigName": ENDPOINT_CONFIG,
            }
        if operation == ("sagemaker", "DescribeEndpointConfig"):
            assert parameters["EndpointConfigName"] == ENDPOINT_CONFIG
            return {"ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": MODEL}]}
        if operation == ("sagemaker", "CreateTrainingJob"):
            # `.sync` answers with DescribeTrainingJob's output once the job is done.
            return self.trained(parameters["TrainingJobName"], parameters)
        if operation == ("sagemaker", "CreateHyperParameterTuningJob"):
            name = parameters["HyperParameterTuningJobName"]
            best = f"{name}-003-1a2b3c4d"
            self.trained(best, parameters["TrainingJobDefinition"])
            return {"BestTrainingJob": {"TrainingJobName": best}}
        if operation == ("sagemaker", "DescribeTrainingJob"):
            return self.jobs[parameters["TrainingJobName"]]
        if operation == ("sagemaker", "CreateModelPackage"):
            self.packages.append(parameters)
            group = parameters["ModelPackageGroupName"]
            return {"ModelPackageArn": f"{ARN_PREFIX}:model-package/{group}/1"}
        return {}

    def trained(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """A finished training job as DescribeTrainingJob shows it."""
        output = request["OutputDataConfig"]["S3OutputPath"]
        found: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": request["AlgorithmSpecification"],
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/{name}/output/model.tar.gz"},
        }
        if self.metrics:
            found["FinalMetricDataList"] = [{"MetricName": "validation:auc", "Value": 0.91}]
        self.jobs[name] = found
        return found


def definition(model: DeployedModel) -> dict[str, Any]:
    """The definition as Step Functions receives it: CloudFormation serialises the object."""
    machine = model.resources["RunOnceStateMachine"]["Properties"]["Definition"]
    resolved: dict[str, Any] = json.loads(json.dumps(model.context.resolve(machine)))
    return resolved


def execute(stack: render.RenderedStack, *, metrics: bool = True) -> tuple[Account, list[TaskCall]]:
    model = DeployedModel(stack)
    account = Account(model, metrics)
    return account, run(definition(model), account.answer).calls


RUNNING = [s for s in STACKS if s.run is not None]


@pytest.mark.parametrize(
    "stack", RUNNING, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in RUNNING]
)
def test_every_task_validates_against_the_api_it_calls(stack: render.RenderedStack) -> None:
    _, calls = execute(stack)
    assert calls
    for call in calls:
        assert validate(call) == [], f"{call.state}: {call.parameters}"


def test_the_validation_catches_a_wrong_field() -> None:
    """The check can fail: a number passed as text, a misspelt field, a missing one."""
    batch = next(s for s in RUNNING if s.pipeline.type == "byom_batch_builtin")
    _, calls = execute(batch)
    (job,) = calls
    bad = copy.deepcopy(job.parameters)
    bad["TransformResources"]["InstanceCount"] = "1"
    assert validate(replace(job, parameters=bad))
    del bad["TransformResources"]
    assert validate(replace(job, parameters=bad))


# Training and registration -----------------------------------------------------------------

REGISTERING = [s for s in RUNNING if s.shape.register]


@pytest.mark.parametrize(
    "stack", REGISTERING, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in REGISTERING]
)
def test_the_trained_model_is_registered_pending_approval_with_its_metrics(
    stack: render.RenderedStack,
) -> None:
    account, _ = execute(stack)
    (package,) = account.packages
    group = stack.pipeline.get("model_package_group_name")
    assert package["ModelPackageGroupName"] == group
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    trained = package["CustomerMetadataProperties"]["TrainingJobName"]
    job = account.jobs[trained]
    (container,) = package["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert container["Image"] == json.loads(dict(stack.parameters)["JobRequest"]).get(
        "AlgorithmSpecification", {}
    ).get("TrainingImage", container["Image"])
    metrics = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = _split(metrics)
    assert json.loads(account.objects[(bucket, key)]) == job["FinalMetricDataList"]
    if stack.pipeline.type == "model_tuner_builtin":
        # The best of the tuning's jobs, not the tuning job itself.
        assert trained.startswith(stack.run.execution_name + "-") if stack.run else False


def test_a_job_without_final_metrics_is_registered_with_none() -> None:
    stack = REGISTERING[0]
    account, calls = execute(stack, metrics=False)
    (package,) = account.packages
    bucket, key = _split(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert account.objects[(bucket, key)] == "[]"
    assert all(validate(call) == [] for call in calls)


def test_the_request_follows_the_originals_defaults_and_strings() -> None:
    """Spot on and inner-traffic encryption on unless "False", the instance defaults, every
    hyperparameter as text (the SDK's str), the tuner's ranges in the API's form."""
    trainer = next(s for s in RUNNING if s.pipeline.type == "model_training_builtin")
    _, calls = execute(trainer)
    job = calls[0].parameters
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 86400,
        "MaxWaitTimeInSeconds": 172800,
    }
    assert job["EnableInterContainerTrafficEncryption"] is True
    assert job["ResourceConfig"] == {
        "InstanceType": "ml.m4.xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 20,
    }
    assert job["HyperParameters"]["num_round"] == "400"
    assert job["HyperParameters"]["rate_drop"] == "0.3"
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]
    assert job["CheckpointConfig"]["S3Uri"].endswith(f"/{job['TrainingJobName']}/checkpoint")
    tuner = next(s for s in RUNNING if s.pipeline.type == "model_tuner_builtin")
    _, calls = execute(tuner)
    tuning = calls[0].parameters
    ranges = tuning["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "max_depth", "MinValue": "1", "MaxValue": "15", "ScalingType": "Auto"}
    ]
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "optimizer", "Values": ["sgd", "Adam"]}
    ]
    static = tuning["TrainingJobDefinition"]["StaticHyperParameters"]
    assert "eta" not in static and static["num_round"] == "400"
    assert len(tuning["HyperParameterTuningJobName"]) <= 32


# Clarify -----------------------------------------------------------------------------------


def _schema(name: str) -> jsonschema.Draft202012Validator:
    resources = [
        (f"clarify/{path.name}", Resource.from_contents(json.loads(path.read_text())))
        for path in CLARIFY.glob("*.json")
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    schema = json.loads((CLARIFY / name).read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


BASELINE_SCHEMA = _schema("analysis_config.schema.json")
MONITOR_SCHEMAS = {
    "model_bias": _schema("monitor_bias.schema.json"),
    "model_explainability": _schema("monitor_explainability.schema.json"),
}
CLARIFY_STACKS = [s for s in RUNNING if s.pipeline.kind.monitor in MONITOR_SCHEMAS]


def written(account: Account, calls: list[TaskCall], state: str) -> tuple[str, Any]:
    call = next(c for c in calls if c.state == state)
    uri = f"s3://{call.parameters['Bucket']}/{call.parameters['Key']}"
    return uri, json.loads(account.objects[(call.parameters["Bucket"], call.parameters["Key"])])


@pytest.mark.parametrize(
    "stack",
    CLARIFY_STACKS,
    ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in CLARIFY_STACKS],
)
def test_clarify_configs_are_valid_and_complete(stack: render.RenderedStack) -> None:
    account, calls = execute(stack)
    model = DeployedModel(stack)
    (_, _, definition_properties) = next(
        r for r in model.existing() if r[1].endswith("JobDefinition")
    )
    baseline_uri, baseline = written(account, calls, "WriteBaselineConfig")
    monitor_uri, monitor = written(account, calls, "WriteMonitorConfig")
    assert list(BASELINE_SCHEMA.iter_errors(baseline)) == []
    assert list(MONITOR_SCHEMAS[stack.pipeline.kind.monitor].iter_errors(monitor)) == []
    # The original's rule: the baseline file's header row, its first column the label.
    assert baseline["headers"] == HEADER
    assert baseline["label"] == "churn"
    # A shadow endpoint from the endpoint's model, never the production endpoint.
    assert baseline["predictor"]["model_name"] == MODEL
    assert "endpoint_name" not in json.dumps(baseline)
    endpoint_input = next(v for k, v in definition_properties.items() if k.endswith("JobInput"))
    threshold = (stack.pipeline.get("model_predicted_label_config") or {}).get(
        "probability_threshold"
    )
    if stack.pipeline.kind.monitor == "model_bias":
        assert (monitor["headers"], monitor["label"]) == (HEADER, "churn")
        # The SDK's rule: the threshold goes to the job's EndpointInput, not its config.
        assert "probability_threshold" not in monitor
        if threshold is not None:
            assert float(endpoint_input["EndpointInput"]["ProbabilityThresholdAttribute"]) == (
                threshold
            )
    else:
        assert monitor["headers"] == HEADER[1:]
        assert monitor["predictor"]["model_name"] == MODEL
    job = next(c for c in calls if c.state == "Baseline").parameters
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    assert inputs["analysis_config"] == baseline_uri
    assert (
        inputs["dataset"]
        == f"s3://{model.parameters['BaselineDataBucket']}/" + (model.parameters["BaselineDataKey"])
    )
    (output,) = job["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "analysis_result"
    specification = next(
        v for k, v in definition_properties.items() if k.endswith("AppSpecification")
    )
    assert specification["ConfigUri"] == monitor_uri


def test_the_schemas_refuse_the_configs_the_controller_used_to_write() -> None:
    """Before: one config for both jobs, the production endpoint, no headers or label."""
    old = {
        "dataset_type": "text/csv",
        "predictor": {"endpoint_name": "churn-endpoint", "content_type": "text/csv"},
        "label": 0,
        "facet": [{"name_or_index": "Account Length", "value_or_threshold": [100]}],
        "methods": {"post_training_bias": {"methods": "all"}},
        "probability_threshold": 0.8,
    }
    assert list(BASELINE_SCHEMA.iter_errors(old))
    assert list(MONITOR_SCHEMAS["model_bias"].iter_errors(old))


# S3 keys: what each role is granted is what each job touches -----------------------------

HOSTILE = {
    "model_artifact_location": 'modèles/v1 "best"\\x/model.tar.gz'.replace(" ", "_"),
    "batch_inference_data": 'mlops-data-example/lots/données_d\'été/"entrée".csv',
    "batch_job_output_location": "mlops-data-example/sorties/{résultats}$x",
    "baseline_data": 'base/données_"v2"/ligne.csv',
    "baseline_job_output_location": "mlops-data-example/références/'ß'",
    "data_capture_location": 'mlops-data-example/capturé/"x"',
    "monitoring_output_location": "mlops-data-example/surveillé/ü",
    "monitor_ground_truth_input": 'mlops-data-example/vérité/"t"',
    "training_data": 'données/"entraînement"/train.csv',
    "validation_data": "s3://mlops-data-example/validé/'v'.csv",
    "job_output_location": "sorties/{modèles}",
}


def hostile_stacks() -> tuple[render.RenderedStack, ...]:
    base = load_document(example_config_document())
    extra = load_document(hostile_document())
    trained = load_document(hostile_training_document())
    return render.render_all(base) + render.render_all(extra) + render.render_all(trained)


def hostile_training_document() -> dict[str, Any]:
    """The training example with the hostile keys, spot training on (checkpoints)."""
    document: dict[str, Any] = json.loads(TRAINING_EXAMPLE.read_text())
    for pipeline in document["pipelines"]:
        for key, value in HOSTILE.items():
            if key in pipeline or (key == "validation_data" and "algo_hyperparamaters" in pipeline):
                pipeline[key] = value
        pipeline.pop("use_spot_instances", None)
    return document


def hostile_document() -> dict[str, Any]:
    """The variants, with the hostile keys."""
    example = json.loads(json.dumps(variants_document()))
    for pipeline in example["pipelines"]:
        for key, value in HOSTILE.items():
            if key in pipeline:
                pipeline[key] = value
        if "shap_config" in pipeline and isinstance(pipeline["shap_config"].get("baseline"), str):
            pipeline["shap_config"]["baseline"] = "shap/ligne_de_base_'été'.csv"
    return example


def example_config_document() -> dict[str, Any]:
    document = json.loads(
        Path(__file__).parent.parent.joinpath("examples/mlops-config.json").read_text()
    )
    for pipeline in document["pipelines"]:
        for key, value in HOSTILE.items():
            if key in pipeline:
                pipeline[key] = value
        if "shap_config" in pipeline:
            pipeline["shap_config"]["baseline"] = "shap/ligne_de_base_'été'.csv"
    return document


@dataclass(frozen=True)
class Access:
    role: str
    action: str
    bucket: str
    key: str
    what: str

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}/{self.key}"


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    assert parsed.scheme == "s3", uri
    return parsed.netloc, uri.split("/", 3)[3] if uri.count("/") >= 3 else ""


def accesses(stack: render.RenderedStack) -> Iterator[Access]:
    """Every S3 object the stack's jobs read or write, and the role that does it."""
    model = DeployedModel(stack)
    resources = {logical: (rtype, props) for logical, rtype, props in model.existing()}
    sagemaker = "SageMakerRole"
    if "Model" in resources:
        container = resources["Model"][1]["PrimaryContainer"]
        url = container.get("ModelDataUrl")
        if url:
            yield Access(sagemaker, "s3:GetObject", *_split(url), "the model artifact")
        elif "ModelPackageName" in container:
            # The package names its artifact; the blueprint expects it in the assets bucket.
            bucket = model.parameters["AssetsBucket"]
            yield Access(sagemaker, "s3:GetObject", bucket, "registry/model.tar.gz", "package")
    if "Pipeline" in resources:
        for stage in resources["Pipeline"][1]["Stages"]:
            for action in stage["Actions"]:
                if action["ActionTypeId"]["Provider"] == "S3":
                    source = action["Configuration"]
                    bucket, key = source["S3Bucket"], source["S3ObjectKey"]
                    yield Access("PipelineRole", "s3:GetObject", bucket, key, "the zip")
    if "EndpointConfig" in resources:
        capture = resources["EndpointConfig"][1]["DataCaptureConfig"]["DestinationS3Uri"]
        bucket, key = _split(capture)
        yield Access(sagemaker, "s3:PutObject", bucket, key + "ep/AllTraffic/1.jsonl", "capture")
    for rtype, properties in resources.values():
        if rtype.endswith("JobDefinition"):
            yield from _monitoring(sagemaker, properties)
    if "RunOnceStateMachine" not in resources:
        return
    account, calls = execute(stack)
    for call in calls:
        shape = api_shape(call.resource)
        parameters = call.parameters
        if shape.service == "s3":
            action = f"s3:{shape.operation}"
            yield Access(
                "StateMachineRole", action, parameters["Bucket"], parameters["Key"], call.state
            )
        elif shape.operation == "CreateTransformJob":
            data = parameters["TransformInput"]["DataSource"]["S3DataSource"]
            assert data["S3DataType"] == "S3Prefix"
            bucket, key = _split(data["S3Uri"])
            yield Access(sagemaker, "s3:GetObject", bucket, key, "transform input")
            # S3Prefix: the job reads every object whose key starts with the input's.
            yield Access(sagemaker, "s3:GetObject", bucket, f"{key}.part2", "transform input")
            bucket, prefix = _split(parameters["TransformOutput"]["S3OutputPath"])
            yield Access(sagemaker, "s3:PutObject", bucket, prefix + "input.csv.out", "output")
        elif shape.operation in TRAINING_JOBS:
            yield from _training_accesses(sagemaker, call)
        elif shape.operation == "CreateProcessingJob":
            for item in parameters["ProcessingInputs"]:
                bucket, key = _split(item["S3Input"]["S3Uri"])
                yield Access(sagemaker, "s3:GetObject", bucket, key, item["InputName"])
                if item["S3Input"]["S3DataType"] == "S3Prefix":
                    yield Access(sagemaker, "s3:GetObject", bucket, f"{key}/2", item["InputName"])
            for item in parameters["ProcessingOutputConfig"]["Outputs"]:
                bucket, prefix = _split(item["S3Output"]["S3Uri"])
                yield Access(sagemaker, "s3:PutObject", bucket, prefix + "/analysis.json", "out")
            config = next(
                (
                    account.objects[k]
                    for k in account.objects
                    if k[1].endswith("/analysis_config.json") and "/monitor/" not in k[1]
                ),
                None,
            )
            if config is not None:
                baseline = json.loads(config)["methods"].get("shap", {}).get("baseline")
                if isinstance(baseline, str):
                    yield Access(sagemaker, "s3:GetObject", *_split(baseline), "SHAP baseline")


TRAINING_JOBS = ("CreateTrainingJob", "CreateHyperParameterTuningJob", "CreateAutoMLJob")


def _training_accesses(role: str, call: TaskCall) -> Iterator[Access]:
    """What a training, tuning or AutoML job reads (every channel, each object under an
    S3Prefix) and writes (artifacts and checkpoints under its output location)."""
    request = call.parameters.get("TrainingJobDefinition", call.parameters)
    name = next(v for k, v in call.parameters.items() if k.endswith("JobName"))
    for channel in request["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        bucket, key = _split(source["S3Uri"])
        yield Access(role, "s3:GetObject", bucket, key, "training data")
        yield Access(role, "s3:GetObject", bucket, f"{key}/part2.csv", "training data")
    bucket, prefix = _split(request["OutputDataConfig"]["S3OutputPath"])
    yield Access(role, "s3:PutObject", bucket, f"{prefix}/{name}/output/model.tar.gz", "model")
    if "CheckpointConfig" in request:
        bucket, prefix = _split(request["CheckpointConfig"]["S3Uri"])
        yield Access(role, "s3:PutObject", bucket, f"{prefix}/checkpoint-1.bin", "checkpoint")
        yield Access(role, "s3:GetObject", bucket, f"{prefix}/checkpoint-1.bin", "checkpoint")


def _monitoring(role: str, properties: dict[str, Any]) -> Iterator[Access]:
    for key, value in properties.items():
        if key.endswith("AppSpecification") and "ConfigUri" in value:
            yield Access(role, "s3:GetObject", *_split(value["ConfigUri"]), "monitor config")
        if key.endswith("BaselineConfig"):
            for part in value.values():
                yield Access(role, "s3:GetObject", *_split(part["S3Uri"]), "baseline")
        if key.endswith("JobInput") and "GroundTruthS3Input" in value:
            bucket, prefix = _split(value["GroundTruthS3Input"]["S3Uri"])
            yield Access(role, "s3:GetObject", bucket, prefix + "2024/01/01/00/x.jsonl", "truth")
        if key.endswith("JobOutputConfig"):
            for output in value["MonitoringOutputs"]:
                bucket, prefix = _split(output["S3Output"]["S3Uri"])
                yield Access(role, "s3:PutObject", bucket, prefix + "report.json", "report")


def role_policy(model: DeployedModel, role: str) -> iam.Policy:
    statements = []
    for logical, rtype, properties in model.existing():
        if logical == role:
            for policy in properties.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
        elif rtype == "AWS::IAM::Policy" and model.name(role) in properties.get("Roles", []):
            statements += properties["PolicyDocument"]["Statement"]
    return iam.Policy.of(statements)


HOSTILE_STACKS = [s for s in hostile_stacks()]


@pytest.mark.parametrize(
    "stack",
    HOSTILE_STACKS,
    ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in HOSTILE_STACKS],
)
def test_every_s3_key_a_job_touches_is_granted_to_its_role(stack: render.RenderedStack) -> None:
    model = DeployedModel(stack)
    refused = [
        f"{a.role} {a.action} {a.arn} ({a.what})"
        for a in accesses(stack)
        if not role_policy(model, a.role).allows(a.action, a.arn)
    ]
    assert refused == []


def test_jobs_read_exactly_the_keys_the_config_names() -> None:
    """Non-ASCII characters and quotes arrive as written: the key a job reads is the key
    pre-flight checked, the key the policy grants, the key in the config."""
    for stack in HOSTILE_STACKS:
        touched = {(a.bucket, a.key) for a in accesses(stack)}
        for key in ("model_artifact_location", "batch_inference_data", "baseline_data"):
            location = stack.pipeline.get(key)
            if isinstance(location, S3Location) and not (
                key == "model_artifact_location" and stack.pipeline.get("model_package_name")
            ):
                assert (location.bucket, location.key) in touched, (stack.stack_name, key)
        assert "\\u" not in json.dumps(stack.boto_parameters(), ensure_ascii=False)
    example = next(s for s in HOSTILE_STACKS if s.pipeline.type == "byom_batch_builtin")
    assert ("mlops-data-example", 'lots/données_d\'été/"entrée".csv') in {
        (a.bucket, a.key) for a in accesses(example)
    }


def test_a_grant_that_differs_from_the_key_is_caught() -> None:
    """The check can fail: a policy holding the JSON-escaped key (what render used to pass)
    does not grant the key the job reads."""
    stack = next(s for s in HOSTILE_STACKS if s.pipeline.type == "byom_batch_builtin")
    escaped = json.dumps(stack.pipeline.get("batch_inference_data").key)[1:-1]
    policy = iam.Policy.of(
        [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::mlops-data-example/{escaped}*",
            }
        ]
    )
    reads = [a for a in accesses(stack) if a.what == "transform input"]
    assert reads and not any(policy.allows(a.action, a.arn) for a in reads)


def test_the_simulation_follows_a_real_definition() -> None:
    """Sanity of the simulator on what the blueprints rely on: slices, merges, splits."""
    defined = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Pass",
                "Result": {"line": "a,b,c\r\n1,2,3", "nl": "\r\n", "c": ",", "x": {"k": 1}},
                "ResultPath": "$.in",
                "Next": "B",
            },
            "B": {
                "Type": "Pass",
                "Parameters": {
                    "all.$": (
                        "States.StringSplit(States.ArrayGetItem("
                        "States.StringSplit($.in.line, $.in.nl), 0), $.in.c)"
                    ),
                    "merged.$": "States.JsonMerge($.in.x, $.in.x, false)",
                    "text.$": "States.JsonToString($.in.x)",
                },
                "ResultPath": "$.out",
                "Next": "C",
            },
            "C": {
                "Type": "Pass",
                "Parameters": {"rest.$": "$.out.all[1:]"},
                "Next": "D",
            },
            "D": {"Type": "Pass", "End": True},
        },
    }
    execution = run(defined, lambda resource, parameters: {})
    assert execution.calls == []
    assert execution.output == {"rest": ["b", "c"]}


# The state machine's own role ----------------------------------------------------------------

SYNC_ACTIONS = {
    # Step Functions Developer Guide, "IAM policies for calling Amazon SageMaker AI": what a
    # `.sync` task calls to start, watch (through a managed EventBridge rule) and stop a job,
    # and the tag it adds.
    "CreateProcessingJob": (
        "processing-job",
        "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
        ("CreateProcessingJob", "DescribeProcessingJob", "StopProcessingJob"),
    ),
    "CreateTransformJob": (
        "transform-job",
        "StepFunctionsGetEventsForSageMakerTransformJobsRule",
        ("CreateTransformJob", "DescribeTransformJob", "StopTransformJob"),
    ),
    "CreateTrainingJob": (
        "training-job",
        "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
        ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob"),
    ),
    "CreateHyperParameterTuningJob": (
        "hyper-parameter-tuning-job",
        "StepFunctionsGetEventsForSageMakerHyperParameterTuningJobsRule",
        (
            "CreateHyperParameterTuningJob",
            "DescribeHyperParameterTuningJob",
            "StopHyperParameterTuningJob",
        ),
    ),
}
SDK_RESOURCES = {
    # SageMaker's resource types for IAM ("Actions, resources, and condition keys for Amazon
    # SageMaker AI"); a new model package version is `model-package/<group>/<version>`.
    "DescribeEndpoint": ("endpoint", "EndpointName"),
    "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DescribeTrainingJob": ("training-job", "TrainingJobName"),
    "CreateAutoMLJob": ("automl-job", "AutoMLJobName"),
}


PASSED_TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}


def machine_needs(stack: render.RenderedStack) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(action, resource, request context) for each call the state machine makes."""
    _, calls = execute(stack)
    region, account = "us-east-1", "123456789012"
    for call in calls:
        shape = api_shape(call.resource)
        parameters = call.parameters
        if shape.service == "s3":
            bucket, key = parameters["Bucket"], parameters["Key"]
            yield f"s3:{shape.operation}", f"arn:aws:s3:::{bucket}/{key}", {}
        elif shape.operation == "CreateModelPackage":
            group = parameters["ModelPackageGroupName"]
            arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/1"
            yield "sagemaker:CreateModelPackage", arn, {}
        elif shape.sdk:
            kind, field = SDK_RESOURCES[shape.operation]
            arn = f"arn:aws:sagemaker:{region}:{account}:{kind}/{parameters[field].lower()}"
            yield f"sagemaker:{shape.operation}", arn, {}
            if "RoleArn" in parameters:
                yield "iam:PassRole", parameters["RoleArn"], PASSED_TO_SAGEMAKER
        else:
            kind, rule, actions = SYNC_ACTIONS[shape.operation]
            name = next(v for k, v in parameters.items() if k.endswith("JobName"))
            job = f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"
            for action in (*actions, "AddTags", "ListTags"):
                yield f"sagemaker:{action}", job, {}
            for action in ("PutTargets", "PutRule", "DescribeRule"):
                yield f"events:{action}", f"arn:aws:events:{region}:{account}:rule/{rule}", {}
            role = parameters.get("RoleArn") or parameters.get("TrainingJobDefinition", {}).get(
                "RoleArn"
            )
            if role:
                yield "iam:PassRole", role, PASSED_TO_SAGEMAKER


@pytest.mark.parametrize(
    "stack", RUNNING, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in RUNNING]
)
def test_the_state_machine_role_allows_every_call_it_makes(stack: render.RenderedStack) -> None:
    model = DeployedModel(stack)
    policy = role_policy(model, "StateMachineRole")
    refused = [f"{a} on {r}" for a, r, c in machine_needs(stack) if not policy.allows(a, r, c)]
    assert refused == []


# The assets bucket's KMS key -----------------------------------------------------------------

ASSETS = "mlops-assets-example"
KEY_REGION = "eu-west-1"
"""The orchestrator's region, where the bucket and its key are (and the stage, which must be
in it); the stacks' model resolves `AWS::Region` to us-east-1, so a statement naming the
stack's own region instead of the key's would fail."""
ASSETS_KEY = f"arn:aws:kms:{KEY_REGION}:123456789012:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
THROUGH_S3 = {"kms:ViaService": f"s3.{KEY_REGION}.amazonaws.com"}
"""What KMS sees when S3 decrypts an object for the reader."""


def staged_stacks(key: str | None) -> tuple[render.RenderedStack, ...]:
    """The hostile example and its variants as a one-stage config of an orchestrator in
    KEY_REGION: the image builder's stack in the orchestrator account, the rest in the stage."""
    pipelines = [
        *example_config_document()["pipelines"],
        *[p for p in hostile_document()["pipelines"] if p["model_name"].startswith("registry")],
    ]
    settings = {
        "assets_bucket": ASSETS,
        "region": KEY_REGION,
        "stages": [
            {
                "name": "prod",
                "account_id": "333333333333",
                "role_arn": "arn:aws:iam::333333333333:role/mlops-controller-stage",
            }
        ],
    }
    if key is not None:
        settings["assets_kms_key_arn"] = key
    config = load_document({"settings": settings, "pipelines": pipelines})
    (stage,) = config.stages
    return render.render_all(config) + render.render_all(stage)


def asset_reads(stack: render.RenderedStack) -> list[Access]:
    return [a for a in accesses(stack) if a.action == "s3:GetObject" and a.bucket == ASSETS]


KEYED_STACKS = staged_stacks(ASSETS_KEY)


@pytest.mark.parametrize(
    "stack", KEYED_STACKS, ids=[s.stack_name.removeprefix("mlops-pipeline-") for s in KEYED_STACKS]
)
def test_every_object_a_stage_reads_from_the_assets_bucket_may_be_decrypted_by_its_role(
    stack: render.RenderedStack,
) -> None:
    model = DeployedModel(stack)
    refused = [
        f"{a.role} kms:Decrypt for {a.arn} ({a.what})"
        for a in asset_reads(stack)
        if not role_policy(model, a.role).allows("kms:Decrypt", ASSETS_KEY, THROUGH_S3)
        or not role_policy(model, a.role).allows(a.action, a.arn)
    ]
    assert refused == []


def test_the_reads_of_the_assets_bucket_are_found_in_every_pipeline_type() -> None:
    """The check above is not vacuous: each type reads something from the assets bucket (the
    batch and realtime models, a registered one, the baselines, Clarify's configuration, a
    SHAP baseline, the image builder's zip), by the role named in the stack."""
    reads = {(s.pipeline.type, a.role, a.what) for s in KEYED_STACKS for a in asset_reads(s)}
    assert {t for t, _, _ in reads} == {s.pipeline.type for s in KEYED_STACKS}
    assert len({t for t, _, _ in reads}) == 9
    assert {r for _, r, _ in reads} == {"SageMakerRole", "StateMachineRole", "PipelineRole"}
    assert {w for _, _, w in reads} >= {"the model artifact", "package", "the zip", "SHAP baseline"}


def test_without_the_key_setting_no_role_may_decrypt_the_assets() -> None:
    """The check can fail: the same stacks without settings.assets_kms_key_arn (and with a
    statement that names the stack's region instead of the key's) are refused."""
    for stack in staged_stacks(None):
        model = DeployedModel(stack)
        reads = asset_reads(stack)
        assert reads
        assert not any(
            role_policy(model, a.role).allows("kms:Decrypt", ASSETS_KEY, THROUGH_S3) for a in reads
        )
    stack = next(s for s in KEYED_STACKS if s.pipeline.type == "byom_realtime_builtin")
    wrong = replace(
        stack,
        template_body=stack.template_body.replace(
            "s3.${KeyRegion}.${AWS::URLSuffix}", "s3.${AWS::Region}.${AWS::URLSuffix}"
        ),
    )
    assert wrong.template_body != stack.template_body
    (read,) = asset_reads(wrong)
    assert not role_policy(DeployedModel(wrong), read.role).allows(
        "kms:Decrypt", ASSETS_KEY, THROUGH_S3
    )
