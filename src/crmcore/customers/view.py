"""The 360-degree view: one customer with everything known about them, in a bounded number of queries.

The view is plain data (attrs records that `crmcore.serialization.unstructure` turns into JSON),
so a UI can render a customer page from one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.conditions import Condition, Field, check_condition
from crmcore.customers.contact import Contact
from crmcore.customers.customer import Customer
from crmcore.customers.interaction import Interaction
from crmcore.customers.order import Order, OrderTotals
from crmcore.errors import ValidationError
from crmcore.ids import check_id
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import Aggregate, UnitOfWork

__all__ = ["CustomerView", "OpenRecords", "customer_view", "open_records", "register_open_records"]

_OPEN: dict[str, tuple[Aggregate[Any], Condition]] = {}


def register_open_records(aggregate: Aggregate[Any], condition: Condition) -> Callable[[], None]:
    """Show ``aggregate``'s records that match ``condition`` (e.g. open tickets) in every view.

    Packages that link an aggregate to customers (opportunities, tickets) register here once;
    the view then fetches them with one or two queries each. Returns a function that undoes it.

    Raises:
        ValidationError: the aggregate is not linked to customers, or the condition is invalid.
    """
    if aggregate.customer_field is None:
        raise ValidationError("aggregate", f"{aggregate.name} is not linked to customers")
    check_condition(condition, aggregate.fields)
    _OPEN[aggregate.name] = (aggregate, condition)

    def unregister() -> None:
        if _OPEN.get(aggregate.name) == (aggregate, condition):
            del _OPEN[aggregate.name]

    return unregister


def open_records() -> dict[str, Condition]:
    """The registered open-record conditions, by aggregate name."""
    return {name: cond for name, (_, cond) in _OPEN.items()}


@attrs.frozen(kw_only=True)
class OpenRecords:
    """Open records of one kind (e.g. ``"ticket"``) for the customer, newest first, capped."""

    kind: str
    items: tuple[Any, ...]
    total: int
    """How many there are in all (``items`` may be capped)."""


@attrs.frozen(kw_only=True)
class CustomerView:
    """A customer and what belongs to them, as of ``as_of``."""

    customer: Customer
    contacts: tuple[Contact, ...]
    recent_interactions: tuple[Interaction, ...]
    interaction_count: int
    recent_orders: tuple[Order, ...]
    order_totals: OrderTotals
    open: tuple[OpenRecords, ...]
    as_of: datetime


def customer_view(
    uow: UnitOfWork,
    customer_id: str,
    *,
    recent: int = 10,
    now: datetime | None = None,
) -> CustomerView:
    """Everything about one customer, in a fixed number of queries whatever their history's size.

    One query each for the customer, contacts, recent interactions, their count, recent orders
    and order totals, plus two per registered open-record kind (items and count).

    Args:
        recent: how many interactions, orders and open records of each kind to include.

    Raises:
        NotFound: no customer with this id in the unit of work's tenant.
        ValidationError: a bad id or ``recent`` outside 1..1000.
    """
    customer_id = check_id(customer_id, "customer_id")
    if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= 1000:
        raise ValidationError("recent", f"must be an integer from 1 to 1000, got {recent!r}")
    as_of = utc_datetime(now, "now") if now is not None else uow.clock.now()
    customer = uow.customers.get(customer_id)
    mine = Field("customer_id") == customer_id
    contacts = uow.contacts.find(mine, order_by=["name"], limit=1000)
    interactions = uow.interactions.timeline(customer_id, limit=recent)
    interaction_count = uow.interactions.count(mine)
    orders = uow.orders.find(mine, order_by=["-ordered_at", "-id"], limit=recent)
    totals = uow.orders.totals([customer_id]).get(customer_id, OrderTotals(customer_id=customer_id))
    return CustomerView(
        customer=customer,
        contacts=tuple(contacts),
        recent_interactions=tuple(interactions),
        interaction_count=interaction_count,
        recent_orders=tuple(orders),
        order_totals=totals,
        open=tuple(_open(uow, customer_id, recent, as_of)),
        as_of=as_of,
    )


def _open(uow: UnitOfWork, customer_id: str, recent: int, now: datetime) -> Sequence[OpenRecords]:
    found = []
    for name, (aggregate, condition) in sorted(_OPEN.items()):
        repo = uow.repository(aggregate)
        where = (Field(aggregate.customer_field or "") == customer_id) & condition
        items = repo.find(where, order_by=["-created_at"], limit=recent, now=now)
        total = len(items) if len(items) < recent else repo.count(where, now=now)
        found.append(OpenRecords(kind=name, items=tuple(items), total=total))
    return found
