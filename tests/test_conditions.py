"""The condition language: building, checking, evaluating and (de)serializing conditions."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given

from crmcore import All, Any, Field, Money, Not, ValidationError
from crmcore.conditions import (
    Between,
    Compare,
    CompareOp,
    Condition,
    Contains,
    In,
    IsNull,
    Relative,
    TimeUnit,
    check_condition,
    evaluate,
    needs_now,
)
from crmcore.customers import CUSTOMER_FIELDS, Address, Customer, CustomerKind
from crmcore.serialization import structure, unstructure
from crmcore.testing.strategies import NOW, conditions

ADA = Customer(
    name="Ada",
    addresses=[Address(country="DE", city="Berlin")],
    tags=["vip"],
    custom={"tier": "gold", "score": 7, "active": True, "ratio": 0.5},
    credit_limit=Money("1000", "EUR"),
    created_at=NOW - timedelta(days=100),
    updated_at=NOW - timedelta(days=1),
    birthday=date(1990, 12, 10),
)


def holds(cond: Condition, obj: Customer = ADA) -> bool:
    check_condition(cond, CUSTOMER_FIELDS)
    return evaluate(cond, obj, CUSTOMER_FIELDS, NOW)


def test_builder_makes_plain_nodes() -> None:
    """Field operators build data nodes, and &, |, ~ combine them."""
    assert (Field("name") == "Ada") == Compare("name", CompareOp.EQ, "Ada")
    assert Field("tags").contains("vip") == Contains("tags", "vip")
    assert Field("country").in_(["DE", "FR"]) == In("country", ("DE", "FR"))
    assert Field("created_at").older_than(days=90) == Relative("created_at", CompareOp.LT, -90, TimeUnit.DAYS)
    combined = (Field("a") == 1) & (Field("b") == 2) | ~Field("c").is_null()
    assert combined == Any(All(Compare("a", "eq", 1), Compare("b", "eq", 2)), Not(IsNull("c")))


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (Field("name") == "Ada", True),
        (Field("name") != "Ada", False),
        (Field("name") < "B", True),
        (Field("name").contains("d"), True),
        (Field("name").contains("D"), False),  # case-sensitive
        (Field("country").in_(["FR", "DE"]), True),
        (Field("country").not_in(["FR", "DE"]), False),
        (Field("city") == "Berlin", True),
        (Field("owner") == "u1", False),  # missing value: false
        (Field("owner") != "u1", True),  # ... and its negation true
        (Field("owner").is_null(), True),
        (Field("tags").contains("vip"), True),
        (Field("tags").contains("VIP"), False),
        (Field("credit_limit") > Money("999.99", "EUR"), True),
        (Field("credit_limit") > Money("1", "USD"), False),  # other currency: never comparable
        (Field("credit_limit").between(Money("1000", "EUR"), Money("1000.00", "EUR")), True),
        (Field("custom.tier") == "gold", True),
        (Field("custom.score") >= 7, True),
        (Field("custom.score") == "7", False),  # JSON types do not mix
        (Field("custom.active") == True, True),  # noqa: E712 - builds a condition
        (Field("custom.active") == 1, False),  # a boolean is not a number
        (Field("custom.ratio").between(0, 1), True),
        (Field("custom.missing").is_null(), True),
        (Field("custom.missing") != "x", True),
        (Field("created_at").older_than(days=90), True),
        (Field("created_at").older_than(months=4), False),
        (Field("updated_at").within_last(days=2), True),
        (Field("birthday").within_next(days=30), False),
        (Field("birthday") < date(2000, 1, 1), True),
        (All(), True),
        (Any(), False),
    ],
)
def test_evaluation(cond: Condition, expected: bool) -> None:
    """Each operator evaluates as documented, including missing values and mixed JSON types."""
    assert holds(cond) is expected


def test_chains_flatten_and_enums_become_values() -> None:
    """a & b & c is one flat All (readable JSON); an enum member compares as its stored value."""
    a, b, c = Field("name") == "A", Field("name") == "B", Field("kind") == CustomerKind.COMPANY
    assert a & b & c == All(a, b, c)
    assert a | b | c == Any(a, b, c)
    assert (a & b) | c == Any(All(a, b), c)
    assert c == Compare("kind", CompareOp.EQ, "company")
    assert Field("kind").in_([CustomerKind.PERSON]) == In("kind", ("person",))
    assert holds(Field("kind") == CustomerKind.PERSON)


def test_relative_dates_need_now() -> None:
    """A relative-date condition without now is refused; others do not need it."""
    cond = Field("created_at").older_than(days=1)
    assert needs_now(cond) and not needs_now(Field("name") == "x")
    with pytest.raises(ValidationError, match="now"):
        evaluate(cond, ADA, CUSTOMER_FIELDS)


def test_check_reports_every_problem_with_its_path() -> None:
    """Unknown fields, wrong types, bad operators and naive datetimes are all reported at once."""
    cond = All(
        Field("nope") == 1,
        Field("created_at") > datetime(2026, 1, 1),
        Field("tags") == "vip",
        Field("name") > 5,
        Field("kind") == "robot",
        Field("name").between("z", "a"),
        Field("custom.x") < True,
        Field("custom.bad key") == 1,
        Field("owner") == None,  # noqa: E711 - builds a condition
        Field("name").older_than(days=3),
    )
    with pytest.raises(ValidationError) as caught:
        check_condition(cond, CUSTOMER_FIELDS)
    reasons = [e.reason for e in caught.value.errors]
    assert len(reasons) == 10
    assert all(e.path.startswith("where.conditions[") for e in caught.value.errors)
    assert "unknown field 'nope' on Customer" in reasons[0] and "custom.<key>" in reasons[0]
    assert "naive" in reasons[1]
    assert "contains() only" in reasons[2]
    assert "int value 5 cannot be compared with text field 'name'" in reasons[3]
    assert "choose one of person, company" in reasons[4]
    assert "above high" in reasons[5]
    assert "no order" in reasons[6]
    assert "not a valid custom field key" in reasons[7]
    assert "use is_null()" in reasons[8]
    assert "need a date or datetime field" in reasons[9]


def test_unknown_time_unit_lists_the_valid_ones() -> None:
    """A typo in a relative-date unit names the valid units."""
    with pytest.raises(ValidationError, match="minutes, hours, days, weeks, months, years"):
        Field("created_at").older_than(fortnights=2)


@given(conditions())
def test_conditions_round_trip_through_json(cond: Condition) -> None:
    """Every condition survives unstructure -> JSON text -> structure unchanged."""
    data = json.loads(json.dumps(unstructure(cond)))
    assert structure(data, Condition) == cond


def test_json_form_is_readable() -> None:
    """The JSON form tags nodes by type and values JSON lacks by $datetime/$date/$money."""
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    cond = (Field("created_at") > at) & Field("credit_limit").between(Money("1", "EUR"), Money("2", "EUR"))
    assert unstructure(cond) == {
        "type": "all",
        "conditions": [
            {
                "type": "compare",
                "field": "created_at",
                "op": "gt",
                "value": {"$datetime": "2026-01-02T03:04:00+00:00"},
            },
            {
                "type": "between",
                "field": "credit_limit",
                "low": {"$money": {"amount": "1", "currency": "EUR"}},
                "high": {"$money": {"amount": "2", "currency": "EUR"}},
            },
        ],
    }


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"type": "nope"}, "type"),
        ({"type": "compare", "field": "a", "op": "zz", "value": 1}, "op"),
        ({"type": "compare", "field": "a", "op": "eq"}, "value"),
        ({"type": "compare", "field": "a", "op": "eq", "value": 1, "extra": 2}, "extra"),
        (
            {
                "type": "all",
                "conditions": [{"type": "in", "field": "a", "values": [{"$date": "2026-13-01"}]}],
            },
            "conditions[0].values[0]",
        ),
        (
            {
                "type": "not",
                "condition": {
                    "type": "relative",
                    "field": "a",
                    "op": "lt",
                    "amount": "3",
                    "unit": "days",
                },
            },
            "condition.amount",
        ),
        (
            {"type": "between", "field": "a", "low": {"$datetime": "2026-01-01T00:00"}, "high": 1},
            "low",
        ),
        ([1], ""),
    ],
)
def test_bad_condition_data_names_the_path(data: object, path: str) -> None:
    """Structuring malformed condition data raises ValidationError at the bad path."""
    with pytest.raises(ValidationError) as caught:
        structure(data, Condition)
    assert caught.value.field == path


def test_in_and_between_on_plain_values() -> None:
    """In with no values matches nothing; Between includes both ends."""
    assert not holds(In("name", ()))
    assert holds(Between("name", "Ada", "Ada"))
    assert holds(Field("version").between(0, 0))
