"""A small IAM policy evaluator: does a set of statements allow an action on a resource?

Enough of IAM's rules for the policies the controller ships, and strict where it is not
sure: an explicit Deny wins over any Allow; `Action`/`NotAction` match case-insensitively with
`*` and `?` wildcards; `Resource`/`NotResource` match case-sensitively with the same
wildcards; policy variables (`${aws:userid}`) in resources and condition values take the
request context's value, and match nothing when it has none; a `Condition` allows only when
every operator is one this evaluator knows and every key is satisfied by the request's context
(an unknown operator or a missing key never allows, except that a negated operator holds for a
missing key, as does an `...IfExists` one, and `Null` tests presence, as in IAM).
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


_VARIABLE = re.compile(r"\$\{([\w:/.-]+)\}")


def substituted(pattern: str, context: Context) -> str | None:
    """A policy variable (`${aws:userid}`) replaced by the request's value; None when the
    request has no single value for it, in which case IAM matches nothing."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        found = context.get(match.group(1))
        if not isinstance(found, str):
            missing = True
            return ""
        return found

    replaced = _VARIABLE.sub(value, pattern)
    return None if missing else replaced


def _condition_holds(condition: Mapping[str, Any], context: Context) -> bool:
    for operator, tests in condition.items():
        if operator == "Null":
            for key, expected in tests.items():
                absent = context.get(key) is None
                if absent != (str(expected).lower() == "true"):
                    return False
            continue
        # `...IfExists` holds when the key is absent, like a negated operator.
        if_exists = operator.endswith("IfExists")
        base = operator.removesuffix("IfExists")
        negated = base in _NEGATIONS
        match = _OPERATORS.get(_NEGATIONS.get(base, base))
        if match is None:
            return False
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None:
                if negated or if_exists:
                    continue  # a missing key satisfies a negated or IfExists operator, as in IAM
                return False
            actuals = actual if isinstance(actual, list) else [actual]
            values = [v for e in _listed(expected) if (v := substituted(e, context)) is not None]
            found = all(any(match(v, a) for v in values) for a in actuals)
            if found == negated:
                return False
    return True


_OPERATORS = {
    "StringEquals": lambda e, a: e == a,
    "StringLike": lambda e, a: wildcard(e, a),
    "ArnEquals": lambda e, a: e == a,
    "ArnLike": lambda e, a: wildcard(e, a),
    "Bool": lambda e, a: e.lower() == a.lower(),
}
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _names(pattern: str, resource: str, context: Context) -> bool:
    filled = substituted(pattern, context)
    return filled is not None and wildcard(filled, resource)


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
            placed = any(_names(p, resource, context) for p in self.resources)
        else:
            placed = not any(_names(p, resource, context) for p in self.not_resources)
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
