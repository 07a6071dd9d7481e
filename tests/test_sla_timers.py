"""The SLA timer runner: each warning, breach and met event once, on every store, under races and crashes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crmcore.clock import FixedClock
from crmcore.errors import ValidationError
from crmcore.events import DomainEvent
from crmcore.facade import CRM
from crmcore.service import (
    EscalationAction,
    EscalationRule,
    EscalationRules,
    EscalationTrigger,
    SlaBreached,
    SlaEvent,
    SlaMet,
    SlaPolicies,
    SlaPolicy,
    SlaTarget,
    SlaWarning,
    Ticket,
    TicketPriority,
    TriggerKind,
    run_due,
    track_ticket,
)
from crmcore.storage.sql import SqlStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; the policies here run around the clock
POLICIES = SlaPolicies(
    policies=(
        SlaPolicy(
            name="standard",
            targets=(SlaTarget.hours("first_response", 1), SlaTarget.hours("resolution", 10)),
        ),
    )
)
HOUR = timedelta(hours=1)


def outbox(crm: CRM, tenant: str) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    position = 0
    with crm.unit_of_work(tenant) as uow:
        while batch := uow.events_since(position, 1000):
            events.extend(r.event for r in batch)
            position = batch[-1].position
    return events


def sla_keys(events: Sequence[DomainEvent]) -> list[tuple[str, str, str]]:
    return [(e.aggregate_id, e.cycle, e.event_type) for e in events if isinstance(e, SlaEvent)]


def open_tickets(crm: CRM, tenant: str, n: int) -> list[Ticket]:
    with crm.unit_of_work(tenant) as uow:
        tickets = [Ticket(customer_id="c1", subject=f"Ticket {i}", created_at=T0) for i in range(n)]
        for ticket in tickets:
            uow.tickets.add(ticket)
            track_ticket(uow, POLICIES, ticket, T0)
        uow.commit()
    return tickets


def test_runner_emits_warning_then_breach_at_their_moments_and_never_twice(any_crm: CRM, tenant: str) -> None:
    """Runs before, between and after the moments emit each event once, with the moment as its time."""
    [ticket] = open_tickets(any_crm, tenant, 1)
    assert run_due(any_crm, POLICIES, T0 + 30 * timedelta(minutes=1), tenant=tenant).events == ()
    first = run_due(any_crm, POLICIES, T0 + 50 * timedelta(minutes=1), tenant=tenant)
    assert [type(e) for e in first.events] == [SlaWarning] and first.checked == 1
    assert first.events[0].occurred_at == T0 + 48 * timedelta(minutes=1)
    second = run_due(any_crm, POLICIES, T0 + 9 * HOUR, tenant=tenant)
    assert [(type(e), e.metric.value) for e in second.events if isinstance(e, SlaEvent)] == [
        (SlaBreached, "first_response"),
        (SlaWarning, "resolution"),
    ]
    assert run_due(any_crm, POLICIES, T0 + 9 * HOUR, tenant=tenant).checked == 0
    stored = sla_keys(outbox(any_crm, tenant))
    assert len(stored) == len(set(stored)) == 3
    with any_crm.unit_of_work(tenant) as uow:
        timer = uow.sla_timers.get(ticket.id)
        assert timer.next_check_at == T0 + 10 * HOUR
        assert len(timer.fired) == 3


def test_tracking_a_reply_records_met_and_a_pause_stops_the_timer(any_crm: CRM, tenant: str) -> None:
    """A timely reply gives SlaMet at once; while pending no look is scheduled; resuming schedules one."""
    [ticket] = open_tickets(any_crm, tenant, 1)
    with any_crm.unit_of_work(tenant) as uow:
        t = uow.tickets.get(ticket.id).add_comment("a1", "On it", T0 + 20 * timedelta(minutes=1))
        t = t.change_status("pending", T0 + 30 * timedelta(minutes=1))
        uow.tickets.save(t)
        tracked = track_ticket(uow, POLICIES, t, T0 + 30 * timedelta(minutes=1))
        uow.commit()
    assert [type(e) for e in tracked.events] == [SlaMet]
    assert tracked.timer.next_check_at is None
    assert run_due(any_crm, POLICIES, T0 + 100 * HOUR, tenant=tenant).checked == 0
    with any_crm.unit_of_work(tenant) as uow:
        t = uow.tickets.get(ticket.id).change_status("open", T0 + 40 * HOUR)
        uow.tickets.save(t)
        tracked = track_ticket(uow, POLICIES, t, T0 + 40 * HOUR)
        uow.commit()
    # 30 minutes ran before the pause; 8 h of the 10 h (the warning) come 7 h 30 min after resuming.
    assert tracked.timer.next_check_at == T0 + 40 * HOUR + timedelta(hours=7, minutes=30)


def test_a_crash_before_commit_leaves_nothing_and_the_next_run_emits_once(any_crm: CRM, tenant: str) -> None:
    """A runner that dies before committing writes no event and no timer change; a rerun does it all once."""
    open_tickets(any_crm, tenant, 5)

    def crash(events: Sequence[DomainEvent]) -> None:
        raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        run_due(any_crm, POLICIES, T0 + 2 * HOUR, tenant=tenant, batch_size=2, before_commit=crash)
    assert sla_keys(outbox(any_crm, tenant)) == []
    run = run_due(any_crm, POLICIES, T0 + 2 * HOUR, tenant=tenant, batch_size=2)
    assert run.checked == 5 and len(run.events) == 10
    keys = sla_keys(outbox(any_crm, tenant))
    assert len(keys) == len(set(keys)) == 10


def _race(crms: list[CRM], tenant: str, now: datetime) -> list[int]:
    barrier = threading.Barrier(len(crms))
    conflicts: list[int] = []
    errors: list[BaseException] = []

    def runner(crm: CRM) -> None:
        try:
            barrier.wait()
            conflicts.append(
                run_due(crm, POLICIES, now, tenant=tenant, batch_size=7, max_conflicts=500).conflicts
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(crm,)) for crm in crms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return conflicts


def test_two_concurrent_runners_emit_each_event_exactly_once(any_crm: CRM, tenant: str) -> None:
    """Two runners racing over the same due timers record every warning and breach once between them.

    (SQLite serializes writers, so there one runner mostly waits; the outcome must be the same.)
    """
    open_tickets(any_crm, tenant, 60)
    _race([any_crm, any_crm], tenant, T0 + 2 * HOUR)
    keys = sla_keys(outbox(any_crm, tenant))
    assert len(keys) == 120 and len(set(keys)) == 120
    assert Counter(k[2] for k in keys) == {"ticket.sla_warning": 60, "ticket.sla_breached": 60}


def test_two_runners_in_separate_stores_on_postgres_emit_exactly_once(
    postgres_engine: Engine, tenant: str
) -> None:
    """Two CRMs (own connections) racing on PostgreSQL: conflicts are retried, no event is lost or doubled."""
    clock = FixedClock(T0)
    first = CRM(SqlStore(postgres_engine), clock=clock)
    first.create_schema()
    second = CRM(SqlStore(postgres_engine), clock=clock)
    open_tickets(first, tenant, 80)
    _race([first, second], tenant, T0 + 9 * HOUR)
    keys = sla_keys(outbox(first, tenant))
    # per ticket: first-response warning and breach, resolution warning
    assert len(keys) == 240 and len(set(keys)) == 240
    with first.unit_of_work(tenant) as uow:
        assert all(len(t.fired) == 3 for t in uow.sla_timers.iter_all())


def test_runner_looks_only_at_due_timers_and_drops_orphans(any_crm: CRM, tenant: str) -> None:
    """Timers not yet due are not read; a timer whose ticket is gone is deleted."""
    tickets = open_tickets(any_crm, tenant, 6)
    with any_crm.unit_of_work(tenant) as uow:
        uow.tickets.delete(tickets[0].id)
        for t in tickets[1:3]:
            stored = uow.tickets.get(t.id).add_comment("a1", "Hi", T0 + timedelta(minutes=5))
            uow.tickets.save(stored)
            track_ticket(uow, POLICIES, stored, T0 + timedelta(minutes=5))
        uow.commit()
    run = run_due(any_crm, POLICIES, T0 + 50 * timedelta(minutes=1), tenant=tenant)
    assert run.removed == 1
    assert run.checked == 4  # the three silent tickets' warnings and the orphan; replied ones wait for 8 h
    with any_crm.unit_of_work(tenant) as uow:
        assert not uow.sla_timers.exists(tickets[0].id)


def test_bad_input_is_refused(any_crm: CRM, tenant: str) -> None:
    """Unstored tickets, naive times and bad batch sizes raise ValidationError naming the argument."""
    with any_crm.unit_of_work(tenant) as uow:
        with pytest.raises(ValidationError, match="must be stored"):
            track_ticket(uow, POLICIES, Ticket(customer_id="c1", subject="x", created_at=T0), T0)
        with pytest.raises(ValidationError, match="now"):
            track_ticket(uow, POLICIES, Ticket(customer_id="c1", subject="x"), datetime(2026, 3, 2))
    with pytest.raises(ValidationError, match="batch_size"):
        run_due(any_crm, POLICIES, T0, tenant=tenant, batch_size=0)


def test_runner_applies_escalation_once_and_re_evaluates_the_raised_priority(
    any_crm: CRM, tenant: str
) -> None:
    """A first-response breach escalates once: the ticket moves to the leads team, priority goes up, a notice
    is recorded; a later run does not escalate again."""
    rules = EscalationRules(
        rules=(
            EscalationRule(
                name="breach to leads",
                triggers=(EscalationTrigger(kind=TriggerKind.BREACHED),),
                actions=(
                    EscalationAction.reassign(team="leads"),
                    EscalationAction.raise_priority(),
                    EscalationAction.notify(["team:leads"], "Ticket {ticket_id} breached {metric}"),
                ),
            ),
        )
    )
    [ticket] = open_tickets(any_crm, tenant, 1)
    run = run_due(any_crm, POLICIES, T0 + 2 * HOUR, tenant=tenant, escalation=rules)
    kinds = [type(e).__name__ for e in run.events]
    assert kinds.count("TicketEscalated") == 1 and kinds.count("EscalationNotice") == 1
    with any_crm.unit_of_work(tenant) as uow:
        stored = uow.tickets.get(ticket.id)
        assert (stored.team, stored.priority) == ("leads", TicketPriority.HIGH)
        assert stored.sla_policy == "standard"
    later = run_due(any_crm, POLICIES, T0 + 20 * HOUR, tenant=tenant, escalation=rules)
    assert [type(e).__name__ for e in later.events].count("TicketEscalated") == 1  # the resolution breach
    escalated = [e for e in outbox(any_crm, tenant) if type(e).__name__ == "TicketEscalated"]
    assert len(escalated) == 2 and len({e.event_id for e in escalated}) == 2
