"""The purchase-statistics rollup: ``crm_order_stats``, one row per (tenant, customer, currency).

Customer summaries need, per customer, the counted orders, the distinct UTC purchase days, the
spend, the spend on the first day and the first and last order. Aggregating that from a million
orders at every call costs seconds (a window for the first day, a distinct count of days), so the
SQL order repository keeps it in a rollup instead: every order write rewrites the rows of the
customers it touches, from ``crm_orders``, in the same transaction (`refresh`). A read as of a
time after a customer's last order takes the row as it is; customers with orders on both sides
of that time are aggregated from their orders (`read`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    String,
    any_,
    bindparam,
    case,
    delete,
    distinct,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql

from crmcore.clock import epoch_micros
from crmcore.customers.purchases import PurchaseStats
from crmcore.storage.sql.tables import order_stats, orders

__all__ = ["read", "rebuild", "refresh"]

_ID_CHUNK = 500
_COLUMNS = (
    "customer_id",
    "currency",
    "orders",
    "purchase_days",
    "spend_minor",
    "first_day_spend_minor",
    "first_order_micros",
    "last_order_micros",
)


def _micros(dialect: str, instant: Any) -> Any:
    """An SQL expression for `epoch_micros` of a UtcDateTime column value."""
    if dialect == "postgresql":  # extract(epoch) is numeric since PostgreSQL 14: exact
        return func.cast(func.extract("epoch", instant) * 1_000_000, BigInteger)
    # elsewhere a fixed-width UTC text "YYYY-MM-DD HH:MM:SS.ffffff": seconds, then the fraction
    seconds = func.cast(func.strftime("%s", func.substr(instant, 1, 19)), BigInteger)
    return seconds * 1_000_000 + func.cast(func.substr(instant, 21, 6), BigInteger)


def _day(dialect: str) -> Any:
    c = orders.c
    if dialect == "postgresql":
        return func.timezone("UTC", c.ordered_at).cast(Date)
    return func.substr(c.ordered_at, 1, 10)


def _aggregate(dialect: str, source: Any, where: Sequence[Any]) -> Any:
    """Per (tenant, customer, currency) of the counted orders in ``source`` matching ``where``.

    Columns: tenant_id, then those of the rollup. The inner select tags each order with its UTC
    day and the pair's first day (a window), the outer one groups.
    """
    c = orders.c
    day = _day(dialect)
    inner = (
        select(
            c.tenant_id,
            c.customer_id,
            c.currency,
            c.total_minor,
            c.ordered_at,
            day.label("day"),
            func.min(day).over(partition_by=(c.tenant_id, c.customer_id, c.currency)).label("first_day"),
        )
        .select_from(source)
        .where(c.counts.is_(True), *where)
        .subquery()
    )
    return select(
        inner.c.tenant_id,
        inner.c.customer_id,
        inner.c.currency,
        func.count().label("orders"),
        func.count(distinct(inner.c.day)).label("purchase_days"),
        func.sum(inner.c.total_minor).label("spend_minor"),
        func.sum(case((inner.c.day == inner.c.first_day, inner.c.total_minor), else_=0)).label(
            "first_day_spend_minor"
        ),
        _micros(dialect, func.min(inner.c.ordered_at)).label("first_order_micros"),
        _micros(dialect, func.max(inner.c.ordered_at)).label("last_order_micros"),
    ).group_by(inner.c.tenant_id, inner.c.customer_id, inner.c.currency)


def _chunks(dialect: str, ids: Sequence[str] | None) -> list[Sequence[str] | None]:
    """``ids`` in the pieces one statement takes: all at once on PostgreSQL, IN lists elsewhere.

    ``[None]`` means no restriction. One array parameter keeps PostgreSQL from re-planning (and
    re-scanning, with stale statistics right after an import) per chunk.
    """
    if ids is None or dialect == "postgresql":
        return [ids]
    return [ids[i : i + _ID_CHUNK] for i in range(0, len(ids), _ID_CHUNK)]


def _among(dialect: str, column: Any, chunk: Sequence[str]) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam("ids", list(chunk), type_=postgresql.ARRAY(String)))
    return column.in_(chunk)


def refresh(conn: Connection, dialect: str, tenant: str, customer_ids: Iterable[str]) -> None:
    """Rewrite the rollup rows of ``customer_ids`` from their orders (call after writing orders)."""
    ids = sorted(set(customer_ids))
    if ids:
        _rewrite(conn, dialect, tenant, ids)


def rebuild(conn: Connection, dialect: str, tenant: str | None = None) -> None:
    """Rewrite the whole rollup (of one tenant, or of all): after orders were written some other way."""
    _rewrite(conn, dialect, tenant, None)


def _rewrite(conn: Connection, dialect: str, tenant: str | None, ids: Sequence[str] | None) -> None:
    s, c = order_stats.c, orders.c
    for chunk in _chunks(dialect, ids):
        target = [] if tenant is None else [s.tenant_id == tenant]
        source = [] if tenant is None else [c.tenant_id == tenant]
        if chunk is not None:
            target.append(_among(dialect, s.customer_id, chunk))
            source.append(_among(dialect, c.customer_id, chunk))
        conn.execute(delete(order_stats).where(*target))
        conn.execute(
            insert(order_stats).from_select(["tenant_id", *_COLUMNS], _aggregate(dialect, orders, source))
        )


def read(
    conn: Connection,
    dialect: str,
    tenant: str,
    through: datetime,
    currency: str | None,
    customer_ids: Sequence[str] | None,
) -> PurchaseStats:
    """`PurchaseStats` as of ``through``.

    Rollup rows whose last order is not later than ``through`` are taken as they are; pairs with
    orders on both sides of it ("straddling") are aggregated from their orders up to it, looked
    up by customer through the (tenant, customer, time) index.
    """
    s, c = order_stats.c, orders.c
    t = epoch_micros(through)
    mine = [s.tenant_id == tenant] + ([] if currency is None else [s.currency == currency])
    rows: list[Any] = []
    straddling: set[tuple[str, str]] = set()
    chunks = _chunks(dialect, customer_ids)
    for chunk in chunks:
        where = mine if chunk is None else [*mine, _among(dialect, s.customer_id, chunk)]
        stmt = select(*(s[name] for name in _COLUMNS)).where(*where, s.first_order_micros <= t)
        found = conn.execute(stmt.order_by(s.customer_id, s.currency)).all()
        whole = [r for r in found if r[7] <= t]
        if len(whole) < len(found):
            straddling.update((r[0], r[1]) for r in found if r[7] > t)
        rows += whole
    if straddling:
        ids = sorted({cid for cid, _ in straddling})
        own = [c.tenant_id == tenant, c.ordered_at <= through]
        if currency is not None:
            own.append(c.currency == currency)
        for chunk in _chunks(dialect, ids):
            stmt = _aggregate(dialect, orders, [*own, _among(dialect, c.customer_id, chunk or ids)])
            rows += [
                (r[1], r[2], *map(int, r[3:]))  # sums may come back as Decimal
                for r in conn.execute(stmt)
                if (r[1], r[2]) in straddling
            ]
    if straddling or len(chunks) > 1:
        rows.sort(key=lambda r: (r[0], r[1]))
    return PurchaseStats.from_rows(rows)
