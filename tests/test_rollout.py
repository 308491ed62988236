"""Safe rollout of realtime endpoints (docs/rollout.md): every key validates with SageMaker's
exclusions, renders into the endpoint's shape, and the plan says how an update goes out; a
change of deployment settings alone is an in-place update, never a replacement."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from controller.core import intrinsics, render
from controller.core.config import load
from controller.core.plan import Action
from controller.present.report import plan_json, plan_markdown
from tests.test_plan import deployed_from, desired, plan_of
from tests.test_render import rollout_document


def _document(**changes: Any) -> dict[str, Any]:
    """The rollout document with the canary pipeline's keys changed (None drops a key)."""
    data = copy.deepcopy(rollout_document())
    canary = data["pipelines"][0]
    for key, value in changes.items():
        if value is None:
            canary.pop(key, None)
        else:
            canary[key] = value
    return data


def _problems(data: dict[str, Any]) -> dict[str, str]:
    result = load(json.dumps(data).encode(), "mlops-config.json", environ={})
    return {d.path: f"{d.code} {d.message}" for d in result.diagnostics}


def _canary(data: dict[str, Any]) -> render.RenderedStack:
    return next(s for s in desired(data) if "ro-canary" in s.stack_name)


def test_every_rollout_key_validates_and_reaches_the_template_as_parameters() -> None:
    stacks = {s.pipeline.name: s for s in desired(rollout_document())}
    canary = intrinsics.load(stacks["ro-canary"].template_body)["Resources"]
    policy = canary["Endpoint"]["Properties"]["DeploymentConfig"]
    routing = policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["CanarySize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": {"Ref": "DeploymentStepPercent"},
    }
    assert policy["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": {"Ref": "RollbackAlarm1"}},
        {"AlarmName": {"Ref": "RollbackAlarm2"}},
    ]
    assert canary["Endpoint"]["Properties"]["RetainAllVariantProperties"] is True
    assert canary["ScalableTarget"]["Properties"]["MinCapacity"] == {"Ref": "MinInstances"}
    assert canary["Model"]["Properties"]["VpcConfig"]["Subnets"] == {
        "Fn::Split": [",", {"Ref": "VpcSubnetIds"}]
    }
    values = dict(stacks["ro-canary"].parameters)
    assert values["TrafficRoutingType"] == "CANARY"
    assert values["RollbackAlarm2"] == "churn-latency-p99"
    assert values["VpcSubnetIds"] == "subnet-0a1b2c3d,subnet-4e5f6a7b"
    assert values["InstanceCount"] == "2"

    rolling = intrinsics.load(stacks["ro-rolling"].template_body)["Resources"]
    assert "RollingUpdatePolicy" in rolling["Endpoint"]["Properties"]["DeploymentConfig"]

    serverless = intrinsics.load(stacks["ro-serverless"].template_body)
    variant = serverless["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"][0]
    assert "InstanceType" not in variant and "ServerlessConfig" in variant
    assert "InferenceInstance" not in serverless["Parameters"]
    assert "DataCaptureConfig" not in serverless["Resources"]["EndpointConfig"]["Properties"]

    minimal = dict(stacks["ro-async-min"].parameters)
    assert minimal["AsyncFailureBucket"] == minimal["SuccessTopicArn"] == ""


def test_a_deployed_stack_reads_its_rollout_shape_back() -> None:
    for stack in desired(rollout_document()):
        shape = render.shape_for_parameters(stack.pipeline.type, dict(stack.parameters))
        assert shape == stack.shape, stack.stack_name


@pytest.mark.parametrize(
    ("changes", "path", "code"),
    [
        (
            {
                "autoscaling": {
                    "min_instances": 5,
                    "max_instances": 2,
                    "target_invocations_per_instance": 9,
                }
            },
            "$.pipelines[0].autoscaling.min_instances",
            "R101",
        ),
        ({"instance_count": 12}, "$.pipelines[0].instance_count", "R102"),
        (
            {"deployment": {"strategy": "linear", "canary_percent": 10}},
            "$.pipelines[0].deployment.canary_percent",
            "S",
        ),
        (
            {"deployment": {"strategy": "rolling", "termination_wait_seconds": 60}},
            "$.pipelines[0].deployment.termination_wait_seconds",
            "S",
        ),
        (
            {"deployment": {"strategy": "canary", "rollback_alarms": [f"a{i}" for i in range(11)]}},
            "$.pipelines[0].deployment.rollback_alarms",
            "S",
        ),
        (
            {"serverless": {"memory_size_mb": 2048, "max_concurrency": 5}},
            "$.pipelines[0].inference_instance",
            "S",
        ),
    ],
)
def test_sagemaker_exclusions_are_errors_at_their_key(
    changes: dict[str, Any], path: str, code: str
) -> None:
    found = _problems(_document(**changes))
    assert path in found, found
    assert found[path].startswith(code)


def test_a_rolling_update_of_a_serverless_endpoint_and_too_much_provisioned_concurrency() -> None:
    data = copy.deepcopy(rollout_document())
    serverless = next(p for p in data["pipelines"] if p["model_name"] == "ro-serverless")
    serverless["deployment"] = {"strategy": "rolling"}
    serverless["serverless"]["provisioned_concurrency"] = 50
    found = _problems(data)
    assert found["$.pipelines[4].deployment.strategy"].startswith("R103")
    assert found["$.pipelines[4].serverless.provisioned_concurrency"].startswith("R104")


def test_an_inf1_canary_is_a_warning_that_it_falls_back_to_all_at_once() -> None:
    found = _problems(_document(inference_instance="ml.inf1.xlarge"))
    assert found["$.pipelines[0].deployment.strategy"].startswith("W104")


def test_no_monitor_may_watch_a_serverless_endpoint() -> None:
    data = copy.deepcopy(rollout_document())
    example = json.loads(json.dumps(data))
    from tests.test_render import _by_type, _example

    monitor = _by_type(_example(), "byom_data_quality_monitor")
    monitor["endpoint_name"] = "ro-serverless"
    example["pipelines"].append(monitor)
    found = _problems(example)
    assert found[f"$.pipelines[{len(example['pipelines']) - 1}].endpoint_name"].startswith("C108")


def test_rollout_values_may_differ_per_stage() -> None:
    data = _document(
        deployment={"dev": {"strategy": "all_at_once"}, "prod": {"strategy": "canary"}}
    )
    data["settings"]["stages"] = [
        {"name": name, "account_id": account, "role_arn": f"arn:aws:iam::{account}:role/deploy"}
        for name, account in (("dev", "111111111111"), ("prod", "222222222222"))
    ]
    result = load(json.dumps(data).encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    dev, prod = (
        next(s for s in render.render_all(stage) if "ro-canary" in s.stack_name)
        for stage in result.config.stages
    )
    assert (dev.shape.deployment, prod.shape.deployment) == ("all_at_once", "canary")


def test_a_change_of_deployment_settings_alone_is_an_in_place_update() -> None:
    before = _canary(rollout_document())
    after = _canary(
        _document(deployment={"strategy": "canary", "canary_percent": 25, "rollback_alarms": ["x"]})
    )
    plan = plan_of([after], [deployed_from(before)])
    (action,) = plan.actions
    assert action.action is Action.UPDATE
    assert action.replacements == ()
    assert action.endpoint_rollout == "in place, deployment settings only (no new fleet)"


def test_the_plan_says_how_a_new_model_goes_out() -> None:
    before = _canary(rollout_document())
    after = _canary(_document(model_artifact_location="linearlearner/v2/model.tar.gz"))
    plan = plan_of([after], [deployed_from(before)])
    (action,) = plan.actions
    assert action.action is Action.UPDATE
    assert "Endpoint" not in {r.logical_id for r in action.replacements}
    expected = "in place, canary 10 % then the rest after 10 min, rolls back on 2 alarms"
    assert action.endpoint_rollout == expected
    assert plan_json(plan)["changes"][0]["endpoint_rollout"] == expected
    assert f"endpoint: {expected}" in plan_markdown(plan)


def test_the_plan_says_when_the_endpoint_is_replaced() -> None:
    before = _canary(rollout_document())
    after = _canary(_document(endpoint_name="ro-canary-2"))
    (action,) = plan_of([after], [deployed_from(before)]).actions
    assert action.endpoint_rollout.startswith("replaced")


def test_enabling_autoscaling_or_an_instance_count_keeps_the_endpoint() -> None:
    data = copy.deepcopy(rollout_document())
    linear = data["pipelines"][1]
    before = next(s for s in desired(data) if "ro-linear" in s.stack_name)
    linear["instance_count"] = 2
    linear["autoscaling"] = {
        "min_instances": 2,
        "max_instances": 4,
        "target_invocations_per_instance": 50,
    }
    after = next(s for s in desired(data) if "ro-linear" in s.stack_name)
    (action,) = plan_of([after], [deployed_from(before)]).actions
    assert action.action is Action.UPDATE
    assert "Endpoint" not in {r.logical_id for r in action.replacements}
    assert action.endpoint_rollout.startswith("in place, linear 20 % every 10 min")


def test_the_production_config_of_the_documentation_is_valid() -> None:
    text = (Path(__file__).parent.parent / "docs" / "rollout.md").read_text()
    block = text.split("```json\n", 1)[1].split("```", 1)[0]
    result = load(block.encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    prod = result.config.stages[-1]
    (stack,) = render.render_all(prod)
    assert stack.shape.deployment == "canary" and stack.shape.rollback_alarms == 2
    staging = result.config.stages[1].stage
    assert staging is not None and staging.promote_after is not None
