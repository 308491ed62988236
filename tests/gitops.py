"""Helpers for the GitOps tests: a one-pipeline config and an emulated account that can run it."""

from __future__ import annotations

import copy
from typing import Any

import boto3

from controller.aws.demo_world import seed
from controller.aws.session import Aws

REALTIME = "mlops-pipeline-linearlearner-byompipelinerealtimebuiltin"
BATCH = "mlops-pipeline-linearlearner-byompipelinebatchbuiltin"


def small_config(example: dict[str, Any]) -> dict[str, Any]:
    """The example's realtime endpoint alone: quick to apply, enough to see a change."""
    config = copy.deepcopy(example)
    config["pipelines"] = [
        p for p in config["pipelines"] if p["pipeline_type"] == "byom_realtime_builtin"
    ]
    return config


def seed_account(example: dict[str, Any]) -> Aws:
    aws = Aws(region="us-east-1")
    seed(aws, example["settings"]["assets_bucket"], example)
    return aws


def stack_names() -> set[str]:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}


def instance_type(stack_name: str) -> str:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    return next(v for v in values.values() if v.startswith("ml."))
