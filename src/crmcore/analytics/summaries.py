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

`summarize` computes them in Python from orders; `customer_summaries` asks the store
(`OrderRepository.purchase_stats`; SQL stores read a per-customer rollup they keep current).
Both give identical results, held as columns (`CustomerSummaries`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.analytics._extras import require
from crmcore.clock import MICROS_PER_DAY, epoch_micros, from_epoch_micros
from crmcore.customers.order import Order
from crmcore.customers.purchases import PurchaseStats, purchase_stats_of
from crmcore.errors import ValidationError
from crmcore.money import Money, check_currency, minor_units
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

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
    """Summaries of every customer with a purchase, as of ``observed_at``, sorted by customer id.

    Held as columns (entry ``i`` of each is one customer), because models, RFM and DataFrames
    read them column by column and a store returns them that way; iterating, indexing and `get`
    give `CustomerSummary` objects, built on first use. Amounts are exact whole minor units of
    ``currency``; instants are `crmcore.clock.epoch_micros`. Build one from objects with `of`.
    """

    observed_at: datetime
    unit: TimeUnit
    currency: str | None
    """None only when there is no purchase and no currency was asked for."""
    customer_ids: tuple[str, ...] = ()
    frequency: tuple[int, ...] = ()
    """Repeat purchases: distinct purchase days minus one."""
    recency: tuple[float, ...] = ()
    """First purchase day to last purchase day, in the unit."""
    age: tuple[float, ...] = ()
    """T: first purchase day to the observation day, in the unit."""
    monetary_value_minor: tuple[int, ...] = ()
    """Mean spend per repeat purchase day, rounded half up to the minor unit; 0 without repeats."""
    total_spend_minor: tuple[int, ...] = ()
    orders: tuple[int, ...] = ()
    first_order_micros: tuple[int, ...] = ()
    last_order_micros: tuple[int, ...] = ()
    _cache: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in _COLUMNS}
        if len(lengths) > 1:
            raise ValidationError("CustomerSummaries", f"columns differ in length: {sorted(lengths)}")
        if self.customer_ids and self.currency is None:
            raise ValidationError("currency", "is required when there are customers")

    @classmethod
    def of(
        cls,
        customers: Iterable[CustomerSummary],
        *,
        observed_at: datetime,
        unit: TimeUnit | str,
        currency: str | None = None,
    ) -> CustomerSummaries:
        """Columns from `CustomerSummary` objects (sorted here by customer id), e.g. your own.

        Raises:
            ValidationError: amounts in a currency other than ``currency`` (or in several, without
                it), or amounts with digits below the minor unit.
        """
        rows = sorted(customers, key=lambda s: s.customer_id)
        found = {m.currency for s in rows for m in (s.monetary_value, s.total_spend)}
        code = None if currency is None else check_currency(currency)
        if code is not None:
            found.add(code)
        if len(found) > 1:
            raise _mixed(found)
        return cls(
            observed_at=utc_datetime(observed_at, "observed_at").astimezone(UTC),
            unit=_unit(unit),
            currency=found.pop() if found else None,
            customer_ids=tuple(s.customer_id for s in rows),
            frequency=tuple(s.frequency for s in rows),
            recency=tuple(s.recency for s in rows),
            age=tuple(s.age for s in rows),
            monetary_value_minor=tuple(s.monetary_value.minor for s in rows),
            total_spend_minor=tuple(s.total_spend.minor for s in rows),
            orders=tuple(s.orders for s in rows),
            first_order_micros=tuple(epoch_micros(s.first_order_at) for s in rows),
            last_order_micros=tuple(epoch_micros(s.last_order_at) for s in rows),
        )

    @property
    def customers(self) -> tuple[CustomerSummary, ...]:
        """One `CustomerSummary` per customer (built once, on first use)."""
        built: tuple[CustomerSummary, ...] | None = self._cache.get("customers")
        if built is None:
            built = self._cache["customers"] = tuple(self._summary(i) for i in range(len(self)))
        return built

    def _summary(self, i: int) -> CustomerSummary:
        code = self.currency or ""
        return CustomerSummary(
            customer_id=self.customer_ids[i],
            frequency=self.frequency[i],
            recency=self.recency[i],
            age=self.age[i],
            monetary_value=Money.from_minor(self.monetary_value_minor[i], code),
            total_spend=Money.from_minor(self.total_spend_minor[i], code),
            orders=self.orders[i],
            first_order_at=from_epoch_micros(self.first_order_micros[i]),
            last_order_at=from_epoch_micros(self.last_order_micros[i]),
        )

    def __iter__(self) -> Iterator[CustomerSummary]:
        return iter(self.customers)

    def __len__(self) -> int:
        return len(self.customer_ids)

    def __getitem__(self, i: int) -> CustomerSummary:
        return self.customers[i]

    def get(self, customer_id: str) -> CustomerSummary | None:
        """The summary of ``customer_id``, or None when the customer has no purchase."""
        index: dict[str, int] | None = self._cache.get("index")
        if index is None:
            index = self._cache["index"] = {cid: i for i, cid in enumerate(self.customer_ids)}
        i = index.get(customer_id)
        return None if i is None else self.customers[i]

    def amounts(self, column: str) -> list[float]:
        """``"monetary_value"`` or ``"total_spend"`` as floats in currency units (models, plots)."""
        minor = {"monetary_value": self.monetary_value_minor, "total_spend": self.total_spend_minor}
        if column not in minor:
            raise ValidationError(
                "column", f"{column!r} is not an amount: use 'monetary_value' or 'total_spend'"
            )
        scale = 10 ** minor_units(self.currency) if self.currency else 1
        return [m / scale for m in minor[column]]

    def to_dataframe(self) -> Any:
        """A pandas DataFrame indexed by ``customer_id``, columns named as in ``lifetimes``.

        ``frequency``, ``recency``, ``T``, ``monetary_value`` (float), then ``total_spend`` (float),
        ``orders``, ``first_order_at``, ``last_order_at``. Needs the ``pandas`` extra.
        """
        pd = _require_pandas()
        frame = pd.DataFrame(
            {
                "customer_id": list(self.customer_ids),
                "frequency": list(self.frequency),
                "recency": list(self.recency),
                "T": list(self.age),
                "monetary_value": self.amounts("monetary_value"),
                "total_spend": self.amounts("total_spend"),
                "orders": list(self.orders),
                "first_order_at": pd.to_datetime(list(self.first_order_micros), unit="us", utc=True),
                "last_order_at": pd.to_datetime(list(self.last_order_micros), unit="us", utc=True),
            }
        )
        return frame.set_index("customer_id")


_COLUMNS = tuple(
    a.name
    for a in attrs.fields(CustomerSummaries)
    if a.name not in ("observed_at", "unit", "currency", "_cache")
)


def _require_pandas() -> Any:
    """The pandas module, or a `CrmError` (`MissingExtra`) saying which extra to install."""
    return require("pandas", "pandas")


def _from_stats(
    stats: PurchaseStats, observed_at: datetime, unit: TimeUnit, currency: str | None
) -> CustomerSummaries:
    """The summaries of one currency's purchase statistics (see the module docs), column by column."""
    found = set(stats.currencies)
    if len(found) > 1:
        raise _mixed(found)
    code = currency if currency is not None else (found.pop() if found else None)
    per_unit = unit.days
    observed_day = epoch_micros(observed_at) // MICROS_PER_DAY
    first_days = [m // MICROS_PER_DAY for m in stats.first_order_micros]
    # list comprehensions, then tuples: faster than tuple(generator) at a hundred thousand rows
    frequency = [d - 1 for d in stats.purchase_days]
    recency = [
        (last // MICROS_PER_DAY - first) / per_unit
        for first, last in zip(first_days, stats.last_order_micros, strict=True)
    ]
    age = [(observed_day - first) / per_unit for first in first_days]
    # mean repeat spend rounded half up in integers: floor(a / n + 1/2), exact as spend is never negative
    monetary = [
        (2 * (spend - first) + n) // (2 * n) if n else 0
        for spend, first, n in zip(stats.spend_minor, stats.first_day_spend_minor, frequency, strict=True)
    ]
    return CustomerSummaries(
        observed_at=observed_at,
        unit=unit,
        currency=code,
        customer_ids=stats.customer_ids,
        frequency=tuple(frequency),
        recency=tuple(recency),
        age=tuple(age),
        monetary_value_minor=tuple(monetary),
        total_spend_minor=stats.spend_minor,
        orders=stats.orders,
        first_order_micros=stats.first_order_micros,
        last_order_micros=stats.last_order_micros,
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
    return _from_stats(purchase_stats_of(orders, through=observed_at, currency=code), observed_at, unit, code)


def customer_summaries(
    uow: UnitOfWork,
    observed_at: datetime,
    *,
    unit: TimeUnit | str = TimeUnit.DAYS,
    currency: str | None = None,
    customer_ids: Iterable[str] | None = None,
) -> CustomerSummaries:
    """Summaries per customer from the store's orders, aggregated where the data lives.

    Same arguments and results as `summarize` over the unit of work's orders; ``customer_ids``
    limits the summaries to those customers. SQL stores read a per-customer rollup they keep up
    to date on every order write (see the docs).

    Raises:
        ValidationError: as `summarize`.
    """
    unit = _unit(unit)
    observed_at = utc_datetime(observed_at, "observed_at").astimezone(UTC)
    code = None if currency is None else check_currency(currency)
    stats = uow.orders.purchase_stats(through=observed_at, currency=code, customer_ids=customer_ids)
    return _from_stats(stats, observed_at, unit, code)
