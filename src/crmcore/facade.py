"""The `CRM` facade: the shell that opens a store, runs units of work and delivers events."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from crmcore.clock import Clock, SystemClock
from crmcore.customers.schema import DataRules
from crmcore.errors import ValidationError
from crmcore.events import EventBus, OutboxRecord
from crmcore.storage.base import DEFAULT_TENANT, Store, StoreCapabilities, UnitOfWork
from crmcore.storage.memory import MemoryStore

__all__ = ["CRM", "open_crm"]


class CRM:
    """crmcore embedded in a host: one store, one clock, one event bus.

    Use `crmcore.open` to make one from a URL, or build it from any `Store`. ``rules`` (custom
    field schemas and validation rules) are enforced by every unit of work's repositories: an
    add, save or bulk_add that breaks them raises `ValidationError` before anything is written.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        rules: DataRules | None = None,
    ) -> None:
        if rules is not None and not isinstance(rules, DataRules):
            raise ValidationError("rules", f"must be DataRules, not {type(rules).__name__}")
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.rules = rules

    @property
    def capabilities(self) -> StoreCapabilities:
        """What the underlying store can do."""
        return self.store.capabilities

    def unit_of_work(self, tenant: str = DEFAULT_TENANT) -> UnitOfWork:
        """A unit of work for ``tenant``: use it in a ``with`` block and call ``commit()``.

        Its events are published on `bus` after they commit; its repositories enforce `rules`.
        """
        uow = self.store.unit_of_work(tenant, self.clock, self.bus.publish)
        if self.rules is not None:
            uow.validate = self.rules.validate
        return uow

    def events_since(
        self, position: int = 0, limit: int = 100, *, tenant: str = DEFAULT_TENANT
    ) -> list[OutboxRecord]:
        """``tenant``'s outbox after ``position``, oldest first: poll it to feed a host's queue."""
        with self.unit_of_work(tenant) as uow:
            return uow.events_since(position, limit)

    def create_schema(self) -> None:
        """Create the store's tables if missing."""
        self.store.create_schema()

    def purge_tenant(self, tenant: str) -> int:
        """Delete everything stored for ``tenant``; returns how many rows went."""
        return self.store.purge_tenant(tenant)

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CRM({self.store!r})"


def open_crm(
    url: str | Engine = "memory://",
    *,
    clock: Clock | None = None,
    rules: DataRules | None = None,
    create_schema: bool = True,
    **engine_options: Any,
) -> CRM:
    """Open crmcore on a store given by URL (or a SQLAlchemy `Engine`).

    ``memory://`` keeps everything in process; ``sqlite:///crm.db`` a SQLite file (``sqlite://``
    in memory); ``postgresql://user@host/db`` PostgreSQL through psycopg 3 (the ``postgres`` extra).
    Any other SQLAlchemy URL is tried as is. With ``create_schema`` (the default), missing tables
    are created; hosts that manage the schema with Alembic pass ``False``. ``rules`` are the
    installation's custom-field schemas and validation rules (see `CRM`).

    Raises:
        ValidationError: for a URL that names no store.
        StorageError: if the database cannot be reached.
    """
    if isinstance(url, str) and url.split("://", 1)[0] == "memory":
        if url not in ("memory://", "memory:"):
            raise ValidationError("url", f"{url!r}: the memory store takes no path or options")
        return CRM(MemoryStore(), clock=clock, rules=rules)
    from crmcore.storage.sql.store import SqlStore

    if isinstance(url, str) and "://" not in url:
        raise ValidationError("url", f"{url!r} is not a store URL (try 'sqlite:///crm.db' or 'memory://')")
    try:
        store = SqlStore(url, **engine_options)
    except Exception as exc:
        if isinstance(exc, ValidationError | ImportError) or type(exc).__module__.startswith("crmcore"):
            raise
        raise ValidationError("url", f"{url!r}: {exc}") from exc
    crm = CRM(store, clock=clock, rules=rules)
    if create_schema:
        crm.create_schema()
    return crm
