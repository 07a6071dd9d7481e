"""The SQL store: SQLAlchemy 2 Core on SQLite (file or memory) and PostgreSQL.

Every statement is filtered by the unit of work's tenant; every driver exception is translated
into the `crmcore.errors` tree.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from crmcore.clock import Clock, epoch_micros
from crmcore.conditions import Condition
from crmcore.customers.customer import Customer
from crmcore.customers.interaction import Interaction
from crmcore.customers.order import Order, OrderTotals
from crmcore.customers.segments import CUSTOMER_FACT_FIELDS, uses_facts
from crmcore.errors import (
    AlreadyExists,
    ConcurrencyError,
    CrmError,
    NotFound,
    StorageError,
    ValidationError,
)
from crmcore.events import DomainEvent, EventRedacted, OutboxRecord, event_from_data, event_to_data, redacted
from crmcore.money import Money, minor_units
from crmcore.storage.base import (
    CustomerRepository,
    InteractionRepository,
    OrderRepository,
    PurchaseStats,
    Repository,
    StoreCapabilities,
    UnitOfWork,
    check_tenant,
)
from crmcore.storage.sql import order_stats, tables
from crmcore.storage.sql.mapping import (
    ASSIGNMENT_QUEUE_MAPPING,
    CONTACT_MAPPING,
    CUSTOMER_MAPPING,
    INTERACTION_MAPPING,
    LEAD_MAPPING,
    OPPORTUNITY_MAPPING,
    ORDER_MAPPING,
    QUOTE_MAPPING,
    SLA_TIMER_MAPPING,
    SURVEY_MAPPING,
    TICKET_MAPPING,
    SqlMapping,
)
from crmcore.storage.sql.where import SqlFields, compile_condition, compile_order_by

__all__ = ["SqlStore", "SqlUnitOfWork", "translate_errors"]

T = TypeVar("T")
_ID_CHUNK = 500
# SQLSTATEs meaning "another transaction got in the way; retry": serialization failure, deadlock.
_RETRYABLE = {"40001", "40P01"}


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn driver exceptions into crmcore errors, so hosts catch one tree whatever the backend."""
    try:
        yield
    except CrmError:
        raise
    except OverflowError as exc:
        # The driver refuses a Python int beyond the column type (SQLite INTEGER: 64 bits).
        raise ValidationError(what, f"a value is too large for the database ({exc})") from exc
    except sa_exc.IntegrityError as exc:
        message = str(exc.orig).splitlines()[0]
        if getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in message:
            raise AlreadyExists(what, message) from exc
        raise ValidationError(what, f"the database refused the data: {message}") from exc
    except sa_exc.DataError as exc:
        raise ValidationError(what, f"the database refused a value: {str(exc.orig).splitlines()[0]}") from exc
    except sa_exc.OperationalError as exc:
        code = getattr(exc.orig, "sqlstate", None)
        message = str(exc.orig)
        if code in _RETRYABLE or "database is locked" in message or "database table is locked" in message:
            raise ConcurrencyError(f"{what}: another unit of work holds the data ({message}); retry") from exc
        raise StorageError(f"{what}: {message}") from exc
    except sa_exc.DBAPIError as exc:
        raise StorageError(f"{what}: {exc.orig}") from exc
    except sa_exc.StatementError as exc:
        if isinstance(exc.orig, OverflowError):  # raised while SQLAlchemy processed the parameters
            raise ValidationError(what, f"a value is too large for the database ({exc.orig})") from exc
        raise StorageError(f"{what}: {exc}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StorageError(f"{what}: {exc}") from exc


def _engine_for(url: str, **options: Any) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, the `postgres` extra
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        options.setdefault("poolclass", StaticPool)
        options.setdefault("connect_args", {"check_same_thread": False})
    return create_engine(parsed, **options)


class SqlStore:
    """crmcore on a SQLAlchemy engine.

    Args:
        engine: an `Engine`, or a URL (``sqlite:///crm.db``, ``sqlite://``, ``postgresql://...``).
        **engine_options: passed to `sqlalchemy.create_engine` when ``engine`` is a URL.
    """

    metadata = tables.metadata
    """The tables, for hosts' own Alembic migrations (``target_metadata``)."""

    def __init__(self, engine: Engine | str, **engine_options: Any) -> None:
        if isinstance(engine, str):
            try:
                engine = _engine_for(engine, **engine_options)
            except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as exc:
                raise ValidationError("url", f"{engine!r} is not a usable database URL: {exc}") from exc
        self.engine = engine
        self.dialect = self.engine.dialect.name
        in_memory = self.dialect == "sqlite" and self.engine.url.database in (None, "", ":memory:")
        # One shared connection serves an in-memory SQLite database, so units of work take turns.
        self.exclusive: threading.Lock | None = threading.Lock() if in_memory else None
        self.exclusive_owner: int | None = None
        self.capabilities = StoreCapabilities(
            name=self.dialect,
            durable=not in_memory,
            concurrent_writers=self.dialect != "sqlite",
        )
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(in_memory))

    def create_schema(self) -> None:
        """Create crmcore's tables if they are missing, at the newest migration (idempotent).

        A new database is created and stamped with the newest revision, so later versions of
        crmcore can upgrade it (`crmcore.storage.sql.migrate`); one that crmcore's migrations
        manage is upgraded; tables a host created itself only get missing tables added.
        """
        from crmcore.storage.sql.migrate import ensure_schema

        with translate_errors("create schema"), self.engine.begin() as conn:
            ensure_schema(conn)

    def drop_schema(self) -> None:
        """Drop crmcore's tables (and its migration version table) and everything in them."""
        from crmcore.storage.sql.migrate import drop_schema

        with translate_errors("drop schema"), self.engine.begin() as conn:
            drop_schema(conn)

    def unit_of_work(
        self,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> SqlUnitOfWork:
        """A unit of work (one transaction) for ``tenant``."""
        return SqlUnitOfWork(self, tenant, clock, on_commit)

    def purge_tenant(self, tenant: str) -> int:
        """Delete every row of ``tenant`` in every crmcore table, in one transaction."""
        tenant = check_tenant(tenant)
        removed = 0
        with translate_errors("purge tenant"), self.engine.begin() as conn:
            for table in reversed(self.metadata.sorted_tables):
                removed += conn.execute(delete(table).where(table.c.tenant_id == tenant)).rowcount
        return removed

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"


def _sqlite_pragmas(in_memory: bool) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _: Any) -> None:
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


class SqlUnitOfWork(UnitOfWork):
    """One database transaction for one tenant."""

    conn: Connection

    def __init__(
        self,
        store: SqlStore,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> None:
        super().__init__(tenant, clock, on_commit)
        self.store = store
        self.customers = SqlCustomerRepository(CUSTOMER_MAPPING, self)
        self.contacts = SqlRepository(CONTACT_MAPPING, self)
        self.interactions = SqlInteractionRepository(INTERACTION_MAPPING, self)
        self.orders = SqlOrderRepository(ORDER_MAPPING, self)
        self.tickets = SqlRepository(TICKET_MAPPING, self)
        self.surveys = SqlRepository(SURVEY_MAPPING, self)
        self.sla_timers = SqlRepository(SLA_TIMER_MAPPING, self)
        self.assignment_queues = SqlRepository(ASSIGNMENT_QUEUE_MAPPING, self)
        self.leads = SqlRepository(LEAD_MAPPING, self)
        self.opportunities = SqlRepository(OPPORTUNITY_MAPPING, self)
        self.quotes = SqlRepository(QUOTE_MAPPING, self)
        self._holds_exclusive = False

    def _begin(self) -> None:
        lock = self.store.exclusive
        if lock is not None:
            busy = (
                "an in-memory SQLite store runs one unit of work at a time, and another is open{}; "
                "use a SQLite file for overlapping units of work"
            )
            if self.store.exclusive_owner == threading.get_ident():
                raise ConcurrencyError(busy.format(" in this thread"))  # waiting would deadlock
            if not lock.acquire(timeout=30):
                raise ConcurrencyError(busy.format(""))
            self.store.exclusive_owner = threading.get_ident()
            self._holds_exclusive = True
        try:
            with translate_errors("begin"):
                self.conn = self.store.engine.connect()
        except BaseException:
            self._release()
            raise

    def _commit(self, events: list[DomainEvent]) -> None:
        with translate_errors("commit"):
            if events:
                if self.store.dialect == "postgresql":
                    # Serialize this tenant's outbox writers until commit, so positions become
                    # visible in order and a reader paging by position never skips an event.
                    self.conn.execute(
                        select(func.pg_advisory_xact_lock(func.hashtextextended(self.tenant, 0)))
                    )
                self.conn.execute(
                    insert(tables.outbox),
                    [
                        {
                            "tenant_id": self.tenant,
                            "event_id": e.event_id,
                            "event_type": e.event_type,
                            "aggregate_id": e.aggregate_id,
                            "occurred_at": e.occurred_at,
                            "payload": event_to_data(e),
                        }
                        for e in events
                    ],
                )
            self.conn.commit()

    def _rollback(self) -> None:
        with translate_errors("rollback"):
            self.conn.rollback()

    def _close(self) -> None:
        try:
            self.conn.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._holds_exclusive and self.store.exclusive is not None:
            self._holds_exclusive = False
            self.store.exclusive_owner = None
            self.store.exclusive.release()

    def _events_since(self, position: int, limit: int) -> list[OutboxRecord]:
        o = tables.outbox.c
        with translate_errors("events_since"):
            rows = self.conn.execute(
                select(o.position, o.event_type, o.payload)
                .where(o.tenant_id == self.tenant, o.position > position)
                .order_by(o.position)
                .limit(limit)
            ).all()
        return [
            OutboxRecord(
                position=r.position,
                tenant=self.tenant,
                event=event_from_data(r.event_type, r.payload),
            )
            for r in rows
        ]

    def _events_about(self, aggregate_ids: list[str], event_types: list[str] | None) -> list[OutboxRecord]:
        o = tables.outbox.c
        rows: list[Any] = []
        with translate_errors("events_about"):
            for start in range(0, len(aggregate_ids), _ID_CHUNK):
                stmt = select(o.position, o.event_type, o.payload).where(
                    o.tenant_id == self.tenant, o.aggregate_id.in_(aggregate_ids[start : start + _ID_CHUNK])
                )
                if event_types is not None:
                    stmt = stmt.where(o.event_type.in_(event_types))
                rows += self.conn.execute(stmt).all()
        rows.sort(key=lambda r: r.position)
        return [
            OutboxRecord(
                position=r.position, tenant=self.tenant, event=event_from_data(r.event_type, r.payload)
            )
            for r in rows
        ]

    def _redact_events(self, aggregate_ids: list[str], keep_types: list[str]) -> int:
        o = tables.outbox.c
        marker = EventRedacted.event_type
        with translate_errors("redact events"):
            rows: list[Any] = []
            for start in range(0, len(aggregate_ids), _ID_CHUNK):
                rows += self.conn.execute(
                    select(
                        o.position.label("p"), o.event_id, o.event_type, o.aggregate_id, o.occurred_at
                    ).where(
                        o.tenant_id == self.tenant,
                        o.aggregate_id.in_(aggregate_ids[start : start + _ID_CHUNK]),
                        o.event_type.not_in(keep_types),
                    )
                ).all()
            if rows:
                self.conn.execute(
                    update(tables.outbox)
                    .where(o.tenant_id == self.tenant, o.position == bindparam("p"))
                    .values(event_type=marker, payload=bindparam("data")),
                    [
                        {
                            "p": r.p,
                            "data": redacted(r.event_id, r.event_type, r.aggregate_id, r.occurred_at),
                        }
                        for r in rows
                    ],
                )
        return len(rows)


@functools.lru_cache(maxsize=64)
def _update_statement(table: Table, columns: tuple[str, ...]) -> Any:
    """One versioned UPDATE per table and column set, with bound parameters.

    Built once and reused, so SQLAlchemy compiles it once (its cache keys a statement by shape);
    an UPDATE with the values inlined is a new statement to build and key on every save.
    """
    c = table.c
    key = {"tenant_id", "id"}
    return (
        update(table)
        .where(
            c.tenant_id == bindparam("v_tenant_id", type_=c.tenant_id.type),
            c.id == bindparam("v_id", type_=c.id.type),
            c.version == bindparam("expected_version", type_=c.version.type),
        )
        .values({name: bindparam(f"v_{name}", type_=c[name].type) for name in columns if name not in key})
    )


class SqlRepository(Repository[T]):
    """A repository over one table, every statement scoped to the unit of work's tenant."""

    uow: SqlUnitOfWork

    def __init__(self, mapping: SqlMapping[T], uow: SqlUnitOfWork) -> None:
        super().__init__(mapping.aggregate, uow)
        self.mapping = mapping
        self.table = mapping.table
        self.c = mapping.table.c

    def _mine(self) -> Any:
        return self.c.tenant_id == self.uow.tenant

    def _load(self, stmt: Any) -> list[T]:
        found: list[T] = []
        with translate_errors(self.aggregate.name):
            # A few hundred rows at a time: each row (and its decoded JSON) is garbage as soon
            # as its object is built, so the collector never walks a whole page of both.
            for rows in self.uow.conn.execute(stmt).partitions(200):
                found.extend(self.mapping.from_rows(rows))
        return found

    def _get(self, id: str) -> T | None:
        found = self._load(select(self.table).where(self._mine(), self.c.id == id))
        return found[0] if found else None

    def _add(self, obj: T) -> None:
        row = self.mapping.to_row(obj, self.uow.tenant)
        dialect = self.uow.store.dialect
        with translate_errors(self.aggregate.name):
            if dialect in ("postgresql", "sqlite"):
                # ON CONFLICT keeps the transaction usable after a taken id (PostgreSQL would
                # abort it on an IntegrityError); RETURNING tells whether the row went in, as
                # rowcount is not reliable for it across drivers.
                module = postgresql if dialect == "postgresql" else sqlite
                stmt = module.insert(self.table).on_conflict_do_nothing().returning(self.c.id)
                inserted = self.uow.conn.execute(stmt, row).first() is not None
            else:
                self.uow.conn.execute(insert(self.table), row)
                inserted = True
        if not inserted:
            raise AlreadyExists(self.aggregate.name, row["id"])

    def _save(self, obj: T, expected_version: int) -> None:
        row = self.mapping.to_row(obj, self.uow.tenant)
        id = obj.id  # type: ignore[attr-defined]
        params = {f"v_{name}": value for name, value in row.items()}
        params["expected_version"] = expected_version
        with translate_errors(self.aggregate.name):
            result = self.uow.conn.execute(_update_statement(self.table, tuple(row)), params)
            if result.rowcount == 1:
                return
            stored = self.uow.conn.execute(
                select(self.c.version).where(self._mine(), self.c.id == id)
            ).scalar_one_or_none()
        if stored is None:
            raise NotFound(self.aggregate.name, id)
        raise ConcurrencyError(
            f"{self.aggregate.name} {id!r} is at version {stored}, this copy is version "
            f"{expected_version}: reload it and apply the change again"
        )

    def _delete(self, id: str, expected_version: int | None) -> bool:
        clause = self._mine() & (self.c.id == id)
        if expected_version is not None:
            clause = clause & (self.c.version == expected_version)
        with translate_errors(self.aggregate.name):
            if self.uow.conn.execute(delete(self.table).where(clause)).rowcount:
                return True
            if expected_version is None:
                return False
            stored = self.uow.conn.execute(
                select(self.c.version).where(self._mine(), self.c.id == id)
            ).scalar_one_or_none()
        if stored is None:
            return False
        raise ConcurrencyError(
            f"{self.aggregate.name} {id!r} is at version {stored}, not the version {expected_version} "
            "read: it changed meanwhile; read it again before deleting"
        )

    def _where(self, where: Condition | None, now: datetime) -> Any:
        clause = self._mine()
        if where is not None:
            clause = clause & compile_condition(where, self.mapping.fields, self.uow.store.dialect, now)
        return clause

    def _find(
        self,
        where: Condition | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[T]:
        stmt = (
            select(self.table)
            .where(self._where(where, now))
            .order_by(*compile_order_by(order_by, self.mapping.fields, self.c.id))
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        return self._load(stmt)

    def _count(self, where: Condition | None, now: datetime) -> int:
        with translate_errors(self.aggregate.name):
            count = self.uow.conn.execute(
                select(func.count()).select_from(self.table).where(self._where(where, now))
            ).scalar_one()
        return int(count)

    def _page_after(self, after: str | None, limit: int) -> list[T]:
        clause = self._mine() if after is None else self._mine() & (self.c.id > after)
        stmt = select(self.table).where(clause).order_by(self.c.id).limit(limit)
        if self.uow.store.dialect == "postgresql":
            # Through a server-side cursor, which PostgreSQL plans for a fast start: the primary
            # key's index, in id order. A plain query right after an import (no statistics for
            # the tenant yet) sorts all the tenant's rows for every page instead.
            stmt = stmt.execution_options(stream_results=True, yield_per=limit)
        return self._load(stmt)

    def _bulk_add(self, objs: list[T]) -> None:
        tenant, conn, to_row = self.uow.tenant, self.uow.conn, self.mapping.to_row
        ids: list[str] = [o.id for o in objs]  # type: ignore[attr-defined]
        if self.uow.store.dialect == "postgresql":
            # One statement with an array parameter. With chunked IN lists, PostgreSQL re-scans
            # the tenant's rows for every chunk while its statistics are stale (right after an
            # import): minutes for 100,000 ids; this way the worst case is one scan.
            array = bindparam("ids", ids, type_=postgresql.ARRAY(String))
            checks = [select(self.c.id).where(self._mine(), self.c.id == any_(array)).limit(1)]
        else:
            checks = [
                select(self.c.id).where(self._mine(), self.c.id.in_(ids[start : start + _ID_CHUNK])).limit(1)
                for start in range(0, len(ids), _ID_CHUNK)
            ]
        statement, chunk = insert(self.table), 1000
        with translate_errors(self.aggregate.name):
            for check in checks:
                taken = conn.execute(check).scalar()
                if taken is not None:
                    raise AlreadyExists(self.aggregate.name, taken)
            # Rows are built and sent a chunk at a time, so a large import never holds every
            # row dict at once (memory, and garbage-collector passes over all of them).
            for start in range(0, len(objs), chunk):
                conn.execute(statement, [to_row(o, tenant) for o in objs[start : start + chunk]])


class SqlCustomerRepository(SqlRepository[Customer], CustomerRepository):
    """Customers in SQL; facts come from one grouped subquery over the orders, joined in the query."""

    def _with_facts(
        self, where: Condition | None, currency: str | None, order_by: tuple[str, ...], now: datetime
    ) -> tuple[Any, Any, SqlFields]:
        """(FROM, WHERE, field mapping) of a facts query; orders are joined only when a fact is used.

        Customers LEFT OUTER JOIN (counted orders of this tenant GROUP BY customer): count, spend
        in ``currency`` as exact minor units (a CASE keeps other currencies out), first and last
        order time. Customers without counted orders get NULLs, read as 0 where the rules say so.
        """
        base = self.mapping.fields
        if not uses_facts(where, order_by):
            sql = SqlFields(CUSTOMER_FACT_FIELDS, base.columns, base.money, base.json)
            source: Any = self.table
        else:
            o = tables.orders.c
            columns: list[Any] = [
                o.customer_id.label("customer_id"),
                func.count().label("order_count"),
                func.min(o.ordered_at).label("first_order_at"),
                func.max(o.ordered_at).label("last_order_at"),
            ]
            if currency is not None:
                in_currency = case((o.currency == currency, o.total_minor), else_=0)
                columns.append(func.sum(in_currency).label("spend_minor"))
            facts = (
                select(*columns)
                .where(o.tenant_id == self.uow.tenant, o.counts.is_(True))
                .group_by(o.customer_id)
                .subquery("facts")
            )
            f = facts.c
            minor: dict[str, tuple[Any, Any]] = {}
            if currency is not None:
                minor["total_spend"] = (func.coalesce(f.spend_minor, 0), literal(currency, String(3)))
            sql = SqlFields(
                CUSTOMER_FACT_FIELDS,
                columns={
                    **base.columns,
                    "order_count": func.coalesce(f.order_count, 0),
                    "first_order_at": f.first_order_at,
                    "last_order_at": f.last_order_at,
                },
                money=base.money,
                json=base.json,
                minor_money=minor,
            )
            source = self.table.outerjoin(facts, f.customer_id == self.c.id)
        clause = self._mine()
        if where is not None:
            clause = clause & compile_condition(where, sql, self.uow.store.dialect, now)
        return source, clause, sql

    def _find_with_facts(
        self,
        where: Condition | None,
        currency: str | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[Customer]:
        source, clause, sql = self._with_facts(where, currency, order_by, now)
        stmt = (
            select(self.table)
            .select_from(source)
            .where(clause)
            .order_by(*compile_order_by(order_by, sql, self.c.id))
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        return self._load(stmt)

    def _count_with_facts(self, where: Condition | None, currency: str | None, now: datetime) -> int:
        source, clause, _ = self._with_facts(where, currency, (), now)
        with translate_errors(self.aggregate.name):
            count = self.uow.conn.execute(select(func.count()).select_from(source).where(clause)).scalar_one()
        return int(count)


class SqlOrderRepository(SqlRepository[Order], OrderRepository):
    """Orders in SQL; totals are one ``GROUP BY`` over (customer, currency) in the database."""

    def _totals(self, customer_ids: list[str] | None, until: datetime | None) -> dict[str, OrderTotals]:
        c = self.c
        stmt = (
            select(
                c.customer_id,
                c.currency,
                func.count(),
                func.sum(c.total_minor),
                func.min(c.ordered_at),
                func.max(c.ordered_at),
            )
            .where(self._mine(), c.counts.is_(True))
            .group_by(c.customer_id, c.currency)
        )
        if until is not None:
            stmt = stmt.where(c.ordered_at < until)
        chunks: list[list[str] | None] = (
            [None]
            if customer_ids is None
            else [customer_ids[i : i + _ID_CHUNK] for i in range(0, len(customer_ids), _ID_CHUNK)]
        )
        rows: list[Any] = []
        with translate_errors(self.aggregate.name):
            for chunk in chunks:
                query = stmt if chunk is None else stmt.where(c.customer_id.in_(chunk))
                rows += self.uow.conn.execute(query).all()
        return _fold_totals(rows)

    def _purchase_stats(
        self, through: datetime, currency: str | None, customer_ids: list[str] | None
    ) -> PurchaseStats:
        with translate_errors(self.aggregate.name):
            return order_stats.read(
                self.uow.conn, self.uow.store.dialect, self.uow.tenant, through, currency, customer_ids
            )

    # Every write keeps the purchase-statistics rollup of the customers it touches up to date, in
    # the same transaction (see order_stats): a rollback undoes both.

    def _refresh(self, customer_ids: Iterable[str]) -> None:
        with translate_errors(self.aggregate.name):
            order_stats.refresh(self.uow.conn, self.uow.store.dialect, self.uow.tenant, customer_ids)

    def _stats_inputs(self, id: str) -> tuple[Any, ...] | None:
        """What the rollup reads of a stored order: customer, status counted, currency, total, time."""
        c = self.c
        stmt = select(c.customer_id, c.counts, c.currency, c.total_minor, c.ordered_at)
        with translate_errors(self.aggregate.name):
            row = self.uow.conn.execute(stmt.where(self._mine(), c.id == id)).first()
        return None if row is None else tuple(row)

    def _add(self, obj: Order) -> None:
        super()._add(obj)
        if obj.status.counts:
            with translate_errors(self.aggregate.name):
                order_stats.record(
                    self.uow.conn,
                    self.uow.store.dialect,
                    self.uow.tenant,
                    obj.customer_id,
                    obj.currency,
                    epoch_micros(obj.ordered_at),
                    obj.total.minor,
                )

    def _bulk_add(self, objs: list[Order]) -> None:
        super()._bulk_add(objs)
        self._refresh(o.customer_id for o in objs)

    def _save(self, obj: Order, expected_version: int) -> None:
        before = self._stats_inputs(obj.id)
        super()._save(obj, expected_version)
        after = (obj.customer_id, obj.status.counts, obj.currency, obj.total.minor, obj.ordered_at)
        if before != after:
            self._refresh({obj.customer_id} | ({before[0]} if before else set()))

    def _delete(self, id: str, expected_version: int | None) -> bool:
        before = self._stats_inputs(id)
        deleted = super()._delete(id, expected_version)
        if deleted and before is not None:
            self._refresh([before[0]])
        return deleted


def _fold_totals(rows: list[Any]) -> dict[str, OrderTotals]:
    """Per-(customer, currency) rows -> one `OrderTotals` per customer."""
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    out: dict[str, OrderTotals] = {}
    for cid, parts in grouped.items():
        parts.sort(key=lambda r: r[1])
        out[cid] = OrderTotals(
            customer_id=cid,
            orders=sum(int(r[2]) for r in parts),
            spend=tuple(Money(Decimal(int(r[3])).scaleb(-minor_units(r[1])), r[1]) for r in parts),
            first_order_at=min(_utc(r[4]) for r in parts),
            last_order_at=max(_utc(r[5]) for r in parts),
        )
    return out


def _utc(value: Any) -> datetime:
    """Aggregates over a UtcDateTime column skip its result processing on some dialects."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)  # type: ignore[no-any-return]


class SqlInteractionRepository(SqlRepository[Interaction], InteractionRepository):
    """Interactions in SQL; the timeline uses the (tenant, customer, time) index."""
