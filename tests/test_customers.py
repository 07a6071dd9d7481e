"""The Customer aggregate: validation, normalization and serialization."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given

from crmcore import Money, ValidationError
from crmcore.customers import Address, Customer, CustomerKind, EmailAddress, PhoneNumber
from crmcore.serialization import structure, unstructure
from crmcore.testing.strategies import customers


def test_normalization() -> None:
    """Names are trimmed, email domains lower-cased, country codes upper-cased, tags sorted and unique."""
    c = Customer(
        name="  Ada Lovelace ",
        emails=[EmailAddress(address="Ada@Example.COM")],
        addresses=[Address(country="gb", city=" London ")],
        tags=["vip", "b2b", "vip"],
        created_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    )
    assert c.name == "Ada Lovelace"
    assert c.primary_email == "Ada@example.com"
    assert (c.country, c.city) == ("GB", "London")
    assert c.tags == ("b2b", "vip")
    assert c.created_at == datetime(2026, 1, 1, 10, tzinfo=UTC) and c.created_at.tzinfo is UTC


def test_every_problem_is_reported_at_once() -> None:
    """A naive datetime, unknown currency, bad custom value and missing name: one error, four fields."""
    with pytest.raises(ValidationError) as caught:
        Customer(
            name="",
            currency="EURO",
            custom={"when": datetime.now(UTC)},
            created_at=datetime(2026, 1, 1),
        )
    assert [e.path for e in caught.value.errors] == [
        "name",
        "currency",
        "custom.when",
        "created_at",
    ]
    assert caught.value.field == "name" and caught.value.reason == "is required"


@pytest.mark.parametrize(
    ("kwargs", "path", "reason"),
    [
        (
            {
                "emails": [
                    EmailAddress(address="a@b.co", primary=True),
                    EmailAddress(address="c@d.co", primary=True),
                ]
            },
            "emails",
            "at most one",
        ),
        ({"emails": ["a@b.co"]}, "emails[0]", "must be a EmailAddress"),
        ({"tags": "vip"}, "tags", "must be a list"),
        ({"tags": ["ok", ""]}, "tags[1]", "is required"),
        ({"custom": {"1st": 1}}, "custom", "letters, digits"),
        ({"custom": {"x": float("nan")}}, "custom.x", "finite"),
        ({"custom": {"x": {"y": [1, object()]}}}, "custom.x.y[1]", "not a JSON value"),
        ({"owner": "has space"}, "owner", "spaces"),
        ({"kind": "robot"}, "kind", "not one of"),
        ({"birthday": datetime(2000, 1, 1, tzinfo=UTC)}, "birthday", "must be a date"),
        ({"credit_limit": "100 EUR"}, "credit_limit", "must be a Money"),
        ({"version": -1}, "version", "non-negative"),
        ({"name": "x" * 301}, "name", "at most 300"),
        ({"name": "bad\x00name"}, "name", "control characters"),
        (
            {
                "addresses": [Address(country="DE")],
                "birthday": date(2000, 1, 1),
                "tags": ("ok",),
                "name": "\x07",
            },
            "name",
            "control characters",
        ),
    ],
)
def test_bad_fields(kwargs: dict[str, Any], path: str, reason: str) -> None:
    """Each bad field raises ValidationError naming its path and the reason."""
    with pytest.raises(ValidationError) as caught:
        Customer(name=kwargs.pop("name", "Ada"), **kwargs)
    assert caught.value.field == path
    assert reason in caught.value.reason


@pytest.mark.parametrize("bad", ["plain", "a@b", "a b@c.de", "@c.de", "a@@c.de"])
def test_bad_emails(bad: str) -> None:
    """Malformed email addresses are refused on the address field."""
    with pytest.raises(ValidationError, match="address"):
        EmailAddress(address=bad)


@pytest.mark.parametrize("bad", ["12", "call me", "+49 30 12345678901234567890"])
def test_bad_phones(bad: str) -> None:
    """Phone numbers need 4 to 20 digits and phone punctuation only."""
    with pytest.raises(ValidationError, match="number"):
        PhoneNumber(number=bad)


def test_assignment_is_checked_too() -> None:
    """Setting a field later runs the same check as construction."""
    c = Customer(name="Ada")
    with pytest.raises(ValidationError, match="created_at: naive"):
        c.created_at = datetime(2026, 1, 1)
    c.name = "  Grace "
    assert c.name == "Grace"


def test_primary_falls_back_to_first() -> None:
    """Without a primary flag, the first contact point is primary."""
    c = Customer(
        name="Ada",
        emails=[EmailAddress(address="a@b.co"), EmailAddress(address="c@d.co", primary=True)],
        phones=[PhoneNumber(number="+49 30 123456")],
    )
    assert c.primary_email == "c@d.co" and c.primary_phone == "+4930123456"
    assert Customer(name="x").primary_email is None and Customer(name="x").country is None


@given(customers(rich=True))
def test_customers_round_trip(c: Customer) -> None:
    """Every customer survives unstructure -> structure unchanged."""
    assert structure(unstructure(c), Customer) == c


def test_structure_names_each_bad_path() -> None:
    """A payload with wrong types names each path, nested ones included."""
    payload = {
        "name": 5,
        "kind": "robot",
        "emails": [{"address": "ok@x.io"}, {"address": "bad"}],
        "credit_limit": {"amount": 1.5, "currency": "EUR"},
        "created_at": "2026-01-01T00:00:00",
        "birthday": "1990-02-30",
        "surprise": 1,
    }
    with pytest.raises(ValidationError) as caught:
        structure(payload, Customer)
    paths = {e.path for e in caught.value.errors}
    assert paths == {
        "name",
        "kind",
        "emails[1].address",
        "credit_limit.amount",
        "created_at",
        "birthday",
        "surprise",
    }


@pytest.mark.parametrize(("field", "value"), [("tags", "vip"), ("emails", {"address": "a@b.co"})])
def test_a_string_or_object_is_not_a_list(field: str, value: object) -> None:
    """Structuring refuses a string or an object where a list belongs (no splitting into characters)."""
    with pytest.raises(ValidationError) as caught:
        structure({"name": "Ada", field: value}, Customer)
    assert (caught.value.field, caught.value.reason) == (
        field,
        f"expected a list, got {type(value).__name__}",
    )


def test_serialized_form() -> None:
    """Datetimes are ISO 8601 with offset, money amounts strings, enums values."""
    c = Customer(
        id="c1",
        name="Ada",
        kind=CustomerKind.COMPANY,
        credit_limit=Money("10.50", "EUR"),
        birthday=date(1990, 1, 2),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    data = unstructure(c)
    assert data["kind"] == "company"
    assert data["credit_limit"] == {"amount": "10.50", "currency": "EUR"}
    assert data["birthday"] == "1990-01-02"
    assert data["created_at"] == "2026-01-01T00:00:00+00:00"
