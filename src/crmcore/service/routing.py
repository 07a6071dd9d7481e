"""Ticket routing: new tickets get an owner from the shared assignment engine (`crmcore.assignment`).

The rules, queues and strategies are the same ones leads use; this module only binds them to
tickets: conditions see `TICKET_FIELDS`, the decision sets ``assignee``, and a `TicketAssigned`
event records who got the ticket and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import attrs

from crmcore.assignment import AssignmentConfig, AssignmentDecision, Roster, Router, assign
from crmcore.errors import ValidationError
from crmcore.events import DomainEvent
from crmcore.service.ticket import TICKET_FIELDS, Ticket
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

__all__ = ["TicketAssigned", "TicketRouting", "route_ticket", "ticket_router"]


@attrs.frozen(kw_only=True)
class TicketAssigned(DomainEvent):
    """Ticket ``aggregate_id`` got ``assignee`` (None: left unassigned), by ``rule`` through ``queue``."""

    event_type: ClassVar[str] = "ticket.assigned"
    assignee: str | None
    previous: str | None = None
    rule: str | None = None
    queue: str | None = None
    turn: int | None = None
    reason: str = ""


def ticket_router(config: AssignmentConfig) -> Router:
    """A `Router` over ticket fields (conditions checked against `TICKET_FIELDS` now)."""
    return Router(config, TICKET_FIELDS)


@attrs.frozen(kw_only=True)
class TicketRouting:
    """What `route_ticket` did: the ticket as saved, the decision and the event recorded."""

    ticket: Ticket
    decision: AssignmentDecision
    event: TicketAssigned


def route_ticket(
    uow: UnitOfWork, router: Router, ticket: Ticket, roster: Roster, now: datetime
) -> TicketRouting:
    """Give ``ticket`` an owner in ``uow`` (the caller commits): route, set ``assignee``, save, record.

    The ticket must be stored already (add it in the same unit of work first). The queue's
    rotation state is saved in ``uow`` too, so a lost race fails the whole unit of work with
    `ConcurrencyError`; run it again (`crmcore.assignment.assign_with_retry`). A decision without
    an owner leaves the assignee as it was and still records the event, with the reason.

    Raises:
        ValidationError: ``now`` is naive, the ticket is not stored, or ``router`` routes other
            subjects than tickets.
        ConcurrencyError: another unit of work took the queue's turn, or changed the ticket, first.
    """
    at = utc_datetime(now, "now")
    if not isinstance(ticket, Ticket):
        raise ValidationError("ticket", f"must be a Ticket, not {type(ticket).__name__}")
    if ticket.version == 0:
        raise ValidationError("ticket", "must be stored (uow.tickets.add) before it is routed")
    if router.fields is not TICKET_FIELDS:
        raise ValidationError("router", "routes other subjects: build it with ticket_router(config)")
    decision = assign(uow, router, ticket, roster, at)
    previous = ticket.assignee
    if decision.owner is not None and decision.owner != previous:
        ticket = attrs.evolve(ticket, assignee=decision.owner)
        uow.tickets.save(ticket)
    event = TicketAssigned(
        aggregate_id=ticket.id,
        occurred_at=at,
        assignee=ticket.assignee,
        previous=previous,
        rule=decision.rule,
        queue=decision.queue,
        turn=decision.turn,
        reason=decision.reason,
    )
    uow.record(event)
    return TicketRouting(ticket=ticket, decision=decision, event=event)
