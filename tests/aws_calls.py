"""Counting the controller's AWS calls by `service.Operation`, through its own hook."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import unquote

import pytest

from controller.aws import session as aws_module

READ_PREFIXES = ("Describe", "List", "Get", "Head")


def count_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    counted: Counter[str] = Counter()
    original = aws_module.Aws._count

    def count(self: aws_module.Aws, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        counted[f"{model.service_model.service_name}.{model.name}"] += 1

    monkeypatch.setattr(aws_module.Aws, "_count", count)
    return counted


def writes(calls: Counter[str]) -> Counter[str]:
    return Counter(
        {op: n for op, n in calls.items() if not op.split(".")[1].startswith(READ_PREFIXES)}
    )


def stack_writes(calls: Counter[str]) -> Counter[str]:
    """Writes that change stacks or start jobs (the ledger and the lock live in S3)."""
    return Counter(
        {
            op: n
            for op, n in writes(calls).items()
            if op.split(".")[0] in ("cloudformation", "stepfunctions")
        }
    )


def count_stack_writes(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """CloudFormation writes by (operation, the StackName they name: a name or a stack id)."""
    counted: Counter[tuple[str, str]] = Counter()
    original = aws_module.Aws._count

    def count(self: aws_module.Aws, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        body = kwargs.get("params", {}).get("body", {})
        name = str(body.get("StackName", "")) if isinstance(body, dict) else ""
        is_write = not model.name.startswith(READ_PREFIXES)
        if model.service_model.service_name == "cloudformation" and name and is_write:
            counted[(model.name, name.split("/")[1] if name.startswith("arn:") else name)] += 1

    monkeypatch.setattr(aws_module.Aws, "_count", count)
    return counted


def s3_keys(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """(`s3.Operation`, the ARN of the bucket or object it names) of every S3 call."""
    touched: set[tuple[str, str]] = set()
    original = aws_module.Aws._count

    def count(self: aws_module.Aws, model: Any, **kwargs: Any) -> None:
        original(self, model, **kwargs)
        params = kwargs.get("params", {})
        if model.service_model.service_name != "s3" or not isinstance(params, dict):
            return
        path = params.get("auth_path") or params.get("url_path", "")
        bucket = unquote(str(path).lstrip("/").split("?")[0]).rstrip("/")
        touched.add((f"s3.{model.name}", f"arn:aws:s3:::{bucket}"))  # bucket or bucket/key

    monkeypatch.setattr(aws_module.Aws, "_count", count)
    return touched
