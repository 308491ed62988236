"""What a template change does to a stack's resources: added, removed, replaced logical ids.

A parameter diff says nothing about a template change, and a template change is where a
resource disappears: an update to a template that no longer declares a resource makes
CloudFormation delete it. Stacks made by other means (the original orchestrator's, adopted)
hold resources our blueprints lack, so a plan must say which ones an apply deletes.

Pure: the deployed template is either known offline (this controller rendered it: today's
blueprint for the shape the deployed parameters show reproduces the deployed spec hash) or
handed in after `controller.aws.templates` read it, which the planner asks for only for
stacks whose template is not known and may differ. A no-op plan reads none.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from controller.core import intrinsics

if TYPE_CHECKING:
    from controller.core.render import RenderedStack
    from controller.core.stacks import DeployedStack


@dataclass(frozen=True)
class ResourceChanges:
    """How the resources of a deployed template differ from a rendered one, by logical id."""

    added: tuple[tuple[str, str], ...] = ()
    """(logical id, type) of resources only the new template declares."""
    removed: tuple[tuple[str, str], ...] = ()
    """(logical id, type) of resources only the deployed template declares: an apply deletes
    them."""
    replaced: tuple[tuple[str, str, str], ...] = ()
    """(logical id, deployed type, new type): the deployed resource is deleted for another."""
    problem: str = ""
    """Why the deployed template could not be read or parsed (the other fields are then empty)."""

    @property
    def deletes(self) -> tuple[str, ...]:
        """Logical ids of deployed resources the update deletes."""
        return tuple(i for i, _ in self.removed) + tuple(i for i, _, _ in self.replaced)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.replaced or self.problem)

    def lines(self) -> list[str]:
        """One line per resource, as plans and `adopt` show them."""
        if self.problem:
            return [f"? resources not compared: {self.problem}"]
        return [
            *(f"- {i} ({t}) is deleted: the new template lacks it" for i, t in self.removed),
            *(f"-/+ {i} ({old} -> {new}) is deleted and created" for i, old, new in self.replaced),
            *(f"+ {i} ({t}) is added" for i, t in self.added),
        ]

    def summary(self) -> str:
        """A short clause for a plan's reason ("" when nothing changes)."""
        if self.problem:
            return f"resources not compared: {self.problem}"
        parts = []
        if self.removed:
            parts.append("deletes " + ", ".join(f"{i} ({t})" for i, t in self.removed))
        if self.replaced:
            parts.append("replaces " + ", ".join(f"{i} ({new})" for i, _, new in self.replaced))
        if self.added:
            parts.append("adds " + ", ".join(f"{i} ({t})" for i, t in self.added))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [{"resource": i, "type": t} for i, t in self.added],
            "removed": [{"resource": i, "type": t} for i, t in self.removed],
            "replaced": [{"resource": i, "was": old, "type": new} for i, old, new in self.replaced],
            "problem": self.problem or None,
        }


@functools.lru_cache(maxsize=64)
def resources_of(body: str) -> Mapping[str, str]:
    """Logical id -> resource type of a template in YAML (short-form intrinsics) or JSON.
    Bodies are shared per shape, so a plan of many updates parses each once."""
    loaded = intrinsics.load(body)
    found = loaded.get("Resources") if isinstance(loaded, Mapping) else None
    if not isinstance(found, Mapping):
        raise ValueError("the template has no Resources section")
    return {
        str(logical): str(resource.get("Type", "")) if isinstance(resource, Mapping) else ""
        for logical, resource in found.items()
    }


def compare(deployed_body: str, new_body: str) -> ResourceChanges:
    """The resource changes from `deployed_body` to `new_body`; a template that cannot be
    parsed is a `problem`, never an exception."""
    if deployed_body == new_body:
        return ResourceChanges()
    try:
        old, new = resources_of(deployed_body), resources_of(new_body)
    except (ValueError, yaml.YAMLError) as exc:
        return ResourceChanges(problem=f"the deployed template cannot be read ({exc})")
    return ResourceChanges(
        added=tuple((i, new[i]) for i in sorted(set(new) - set(old))),
        removed=tuple((i, old[i]) for i in sorted(set(old) - set(new))),
        replaced=tuple(
            (i, old[i], new[i]) for i in sorted(set(old) & set(new)) if old[i] != new[i]
        ),
    )


def known_body(rendered: RenderedStack, deployed: DeployedStack) -> str | None:
    """The deployed template when it is known without reading it: this controller rendered it
    from today's blueprints (the shape its parameters show, with its parameters, reproduces its
    spec hash). None when it may be anything: another version, another tool, a hand edit."""
    from controller.core import render
    from controller.core.stacks import SPEC_HASH_PARAMETER

    if not deployed.spec_hash:
        return None
    shape = render.shape_for_parameters(rendered.pipeline.type, deployed.parameters)
    if shape is None:
        return None
    body = render.template_text(shape)
    parameters = tuple(
        sorted((k, v) for k, v in deployed.parameters.items() if k != SPEC_HASH_PARAMETER)
    )
    if render.spec_hash(body, parameters, rendered.capabilities) != deployed.spec_hash:
        return None
    return body
