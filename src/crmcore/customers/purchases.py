"""Purchase statistics per (customer, currency), as columns: what customer summaries are built from.

A *purchase day* is a UTC calendar day with at least one counted order (`OrderStatus.counts`).
Stores compute `PurchaseStats` where the data lives (`OrderRepository.purchase_stats`: SQL
stores read a rollup they keep up to date); `purchase_stats_of` is the Python reference every
store must match. Columns instead of one object per customer, because the consumers (summaries,
RFM, lifetime-value fits, DataFrames) work column by column, and a hundred thousand small objects
cost more than the query that produced them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs

from crmcore.clock import MICROS_PER_DAY, epoch_micros
from crmcore.customers.order import Order

__all__ = ["PurchaseStats", "purchase_stats_of"]


@attrs.frozen(kw_only=True)
class PurchaseStats:
    """Counted orders aggregated per (customer, currency): entry ``i`` of every column is one pair.

    Sorted by customer id, then currency. Money is in exact whole minor units of the entry's
    currency (order totals are rounded to minor units, so the sums are exact); instants are
    `crmcore.clock.epoch_micros` (UTC). ``purchase_days`` counts distinct UTC days with a counted
    order; ``first_day_spend_minor`` is the spend on the first of them.
    """

    customer_ids: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    orders: tuple[int, ...] = ()
    purchase_days: tuple[int, ...] = ()
    spend_minor: tuple[int, ...] = ()
    first_day_spend_minor: tuple[int, ...] = ()
    first_order_micros: tuple[int, ...] = ()
    last_order_micros: tuple[int, ...] = ()

    def __attrs_post_init__(self) -> None:
        lengths = {len(getattr(self, a.name)) for a in attrs.fields(PurchaseStats)}
        if len(lengths) > 1:  # an adapter bug, not user input
            raise ValueError(f"PurchaseStats columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.customer_ids)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Any, ...] | Any]) -> PurchaseStats:
        """From rows of (customer id, currency, orders, purchase days, spend, first-day spend,
        first order, last order), already sorted, numbers as ``int``.
        """
        rows = rows if isinstance(rows, list) else list(rows)
        if any(len(r) != 8 for r in rows):
            raise ValueError("PurchaseStats rows have 8 columns")
        # one comprehension per column: zip(*rows) would allocate an iterator per row, and a
        # hundred thousand new container objects set off full garbage-collector passes
        cols = [tuple([r[k] for r in rows]) for k in range(8)]
        return cls(
            customer_ids=cols[0],
            currencies=cols[1],
            orders=cols[2],
            purchase_days=cols[3],
            spend_minor=cols[4],
            first_day_spend_minor=cols[5],
            first_order_micros=cols[6],
            last_order_micros=cols[7],
        )

    def rows(self) -> Iterator[tuple[str, str, int, int, int, int, int, int]]:
        """The entries as tuples, in the column order of `from_rows`."""
        return zip(
            self.customer_ids,
            self.currencies,
            self.orders,
            self.purchase_days,
            self.spend_minor,
            self.first_day_spend_minor,
            self.first_order_micros,
            self.last_order_micros,
            strict=True,
        )


def purchase_stats_of(
    orders: Iterable[Order],
    *,
    through: datetime,
    currency: str | None = None,
    customer_ids: Iterable[str] | None = None,
) -> PurchaseStats:
    """`PurchaseStats` of the counted ``orders`` placed at or before ``through``, in Python.

    ``currency`` keeps only orders in it, ``customer_ids`` only those customers' orders. The
    reference that `OrderRepository.purchase_stats` of every store matches.
    """
    wanted = None if customer_ids is None else set(customer_ids)
    # (customer, currency) -> [orders, {day: spend}, first instant, last instant]
    groups: dict[tuple[str, str], list[Any]] = {}
    for o in orders:
        if not o.status.counts or o.ordered_at > through:
            continue
        if (currency is not None and o.currency != currency) or (
            wanted is not None and o.customer_id not in wanted
        ):
            continue
        at = epoch_micros(o.ordered_at)
        group = groups.get((o.customer_id, o.currency))
        if group is None:
            group = groups[(o.customer_id, o.currency)] = [0, {}, at, at]
        group[0] += 1
        days: dict[int, int] = group[1]
        day = at // MICROS_PER_DAY
        days[day] = days.get(day, 0) + o.total.minor
        group[2], group[3] = min(group[2], at), max(group[3], at)
    return PurchaseStats.from_rows(
        (cid, code, n, len(days), sum(days.values()), days[min(days)], first, last)
        for (cid, code), (n, days, first, last) in sorted(groups.items())
    )
