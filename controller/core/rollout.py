"""How a realtime endpoint is sized and how its updates go out: the optional `instance_count`,
`autoscaling`, `deployment`, `serverless`, `async_inference` and `vpc` keys, read once into
dataclasses. Pure.

Every key is optional and an absent key leaves the template exactly as it was, so the shape
switches here are all "off" by default. SageMaker's deployment guardrails have exclusions
that only show once an update runs (a rolling update of a serverless endpoint fails, an Inf1
variant silently shifts all traffic at once): `problems` reports them before anything is
written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from controller.core.diagnostics import Diagnostic, error, warning

KEYS = ("instance_count", "autoscaling", "deployment", "serverless", "async_inference", "vpc")
"""The pipeline keys this module reads (realtime pipelines only)."""

STRATEGIES = ("all_at_once", "canary", "linear", "rolling")
TRAFFIC_ROUTING = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
"""Blue/green strategies and their `TrafficRoutingConfiguration.Type`."""

DEFAULT_WAIT_SECONDS = 600
"""Between steps of a canary, linear or rolling update when `wait_seconds` is not given."""

GUARDRAIL_FALLBACK = ("ml.inf1.",)
"""Instance families whose updates SageMaker shifts all at once whatever the strategy."""

MAX_ROLLBACK_ALARMS = 10


@dataclass(frozen=True)
class Deployment:
    strategy: str
    step_percent: int | None
    """canary_percent, linear_step_percent or rolling_batch_percent, for that strategy."""
    wait_seconds: int | None
    rollback_alarms: tuple[str, ...]
    termination_wait_seconds: int | None
    max_execution_seconds: int | None

    @property
    def blue_green(self) -> bool:
        return self.strategy in TRAFFIC_ROUTING

    def describe(self) -> str:
        """What a reader of the plan needs: "canary 10 % then the rest after 10 min, rolls
        back on 2 alarms"."""
        wait = _duration(self.wait_seconds)
        if self.strategy == "canary":
            text = f"canary {self.step_percent} % then the rest after {wait}"
        elif self.strategy == "linear":
            text = f"linear {self.step_percent} % every {wait}"
        elif self.strategy == "rolling":
            text = f"rolling {self.step_percent} % of the instances at a time, {wait} apart"
        else:
            text = "blue/green all at once"
            if self.wait_seconds:
                text += f", old fleet kept {wait}"
        count = len(self.rollback_alarms)
        if count:
            text += f", rolls back on {count} alarm{'s' if count > 1 else ''}"
        return text


@dataclass(frozen=True)
class Autoscaling:
    min_instances: int
    max_instances: int
    target_invocations_per_instance: float


@dataclass(frozen=True)
class Serverless:
    memory_size_mb: int
    max_concurrency: int
    provisioned_concurrency: int | None


@dataclass(frozen=True)
class Rollout:
    """The rollout keys of one realtime pipeline; None or 0 where a key is absent."""

    instance_count: int | None
    autoscaling: Autoscaling | None
    deployment: Deployment | None
    serverless: Serverless | None
    async_inference: Mapping[str, Any] | None
    vpc: Mapping[str, Any] | None

    def describe_update(self) -> str:
        """How an in-place update of the endpoint goes out."""
        described = self.deployment.describe() if self.deployment else "blue/green all at once"
        return f"in place, {described}"


def of(values: Mapping[str, Any]) -> Rollout:
    """The rollout of a pipeline whose values the schema accepted."""
    deployment = values.get("deployment")
    scaling = values.get("autoscaling")
    serverless = values.get("serverless")
    count = values.get("instance_count")
    return Rollout(
        instance_count=int(count) if count is not None else None,
        autoscaling=Autoscaling(
            int(scaling["min_instances"]),
            int(scaling["max_instances"]),
            float(scaling["target_invocations_per_instance"]),
        )
        if scaling
        else None,
        deployment=_deployment(deployment) if deployment else None,
        serverless=Serverless(
            int(serverless["memory_size_mb"]),
            int(serverless["max_concurrency"]),
            _int(serverless.get("provisioned_concurrency")),
        )
        if serverless
        else None,
        async_inference=values.get("async_inference"),
        vpc=values.get("vpc"),
    )


def _deployment(raw: Mapping[str, Any]) -> Deployment:
    strategy = str(raw["strategy"])
    step = {"canary": "canary_percent", "linear": "linear_step_percent"}.get(
        strategy, "rolling_batch_percent"
    )
    wait = _int(raw.get("wait_seconds"))
    if wait is None and strategy != "all_at_once":
        wait = DEFAULT_WAIT_SECONDS
    default_step = {"canary": 10, "linear": 10, "rolling": 25}.get(strategy)
    return Deployment(
        strategy=strategy,
        step_percent=_int(raw.get(step, default_step)) if strategy != "all_at_once" else None,
        wait_seconds=wait,
        rollback_alarms=tuple(str(a) for a in raw.get("rollback_alarms", ())),
        termination_wait_seconds=_int(raw.get("termination_wait_seconds")),
        max_execution_seconds=_int(raw.get("max_execution_seconds")),
    )


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _duration(seconds: int | None) -> str:
    if not seconds:
        return "0 s"
    if seconds % 60:
        return f"{seconds} s"
    return f"{seconds // 60} min"


def problems(rollout: Rollout, values: Mapping[str, Any], path: str) -> Iterator[Diagnostic]:
    """SageMaker's exclusions the schema cannot express, with codes R1xx (rollout)."""
    scaling, deployment = rollout.autoscaling, rollout.deployment
    if scaling is not None:
        if scaling.min_instances > scaling.max_instances:
            yield error(
                "R101",
                f"{path}.autoscaling.min_instances",
                f"min_instances {scaling.min_instances} is above max_instances "
                f"{scaling.max_instances}",
                "min_instances <= max_instances",
            )
        count = rollout.instance_count or 1
        if not scaling.min_instances <= count <= scaling.max_instances:
            yield error(
                "R102",
                f"{path}.instance_count",
                f"instance_count {count} is outside the autoscaling range "
                f"{scaling.min_instances}..{scaling.max_instances}",
                "an initial instance count between min_instances and max_instances",
            )
    serverless = rollout.serverless
    if serverless is not None and deployment is not None and deployment.strategy == "rolling":
        yield error(
            "R103",
            f"{path}.deployment.strategy",
            "a rolling update is not available for a serverless endpoint",
            "all_at_once, canary or linear",
        )
    if (
        serverless is not None
        and serverless.provisioned_concurrency is not None
        and serverless.provisioned_concurrency > serverless.max_concurrency
    ):
        yield error(
            "R104",
            f"{path}.serverless.provisioned_concurrency",
            f"provisioned_concurrency {serverless.provisioned_concurrency} is above "
            f"max_concurrency {serverless.max_concurrency}",
            "at most max_concurrency",
        )
    instance = str(values.get("inference_instance", ""))
    if (
        deployment is not None
        and deployment.strategy != "all_at_once"
        and instance.startswith(GUARDRAIL_FALLBACK)
    ):
        yield warning(
            "W104",
            f"{path}.deployment.strategy",
            f"SageMaker updates {instance} endpoints all at once: the {deployment.strategy} "
            "strategy falls back to all_at_once",
            "all_at_once, or an instance family other than Inf1",
        )
    if (
        deployment is not None
        and deployment.strategy == "rolling"
        and (rollout.instance_count or 1) < 2
        and scaling is None
        and serverless is None
    ):
        yield warning(
            "W105",
            f"{path}.deployment.strategy",
            "a rolling update of a single instance replaces it in one batch, with no capacity "
            "left while it does",
            "instance_count of 2 or more, or a blue/green strategy",
        )


DEPLOYMENT_PARAMETERS = frozenset(
    {
        "TrafficRoutingType",
        "DeploymentStepPercent",
        "DeploymentWaitSeconds",
        "TerminationWaitSeconds",
        "MaxExecutionSeconds",
    }
)
"""Parameters of the endpoint's DeploymentConfig (and the RollbackAlarm<n>)."""


def describe_change(rollout: Rollout, replaced: frozenset[str], changed: frozenset[str]) -> str:
    """How an update of a realtime stack reaches its endpoint, for the plan: "replaced", "in
    place, canary 10 % then the rest after 10 min, rolls back on 2 alarms", or "" when the
    endpoint is not touched. `replaced` holds the logical ids the update replaces, `changed`
    the parameters it changes."""
    if "Endpoint" in replaced:
        return "replaced: a new endpoint, callers of the old one lose it"
    if "EndpointConfig" in replaced:
        return rollout.describe_update()
    if any(k in DEPLOYMENT_PARAMETERS or k.startswith("RollbackAlarm") for k in changed):
        return "in place, deployment settings only (no new fleet)"
    return ""
