"""Which resources an update replaces, known offline, before CloudFormation is asked.

A resource is replaced when one of its create-only properties changes (`create_only.json`,
generated from the CloudFormation provider schemas cfn-lint ships, for the resource types
the blueprints use), or when such a property refers to a resource that is itself replaced
(a new Model gives the EndpointConfig new `ProductionVariants`). Stack tags count for the
types whose `Tags` are create-only, since CloudFormation copies them onto each resource.

CloudFormation refuses to replace a resource whose name the template fixes unless the name
changes too; an endpoint's replacement changes what callers reach. Both are what a plan
should say before anyone applies it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from controller.core import intrinsics

if TYPE_CHECKING:
    from controller.core.render import RenderedStack
    from controller.core.stacks import DeployedStack

ENDPOINT = "AWS::SageMaker::Endpoint"
TAGS = "Tags"
STACK_TAGS = "stack tags"


@functools.cache
def create_only_data() -> dict[str, Any]:
    text = resources.files("controller.core").joinpath("create_only.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _type(resource_type: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] = create_only_data()["types"].get(resource_type, {})
    return found


@dataclass(frozen=True)
class Replacement:
    logical_id: str
    resource_type: str
    properties: tuple[str, ...]
    """Create-only properties that change; a referenced resource's replacement is its id."""
    causes: tuple[str, ...]
    """Parameters (or "stack tags") behind it, directly or through a replaced resource."""
    named: bool
    """The template names it: CloudFormation replaces it only if the name changes too."""
    renamed: bool

    @property
    def highlighted(self) -> bool:
        """Worth a reader's attention: an endpoint, or a resource with a fixed name."""
        return self.named or self.resource_type == ENDPOINT

    @property
    def refused(self) -> bool:
        """CloudFormation would roll the update back: a named resource keeps its name."""
        return self.named and not self.renamed


@dataclass(frozen=True)
class Side:
    """One version of a stack: its template (loaded), parameter values and stack tags."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)


def replacements(old: Side, new: Side) -> tuple[Replacement, ...]:
    """Resources that exist in both versions and that the update would replace."""
    both = [
        logical
        for logical in new.template.get("Resources", {})
        if logical in old.template.get("Resources", {})
        and _context(old, frozenset()).exists(old.template["Resources"][logical])
        and _context(new, frozenset()).exists(new.template["Resources"][logical])
    ]
    replaced: dict[str, tuple[tuple[str, ...], set[str]]] = {}
    for _ in range(len(both) + 1):
        found = {
            logical: change
            for logical in both
            if (change := _change(logical, old, new, frozenset(replaced), replaced)) is not None
        }
        if found.keys() == replaced.keys():
            break
        replaced = found
    return tuple(
        _describe(logical, old, new, properties, causes, frozenset(replaced))
        for logical, (properties, causes) in sorted(replaced.items())
    )


def _context(side: Side, replaced: frozenset[str], generation: str = "") -> intrinsics.Context:
    def attribute(logical: str, attribute: str | None) -> str:
        marker = generation if logical in replaced else ""
        return f"<{logical}.{attribute or 'Ref'}{marker}>"

    # A parameter the deployed stack lacks (another blueprint version) reads as absent.
    declared = {name: f"<no {name}>" for name in side.template.get("Parameters", {})}
    parameters = {**declared, **side.parameters}
    return intrinsics.Context(parameters, attribute=attribute, template=side.template)


def _change(
    logical: str,
    old: Side,
    new: Side,
    replaced: frozenset[str],
    known: Mapping[str, tuple[tuple[str, ...], set[str]]],
) -> tuple[tuple[str, ...], set[str]] | None:
    resource_type = new.template["Resources"][logical]["Type"]
    before = _properties(old, logical, frozenset())
    after = _properties(new, logical, replaced, "@new")
    changed: list[str] = []
    causes: set[str] = set()
    for pointer in _type(resource_type).get("create_only", []):
        path = pointer.split("/")
        if _at(before, path) == _at(after, path):
            continue
        changed.append(pointer)
        for side in (old, new):
            node = _at(side.template["Resources"][logical].get("Properties", {}), path)
            for name in intrinsics.references(node):
                if name in known:
                    causes |= known[name][1]
                    changed.append(name)
                elif old.parameters.get(name) != new.parameters.get(name):
                    causes.add(name)
    if _type(resource_type).get("tags_create_only") and old.tags != new.tags:
        changed.append(TAGS)
        causes.add(STACK_TAGS)
    if not changed:
        return None
    return tuple(dict.fromkeys(changed)), causes


def _properties(side: Side, logical: str, replaced: frozenset[str], mark: str = "") -> Any:
    node = side.template["Resources"][logical].get("Properties", {})
    return _context(side, replaced, mark).resolve(node)


def _at(node: Any, path: list[str]) -> Any:
    """The value at a create-only path; `*` steps into every item of a list."""
    if not path:
        return node
    head, rest = path[0], path[1:]
    if head == "*":
        return [_at(item, rest) for item in node] if isinstance(node, list) else None
    return _at(node.get(head), rest) if isinstance(node, Mapping) else None


def _describe(
    logical: str,
    old: Side,
    new: Side,
    properties: tuple[str, ...],
    causes: set[str],
    replaced: frozenset[str],
) -> Replacement:
    """A name made from an attribute of a replaced resource (`${Endpoint.EndpointName}-x`)
    changes with it: the new resource has a new name."""
    resource_type = new.template["Resources"][logical]["Type"]
    name = str(_type(resource_type).get("name") or "")
    named = bool(name) and name in new.template["Resources"][logical].get("Properties", {})
    renamed = named and _at(_properties(old, logical, frozenset()), [name]) != _at(
        _properties(new, logical, replaced, "@new"), [name]
    )
    return Replacement(logical, resource_type, properties, tuple(sorted(causes)), named, renamed)


def for_update(rendered: RenderedStack, deployed: DeployedStack) -> tuple[Replacement, ...]:
    """What updating `deployed` to `rendered` replaces. The deployed template is taken to be
    today's blueprint for the shape its parameters show (no AWS call is made to fetch it), and
    a run-once gate is taken as open on both sides: the update's eventual state."""
    from controller.core import render

    shape = render.shape_for_parameters(rendered.pipeline.type, deployed.parameters)
    if shape is None:
        return ()
    old_parameters = dict(deployed.parameters)
    overrides = {}
    if rendered.run is not None and rendered.run.gate_parameter:
        overrides[rendered.run.gate_parameter] = render.OPEN
    new_parameters = {
        p["ParameterKey"]: p["ParameterValue"] for p in rendered.boto_parameters(**overrides)
    }
    old = Side(_loaded(render.template_text(shape)), old_parameters)
    new = Side(_loaded(rendered.template_body), new_parameters)
    return replacements(old, new)


@functools.lru_cache(maxsize=64)
def _loaded(body: str) -> dict[str, Any]:
    """Templates are shared per shape: each is parsed once."""
    return intrinsics.load(body)
