"""A small IAM policy evaluator: does a set of statements allow an action on a resource?

Enough of IAM's rules for the policies the controller ships, and strict where it is not
sure: an explicit Deny wins over any Allow; `Action`/`NotAction` match case-insensitively with
`*` and `?` wildcards; `Resource`/`NotResource` match case-sensitively with the same
wildcards; a `Condition` allows only when every operator is one this evaluator knows and every
key is satisfied by the request's context (an unknown operator or a missing key never allows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Context = Mapping[str, str | list[str]]


def wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters (slashes included), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _condition_holds(condition: Mapping[str, Any], context: Context) -> bool:
    for operator, tests in condition.items():
        # `...IfExists` holds when the key is absent; `StringNotLike` when no value matches.
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        negated = base.startswith("StringNot")
        match = _OPERATORS.get(base.replace("Not", "", 1) if negated else base)
        if match is None:
            return False
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                if if_exists:
                    continue
                return False
            actuals = actual if isinstance(actual, list) else [actual]
            if negated:
                if any(match(e, a) for e in _listed(expected) for a in actuals):
                    return False
            elif not all(any(match(e, a) for e in _listed(expected)) for a in actuals):
                return False
    return True


_OPERATORS = {
    "StringEquals": lambda e, a: e == a,
    "StringLike": lambda e, a: wildcard(e, a),
    "ArnEquals": lambda e, a: e == a,
    "ArnLike": lambda e, a: wildcard(e, a),
    "Bool": lambda e, a: e.lower() == a.lower(),
}


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    condition: Mapping[str, Any]
    sid: str = ""

    @staticmethod
    def of(document: Mapping[str, Any]) -> Statement:
        return Statement(
            effect=str(document["Effect"]),
            actions=tuple(_listed(document.get("Action"))),
            not_actions=tuple(_listed(document.get("NotAction"))),
            resources=tuple(_listed(document.get("Resource"))),
            not_resources=tuple(_listed(document.get("NotResource"))),
            condition=document.get("Condition", {}),
            sid=str(document.get("Sid", "")),
        )

    def applies(self, action: str, resource: str, context: Context) -> bool:
        if self.actions:
            acted = any(wildcard(p, action, case_sensitive=False) for p in self.actions)
        else:
            acted = not any(wildcard(p, action, case_sensitive=False) for p in self.not_actions)
        if self.resources:
            placed = any(wildcard(p, resource) for p in self.resources)
        else:
            placed = not any(wildcard(p, resource) for p in self.not_resources)
        return acted and placed and _condition_holds(self.condition, context)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    @staticmethod
    def of(statements: Iterable[Mapping[str, Any]]) -> Policy:
        return Policy(tuple(Statement.of(s) for s in statements))

    def allows(self, action: str, resource: str, context: Context | None = None) -> bool:
        context = context or {}
        matching = [s for s in self.statements if s.applies(action, resource, context)]
        if any(s.effect == "Deny" for s in matching):
            return False
        return any(s.effect == "Allow" for s in matching)

    def granting(self, action: str, resource: str, context: Context | None = None) -> list[str]:
        """The Sids of the Allow statements that grant it (for messages)."""
        return [
            s.sid
            for s in self.statements
            if s.effect == "Allow" and s.applies(action, resource, context or {})
        ]
