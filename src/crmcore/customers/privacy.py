"""Privacy: recording consent, exporting everything stored about a person, and erasing it.

Erasure is data-driven: `ANONYMIZERS` maps a repository name to a function that strips a
record of personal data and keeps it; every other aggregate linked to a customer (each of
`CUSTOMER_LINKS`, including ones later issues add) is deleted. Outbox events about the person
and their records are replaced by `EventRedacted` markers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs

from crmcore.customers.contact import Contact
from crmcore.customers.contact_points import Consent, ConsentChannel
from crmcore.customers.customer import Customer
from crmcore.customers.merge import CustomersMerged, linked_records
from crmcore.customers.order import Order
from crmcore.errors import NotFound, ValidationError
from crmcore.events import DomainEvent, event_to_data
from crmcore.ids import check_id, new_id
from crmcore.serialization import unstructure
from crmcore.storage.base import CUSTOMER_LINKS, UnitOfWork
from crmcore.validation import text, utc_datetime

__all__ = [
    "ANONYMIZERS",
    "Anonymizer",
    "CustomerErased",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ErasureReport",
    "anonymize_opportunity",
    "anonymize_order",
    "anonymize_quote",
    "erase_customer",
    "export_customer",
    "merged_into",
    "record_consent",
]

H = TypeVar("H", Customer, Contact)
Anonymizer = Callable[[Any, str], Any]
"""Strips one record of personal data and returns it, given the pseudonymous id to link it to."""

EXPORT_FORMAT = "crmcore.customer-export"
EXPORT_VERSION = 1


def record_consent(holder: H, channel: ConsentChannel | str, granted: bool, source: str, at: datetime) -> H:
    """A copy of ``holder`` (a customer or contact) whose consent for ``channel`` is the one given.

    Any earlier consent for that channel is replaced, whatever its time: the latest call records
    the current state (a withdrawal is never ignored). Save the copy to store it.

    Args:
        holder: a `Customer` or a `Contact`.
        channel: a `ConsentChannel` or its value (``"email"``).
        granted: True when the person agreed, False when they refused or withdrew.
        source: where it was given or withdrawn (``"signup form"``, ``"call 2026-03-01"``).
        at: when, timezone-aware.

    Raises:
        ValidationError: a holder of another type, or a bad channel, source or time (all reported).
    """
    if not isinstance(holder, Customer | Contact):
        raise ValidationError("holder", f"must be a Customer or a Contact, not {type(holder).__name__}")
    consent = Consent(channel=channel, granted=granted, source=source, at=at)  # type: ignore[arg-type]
    kept: list[Consent] = [c for c in holder.consents if c.channel is not consent.channel]
    return attrs.evolve(holder, consents=[*kept, consent])


# --- the outbox ------------------------------------------------------------------------------------


def merged_into(uow: UnitOfWork, customer_id: str) -> tuple[str, ...]:
    """Ids of the customers merged into ``customer_id`` (directly or through earlier merges).

    Read from `CustomersMerged` events in the outbox (one indexed lookup per generation of
    merges): their events may name the same person.
    """
    found: list[str] = []
    frontier = [customer_id]
    while frontier:
        merges = uow.events_about(frontier, event_types=[CustomersMerged.event_type])
        frontier = []
        for record in merges:
            for dup in getattr(record.event, "duplicate_ids", ()):
                if dup != customer_id and dup not in found:
                    found.append(dup)
                    frontier.append(dup)
    return tuple(found)


# --- export ----------------------------------------------------------------------------------------


def export_customer(uow: UnitOfWork, customer_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything stored about a customer, as JSON-ready data (a subject access request).

    The customer; its records in every aggregate of `CUSTOMER_LINKS` (keyed by repository name,
    in id order); and the outbox events about the customer, its records, or customers merged
    into it. ``json.dumps`` takes the result as is.

    Args:
        uow: an open unit of work.
        customer_id: the customer to export.
        now: the export time written into the result; the unit of work's clock by default.

    Raises:
        NotFound: no such customer.
    """
    customer = uow.customers.get(check_id(customer_id, "customer_id"))
    exported_at = utc_datetime(now, "now") if now is not None else uow.clock.now()
    records: dict[str, list[Any]] = {}
    ids = {customer.id}
    for aggregate in CUSTOMER_LINKS:
        found = list(linked_records(uow, aggregate, [customer.id]))
        records[aggregate.attribute] = [unstructure(r) for r in found]
        ids.update(r.id for r in found)
    merged = merged_into(uow, customer.id)
    ids.update(merged)
    events = [
        {"position": r.position, "event_type": r.event.event_type, "event": event_to_data(r.event)}
        for r in uow.events_about(ids)
    ]
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "exported_at": exported_at.isoformat(),
        "tenant": uow.tenant,
        "customer": unstructure(customer),
        "merged_ids": list(merged),
        "records": records,
        "events": events,
    }


# --- erasure ---------------------------------------------------------------------------------------


def anonymize_order(order: Order, pseudonym: str) -> Order:
    """An order without personal data: kept for revenue figures, linked to no one.

    Keeps what totals and analytics read (time, status, channel, currency, lines, discount) and
    its id (the key bookkeeping may hold). Re-links it to ``pseudonym``, a fresh id shared by the
    person's retained orders and stored nowhere else, so analytics still see one buyer but the
    old customer id (which other systems, logs or backups may hold) no longer leads to it.
    Clears the host's order ``number`` (printed on the person's receipts) and ``custom`` fields
    (free data of unknown content).
    """
    order.customer_id = pseudonym
    order.number = ""
    order.custom = {}
    return order


def anonymize_opportunity(deal: Any, pseudonym: str) -> Any:
    """A deal without personal data, kept for pipeline, funnel and forecast history.

    Keeps amounts, line items, stages and their history, dates and the owner (a rep, not the
    customer); re-links it to ``pseudonym`` like `anonymize_order`. Clears what may name or
    describe the person: the deal's name, next step, contact, originating lead, tags, custom
    fields, and a lost reason's text (a lost deal keeps that it was lost).
    """
    deal.customer_id = pseudonym
    deal.name = "Erased customer's deal"
    deal.next_step = ""
    deal.contact_id = None
    deal.lead_id = None
    deal.tags = ()
    deal.custom = {}
    if deal.lost_reason:
        deal.lost_reason = "(erased)"
    return deal


def anonymize_quote(quote: Any, pseudonym: str) -> Any:
    """A quote without personal data, kept for revenue figures: lines, totals, status and dates stay.

    Re-links it to ``pseudonym``; clears the quote number (printed on the person's documents),
    custom fields and a rejection reason's text.
    """
    quote.customer_id = pseudonym
    quote.number = ""
    quote.custom = {}
    if quote.rejection_reason:
        quote.rejection_reason = "(erased)"
    return quote


ANONYMIZERS: Mapping[str, Anonymizer] = MappingProxyType(
    {"orders": anonymize_order, "opportunities": anonymize_opportunity, "quotes": anonymize_quote}
)
"""Aggregates erasure keeps, anonymized, by repository name; every other linked aggregate is deleted."""


@attrs.frozen(kw_only=True)
class CustomerErased(DomainEvent):
    """Everything about the customer ``aggregate_id`` was erased: counts only, no personal data.

    Subscribers holding copies of the customer erase theirs on this event.
    """

    event_type: ClassVar[str] = "customer.erased"
    reason: str = ""
    deleted: dict[str, int] = attrs.field(factory=dict)
    anonymized: dict[str, int] = attrs.field(factory=dict)
    events_redacted: int = 0


@attrs.frozen(kw_only=True)
class ErasureReport:
    """What `erase_customer` did, per repository name (``"customers"``, ``"contacts"``, ...)."""

    customer_id: str
    deleted: dict[str, int]
    anonymized: dict[str, int]
    events_redacted: int
    """Outbox events replaced by `EventRedacted` markers."""
    merged_ids: tuple[str, ...]
    """Customers merged into this one earlier, whose events were redacted too."""
    event: CustomerErased


def erase_customer(
    uow: UnitOfWork,
    customer_id: str,
    *,
    reason: str = "",
    anonymizers: Mapping[str, Anonymizer] = ANONYMIZERS,
    missing_ok: bool = False,
) -> ErasureReport:
    """Erase a person in ``uow`` (right to erasure); the caller commits, and nothing changes until then.

    Deletes the customer and every linked record (each aggregate of `CUSTOMER_LINKS`), except
    those ``anonymizers`` keep: each such record is passed through its anonymizer and saved. Redacts
    the outbox events about the customer, its records and customers merged into it (those
    recorded earlier in ``uow`` too), and records `CustomerErased`. Free text in *other*
    customers' records that mentions the person is not searched.

    The customer is deleted first, at the version read, and its records are looked up after
    that, so a record another unit of work links to the customer meanwhile is most likely found;
    one committed after the lookup is left behind (nothing requires a record's customer to
    exist). Run it again with ``missing_ok=True`` to sweep such leftovers.

    Args:
        uow: an open unit of work.
        customer_id: the customer to erase.
        reason: why, for the audit trail (a request number); it goes into the event, so it must
            not itself name the person.
        anonymizers: repository name to `Anonymizer`; `ANONYMIZERS` by default, ``{}`` deletes all.
        missing_ok: erase the records and events of a customer that is already gone (an earlier
            erasure's leftovers) instead of raising `NotFound`; the report then counts 0 customers.

    Raises:
        NotFound: no such customer (unless ``missing_ok``).
        ConcurrencyError: another unit of work changed the customer or one of its records meanwhile.
        ValidationError: a bad id or reason, or an anonymizer key naming no linked aggregate.
    """
    customer_id = check_id(customer_id, "customer_id")
    reason = text(max_length=200)(reason, "reason")
    linked = {a.attribute for a in CUSTOMER_LINKS}
    unknown = sorted(set(anonymizers) - linked)
    if unknown:
        raise ValidationError("anonymizers", f"{unknown} name no linked aggregate; valid: {sorted(linked)}")
    if not isinstance(missing_ok, bool):
        raise ValidationError("missing_ok", f"must be True or False, got {missing_ok!r}")
    try:
        customer = uow.customers.get(customer_id)
    except NotFound:
        if not missing_ok:
            raise
        customers = 0
    else:
        uow.customers.delete(customer.id, expected_version=customer.version)
        customers = 1
    pseudonym = new_id()
    deleted: dict[str, int] = {"customers": customers}
    anonymized: dict[str, int] = {}
    ids = {customer_id}
    for aggregate in CUSTOMER_LINKS:
        repo = uow.repository(aggregate)
        anonymize = anonymizers.get(aggregate.attribute)
        count = 0
        for record in linked_records(uow, aggregate, [customer_id]):
            ids.add(record.id)
            if anonymize is None:
                repo.delete(record.id, expected_version=record.version)
            else:
                repo.save(anonymize(record, pseudonym))
            count += 1
        (deleted if anonymize is None else anonymized)[aggregate.attribute] = count
    merged = merged_into(uow, customer_id)
    ids.update(merged)
    redacted = uow.redact_events(sorted(ids), keep_types=[CustomerErased.event_type])
    event = CustomerErased(
        aggregate_id=customer_id,
        occurred_at=uow.clock.now(),
        reason=reason,
        deleted=dict(deleted),
        anonymized=dict(anonymized),
        events_redacted=redacted,
    )
    uow.record(event)
    return ErasureReport(
        customer_id=customer_id,
        deleted=deleted,
        anonymized=anonymized,
        events_redacted=redacted,
        merged_ids=merged,
        event=event,
    )
