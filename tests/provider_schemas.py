"""The CloudFormation resource provider schemas that cfn-lint ships, as the tests read them.

`cfnlint/data/schemas/providers/<region>.json` maps each resource type to a schema file in
`cfnlint/data/schemas/resources/`; a schema lists, per handler, the API actions
CloudFormation calls with the caller's credentials (`handlers.{create,update,delete}
.permissions`), and the properties whose change replaces the resource
(`createOnlyProperties`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cfnlint

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
REGION = "us-east-1"

LEGACY_HANDLERS: dict[str, dict[str, tuple[str, ...]]] = {
    # AWS::CodeBuild::Project is not a registry resource: its schema lists no handlers, and
    # CloudFormation calls CodeBuild's own API for it. These are the CodeBuild API calls of
    # each operation (CreateProject, UpdateProject, DeleteProject, BatchGetProjects to read
    # it back) and the role it passes (ServiceRole), from the CodeBuild API reference.
    "AWS::CodeBuild::Project": {
        "create": ("codebuild:CreateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "update": ("codebuild:UpdateProject", "codebuild:BatchGetProjects", "iam:PassRole"),
        "delete": ("codebuild:DeleteProject",),
    },
}


@functools.cache
def _providers() -> dict[str, str]:
    loaded: dict[str, str] = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    return loaded


@functools.cache
def schema(resource_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (SCHEMAS / "resources" / f"{_providers()[resource_type]}.json").read_text()
    )
    return loaded


@dataclass(frozen=True)
class Handlers:
    create: tuple[str, ...]
    update: tuple[str, ...]
    delete: tuple[str, ...]

    def all(self) -> dict[str, tuple[str, ...]]:
        return {"create": self.create, "update": self.update, "delete": self.delete}


def handlers(resource_type: str) -> Handlers:
    legacy = LEGACY_HANDLERS.get(resource_type)
    if legacy is not None:
        return Handlers(legacy["create"], legacy["update"], legacy["delete"])
    declared = schema(resource_type).get("handlers", {})
    if not declared:
        raise LookupError(f"{resource_type} lists no handlers: add it to LEGACY_HANDLERS")

    def of(name: str) -> tuple[str, ...]:
        return tuple(declared.get(name, {}).get("permissions", ()))

    return Handlers(of("create"), of("update"), of("delete"))


def create_only(resource_type: str) -> tuple[str, ...]:
    """Top-level create-only property names (`/properties/Tags` -> `Tags`)."""
    paths = schema(resource_type).get("createOnlyProperties", [])
    return tuple(sorted({p.split("/")[2] for p in paths}))
