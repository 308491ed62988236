"""One reconcile: render what the config wants, discover what AWS has, plan, pre-flight.

The only module that wires the pure core to the world, in the one-way order
source -> config -> render -> discover -> plan -> pre-flight; applying is the caller's choice.
"""

from __future__ import annotations

from controller import preflight
from controller.aws import Aws
from controller.config.model import Config
from controller.discover import discover
from controller.plan import Guards, Plan, PlanInput, make_plan, with_preflight
from controller.render import render_all


def plan_for(config: Config, aws: Aws, guards: Guards) -> Plan:
    desired = render_all(config)
    deployed = discover(aws.client("cloudformation"))
    plan = make_plan(
        PlanInput(desired, deployed, config.settings.controller_id, config.revision, guards)
    )
    return with_preflight(plan, preflight.check(plan, aws.client("s3")))


def guards_for(config: Config, allow_delete_all: bool) -> Guards:
    return Guards(allow_delete_all=allow_delete_all, max_deletes=config.settings.max_deletes)
