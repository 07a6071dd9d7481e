"""Compile conditions (`crmcore.conditions`) to SQLAlchemy ``WHERE`` clauses.

The compiled clause gives the same answers as `crmcore.conditions.evaluate` on every supported
dialect: each leaf is two-valued (a NULL or a custom field of another JSON type makes it false,
never unknown), strings compare by code point, and custom JSON fields are type-checked inside a
``CASE`` so no cast ever sees a value of the wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR
from typing import Any

import attrs
from sqlalchemy import Float, and_, case, cast, false, func, literal, not_, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from crmcore.conditions import (
    All,
    Between,
    Compare,
    CompareOp,
    Condition,
    Contains,
    FieldDef,
    FieldSet,
    FieldType,
    In,
    IsNull,
    Not,
    Relative,
    relative_cutoff,
)
from crmcore.conditions import (
    Any as AnyOf,
)
from crmcore.errors import ValidationError
from crmcore.money import Money, minor_units

__all__ = ["SqlFields", "compile_condition", "compile_order_by"]

Expr = ColumnElement[Any]


@attrs.frozen
class SqlFields:
    """Where each declared field lives in a table.

    ``columns`` maps scalar and list fields to columns (or expressions), ``money`` maps Money
    fields to their (amount, currency) columns, ``minor_money`` maps Money fields held as integer
    minor units (cents) to their (amount in minor units, currency) expressions, compared exactly on
    every dialect, and ``json`` maps JSON object prefixes (``custom``) to JSON columns.
    """

    fields: FieldSet
    columns: Mapping[str, Expr]
    money: Mapping[str, tuple[Expr, Expr]] = attrs.field(factory=dict)
    json: Mapping[str, Expr] = attrs.field(factory=dict)
    minor_money: Mapping[str, tuple[Expr, Expr]] = attrs.field(factory=dict)


_OPS: dict[CompareOp, Callable[[Any, Any], Any]] = {
    CompareOp.EQ: lambda a, b: a == b,
    CompareOp.NE: lambda a, b: a != b,
    CompareOp.LT: lambda a, b: a < b,
    CompareOp.LE: lambda a, b: a <= b,
    CompareOp.GT: lambda a, b: a > b,
    CompareOp.GE: lambda a, b: a >= b,
}


class _Compiler:
    def __init__(self, sql: SqlFields, dialect: str, now: datetime | None) -> None:
        self.sql, self.dialect, self.now = sql, dialect, now
        self.pg = dialect == "postgresql"

    # --- entry ---

    def compile(self, cond: Condition) -> Expr:
        if isinstance(cond, All):
            return and_(true(), *(self.compile(c) for c in cond.conditions))
        if isinstance(cond, AnyOf):
            return or_(false(), *(self.compile(c) for c in cond.conditions))
        if isinstance(cond, Not):
            return not_(self.compile(cond.condition))
        fd = self.sql.fields.resolve(cond.field)  # type: ignore[attr-defined]
        if fd.type is FieldType.JSON:
            return self.json_leaf(fd, cond)
        if fd.type is FieldType.MONEY:
            if fd.name in self.sql.minor_money:
                return self.minor_money_leaf(fd, cond)
            return self.money_leaf(fd, cond)
        return self.column_leaf(fd, cond)

    # --- plain columns ---

    def column_leaf(self, fd: FieldDef, cond: Condition) -> Expr:
        col = self.sql.columns[fd.name]
        if isinstance(cond, IsNull):
            return col.is_(None)
        if isinstance(cond, Contains):
            if fd.type is FieldType.TEXT_LIST:
                return self.list_contains(col, cond.value)
            return self.guard(fd, col, self.substring(col, cond.value))
        if isinstance(cond, Compare):
            if cond.op is CompareOp.NE:
                return not_(self.guard(fd, col, col == cond.value))
            return self.guard(fd, col, _OPS[cond.op](col, cond.value))
        if isinstance(cond, In):
            return self.guard(fd, col, col.in_(list(cond.values))) if cond.values else false()
        if isinstance(cond, Between):
            return self.guard(fd, col, and_(col >= cond.low, col <= cond.high))
        if isinstance(cond, Relative):
            return self.guard(fd, col, _OPS[cond.op](col, self.cutoff(fd, cond)))
        raise ValidationError("where", f"{type(cond).__name__} is not a condition")

    def guard(self, fd: FieldDef, col: Expr, expr: Expr) -> Expr:
        """Make a comparison on a nullable column false (not NULL) when the column is NULL."""
        return and_(col.is_not(None), expr) if fd.nullable else expr

    def cutoff(self, fd: FieldDef, cond: Relative) -> Any:
        if self.now is None:
            raise ValidationError("now", f"condition on {cond.field!r} uses a relative date: pass now=")
        at = relative_cutoff(self.now, cond.amount, cond.unit)
        return at.date() if fd.type is FieldType.DATE else at

    def substring(self, col: Expr, value: str) -> Expr:
        return (func.strpos(col, value) if self.pg else func.instr(col, value)) > 0

    def list_contains(self, col: Expr, value: str) -> Expr:
        if self.pg:
            return col.op("@>", is_comparison=True)(cast(literal(json.dumps([value])), JSONB))
        items = func.json_each(col).table_valued("value")
        return select(literal(1)).select_from(items).where(items.c.value == value).exists()

    # --- Money: (amount, currency) column pairs ---

    def money_leaf(self, fd: FieldDef, cond: Condition) -> Expr:
        amount, currency = self.sql.money[fd.name]
        if isinstance(cond, IsNull):
            return amount.is_(None)
        amt = amount if self.pg else cast(amount, Float)

        def num(m: Money) -> Any:
            return m.amount if self.pg else float(m.amount)

        def cmp(op: CompareOp, m: Money) -> Expr:
            return and_(
                currency.is_not(None),
                amount.is_not(None),
                currency == m.currency,
                _OPS[op](amt, num(m)),
            )

        if isinstance(cond, Compare):
            if cond.op is CompareOp.NE:
                return not_(cmp(CompareOp.EQ, cond.value))  # type: ignore[arg-type]
            return cmp(cond.op, cond.value)  # type: ignore[arg-type]
        if isinstance(cond, In):
            return or_(false(), *(cmp(CompareOp.EQ, v) for v in cond.values))  # type: ignore[arg-type]
        if isinstance(cond, Between):
            return and_(cmp(CompareOp.GE, cond.low), cmp(CompareOp.LE, cond.high))  # type: ignore[arg-type]
        raise ValidationError("where", f"{type(cond).__name__} does not apply to money field {fd.name!r}")

    def minor_money_leaf(self, fd: FieldDef, cond: Condition) -> Expr:
        """Integer minor units against a Money value: exact, as the value is rounded the safe way.

        For an integer x and any v: x < v iff x < ceil(v), x <= v iff x <= floor(v), and so on;
        x == v only when v is whole.
        """
        amount, currency = self.sql.minor_money[fd.name]
        if isinstance(cond, IsNull):
            return amount.is_(None)

        def cmp(op: CompareOp, m: Money) -> Expr:
            scaled = m.amount.scaleb(minor_units(m.currency))
            low, high = (
                int(scaled.to_integral_value(ROUND_FLOOR)),
                int(scaled.to_integral_value(ROUND_CEILING)),
            )
            if op is CompareOp.EQ:
                expr: Expr = amount == low if low == high else false()
            elif op is CompareOp.LT:
                expr = amount < high
            elif op is CompareOp.LE:
                expr = amount <= low
            elif op is CompareOp.GT:
                expr = amount > low
            else:
                expr = amount >= high
            return and_(currency.is_not(None), amount.is_not(None), currency == m.currency, expr)

        if isinstance(cond, Compare):
            if cond.op is CompareOp.NE:
                return not_(cmp(CompareOp.EQ, cond.value))  # type: ignore[arg-type]
            return cmp(cond.op, cond.value)  # type: ignore[arg-type]
        if isinstance(cond, In):
            return or_(false(), *(cmp(CompareOp.EQ, v) for v in cond.values))  # type: ignore[arg-type]
        if isinstance(cond, Between):
            return and_(cmp(CompareOp.GE, cond.low), cmp(CompareOp.LE, cond.high))  # type: ignore[arg-type]
        raise ValidationError("where", f"{type(cond).__name__} does not apply to money field {fd.name!r}")

    # --- custom JSON fields ---

    def json_parts(self, fd: FieldDef) -> tuple[Expr, Expr, Expr]:
        """(JSON type name, the value as text, the value as float) for ``prefix.key``."""
        prefix, _, key = fd.name.partition(".")
        col = self.sql.json[prefix]
        if self.pg:
            text = col[key].as_string()  # the column is JSONB in PostgreSQL: ->> gives the text
            return func.jsonb_typeof(col[key]), text.collate("C"), cast(text, Float)
        path = f'$."{key}"'
        return (
            func.json_type(col, path),
            func.json_extract(col, path),
            cast(func.json_extract(col, path), Float),
        )

    def json_types(self, json_class: str) -> Sequence[str]:
        if self.pg:
            return {"text": ["string"], "number": ["number"], "bool": ["boolean"]}[json_class]
        return {"text": ["text"], "number": ["integer", "real"], "bool": ["true", "false"]}[json_class]

    def json_compare(self, fd: FieldDef, op: CompareOp, value: Any) -> Expr:
        jtype, as_text, as_float = self.json_parts(fd)
        if isinstance(value, bool):
            if op is not CompareOp.EQ:
                raise ValidationError("where", "booleans only compare with ==")
            if self.pg:
                return case((jtype == "boolean", as_text == ("true" if value else "false")), else_=false())
            return func.coalesce(jtype, "") == ("true" if value else "false")
        if isinstance(value, int | float):
            guard, expr = jtype.in_(self.json_types("number")), _OPS[op](as_float, float(value))
        else:
            guard, expr = jtype.in_(self.json_types("text")), _OPS[op](as_text, value)
        return case((guard, expr), else_=false())

    def json_leaf(self, fd: FieldDef, cond: Condition) -> Expr:
        if isinstance(cond, IsNull):
            jtype = self.json_parts(fd)[0]
            return func.coalesce(jtype, "null") == "null"
        if isinstance(cond, Compare):
            if cond.op is CompareOp.NE:
                return not_(self.json_compare(fd, CompareOp.EQ, cond.value))
            return self.json_compare(fd, cond.op, cond.value)
        if isinstance(cond, In):
            return or_(false(), *(self.json_compare(fd, CompareOp.EQ, v) for v in cond.values))
        if isinstance(cond, Between):
            return and_(
                self.json_compare(fd, CompareOp.GE, cond.low),
                self.json_compare(fd, CompareOp.LE, cond.high),
            )
        if isinstance(cond, Contains):
            jtype, as_text, _ = self.json_parts(fd)
            return case(
                (jtype.in_(self.json_types("text")), self.substring(as_text, cond.value)),
                else_=false(),
            )
        raise ValidationError("where", f"{type(cond).__name__} does not apply to custom field {fd.name!r}")


def compile_condition(cond: Condition, sql: SqlFields, dialect: str, now: datetime | None = None) -> Expr:
    """A ``WHERE`` clause for ``cond`` (already checked) in ``dialect`` ("sqlite", "postgresql")."""
    return _Compiler(sql, dialect, now).compile(cond)


def compile_order_by(order_by: Sequence[str], sql: SqlFields, id_column: Expr) -> list[UnaryExpression[Any]]:
    """``ORDER BY`` terms: NULLs first ascending and last descending, then the id as tie-breaker."""
    terms: list[UnaryExpression[Any]] = []
    for spec in order_by:
        descending = spec.startswith("-")
        col = sql.columns[spec.lstrip("-")]
        terms.append(col.desc().nulls_last() if descending else col.asc().nulls_first())
    terms.append(id_column.asc())
    return terms
