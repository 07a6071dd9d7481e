"""The 360-degree customer view: complete, newest first, in a bounded number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from crmcore import CRM, NotFound, ValidationError
from crmcore.conditions import Field
from crmcore.customers import (
    Contact,
    Customer,
    CustomerKind,
    Interaction,
    InteractionChannel,
    Order,
    OrderLine,
    OrderStatus,
)
from crmcore.customers.view import customer_view, open_records, register_open_records
from crmcore.money import Money
from crmcore.serialization import unstructure
from crmcore.storage.base import CONTACTS, ORDERS
from crmcore.storage.sql import SqlStore

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _order(customer_id: str, days: int, price: str, **kw: Any) -> Order:
    line = OrderLine(product="Widget", quantity=Decimal(2), unit_price=Money(price, "EUR"))
    return Order(
        customer_id=customer_id, ordered_at=T0 - timedelta(days=days), currency="EUR", lines=[line], **kw
    )


def _seed(crm: CRM, tenant: str, n: int) -> Customer:
    acme = Customer(name="Acme GmbH", kind=CustomerKind.COMPANY)
    other = Customer(name="Other Ltd", kind=CustomerKind.COMPANY)
    with crm.unit_of_work(tenant) as uow:
        uow.customers.bulk_add([acme, other])
        uow.contacts.bulk_add(
            [Contact(customer_id=acme.id, name=f"Person {i}") for i in range(3)]
            + [Contact(customer_id=other.id, name="Elsewhere")]
        )
        uow.interactions.bulk_add(
            Interaction(
                customer_id=cid,
                occurred_at=T0 - timedelta(hours=i),
                channel=InteractionChannel.EMAIL,
                subject=f"touch {i}",
            )
            for i in range(n)
            for cid in (acme.id, other.id)
        )
        uow.orders.bulk_add(
            [_order(acme.id, i, "10.00") for i in range(n)]
            + [_order(acme.id, 1, "99.00", status=OrderStatus.CANCELLED), _order(other.id, 1, "5.00")]
        )
        uow.commit()
    return acme


@contextmanager
def _counting(crm: CRM) -> Iterator[list[str]]:
    statements: list[str] = []
    store = crm.store
    if not isinstance(store, SqlStore):
        yield statements
        return

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_view_holds_everything_about_the_customer(any_crm: CRM, tenant: str) -> None:
    """Contacts, newest interactions and orders, and totals of counted orders are all there."""
    acme = _seed(any_crm, tenant, 12)
    with any_crm.unit_of_work(tenant) as uow:
        view = customer_view(uow, acme.id, recent=5)
    assert view.customer == acme
    assert [c.name for c in view.contacts] == ["Person 0", "Person 1", "Person 2"]
    assert [i.subject for i in view.recent_interactions] == [f"touch {i}" for i in range(5)]
    assert view.interaction_count == 12
    assert len(view.recent_orders) == 5 and view.recent_orders[0].ordered_at == T0 - timedelta(days=0)
    assert view.order_totals.orders == 12
    assert view.order_totals.spend == (Money("240.00", "EUR"),)
    assert view.order_totals.first_order_at == T0 - timedelta(days=11)
    assert view.as_of == T0 and view.open == ()


def test_view_of_a_customer_without_history(any_crm: CRM, tenant: str) -> None:
    """A new customer has empty sections and zero totals, not errors."""
    c = Customer(name="New")
    with any_crm.unit_of_work(tenant) as uow:
        uow.customers.add(c)
        view = customer_view(uow, c.id)
    assert (view.contacts, view.recent_interactions, view.recent_orders) == ((), (), ())
    assert view.order_totals.orders == 0 and view.order_totals.last_order_at is None


@pytest.mark.parametrize("size", [3, 60])
def test_view_query_count_does_not_grow_with_history(any_crm: CRM, tenant: str, size: int) -> None:
    """The same number of SQL statements for a customer with 3 or 60 records of each kind."""
    acme = _seed(any_crm, tenant, size)
    unregister = register_open_records(ORDERS, Field("status") == "pending")
    try:
        with any_crm.unit_of_work(tenant) as uow, _counting(any_crm) as statements:
            view = customer_view(uow, acme.id, recent=10)
    finally:
        unregister()
    assert [o.kind for o in view.open] == ["order"]
    if isinstance(any_crm.store, SqlStore):
        # customer, contacts, interactions + their count, orders, totals, open orders (fewer than
        # `recent`, so no count query)
        assert len(statements) == 7, statements


def test_open_records_are_shown_and_registration_is_checked(any_crm: CRM, tenant: str) -> None:
    """Registered open records (here: pending orders) appear with their total; bad registrations fail."""
    acme = _seed(any_crm, tenant, 3)
    with any_crm.unit_of_work(tenant) as uow:
        uow.orders.bulk_add([_order(acme.id, 0, "1.00", status=OrderStatus.PENDING) for _ in range(4)])
        uow.commit()
    unregister = register_open_records(ORDERS, Field("status") == "pending")
    try:
        assert "order" in open_records()
        with any_crm.unit_of_work(tenant) as uow:
            view = customer_view(uow, acme.id, recent=3)
        [pending] = view.open
        assert len(pending.items) == 3 and pending.total == 4
    finally:
        unregister()
    assert "order" not in open_records()
    with pytest.raises(ValidationError, match="unknown field"):
        register_open_records(CONTACTS, Field("nope") == 1)


def test_view_is_json_ready(tenant: str) -> None:
    """The whole view unstructures to plain data a UI can render."""
    import json

    import crmcore

    crm = crmcore.open("memory://")
    acme = _seed(crm, tenant, 2)
    with crm.unit_of_work(tenant) as uow:
        data = unstructure(customer_view(uow, acme.id))
    text = json.dumps(data)
    assert "Acme GmbH" in text and data["order_totals"]["orders"] == 2


def test_view_refuses_bad_input(any_crm: CRM, tenant: str) -> None:
    """Unknown ids raise NotFound; a bad id or page size raise ValidationError naming the field."""
    with any_crm.unit_of_work(tenant) as uow:
        with pytest.raises(NotFound):
            customer_view(uow, "nobody")
        with pytest.raises(ValidationError, match="customer_id"):
            customer_view(uow, "")
        with pytest.raises(ValidationError, match="recent"):
            customer_view(uow, "x", recent=0)
