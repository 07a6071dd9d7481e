"""Ticket routing through the shared assignment engine: owners, events, fairness, bad input."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from crmcore.assignment import (
    AssignmentConfig,
    AssignmentRule,
    Member,
    Queue,
    Roster,
    Router,
    Strategy,
    Target,
    assign_with_retry,
)
from crmcore.conditions import All, Field
from crmcore.customers import CUSTOMER_FIELDS
from crmcore.errors import ValidationError
from crmcore.facade import CRM
from crmcore.service import Ticket, TicketAssigned, TicketPriority, route_ticket, ticket_router
from crmcore.storage.base import UnitOfWork

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CONFIG = AssignmentConfig(
    rules=(
        AssignmentRule(
            name="urgent", condition=Field("priority") == "urgent", target=Target.to_queue("tier2")
        ),
        AssignmentRule(name="rest", condition=All(), target=Target.to_queue("tier1")),
    ),
    queues=(
        Queue(name="tier1", members=("ann", "bob", "cy")),
        Queue(name="tier2", strategy=Strategy.LEAST_LOADED, members=("dan",)),
    ),
)
ROSTER = Roster(
    members=(Member(user="ann"), Member(user="bob"), Member(user="cy"), Member(user="dan", capacity=1))
)


def test_new_tickets_are_shared_round_robin_and_each_records_who_and_why(any_crm: CRM, tenant: str) -> None:
    """Nine tickets through tier1 give three each; each is saved with its owner and a TicketAssigned."""
    router = ticket_router(CONFIG)
    owners: list[str | None] = []
    for i in range(9):

        def work(uow: UnitOfWork, i: int = i) -> str | None:
            ticket = Ticket(customer_id="c1", subject=f"Question {i}", created_at=NOW)
            uow.tickets.add(ticket)
            return route_ticket(uow, router, ticket, ROSTER, NOW).ticket.assignee

        owners.append(assign_with_retry(any_crm, tenant, work))
    assert Counter(owners) == {"ann": 3, "bob": 3, "cy": 3}
    assert owners[:3] == ["ann", "bob", "cy"]  # never-assigned members by user id, then oldest turn
    with any_crm.unit_of_work(tenant) as uow:
        stored = Counter(t.assignee for t in uow.tickets.iter_all())
        events = [r.event for r in uow.events_since(0, 100)]
    assert stored == Counter(owners)
    assigned = [e for e in events if isinstance(e, TicketAssigned)]
    assert len(assigned) == 9 and {e.rule for e in assigned} == {"rest"}
    assert assigned[0].queue == "tier1" and assigned[0].turn == 1 and "round robin" in assigned[0].reason


def test_a_full_queue_leaves_the_ticket_unassigned_with_the_reason(any_crm: CRM, tenant: str) -> None:
    """Dan at capacity and no fallback: the urgent ticket keeps no owner, and the event says why."""
    router = ticket_router(CONFIG)
    busy = Roster(members=ROSTER.members, loads={"dan": 1})
    with any_crm.unit_of_work(tenant) as uow:
        ticket = Ticket(customer_id="c1", subject="Down!", priority=TicketPriority.URGENT, created_at=NOW)
        uow.tickets.add(ticket)
        routed = route_ticket(uow, router, ticket, busy, NOW)
        uow.commit()
    assert routed.ticket.assignee is None and not routed.decision.assigned
    assert routed.event.assignee is None and "'tier2' has nobody available" in routed.event.reason
    assert [(s.user, s.reason.value) for s in routed.decision.skipped] == [("dan", "at_capacity")]


def test_bad_input_is_refused(any_crm: CRM, tenant: str) -> None:
    """An unstored ticket, a naive now and a router over other fields are refused by name."""
    router = ticket_router(CONFIG)
    everyone = AssignmentRule(name="all", condition=All(), target=Target.to_user("ann"))
    customer_router = Router(AssignmentConfig(rules=(everyone,)), CUSTOMER_FIELDS)
    with any_crm.unit_of_work(tenant) as uow:
        with pytest.raises(ValidationError, match="must be stored"):
            route_ticket(uow, router, Ticket(customer_id="c1", subject="x"), ROSTER, NOW)
        ticket = Ticket(customer_id="c1", subject="x")
        uow.tickets.add(ticket)
        with pytest.raises(ValidationError, match="now"):
            route_ticket(uow, router, ticket, ROSTER, datetime(2026, 3, 2))
        with pytest.raises(ValidationError, match="ticket_router"):
            route_ticket(uow, customer_router, ticket, ROSTER, NOW)
