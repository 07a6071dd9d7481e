"""Explicit mappings between aggregates and table rows (no ORM instrumentation of domain classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Generic, TypeVar

import attrs
from sqlalchemy import Row, Table

from crmcore.customers.customer import Address, Customer, CustomerKind, EmailAddress, PhoneNumber
from crmcore.money import Money
from crmcore.storage.base import CUSTOMERS, Aggregate
from crmcore.storage.sql import tables
from crmcore.storage.sql.where import SqlFields
from crmcore.validation import trusted

__all__ = ["CUSTOMER_MAPPING", "MAPPINGS", "SqlMapping"]

T = TypeVar("T")


@attrs.frozen
class SqlMapping(Generic[T]):
    """How one aggregate is written to and read from its table."""

    aggregate: Aggregate[T]
    table: Table
    to_row: Callable[[T, str], dict[str, Any]]
    """(object, tenant) -> column values."""
    from_rows: Callable[[Sequence[Row[Any]]], list[T]]
    """Rows this library wrote -> objects (field checks skipped: they ran on write)."""
    fields: SqlFields


def _values(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


_EMAIL = ("address", "label", "primary")
_PHONE = ("number", "label", "primary")
_ADDRESS = tuple(a.name for a in attrs.fields(Address))


def customer_to_row(c: Customer, tenant: str) -> dict[str, Any]:
    """Column values for a customer; denormalized lookup columns (email, country, city) included."""
    limit = c.credit_limit
    address = c.primary_address
    return {
        "tenant_id": tenant,
        "id": c.id,
        "version": c.version,
        "kind": c.kind.value,
        "name": c.name,
        "owner": c.owner,
        "currency": c.currency,
        "credit_limit_amount": limit.amount if limit else None,
        "credit_limit_currency": limit.currency if limit else None,
        "birthday": c.birthday,
        "email": c.primary_email,
        "country": address.country if address else None,
        "city": (address.city or None) if address else None,
        "emails": [_values(e, _EMAIL) for e in c.emails],
        "phones": [_values(p, _PHONE) for p in c.phones],
        "addresses": [_values(a, _ADDRESS) for a in c.addresses],
        "tags": list(c.tags),
        "custom": c.custom,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


_KINDS = {kind.value: kind for kind in CustomerKind}
_ROW_COLUMNS = (
    "id",
    "version",
    "kind",
    "name",
    "owner",
    "currency",
    "credit_limit_amount",
    "credit_limit_currency",
    "birthday",
    "emails",
    "phones",
    "addresses",
    "tags",
    "custom",
    "created_at",
    "updated_at",
)
_new = object.__new__
_set = object.__setattr__


def _trusted_money(amount: Any, currency: str) -> Money:
    # Money's converter and currency check already ran when the row was written, and the
    # column type hands back a Decimal: skip both (the hottest constructor on a read).
    money: Money = _new(Money)
    _set(money, "amount", amount)
    _set(money, "currency", currency)
    return money


def customers_from_rows(rows: Sequence[Row[Any]]) -> list[Customer]:
    """Customers from rows of `tables.customers`.

    Columns are taken by position (looked up once per call from the rows' keys): a `Row`'s
    attribute access costs more than building the customer's value objects.
    """
    if not rows:
        return []
    pick = itemgetter(*map(rows[0]._fields.index, _ROW_COLUMNS))
    kinds = _KINDS
    out: list[Customer] = []
    append = out.append
    with trusted():
        for (
            id,
            version,
            kind,
            name,
            owner,
            currency,
            limit_amount,
            limit_currency,
            birthday,
            emails,
            phones,
            addresses,
            tags,
            custom,
            created_at,
            updated_at,
        ) in map(pick, rows):
            append(
                Customer(
                    id=id,
                    version=version,
                    kind=kinds[kind],
                    name=name,
                    owner=owner,
                    currency=currency,
                    credit_limit=(
                        None if limit_amount is None else _trusted_money(limit_amount, limit_currency)
                    ),
                    birthday=birthday,
                    emails=tuple([EmailAddress(**e) for e in emails]),
                    phones=tuple([PhoneNumber(**p) for p in phones]),
                    addresses=tuple([Address(**a) for a in addresses]),
                    tags=tuple(tags),
                    custom=custom,
                    created_at=created_at,
                    updated_at=updated_at,
                )
            )
    return out


_c = tables.customers.c
CUSTOMER_MAPPING: SqlMapping[Customer] = SqlMapping(
    CUSTOMERS,
    tables.customers,
    customer_to_row,
    customers_from_rows,
    SqlFields(
        CUSTOMERS.fields,
        columns={
            name: _c[name]
            for name in (
                "id",
                "name",
                "kind",
                "owner",
                "currency",
                "birthday",
                "email",
                "country",
                "city",
                "tags",
                "created_at",
                "updated_at",
                "version",
            )
        },
        money={"credit_limit": (_c.credit_limit_amount, _c.credit_limit_currency)},
        json={"custom": _c.custom},
    ),
)

MAPPINGS: dict[str, SqlMapping[Any]] = {m.aggregate.name: m for m in (CUSTOMER_MAPPING,)}
