"""Domain events: immutable facts the core records and the shell delivers after commit.

Each event class has a stable ``event_type`` name (``"customer.created"``) used in the outbox, so
stored events can be read back by any process that imports the class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import attrs

from crmcore.errors import RuleError, ValidationError
from crmcore.ids import new_id
from crmcore.serialization import structure, unstructure
from crmcore.validation import utc_datetime

__all__ = [
    "CustomerCreated",
    "CustomerDeleted",
    "CustomerUpdated",
    "DomainEvent",
    "EventBus",
    "EventRedacted",
    "OutboxRecord",
    "event_class",
    "event_from_data",
    "event_to_data",
    "redacted",
]

log = logging.getLogger(__name__)
E = TypeVar("E", bound="DomainEvent")
_REGISTRY: dict[str, type[DomainEvent]] = {}


def _aware(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    utc_datetime(value, attribute.name)


@attrs.frozen(kw_only=True)
class DomainEvent:
    """Base of every event: a unique id, when it happened and which aggregate it concerns.

    Subclasses set ``event_type``, a stable dotted name; it is how the outbox stores the class.
    """

    event_type: ClassVar[str] = ""
    aggregate_id: str
    occurred_at: datetime = attrs.field(validator=_aware)
    event_id: str = attrs.field(factory=new_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("event_type")
        if not name:
            return  # an intermediate base, or the attrs-made slotted copy registers below
        other = _REGISTRY.get(name)
        if other is not None and other.__qualname__ != cls.__qualname__:
            raise RuleError(f"event type {name!r} is already used by {other.__qualname__}")
        _REGISTRY[name] = cls


def event_class(event_type: str) -> type[DomainEvent]:
    """The class registered under ``event_type``; `ValidationError` if none is."""
    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise ValidationError("event_type", f"unknown event type {event_type!r}") from None


def event_to_data(event: DomainEvent) -> dict[str, Any]:
    """The event's fields as JSON-ready data (without its type name)."""
    data: dict[str, Any] = unstructure(event)
    return data


def event_from_data(event_type: str, data: dict[str, Any]) -> DomainEvent:
    """Rebuild an event from its type name and `event_to_data` output."""
    return structure(data, event_class(event_type))


@attrs.frozen(kw_only=True)
class OutboxRecord:
    """An event as stored in a tenant's outbox: its position orders delivery."""

    position: int
    tenant: str
    event: DomainEvent


@attrs.frozen(kw_only=True)
class CustomerCreated(DomainEvent):
    """A customer was added."""

    event_type: ClassVar[str] = "customer.created"
    name: str


@attrs.frozen(kw_only=True)
class CustomerUpdated(DomainEvent):
    """A customer was changed; ``fields`` names what changed."""

    event_type: ClassVar[str] = "customer.updated"
    fields: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CustomerDeleted(DomainEvent):
    """A customer was deleted."""

    event_type: ClassVar[str] = "customer.deleted"


@attrs.frozen(kw_only=True)
class EventRedacted(DomainEvent):
    """Stands in the outbox for an event whose payload was erased (privacy erasure)."""

    event_type: ClassVar[str] = "event.redacted"
    original_type: str


def redacted(event_id: str, event_type: str, aggregate_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The outbox payload of the marker replacing one event (see `EventRedacted`)."""
    return event_to_data(
        EventRedacted(
            aggregate_id=aggregate_id, occurred_at=occurred_at, event_id=event_id, original_type=event_type
        )
    )


Handler = Callable[[Any], None]


class EventBus:
    """In-process delivery: handlers subscribe to an event class (and get its subclasses too).

    The facade publishes a unit of work's events only after it commits. A failing handler is
    logged and does not stop the others, nor undo the commit; reliable delivery to other
    processes goes through the outbox (`events_since`).
    """

    def __init__(self) -> None:
        self._handlers: dict[type[DomainEvent], list[Handler]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` for each published ``event_type`` event; returns an unsubscribe function."""
        with self._lock:
            self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._handlers.get(event_type, [])
                if handler in handlers:
                    handlers.remove(handler)

        return unsubscribe

    def publish(self, events: Iterable[DomainEvent]) -> None:
        """Deliver each event, in order, to every handler of its class or a base class."""
        for event in events:
            with self._lock:
                handlers = [h for cls in type(event).__mro__ for h in self._handlers.get(cls, ())]
            for handler in handlers:
                try:
                    handler(event)
                except Exception:
                    log.exception("event handler %r failed on %s", handler, event.event_type)
