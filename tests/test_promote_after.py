"""Verification gates between stages (`promote_after`): a commit goes on only once it has run
clean in the stage before for the soak, judged from that stage's alarms and monitoring
executions with a fake clock; the verdict is recorded and shown in history."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import git
import pytest
from botocore.stub import Stubber

from controller.aws import verification
from controller.core.config import load
from controller.core.config.model import PromoteAfter
from controller.core.gates import AlarmState, Evidence, GateState, Violation, verify
from controller.gitops import verify as verify_module
from tests.conftest import repo_with
from tests.multi_account import DEV, account_client, seed_orchestrator, staged_example
from tests.test_stages import promotion, run

COMMIT = "c" * 40
ARRIVED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
RULE = PromoteAfter(soak_minutes=60, alarms=("dev-5xx",), monitors_clean=True)


def _ok(changed: datetime = ARRIVED - timedelta(days=1)) -> AlarmState:
    return AlarmState("dev-5xx", "OK", changed)


def _at(minutes: int) -> datetime:
    return ARRIVED + timedelta(minutes=minutes)


def test_the_gate_waits_for_the_soak_and_opens_once_it_is_over() -> None:
    seen = Evidence((_ok(),))
    waiting = verify(RULE, "dev", COMMIT, ARRIVED, _at(30), seen)
    assert waiting.state is GateState.WAITING
    assert (
        waiting.reason == f"{COMMIT[:12]} soaks in dev until 2026-12-01 11:00:00 UTC, 30 min left"
    )
    opened = verify(RULE, "dev", COMMIT, ARRIVED, _at(60), seen)
    assert opened.open
    assert opened.reason == "soaked 60 min in dev, alarms dev-5xx OK, monitors clean"


def test_an_alarm_not_ok_holds_the_commit_whatever_the_time() -> None:
    seen = Evidence((AlarmState("dev-5xx", "ALARM", _at(5)),))
    gate = verify(RULE, "dev", COMMIT, ARRIVED, _at(600), seen)
    assert gate.state is GateState.WAITING and gate.reason.endswith("dev-5xx is ALARM")


def test_an_alarm_that_fired_during_the_soak_restarts_it() -> None:
    seen = Evidence((_ok(changed=_at(50)),))
    gate = verify(RULE, "dev", COMMIT, ARRIVED, _at(70), seen)
    assert gate.state is GateState.WAITING
    assert "until 2026-12-01 11:50:00 UTC" in gate.reason
    assert "restarted: alarm dev-5xx changed state" in gate.reason
    assert verify(RULE, "dev", COMMIT, ARRIVED, _at(110), seen).open


def test_a_monitoring_violation_restarts_the_soak_only_when_monitors_must_be_clean() -> None:
    seen = Evidence((_ok(),), (Violation("churn-dq", _at(40)),))
    gate = verify(RULE, "dev", COMMIT, ARRIVED, _at(70), seen)
    assert gate.state is GateState.WAITING and "churn-dq found violations" in gate.reason
    lenient = PromoteAfter(soak_minutes=60, alarms=("dev-5xx",))
    assert verify(lenient, "dev", COMMIT, ARRIVED, _at(70), seen).open


def test_an_alarm_that_does_not_exist_keeps_the_gate_closed() -> None:
    gate = verify(RULE, "dev", COMMIT, ARRIVED, _at(600), Evidence())
    assert gate.state is GateState.WAITING and "alarm dev-5xx does not exist" in gate.reason


def test_only_violations_of_the_stages_own_schedules_count() -> None:
    """moto has no ListMonitoringExecutions: a Stubber answers as SageMaker does."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    summary = {
        "MonitoringScheduleName": "churn-dq",
        "ScheduledTime": _at(40),
        "CreationTime": _at(41),
        "LastModifiedTime": _at(45),
        "MonitoringExecutionStatus": "CompletedWithViolations",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "list_monitoring_executions",
            {
                "MonitoringExecutionSummaries": [
                    summary,
                    {**summary, "MonitoringScheduleName": "someone-elses"},
                ]
            },
            {"CreationTimeAfter": ARRIVED, "StatusEquals": "CompletedWithViolations"},
        )
        found = verification.violations(client, ARRIVED, frozenset({"churn-dq"}))
    assert found == (Violation("churn-dq", _at(40)),)


def test_promote_after_is_read_from_the_stage_definition() -> None:
    data = staged_example()
    data["settings"]["stages"][0]["promote_after"] = {
        "soak_minutes": 60,
        "alarms": ["dev-5xx"],
        "monitors": "clean",
    }
    result = load(json.dumps(data).encode(), "mlops-config.json", environ={})
    assert result.config is not None, [d.format() for d in result.diagnostics]
    dev = result.config.stages[0].stage
    assert dev is not None and dev.promote_after == RULE
    data["settings"]["stages"][0]["promote_after"] = {"soak_minutes": "an hour"}
    bad = load(json.dumps(data).encode(), "mlops-config.json", environ={})
    assert bad.config is None
    assert any("promote_after.soak_minutes" in d.path for d in bad.diagnostics)


# On the emulator: dev soaks, then staging receives the commit


@pytest.fixture
def soaking(aws: str, tmp_path: Path) -> git.Repo:
    """The staged example with a 60-minute soak and one alarm in dev; staging automatic."""
    data: dict[str, Any] = copy.deepcopy(staged_example())
    dev, staging = data["settings"]["stages"][:2]
    dev["promote_after"] = {"soak_minutes": 60, "alarms": ["dev-5xx"]}
    staging.pop("approval")
    seed_orchestrator(data)
    account_client(DEV, "cloudwatch").put_metric_alarm(
        AlarmName="dev-5xx",
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    return repo_with(tmp_path / "soak-repo", data, "Dev soaks for an hour")


def _clock(monkeypatch: pytest.MonkeyPatch, minutes: int) -> None:
    later = datetime.now(UTC) + timedelta(minutes=minutes)
    monkeypatch.setattr(verify_module, "now", lambda: later)


def test_a_promotion_waits_for_the_soak_and_alarms_then_goes_on(
    soaking, capsys, monkeypatch
) -> None:
    commit = soaking.head.commit.hexsha
    done = promotion(capsys, soaking)
    assert done["dev"]["outcome"] == "applied"
    assert done["staging"]["gate"] == "waiting"
    assert f"{commit[:12]} soaks in dev until" in done["staging"]["gate_reason"]

    account_client(DEV, "cloudwatch").set_alarm_state(
        AlarmName="dev-5xx", StateValue="ALARM", StateReason="canary errors"
    )
    _clock(monkeypatch, 61)
    held = promotion(capsys, soaking)
    assert held["staging"]["gate"] == "waiting"
    assert held["staging"]["gate_reason"].endswith("dev-5xx is ALARM")

    account_client(DEV, "cloudwatch").set_alarm_state(
        AlarmName="dev-5xx", StateValue="OK", StateReason="recovered"
    )
    _clock(monkeypatch, 30)
    assert "restarted: alarm dev-5xx" in promotion(capsys, soaking)["staging"]["gate_reason"]

    _clock(monkeypatch, 125)
    went_on = promotion(capsys, soaking)
    assert went_on["staging"]["gate"] == "open"
    assert went_on["staging"]["outcome"] == "applied"

    code, out = run(capsys, soaking, "history", "--output", "json")
    assert code == 0
    verified = [p for p in json.loads(out)["promotions"] if p["outcome"] == "verified"]
    assert [(p["stage"], p["commit"]) for p in verified] == [("dev", commit)]
    assert verified[0]["message"] == "soaked 60 min in dev, alarms dev-5xx OK"


def test_the_pull_request_comment_and_status_show_the_gate_without_alarm_names() -> None:
    from controller.core.chain import chain_of
    from controller.present import chain as present

    data = staged_example()
    data["settings"]["stages"][0]["promote_after"] = {
        "soak_minutes": 60,
        "alarms": ["dev-5xx", "[click](https://evil.example)"],
        "monitors": "clean",
    }
    result = load(json.dumps(data).encode(), "mlops-config.json", environ={})
    assert result.config is not None
    chain = chain_of(result.config).steps
    assert present.order(chain).startswith(
        "orchestrator -> dev (soak 60 min, 2 alarms OK, monitors clean) -> staging (approval)"
    )
    assert present.describe(chain[1]).endswith(
        "promotes after soak 60 min, 2 alarms OK, monitors clean"
    )
