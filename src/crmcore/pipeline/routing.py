"""Lead routing: the right lead reaches the right rep at once, and untouched leads move on.

New leads get an owner from the shared assignment engine (`crmcore.assignment`), with rules over
`LEAD_FIELDS`. Leads their owner has not touched within a number of business hours (of a
`BusinessCalendar`) are routed again, never back to the same owner. Every decision records a
`LeadAssigned` event with the rule, queue, turn and reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import attrs

from crmcore.assignment import AssignmentConfig, AssignmentDecision, Roster, Router, assign
from crmcore.conditions import All, Any, Field
from crmcore.errors import ValidationError
from crmcore.events import DomainEvent
from crmcore.pipeline.lead import LEAD_FIELDS, Lead, LeadStatus
from crmcore.service.calendar import BusinessCalendar
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

__all__ = [
    "LeadAssigned",
    "LeadRouting",
    "lead_router",
    "reassign_untouched",
    "route_lead",
    "untouched_leads",
]

OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.WORKING)


@attrs.frozen(kw_only=True)
class LeadAssigned(DomainEvent):
    """Lead ``aggregate_id`` got ``owner`` (None: left unassigned), by ``rule`` through ``queue``.

    ``previous`` is the owner before (reassignment); ``reason`` says why, for people.
    """

    event_type: ClassVar[str] = "lead.assigned"
    owner: str | None
    previous: str | None = None
    rule: str | None = None
    queue: str | None = None
    turn: int | None = None
    reason: str = ""


def lead_router(config: AssignmentConfig) -> Router:
    """A `Router` over lead fields (conditions checked against `LEAD_FIELDS` now)."""
    return Router(config, LEAD_FIELDS)


@attrs.frozen(kw_only=True)
class LeadRouting:
    """What `route_lead` did: the lead as saved, the decision and the event recorded."""

    lead: Lead
    decision: AssignmentDecision
    event: LeadAssigned


def route_lead(
    uow: UnitOfWork, router: Router, lead: Lead, roster: Roster, now: datetime, *, note: str = ""
) -> LeadRouting:
    """Give ``lead`` an owner in ``uow`` (the caller commits): route, set ``owner`` and ``assigned_at``,
    save, record `LeadAssigned`.

    The lead must be stored already. The queue's rotation state is saved in ``uow`` too, so a
    lost race fails the whole unit of work with `ConcurrencyError`: run it again
    (`crmcore.assignment.assign_with_retry`). A decision without an owner leaves the lead as it
    was and still records the event with the reason. ``note`` is prefixed to the reason.

    Raises:
        ValidationError: ``now`` is naive, the lead is not stored, or ``router`` routes other subjects.
    """
    at = utc_datetime(now, "now")
    if not isinstance(lead, Lead):
        raise ValidationError("lead", f"must be a Lead, not {type(lead).__name__}")
    if lead.version == 0:
        raise ValidationError("lead", "must be stored (uow.leads.add) before it is routed")
    if router.fields is not LEAD_FIELDS:
        raise ValidationError("router", "routes other subjects: build it with lead_router(config)")
    decision = assign(uow, router, lead, roster, at)
    previous = lead.owner
    if decision.owner is not None:
        lead = attrs.evolve(lead, owner=decision.owner, assigned_at=at, last_touched_at=None)
        uow.leads.save(lead)
    event = LeadAssigned(
        aggregate_id=lead.id,
        occurred_at=at,
        owner=lead.owner,
        previous=previous,
        rule=decision.rule,
        queue=decision.queue,
        turn=decision.turn,
        reason=f"{note}{decision.reason}",
    )
    uow.record(event)
    return LeadRouting(lead=lead, decision=decision, event=event)


def _last_touch(lead: Lead) -> datetime | None:
    return lead.last_touched_at or lead.assigned_at


def untouched_leads(
    leads: Sequence[Lead], calendar: BusinessCalendar, within: timedelta, now: datetime
) -> list[Lead]:
    """The open, owned leads whose owner has not touched them for ``within`` of business time.

    A lead's last touch is ``last_touched_at``, else ``assigned_at``. Open means ``new`` or
    ``working``; converted, nurturing, qualified and disqualified leads stay where they are.

    Raises:
        ValidationError: a naive ``now`` or a non-positive ``within``.
    """
    at = utc_datetime(now, "now")
    if not isinstance(within, timedelta) or within <= timedelta(0):
        raise ValidationError("within", f"must be a positive timedelta, got {within!r}")
    out = []
    for lead in leads:
        last = _last_touch(lead)
        if lead.owner is None or lead.status not in OPEN_STATUSES or lead.converted or last is None:
            continue
        if last < at and calendar.between(last, at) >= within:
            out.append(lead)
    return out


def reassign_untouched(
    uow: UnitOfWork,
    router: Router,
    roster: Roster,
    calendar: BusinessCalendar,
    within: timedelta,
    now: datetime,
) -> list[LeadRouting]:
    """Route again every lead not touched within ``within`` business time, to someone else.

    Candidates are read with a wall-clock prefilter in the store (business time is never more
    than wall-clock time), then checked exactly with ``calendar``. The current owner is left
    out of the roster for their own lead. Everything happens in ``uow``; the caller commits.

    Raises:
        ValidationError: a naive ``now`` or a non-positive ``within``.
    """
    at = utc_datetime(now, "now")
    if not isinstance(within, timedelta) or within <= timedelta(0):
        raise ValidationError("within", f"must be a positive timedelta, got {within!r}")
    cutoff = at - within
    stale_touch = Any(
        Field("last_touched_at") <= cutoff,
        All(Field("last_touched_at").is_null(), Field("assigned_at") <= cutoff),
    )
    where = All(
        Field("status").in_([s.value for s in OPEN_STATUSES]),
        Field("owner").is_not_null(),
        Field("converted_at").is_null(),
        stale_touch,
    )
    candidates = uow.leads.find(where, order_by=["assigned_at", "id"])
    hours = within / timedelta(hours=1)
    routed = []
    for lead in untouched_leads(candidates, calendar, within, at):
        others = Roster(
            members=tuple(
                attrs.evolve(m, active=False) if m.user == lead.owner else m for m in roster.members
            ),
            loads=roster.loads,
        )
        note = f"not touched by {lead.owner!r} for {hours:g} business hours; "
        routed.append(route_lead(uow, router, lead, others, at, note=note))
    return routed
