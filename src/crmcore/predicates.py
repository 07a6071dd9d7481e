"""Conditions compiled into Python closures once, for engines that test the same rules many times.

`crmcore.conditions.evaluate` walks the tree and resolves each field name on every call; the
assignment router and lead scoring try the same rules on every subject, so `compile_condition`
resolves the getters once and keeps a closure per node. The closures give exactly `evaluate`'s
answers (a test compares them on random conditions); nodes without a fast form fall back to
`evaluate` itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from crmcore.conditions import (
    All,
    Compare,
    CompareOp,
    Condition,
    FieldSet,
    FieldType,
    In,
    IsNull,
    Not,
    evaluate,
)
from crmcore.conditions import Any as AnyOf

__all__ = ["Predicate", "compile_condition", "requirements"]

Predicate = Callable[[Any, "datetime | None"], bool]
"""``(subject, now) -> bool``."""

_PLAIN = {FieldType.TEXT, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME, FieldType.BOOLEAN}
"""Types whose getters give None or a value that compares with plain ``==`` (never MISSING)."""
_ORDERED_PLAIN = {FieldType.TEXT, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME}
_ORDER_OPS: dict[CompareOp, Callable[[Any, Any], Any]] = {
    CompareOp.LT: operator.lt,
    CompareOp.LE: operator.le,
    CompareOp.GT: operator.gt,
    CompareOp.GE: operator.ge,
}


def compile_condition(cond: Condition, fields: FieldSet) -> Predicate:
    """A closure answering ``evaluate(cond, subject, fields, now)`` (check ``cond`` first)."""
    if isinstance(cond, All):
        parts = tuple(compile_condition(c, fields) for c in cond.conditions)
        if len(parts) == 1:
            return parts[0]

        def all_of(obj: Any, now: datetime | None) -> bool:
            # A plain loop: all() over a generator costs a frame per call, on every rule tried.
            for part in parts:  # noqa: SIM110
                if not part(obj, now):
                    return False
            return True

        return all_of
    if isinstance(cond, AnyOf):
        parts = tuple(compile_condition(c, fields) for c in cond.conditions)
        if len(parts) == 1:
            return parts[0]

        def any_of(obj: Any, now: datetime | None) -> bool:
            for part in parts:  # noqa: SIM110
                if part(obj, now):
                    return True
            return False

        return any_of
    if isinstance(cond, Not):
        inner = compile_condition(cond.condition, fields)
        return lambda obj, now: not inner(obj, now)
    fast = _leaf(cond, fields)
    if fast is not None:
        return fast
    return lambda obj, now: evaluate(cond, obj, fields, now)


def _leaf(cond: Condition, fields: FieldSet) -> Predicate | None:
    """A fast closure for the common leaves on plain fields, or None to use `evaluate`."""
    if not isinstance(cond, Compare | In | IsNull):
        return None
    fd = fields.resolve(cond.field)
    if fd.type not in _PLAIN:
        return None
    get = fd.get
    if isinstance(cond, IsNull):
        return lambda obj, now: get(obj) is None
    if isinstance(cond, In):
        values = frozenset(cond.values)
        return lambda obj, now: (value := get(obj)) is not None and value in values
    target = cond.value
    if cond.op is CompareOp.EQ:
        # target is never None (checked), so a missing value is simply unequal.
        return lambda obj, now: bool(get(obj) == target)
    if cond.op is CompareOp.NE:
        return lambda obj, now: bool(get(obj) != target)
    if fd.type not in _ORDERED_PLAIN:
        return None
    op = _ORDER_OPS[cond.op]
    return lambda obj, now: (value := get(obj)) is not None and bool(op(value, target))


def requirements(cond: Condition, fields: FieldSet) -> dict[str, frozenset[Any]]:
    """Values some plain fields must hold for ``cond`` to be true (``field == v``, ``field in (...)``).

    Only what is certain: parts of an ``All`` add requirements, anything else adds none. A
    subject whose value is outside a rule's set cannot match it, so the router can skip the rule.
    """
    if isinstance(cond, All):
        found: dict[str, frozenset[Any]] = {}
        for part in cond.conditions:
            for name, values in requirements(part, fields).items():
                found[name] = found[name] & values if name in found else values
        return found
    if isinstance(cond, Compare | In) and not (isinstance(cond, Compare) and cond.op is not CompareOp.EQ):
        fd = fields.resolve(cond.field)
        if fd.type in _PLAIN and fd.name in fields.fields:
            values = frozenset([cond.value]) if isinstance(cond, Compare) else frozenset(cond.values)
            return {fd.name: values}
    return {}
