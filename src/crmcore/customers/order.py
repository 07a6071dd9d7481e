"""The `Order` aggregate: a purchase with lines, in one currency, for history and analytics."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.money import Money, check_currency, check_quantity
from crmcore.validation import (
    check_on_setattr,
    checked,
    custom_fields,
    instance_of,
    one_of,
    optional,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
    version_number,
)

__all__ = [
    "COUNTED_STATUSES",
    "ORDER_FIELDS",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OrderTotals",
    "SalesChannel",
    "order_totals",
]


class OrderStatus(enum.Enum):
    """Where an order stands. Cancelled and refunded orders are not purchases (`counts`)."""

    PENDING = "pending"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"

    @property
    def counts(self) -> bool:
        """Whether orders in this status count as purchases in totals, segments and analytics."""
        return self not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)


COUNTED_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus if s.counts)


class SalesChannel(enum.Enum):
    """Where an order was placed."""

    ONLINE = "online"
    IN_STORE = "in_store"
    PHONE = "phone"
    PARTNER = "partner"
    MARKETPLACE = "marketplace"
    OTHER = "other"


@attrs.frozen(kw_only=True)
class OrderLine:
    """One product on an order: quantity times unit price, less an optional discount amount."""

    product: str = checked(text(max_length=300, required=True))
    quantity: Decimal = checked(check_quantity, default=Decimal(1))
    unit_price: Money = checked(instance_of(Money))
    sku: str = checked(text(max_length=100), default="")
    discount: Money | None = checked(optional(instance_of(Money)), default=None)
    """An amount off this line's quantity x unit price."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.unit_price.amount < 0:
            raise ValidationError("unit_price", "must not be negative (take money off with a discount)")
        if self.discount is not None:
            if self.discount.currency != self.unit_price.currency:
                raise ValidationError("discount", "must be in the unit price's currency")
            if self.discount.amount < 0 or self.discount > self.gross:
                raise ValidationError("discount", f"must be between 0 and the line's gross {self.gross}")

    @property
    def gross(self) -> Money:
        """Quantity x unit price, before the discount."""
        return self.unit_price * self.quantity

    @property
    def total(self) -> Money:
        """The line's amount after its discount (not rounded; the order rounds its total)."""
        return self.gross if self.discount is None else self.gross - self.discount


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Order:
    """A purchase by a customer. Every line and the discount are in the order's ``currency``.

    ``total`` is derived from the lines (rounded to the currency's minor unit), never stored
    separately on the object, so it cannot drift from them.
    """

    customer_id: str = checked(check_id)
    ordered_at: datetime = checked(utc_datetime)
    currency: str = checked(check_currency)
    lines: Sequence[OrderLine] = checked(tuple_of(instance_of(OrderLine)), default=())
    id: str = checked(check_id, factory=new_id)
    number: str = checked(text(max_length=64), default="")
    """The host's own order number, for people; ``id`` is the key."""
    status: OrderStatus = checked(one_of(OrderStatus), default=OrderStatus.PAID)
    channel: SalesChannel = checked(one_of(SalesChannel), default=SalesChannel.ONLINE)
    discount: Money | None = checked(optional(instance_of(Money)), default=None)
    """An amount off the whole order, after line discounts."""
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless lines and discount agree with the currency (stores call it)."""
        errors = [
            FieldError(
                f"lines[{i}].unit_price", f"is in {line.unit_price.currency}, the order in {self.currency}"
            )
            for i, line in enumerate(self.lines)
            if line.unit_price.currency != self.currency
        ]
        if self.discount is not None:
            if self.discount.currency != self.currency:
                errors.append(
                    FieldError("discount", f"is in {self.discount.currency}, the order in {self.currency}")
                )
            elif self.discount.amount < 0:
                errors.append(FieldError("discount", "must not be negative"))
        if not errors:
            try:
                if self.total.amount < 0:
                    errors.append(FieldError("discount", "is larger than the lines' total"))
            except ValidationError as exc:  # a line or the sum beyond Money's range
                errors.append(FieldError("lines", f"the order's total is out of range: {exc.reason}"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def subtotal(self) -> Money:
        """The sum of the line totals."""
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + line.total
        return total

    @property
    def total(self) -> Money:
        """What the customer pays: subtotal less the order discount, rounded to minor units."""
        total = self.subtotal if self.discount is None else self.subtotal - self.discount
        return total.rounded()


ORDER_FIELDS = FieldSet.of(
    "Order",
    [
        *record_fields(),
        FieldDef("customer_id", FieldType.TEXT, lambda o: o.customer_id, nullable=False),
        FieldDef("number", FieldType.TEXT, lambda o: o.number, nullable=False),
        FieldDef("ordered_at", FieldType.DATETIME, lambda o: o.ordered_at, nullable=False),
        enum_field("status", OrderStatus),
        enum_field("channel", SalesChannel),
        FieldDef("currency", FieldType.TEXT, lambda o: o.currency, nullable=False),
        FieldDef("total", FieldType.MONEY, lambda o: o.total, nullable=False),
    ],
    json={"custom": lambda o: o.custom},
)
"""The fields of `Order` that conditions, ``find`` and ``order_by`` can use."""


@attrs.frozen(kw_only=True)
class OrderTotals:
    """A customer's purchases: counted orders (see `OrderStatus.counts`), spend per currency, span."""

    customer_id: str
    orders: int = 0
    spend: tuple[Money, ...] = ()
    """Total spend, one `Money` per currency, sorted by currency (currencies never mix)."""
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None

    def spend_in(self, currency: str) -> Money:
        """Spend in ``currency`` (zero when none)."""
        currency = check_currency(currency)
        return next((m for m in self.spend if m.currency == currency), Money.zero(currency))


def order_totals(orders: Iterable[Order]) -> dict[str, OrderTotals]:
    """Totals per customer of the orders that count as purchases (the reference for SQL stores)."""
    spend: dict[str, dict[str, Money]] = {}
    counts: dict[str, int] = {}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for order in orders:
        if not order.status.counts:
            continue
        cid = order.customer_id
        counts[cid] = counts.get(cid, 0) + 1
        by_currency = spend.setdefault(cid, {})
        by_currency[order.currency] = (
            by_currency.get(order.currency, Money.zero(order.currency)) + order.total
        )
        first[cid] = min(first.get(cid, order.ordered_at), order.ordered_at)
        last[cid] = max(last.get(cid, order.ordered_at), order.ordered_at)
    return {
        cid: OrderTotals(
            customer_id=cid,
            orders=n,
            spend=tuple(money for _, money in sorted(spend[cid].items())),
            first_order_at=first[cid],
            last_order_at=last[cid],
        )
        for cid, n in counts.items()
    }
