"""Training pipelines: the original's three request bodies validate as it accepted them, a
stack starts the job once per config on the emulator, and training stays in the orchestrator
account when the config has stages."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from controller.aws import session as aws_module
from controller.aws.demo_world import seed
from controller.cli.main import main
from controller.core import render
from controller.core.config.load import LoadResult, load
from tests.conftest import commit_config, repo_with

EXAMPLE = Path(__file__).parent.parent / "examples" / "training-config.json"
SETTINGS = {"assets_bucket": "mlops-assets-example", "region": "us-east-1"}


def original_body(pipeline_type: str) -> dict[str, Any]:
    """`api_training_event` of the original's tests (orchestrator_fixtures.py), with the
    framework keys its test patched out of the image lookup."""
    body: dict[str, Any] = {
        "pipeline_type": pipeline_type,
        "model_name": "testmodel",
        "job_name": "test-job",
        "training_data": "train/data.csv",
        "target_attribute": "target",
        "job_output_location": "training-output",
        "algo_hyperparamaters": {
            "eval_metric": "auc",
            "objective": "binary:logistic",
            "num_round": 400,
            "rate_drop": 0.3,
        },
        "tuner_configs": {
            "early_stopping_type": "Auto",
            "objective_metric_name": "validation:auc",
            "strategy": "Bayesian",
            "objective_type": "Maximize",
            "max_jobs": 10,
            "max_parallel_jobs": 2,
        },
        "hyperparamaters_ranges": {
            "eta": ["continuous", [0.1, 0.5]],
            "gamma": ["continuous", [0, 5]],
            "min_child_weight": ["continuous", [0, 120]],
            "max_depth": ["integer", [1, 15]],
            "optimizer": ["categorical", ["sgd", "Adam"]],
        },
    }
    keys = {
        "model_autopilot_training": (
            "pipeline_type",
            "model_name",
            "job_name",
            "training_data",
            "target_attribute",
            "job_output_location",
        ),
        "model_training_builtin": (
            "pipeline_type",
            "model_name",
            "job_name",
            "training_data",
            "job_output_location",
            "algo_hyperparamaters",
        ),
    }
    kept = keys.get(pipeline_type, tuple(k for k in body if k != "target_attribute"))
    found = {k: body[k] for k in kept}
    if pipeline_type != "model_autopilot_training":
        found |= {"model_framework": "xgboost", "model_framework_version": "1.7-1"}
    return found


def validated(*pipelines: dict[str, Any], **settings: Any) -> LoadResult:
    document = {"settings": {**SETTINGS, **settings}, "pipelines": list(pipelines)}
    return load(json.dumps(document).encode(), "mlops-config.json", environ={})


@pytest.mark.parametrize(
    "pipeline_type", ["model_training_builtin", "model_tuner_builtin", "model_autopilot_training"]
)
def test_the_originals_bodies_validate_and_render(pipeline_type: str) -> None:
    result = validated(original_body(pipeline_type))
    assert result.config is not None, [d.format() for d in result.diagnostics]
    (stack,) = render.render_all(result.config)
    assert stack.stack_name == f"mlops-pipeline-testmodel-{stack.pipeline.kind.postfix}"
    assert stack.run is not None and stack.run.execution_name.startswith("test-job-")


def test_the_originals_string_values_are_accepted() -> None:
    """The original passed these through as text: "True"/"False", counts as digits."""
    body = original_body("model_training_builtin") | {
        "use_spot_instances": "False",
        "encrypt_inner_traffic": "True",
        "instance_count": "2",
        "max_runtime_per_job": "3600",
        "attribute_names": '["source-ref", "class"]',
        "s3_data_type": "AugmentedManifestFile",
    }
    result = validated(body)
    assert result.config is not None, [d.format() for d in result.diagnostics]
    request = json.loads(dict(render.render_all(result.config)[0].parameters)["JobRequest"])
    assert request["EnableManagedSpotTraining"] is False
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    source = request["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["AttributeNames"] == ["source-ref", "class"]


@pytest.mark.parametrize(
    ("change", "path", "code"),
    [
        ({"use_spot_instances": "yes"}, "$.pipelines[0].use_spot_instances", "S106"),
        ({"hyperparamaters_ranges": {"eta": ["continuous", [0.5, 0.1]]}}, "eta", "C110"),
        ({"hyperparamaters_ranges": {"eta": ["uniform", [0.1, 0.5]]}}, "eta", "C110"),
        ({"tuner_configs": {"max_jobs": 3}}, "objective_metric_name", "S101"),
        ({"algo_hyperparamaters": {"x": [1]}}, "algo_hyperparamaters", "S"),
        ({"model_framework_version": "9.9"}, "model_framework_version", "C104"),
        ({"instance_count": 0}, "instance_count", "S"),
    ],
)
def test_bad_training_values_name_the_key(change: dict[str, Any], path: str, code: str) -> None:
    body = original_body("model_tuner_builtin") | change
    result = validated(body)
    assert result.config is None
    assert any(path in d.path and d.code.startswith(code) for d in result.errors), [
        d.format() for d in result.errors
    ]


def test_autopilot_takes_an_objective_only_with_a_problem_type() -> None:
    body = original_body("model_autopilot_training") | {"job_objective": "F1"}
    result = validated(body)
    assert result.config is None
    assert any(d.path.endswith("job_objective") for d in result.errors)
    both = validated(body | {"problem_type": "BinaryClassification"})
    assert both.config is not None
    (stack,) = render.render_all(both.config)
    assert dict(stack.parameters)["ProblemType"] == "BinaryClassification"


def test_with_stages_training_runs_once_in_the_orchestrator_account() -> None:
    """The original's rule: training pipelines are deployed where the orchestrator is."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document["settings"]["stages"] = [
        {
            "name": name,
            "account_id": account,
            "role_arn": f"arn:aws:iam::{account}:role/mlops-controller-stage",
        }
        for name, account in (("dev", "111111111111"), ("prod", "333333333333"))
    ]
    result = load(json.dumps(document).encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    orchestrator = {p.type for p in result.config.pipelines}
    assert orchestrator == {
        "model_training_builtin",
        "model_tuner_builtin",
        "model_autopilot_training",
    }
    for stage in result.config.stages:
        assert [p.type for p in stage.pipelines] == ["byom_realtime_builtin"]
    per_stage = copy.deepcopy(document)
    per_stage["pipelines"][0]["instance_type"] = {"dev": "ml.m5.large", "prod": "ml.m5.xlarge"}
    refused = load(json.dumps(per_stage).encode(), "mlops-config.json", environ={})
    assert any(d.code == "C204" for d in refused.errors)


def test_apply_starts_each_job_once_and_a_second_apply_changes_nothing(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document["pipelines"] = [p for p in document["pipelines"] if "model_package_name" not in p]
    seed(aws_module.Aws(region="us-east-1"), SETTINGS["assets_bucket"], document)
    repo = repo_with(tmp_path / "repo", document, "train")
    where = ["--repo", str(repo.working_dir)]

    assert main(["apply", "--auto-approve", *where]) == 0
    out = capsys.readouterr().out
    assert out.count("training") >= 3

    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    started = {}
    for stack in cfn.describe_stacks()["Stacks"]:
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        executions = stepfunctions.list_executions(stateMachineArn=outputs["RunStateMachineArn"])
        started[stack["StackName"]] = [e["name"] for e in executions["executions"]]
        assert started[stack["StackName"]] == [outputs["JobName"]]
        assert outputs["TransformStarted"] == outputs["JobName"]
    assert len(started) == 3

    assert main(["plan", *where, "--output", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {c["action"] for c in plan["changes"]} <= {"unchanged"}

    document["pipelines"] = document["pipelines"][:2]
    commit_config(repo, document, "retire the Autopilot pipeline")
    assert main(["apply", "--auto-approve", *where]) == 0
    remaining = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
    assert remaining == set(started) - {"mlops-pipeline-churn-auto-autopilottraining"}


def test_status_and_history_show_the_model_each_pipeline_runs_and_its_origin(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployed version, and the job that trained it, as the registry records it."""
    document: dict[str, Any] = json.loads(EXAMPLE.read_text())
    document["pipelines"] = [
        p
        for p in document["pipelines"]
        if p["pipeline_type"] in ("byom_realtime_builtin", "model_training_builtin")
    ]
    seed(aws_module.Aws(region="us-east-1"), SETTINGS["assets_bucket"], document)
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="churn")
    package = sagemaker.create_model_package(
        ModelPackageGroupName="churn",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                    "ModelDataUrl": "s3://mlops-assets-example/training-output/m/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"TrainingJobName": "test-job-58057a024c"},
    )["ModelPackageArn"]
    deployed = next(p for p in document["pipelines"] if "model_package_name" in p)
    assert deployed["model_package_name"] == package
    repo = repo_with(tmp_path / "repo", document, "serve churn v1")
    where = ["--repo", str(repo.working_dir)]
    assert main(["apply", "--auto-approve", *where]) == 0
    capsys.readouterr()

    assert main(["status", *where, "-o", "json"]) == 0
    models = {r["name"]: r["model"] for r in json.loads(capsys.readouterr().out)["pipelines"]}
    assert models["mlops-pipeline-churn-byompipelinerealtimebuiltin"] == (
        "registry churn v1 (trained by test-job-58057a024c)"
    )
    trains = models["mlops-pipeline-churn-xgb-modeltraining"]
    assert trains.startswith("trains test-job-") and trains.endswith("registers in churn")

    assert main(["history", *where, "-o", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["applies"]
    recorded = {s["stack_name"]: s["model"] for s in record["stacks"]}
    assert recorded["mlops-pipeline-churn-byompipelinerealtimebuiltin"] == "registry churn v1"
    assert "arn:" not in json.dumps(record)  # names and versions; never a parameter value


def test_with_the_assets_key_the_roles_that_write_there_may_encrypt() -> None:
    """Artifacts, checkpoints and metrics go to the assets bucket, which its KMS key encrypts:
    S3 asks KMS for a data key as the writer."""
    from tests import iam
    from tests.stack_model import DeployedModel
    from tests.test_state_machines import role_policy

    key = "arn:aws:kms:us-east-1:123456789012:key/0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
    through_s3 = {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    keyed = validated(
        original_body("model_training_builtin") | {"model_package_group_name": "g"},
        assets_kms_key_arn=key,
    )
    plain = validated(original_body("model_training_builtin") | {"model_package_group_name": "g"})
    assert keyed.config is not None and plain.config is not None
    for config, allowed in ((keyed.config, True), (plain.config, False)):
        (stack,) = render.render_all(config)
        model = DeployedModel(stack)
        for role in ("SageMakerRole", "StateMachineRole"):
            policy: iam.Policy = role_policy(model, role)
            assert policy.allows("kms:GenerateDataKey", key, through_s3) is allowed, role
