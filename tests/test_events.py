"""Domain events and the in-process event bus."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import attrs
import pytest

from crmcore import DomainEvent, EventBus, RuleError, ValidationError
from crmcore.events import (
    CustomerCreated,
    CustomerUpdated,
    event_class,
    event_from_data,
    event_to_data,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_events_are_frozen_with_id_and_time() -> None:
    """An event gets a unique id, refuses naive times and cannot be changed."""
    a = CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Ada")
    b = CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Ada")
    assert a.event_id != b.event_id
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.name = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="naive"):
        CustomerCreated(aggregate_id="c1", occurred_at=datetime(2026, 1, 1), name="Ada")


def test_events_round_trip_by_type_name() -> None:
    """event_to_data and event_from_data rebuild an equal event from its type name."""
    e = CustomerUpdated(aggregate_id="c1", occurred_at=T0, fields=("name", "tags"))
    assert event_class("customer.updated") is CustomerUpdated
    assert event_from_data("customer.updated", event_to_data(e)) == e
    with pytest.raises(ValidationError, match="unknown event type"):
        event_class("nope.nothing")


def test_host_events_register_and_names_are_unique() -> None:
    """Hosts define events by subclassing; a second class may not reuse a type name."""

    @attrs.frozen(kw_only=True)
    class InvoiceSent(DomainEvent):
        event_type: ClassVar[str] = "host.invoice_sent"
        number: str

    assert event_class("host.invoice_sent") is InvoiceSent
    with pytest.raises(RuleError, match="already used"):

        @attrs.frozen(kw_only=True)
        class Clash(DomainEvent):
            event_type: ClassVar[str] = "host.invoice_sent"


def test_bus_delivers_by_class_and_base_class() -> None:
    """Subscribers of a class get its events and those of subclasses; unsubscribe stops delivery."""
    bus = EventBus()
    created: list[CustomerCreated] = []
    everything: list[DomainEvent] = []
    stop = bus.subscribe(CustomerCreated, created.append)
    bus.subscribe(DomainEvent, everything.append)
    e1 = CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Ada")
    e2 = CustomerUpdated(aggregate_id="c1", occurred_at=T0)
    bus.publish([e1, e2])
    assert created == [e1] and everything == [e1, e2]
    stop()
    bus.publish([e1])
    assert created == [e1] and everything == [e1, e2, e1]


def test_failing_handler_is_logged_and_others_run(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that raises does not stop delivery to the next one."""
    bus = EventBus()
    seen: list[DomainEvent] = []

    def broken(_: DomainEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(DomainEvent, broken)
    bus.subscribe(DomainEvent, seen.append)
    bus.publish([CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Ada")])
    assert len(seen) == 1
    assert "customer.created" in caplog.text and "boom" in caplog.text
