"""Promotion records and approvals in the assets bucket, on the moto server: what a gate reads
comes from the keys, and nothing an approver writes into a body can change who approved."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from controller.aws.promotion import PromotionError, Promotions
from controller.core.gates import Approval, Decision, Promotion
from controller.core.gates import PromotionOutcome as Outcome

BUCKET = "mlops-assets-example"
PREFIX = "mlops-controller/mlops-controller/"
COMMIT, OTHER = "a" * 40, "b" * 40
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(aws: str) -> Promotions:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return Promotions(s3, BUCKET, "mlops-controller")


def put(key: str, body: dict[str, Any]) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=PREFIX + key, Body=json.dumps(body).encode()
    )


def test_outcomes_and_reached_come_from_the_keys_in_time_order(store) -> None:
    for minutes, outcome in ((0, Outcome.FAILED), (5, Outcome.APPLIED)):
        store.record(Promotion("dev", COMMIT, outcome, T0 + timedelta(minutes=minutes), "ci"))
    store.record(Promotion("dev", OTHER, Outcome.INCOMPLETE, T0, "ci"))

    assert store.outcomes("dev", COMMIT) == (Outcome.FAILED, Outcome.APPLIED)
    assert store.reached("dev", COMMIT) and not store.reached("dev", OTHER)
    assert not store.reached("staging", COMMIT)
    newest = store.newest_applied("dev")
    assert newest is not None and (newest.commit, newest.actor) == (COMMIT, "ci")


def test_history_is_newest_first_and_filters_by_stage(store) -> None:
    store.record(Promotion("dev", COMMIT, Outcome.APPLIED, T0, "ci", "4 succeeded"))
    store.record(Promotion("staging", COMMIT, Outcome.APPLIED, T0 + timedelta(1), "ci"))
    store.decide(Approval("staging", COMMIT, Decision.APPROVED, T0, "AIDAALICE", "arn:alice"))

    promotions, approvals = store.history()
    assert [p.stage for p in promotions] == ["staging", "dev"]
    assert promotions[1].message == "4 succeeded"
    assert [(a.stage, a.who) for a in approvals] == [("staging", "AIDAALICE")]
    assert [p.stage for p in store.history("dev")[0]] == ["dev"]


def test_who_approved_is_the_user_id_of_the_key_never_a_claim_in_the_body(store) -> None:
    stamp = T0.strftime("%Y%m%dT%H%M%S.%fZ")
    forged = {"user_id": "AIDAALICE", "arn": "arn:aws:iam::123456789012:user/alice"}
    put(f"approvals/prod/{COMMIT}/AIDAMALLORY/{stamp}-approved.json", forged)

    (decision,) = store.decisions("prod", COMMIT)

    assert decision.user_id == "AIDAMALLORY"
    assert decision.arn == "" and decision.who == "AIDAMALLORY"


def test_a_body_under_the_writers_own_id_naming_someone_else_shows_the_writer(store) -> None:
    """The approver policy lets Mallory write under AIDAMALLORY only; whatever the body
    claims, only that id is proven, so only that id is shown."""
    stamp = T0.strftime("%Y%m%dT%H%M%S.%fZ")
    forged = {"user_id": "AIDAMALLORY", "arn": "arn:aws:iam::123456789012:user/alice"}
    put(f"approvals/prod/{COMMIT}/AIDAMALLORY/{stamp}-approved.json", forged)

    (decision,) = store.decisions("prod", COMMIT)
    (shown,) = store.history("prod")[1]

    assert decision.who == shown.who == "AIDAMALLORY"
    assert "alice" not in decision.who + shown.who


def test_keys_that_are_not_decisions_are_ignored(store) -> None:
    stamp = T0.strftime("%Y%m%dT%H%M%S.%fZ")
    put(f"approvals/prod/{COMMIT}/AIDAALICE/extra/{stamp}-approved.json", {})
    put(f"approvals/prod/{COMMIT}/AIDAALICE/{stamp}-maybe.json", {})
    put(f"approvals/prod/{COMMIT}/AIDAALICE/notastamp-approved.json", {})
    put(f"promotions/prod/{COMMIT}/{stamp}-applied.json.bak", {})

    assert store.decisions("prod", COMMIT) == ()
    assert store.outcomes("prod", COMMIT) == ()


def test_an_unreadable_bucket_is_one_error_naming_it(aws: str) -> None:
    store = Promotions(boto3.client("s3", region_name="us-east-1"), "no-such-bucket", "c")
    with pytest.raises(PromotionError) as caught:
        store.reached("dev", COMMIT)
    assert str(caught.value).startswith("cannot list s3://no-such-bucket/mlops-controller/c/")
    assert "NoSuchBucket" in str(caught.value)


def test_a_newer_failure_closes_the_gate_an_earlier_success_opened(store) -> None:
    """`apply --stage prod` reads staging's records: a commit staging applied, then failed
    to apply again, has not been applied completely there (issue 17, defect 5)."""
    store.record(Promotion("staging", COMMIT, Outcome.APPLIED, T0, "ci"))
    store.record(Promotion("staging", COMMIT, Outcome.FAILED, T0 + timedelta(minutes=5), "ci"))

    assert not store.reached("staging", COMMIT)
