"""The SLA timer runner: warning, breach and met events, each exactly once, from stored timers.

Each tracked ticket has an `SlaTimer`: the keys of the SLA events already recorded for it and the
next moment it needs a look (an indexed column). `track_ticket` is called in the unit of work that
changes a ticket; `run_due` is called periodically (cron, a worker loop) and looks only at timers
whose moment has come. Events are written to the outbox in the same transaction as the timer that
remembers them, and timers are saved with optimistic concurrency, so two runners at once, or a
runner that crashes and starts again, never record an event twice or lose one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from crmcore.conditions import All, Condition, Field, FieldDef, FieldSet, FieldType, Not, record_fields
from crmcore.conditions import Any as AnyOf
from crmcore.customers.customer import Customer
from crmcore.errors import ConcurrencyError, NotFound, ValidationError
from crmcore.events import DomainEvent
from crmcore.ids import check_id
from crmcore.service.sla import (
    SlaBreached,
    SlaEvent,
    SlaPolicies,
    SlaWarning,
    fired_keys,
    next_check,
    sla_events,
)
from crmcore.service.ticket import Ticket
from crmcore.validation import (
    check_on_setattr,
    checked,
    optional,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
    version_number,
)

if TYPE_CHECKING:
    from crmcore.facade import CRM
    from crmcore.storage.base import UnitOfWork

__all__ = [
    "Escalator",
    "SLA_TIMER_FIELDS",
    "SlaRun",
    "SlaTimer",
    "SlaTracking",
    "run_due",
    "track_ticket",
]


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class SlaTimer:
    """The SLA bookkeeping of one ticket (``id`` is the ticket's id): events fired, next look due.

    ``next_check_at`` is None while no clock runs (paused, solved, no policy); tracking the
    ticket's next change sets it again.
    """

    id: str = checked(check_id)
    next_check_at: datetime | None = checked(optional(utc_datetime), default=None)
    fired: tuple[str, ...] = checked(tuple_of(text(max_length=200, required=True)), default=())
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


SLA_TIMER_FIELDS = FieldSet.of(
    "SlaTimer",
    [*record_fields(), FieldDef("next_check_at", FieldType.DATETIME, lambda t: t.next_check_at)],
)
"""The fields of `SlaTimer` that ``find`` can use (the runner asks for ``next_check_at <= now``)."""


class Escalator(Protocol):
    """What the runner needs of escalation rules (`crmcore.service.escalation.EscalationRules`)."""

    def escalate(
        self, ticket: Ticket, event: SlaEvent, now: datetime, customer: Customer | None = None
    ) -> Any:
        """An object with ``ticket`` (possibly changed) and ``events`` (to record)."""
        ...


def _fields_of(cond: Condition | None) -> set[str]:
    if cond is None:
        return set()
    if isinstance(cond, All | AnyOf):
        return set().union(*(_fields_of(c) for c in cond.conditions))
    if isinstance(cond, Not):
        return _fields_of(cond.condition)
    return {str(getattr(cond, "field", ""))}


def _needs_customer(policies: SlaPolicies, escalation: Escalator | None) -> bool:
    conditions = [p.condition for p in (*policies.policies, *policies.retired)]
    conditions += [getattr(r, "condition", None) for r in getattr(escalation, "rules", ())]
    return any(name.startswith("customer_") for c in conditions for name in _fields_of(c))


@attrs.frozen(kw_only=True)
class SlaTracking:
    """What `track_ticket` did: the ticket as now stored, its timer, the events recorded."""

    ticket: Ticket
    """Use this copy from now on: tracking may have pinned or escalated (and saved) the ticket."""
    timer: SlaTimer
    events: tuple[DomainEvent, ...]


def track_ticket(
    uow: UnitOfWork,
    policies: SlaPolicies,
    ticket: Ticket,
    now: datetime,
    *,
    customer: Customer | None = None,
    escalation: Escalator | None = None,
) -> SlaTracking:
    """Bring ``ticket``'s SLA bookkeeping up to date in ``uow`` (the caller commits).

    Call it after adding or saving the ticket in the same unit of work. It pins the ticket to
    its policy if it is not pinned yet (saving it), records the SLA events its history now
    implies (e.g. `SlaMet` after a reply, `SlaBreached` after a priority raise), applies
    ``escalation`` to warnings and breaches, and stores the timer's next look.

    Raises:
        ValidationError: ``now`` is naive, or the ticket is not stored in ``uow``.
        ConcurrencyError: someone else changed the ticket or its timer meanwhile.
    """
    at = utc_datetime(now, "now")
    if not isinstance(ticket, Ticket):
        raise ValidationError("ticket", f"must be a Ticket, not {type(ticket).__name__}")
    if ticket.version == 0:
        raise ValidationError("ticket", "must be stored (uow.tickets.add) before it is tracked")
    try:
        timer = uow.sla_timers.get(ticket.id)
    except NotFound:
        timer = SlaTimer(id=ticket.id)
    ticket, events = _sync(uow, policies, ticket, timer, at, customer, escalation)
    return SlaTracking(ticket=ticket, timer=timer, events=tuple(events))


def _sync(
    uow: UnitOfWork,
    policies: SlaPolicies,
    ticket: Ticket,
    timer: SlaTimer,
    now: datetime,
    customer: Customer | None,
    escalation: Escalator | None,
) -> tuple[Ticket, list[DomainEvent]]:
    pinned = policies.apply(ticket, customer)
    changed = pinned is not ticket
    ticket = pinned
    fired = list(timer.fired)
    recorded: list[DomainEvent] = []
    for _ in range(4):  # an escalation may raise the priority, which may bring more events
        report = policies.evaluate(ticket, now, customer, explain=False)
        events = sla_events(report, fired)
        if not events:
            break
        fired.extend(fired_keys(events))
        recorded.extend(events)
        if escalation is None:
            continue
        for event in events:
            if isinstance(event, SlaWarning | SlaBreached):
                result = escalation.escalate(ticket, event, now, customer)
                if result.ticket != ticket:
                    ticket, changed = result.ticket, True
                recorded.extend(result.events)
    else:
        report = policies.evaluate(ticket, now, customer, explain=False)
    if changed:
        uow.tickets.save(ticket)
    uow.record(*recorded)
    timer.fired = tuple(fired)
    timer.next_check_at = next_check(report, fired)
    if timer.version == 0:
        uow.sla_timers.add(timer)
    else:
        uow.sla_timers.save(timer)
    return ticket, recorded


@attrs.frozen(kw_only=True)
class SlaRun:
    """What one `run_due` call did."""

    checked: int
    """Timers looked at (and committed)."""
    events: tuple[DomainEvent, ...]
    """Events recorded, in the order recorded."""
    conflicts: int
    """Batches retried because another runner or a user changed a timer or ticket first."""
    removed: int
    """Timers deleted because their ticket is gone."""


def run_due(
    crm: CRM,
    policies: SlaPolicies,
    now: datetime,
    *,
    tenant: str | None = None,
    batch_size: int = 200,
    escalation: Escalator | None = None,
    max_conflicts: int = 50,
    before_commit: Callable[[Sequence[DomainEvent]], None] | None = None,
) -> SlaRun:
    """Record every SLA event whose moment has come by ``now``, once, in batches of ``batch_size`` timers.

    Each batch is one unit of work: the events go to the outbox with the timers that remember
    them, so a batch that fails (a crash, or `ConcurrencyError` because another runner took the
    same timers first) leaves nothing behind and is simply looked at again. ``before_commit`` is
    called with each batch's events just before it commits (a test hook to simulate a crash).

    Raises:
        ValidationError: ``now`` is naive or ``batch_size`` is not positive.
        ConcurrencyError: more than ``max_conflicts`` batches had to be retried.
    """
    from crmcore.storage.base import DEFAULT_TENANT

    at = utc_datetime(now, "now")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
    with_customers = _needs_customer(policies, escalation)
    checked_count = removed = conflicts = 0
    recorded: list[DomainEvent] = []
    due = Field("next_check_at") <= at
    while True:
        try:
            with crm.unit_of_work(tenant or DEFAULT_TENANT) as uow:
                timers = uow.sla_timers.find(due, order_by=["next_check_at", "id"], limit=batch_size)
                if not timers:
                    break
                tickets = {t.id: t for t in uow.tickets.find(Field("id").in_([t.id for t in timers]))}
                customers: dict[str, Customer] = {}
                if with_customers:
                    ids = sorted({t.customer_id for t in tickets.values()})
                    customers = {c.id: c for c in uow.customers.find(Field("id").in_(ids))}
                batch: list[DomainEvent] = []
                gone = 0
                for timer in timers:
                    ticket = tickets.get(timer.id)
                    if ticket is None:
                        uow.sla_timers.delete(timer.id, expected_version=timer.version)
                        gone += 1
                        continue
                    customer = customers.get(ticket.customer_id)
                    batch.extend(_sync(uow, policies, ticket, timer, at, customer, escalation)[1])
                if before_commit is not None:
                    before_commit(batch)
                uow.commit()
        except ConcurrencyError:
            conflicts += 1
            if conflicts > max_conflicts:
                raise
            continue
        checked_count += len(timers)
        removed += gone
        recorded.extend(batch)
    return SlaRun(checked=checked_count, events=tuple(recorded), conflicts=conflicts, removed=removed)
