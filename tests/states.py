"""Step Functions, as far as the blueprints' state machines need it, to run them in tests.

moto neither runs a SageMaker `.sync` task nor evaluates intrinsic functions the way Step
Functions does, so this evaluates a definition (JSONPath query language) state by state:
`InputPath`, `Parameters` / `ResultSelector` with `.$` fields (JsonPath, including slices,
and the intrinsic functions the blueprints use), `Result`, `ResultPath`, `OutputPath`, `Next`
and `End`, for `Pass` and `Task` states, and `Choice` states on `IsPresent`. Each task is
answered by a callback and recorded with its parameters exactly as the service would receive
them; `api_shape` names the botocore operation a task's resource calls, to validate those
parameters against.

Semantics from the Amazon States Language specification and the Step Functions developer
guide ("Intrinsic functions", "Using JSONPath paths"): `States.StringSplit` splits on every
character of its second argument; `States.JsonMerge(a, b, false)` is a shallow merge where
`b` wins; `States.ArrayGetItem` indexes from 0.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

Answer = Callable[[str, dict[str, Any]], Any]
"""(task resource ARN, parameters) -> the task's result."""


@dataclass(frozen=True)
class TaskCall:
    state: str
    resource: str
    parameters: dict[str, Any]


class StatesError(Exception):
    pass


@dataclass(frozen=True)
class Execution:
    calls: list[TaskCall]
    output: Any


def run(definition: dict[str, Any], answer: Answer, state_input: Any = None) -> Execution:
    data: Any = {} if state_input is None else state_input
    name = definition["StartAt"]
    calls: list[TaskCall] = []
    for _ in range(100):
        state = definition["States"][name]
        effective = query(data, state.get("InputPath", "$"))
        kind = state["Type"]
        if kind == "Choice":
            name = _choose(state, data)
            continue
        if kind == "Pass":
            if "Result" in state:
                result = copy.deepcopy(state["Result"])
            elif "Parameters" in state:
                result = template(state["Parameters"], effective)
            else:
                result = effective
        elif kind == "Task":
            parameters = template(state.get("Parameters", {}), effective)
            calls.append(TaskCall(name, state["Resource"], parameters))
            result = answer(state["Resource"], parameters)
            if "ResultSelector" in state:
                result = template(state["ResultSelector"], result)
        else:
            raise StatesError(f"state type {kind} is not simulated")
        data = _place(data, state.get("ResultPath", "$"), result)
        data = query(data, state.get("OutputPath", "$"))
        if state.get("End"):
            return Execution(calls, data)
        name = state["Next"]
    raise StatesError("no End after 100 states")


def _choose(state: dict[str, Any], data: Any) -> str:
    """A Choice state's next state; only the `IsPresent` test, which the blueprints use."""
    for rule in state["Choices"]:
        if set(rule) != {"Variable", "IsPresent", "Next"}:
            raise StatesError(f"choice rule {sorted(rule)} is not simulated")
        try:
            query(data, rule["Variable"])
            present = True
        except StatesError:
            present = False
        if present == rule["IsPresent"]:
            return str(rule["Next"])
    return str(state["Default"])


def _place(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    target = copy.deepcopy(data)
    node = target
    parts = path.removeprefix("$.").split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = result
    return target


def template(node: Any, data: Any) -> Any:
    """A payload template: `key.$` fields take a path's or an intrinsic function's value."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key.endswith(".$"):
                out[key[:-2]] = expression(str(value), data)
            else:
                out[key] = template(value, data)
        return out
    if isinstance(node, list):
        return [template(item, data) for item in node]
    return node


def expression(text: str, data: Any) -> Any:
    text = text.strip()
    if text.startswith("States."):
        value, rest = _intrinsic(text, data)
        if rest.strip():
            raise StatesError(f"unexpected {rest!r} after {text!r}")
        return value
    return query(data, text)


_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+)\]|\[(-?\d*):(-?\d*)\]")


def query(data: Any, path: str) -> Any:
    """A JsonPath: `$`, `.name`, `[index]` and `[start:end]` (a slice yields a list)."""
    if not path.startswith("$"):
        raise StatesError(f"not a path: {path!r}")
    value = data
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise StatesError(f"path {path!r} not understood at {path[position:]!r}")
        name, index, start, end = match.groups()
        try:
            if name is not None:
                value = value[name]
            elif index is not None:
                value = value[int(index)]
            else:
                value = value[int(start) if start else None : int(end) if end else None]
        except (KeyError, IndexError, TypeError) as exc:
            raise StatesError(f"path {path!r} matches nothing in {data!r}") from exc
        position = match.end()
    return value


def _intrinsic(text: str, data: Any) -> tuple[Any, str]:
    name, _, rest = text.partition("(")
    arguments: list[Any] = []
    rest = rest.lstrip()
    while not rest.startswith(")"):
        value, rest = _argument(rest, data)
        arguments.append(value)
        rest = rest.lstrip()
        if rest.startswith(","):
            rest = rest[1:].lstrip()
    function = _FUNCTIONS.get(name)
    if function is None:
        raise StatesError(f"intrinsic {name} is not simulated")
    return function(*arguments), rest[1:]


def _argument(text: str, data: Any) -> tuple[Any, str]:
    if text.startswith("States."):
        return _intrinsic(text, data)
    if text.startswith("'"):
        out, position = [], 1
        while text[position] != "'":
            if text[position] == "\\":
                position += 1
            out.append(text[position])
            position += 1
        return "".join(out), text[position + 1 :]
    match = re.match(r"[^,)\s]+", text)
    assert match is not None, text
    token, rest = match.group(0), text[match.end() :]
    if token.startswith("$"):
        return query(data, token), rest
    return json.loads(token), rest


def _split(text: str, splitter: str) -> list[str]:
    parts = re.split("[" + re.escape(splitter) + "]", text)
    return [part for part in parts if part]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "States.StringToJson": json.loads,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.JsonMerge": lambda a, b, deep: {**a, **b} if not deep else _no_deep_merge(),
    "States.StringSplit": _split,
    "States.ArrayGetItem": lambda array, index: array[int(index)],
}


def _no_deep_merge() -> Any:
    raise StatesError("Step Functions supports only the shallow JsonMerge (false)")


# Which API a task calls, and its input shape --------------------------------------------------

_OPTIMIZED = re.compile(
    r"^arn:aws:states:::(?P<service>[a-z]+):(?P<action>\w+?)(\.sync|\.waitForTaskToken)?$"
)
_SDK = re.compile(r"^arn:aws:states:::aws-sdk:(?P<service>[a-z0-9]+):(?P<action>\w+)$")


@dataclass(frozen=True)
class ApiShape:
    service: str
    operation: str
    sdk: bool
    """An AWS SDK integration: field names follow the Java SDK v2, which differ from the API's
    in letter case only (`SsekmsKeyId` for `SSEKMSKeyId`)."""


def api_shape(resource: str) -> ApiShape:
    for pattern, sdk in ((_SDK, True), (_OPTIMIZED, False)):
        match = pattern.match(resource)
        if match:
            action = match.group("action")
            return ApiShape(match.group("service"), action[0].upper() + action[1:], sdk)
    raise StatesError(f"unknown task resource {resource}")


def validate(call: TaskCall) -> list[str]:
    """botocore's validation of the task's parameters against the API's input shape."""
    shape = api_shape(call.resource)
    model = botocore.session.get_session().get_service_model(shape.service)
    input_shape = model.operation_model(shape.operation).input_shape
    parameters = _api_names(call.parameters, input_shape) if shape.sdk else call.parameters
    report = ParamValidator().validate(parameters, input_shape)
    return [report.generate_report()] if report.has_errors() else []


def _api_names(value: Any, shape: Any) -> Any:
    """Rename SDK-integration fields to the API's member names (same letters, other case)."""
    if isinstance(value, dict) and shape.type_name == "structure":
        members = {name.lower(): name for name in shape.members}
        renamed = {}
        for key, item in value.items():
            name = members.get(key.lower(), key)
            member = shape.members.get(name)
            renamed[name] = _api_names(item, member) if member is not None else item
        return renamed
    if isinstance(value, list) and shape.type_name == "list":
        return [_api_names(item, shape.member) for item in value]
    return value
