"""The purchase-statistics rollup: ``crm_order_stats``, one row per (tenant, customer, currency).

Customer summaries need, per customer, the counted orders, the distinct UTC purchase days, the
spend, the spend on the first day and the first and last order. Aggregating that from a million
orders at every call costs seconds (a window for the first day, a distinct count of days), so the
SQL order repository keeps it in a rollup instead, in the same transaction as every order write:
a new order at or after the customer's last one is one upsert (`record`); anything else rewrites
the rows of the customers it touches from ``crm_orders`` (`refresh`). A read as of a time after a
customer's last order takes the row as it is; customers with orders on both sides of that time
are aggregated from their orders (`read`).
"""

from __future__ import annotations

import functools
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
from sqlalchemy.dialects import postgresql, sqlite

from crmcore.clock import MICROS_PER_DAY, epoch_micros
from crmcore.customers.purchases import PurchaseStats
from crmcore.storage.sql.tables import order_stats, orders

__all__ = ["read", "rebuild", "record", "refresh"]

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

    ``[None]`` (for ``ids`` None) means no restriction. One array parameter keeps PostgreSQL from
    re-planning (and re-scanning, with stale statistics right after an import) per chunk.
    """
    if ids is None:
        return [None]
    return list(_pieces(dialect, ids))


def _pieces(dialect: str, ids: Sequence[str]) -> list[Sequence[str]]:
    if dialect == "postgresql":
        return [ids]
    return [ids[i : i + _ID_CHUNK] for i in range(0, len(ids), _ID_CHUNK)]


def _among(dialect: str, column: Any, chunk: Sequence[str]) -> Any:
    if dialect == "postgresql":
        return column == any_(bindparam("ids", list(chunk), type_=postgresql.ARRAY(String)))
    return column.in_(chunk)


_LOCK_EACH_UP_TO = 32
"""A write touching more customers than this locks the tenant's rollup as a whole (PostgreSQL)."""


def _lock(conn: Connection, dialect: str, tenant: str, ids: Sequence[str]) -> None:
    """Serialize rollup maintenance of these customers until commit (PostgreSQL; SQLite has one writer).

    Without it two transactions writing one customer's orders at once (READ COMMITTED) would each
    rewrite the row from a snapshot missing the other's order. A transaction-level advisory lock
    per customer, under a shared lock on the tenant; a large write takes the tenant lock alone,
    exclusively, instead of thousands of locks. Waiting for a lock then reading in a new statement
    sees the other transaction's committed orders.
    """
    if dialect != "postgresql" or not ids:
        return
    key = f"crm_order_stats:{tenant}"
    if len(ids) > _LOCK_EACH_UP_TO:
        conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
        return
    # one round trip; customers in sorted order, so writers of the same customers mostly queue
    # (PostgreSQL breaks any deadlock left, which the caller sees as a retryable ConcurrencyError)
    locks = [func.pg_advisory_xact_lock(func.hashtextextended(f"{key}:{cid}", 0)) for cid in ids]
    conn.execute(select(func.pg_advisory_xact_lock_shared(func.hashtextextended(key, 0)), *locks))


def refresh(conn: Connection, dialect: str, tenant: str, customer_ids: Iterable[str]) -> None:
    """Rewrite the rollup rows of ``customer_ids`` from their orders (call after writing orders)."""
    ids = sorted(set(customer_ids))
    if ids:
        _lock(conn, dialect, tenant, ids)
        _rewrite(conn, dialect, tenant, ids)


def record(
    conn: Connection, dialect: str, tenant: str, customer_id: str, currency: str, at: int, total: int
) -> None:
    """Account for one new counted order (``at`` in epoch microseconds, ``total`` in minor units).

    One upsert in the common case: a first order inserts the row, an order no earlier than the
    customer's last one updates it in place. An earlier order rewrites the row from the orders
    instead, as `refresh` does. Both hold the customer's lock (`_lock`), so neither overwrites the
    other.
    """
    _lock(conn, dialect, tenant, [customer_id])
    params = {
        "tenant": tenant,
        "customer": customer_id,
        "currency": currency,
        "at": at,
        "total": total,
        "day_start": at - at % MICROS_PER_DAY,
    }
    if conn.execute(_upsert(dialect), params).first() is None:  # earlier than the last order
        _rewrite(conn, dialect, tenant, [customer_id])


@functools.cache
def _upsert(dialect: str) -> Any:
    """The statement `record` runs, built once per dialect (building it costs more than running it)."""
    s = order_stats.c
    at = bindparam("at", type_=BigInteger)
    total = bindparam("total", type_=BigInteger)
    day_start = bindparam("day_start", type_=BigInteger)
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(order_stats).values(
        tenant_id=bindparam("tenant"),
        customer_id=bindparam("customer"),
        currency=bindparam("currency"),
        orders=1,
        purchase_days=1,
        spend_minor=total,
        first_day_spend_minor=total,
        first_order_micros=at,
        last_order_micros=at,
    )
    return stmt.on_conflict_do_update(
        index_elements=[s.tenant_id, s.customer_id, s.currency],
        set_={
            "orders": s.orders + 1,
            "purchase_days": s.purchase_days + case((s.last_order_micros < day_start, 1), else_=0),
            "spend_minor": s.spend_minor + total,
            "first_day_spend_minor": s.first_day_spend_minor
            + case((s.first_order_micros >= day_start, total), else_=0),
            "last_order_micros": at,
        },
        where=s.last_order_micros <= at,
    ).returning(s.orders)


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
        result = conn.execute(stmt.order_by(s.customer_id, s.currency))
        try:  # plain DBAPI tuples: these int and text columns need no result processing
            found = result.cursor.fetchall()
        finally:
            result.close()
        whole = [r for r in found if r[7] <= t]
        if len(whole) < len(found):
            straddling.update((r[0], r[1]) for r in found if r[7] > t)
        rows += whole
    if straddling:
        ids = sorted({cid for cid, _ in straddling})
        own = [c.tenant_id == tenant, c.ordered_at <= through]
        if currency is not None:
            own.append(c.currency == currency)
        for piece in _pieces(dialect, ids):
            stmt = _aggregate(dialect, orders, [*own, _among(dialect, c.customer_id, piece)])
            rows += [
                (r[1], r[2], *map(int, r[3:]))  # sums may come back as Decimal
                for r in conn.execute(stmt)
                if (r[1], r[2]) in straddling
            ]
    if straddling or len(chunks) > 1:
        rows.sort(key=lambda r: (r[0], r[1]))
    return PurchaseStats.from_rows(rows)
