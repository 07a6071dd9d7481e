"""The in-memory store: same contract as the SQL store, for tests, notebooks and simulations.

A unit of work stages its changes privately and applies them at commit under one lock, after
checking that nothing it read has changed since (optimistic concurrency, as in SQL).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs

from crmcore.clock import Clock
from crmcore.conditions import Condition, evaluate, sort_key
from crmcore.customers.customer import Customer
from crmcore.customers.interaction import Interaction
from crmcore.customers.order import Order, OrderTotals, order_totals
from crmcore.customers.purchases import PurchaseStats, purchase_stats_of
from crmcore.customers.segments import CUSTOMER_FACT_FIELDS, CustomerFacts, customer_facts, uses_facts
from crmcore.errors import AlreadyExists, ConcurrencyError, NotFound
from crmcore.events import DomainEvent, EventRedacted, OutboxRecord
from crmcore.storage.base import (
    AGGREGATES,
    ASSIGNMENT_QUEUES,
    CONTACTS,
    CUSTOMERS,
    INTERACTIONS,
    LEADS,
    OPPORTUNITIES,
    ORDERS,
    QUOTES,
    SLA_TIMERS,
    SURVEYS,
    TICKETS,
    Aggregate,
    CustomerRepository,
    InteractionRepository,
    OrderRepository,
    Repository,
    StoreCapabilities,
    UnitOfWork,
    check_tenant,
)

__all__ = ["MemoryStore", "MemoryUnitOfWork"]

T = TypeVar("T")
_Key = tuple[str, str]  # (tenant, aggregate name)
_DELETED = None


def clone(obj: T) -> T:
    """A copy that shares nothing mutable with ``obj`` (nested value objects are immutable)."""
    new = copy.copy(obj)
    for field in attrs.fields(type(obj)):  # type: ignore[arg-type]
        value = getattr(obj, field.name)
        if isinstance(value, dict | list):
            object.__setattr__(new, field.name, copy.deepcopy(value))
    return new


class MemoryStore:
    """Everything in process memory; thread-safe; gone when the process ends."""

    capabilities = StoreCapabilities(name="memory", durable=False, concurrent_writers=True)

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables: dict[_Key, dict[str, Any]] = {}
        self.outbox: list[OutboxRecord] = []
        self.last_position = 0  # positions are never reused, even after purge_tenant

    def table(self, tenant: str, aggregate: Aggregate[Any]) -> dict[str, Any]:
        """The committed objects of one aggregate type in one tenant (call with the lock held)."""
        return self.tables.setdefault((tenant, aggregate.name), {})

    def unit_of_work(
        self,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> MemoryUnitOfWork:
        """A unit of work on this store for ``tenant``."""
        return MemoryUnitOfWork(self, tenant, clock, on_commit)

    def create_schema(self) -> None:
        """Nothing to create in memory."""

    def purge_tenant(self, tenant: str) -> int:
        """Drop every object and event of ``tenant``."""
        tenant = check_tenant(tenant)
        with self.lock:
            removed = 0
            for key in [k for k in self.tables if k[0] == tenant]:
                removed += len(self.tables.pop(key))
            kept = [r for r in self.outbox if r.tenant != tenant]
            removed += len(self.outbox) - len(kept)
            self.outbox = kept
            return removed

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "MemoryStore()"


class MemoryUnitOfWork(UnitOfWork):
    """A unit of work on a `MemoryStore`."""

    def __init__(
        self,
        store: MemoryStore,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> None:
        super().__init__(tenant, clock, on_commit)
        self.store = store
        self.staged: dict[str, dict[str, Any]] = {}
        self.expected: dict[tuple[str, str], int | None] = {}
        self.redact: list[tuple[frozenset[str], frozenset[str]]] = []
        """(aggregate ids, event types kept) of each `redact_events` call, applied at commit."""
        self.customers = MemoryCustomerRepository(CUSTOMERS, self)
        self.contacts = MemoryRepository(CONTACTS, self)
        self.interactions = MemoryInteractionRepository(INTERACTIONS, self)
        self.orders = MemoryOrderRepository(ORDERS, self)
        self.tickets = MemoryRepository(TICKETS, self)
        self.surveys = MemoryRepository(SURVEYS, self)
        self.sla_timers = MemoryRepository(SLA_TIMERS, self)
        self.assignment_queues = MemoryRepository(ASSIGNMENT_QUEUES, self)
        self.leads = MemoryRepository(LEADS, self)
        self.opportunities = MemoryRepository(OPPORTUNITIES, self)
        self.quotes = MemoryRepository(QUOTES, self)

    def _begin(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.staged = {a.name: {} for a in AGGREGATES}
        self.expected = {}
        self.redact = []

    def _commit(self, events: list[DomainEvent]) -> None:
        store = self.store
        with store.lock:
            for (name, id), version in self.expected.items():
                current = store.tables.get((self.tenant, name), {}).get(id)
                current_version = None if current is None else current.version
                if current_version != version:
                    raise ConcurrencyError(
                        f"{name} {id!r} was changed by another unit of work "
                        f"(version {version} expected, {current_version} stored)"
                    )
            for aggregate in AGGREGATES:
                table = store.table(self.tenant, aggregate)
                for id, obj in self.staged[aggregate.name].items():
                    if obj is _DELETED:
                        table.pop(id, None)
                    else:
                        table[id] = obj
            if self.redact:
                store.outbox = [self._redacted(r) for r in store.outbox]
            for event in events:
                store.last_position += 1
                store.outbox.append(
                    OutboxRecord(position=store.last_position, tenant=self.tenant, event=event)
                )
        self._reset()

    def _rollback(self) -> None:
        self._reset()

    def _events_since(self, position: int, limit: int) -> list[OutboxRecord]:
        with self.store.lock:
            found = [r for r in self.store.outbox if r.tenant == self.tenant and r.position > position]
        return found[:limit]

    def _redacts(self, record: OutboxRecord, calls: list[tuple[frozenset[str], frozenset[str]]]) -> bool:
        """Whether one of these `redact_events` calls covers ``record``."""
        event = record.event
        return record.tenant == self.tenant and any(
            event.aggregate_id in ids and event.event_type not in keep for ids, keep in calls
        )

    def _redacted(self, record: OutboxRecord) -> OutboxRecord:
        event = record.event
        if not self._redacts(record, self.redact):
            return record
        marker = EventRedacted(
            aggregate_id=event.aggregate_id,
            occurred_at=event.occurred_at,
            event_id=event.event_id,
            original_type=event.event_type,
        )
        return attrs.evolve(record, event=marker)

    def _events_about(self, aggregate_ids: list[str], event_types: list[str] | None) -> list[OutboxRecord]:
        ids, types = set(aggregate_ids), None if event_types is None else set(event_types)
        with self.store.lock:
            return [
                r
                for r in self.store.outbox
                if r.tenant == self.tenant
                and r.event.aggregate_id in ids
                and (types is None or r.event.event_type in types)
            ]

    def _redact_events(self, aggregate_ids: list[str], keep_types: list[str]) -> int:
        call = [(frozenset(aggregate_ids), frozenset(keep_types))]
        with self.store.lock:
            # Not counted again: events an earlier call of this unit of work already covers.
            count = sum(
                1 for r in self.store.outbox if self._redacts(r, call) and not self._redacts(r, self.redact)
            )
        self.redact += call
        return count

    def current(self, aggregate: Aggregate[Any], id: str) -> Any:
        """The object as this unit of work sees it: staged change first, else committed."""
        staged = self.staged[aggregate.name]
        if id in staged:
            return staged[id]
        with self.store.lock:
            return self.store.tables.get((self.tenant, aggregate.name), {}).get(id)

    def touch(self, aggregate: Aggregate[Any], id: str) -> None:
        """Remember the committed version of ``id`` the first time this unit of work changes it."""
        key = (aggregate.name, id)
        if key not in self.expected:
            with self.store.lock:
                committed = self.store.tables.get((self.tenant, aggregate.name), {}).get(id)
            self.expected[key] = None if committed is None else committed.version

    def visible(self, aggregate: Aggregate[Any]) -> list[Any]:
        """Every object this unit of work can see (not copies: callers must not change them)."""
        with self.store.lock:
            merged = dict(self.store.tables.get((self.tenant, aggregate.name), {}))
        merged.update(self.staged[aggregate.name])
        return [obj for obj in merged.values() if obj is not _DELETED]


class MemoryRepository(Repository[T]):
    """A repository over a `MemoryUnitOfWork`."""

    uow: MemoryUnitOfWork

    def _get(self, id: str) -> T | None:
        found = self.uow.current(self.aggregate, id)
        return None if found is None else clone(found)

    def _add(self, obj: T) -> None:
        id = obj.id  # type: ignore[attr-defined]
        if self.uow.current(self.aggregate, id) is not None:
            raise AlreadyExists(self.aggregate.name, id)
        self.uow.touch(self.aggregate, id)
        self.uow.staged[self.aggregate.name][id] = clone(obj)

    def _save(self, obj: T, expected_version: int) -> None:
        id = obj.id  # type: ignore[attr-defined]
        current = self.uow.current(self.aggregate, id)
        if current is None:
            raise NotFound(self.aggregate.name, id)
        if current.version != expected_version:
            raise ConcurrencyError(
                f"{self.aggregate.name} {id!r} is at version {current.version}, "
                f"this copy is version {expected_version}: reload it and apply the change again"
            )
        self.uow.touch(self.aggregate, id)
        self.uow.staged[self.aggregate.name][id] = clone(obj)

    def _delete(self, id: str, expected_version: int | None) -> bool:
        current = self.uow.current(self.aggregate, id)
        if current is None:
            return False
        if expected_version is not None and current.version != expected_version:
            raise ConcurrencyError(
                f"{self.aggregate.name} {id!r} is at version {current.version}, not the version "
                f"{expected_version} read: it changed meanwhile; read it again before deleting"
            )
        # The version checked here is the one commit expects, so a change committed by another
        # unit of work before this one commits is refused too.
        self.uow.touch(self.aggregate, id)
        self.uow.staged[self.aggregate.name][id] = _DELETED
        return True

    def _matching(self, where: Condition | None, now: datetime) -> list[T]:
        fields = self.aggregate.fields
        objs = self.uow.visible(self.aggregate)
        if where is None:
            return objs
        return [o for o in objs if evaluate(where, o, fields, now)]

    def _find(
        self,
        where: Condition | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[T]:
        found = sorted(self._matching(where, now), key=lambda o: o.id)  # type: ignore[attr-defined]
        for key, descending in reversed(sort_key(self.aggregate.fields, order_by)):
            found.sort(key=key, reverse=descending)
        end = None if limit is None else offset + limit
        return [clone(o) for o in found[offset:end]]

    def _count(self, where: Condition | None, now: datetime) -> int:
        return len(self._matching(where, now))

    def _page_after(self, after: str | None, limit: int) -> list[T]:
        objs = self.uow.visible(self.aggregate)
        if after is not None:
            objs = [o for o in objs if o.id > after]
        objs.sort(key=lambda o: o.id)
        return [clone(o) for o in objs[:limit]]

    def _bulk_add(self, objs: list[T]) -> None:
        for obj in objs:
            id = obj.id  # type: ignore[attr-defined]
            if self.uow.current(self.aggregate, id) is not None:
                raise AlreadyExists(self.aggregate.name, id)
        for obj in objs:
            self._add(obj)


class MemoryCustomerRepository(MemoryRepository[Customer], CustomerRepository):
    """Customers in memory; facts computed in Python from `order_totals` (the SQL query's reference)."""

    def _matching_facts(
        self, where: Condition | None, currency: str | None, order_by: tuple[str, ...], now: datetime
    ) -> list[CustomerFacts]:
        totals = order_totals(self.uow.visible(ORDERS)) if uses_facts(where, order_by) else {}
        facts = [customer_facts(c, totals.get(c.id), currency) for c in self.uow.visible(self.aggregate)]
        if where is None:
            return facts
        return [f for f in facts if evaluate(where, f, CUSTOMER_FACT_FIELDS, now)]

    def _find_with_facts(
        self,
        where: Condition | None,
        currency: str | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[Customer]:
        found = sorted(self._matching_facts(where, currency, order_by, now), key=lambda f: f.customer.id)
        for key, descending in reversed(sort_key(CUSTOMER_FACT_FIELDS, order_by)):
            found.sort(key=key, reverse=descending)
        end = None if limit is None else offset + limit
        return [clone(f.customer) for f in found[offset:end]]

    def _count_with_facts(self, where: Condition | None, currency: str | None, now: datetime) -> int:
        return len(self._matching_facts(where, currency, (), now))


class MemoryOrderRepository(MemoryRepository[Order], OrderRepository):
    """Orders in memory; totals computed in Python (the reference the SQL ``GROUP BY`` matches)."""

    def _totals(self, customer_ids: list[str] | None, until: datetime | None) -> dict[str, OrderTotals]:
        wanted = None if customer_ids is None else set(customer_ids)
        orders = [
            o
            for o in self.uow.visible(self.aggregate)
            if (wanted is None or o.customer_id in wanted) and (until is None or o.ordered_at < until)
        ]
        return order_totals(orders)

    def _purchase_stats(
        self, through: datetime, currency: str | None, customer_ids: list[str] | None
    ) -> PurchaseStats:
        return purchase_stats_of(
            self.uow.visible(self.aggregate), through=through, currency=currency, customer_ids=customer_ids
        )


class MemoryInteractionRepository(MemoryRepository[Interaction], InteractionRepository):
    """Interactions in memory."""
