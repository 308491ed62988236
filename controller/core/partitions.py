"""Which AWS partition a region is in: the first field of every ARN there.

A role, bucket or key ARN of another partition than its region's can never be assumed or read
from it, so config checks compare the two; the blueprints' `${AWS::Partition}` agrees.
"""

from __future__ import annotations

PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f")
"""The partitions an ARN may name; any other first field is made up."""

_BY_PREFIX = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)


def partition_of(region: str) -> str:
    """`aws` unless the region's name says another partition."""
    return next((p for prefix, p in _BY_PREFIX if region.startswith(prefix)), "aws")
