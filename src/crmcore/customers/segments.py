"""Segments: named, saved conditions over customers and facts derived from their orders.

A segment such as "German VIPs who spent over 1,000 EUR and have not ordered for 90 days" is plain
data (it round-trips through `crmcore.serialization`); membership is live: `members` evaluates the
condition when it is called, in the database on SQL stores (one query) and in Python in memory,
with the same answers.

Fact rules (orders count as purchases when `OrderStatus.counts` says so):

- ``order_count``: how many counted orders the customer has (0 without any);
- ``total_spend``: the sum of counted orders in the segment's ``currency``, orders in other
  currencies left out (``Money(0, currency)`` without any); a segment without a currency cannot
  use it;
- ``first_order_at`` / ``last_order_at``: the first and last counted order in any currency (NULL
  without orders).
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from crmcore.conditions import (
    All,
    Any,
    Compare,
    Condition,
    FieldDef,
    FieldSet,
    FieldType,
    In,
    Not,
    check_condition,
    evaluate,
)
from crmcore.customers.customer import CUSTOMER_FIELDS, Customer
from crmcore.customers.order import OrderTotals
from crmcore.errors import FieldError, ValidationError
from crmcore.money import Money, check_currency
from crmcore.validation import checked, instance_of, optional, run_checks, text, utc_datetime

if t.TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

__all__ = [
    "CUSTOMER_FACTS",
    "CUSTOMER_FACT_FIELDS",
    "CustomerFacts",
    "Segment",
    "check_segment_condition",
    "count_members",
    "customer_facts",
    "is_member",
    "members",
    "uses_facts",
]

CUSTOMER_FACTS: tuple[str, ...] = ("order_count", "total_spend", "first_order_at", "last_order_at")
"""The names of the facts derived from orders (every other segment field is a customer field)."""


@attrs.frozen(kw_only=True)
class CustomerFacts:
    """A customer with the facts derived from its counted orders: what segment conditions read."""

    customer: Customer
    order_count: int = 0
    total_spend: Money | None = None
    """Spend in the segment's currency; None only when the segment has no currency."""
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None


def customer_facts(customer: Customer, totals: OrderTotals | None, currency: str | None) -> CustomerFacts:
    """The facts of ``customer`` from its order ``totals`` (None: no counted orders).

    Args:
        customer: the customer.
        totals: its `OrderTotals` (from `order_totals` or ``uow.orders.totals()``), or None.
        currency: the segment's currency, for ``total_spend``; None leaves it unset.
    """
    if totals is None:
        spend = None if currency is None else Money.zero(currency)
        return CustomerFacts(customer=customer, total_spend=spend)
    return CustomerFacts(
        customer=customer,
        order_count=totals.orders,
        total_spend=None if currency is None else totals.spend_in(currency),
        first_order_at=totals.first_order_at,
        last_order_at=totals.last_order_at,
    )


def _on_customer(fd: FieldDef) -> FieldDef:
    get = fd.get
    return attrs.evolve(fd, get=lambda f: get(f.customer))


CUSTOMER_FACT_FIELDS = FieldSet.of(
    "Customer",
    [
        *(_on_customer(fd) for fd in CUSTOMER_FIELDS.fields.values()),
        FieldDef("order_count", FieldType.INTEGER, lambda f: f.order_count, nullable=False),
        FieldDef("total_spend", FieldType.MONEY, lambda f: f.total_spend, nullable=False),
        FieldDef("first_order_at", FieldType.DATETIME, lambda f: f.first_order_at),
        FieldDef("last_order_at", FieldType.DATETIME, lambda f: f.last_order_at),
    ],
    json={"custom": lambda f: f.customer.custom},
)
"""Every customer field (tags and ``custom.<key>`` included) plus the order facts, over `CustomerFacts`."""


def _fields_in(cond: Condition) -> Iterable[tuple[str, str, Condition]]:
    """(path, field name, leaf) of every leaf, paths as `check_condition` names them."""

    def walk(c: Condition, path: str) -> Iterable[tuple[str, str, Condition]]:
        if isinstance(c, All | Any):
            for i, sub in enumerate(c.conditions):
                yield from walk(sub, f"{path}.conditions[{i}]")
        elif isinstance(c, Not):
            yield from walk(c.condition, f"{path}.condition")
        elif isinstance(getattr(c, "field", None), str):
            yield path, t.cast(t.Any, c).field, c

    return walk(cond, "where")


def uses_facts(where: Condition | None, order_by: Sequence[str] = ()) -> bool:
    """Whether ``where`` or ``order_by`` reads an order fact (so orders must be aggregated)."""
    names = {name for _, name, _ in _fields_in(where)} if where is not None else set()
    names |= {spec.lstrip("-") for spec in order_by}
    return not names.isdisjoint(CUSTOMER_FACTS)


def check_segment_condition(
    where: Condition, currency: str | None, root: str = "where", *, check_spend: bool = True
) -> None:
    """Refuse a condition that `CUSTOMER_FACT_FIELDS` cannot answer for a segment in ``currency``.

    Beyond `check_condition` (unknown fields, wrong types, naive datetimes): ``total_spend`` needs
    a currency, and is compared with amounts in that currency only (not checked when
    ``check_spend`` is false, e.g. because the currency itself is bad).

    Raises:
        ValidationError: listing every problem, paths starting with ``root``.
    """
    errors: list[FieldError] = []
    try:
        check_condition(where, CUSTOMER_FACT_FIELDS)
    except ValidationError as exc:
        errors.extend(exc.errors)
    for path, name, leaf in _fields_in(where):
        if name != "total_spend" or not check_spend:
            continue
        if currency is None:
            errors.append(FieldError(path, "total_spend needs the segment's currency: set currency="))
            continue
        values: list[object] = []
        if isinstance(leaf, Compare):
            values = [leaf.value]
        elif isinstance(leaf, In):
            values = list(leaf.values)
        else:
            values = [getattr(leaf, "low", None), getattr(leaf, "high", None)]
        for value in values:
            if isinstance(value, Money) and value.currency != currency:
                errors.append(
                    FieldError(
                        path,
                        f"total_spend is in {currency} (the segment's currency); "
                        f"{value} is in {value.currency}",
                    )
                )
                break
    if errors:
        errors = [FieldError(root + e.path.removeprefix("where"), e.reason) for e in errors]
        unique = list(dict.fromkeys(errors))
        raise ValidationError.from_errors(unique)


def _condition_check(value: t.Any, path: str) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(path, f"must be a condition, not {type(value).__name__}")
    return value


@attrs.frozen(kw_only=True)
class Segment:
    """A named group of customers: those matching ``condition`` when asked (live membership).

    ``currency`` is the currency of ``total_spend`` in the condition; leave it None when the
    condition does not use it. The condition is checked when the segment is built.
    """

    name: str = checked(text(max_length=200, required=True))
    condition: Condition = checked(_condition_check)
    currency: str | None = checked(optional(check_currency), default=None)
    description: str = checked(text(max_length=2000), default="")

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        try:
            run_checks(self)
        except ValidationError as exc:
            errors.extend(exc.errors)
        if isinstance(self.condition, Condition):
            currency_ok = not any(e.path == "currency" for e in errors)
            try:
                check_segment_condition(self.condition, self.currency, "condition", check_spend=currency_ok)
            except ValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ValidationError.from_errors(errors)


def is_member(
    customer: Customer, totals: OrderTotals | None, segment: Segment, now: datetime | None = None
) -> bool:
    """Whether ``customer``, with its order ``totals``, belongs to ``segment`` at ``now`` (pure).

    ``now`` is needed when the condition uses relative dates.
    """
    instance_of(Segment)(segment, "segment")
    if now is not None:
        now = utc_datetime(now, "now")
    facts = customer_facts(customer, totals, segment.currency)
    return evaluate(segment.condition, facts, CUSTOMER_FACT_FIELDS, now)


def members(
    uow: UnitOfWork,
    segment: Segment,
    *,
    now: datetime | None = None,
    order_by: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
) -> list[Customer]:
    """The customers in ``segment`` now, sorted by ``order_by`` (facts allowed), then by id.

    Evaluated in the store: one query on SQL stores. ``now`` anchors relative dates and defaults
    to the unit of work's clock.

    Raises:
        ValidationError: a naive ``now``, an unknown or unsortable ``order_by`` field, bad paging.
    """
    instance_of(Segment)(segment, "segment")
    return uow.customers.find_with_facts(
        segment.condition,
        currency=segment.currency,
        order_by=order_by,
        limit=limit,
        offset=offset,
        now=now,
    )


def count_members(uow: UnitOfWork, segment: Segment, now: datetime | None = None) -> int:
    """How many customers are in ``segment`` now (one ``COUNT`` on SQL stores).

    Raises:
        ValidationError: a naive ``now``.
    """
    instance_of(Segment)(segment, "segment")
    return uow.customers.count_with_facts(segment.condition, currency=segment.currency, now=now)
