"""The storage contract: `Store`, `UnitOfWork` and the template-method `Repository`.

Adapters subclass `UnitOfWork` and `Repository` and fill in the underscored methods; the public
methods do the checking, stamping and bookkeeping once, so every adapter behaves the same.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from crmcore.assignment.state import QUEUE_STATE_FIELDS, QueueState
from crmcore.clock import Clock
from crmcore.conditions import Condition, Field, FieldSet, check_condition, sort_key
from crmcore.customers.contact import CONTACT_FIELDS, Contact
from crmcore.customers.customer import CUSTOMER_FIELDS, Customer
from crmcore.customers.interaction import INTERACTION_FIELDS, Interaction
from crmcore.customers.order import ORDER_FIELDS, Order, OrderTotals
from crmcore.customers.purchases import PurchaseStats
from crmcore.customers.segments import CUSTOMER_FACT_FIELDS, check_segment_condition
from crmcore.errors import CrmError, FieldError, NotFound, ValidationError
from crmcore.events import DomainEvent, EventRedacted, OutboxRecord
from crmcore.ids import check_id
from crmcore.money import check_currency
from crmcore.pipeline.lead import LEAD_FIELDS, Lead
from crmcore.pipeline.opportunity import OPPORTUNITY_FIELDS, Opportunity
from crmcore.pipeline.quote import QUOTE_FIELDS, Quote
from crmcore.service.ticket import SURVEY_FIELDS, TICKET_FIELDS, SatisfactionSurvey, Ticket
from crmcore.service.timers import SLA_TIMER_FIELDS, SlaTimer
from crmcore.validation import utc_datetime

__all__ = [
    "AGGREGATES",
    "ASSIGNMENT_QUEUES",
    "Aggregate",
    "CONTACTS",
    "CUSTOMERS",
    "CUSTOMER_LINKS",
    "CustomerRepository",
    "DEFAULT_TENANT",
    "INTERACTIONS",
    "InteractionRepository",
    "LEADS",
    "OPPORTUNITIES",
    "ORDERS",
    "OrderRepository",
    "PurchaseStats",
    "QUOTES",
    "Repository",
    "SLA_TIMERS",
    "SURVEYS",
    "Store",
    "StoreCapabilities",
    "TICKETS",
    "UnitOfWork",
    "check_tenant",
]

T = TypeVar("T")
DEFAULT_TENANT = "default"
"""The tenant of hosts that serve one organisation and never name one."""


@attrs.frozen
class Aggregate(Generic[T]):
    """What the storage layer knows of an aggregate type.

    Its name, class and queryable fields; ``attribute`` is its repository's name on a unit of
    work; ``customer_field``, when set, names the field that links it to a customer, so merge,
    privacy export and erasure find every record of a customer, whichever package defines it.
    """

    name: str
    cls: type[T]
    fields: FieldSet
    attribute: str
    customer_field: str | None = None


CUSTOMERS: Aggregate[Customer] = Aggregate("customer", Customer, CUSTOMER_FIELDS, "customers")
CONTACTS: Aggregate[Contact] = Aggregate("contact", Contact, CONTACT_FIELDS, "contacts", "customer_id")
INTERACTIONS: Aggregate[Interaction] = Aggregate(
    "interaction", Interaction, INTERACTION_FIELDS, "interactions", "customer_id"
)
ORDERS: Aggregate[Order] = Aggregate("order", Order, ORDER_FIELDS, "orders", "customer_id")
TICKETS: Aggregate[Ticket] = Aggregate("ticket", Ticket, TICKET_FIELDS, "tickets", "customer_id")
SURVEYS: Aggregate[SatisfactionSurvey] = Aggregate(
    "survey", SatisfactionSurvey, SURVEY_FIELDS, "surveys", "customer_id"
)
SLA_TIMERS: Aggregate[SlaTimer] = Aggregate("sla_timer", SlaTimer, SLA_TIMER_FIELDS, "sla_timers")
# Rotation state of assignment queues: shared by ticket routing and lead assignment, no customer link.
ASSIGNMENT_QUEUES: Aggregate[QueueState] = Aggregate(
    "assignment_queue", QueueState, QUEUE_STATE_FIELDS, "assignment_queues"
)
# A lead belongs to a customer once converted: merge, export and erasure then cover it too.
LEADS: Aggregate[Lead] = Aggregate("lead", Lead, LEAD_FIELDS, "leads", "converted_customer_id")
OPPORTUNITIES: Aggregate[Opportunity] = Aggregate(
    "opportunity", Opportunity, OPPORTUNITY_FIELDS, "opportunities", "customer_id"
)
QUOTES: Aggregate[Quote] = Aggregate("quote", Quote, QUOTE_FIELDS, "quotes", "customer_id")
AGGREGATES: tuple[Aggregate[Any], ...] = (
    CUSTOMERS,
    CONTACTS,
    INTERACTIONS,
    ORDERS,
    TICKETS,
    SURVEYS,
    SLA_TIMERS,
    ASSIGNMENT_QUEUES,
    LEADS,
    OPPORTUNITIES,
    QUOTES,
)
CUSTOMER_LINKS: tuple[Aggregate[Any], ...] = tuple(a for a in AGGREGATES if a.customer_field)
"""Aggregates that belong to a customer (contacts, interactions, orders, tickets, surveys, converted
leads, opportunities, quotes)."""


@attrs.frozen
class StoreCapabilities:
    """What an adapter can do; tests and hosts branch on these flags, never on adapter names."""

    name: str
    durable: bool
    concurrent_writers: bool
    """Units of work in several processes or threads may write at the same time."""
    ordered_outbox: bool = True
    """Outbox positions become visible in order (no reader ever skips a later-committed gap)."""


def check_tenant(tenant: object) -> str:
    """A tenant id is an id like any other: a non-empty printable string of up to 64 characters."""
    return check_id(tenant, "tenant")


class Repository(abc.ABC, Generic[T]):
    """Stores one aggregate type for one tenant inside one unit of work.

    Objects are copied in and out: changing a fetched object changes nothing stored until
    `save`, and a later change to a saved object does not leak into the store.
    """

    def __init__(self, aggregate: Aggregate[T], uow: UnitOfWork) -> None:
        self.aggregate = aggregate
        self.uow = uow

    # --- public template methods ---

    def get(self, id: str) -> T:
        """The stored object with this id.

        Raises:
            NotFound: if there is none in this tenant.
        """
        self.uow.require_open()
        found = self._get(check_id(id))
        if found is None:
            raise NotFound(self.aggregate.name, id)
        return found

    def exists(self, id: str) -> bool:
        """Whether an object with this id is stored in this tenant."""
        self.uow.require_open()
        return self._get(check_id(id)) is not None

    def add(self, obj: T) -> T:
        """Store a new object; stamps ``created_at``/``updated_at`` if empty and sets ``version`` to 1.

        Raises:
            AlreadyExists: if the id is taken in this tenant.
        """
        self.uow.require_open()
        self._check_type(obj)
        _check_invariants(obj)
        self._check_rules(obj)
        with self._stamped(obj, creating=True):
            self._add(obj)
        return obj

    def save(self, obj: T) -> T:
        """Store changes to an object read earlier; its ``version`` must still be the stored one.

        Stamps ``updated_at`` and increments ``version`` on the object.

        Raises:
            ConcurrencyError: someone saved a newer version since this copy was read (raised
                here or, for the loser of a race, at the latest by ``commit``).
            NotFound: the object is not stored.
        """
        self.uow.require_open()
        self._check_type(obj)
        _check_invariants(obj)
        self._check_rules(obj)
        expected = obj.version  # type: ignore[attr-defined]
        with self._stamped(obj, creating=False):
            self._save(obj, expected)
        return obj

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        """Delete the object with this id; with ``expected_version``, only if it is still that version.

        Pass the version you read (``obj.version``) whenever the decision to delete rests on what
        you read (a merge, an erasure): a change made meanwhile by another unit of work is then
        refused instead of being deleted unseen.

        Raises:
            NotFound: if there is none in this tenant.
            ConcurrencyError: the stored version is not ``expected_version`` (raised here or, for
                the loser of a race, at the latest by ``commit``).
            ValidationError: ``expected_version`` is not a positive integer.
        """
        self.uow.require_open()
        if expected_version is not None and (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version <= 0
        ):
            raise ValidationError(
                "expected_version", f"must be a positive integer or None, got {expected_version!r}"
            )
        if not self._delete(check_id(id), expected_version):
            raise NotFound(self.aggregate.name, id)

    def find(
        self,
        where: Condition | None = None,
        *,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
        now: datetime | None = None,
    ) -> list[T]:
        """Objects matching ``where``, sorted by ``order_by`` (``"-name"`` descends), then by id.

        ``None`` sorts before any value. ``now`` anchors relative dates; it defaults to the unit
        of work's clock.

        Raises:
            ValidationError: unknown fields, wrong value types, negative limit or offset.
        """
        self.uow.require_open()
        self._check_query(where, order_by, limit, offset)
        return self._find(where, tuple(order_by), limit, offset, now or self.uow.clock.now())

    def count(self, where: Condition | None = None, *, now: datetime | None = None) -> int:
        """How many objects match ``where``."""
        self.uow.require_open()
        self._check_query(where, (), None, 0)
        return self._count(where, now or self.uow.clock.now())

    def iter_all(self, batch_size: int = 1000) -> Iterator[T]:
        """Every object of this tenant in id order, read ``batch_size`` at a time (bounded memory)."""
        self.uow.require_open()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
        for batch in self._batches(batch_size):
            yield from batch

    def bulk_add(self, objs: Iterable[T]) -> int:
        """Add many new objects in one go (imports); returns how many were added.

        All or nothing with the unit of work: if any id is taken, `AlreadyExists` is raised and
        the unit of work must be rolled back.
        """
        self.uow.require_open()
        items = list(objs)
        errors = [
            FieldError(f"[{i}]", f"must be a {self.aggregate.cls.__name__}, not {type(o).__name__}")
            for i, o in enumerate(items)
            if not isinstance(o, self.aggregate.cls)
        ]
        seen: dict[str, int] = {}
        for i, o in enumerate(items):
            first = seen.setdefault(getattr(o, "id", ""), i)
            if first != i:
                errors.append(FieldError(f"[{i}].id", f"repeats the id of item {first}"))
        for i, o in enumerate(items):
            try:
                _check_invariants(o)
                self._check_rules(o)
            except ValidationError as exc:
                errors.extend(exc.prefixed(f"[{i}]").errors)
        if errors:
            raise ValidationError.from_errors(errors)
        if items:
            with _Stamp(items, self.uow.clock.now(), creating=True):
                self._bulk_add(items)
        return len(items)

    # --- adapter hooks ---

    @abc.abstractmethod
    def _get(self, id: str) -> T | None: ...

    @abc.abstractmethod
    def _add(self, obj: T) -> None:
        """Insert ``obj`` (already stamped, version 1); raise AlreadyExists if the id is taken."""

    @abc.abstractmethod
    def _save(self, obj: T, expected_version: int) -> None:
        """Replace the stored copy whose version is ``expected_version`` with ``obj``."""

    @abc.abstractmethod
    def _delete(self, id: str, expected_version: int | None) -> bool:
        """Delete; return False if nothing was stored under ``id``.

        With ``expected_version``, delete only that version: raise `ConcurrencyError` if the
        stored object is at another one (now, or by commit if another unit of work gets there first).
        """

    @abc.abstractmethod
    def _find(
        self,
        where: Condition | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[T]: ...

    @abc.abstractmethod
    def _count(self, where: Condition | None, now: datetime) -> int: ...

    def _batches(self, batch_size: int) -> Iterator[list[T]]:
        """Every object in id order, in lists of at most ``batch_size``.

        Keyset pages through `_page_after`: each page is a fresh, short query, so objects saved
        during the iteration are neither skipped nor repeated. (A single server-side cursor on
        PostgreSQL was measured: no faster, and more memory per batch.)
        """
        after: str | None = None
        while True:
            batch = self._page_after(after, batch_size)
            if batch:
                yield batch
            if len(batch) < batch_size:
                return
            after = batch[-1].id  # type: ignore[attr-defined]

    @abc.abstractmethod
    def _page_after(self, after: str | None, limit: int) -> list[T]:
        """Up to ``limit`` objects with id greater than ``after`` (all when None), in id order."""

    @abc.abstractmethod
    def _bulk_add(self, objs: list[T]) -> None: ...

    # --- helpers ---

    def _check_type(self, obj: object) -> None:
        if not isinstance(obj, self.aggregate.cls):
            raise ValidationError(
                self.aggregate.name,
                f"expected a {self.aggregate.cls.__name__}, got {type(obj).__name__}",
            )

    def _check_rules(self, obj: Any) -> None:
        """The host's data rules (`UnitOfWork.validate`), if any, before anything is written."""
        validate = self.uow.validate
        if validate is not None and isinstance(obj, self.aggregate.cls):
            validate(self.aggregate.name, obj, self.uow.clock.now())

    def _check_query(
        self,
        where: Condition | None,
        order_by: Sequence[str],
        limit: int | None,
        offset: int,
        fields: FieldSet | None = None,
        check_where: Callable[[Condition], None] | None = None,
    ) -> None:
        fields = fields or self.aggregate.fields
        errors: list[FieldError] = []
        if where is not None:
            try:
                (check_where or (lambda w: check_condition(w, self.aggregate.fields)))(where)
            except ValidationError as exc:
                errors.extend(exc.errors)
        if isinstance(order_by, str):
            errors.append(FieldError("order_by", "must be a list of field names, not one string"))
        else:
            try:
                sort_key(fields, order_by)
            except ValidationError as exc:
                errors.extend(exc.errors)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            errors.append(FieldError("limit", f"must be a non-negative integer or None, got {limit!r}"))
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            errors.append(FieldError("offset", f"must be a non-negative integer, got {offset!r}"))
        if errors:
            raise ValidationError.from_errors(errors)

    def _stamped(self, obj: Any, *, creating: bool) -> _Stamp:
        return _Stamp([obj], self.uow.clock.now(), creating)


def _check_invariants(obj: Any) -> None:
    """Cross-field rules an aggregate declares (``check_invariants``), re-run before each write.

    Field checks run on every assignment; rules spanning fields (an order's currencies) can only
    be checked once all fields are set, so the store checks them before writing.
    """
    check = getattr(obj, "check_invariants", None)
    if check is not None:
        check()


class CustomerRepository(Repository[Customer]):
    """Customers, plus queries over facts derived from their orders (segments).

    `find_with_facts` and `count_with_facts` accept conditions over `CUSTOMER_FACT_FIELDS`
    (customer fields plus ``order_count``, ``total_spend``, ``first_order_at``,
    ``last_order_at``); adapters answer them where the data lives.
    """

    def find_with_facts(
        self,
        where: Condition | None = None,
        *,
        currency: str | None = None,
        order_by: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
        now: datetime | None = None,
    ) -> list[Customer]:
        """Customers whose facts match ``where``, sorted by ``order_by`` (facts allowed), then by id.

        ``currency`` is the currency of ``total_spend``; ``now`` anchors relative dates and
        defaults to the unit of work's clock.

        Raises:
            ValidationError: unknown fields, wrong value types, ``total_spend`` without a currency
                or compared with another currency, a naive ``now``, negative limit or offset.
        """
        self.uow.require_open()
        at = self._facts_query(where, currency, order_by, limit, offset, now)
        return self._find_with_facts(where, currency, tuple(order_by), limit, offset, at)

    def count_with_facts(
        self, where: Condition | None = None, *, currency: str | None = None, now: datetime | None = None
    ) -> int:
        """How many customers' facts match ``where`` (see `find_with_facts`)."""
        self.uow.require_open()
        at = self._facts_query(where, currency, (), None, 0, now)
        return self._count_with_facts(where, currency, at)

    def _facts_query(
        self,
        where: Condition | None,
        currency: str | None,
        order_by: Sequence[str],
        limit: int | None,
        offset: int,
        now: datetime | None,
    ) -> datetime:
        """Check a facts query all at once; returns the aware ``now`` to evaluate it at."""
        errors: list[FieldError] = []
        currency_ok = True
        if currency is not None:
            try:
                check_currency(currency)
            except ValidationError as exc:
                errors.extend(exc.errors)
                currency_ok = False
        try:
            self._check_query(
                where,
                order_by,
                limit,
                offset,
                CUSTOMER_FACT_FIELDS,
                lambda w: check_segment_condition(w, currency, check_spend=currency_ok),
            )
        except ValidationError as exc:
            errors.extend(exc.errors)
        at = self.uow.clock.now()
        if now is not None:
            try:
                at = utc_datetime(now, "now")
            except ValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ValidationError.from_errors(errors)
        return at

    @abc.abstractmethod
    def _find_with_facts(
        self,
        where: Condition | None,
        currency: str | None,
        order_by: tuple[str, ...],
        limit: int | None,
        offset: int,
        now: datetime,
    ) -> list[Customer]:
        """Customers matching ``where`` over `CUSTOMER_FACT_FIELDS` (already checked)."""

    @abc.abstractmethod
    def _count_with_facts(self, where: Condition | None, currency: str | None, now: datetime) -> int: ...


class OrderRepository(Repository[Order]):
    """Orders, plus per-customer totals computed where the data lives (SQL ``GROUP BY``)."""

    def totals(
        self, customer_ids: Iterable[str] | None = None, *, until: datetime | None = None
    ) -> dict[str, OrderTotals]:
        """Totals of counted orders per customer (all customers when ``customer_ids`` is None).

        ``until`` (exclusive) leaves out orders placed at or after it. Customers without a
        counted order are absent from the result.
        """
        self.uow.require_open()
        ids = None if customer_ids is None else [check_id(i, "customer_ids") for i in customer_ids]
        if isinstance(customer_ids, str):
            raise ValidationError("customer_ids", "must be a list of ids, not one string")
        return self._totals(ids, None if until is None else utc_datetime(until, "until"))

    @abc.abstractmethod
    def _totals(self, customer_ids: list[str] | None, until: datetime | None) -> dict[str, OrderTotals]: ...

    def purchase_stats(
        self, *, through: datetime, currency: str | None = None, customer_ids: Iterable[str] | None = None
    ) -> PurchaseStats:
        """Per (customer, currency): the counted orders placed at or before ``through``, aggregated.

        What customer summaries need, computed where the data lives, as columns (see
        `PurchaseStats`). ``currency`` keeps only orders in it; ``customer_ids`` only those
        customers. Must equal `purchase_stats_of` over the unit of work's orders (the contract
        suite checks it on random histories and write sequences).
        """
        self.uow.require_open()
        if isinstance(customer_ids, str):
            raise ValidationError("customer_ids", "must be a list of ids, not one string")
        ids = None if customer_ids is None else [check_id(i, "customer_ids") for i in customer_ids]
        code = None if currency is None else check_currency(currency)
        return self._purchase_stats(utc_datetime(through, "through"), code, ids)

    @abc.abstractmethod
    def _purchase_stats(
        self, through: datetime, currency: str | None, customer_ids: list[str] | None
    ) -> PurchaseStats: ...


class InteractionRepository(Repository[Interaction]):
    """Interactions, plus a customer's timeline."""

    def timeline(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[Interaction]:
        """A customer's interactions, newest first, with ``since <= occurred_at < until``; paged.

        Ties in time are broken by id (newest id first), so pages never overlap.
        """
        where: Condition = Field("customer_id") == check_id(customer_id, "customer_id")
        if since is not None:
            where = where & (Field("occurred_at") >= utc_datetime(since, "since"))
        if until is not None:
            where = where & (Field("occurred_at") < utc_datetime(until, "until"))
        return self.find(where, order_by=["-occurred_at", "-id"], limit=limit, offset=offset)


def _stamp(obj: Any, now: datetime, *, creating: bool) -> None:
    if creating:
        if obj.created_at is None:
            obj.created_at = now
        if obj.updated_at is None:
            obj.updated_at = now
        obj.version = 1
    else:
        obj.updated_at = now
        obj.version += 1


class _Stamp:
    """Stamp objects for writing; put their old values back if the write fails."""

    def __init__(self, objs: Sequence[Any], now: datetime, creating: bool) -> None:
        self.objs, self.now, self.creating = objs, now, creating
        self.old = [(o.created_at, o.updated_at, o.version) for o in objs]

    def __enter__(self) -> None:
        for obj in self.objs:
            _stamp(obj, self.now, creating=self.creating)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            for obj, old in zip(self.objs, self.old, strict=True):
                for name, value in zip(("created_at", "updated_at", "version"), old, strict=True):
                    object.__setattr__(obj, name, value)


class UnitOfWork(abc.ABC):
    """One transaction for one tenant: ``with crm.unit_of_work() as uow: ...; uow.commit()``.

    Nothing is written without `commit`; leaving the block without it, or with an exception,
    rolls everything back. Events recorded with `record` go to the outbox in the same
    transaction and are handed to ``on_commit`` (the facade's event bus) after it commits.
    """

    customers: CustomerRepository
    contacts: Repository[Contact]
    interactions: InteractionRepository
    orders: OrderRepository
    tickets: Repository[Ticket]
    surveys: Repository[SatisfactionSurvey]
    sla_timers: Repository[SlaTimer]
    assignment_queues: Repository[QueueState]
    leads: Repository[Lead]
    opportunities: Repository[Opportunity]
    quotes: Repository[Quote]
    validate: Callable[[str, Any, datetime], None] | None = None
    """The host's data rules, ``(aggregate name, object, now)``, raising `ValidationError`.

    Set by the `CRM` facade from its ``rules``; repositories run it on add, save and bulk_add,
    before anything is written. Adapters need not know of it.
    """

    def __init__(
        self,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> None:
        self.tenant = check_tenant(tenant)
        self.clock = clock
        self._on_commit = on_commit
        self._events: list[DomainEvent] = []
        self._open = False

    def __enter__(self) -> UnitOfWork:
        if self._open:
            raise CrmError("this unit of work is already open")
        self._begin()
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._open = False
            self._close()

    def record(self, *events: DomainEvent) -> None:
        """Write ``events`` to the outbox with this unit of work's changes."""
        for event in events:
            if not isinstance(event, DomainEvent):
                raise ValidationError("event", f"expected a DomainEvent, got {type(event).__name__}")
        self._events.extend(events)

    def commit(self) -> None:
        """Write every change and recorded event atomically, then publish the events."""
        self.require_open()
        events, self._events = self._events, []
        try:
            self._commit(events)
        except BaseException:
            self._rollback()
            raise
        if events and self._on_commit is not None:
            self._on_commit(events)

    def rollback(self) -> None:
        """Forget every change and event since the last commit."""
        self._events = []
        if self._open:
            self._rollback()

    def events_since(self, position: int = 0, limit: int = 100) -> list[OutboxRecord]:
        """This tenant's committed outbox events after ``position``, oldest first."""
        self.require_open()
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValidationError("position", f"must be a non-negative integer, got {position!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("limit", f"must be an integer from 1 to 10000, got {limit!r}")
        return self._events_since(position, limit)

    def events_about(
        self, aggregate_ids: Iterable[str], *, event_types: Iterable[str] | None = None
    ) -> list[OutboxRecord]:
        """This tenant's committed events whose ``aggregate_id`` is one of ``aggregate_ids``.

        In position order; only the given ``event_types`` when set. An index lookup on SQL stores,
        so exporting or erasing one customer does not read the whole outbox.
        """
        self.require_open()
        errors: list[FieldError] = []
        if isinstance(aggregate_ids, str):
            errors.append(FieldError("aggregate_ids", "must be a list of ids, not one string"))
            aggregate_ids = ()
        if isinstance(event_types, str):
            errors.append(FieldError("event_types", "must be a list of event type names, not one string"))
            event_types = ()
        if errors:
            raise ValidationError.from_errors(errors)
        ids = sorted({check_id(i, "aggregate_ids") for i in aggregate_ids})
        types = None if event_types is None else sorted(set(event_types))
        if not ids or types == []:
            return []
        return self._events_about(ids, types)

    def repository(self, aggregate: Aggregate[T]) -> Repository[T]:
        """The repository of ``aggregate`` in this unit of work."""
        repo: Repository[T] = getattr(self, aggregate.attribute)
        return repo

    def redact_events(self, aggregate_ids: Iterable[str], *, keep_types: Iterable[str] = ()) -> int:
        """Replace outbox events about ``aggregate_ids`` by `EventRedacted` markers.

        For erasure: an event may carry personal data (a name), and the outbox is kept. Markers
        keep each event's id, position, time and type name, so readers still see the sequence.
        Committed events are replaced with the unit of work's commit; events recorded earlier in
        this unit of work are replaced at once (later ones are not). Events of ``keep_types``
        stay as they are (an erasure keeps earlier `CustomerErased` events, which hold no
        personal data). Returns how many events were redacted.
        """
        self.require_open()
        errors: list[FieldError] = []
        if isinstance(aggregate_ids, str):
            errors.append(FieldError("aggregate_ids", "must be a list of ids, not one string"))
            aggregate_ids = ()
        if isinstance(keep_types, str):
            errors.append(FieldError("keep_types", "must be a list of event type names, not one string"))
            keep_types = ()
        if errors:
            raise ValidationError.from_errors(errors)
        ids = sorted({check_id(i, "aggregate_ids") for i in aggregate_ids})
        keep = sorted({EventRedacted.event_type, *keep_types})
        if not ids:
            return 0
        wanted = set(ids)
        pending = 0
        for index, event in enumerate(self._events):
            if event.aggregate_id in wanted and event.event_type not in keep:
                self._events[index] = EventRedacted(
                    aggregate_id=event.aggregate_id,
                    occurred_at=event.occurred_at,
                    event_id=event.event_id,
                    original_type=event.event_type,
                )
                pending += 1
        return pending + self._redact_events(ids, keep)

    def require_open(self) -> None:
        """Raise `CrmError` unless the unit of work is inside its ``with`` block."""
        if not self._open:
            raise CrmError("the unit of work is not open: use it in a with block")

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self, events: list[DomainEvent]) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release resources once the block ends."""

    @abc.abstractmethod
    def _events_since(self, position: int, limit: int) -> list[OutboxRecord]: ...

    @abc.abstractmethod
    def _redact_events(self, aggregate_ids: list[str], keep_types: list[str]) -> int:
        """Replace, at commit, committed events about ``aggregate_ids`` unless of ``keep_types``.

        ``keep_types`` always holds `EventRedacted`'s type; returns how many events will be replaced.
        """

    @abc.abstractmethod
    def _events_about(
        self, aggregate_ids: list[str], event_types: list[str] | None
    ) -> list[OutboxRecord]: ...


@runtime_checkable
class Store(Protocol):
    """A storage backend: makes units of work, one per tenant and transaction."""

    capabilities: StoreCapabilities

    def unit_of_work(
        self,
        tenant: str,
        clock: Clock,
        on_commit: Callable[[list[DomainEvent]], None] | None = None,
    ) -> UnitOfWork:
        """A new, not yet opened, unit of work for ``tenant``."""
        ...

    def create_schema(self) -> None:
        """Create whatever the store needs (idempotent)."""
        ...

    def purge_tenant(self, tenant: str) -> int:
        """Delete every row of ``tenant`` (objects and outbox) at once; returns rows removed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
