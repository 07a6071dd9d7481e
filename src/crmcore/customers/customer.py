"""The `Customer` aggregate: a person or a company, with contact points, tags and custom fields."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType
from crmcore.errors import FieldError, ValidationError, join_path
from crmcore.ids import check_id, new_id
from crmcore.money import Money, check_currency
from crmcore.validation import (
    JsonValue,
    a_date,
    check_on_setattr,
    checked,
    instance_of,
    json_value,
    optional,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
)

__all__ = [
    "Address",
    "CUSTOMER_FIELDS",
    "Customer",
    "CustomerKind",
    "EmailAddress",
    "PhoneNumber",
]


class CustomerKind(enum.Enum):
    """Whether a customer is a person or a company (an account)."""

    PERSON = "person"
    COMPANY = "company"


_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+\Z")
_PHONE_CHARS = re.compile(r"[0-9+()\-./ ]+(\s*(x|ext\.?)\s*\d+)?\Z", re.IGNORECASE)
_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def _email(value: Any, path: str) -> str:
    address: str = text(max_length=254, required=True)(value, path)
    if not _EMAIL.match(address):
        raise ValidationError(path, f"{address!r} is not an email address")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _phone(value: Any, path: str) -> str:
    number: str = text(max_length=40, required=True)(value, path)
    digits = sum(c.isdigit() for c in number)
    if not _PHONE_CHARS.match(number) or not 4 <= digits <= 20:
        raise ValidationError(path, f"{number!r} is not a phone number")
    return number


def _country(value: Any, path: str) -> str:
    code: str = text(max_length=100, required=True)(value, path).upper()
    if not _COUNTRY.match(code):
        raise ValidationError(path, f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _tag(value: Any, path: str) -> str:
    tag: str = text(max_length=64, required=True)(value, path)
    return tag


def _custom(value: Any, path: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict, not {type(value).__name__}")
    errors: list[FieldError] = []
    out: dict[str, JsonValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
            errors.append(FieldError(path, f"key {key!r} must be letters, digits and _ (not first a digit)"))
            continue
        try:
            out[key] = json_value(item, join_path(path, key))
        except ValidationError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationError.from_errors(errors)
    return out


def _version(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(path, f"must be a non-negative integer, got {value!r}")
    return value


def _kind(value: Any, path: str) -> CustomerKind:
    if isinstance(value, CustomerKind):
        return value
    try:
        return CustomerKind(value)
    except ValueError:
        raise ValidationError(path, f"{value!r} is not one of 'person', 'company'") from None


def _label(value: Any, path: str) -> str:
    label: str = text(max_length=40)(value, path)
    return label


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(path, f"must be True or False, not {type(value).__name__}")
    return value


def _one_primary(kind: str) -> Any:
    item_check = instance_of({"emails": EmailAddress, "phones": PhoneNumber, "addresses": Address}[kind])
    items_check = tuple_of(item_check)

    def check(value: Any, path: str) -> tuple[Any, ...]:
        items: tuple[Any, ...] = items_check(value, path)
        if sum(1 for i in items if i.primary) > 1:
            raise ValidationError(path, f"at most one of the {kind} can be primary")
        return items

    return check


@attrs.frozen(kw_only=True)
class EmailAddress:
    """An email address with a label; the domain is lower-cased."""

    address: str = checked(_email)
    label: str = checked(_label, default="work")
    primary: bool = checked(_flag, default=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class PhoneNumber:
    """A phone number as given (trimmed), with a label."""

    number: str = checked(_phone)
    label: str = checked(_label, default="work")
    primary: bool = checked(_flag, default=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class Address:
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    country: str = checked(_country)
    line1: str = checked(text(max_length=200), default="")
    line2: str = checked(text(max_length=200), default="")
    city: str = checked(text(max_length=100), default="")
    region: str = checked(text(max_length=100), default="")
    postal_code: str = checked(text(max_length=20), default="")
    label: str = checked(_label, default="main")
    primary: bool = checked(_flag, default=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _primary(items: Sequence[Any]) -> Any:
    for item in items:
        if item.primary:
            return item
    return items[0] if items else None


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Customer:
    """A person or a company the business sells to or serves.

    Every field is checked on construction and on assignment, and all problems are reported in
    one `ValidationError`. ``created_at`` and ``updated_at`` are stamped by the store when left
    empty; ``version`` is managed by the store for optimistic concurrency.
    """

    name: str = checked(text(max_length=300, required=True), default="")
    kind: CustomerKind = checked(_kind, default=CustomerKind.PERSON)
    id: str = checked(check_id, factory=new_id)
    emails: Sequence[EmailAddress] = checked(_one_primary("emails"), default=())
    phones: Sequence[PhoneNumber] = checked(_one_primary("phones"), default=())
    addresses: Sequence[Address] = checked(_one_primary("addresses"), default=())
    tags: Sequence[str] = checked(tuple_of(_tag, unique=True, sort=True), default=())
    owner: str | None = checked(optional(check_id), default=None)
    currency: str | None = checked(optional(check_currency), default=None)
    credit_limit: Money | None = checked(optional(instance_of(Money)), default=None)
    birthday: date | None = checked(optional(a_date), default=None)
    custom: dict[str, Any] = checked(_custom, factory=dict)  # JSON values, see JsonValue
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(_version, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    @property
    def primary_email(self) -> str | None:
        """The primary email address (the flagged one, else the first)."""
        email = _primary(self.emails)
        return email.address if email else None

    @property
    def primary_phone(self) -> str | None:
        """The primary phone number (the flagged one, else the first)."""
        phone = _primary(self.phones)
        return phone.number if phone else None

    @property
    def primary_address(self) -> Address | None:
        """The primary address (the flagged one, else the first)."""
        address: Address | None = _primary(self.addresses)
        return address

    @property
    def country(self) -> str | None:
        """Country of the primary address."""
        address = self.primary_address
        return address.country if address else None

    @property
    def city(self) -> str | None:
        """City of the primary address (None when empty)."""
        address = self.primary_address
        return (address.city or None) if address else None


CUSTOMER_FIELDS = FieldSet.of(
    "Customer",
    [
        FieldDef("id", FieldType.TEXT, lambda c: c.id, nullable=False),
        FieldDef("name", FieldType.TEXT, lambda c: c.name, nullable=False),
        FieldDef(
            "kind",
            FieldType.TEXT,
            lambda c: c.kind.value,
            nullable=False,
            choices=tuple(k.value for k in CustomerKind),
        ),
        FieldDef("owner", FieldType.TEXT, lambda c: c.owner),
        FieldDef("currency", FieldType.TEXT, lambda c: c.currency),
        FieldDef("credit_limit", FieldType.MONEY, lambda c: c.credit_limit),
        FieldDef("birthday", FieldType.DATE, lambda c: c.birthday),
        FieldDef("email", FieldType.TEXT, lambda c: c.primary_email),
        FieldDef("country", FieldType.TEXT, lambda c: c.country),
        FieldDef("city", FieldType.TEXT, lambda c: c.city),
        FieldDef("tags", FieldType.TEXT_LIST, lambda c: c.tags, nullable=False),
        FieldDef("created_at", FieldType.DATETIME, lambda c: c.created_at, nullable=False),
        FieldDef("updated_at", FieldType.DATETIME, lambda c: c.updated_at, nullable=False),
        FieldDef("version", FieldType.INTEGER, lambda c: c.version, nullable=False),
    ],
    json={"custom": lambda c: c.custom},
)
"""The fields of `Customer` that conditions, ``find`` and ``order_by`` can use."""
