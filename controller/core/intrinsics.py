"""CloudFormation's intrinsic functions, evaluated offline the way CloudFormation does.

The planner uses it to tell which resources an update replaces (without asking AWS), and the
tests to see the values a real stack would hold: the IAM policy after `!Sub`, the state
machine definition CloudFormation serialises, the properties a resource handler receives.
`load` reads a template with its short-form tags in the long form (`!Sub x` ->
`{"Fn::Sub": "x"}`); `Context.resolve` evaluates a node with parameter values, pseudo
parameters, conditions, and a value for every reference to a resource.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

NO_VALUE: Any = object()
"""`!Ref AWS::NoValue`: the property is removed."""

ACCOUNT = "123456789012"
REGION = "us-east-1"


class _Loader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if name == "Fn::GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


_Loader.add_multi_constructor("!", _tagged)


def load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(text, Loader=_Loader)
    return loaded


Attribute = Callable[[str, str | None], Any]
"""(logical id, attribute or None for Ref) -> the value CloudFormation would give."""


def placeholder(logical_id: str, attribute: str | None) -> str:
    """A stand-in value that says what it stands for."""
    return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"


@dataclass
class Context:
    parameters: Mapping[str, str]
    stack_name: str = "mlops-pipeline-example"
    attribute: Attribute = placeholder
    template: Mapping[str, Any] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/"
                "0b3d3a80-1e8e-11ef-8d2e-0affd4e0a1b3"
            ),
        }

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def exists(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.condition(str(condition))

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        declared = self.template.get("Parameters", {}).get(name)
        if declared is not None and "Default" in declared:
            return str(declared["Default"])
        if name in self.template.get("Resources", {}) or not self.template:
            return self.attribute(name, None)
        raise KeyError(f"no parameter or resource {name}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, value)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self.attribute(logical, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)


def _sub(context: Context, value: Any) -> str:
    if isinstance(value, str):
        return context.sub(value, {})
    text, variables = value
    return context.sub(text, {k: context.resolve(v) for k, v in variables.items()})


def _if(context: Context, value: list[Any]) -> Any:
    name, yes, no = value
    return context.resolve(yes if context.condition(name) else no)


def _select(context: Context, value: list[Any]) -> Any:
    index, items = value
    return context.resolve(items)[int(context.resolve(index))]


_FUNCTIONS: dict[str, Callable[[Context, Any], Any]] = {
    "Ref": lambda c, v: c.ref(v),
    "Fn::GetAtt": lambda c, v: c.attribute(v[0], v[1]),
    "Fn::Sub": _sub,
    "Fn::If": _if,
    "Fn::Equals": lambda c, v: c.resolve(v[0]) == c.resolve(v[1]),
    "Fn::Not": lambda c, v: not c.resolve(v[0]),
    "Fn::And": lambda c, v: all(c.resolve(x) for x in v),
    "Fn::Or": lambda c, v: any(c.resolve(x) for x in v),
    "Condition": lambda c, v: c.condition(v),
    "Fn::Join": lambda c, v: str(v[0]).join(str(x) for x in c.resolve(v[1])),
    "Fn::Select": _select,
    "Fn::Split": lambda c, v: str(c.resolve(v[1])).split(v[0]),
    "Fn::FindInMap": lambda c, v: c.template["Mappings"][c.resolve(v[0])][c.resolve(v[1])][
        c.resolve(v[2])
    ],
}


def references(node: Any) -> set[str]:
    """The names a node refers to: parameters, pseudo parameters and resources (a GetAtt or
    a `${Resource.Attribute}` as the resource's logical id)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return {str(value)}
            if key == "Fn::GetAtt":
                return {str(value[0])}
            if key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                names = re.findall(r"\$\{([^!}][^}]*)\}", text)
                found |= {n.split(".", 1)[0] if not n.startswith("AWS::") else n for n in names}
                found -= set(variables)
                return found | references(list(variables.values()))
        for value in node.values():
            found |= references(value)
    return found
