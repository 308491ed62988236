"""What stage accounts need to read the orchestrator's assets, and whether a policy grants it.

Model artifacts, Docker zips and baselines live in the orchestrator's assets bucket, custom
images in its ECR registry, and the bucket may be encrypted with its KMS key. The stacks a
stage account runs read them across accounts, which needs a grant on the resource's side
naming the stage account: a bucket policy, a repository policy, a key policy. The statements
here are what blueprints/bootstrap.yaml deploys from `StageAccountIds` (and what
`mlops-controller grants` prints for a bucket the bootstrap did not create); `allows` tells
whether an existing policy covers an action for an account, for the pre-flight check. A KMS
key also needs a statement on the reader's side, in the stage account: `role_statement`, which
the blueprints give every role that reads the assets bucket (`settings.assets_kms_key_arn`).

Pure: policies are JSON values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

READ_OBJECTS = ("s3:GetObject", "s3:GetObjectVersion")
LIST_OBJECTS = ("s3:ListBucket",)
"""Baselines and Clarify datasets are read as S3 prefixes, which takes listing the bucket."""
PULL_IMAGES = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
DECRYPT = ("kms:Decrypt", "kms:DescribeKey")


def principals(accounts: Sequence[str], partition: str = "aws") -> list[str]:
    """The stage accounts themselves: the roles their stacks create have generated names, so
    the grant delegates to each account's own IAM policies."""
    return [f"arn:{partition}:iam::{account}:root" for account in accounts]


def bucket_statement(
    bucket: str, accounts: Sequence[str], partition: str = "aws"
) -> dict[str, Any]:
    return {
        "Sid": "StageAccountsReadAssets",
        "Effect": "Allow",
        "Principal": {"AWS": principals(accounts, partition)},
        "Action": [*READ_OBJECTS, *LIST_OBJECTS],
        "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
    }


def repository_statement(accounts: Sequence[str], partition: str = "aws") -> dict[str, Any]:
    return {
        "Sid": "StageAccountsPullImages",
        "Effect": "Allow",
        "Principal": {"AWS": principals(accounts, partition)},
        "Action": list(PULL_IMAGES),
    }


def key_statement(accounts: Sequence[str], region: str, partition: str = "aws") -> dict[str, Any]:
    return {
        "Sid": "StageAccountsDecryptAssets",
        "Effect": "Allow",
        "Principal": {"AWS": principals(accounts, partition)},
        "Action": list(DECRYPT),
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
    }


def role_statement(key_arn: str) -> dict[str, Any]:
    """The reader's half of a cross-account KMS grant: decrypting with the key, only through
    S3 in the key's region (the bucket's), as `key_statement` allows on the key's side. The
    blueprints' `AssetsKey` statement resolves to exactly this."""
    _, partition, _, region = key_arn.split(":")[:4]
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return {
        "Sid": "AssetsKey",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.{suffix}"}},
    }


def allows(
    policy: Mapping[str, Any] | str | None, account: str, actions: Sequence[str], resource: str
) -> bool:
    """Whether the policy lets principals of `account` do every one of `actions` on
    `resource`: an Allow statement names the account (its root, its id, or everyone) for
    each action, and no unconditional Deny takes it away. An Allow's conditions are assumed
    to hold; one written with NotPrincipal, NotAction or NotResource does not count."""
    statements = list(_statements(policy))
    return all(_allowed(statements, account, action, resource) for action in actions)


def _allowed(statements: list[dict[str, Any]], account: str, action: str, resource: str) -> bool:
    granted = False
    for statement in statements:
        if not _covers(statement, account, action, resource):
            continue
        if statement.get("Effect") == "Deny" and not statement.get("Condition"):
            return False
        if statement.get("Effect") == "Allow":
            granted = True
    return granted


def _covers(statement: dict[str, Any], account: str, action: str, resource: str) -> bool:
    if any(key in statement for key in ("NotPrincipal", "NotAction", "NotResource")):
        return False
    return (
        _names_account(statement.get("Principal"), account)
        and any(_matches(p, action, fold=True) for p in _listed(statement.get("Action")))
        and any(_matches(p, resource) for p in _listed(statement.get("Resource", "*")))
    )


def _names_account(principal: Any, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for name in _listed(principal.get("AWS")):
        if name in ("*", account, f"arn:aws:iam::{account}:root"):
            return True
        if re.fullmatch(rf"arn:aws[a-z-]*:iam::{account}:root", name):
            return True
    return False


def _statements(policy: Mapping[str, Any] | str | None) -> Iterator[dict[str, Any]]:
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return
    if not isinstance(policy, Mapping):
        return
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if isinstance(statement, dict):
            yield statement


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _matches(pattern: str, text: str, fold: bool = False) -> bool:
    return _glob(pattern, fold).fullmatch(text) is not None


@cache
def _glob(pattern: str, fold: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters (slashes too), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE if fold else 0)
