"""Does a policy allow a request? A small, deliberately partial IAM evaluator.

It answers for identity policies like the ones :mod:`.iam` writes and refuses
(:class:`UnsupportedPolicyError`) anything it does not model, rather than
guess: ``NotAction``, ``NotResource``, ``Principal``, policy variables, and
condition operators other than ``StringEquals``, ``StringLike`` (each with an
``IfExists`` form) and ``Null``. Within that subset it follows AWS's rules:
an explicit Deny wins, otherwise any matching Allow allows; actions match
case-insensitively and resources case-sensitively, both with ``*`` and ``?``
wildcards; a condition key missing from the request fails every operator but
``...IfExists`` and ``Null``; the values listed for one key are alternatives,
the keys and operators of one statement must all hold.

It cannot see resource policies, permission boundaries, SCPs or session
policies, so "allowed" here means "this identity policy allows it".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import UnsupportedPolicyError

_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
_OPERATORS = {"StringEquals", "StringLike", "Null"}


@dataclass(frozen=True, slots=True)
class Request:
    """One authorisation question: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer; ``statement`` is the Sid (or index) of the statement that decided it, if any."""

    allowed: bool
    statement: str | None = None
    explicit_deny: bool = False

    def describe(self, request: Request) -> str:
        if self.allowed:
            return f"allowed by statement {self.statement}: {request.action} on {request.resource}"
        if self.explicit_deny:
            return f"denied by statement {self.statement}: {request.action} on {request.resource}"
        return f"denied (no statement allows it): {request.action} on {request.resource}"


def evaluate(policy: Mapping[str, Any], request: Request) -> Decision:
    """Evaluate one identity policy for ``request``."""
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise UnsupportedPolicyError("the policy has no Statement list")
    context = {k.lower(): v for k, v in request.context.items()}
    allowed_by = None
    for index, statement in enumerate(statements):
        name = str(statement.get("Sid") or index)
        if not _applies(statement, request, context, name):
            continue
        if statement["Effect"] == "Deny":
            return Decision(False, name, explicit_deny=True)
        allowed_by = allowed_by or name
    return Decision(allowed_by is not None, allowed_by)


def _applies(statement: Mapping[str, Any], request: Request, context: dict[str, str], name: str) -> bool:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise UnsupportedPolicyError(f"statement {name}: {', '.join(sorted(unknown))} is not modelled")
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise UnsupportedPolicyError(f"statement {name}: Effect must be Allow or Deny")
    actions = _strings(statement, "Action", name)
    resources = _strings(statement, "Resource", name)
    if not any(_glob(a.lower()).fullmatch(request.action.lower()) for a in actions):
        return False
    if not any(_glob(r).fullmatch(request.resource) for r in resources):
        return False
    return all(
        _holds(operator, key.lower(), values, context, name)
        for operator, keys in (statement.get("Condition") or {}).items()
        for key, values in keys.items()
    )


def _strings(statement: Mapping[str, Any], key: str, name: str) -> list[str]:
    value = statement.get(key)
    values = [value] if isinstance(value, str) else value
    if not values or not all(isinstance(v, str) for v in values):
        raise UnsupportedPolicyError(f"statement {name}: {key} must be a string or a list of strings")
    if any("${" in v for v in values):
        raise UnsupportedPolicyError(f"statement {name}: policy variables in {key} are not modelled")
    return values


def _holds(operator: str, key: str, values: Any, context: dict[str, str], name: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS or (base == "Null" and operator != base):
        raise UnsupportedPolicyError(f"statement {name}: condition operator {operator} is not modelled")
    wanted = [values] if isinstance(values, str) else list(values)
    if base == "Null":
        return (key not in context) == (str(wanted[0]).lower() == "true")
    if key not in context:
        return operator.endswith("IfExists")
    actual = context[key]
    if base == "StringEquals":
        return actual in wanted
    return any(_glob(pattern).fullmatch(actual) for pattern in wanted)


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters (``/`` included), ``?`` any one character."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL
    )
