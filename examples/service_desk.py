"""A small service desk on a SQLite file: routing, SLA clocks, a timer run, escalation and metrics.

Run: ``python examples/service_desk.py``. Time is simulated (explicit ``now`` values), so the
output is the same on every run.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import crmcore
from crmcore.assignment import AssignmentConfig, AssignmentRule, Member, Queue, Roster, Target
from crmcore.conditions import All, Field
from crmcore.service import (
    AuthorRole,
    BusinessCalendar,
    EscalationAction,
    EscalationRule,
    EscalationRules,
    EscalationTrigger,
    HolidayRule,
    SlaPolicies,
    SlaPolicy,
    SlaTarget,
    Ticket,
    TicketPriority,
    TriggerKind,
    Weekday,
    WorkingHours,
    route_ticket,
    run_due,
    service_metrics,
    ticket_router,
    track_ticket,
)

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)

office = BusinessCalendar(
    timezone="Europe/Berlin",
    hours=tuple(WorkingHours(weekday=d, start="09:00", end="17:00") for d in list(Weekday)[:5]),
    holidays=(HolidayRule(country="DE"),),
)
policies = SlaPolicies(
    policies=(
        SlaPolicy(
            name="standard",
            calendar=office,
            targets=(SlaTarget.hours("first_response", 2), SlaTarget.hours("resolution", 8)),
        ),
    )
)
escalation = EscalationRules(
    rules=(
        EscalationRule(
            name="breaches go to the leads",
            triggers=(EscalationTrigger(kind=TriggerKind.BREACHED),),
            actions=(
                EscalationAction.reassign(team="leads"),
                EscalationAction.raise_priority(),
                EscalationAction.notify(["team:leads"], "{ticket_id} breached its {metric} target"),
            ),
        ),
    )
)
router = ticket_router(
    AssignmentConfig(
        rules=(AssignmentRule(name="everyone", condition=All(), target=Target.to_queue("support")),),
        queues=(Queue(name="support", members=("ann", "bob", "cy")),),
    )
)
roster = Roster(members=(Member(user="ann"), Member(user="bob", out_of_office=True), Member(user="cy")))


def main() -> None:
    """Open five tickets, answer some, run the SLA timers at noon and at the end of the day."""
    with tempfile.TemporaryDirectory() as folder:
        crm = crmcore.open(f"sqlite:///{Path(folder) / 'desk.db'}")
        subjects = ["Login fails", "Invoice wrong", "App crashes", "Password reset", "Refund?"]
        for i, subject in enumerate(subjects):
            opened = MONDAY + timedelta(minutes=20 * i)
            with crm.unit_of_work() as uow:
                ticket = Ticket(customer_id=f"c{i}", subject=subject, created_at=opened)
                uow.tickets.add(ticket)
                routed = route_ticket(uow, router, ticket, roster, opened)
                track_ticket(uow, policies, routed.ticket, opened)
                uow.commit()
            print(f"{subject:15} -> {routed.ticket.assignee}  ({routed.decision.reason})")

        replied = MONDAY + timedelta(hours=1)
        with crm.unit_of_work() as uow:
            for ticket in uow.tickets.find(Field("subject").in_(subjects[:2])):
                answered = ticket.add_comment(ticket.assignee or "ann", "On it!", replied)
                answered = answered.add_comment(
                    ticket.customer_id, "Thanks", replied, role=AuthorRole.CUSTOMER
                )
                uow.tickets.save(answered)
                track_ticket(uow, policies, answered, replied)
            uow.commit()

        for hour in (12, 18):
            now = MONDAY.replace(hour=hour)
            run = run_due(crm, policies, now, escalation=escalation)
            kinds = sorted({type(e).__name__ for e in run.events})
            print(f"timer run at {hour}:00 -> {len(run.events)} events {kinds}")

        evening = MONDAY.replace(hour=18)
        with crm.unit_of_work() as uow:
            tickets = list(uow.tickets.iter_all())
        report = policies.evaluate(tickets[2], evening)
        print(f"{tickets[2].subject}: {report.statuses[0].explain(office.timezone)}")
        escalated = sum(t.team == "leads" for t in tickets)
        urgent = sum(t.priority is TicketPriority.HIGH for t in tickets)
        print(f"escalated to leads: {escalated}, raised to high: {urgent}")
        metrics = service_metrics(
            tickets, evening, calendar=office, policies=policies, period="day", timezone="Europe/Berlin"
        )
        print(metrics.to_text())
        crm.close()


if __name__ == "__main__":
    main()
