"""Custom-field schemas and validation rules: definitions, pure checks, enforcement on every store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from sqlalchemy import Engine

import crmcore
from crmcore import CRM, Field, FixedClock, Money, Not, ValidationError
from crmcore.conditions import CompareOp, Relative, TimeUnit
from crmcore.customers import Address, Contact, Customer, CustomerKind, Order, OrderLine
from crmcore.customers.schema import (
    CustomFieldDef,
    CustomFieldType,
    DataRules,
    FieldSchema,
    UnknownKeys,
    ValidationRule,
)
from crmcore.errors import FieldError
from crmcore.ids import new_id
from crmcore.serialization import structure, unstructure
from crmcore.storage.base import Store
from crmcore.storage.memory import MemoryStore
from crmcore.storage.sql import SqlStore
from crmcore.testing import strategies as cst

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

COMPANY_COUNTRY = ValidationRule(
    name="company_country",
    condition=Not(Field("kind") == "company") | Field("country").is_not_null(),
    message="companies need a country",
    field="country",
)
RULES = DataRules(
    schemas=(
        FieldSchema(
            entity="customer",
            fields=(
                CustomFieldDef(
                    key="tier", type=CustomFieldType.CHOICE, choices=("gold", "silver"), required=True
                ),
                CustomFieldDef(key="seats", type=CustomFieldType.INTEGER),
                CustomFieldDef(key="segments", type=CustomFieldType.MULTI_CHOICE, choices=("smb", "retail")),
            ),
        ),
        FieldSchema(
            entity="contact",
            fields=(CustomFieldDef(key="linkedin", type=CustomFieldType.TEXT, required=True),),
        ),
    ),
    rules=(
        COMPANY_COUNTRY,
        ValidationRule(
            name="order_number",
            entity="order",
            condition=Field("number") != "",
            message="orders need the shop's order number",
            field="number",
        ),
    ),
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each store (PostgreSQL when CRMCORE_TEST_POSTGRES_URL is set)."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        sqlite = SqlStore("sqlite://")
        sqlite.create_schema()
        yield sqlite
        sqlite.close()
    else:
        engine: Engine = request.getfixturevalue("postgres_engine")
        postgres = SqlStore(engine)
        postgres.create_schema()
        yield postgres


def _valid(**kw: Any) -> Customer:
    kw.setdefault("custom", {"tier": "gold"})
    return Customer(name="Acme", kind=CustomerKind.COMPANY, addresses=[Address(country="DE")], **kw)


# --- definitions ---


@settings(max_examples=60, deadline=None)
@given(rules=cst.data_rules())
def test_data_rules_round_trip_through_serialization(rules: DataRules) -> None:
    """Schemas and rules are plain data: unstructure then structure gives them back equal."""
    assert structure(unstructure(rules), DataRules) == rules


def test_structuring_bad_data_names_the_path() -> None:
    """A bad field type in stored configuration is reported with its path."""
    data = unstructure(RULES)
    data["schemas"][0]["fields"][1]["type"] = "colour"
    with pytest.raises(ValidationError) as caught:
        structure(data, DataRules)
    assert "schemas[0].fields[1].type" in str(caught.value)
    assert "'colour' is not one of" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "path", "reason"),
    [
        ({"key": "1st"}, "key", "letters, digits and _"),
        ({"key": "tier", "type": "choice"}, "choices", "needs choices"),
        ({"key": "tier", "choices": ("a",)}, "choices", "only choice fields have choices"),
        ({"key": "tier", "type": "choice", "choices": ("a", "a")}, "choices", "repeats a choice"),
        ({"key": "tier", "type": "integer", "default": "3"}, "default", "whole number"),
        (
            {"key": "tier", "type": "choice", "choices": ("a",), "default": "b"},
            "default",
            "'b' is not one of",
        ),
        ({"key": "tier", "type": "shape"}, "type", "'shape' is not one of"),
        ({"key": "tier", "required": "yes"}, "required", "true or false"),
    ],
)
def test_field_definitions_are_checked_when_built(kwargs: dict[str, Any], path: str, reason: str) -> None:
    """A field definition that cannot work is refused when it is built, naming the field."""
    with pytest.raises(ValidationError) as caught:
        CustomFieldDef(**kwargs)
    assert caught.value.field == path
    assert reason in caught.value.reason


def test_schemas_and_rules_are_checked_when_built() -> None:
    """Repeated keys, a second schema or rule for one entity, unknown entities and bad conditions."""
    with pytest.raises(ValidationError, match=r"fields\[1\].key: 'tier' is declared twice"):
        FieldSchema(fields=(CustomFieldDef(key="tier"), CustomFieldDef(key="tier")))
    with pytest.raises(ValidationError, match="'deal' is not one of customer, contact"):
        FieldSchema(entity="deal")
    with pytest.raises(ValidationError, match=r"schemas\[1\].entity: a second schema for 'customer'"):
        DataRules(schemas=(FieldSchema(), FieldSchema()))
    with pytest.raises(ValidationError, match=r"rules\[1\].name: a second customer rule"):
        DataRules(rules=(COMPANY_COUNTRY, COMPANY_COUNTRY))
    with pytest.raises(ValidationError) as caught:
        ValidationRule(
            name="x",
            condition=(Field("colour") == "red") & (Field("created_at") < datetime(2025, 1, 1)),
            message="m",
            entity="order",
        )
    assert [e.path for e in caught.value.errors] == ["condition.conditions[0]", "condition.conditions[1]"]
    with pytest.raises(ValidationError, match="must be a condition"):
        ValidationRule(name="x", condition="kind == 'company'", message="m")  # type: ignore[arg-type]


# --- pure checks ---


@pytest.mark.parametrize(
    ("ftype", "good", "bad"),
    [
        ("text", ["", "gold"], [1, True, ["a"]]),
        ("integer", [0, -3, 2**40], [1.5, True, "3"]),
        ("number", [0, 2.5, -1], [True, "2.5", [1]]),
        ("decimal", ["19.99", "-3", "0.000001"], [19.99, "1e3", "1.", "abc", ""]),
        ("boolean", [True, False], [0, "true"]),
        ("date", ["2025-06-30"], ["2025-02-30", "20250630", "2025-06-30T10:00", 20250630]),
        ("choice", ["gold"], ["bronze", ["gold"], 1]),
        ("multi_choice", [[], ["gold"], ["gold", "silver"]], ["gold", ["bronze"], ["gold", "gold"], [1]]),
    ],
)
def test_each_field_type_accepts_and_refuses(ftype: str, good: list[Any], bad: list[Any]) -> None:
    """Each type accepts its JSON form and refuses the others, with a reason at custom.<key>."""
    choices = ("gold", "silver") if "choice" in ftype else ()
    schema = FieldSchema(fields=(CustomFieldDef(key="f", type=ftype, choices=choices),))  # type: ignore[arg-type]
    for value in good:
        assert schema.check({"f": value}) == [], value
    for value in bad:
        problems = schema.check({"f": value})
        assert [p.path for p in problems] == ["custom.f"], value


def test_check_lists_every_problem() -> None:
    """Wrong type, missing required, value not in choices and unknown keys, each with its path."""
    problems = RULES.check(
        Customer(
            name="Acme",
            kind=CustomerKind.COMPANY,
            custom={"seats": "many", "segments": ["b2b"], "colour": "red"},
        ),
        NOW,
    )
    assert problems == [
        FieldError("custom.tier", "is required"),
        FieldError("custom.seats", "must be a whole number, not text"),
        FieldError("custom.segments", "'b2b' not in 'smb', 'retail'"),
        FieldError("custom.colour", "is not a declared customer field (declared: seats, segments, tier)"),
        FieldError("country", "companies need a country"),
    ]
    assert RULES.check(_valid(), NOW) == []
    assert RULES.check(_valid(custom={"tier": "gold", "seats": None}), NOW) == []  # None: unset


def test_unknown_keys_can_be_allowed() -> None:
    """With unknown_keys=allow, undeclared keys pass and declared ones are still checked."""
    schema = FieldSchema(
        fields=(CustomFieldDef(key="seats", type=CustomFieldType.INTEGER),), unknown_keys=UnknownKeys.ALLOW
    )
    assert schema.check({"anything": [1, {"x": 2}]}) == []
    assert [p.path for p in schema.check({"seats": "x", "anything": 1})] == ["custom.seats"]


def test_rules_see_relative_dates_at_now() -> None:
    """A rule's relative date is measured from the now it is checked at."""
    rules = DataRules(
        rules=(
            ValidationRule(
                name="no_future",
                entity="order",
                condition=Relative("ordered_at", CompareOp.LE, 0, TimeUnit.DAYS),
                message="orders cannot be in the future",
            ),
        )
    )
    order = Order(customer_id="c1", ordered_at=NOW, currency="EUR")
    assert rules.check(order, NOW) == []
    assert rules.check(order, datetime(2026, 2, 1, tzinfo=UTC)) == [
        FieldError("no_future", "orders cannot be in the future")
    ]
    with pytest.raises(ValidationError, match="naive"):
        rules.check(order, datetime(2026, 2, 1))
    with pytest.raises(ValidationError, match="no entity is known for str"):
        rules.check("an order", NOW)


def test_with_defaults_fills_only_unset_fields() -> None:
    """Defaults are for new objects: they fill absent or None keys and keep given values."""
    schema = FieldSchema(
        fields=(
            CustomFieldDef(
                key="tier", type=CustomFieldType.CHOICE, choices=("gold", "silver"), default="silver"
            ),
            CustomFieldDef(key="tags", type=CustomFieldType.MULTI_CHOICE, choices=("a", "b"), default=["a"]),
            CustomFieldDef(key="note"),
        )
    )
    filled = schema.with_defaults({"tier": "gold", "tags": None})
    assert filled == {"tier": "gold", "tags": ["a"]}
    filled["tags"].append("b")
    assert schema.field("tags") is not None and schema.field("tags").default == ["a"]  # type: ignore[union-attr]
    assert schema.field("nope") is None


# --- enforcement on every store ---


def test_repositories_refuse_before_writing(store: Store) -> None:
    """add, save and bulk_add break no rule: ValidationError, nothing written, the unit of work goes on."""
    crm = CRM(store, clock=FixedClock(NOW), rules=RULES)
    tenant = f"t-{new_id()}"
    with crm.unit_of_work(tenant) as uow:
        bad = Customer(name="Acme", kind=CustomerKind.COMPANY, custom={"tier": "bronze"})
        with pytest.raises(ValidationError) as caught:
            uow.customers.add(bad)
        assert [e.path for e in caught.value.errors] == ["custom.tier", "country"]
        assert bad.version == 0 and bad.created_at is None
        good = uow.customers.add(_valid(id="good"))
        with pytest.raises(ValidationError) as caught:
            uow.customers.bulk_add(
                [_valid(id="ok"), Customer(name="p", custom={"tier": "gold", "seats": 1.5})]
            )
        assert [e.path for e in caught.value.errors] == ["[1].custom.seats"]
        uow.commit()
    with crm.unit_of_work(tenant) as uow:
        assert [c.id for c in uow.customers.find()] == ["good"]
        good = uow.customers.get("good")
        good.addresses = ()
        with pytest.raises(ValidationError, match="country: companies need a country"):
            uow.customers.save(good)
        with pytest.raises(ValidationError, match=r"custom\.linkedin: is required"):
            uow.contacts.add(Contact(customer_id="good", name="Bob"))
        with pytest.raises(ValidationError, match="number: orders need the shop's order number"):
            uow.orders.add(
                Order(
                    customer_id="good",
                    ordered_at=NOW,
                    currency="EUR",
                    lines=[OrderLine(product="x", unit_price=Money("1", "EUR"))],
                )
            )
        uow.contacts.add(Contact(customer_id="good", name="Bob", custom={"linkedin": "bob"}))
        uow.interactions.find()  # no schema or rule for interactions: nothing to enforce
        uow.commit()
    with CRM(store).unit_of_work(tenant) as uow:  # without rules, the store takes anything valid
        uow.customers.add(Customer(name="Loose", custom={"colour": "red"}))
        assert uow.customers.get("good").version == 1


def test_open_takes_rules() -> None:
    """crmcore.open(..., rules=) enforces them; anything but DataRules is refused."""
    with (
        crmcore.open("sqlite://", rules=RULES) as crm,
        crm.unit_of_work() as uow,
        pytest.raises(ValidationError, match=r"custom\.tier"),
    ):
        uow.customers.add(Customer(name="Ada"))
    with pytest.raises(ValidationError, match="rules: must be DataRules"):
        crmcore.open("memory://", rules={"schemas": []})  # type: ignore[arg-type]
