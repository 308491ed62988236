"""The promotion rules as pure functions: gates, "applied completely", and the policy grants
the cross-account pre-flight relies on. No network."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.core import config, grants
from controller.core.chain import ChainPlan, StepPlan, chain_of
from controller.core.gates import Approval, Decision, GateState, gate, outcome, settled
from controller.core.gates import PromotionOutcome as Outcome
from controller.core.plan import Action, Plan, PlannedAction
from controller.core.render import render_all
from controller.core.results import ActionResult, ApplyResult
from controller.core.results import Outcome as Result
from controller.core.stacks import DeployedStack
from controller.present import chain as present
from tests.test_config_stages import STAGED_DATA

STAGED = config.load(json.dumps(STAGED_DATA).encode(), "mlops-config.json", environ={}).config
assert STAGED is not None
CHAIN = chain_of(STAGED).steps
DEV, STAGING, PROD = (s.stage for s in CHAIN[1:])
COMMIT, OLDER = "c" * 40, "b" * 40
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def decided(stage: str, commit: str, decision: Decision, minutes: int = 0) -> Approval:
    return Approval(stage, commit, decision, T0 + timedelta(minutes=minutes), "AIDAALICE", "alice")


# Gates


def test_the_chain_is_the_orchestrator_then_every_stage_in_order() -> None:
    assert [(s.name, s.previous) for s in CHAIN] == [
        ("orchestrator", None),
        ("dev", "orchestrator"),
        ("staging", "dev"),
        ("prod", "staging"),
    ]


def test_an_automatic_stage_opens_once_the_stage_before_applied_the_commit() -> None:
    assert gate(DEV, COMMIT, "orchestrator", True, ()).state is GateState.OPEN
    closed = gate(DEV, COMMIT, "orchestrator", False, ())
    assert closed.state is GateState.WAITING
    assert closed.reason == "waits until orchestrator has applied cccccccccccc completely"


def test_a_manual_stage_waits_for_an_approval_of_that_exact_commit() -> None:
    waiting = gate(STAGING, COMMIT, "dev", True, ())
    assert waiting.state is GateState.WAITING
    assert waiting.reason == (
        f"waits for approval: mlops-controller approve --stage staging --commit {COMMIT}"
    )
    older = [decided("staging", OLDER, Decision.APPROVED)]
    assert gate(STAGING, COMMIT, "dev", True, older).state is GateState.WAITING
    other_stage = [decided("prod", COMMIT, Decision.APPROVED)]
    assert gate(STAGING, COMMIT, "dev", True, other_stage).state is GateState.WAITING
    mine = [decided("staging", COMMIT, Decision.APPROVED)]
    opened = gate(STAGING, COMMIT, "dev", True, mine)
    assert opened.state is GateState.OPEN
    assert opened.reason == "approved by alice at 2026-11-25 10:00:00 UTC"


def test_an_approval_does_not_open_a_stage_whose_earlier_stage_has_not_applied() -> None:
    mine = [decided("prod", COMMIT, Decision.APPROVED)]
    assert gate(PROD, COMMIT, "staging", False, mine).state is GateState.WAITING


def test_a_rejection_closes_the_gate_for_good_even_after_an_approval() -> None:
    decisions = [
        decided("prod", COMMIT, Decision.APPROVED, 0),
        replace(decided("prod", COMMIT, Decision.REJECTED, 5), note="latency regression"),
        decided("prod", COMMIT, Decision.APPROVED, 9),
    ]
    closed = gate(PROD, COMMIT, "staging", True, decisions)
    assert closed.state is GateState.REJECTED
    assert "(latency regression); a rejection is final" in closed.reason


# Applied completely


def _action(
    action: Action, status: str = "CREATE_COMPLETE", same_spec: bool = True
) -> PlannedAction:
    stack = render_all(STAGED.stages[0])[-1]  # the monitor: it has a baseline job
    deployed = DeployedStack(
        stack.stack_name,
        "id",
        status,
        {"mlops:spec-hash": stack.spec_hash if same_spec else "old"},
    )
    return PlannedAction(stack.stack_name, stack.pipeline.type, action, "", stack, deployed)


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([], True),
        ([_action(Action.UNCHANGED)], True),
        ([_action(Action.WAIT)], True),
        ([_action(Action.WAIT, status="UPDATE_IN_PROGRESS")], False),
        ([_action(Action.WAIT, same_spec=False)], False),
        ([_action(Action.UPDATE)], False),
        ([_action(Action.BLOCKED)], False),
        ([_action(Action.RUN)], False),
    ],
    ids=[
        "nothing",
        "unchanged",
        "baseline-pending",
        "in-progress",
        "waits-for-a-dependency",
        "update-pending",
        "blocked",
        "job-not-started",
    ],
)
def test_a_plan_is_settled_only_when_nothing_is_left_to_do(
    actions: list[PlannedAction], expected: bool
) -> None:
    assert settled(Plan(COMMIT, tuple(actions))) is expected


def test_a_refused_plan_is_not_settled() -> None:
    assert not settled(Plan(COMMIT, (), refusal="refusing to delete"))


def _result(*outcomes: Result, refusal: str = "") -> ApplyResult:
    results = tuple(
        ActionResult(f"s{i}", "byom_realtime_builtin", Action.CREATE, o, "")
        for i, o in enumerate(outcomes)
    )
    return ApplyResult(COMMIT, results, refusal)


def test_the_outcome_of_an_apply_for_promotion() -> None:
    busy = Plan(COMMIT, (_action(Action.WAIT, status="CREATE_IN_PROGRESS"),))
    assert outcome(_result(Result.SUCCEEDED), None) is Outcome.APPLIED
    assert outcome(_result(Result.SUCCEEDED), Plan(COMMIT, ())) is Outcome.APPLIED
    assert outcome(_result(Result.WAITING), busy) is Outcome.INCOMPLETE
    assert outcome(_result(Result.SUCCEEDED, Result.FAILED), None) is Outcome.FAILED
    assert outcome(_result(Result.BLOCKED), None) is Outcome.FAILED
    assert outcome(_result(refusal="another apply holds the lock"), None) is Outcome.REFUSED


# The pull-request view


def test_every_stage_gets_a_share_of_the_comment_and_short_plans_stay_whole() -> None:
    long_plan = Plan(
        COMMIT,
        tuple(
            PlannedAction(
                f"stack-{i:03d}-" + "x" * 80, "byom_realtime_builtin", Action.CREATE, "new"
            )
            for i in range(200)
        ),
    )
    short_plan = Plan(
        COMMIT, (PlannedAction("only-one", "byom_image_builder", Action.CREATE, "new"),)
    )
    plans = (
        StepPlan(CHAIN[0], short_plan),
        StepPlan(CHAIN[1], long_plan),
        StepPlan(CHAIN[2], long_plan),
        StepPlan(CHAIN[3], None, "stage prod: cannot assume role: AccessDenied"),
    )
    chain = chain_of(STAGED)

    text = present.plan_markdown(ChainPlan(chain, plans), "mlops-config.json", limit=10_000)

    assert len(text) <= 10_000
    assert "`only-one`" in text
    assert text.count("more row(s) not shown") == 2
    assert "> **No plan:** stage prod: cannot assume role: AccessDenied" in text
    first = ChainPlan(chain, plans[:1])
    assert present.plan_markdown(first, "m", limit=10_000) == present.plan_markdown(first, "m")


# Policies


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


OBJECT = "arn:aws:s3:::assets/model.tar.gz"


def test_the_generated_statements_grant_what_the_pre_flight_checks() -> None:
    bucket = _policy(grants.bucket_statement("assets", ["111111111111"]))
    assert grants.allows(bucket, "111111111111", grants.READ_OBJECTS, OBJECT)
    assert not grants.allows(bucket, "222222222222", grants.READ_OBJECTS, OBJECT)
    repository = _policy(grants.repository_statement(["111111111111"]))
    assert grants.allows(repository, "111111111111", grants.PULL_IMAGES, "*")
    key = _policy(grants.key_statement(["111111111111"], "us-east-1"))
    assert grants.allows(key, "111111111111", ("kms:Decrypt",), "*")


@pytest.mark.parametrize(
    ("statement", "granted"),
    [
        ({"Principal": {"AWS": "111111111111"}, "Action": "s3:Get*"}, True),
        ({"Principal": "*", "Action": "*"}, True),
        (
            {"Principal": {"AWS": ["arn:aws:iam::111111111111:root"]}, "Action": "S3:GETOBJECT"},
            True,
        ),
        ({"Principal": {"AWS": "arn:aws:iam::111111111111:role/one"}, "Action": "s3:*"}, False),
        ({"Principal": {"AWS": "111111111111"}, "Action": "s3:PutObject"}, False),
        (
            {
                "Principal": {"AWS": "111111111111"},
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::assets/data/*",
            },
            False,
        ),
        ({"Principal": {"AWS": "111111111111"}, "NotAction": "s3:PutObject"}, False),
    ],
    ids=[
        "account-id",
        "everyone",
        "root-arn-any-case",
        "one-role",
        "other-action",
        "other-prefix",
        "not-action",
    ],
)
def test_a_policy_grants_an_account_only_what_it_names(
    statement: dict[str, Any], granted: bool
) -> None:
    policy = _policy({"Effect": "Allow", "Resource": "arn:aws:s3:::assets/*", **statement})
    assert grants.allows(policy, "111111111111", ("s3:GetObject",), OBJECT) is granted


def test_an_unconditional_deny_wins_and_a_conditional_one_does_not() -> None:
    allow = grants.bucket_statement("assets", ["111111111111"])
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "arn:aws:s3:::assets/*",
    }
    tls_only = {**deny, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert not grants.allows(_policy(allow, deny), "111111111111", grants.READ_OBJECTS, OBJECT)
    assert grants.allows(_policy(allow, tls_only), "111111111111", grants.READ_OBJECTS, OBJECT)
    assert not grants.allows(None, "111111111111", grants.READ_OBJECTS, OBJECT)
    assert not grants.allows("not json", "111111111111", grants.READ_OBJECTS, OBJECT)
