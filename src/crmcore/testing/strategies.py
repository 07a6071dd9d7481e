"""Hypothesis strategies for crmcore objects and conditions, shared by every test suite.

Values come from small pools on purpose, so random conditions match some objects and not others,
and so orderings meet ties, NULLs, case and non-ASCII text.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from crmcore.conditions import (
    All,
    Between,
    Compare,
    CompareOp,
    Condition,
    Contains,
    FieldType,
    In,
    IsNull,
    Not,
    Relative,
    TimeUnit,
)
from crmcore.conditions import (
    Any as AnyOf,
)
from crmcore.customers.customer import (
    CUSTOMER_FIELDS,
    Address,
    Customer,
    CustomerKind,
    EmailAddress,
    PhoneNumber,
)
from crmcore.money import Money

__all__ = [
    "NOW",
    "TEXT_POOL",
    "aware_datetimes",
    "conditions",
    "custom_values",
    "customers",
    "json_values",
    "money",
    "order_by",
]

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
"""The fixed "now" of generated data and relative-date conditions."""

TEXT_POOL = ("a", "A", "ab", "b", "Ab", "ä", "é", "z", "ß", "日本", "a b", "zz")
"""Text that exercises case, code-point order, non-ASCII and substrings."""

_ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
_TAGS = ("vip", "b2b", "new", "churn-risk", "Vip")
_CUSTOM_KEYS = ("tier", "score", "flag", "note")
_CURRENCIES = ("EUR", "USD", "JPY")


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes in several offsets, around `NOW` (so relative dates both match and miss)."""
    return st.builds(
        lambda seconds, micro, zone: (NOW + timedelta(seconds=seconds, microseconds=micro)).astimezone(zone),
        st.integers(-400 * 86400, 60 * 86400),
        st.integers(0, 999_999),
        st.sampled_from(_ZONES),
    )


def dates() -> st.SearchStrategy[date]:
    """Dates within a few years of `NOW`."""
    return st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31))


def money() -> st.SearchStrategy[Money]:
    """Money in a few currencies with amounts of up to 12 significant digits."""
    return st.builds(
        lambda cents, currency: Money(Decimal(cents).scaleb(-2), currency),
        st.integers(-(10**11), 10**11) | st.sampled_from([0, 100, 150, 10_000]),
        st.sampled_from(_CURRENCIES),
    )


def json_values() -> st.SearchStrategy[Any]:
    """JSON values, nested, with floats that survive every store's JSON column unchanged."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 4))
        | st.text(max_size=12).filter(lambda s: "\x00" not in s)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_CUSTOM_KEYS), inner, max_size=3)
        ),
        max_leaves=6,
    )


def custom_values() -> st.SearchStrategy[Any]:
    """Custom-field values from a pool mixing types, so typed comparisons meet mismatches."""
    return st.sampled_from([0, 1, 3, -2.5, 2.5, 10, "a", "b", "ab", "B", True, False, None, [1], {"x": 1}])


def _texts() -> st.SearchStrategy[str]:
    return st.sampled_from(TEXT_POOL)


def customers(*, rich: bool = False) -> st.SearchStrategy[Customer]:
    """Customers with every field type set or empty; ``rich`` draws free-form text and JSON."""
    free_text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and s.isprintable())
    names = free_text if rich else _texts()
    custom = (
        st.dictionaries(st.sampled_from(_CUSTOM_KEYS), json_values(), max_size=4)
        if rich
        else st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=3)
    )
    emails = st.lists(
        st.builds(
            EmailAddress,
            address=st.sampled_from(["ada@example.com", "bob@example.org", "x.y+z@mail.example.de"]),
            label=st.sampled_from(["work", "home"]),
        ),
        max_size=2,
    )
    phones = st.lists(
        st.builds(
            PhoneNumber,
            number=st.sampled_from(["+49 30 1234567", "(555) 010-9999", "+1-202-555-0100"]),
        ),
        max_size=2,
    )
    addresses = st.lists(
        st.builds(
            Address,
            country=st.sampled_from(["DE", "FR", "US", "JP"]),
            city=st.sampled_from(["", "Berlin", "Paris", "a", "Ä"]),
            line1=free_text if rich else st.just("Main St 1"),
            postal_code=st.sampled_from(["", "10115"]),
        ),
        max_size=2,
    )
    return st.builds(
        Customer,
        name=names,
        kind=st.sampled_from(CustomerKind),
        emails=emails,
        phones=phones,
        addresses=addresses,
        tags=st.lists(st.sampled_from(_TAGS), max_size=3),
        owner=st.none() | _texts().map(lambda s: f"user-{ord(s[0])}") | st.sampled_from(["u1", "u2"]),
        currency=st.none() | st.sampled_from(_CURRENCIES),
        credit_limit=st.none() | money(),
        birthday=st.none() | dates(),
        custom=custom,
        created_at=aware_datetimes(),
        updated_at=aware_datetimes(),
    )


_VALUES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.TEXT: _texts(),
    FieldType.INTEGER: st.integers(0, 3),
    FieldType.DATETIME: aware_datetimes(),
    FieldType.DATE: dates(),
    FieldType.MONEY: money(),
}
_SCALAR_JSON: st.SearchStrategy[Any] = st.sampled_from(
    [0, 1, 3, -2.5, 2.5, 10, "a", "b", "ab", "B", True, False]
)
_ORDERED_JSON: st.SearchStrategy[Any] = st.sampled_from([0, 1, 3, -2.5, 2.5, 10]) | st.sampled_from(
    ["a", "b", "ab", "B"]
)

_TEXT_FIELDS = {
    "name": _texts(),
    "owner": st.sampled_from(["u1", "u2", "user-97"]),
    "currency": st.sampled_from(_CURRENCIES),
    "email": st.sampled_from(["ada@example.com", "bob@example.org"]),
    "country": st.sampled_from(["DE", "FR", "US"]),
    "city": st.sampled_from(["Berlin", "Paris", "a", "Ä"]),
    "id": _texts(),
}


def _value_for(name: str, ftype: FieldType) -> st.SearchStrategy[Any]:
    if name == "kind":
        return st.sampled_from([k.value for k in CustomerKind])
    if name in _TEXT_FIELDS:
        return _TEXT_FIELDS[name]
    if ftype is FieldType.JSON:
        return _SCALAR_JSON
    return _VALUES[ftype]


@st.composite
def _leaf(draw: st.DrawFn) -> Condition:
    names = [*CUSTOMER_FIELDS.fields, *(f"custom.{k}" for k in _CUSTOM_KEYS)]
    name = draw(st.sampled_from(names))
    fd = CUSTOMER_FIELDS.resolve(name)
    ftype = fd.type
    if ftype is FieldType.TEXT_LIST:
        return Contains(name, draw(st.sampled_from(_TAGS)))
    ops: list[str] = ["eq", "ne", "in"]
    if ftype is not FieldType.BOOLEAN:
        ops += ["lt", "le", "gt", "ge", "between"]
    if ftype in (FieldType.TEXT, FieldType.JSON):
        ops.append("contains")
    if fd.nullable:
        ops.append("is_null")
    if ftype in (FieldType.DATETIME, FieldType.DATE):
        ops.append("relative")
    op = draw(st.sampled_from(ops))
    if op == "is_null":
        return IsNull(name)
    if op == "contains":
        return Contains(name, draw(st.sampled_from(["a", "b", "ä", "", "日"])))
    if op == "relative":
        return Relative(
            name,
            draw(st.sampled_from(list(CompareOp)[2:])),
            draw(st.integers(-400, 30)),
            draw(st.sampled_from([TimeUnit.DAYS, TimeUnit.HOURS, TimeUnit.MONTHS])),
        )
    if ftype is FieldType.JSON:
        value_strategy = _ORDERED_JSON if op in ("lt", "le", "gt", "ge", "between") else _SCALAR_JSON
    else:
        value_strategy = _value_for(name, ftype)
    if op == "in":
        return In(name, tuple(draw(st.lists(value_strategy, max_size=3))))
    if op == "between":
        low, high = draw(value_strategy), draw(value_strategy)
        if ftype is FieldType.JSON and isinstance(low, str) != isinstance(high, str):
            high = low
        if ftype is FieldType.MONEY and low.currency != high.currency:
            high = Money(high.amount, low.currency)
        if low > high:
            low, high = high, low
        return Between(name, low, high)
    return Compare(name, CompareOp(op), draw(value_strategy))


def conditions(max_leaves: int = 6) -> st.SearchStrategy[Condition]:
    """Random condition trees over `CUSTOMER_FIELDS`, valid by construction."""
    return st.recursive(
        _leaf(),
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda cs: All(*cs))
            | st.lists(inner, max_size=3).map(lambda cs: AnyOf(*cs))
            | inner.map(Not)
        ),
        max_leaves=max_leaves,
    )


def order_by() -> st.SearchStrategy[list[str]]:
    """Random ``order_by`` lists over sortable customer fields, ascending or descending."""
    sortable = [
        "name",
        "kind",
        "owner",
        "currency",
        "birthday",
        "email",
        "country",
        "city",
        "created_at",
        "version",
    ]
    return st.lists(
        st.builds(
            lambda name, desc: f"-{name}" if desc else name,
            st.sampled_from(sortable),
            st.booleans(),
        ),
        max_size=3,
        unique_by=lambda s: s.lstrip("-"),
    )
