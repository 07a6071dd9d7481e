"""Explicit mappings between aggregates and table rows (no ORM instrumentation of domain classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def customers_from_rows(rows: Sequence[Row[Any]]) -> list[Customer]:
    """Customers from rows of `tables.customers`."""
    out = []
    with trusted():
        for r in rows:
            out.append(
                Customer(
                    id=r.id,
                    version=r.version,
                    kind=CustomerKind(r.kind),
                    name=r.name,
                    owner=r.owner,
                    currency=r.currency,
                    credit_limit=(
                        None
                        if r.credit_limit_amount is None
                        else Money(r.credit_limit_amount, r.credit_limit_currency)
                    ),
                    birthday=r.birthday,
                    emails=tuple(EmailAddress(**e) for e in r.emails),
                    phones=tuple(PhoneNumber(**p) for p in r.phones),
                    addresses=tuple(Address(**a) for a in r.addresses),
                    tags=tuple(r.tags),
                    custom=r.custom,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
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
