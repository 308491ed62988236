"""The IAM evaluator the permission tests rely on follows IAM's matching rules."""

from __future__ import annotations

import pytest

from tests.iam import Policy, wildcard

BUCKET = "arn:aws:s3:::assets"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:s3:::assets/*", "arn:aws:s3:::assets/a/b/c.json", True),
        ("arn:aws:s3:::assets/*", "arn:aws:s3:::assets", False),
        ("arn:aws:s3:::assets/?.csv", "arn:aws:s3:::assets/a.csv", True),
        ("arn:aws:s3:::assets/?.csv", "arn:aws:s3:::assets/ab.csv", False),
        ("stack/mlops-pipeline-*/*", "stack/mlops-pipeline-x/id", True),
        ("stack/mlops-pipeline-*/*", "stack/prod-db/id", False),
        ("a.b", "axb", False),
        ("données/*", "données/x", True),
    ],
)
def test_resource_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert wildcard(pattern, value) is expected


def test_actions_match_without_case_and_resources_with_case() -> None:
    policy = Policy.of([{"Effect": "Allow", "Action": "S3:getobject", "Resource": f"{BUCKET}/K"}])
    assert policy.allows("s3:GetObject", f"{BUCKET}/K")
    assert not policy.allows("s3:GetObject", f"{BUCKET}/k")
    assert not policy.allows("s3:PutObject", f"{BUCKET}/K")


def test_an_explicit_deny_wins() -> None:
    policy = Policy.of(
        [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{BUCKET}/*"},
        ]
    )
    assert policy.allows("s3:PutObject", f"{BUCKET}/x")
    assert not policy.allows("s3:DeleteObject", f"{BUCKET}/x")


def test_not_action_and_not_resource() -> None:
    policy = Policy.of(
        [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/secret/*"}]
    )
    assert policy.allows("s3:GetObject", f"{BUCKET}/public/x")
    assert not policy.allows("iam:PassRole", "arn:aws:iam::1:role/x")
    assert not policy.allows("s3:GetObject", f"{BUCKET}/secret/x")


def test_conditions_hold_only_when_known_and_satisfied() -> None:
    policy = Policy.of(
        [
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": BUCKET,
                "Condition": {"NumericLessThan": {"s3:max-keys": "10"}},
            },
        ]
    )
    assert policy.allows("iam:PassRole", "r", {"iam:PassedToService": "sagemaker.amazonaws.com"})
    assert not policy.allows("iam:PassRole", "r", {"iam:PassedToService": "lambda.amazonaws.com"})
    assert not policy.allows("iam:PassRole", "r")
    assert not policy.allows("s3:ListBucket", BUCKET, {"s3:max-keys": "5"})
