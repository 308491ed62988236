"""What CloudWatch and SageMaker say about a stage: alarm states and monitoring violations.

Two readers need them: the applier, to name the alarm that rolled an endpoint update back,
and a stage's `promote_after` gate (`core.gates.verify`), which judges them. Reads only: one
paginated DescribeAlarms for any number of alarms, one paginated ListMonitoringExecutions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from controller.aws.errors import SDK_ERRORS
from controller.aws.session import Aws
from controller.core.config.model import PromoteAfter
from controller.core.errors import AwsError
from controller.core.gates import AlarmState, Evidence, Violation
from controller.core.redact import redact

ALARM_NAMES_PER_CALL = 100
"""DescribeAlarms accepts at most 100 names."""


def alarm_states(cloudwatch: Any, names: Iterable[str]) -> tuple[AlarmState, ...]:
    """The named alarms that exist (metric and composite), in no particular order."""
    wanted = sorted(set(names))
    found: list[AlarmState] = []
    for start in range(0, len(wanted), ALARM_NAMES_PER_CALL):
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=wanted[start : start + ALARM_NAMES_PER_CALL],
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
        for page in pages:
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found.append(
                    AlarmState(
                        alarm["AlarmName"], alarm["StateValue"], alarm["StateUpdatedTimestamp"]
                    )
                )
    return tuple(found)


def fired_since(cloudwatch: Any, names: Iterable[str], since: datetime) -> tuple[str, ...]:
    """Rollback alarms that are in ALARM, or that changed state since `since` (they fired and
    already recovered): the ones that stopped an update started then."""
    return tuple(
        sorted(
            a.name
            for a in alarm_states(cloudwatch, names)
            if a.state == "ALARM" or a.changed >= since
        )
    )


def violations(
    sagemaker: Any, since: datetime, schedules: Collection[str]
) -> tuple[Violation, ...]:
    """Monitoring executions of `schedules` that completed with violations since `since`."""
    if not schedules:
        return ()
    pages = sagemaker.get_paginator("list_monitoring_executions").paginate(
        CreationTimeAfter=since, StatusEquals="CompletedWithViolations"
    )
    return tuple(
        Violation(item["MonitoringScheduleName"], item.get("ScheduledTime") or item["CreationTime"])
        for page in pages
        for item in page.get("MonitoringExecutionSummaries", [])
        if item.get("MonitoringScheduleName") in schedules
    )


def evidence(aws: Aws, rule: PromoteAfter, since: datetime, schedules: Collection[str]) -> Evidence:
    """Everything `verify` needs about one stage, from its own account; `AwsError` when it
    cannot be read."""
    try:
        alarms = alarm_states(aws.client("cloudwatch"), rule.alarms) if rule.alarms else ()
        found = violations(aws.client("sagemaker"), since, schedules) if rule.monitors_clean else ()
    except SDK_ERRORS as exc:
        raise AwsError(redact(str(exc))) from exc
    return Evidence(alarms, found)
