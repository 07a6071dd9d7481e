"""The condition language: structured, serializable filters over declared fields. No ``eval``.

Build conditions with `Field`::

    (Field("country") == "DE") & Field("tags").contains("vip") & Field("created_at").older_than(days=90)

A condition is plain data (attrs classes that round-trip through the library converter), checks
itself against an entity's declared `FieldSet`, evaluates on objects in Python, and is compiled to a
SQL ``WHERE`` clause by the SQL store (`crmcore.storage.sql`) with the same answers.

Semantics are two-valued: a comparison with a missing value (``None``, an absent custom field, or a
custom field of another JSON type) is false, never "unknown"; ``Not`` flips exactly that answer.
"""

from __future__ import annotations

import enum
import functools
import math
import operator
import re
import typing as t
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime

import attrs
from dateutil.relativedelta import relativedelta

from crmcore.clock import require_aware
from crmcore.errors import FieldError, ValidationError
from crmcore.money import Money

if t.TYPE_CHECKING:
    import cattrs

__all__ = [
    "All",
    "Any",
    "Between",
    "Compare",
    "CompareOp",
    "Condition",
    "Contains",
    "Field",
    "FieldDef",
    "FieldSet",
    "FieldType",
    "In",
    "IsNull",
    "MISSING",
    "Not",
    "Relative",
    "TimeUnit",
    "Value",
    "check_condition",
    "enum_field",
    "evaluate",
    "needs_now",
    "record_fields",
    "register_condition_hooks",
    "relative_cutoff",
    "sort_key",
    "structure_condition",
    "unstructure_condition",
]

Value = t.Union[None, bool, int, float, str, datetime, date, Money, enum.Enum]  # noqa: UP007 - runtime alias
"""What a condition compares with; enum members are kept as their values."""


class _Missing(enum.Enum):
    MISSING = "missing"

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing.MISSING
"""What a getter returns for a custom field that is not set."""


class FieldType(enum.Enum):
    """What kind of value a declared field holds; decides which operators apply."""

    TEXT = "text"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    MONEY = "money"
    TEXT_LIST = "text_list"
    JSON = "json"


class CompareOp(enum.Enum):
    """Comparison operators."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


class TimeUnit(enum.Enum):
    """Units for relative dates; months and years follow the calendar (dateutil relativedelta)."""

    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"


_ORDERED = {
    FieldType.TEXT,
    FieldType.INTEGER,
    FieldType.DATETIME,
    FieldType.DATE,
    FieldType.MONEY,
    FieldType.JSON,
}
_SORTABLE = {
    FieldType.TEXT,
    FieldType.INTEGER,
    FieldType.BOOLEAN,
    FieldType.DATETIME,
    FieldType.DATE,
}
_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


@attrs.frozen
class FieldDef:
    """A field conditions may use: its name, type, how to read it from an object, allowed values."""

    name: str
    type: FieldType
    get: Callable[[t.Any], t.Any] = attrs.field(eq=False, repr=False)
    nullable: bool = True
    choices: tuple[str, ...] | None = None


def enum_field(name: str, cls: type[enum.Enum], attribute: str | None = None) -> FieldDef:
    """A required text field holding an enum member's value; the enum's values are its choices."""
    get = operator.attrgetter(attribute or name)
    return FieldDef(
        name, FieldType.TEXT, lambda obj: get(obj).value, nullable=False, choices=tuple(m.value for m in cls)
    )


def record_fields() -> list[FieldDef]:
    """``id``, ``created_at``, ``updated_at`` and ``version``: what every stored aggregate has."""
    return [
        FieldDef("id", FieldType.TEXT, operator.attrgetter("id"), nullable=False),
        FieldDef("created_at", FieldType.DATETIME, operator.attrgetter("created_at"), nullable=False),
        FieldDef("updated_at", FieldType.DATETIME, operator.attrgetter("updated_at"), nullable=False),
        FieldDef("version", FieldType.INTEGER, operator.attrgetter("version"), nullable=False),
    ]


@attrs.frozen
class FieldSet:
    """The declared, queryable fields of one entity; nothing outside it can be reached.

    ``json_prefixes`` name JSON object fields (``custom``) whose keys are addressable as
    ``custom.<key>``; ``json_getters`` read that object from an entity.
    """

    entity: str
    fields: Mapping[str, FieldDef]
    json_getters: Mapping[str, Callable[[t.Any], Mapping[str, t.Any]]] = attrs.field(factory=dict, eq=False)

    @classmethod
    def of(
        cls,
        entity: str,
        fields: Iterable[FieldDef],
        json: Mapping[str, Callable[[t.Any], Mapping[str, t.Any]]] | None = None,
    ) -> FieldSet:
        """Build a field set from field definitions and JSON-object getters."""
        return cls(entity, {f.name: f for f in fields}, dict(json or {}))

    def resolve(self, name: str) -> FieldDef:
        """The definition of ``name``; `ValidationError` listing the known fields if there is none."""
        found = self.fields.get(name)
        if found is not None:
            return found
        prefix, _, key = name.partition(".")
        getter = self.json_getters.get(prefix)
        if getter is not None and key:
            if not _CUSTOM_KEY.match(key):
                raise ValidationError("field", f"{key!r} is not a valid {prefix} field key")

            def get(obj: t.Any) -> t.Any:
                return getter(obj).get(key, MISSING)

            return FieldDef(name, FieldType.JSON, get)
        known = ", ".join([*sorted(self.fields), *(f"{p}.<key>" for p in sorted(self.json_getters))])
        raise ValidationError("field", f"unknown field {name!r} on {self.entity}; known fields: {known}")


class Condition:
    """Base of condition nodes: combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Condition) -> All:
        return All(*_parts(self, All), *_parts(other, All))

    def __or__(self, other: Condition) -> Any:
        return Any(*_parts(self, Any), *_parts(other, Any))

    def __invert__(self) -> Not:
        return Not(self)


def _parts(cond: Condition, kind: type[All | Any]) -> tuple[Condition, ...]:
    """``a & b & c`` builds one flat All, not All(All(a, b), c)."""
    return cond.conditions if type(cond) is kind else (cond,)


def _plain(value: t.Any) -> t.Any:
    """Enum members compare as their values, as they are stored."""
    return value.value if isinstance(value, enum.Enum) else value


def _value_tuple(values: Iterable[Value]) -> tuple[Value, ...]:
    return tuple(_plain(v) for v in values)


def _op(value: t.Any) -> CompareOp:
    return value if isinstance(value, CompareOp) else CompareOp(value)


def _unit(value: t.Any) -> TimeUnit:
    return value if isinstance(value, TimeUnit) else TimeUnit(value)


@attrs.frozen
class Compare(Condition):
    """``field <op> value``."""

    field: str
    op: CompareOp = attrs.field(converter=_op)
    value: Value = attrs.field(converter=_plain)


@attrs.frozen(cache_hash=True)
class In(Condition):
    """``field`` equals one of ``values``."""

    field: str
    values: tuple[Value, ...] = attrs.field(converter=_value_tuple)


@attrs.frozen
class Contains(Condition):
    """A text field contains ``value`` as a substring (case-sensitive), or a list field holds it."""

    field: str
    value: str


@attrs.frozen
class Between(Condition):
    """``low <= field <= high``, both ends included."""

    field: str
    low: Value = attrs.field(converter=_plain)
    high: Value = attrs.field(converter=_plain)


@attrs.frozen
class IsNull(Condition):
    """The field has no value (``None``, or an absent custom field)."""

    field: str


@attrs.frozen
class Relative(Condition):
    """``field <op> now + amount * unit``: relative dates such as "more than 90 days ago".

    ``Field("last_seen").older_than(days=90)`` is ``Relative("last_seen", "lt", -90, "days")``.
    """

    field: str
    op: CompareOp = attrs.field(converter=_op)
    amount: int
    unit: TimeUnit = attrs.field(converter=_unit)


@attrs.frozen(init=False)
class All(Condition):
    """Every condition holds (true when empty)."""

    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        self.__attrs_init__(tuple(conditions))


@attrs.frozen(init=False)
class Any(Condition):
    """At least one condition holds (false when empty)."""

    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        self.__attrs_init__(tuple(conditions))


@attrs.frozen
class Not(Condition):
    """The condition does not hold."""

    condition: Condition


class Field:
    """Builds conditions on one field: ``Field("country") == "DE"``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Field({self.name!r})"

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, CompareOp.EQ, t.cast(Value, value))

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, CompareOp.NE, t.cast(Value, value))

    def __lt__(self, value: Value) -> Compare:
        return Compare(self.name, CompareOp.LT, value)

    def __le__(self, value: Value) -> Compare:
        return Compare(self.name, CompareOp.LE, value)

    def __gt__(self, value: Value) -> Compare:
        return Compare(self.name, CompareOp.GT, value)

    def __ge__(self, value: Value) -> Compare:
        return Compare(self.name, CompareOp.GE, value)

    __hash__ = None  # type: ignore[assignment]

    def in_(self, values: Iterable[Value]) -> In:
        """The field equals one of ``values``."""
        return In(self.name, tuple(values))

    def not_in(self, values: Iterable[Value]) -> Not:
        """The field equals none of ``values`` (a missing value counts as none)."""
        return Not(In(self.name, tuple(values)))

    def contains(self, value: str) -> Contains:
        """Substring of a text field, or member of a list field."""
        return Contains(self.name, value)

    def between(self, low: Value, high: Value) -> Between:
        """``low <= field <= high``."""
        return Between(self.name, low, high)

    def is_null(self) -> IsNull:
        """The field has no value."""
        return IsNull(self.name)

    def is_not_null(self) -> Not:
        """The field has a value."""
        return Not(IsNull(self.name))

    def older_than(self, amount: int = 0, unit: TimeUnit | str = TimeUnit.DAYS, **kw: int) -> Relative:
        """Strictly before ``now - amount unit`` ("more than 90 days ago"): ``older_than(days=90)``."""
        amount, unit = _amount_unit(amount, unit, kw)
        return Relative(self.name, CompareOp.LT, -amount, unit)

    def within_last(self, amount: int = 0, unit: TimeUnit | str = TimeUnit.DAYS, **kw: int) -> All:
        """Between ``now - amount unit`` and ``now``, both included: ``within_last(days=30)``."""
        amount, unit = _amount_unit(amount, unit, kw)
        return All(
            Relative(self.name, CompareOp.GE, -amount, unit),
            Relative(self.name, CompareOp.LE, 0, unit),
        )

    def within_next(self, amount: int = 0, unit: TimeUnit | str = TimeUnit.DAYS, **kw: int) -> All:
        """Between ``now`` and ``now + amount unit``, both included: ``within_next(weeks=2)``."""
        amount, unit = _amount_unit(amount, unit, kw)
        return All(
            Relative(self.name, CompareOp.GE, 0, unit),
            Relative(self.name, CompareOp.LE, amount, unit),
        )


def _amount_unit(amount: int, unit: TimeUnit | str, kw: Mapping[str, int]) -> tuple[int, TimeUnit]:
    if kw:
        if len(kw) != 1 or amount:
            raise ValidationError("amount", "give one offset, e.g. days=90")
        ((name, amount),) = kw.items()
        unit = name
    try:
        return amount, _unit(unit)
    except ValueError:
        valid = ", ".join(u.value for u in TimeUnit)
        raise ValidationError("unit", f"{unit!r} is not a time unit; use one of {valid}") from None


def relative_cutoff(now: datetime, amount: int, unit: TimeUnit) -> datetime:
    """``now`` moved by ``amount`` ``unit`` (calendar-aware for months and years)."""
    return require_aware(now, "now") + relativedelta(**{unit.value: amount})  # type: ignore[arg-type]


# --- checking ---------------------------------------------------------------------------------


def _json_class(value: t.Any) -> str | None:
    """The JSON type a value compares within: "bool", "number", "text", or None for others."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _value_problem(fd: FieldDef, value: t.Any) -> str | None:
    """Why ``value`` cannot be compared with field ``fd``, or None if it can."""
    ft = fd.type
    if value is None:
        return "compare with None is not allowed; use is_null()"
    ok = {
        FieldType.TEXT: isinstance(value, str),
        FieldType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        FieldType.BOOLEAN: isinstance(value, bool),
        FieldType.DATETIME: isinstance(value, datetime),
        FieldType.DATE: isinstance(value, date) and not isinstance(value, datetime),
        FieldType.MONEY: isinstance(value, Money),
        FieldType.JSON: _json_class(value) is not None,
        FieldType.TEXT_LIST: False,
    }[ft]
    if not ok:
        return f"{type(value).__name__} value {value!r} cannot be compared with {ft.value} field {fd.name!r}"
    if ft is FieldType.DATETIME and (value.tzinfo is None or value.utcoffset() is None):
        return f"naive datetime {value.isoformat()} refused: give it a time zone"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, str) and "\x00" in value:
        return "text values must not contain NUL characters"
    if fd.choices is not None and value not in fd.choices:
        return f"{value!r} is not a valid {fd.name}; choose one of {', '.join(fd.choices)}"
    return None


def _check(cond: Condition, fields: FieldSet, path: str, errors: list[FieldError]) -> None:
    def fail(reason: str) -> None:
        errors.append(FieldError(path, reason))

    if isinstance(cond, All | Any):
        for i, sub in enumerate(cond.conditions):
            _check(sub, fields, f"{path}.conditions[{i}]", errors)
        return
    if isinstance(cond, Not):
        _check(cond.condition, fields, f"{path}.condition", errors)
        return
    if not isinstance(cond, Compare | In | Contains | Between | IsNull | Relative):
        fail(f"{type(cond).__name__} is not a condition")
        return
    try:
        fd = fields.resolve(cond.field)
    except ValidationError as exc:
        fail(exc.reason)
        return
    ft = fd.type
    if isinstance(cond, Compare):
        if cond.op not in (CompareOp.EQ, CompareOp.NE) and ft not in _ORDERED:
            fail(f"{ft.value} field {fd.name!r} cannot be compared with {cond.op.value}")
        elif ft is FieldType.TEXT_LIST:
            fail(f"list field {fd.name!r} supports contains() only")
        elif (problem := _value_problem(fd, cond.value)) is not None:
            fail(problem)
        elif cond.op not in (CompareOp.EQ, CompareOp.NE) and _json_class(cond.value) == "bool":
            fail("booleans have no order; use == or !=")
    elif isinstance(cond, In):
        if ft is FieldType.TEXT_LIST:
            fail(f"list field {fd.name!r} supports contains() only")
        for v in cond.values:
            if (problem := _value_problem(fd, v)) is not None:
                fail(problem)
    elif isinstance(cond, Contains):
        if ft not in (FieldType.TEXT, FieldType.TEXT_LIST, FieldType.JSON):
            fail(f"contains() needs a text or list field, {fd.name!r} is {ft.value}")
        elif not isinstance(cond.value, str):
            fail(f"contains() takes text, not {type(cond.value).__name__}")
        elif "\x00" in cond.value:
            fail("text values must not contain NUL characters")
    elif isinstance(cond, Between):
        if ft not in _ORDERED:
            fail(f"{ft.value} field {fd.name!r} has no order for between()")
            return
        problems = [p for p in (_value_problem(fd, cond.low), _value_problem(fd, cond.high)) if p]
        for p in problems:
            fail(p)
        if not problems:
            if ft is FieldType.JSON and _json_class(cond.low) != _json_class(cond.high):
                fail("between() bounds must be of one type")
            elif ft is FieldType.MONEY and cond.low.currency != cond.high.currency:  # type: ignore[union-attr]
                fail("between() bounds must be in one currency")
            elif ft is FieldType.JSON and _json_class(cond.low) == "bool":
                fail("between() needs numbers or text")
            elif cond.low > cond.high:  # type: ignore[operator]
                fail(f"between() low {cond.low!r} is above high {cond.high!r}")
    elif isinstance(cond, Relative):
        if ft not in (FieldType.DATETIME, FieldType.DATE):
            fail(f"relative dates need a date or datetime field, {fd.name!r} is {ft.value}")
    elif isinstance(cond, IsNull) and ft is FieldType.TEXT_LIST:
        fail(f"list field {fd.name!r} is never null; use Not(contains(...)) or check emptiness")


def check_condition(cond: Condition, fields: FieldSet) -> None:
    """Refuse a condition that names unknown fields or compares values of the wrong type.

    Raises:
        ValidationError: listing every problem, each with its path inside the condition.
    """
    errors: list[FieldError] = []
    _check(cond, fields, "where", errors)
    if errors:
        raise ValidationError.from_errors(errors)


def needs_now(cond: Condition) -> bool:
    """Whether evaluating ``cond`` needs the current time (it has a relative date)."""
    if isinstance(cond, Relative):
        return True
    if isinstance(cond, All | Any):
        return any(needs_now(c) for c in cond.conditions)
    if isinstance(cond, Not):
        return needs_now(cond.condition)
    return False


# --- evaluation -------------------------------------------------------------------------------


def _eq(ft: FieldType, actual: t.Any, value: t.Any) -> bool:
    if actual is None or actual is MISSING:
        return False
    if ft is FieldType.JSON:
        return _json_class(actual) == _json_class(value) and actual == value
    if ft is FieldType.MONEY:
        return bool(actual.currency == value.currency and actual.amount == value.amount)
    return bool(actual == value)


def _ordered(ft: FieldType, actual: t.Any, value: t.Any, op: CompareOp) -> bool:
    if actual is None or actual is MISSING:
        return False
    if ft is FieldType.JSON:
        if _json_class(actual) != _json_class(value) or _json_class(value) == "bool":
            return False
    elif ft is FieldType.MONEY:
        if actual.currency != value.currency:
            return False
        actual, value = actual.amount, value.amount
    if op is CompareOp.LT:
        return bool(actual < value)
    if op is CompareOp.LE:
        return bool(actual <= value)
    if op is CompareOp.GT:
        return bool(actual > value)
    return bool(actual >= value)


def _relative_value(fd: FieldDef, cond: Relative, now: datetime | None) -> datetime | date:
    if now is None:
        raise ValidationError("now", f"condition on {cond.field!r} uses a relative date: pass now=")
    cutoff = relative_cutoff(now, cond.amount, cond.unit)
    return cutoff.date() if fd.type is FieldType.DATE else cutoff


_HASHED = {FieldType.TEXT, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME}
"""Types whose equality is plain ``==``, so `In` can test membership in a set."""


@functools.lru_cache(maxsize=64)
def _value_set(cond: In) -> frozenset[t.Any]:
    # In caches its hash, so a long list is hashed once, not once per object evaluated.
    return frozenset(cond.values)


def evaluate(cond: Condition, obj: t.Any, fields: FieldSet, now: datetime | None = None) -> bool:
    """Whether ``obj`` satisfies ``cond`` (check the condition first with `check_condition`).

    ``now`` is required when the condition uses relative dates; engines pass their own ``now``.
    """
    if isinstance(cond, All):
        return all(evaluate(c, obj, fields, now) for c in cond.conditions)
    if isinstance(cond, Any):
        return any(evaluate(c, obj, fields, now) for c in cond.conditions)
    if isinstance(cond, Not):
        return not evaluate(cond.condition, obj, fields, now)
    fd = fields.resolve(t.cast(t.Any, cond).field)
    actual = fd.get(obj)
    ft = fd.type
    if isinstance(cond, Compare):
        if cond.op is CompareOp.EQ:
            return _eq(ft, actual, cond.value)
        if cond.op is CompareOp.NE:
            return not _eq(ft, actual, cond.value)
        return _ordered(ft, actual, cond.value, cond.op)
    if isinstance(cond, In):
        if ft in _HASHED:
            return actual is not None and actual in _value_set(cond)
        return any(_eq(ft, actual, v) for v in cond.values)
    if isinstance(cond, Contains):
        if ft is FieldType.TEXT_LIST:
            return cond.value in actual
        return isinstance(actual, str) and cond.value in actual
    if isinstance(cond, Between):
        return _ordered(ft, actual, cond.low, CompareOp.GE) and _ordered(ft, actual, cond.high, CompareOp.LE)
    if isinstance(cond, IsNull):
        return actual is None or actual is MISSING
    if isinstance(cond, Relative):
        return _ordered(ft, actual, _relative_value(fd, cond, now), cond.op)
    raise ValidationError("where", f"{type(cond).__name__} is not a condition")


def sort_key(fields: FieldSet, order_by: Iterable[str]) -> list[tuple[Callable[[t.Any], t.Any], bool]]:
    """Python sort keys for ``order_by`` (names, ``-name`` for descending); None sorts first.

    Returns (key function, descending) pairs, to apply from last to first with a stable sort.

    Raises:
        ValidationError: for unknown or unsortable fields.
    """
    keys: list[tuple[Callable[[t.Any], t.Any], bool]] = []
    errors: list[FieldError] = []
    for i, spec in enumerate(order_by):
        descending = spec.startswith("-")
        name = spec[1:] if descending else spec
        try:
            fd = fields.resolve(name)
        except ValidationError as exc:
            errors.append(FieldError(f"order_by[{i}]", exc.reason))
            continue
        if fd.type not in _SORTABLE:
            errors.append(FieldError(f"order_by[{i}]", f"cannot sort by {fd.type.value} field {name!r}"))
            continue

        def key(obj: t.Any, get: Callable[[t.Any], t.Any] = fd.get) -> tuple[bool, t.Any]:
            value = get(obj)
            return (value is not None, value if value is not None else 0)

        keys.append((key, descending))
    if errors:
        raise ValidationError.from_errors(errors)
    return keys


# --- serialization ----------------------------------------------------------------------------

_NODES: dict[str, type[Condition]] = {
    "compare": Compare,
    "in": In,
    "contains": Contains,
    "between": Between,
    "is_null": IsNull,
    "relative": Relative,
    "all": All,
    "any": Any,
    "not": Not,
}
_TAGS = {cls: tag for tag, cls in _NODES.items()}


def _unstructure_value(value: Value) -> t.Any:
    if isinstance(value, datetime):
        return {"$datetime": require_aware(value, "value").isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Money):
        return {"$money": {"amount": str(value.amount), "currency": value.currency}}
    return value


def _structure_value(data: t.Any, path: str) -> Value:
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, dict) and len(data) == 1:
        ((tag, raw),) = data.items()
        try:
            if tag == "$datetime" and isinstance(raw, str):
                return require_aware(datetime.fromisoformat(raw), path)
            if tag == "$date" and isinstance(raw, str):
                return date.fromisoformat(raw)
            if tag == "$money" and isinstance(raw, dict) and set(raw) == {"amount", "currency"}:
                return Money(raw["amount"], raw["currency"])
        except ValidationError as exc:
            raise ValidationError(path, exc.reason) from None
        except ValueError as exc:
            raise ValidationError(path, f"bad {tag} value {raw!r}: {exc}") from None
    raise ValidationError(
        path, f"{data!r} is not a condition value (a JSON scalar, or $datetime/$date/$money object)"
    )


def unstructure_condition(cond: Condition) -> dict[str, t.Any]:
    """A condition as JSON-ready data: ``{"type": "compare", "field": ..., "op": "eq", ...}``."""
    tag = _TAGS.get(type(cond))
    if tag is None:
        raise ValidationError("where", f"{type(cond).__name__} is not a condition")
    out: dict[str, t.Any] = {"type": tag}
    if isinstance(cond, All | Any):
        out["conditions"] = [unstructure_condition(c) for c in cond.conditions]
    elif isinstance(cond, Not):
        out["condition"] = unstructure_condition(cond.condition)
    else:
        for a in attrs.fields(type(cond)):  # type: ignore[arg-type]
            value = getattr(cond, a.name)
            if isinstance(value, enum.Enum):
                out[a.name] = value.value
            elif a.name == "values":
                out[a.name] = [_unstructure_value(v) for v in value]
            elif a.name in ("value", "low", "high"):
                out[a.name] = _unstructure_value(value)
            else:
                out[a.name] = value
    return out


def structure_condition(data: t.Any, path: str = "") -> Condition:
    """Rebuild a condition from `unstructure_condition` data; bad data names its path."""
    if not isinstance(data, dict):
        raise ValidationError(path, f"a condition must be an object, not {type(data).__name__}")
    tag = data.get("type")
    cls = _NODES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ValidationError(f"{path}.type".lstrip("."), f"{tag!r} is not one of {', '.join(_NODES)}")
    names = ["conditions"] if cls in (All, Any) else [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
    errors = [
        FieldError(f"{path}.{k}".lstrip("."), "unknown field") for k in data if k not in (*names, "type")
    ]
    errors += [FieldError(f"{path}.{k}".lstrip("."), "is required") for k in names if k not in data]
    if errors:
        raise ValidationError.from_errors(errors)

    def sub(key: str) -> str:
        return f"{path}.{key}".lstrip(".")

    if cls in (All, Any):
        items = data["conditions"]
        if not isinstance(items, list):
            raise ValidationError(sub("conditions"), "must be a list")
        return cls(*(structure_condition(c, f"{sub('conditions')}[{i}]") for i, c in enumerate(items)))
    if cls is Not:
        return Not(structure_condition(data["condition"], sub("condition")))
    kwargs: dict[str, t.Any] = {}
    for name in names:
        raw = data[name]
        if name in ("value", "low", "high"):
            kwargs[name] = _structure_value(raw, sub(name))
        elif name == "values":
            if not isinstance(raw, list):
                raise ValidationError(sub(name), "must be a list")
            kwargs[name] = tuple(_structure_value(v, f"{sub(name)}[{i}]") for i, v in enumerate(raw))
        elif name == "op":
            try:
                kwargs[name] = CompareOp(raw)
            except ValueError:
                raise ValidationError(
                    sub(name), f"{raw!r} is not one of {', '.join(o.value for o in CompareOp)}"
                ) from None
        elif name == "unit":
            try:
                kwargs[name] = TimeUnit(raw)
            except ValueError:
                raise ValidationError(
                    sub(name), f"{raw!r} is not one of {', '.join(u.value for u in TimeUnit)}"
                ) from None
        elif name == "amount":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValidationError(sub(name), "must be an integer")
            kwargs[name] = raw
        else:
            if not isinstance(raw, str):
                raise ValidationError(sub(name), f"must be a string, not {type(raw).__name__}")
            kwargs[name] = raw
    return cls(**kwargs)


def register_condition_hooks(conv: cattrs.Converter) -> None:
    """Make ``conv`` (un)structure every condition node as tagged JSON-ready data."""

    def is_condition(cls: t.Any) -> bool:
        return isinstance(cls, type) and issubclass(cls, Condition)

    conv.register_unstructure_hook_func(is_condition, unstructure_condition)
    conv.register_structure_hook_func(is_condition, lambda data, _: structure_condition(data))
