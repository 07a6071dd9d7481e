"""Customer summaries: frequency, recency, age (T) and monetary value per customer, from orders.

The conventions are those of the ``lifetimes`` package (``summary_data_from_transaction_data``
with daily periods) and of the BG/NBD and Gamma-Gamma papers:

- only orders whose status counts as a purchase (`OrderStatus.counts`) placed at or before the
  observation time are used, in one currency;
- a *purchase* is a UTC calendar day with at least one such order (two orders on one day count once);
- ``frequency`` is the number of repeat purchases: purchase days minus one;
- ``recency`` is the time from the first purchase day to the last, ``age`` (T) the time from the
  first purchase day to the observation day, in whole days divided by the unit (weeks = days / 7);
- ``monetary_value`` is the mean spend of the repeat purchases (each day's orders summed, the
  first day left out), rounded to the currency's minor unit; zero without repeat purchases.

`summarize` computes them in Python from orders; `customer_summaries` asks the store, which on SQL
runs one grouped query. Both give identical results.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.analytics._extras import require
from crmcore.customers.order import Order
from crmcore.errors import ValidationError
from crmcore.money import Money, check_currency
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import PurchaseStats, UnitOfWork

__all__ = [
    "CustomerSummaries",
    "CustomerSummary",
    "TimeUnit",
    "customer_summaries",
    "summarize",
]


class TimeUnit(enum.Enum):
    """The unit summaries measure recency and age in."""

    DAYS = "days"
    WEEKS = "weeks"

    @property
    def days(self) -> int:
        """Days per unit."""
        return 7 if self is TimeUnit.WEEKS else 1


def _unit(unit: TimeUnit | str) -> TimeUnit:
    if isinstance(unit, TimeUnit):
        return unit
    try:
        return TimeUnit(unit)
    except ValueError:
        valid = ", ".join(repr(u.value) for u in TimeUnit)
        raise ValidationError("unit", f"{unit!r} is not a time unit; use one of {valid}") from None


@attrs.frozen(kw_only=True)
class CustomerSummary:
    """One customer's purchase history up to the observation time (see the module docs)."""

    customer_id: str
    frequency: int
    """Repeat purchases: distinct purchase days minus one."""
    recency: float
    """First purchase day to last purchase day, in the summary's unit."""
    age: float
    """T: first purchase day to the observation day, in the summary's unit."""
    monetary_value: Money
    """Mean spend per repeat purchase day (first day excluded); zero when ``frequency`` is 0."""
    total_spend: Money
    """All counted orders up to the observation time, first day included."""
    orders: int
    """Counted orders (several on one day count separately here)."""
    first_order_at: datetime
    last_order_at: datetime


@attrs.frozen(kw_only=True)
class CustomerSummaries:
    """Summaries of every customer with a purchase, as of ``observed_at``, sorted by customer id."""

    observed_at: datetime
    unit: TimeUnit
    currency: str | None
    """None only when there is no purchase and no currency was asked for."""
    customers: tuple[CustomerSummary, ...] = ()

    def __iter__(self) -> Iterator[CustomerSummary]:
        return iter(self.customers)

    def __len__(self) -> int:
        return len(self.customers)

    def get(self, customer_id: str) -> CustomerSummary | None:
        """The summary of ``customer_id``, or None when the customer has no purchase."""
        return next((s for s in self.customers if s.customer_id == customer_id), None)

    def to_dataframe(self) -> Any:
        """A pandas DataFrame indexed by ``customer_id``, columns named as in ``lifetimes``.

        ``frequency``, ``recency``, ``T``, ``monetary_value`` (float), then ``total_spend`` (float),
        ``orders``, ``first_order_at``, ``last_order_at``. Needs the ``pandas`` extra.
        """
        pd = _require_pandas()
        frame = pd.DataFrame(
            {
                "customer_id": [s.customer_id for s in self.customers],
                "frequency": [s.frequency for s in self.customers],
                "recency": [s.recency for s in self.customers],
                "T": [s.age for s in self.customers],
                "monetary_value": [float(s.monetary_value.amount) for s in self.customers],
                "total_spend": [float(s.total_spend.amount) for s in self.customers],
                "orders": [s.orders for s in self.customers],
                "first_order_at": pd.to_datetime([s.first_order_at for s in self.customers], utc=True),
                "last_order_at": pd.to_datetime([s.last_order_at for s in self.customers], utc=True),
            }
        )
        return frame.set_index("customer_id")


def _require_pandas() -> Any:
    """The pandas module, or a `CrmError` (`MissingExtra`) saying which extra to install."""
    return require("pandas", "pandas")


def _summary(
    customer_id: str,
    *,
    purchase_days: int,
    orders: int,
    first_day: date,
    last_day: date,
    observed_day: date,
    spend: Money,
    first_day_spend: Money,
    first_order_at: datetime,
    last_order_at: datetime,
    unit: TimeUnit,
) -> CustomerSummary:
    frequency = purchase_days - 1
    repeat = spend - first_day_spend
    monetary = (
        Money(repeat.amount / Decimal(frequency), repeat.currency).rounded(ROUND_HALF_UP)
        if frequency
        else Money.zero(spend.currency)
    )
    return CustomerSummary(
        customer_id=customer_id,
        frequency=frequency,
        recency=(last_day - first_day).days / unit.days,
        age=(observed_day - first_day).days / unit.days,
        monetary_value=monetary,
        total_spend=spend,
        orders=orders,
        first_order_at=first_order_at.astimezone(UTC),
        last_order_at=last_order_at.astimezone(UTC),
    )


def _mixed(currencies: Iterable[str]) -> ValidationError:
    found = ", ".join(sorted(set(currencies)))
    return ValidationError(
        "currency", f"orders are in several currencies ({found}); summarize one at a time with currency="
    )


def summarize(
    orders: Iterable[Order],
    observed_at: datetime,
    *,
    unit: TimeUnit | str = TimeUnit.DAYS,
    currency: str | None = None,
) -> CustomerSummaries:
    """Summaries per customer, computed in Python from ``orders``.

    Args:
        orders: any orders; those not counting as purchases or placed after ``observed_at`` are ignored.
        observed_at: the end of the observation period (inclusive), tz-aware.
        unit: ``"days"`` or ``"weeks"`` for recency and age.
        currency: keep only orders in this currency; without it, the orders must share one.

    Raises:
        ValidationError: a bad unit, date or currency, or orders in several currencies and no ``currency``.
    """
    unit = _unit(unit)
    observed_at = utc_datetime(observed_at, "observed_at").astimezone(UTC)
    code = None if currency is None else check_currency(currency)
    by_customer: dict[str, list[Order]] = {}
    for order in orders:
        if order.status.counts and order.ordered_at <= observed_at and code in (None, order.currency):
            by_customer.setdefault(order.customer_id, []).append(order)
    currencies = {o.currency for group in by_customer.values() for o in group}
    if len(currencies) > 1:
        raise _mixed(currencies)
    if code is None:
        code = currencies.pop() if currencies else None
    observed_day = observed_at.date()
    out = []
    for cid in sorted(by_customer):
        group = by_customer[cid]
        spend_by_day: dict[date, Money] = {}
        for o in group:
            day = o.ordered_at.astimezone(UTC).date()
            spend_by_day[day] = spend_by_day.get(day, Money.zero(o.currency)) + o.total
        first_day, last_day = min(spend_by_day), max(spend_by_day)
        total = Money.zero(group[0].currency)
        for money in spend_by_day.values():
            total = total + money
        out.append(
            _summary(
                cid,
                purchase_days=len(spend_by_day),
                orders=len(group),
                first_day=first_day,
                last_day=last_day,
                observed_day=observed_day,
                spend=total,
                first_day_spend=spend_by_day[first_day],
                first_order_at=min(o.ordered_at for o in group),
                last_order_at=max(o.ordered_at for o in group),
                unit=unit,
            )
        )
    return CustomerSummaries(observed_at=observed_at, unit=unit, currency=code, customers=tuple(out))


def customer_summaries(
    uow: UnitOfWork,
    observed_at: datetime,
    *,
    unit: TimeUnit | str = TimeUnit.DAYS,
    currency: str | None = None,
    customer_ids: Iterable[str] | None = None,
) -> CustomerSummaries:
    """Summaries per customer from the store's orders; SQL stores aggregate in one grouped query.

    Same arguments and results as `summarize` over the unit of work's orders; ``customer_ids``
    limits the summaries to those customers.

    Raises:
        ValidationError: as `summarize`.
    """
    unit = _unit(unit)
    observed_at = utc_datetime(observed_at, "observed_at").astimezone(UTC)
    code = None if currency is None else check_currency(currency)
    stats: list[PurchaseStats] = uow.orders.purchase_stats(
        through=observed_at, currency=code, customer_ids=customer_ids
    )
    currencies = {s.spend.currency for s in stats}
    if len(currencies) > 1:
        raise _mixed(currencies)
    if code is None:
        code = currencies.pop() if currencies else None
    observed_day = observed_at.date()
    out = tuple(
        _summary(
            s.customer_id,
            purchase_days=s.purchase_days,
            orders=s.orders,
            first_day=s.first_order_at.astimezone(UTC).date(),
            last_day=s.last_order_at.astimezone(UTC).date(),
            observed_day=observed_day,
            spend=s.spend,
            first_day_spend=s.first_day_spend,
            first_order_at=s.first_order_at,
            last_order_at=s.last_order_at,
            unit=unit,
        )
        for s in stats
    )
    return CustomerSummaries(observed_at=observed_at, unit=unit, currency=code, customers=out)
