"""The demo's customer-service sections: four weeks of tickets routed, timed, escalated and measured.

A simulation in two-hour ticks of simulated time, driven by a `FixedClock`: in each tick the
tickets that arrived are stored, routed (`route_ticket`) and tracked (`track_ticket`); what agents
and customers did to open tickets is applied, saved and tracked; then the SLA timer runner
(`run_due`) records the warnings and breaches whose moment has come, escalating them. Everything
goes through the public shell functions, so the report shows what a host would see.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

from crmcore._report import Report, n, short
from crmcore.assignment import (
    AssignmentConfig,
    AssignmentDecision,
    AssignmentRule,
    Member,
    Queue,
    Roster,
    Router,
    SkipReason,
    Strategy,
    Target,
)
from crmcore.clock import FixedClock
from crmcore.conditions import All, Field
from crmcore.customers import Customer
from crmcore.demo_data import DEMO_NOW, SUPPORT_HOURS, StepKind, TicketFlow, TicketStep, generate_tickets
from crmcore.events import DomainEvent
from crmcore.facade import CRM
from crmcore.service import (
    BusinessCalendar,
    EscalationAction,
    EscalationNotice,
    EscalationRule,
    EscalationRules,
    EscalationTrigger,
    PeriodMetrics,
    SatisfactionSurvey,
    SlaBreached,
    SlaMet,
    SlaMetric,
    SlaPolicies,
    SlaPolicy,
    SlaRun,
    SlaState,
    SlaStatus,
    SlaTarget,
    SlaWarning,
    Ticket,
    TicketEscalated,
    TicketPriority,
    TriggerKind,
    route_ticket,
    run_due,
    service_metrics,
    service_metrics_from_store,
    ticket_router,
    track_ticket,
)
from crmcore.storage.base import UnitOfWork

__all__ = ["ServiceDesk", "service_desk_section", "service_metrics_section"]

BERLIN = ZoneInfo("Europe/Berlin")
WEEKS = 4
START = datetime(2025, 6, 2, tzinfo=BERLIN).astimezone(DEMO_NOW.tzinfo)
"""Monday 2 June 2025, 00:00 in Berlin: four weeks of tickets arrive from here to Sunday 29 June."""
ARRIVALS_END = START + timedelta(weeks=WEEKS)
TICK = timedelta(hours=2)
CUSTOMERS_PER_TICKET = 6
"""One ticket per six customers: 500 tickets at the demo's default size."""
OPEN = ("new", "open", "pending", "on_hold")
AWAY = ("eli", datetime(2025, 6, 10, tzinfo=BERLIN), datetime(2025, 6, 21, tzinfo=BERLIN))
"""One agent on leave for two weeks: round robin skips them."""

OFFICE = SUPPORT_HOURS
AROUND_THE_CLOCK = BusinessCalendar.always_open("Europe/Berlin")

_BY_PRIORITY = {  # first response, next response, resolution, in business hours
    TicketPriority.URGENT: (1, 2, 8),
    TicketPriority.HIGH: (2, 4, 16),
    TicketPriority.NORMAL: (4, 8, 24),
    TicketPriority.LOW: (8, 16, 40),
}
_METRICS = (SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE, SlaMetric.RESOLUTION)

POLICIES = SlaPolicies(
    policies=(
        SlaPolicy(
            name="urgent",
            condition=Field("priority") == "urgent",
            calendar=AROUND_THE_CLOCK,
            targets=tuple(SlaTarget.hours(m, h) for m, h in zip(_METRICS, (1, 2, 8), strict=True)),
            description="Urgent tickets: on call around the clock.",
        ),
        SlaPolicy(
            name="vip",
            condition=Field("customer_tags").contains("vip"),
            calendar=OFFICE,
            targets=tuple(SlaTarget.hours(m, h) for m, h in zip(_METRICS, (2, 4, 16), strict=True)),
            description="Customers tagged vip, in office hours.",
        ),
        SlaPolicy(
            name="standard",
            calendar=OFFICE,
            targets=tuple(
                SlaTarget.hours(m, h, p)
                for p, hours in _BY_PRIORITY.items()
                for m, h in zip(_METRICS, hours, strict=True)
            ),
            description="Everyone else, in office hours, by priority.",
        ),
    )
)

_STILL_OPEN = Field("status").in_(list(OPEN))
_BREACHED = EscalationTrigger(kind=TriggerKind.BREACHED)
ESCALATION = EscalationRules(
    rules=(
        EscalationRule(
            name="urgent breach",
            triggers=(_BREACHED,),
            condition=(Field("priority") == "urgent") & (Field("team") != "leads") & _STILL_OPEN,
            actions=(
                EscalationAction.notify(
                    ["assignee"], "{ticket_id} goes to the leads: {metric} was due {due_at}"
                ),
                EscalationAction.reassign(team="leads"),
                EscalationAction.add_tags("escalated"),
                EscalationAction.notify(
                    ["team", "user:head-of-support"],
                    "Urgent {ticket_id} ({subject}) breached its {metric} target",
                ),
            ),
        ),
        EscalationRule(
            name="vip breach",
            triggers=(_BREACHED,),
            condition=Field("customer_tags").contains("vip") & (Field("team") != "leads") & _STILL_OPEN,
            actions=(
                EscalationAction.reassign(team="leads"),
                EscalationAction.raise_priority(),
                EscalationAction.add_tags("escalated"),
                EscalationAction.notify(["team"], "VIP ticket {ticket_id} breached {metric}; now {priority}"),
            ),
        ),
        EscalationRule(
            name="late first response",
            triggers=(EscalationTrigger(kind=TriggerKind.BREACHED, metric=SlaMetric.FIRST_RESPONSE),),
            condition=_STILL_OPEN,
            actions=(
                EscalationAction.raise_priority(),
                EscalationAction.notify(["assignee"], "{ticket_id} waits for a first answer, now {priority}"),
            ),
        ),
        EscalationRule(
            name="resolution warning",
            triggers=(EscalationTrigger(kind=TriggerKind.WARNING, metric=SlaMetric.RESOLUTION),),
            condition=_STILL_OPEN,
            actions=(EscalationAction.notify(["assignee"], "{ticket_id} must be solved by {due_at}"),),
        ),
    )
)

ROUTING = AssignmentConfig(
    rules=(
        AssignmentRule(name="escalated", condition=Field("team") == "leads", target=Target.to_queue("leads")),
        AssignmentRule(
            name="urgent", condition=Field("priority") == "urgent", target=Target.to_queue("tier2")
        ),
        AssignmentRule(
            name="billing", condition=Field("team") == "billing", target=Target.to_queue("billing")
        ),
        AssignmentRule(name="everything else", condition=All(), target=Target.to_queue("support")),
    ),
    queues=(
        Queue(name="support", members=("ana", "ben", "chen", "eli")),
        Queue(name="billing", members=("fay", "gus")),
        Queue(name="tier2", strategy=Strategy.LEAST_LOADED, members=("hana", "ivo")),
        Queue(name="leads", strategy=Strategy.LEAST_LOADED, members=("lea", "max")),
    ),
    fallback=Target.to_user("lea"),
)
_LEAST_LOADED = ("hana", "ivo", "lea", "max")


@attrs.define
class ServiceDesk:
    """What the simulation did, for the report and the metrics section."""

    tickets: int = 0
    writers: int = 0
    """Customers who wrote in."""
    original: dict[str, TicketPriority] = attrs.field(factory=dict)
    """Each ticket's priority when it arrived (escalations raise some)."""
    steps: int = 0
    routed: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    """(queue, agent) -> tickets routed on arrival."""
    rerouted: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    """(queue, agent) -> tickets routed again after an escalation."""
    skipped: Counter[tuple[str, SkipReason]] = attrs.field(factory=Counter)
    skip_example: str = ""
    events: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    """(source, event_type) -> events recorded."""
    keys: Counter[tuple[str, str, str]] = attrs.field(factory=Counter)
    """(ticket, cycle, kind) -> SLA events, to show each fired once."""
    runs: list[tuple[datetime, SlaRun]] = attrs.field(factory=list)
    rules: Counter[str] = attrs.field(factory=Counter)
    changes: Counter[str] = attrs.field(factory=Counter)
    notices: int = 0
    recipients: Counter[str] = attrs.field(factory=Counter)
    rerun: SlaRun | None = None
    seconds: float = 0.0


class _Simulation:
    """The moving parts of one run: the store, the clock, the router and what happened so far.

    Like a host's worker, it keeps the tickets as it saved them last (``tickets``) and reads again
    only those the timer runner changed (escalations); a copy it missed would fail its next save
    with `ConcurrencyError` instead of overwriting the change. ``loads`` counts open tickets per
    agent for the least-loaded queues, kept up to date as tickets are routed, solved and escalated.
    """

    def __init__(self, crm: CRM, tenant: str, clock: FixedClock, customers: Sequence[Customer]) -> None:
        self.crm, self.tenant, self.clock = crm, tenant, clock
        self.router: Router = ticket_router(ROUTING)
        self.customers = {c.id: c for c in customers}
        self.desk = ServiceDesk()
        self.tickets: dict[str, Ticket] = {}
        self.surveys: dict[str, SatisfactionSurvey] = {}
        self.loads: Counter[str] = Counter()

    def roster(self, at: datetime) -> Roster:
        user, away_from, away_until = AWAY
        members = tuple(
            Member(user=u, out_of_office=u == user and away_from <= at < away_until)
            for q in ROUTING.queues
            for u in q.members
        )
        return Roster(members=members, loads={u: self.loads[u] for u in _LEAST_LOADED})

    def held(self, before: Ticket | None, after: Ticket) -> None:
        """Move ``loads`` from who held ``before`` open to who holds ``after`` open."""
        if before is not None and before.assignee is not None and before.is_open:
            self.loads[before.assignee] -= 1
        if after.assignee is not None and after.is_open:
            self.loads[after.assignee] += 1

    def route(self, uow: UnitOfWork, ticket: Ticket, at: datetime, *, again: bool) -> Ticket:
        self.clock.set(at)
        routing = route_ticket(uow, self.router, ticket, self.roster(at), at)
        decision: AssignmentDecision = routing.decision
        owner = decision.owner or "-"
        (self.desk.rerouted if again else self.desk.routed)[(decision.queue or "fallback", owner)] += 1
        for skip in decision.skipped:
            self.desk.skipped[(skip.user, skip.reason)] += 1
            if not self.desk.skip_example:
                self.desk.skip_example = f"{decision.reason}; skipped {skip.user!r}: {skip.detail}"
        self.held(ticket, routing.ticket)
        self.note("route_ticket", [routing.event])
        return routing.ticket

    def track(self, uow: UnitOfWork, ticket: Ticket, at: datetime) -> Ticket:
        self.clock.set(at)
        tracking = track_ticket(
            uow, POLICIES, ticket, at, customer=self.customers.get(ticket.customer_id), escalation=ESCALATION
        )
        self.held(ticket, tracking.ticket)
        self.note("track_ticket", tracking.events)
        return tracking.ticket

    def note(self, source: str, events: Iterable[DomainEvent]) -> None:
        desk = self.desk
        for event in events:
            desk.events[(source, event.event_type)] += 1
            if isinstance(event, SlaWarning | SlaBreached | SlaMet):
                kind = {SlaWarning: "warning", SlaBreached: "breached", SlaMet: "met"}[type(event)]
                desk.keys[(event.aggregate_id, event.cycle, kind)] += 1
            elif isinstance(event, TicketEscalated):
                desk.rules[event.rule] += 1
                desk.changes.update(c.field for c in event.changes)
            elif isinstance(event, EscalationNotice):
                desk.notices += 1
                desk.recipients.update(r.split(":")[0] for r in event.recipients)

    def tick(self, arriving: Sequence[TicketFlow], steps: dict[str, list[TicketStep]]) -> None:
        """Store, route and track what happened in one tick; one unit of work."""
        with self.crm.unit_of_work(self.tenant) as uow:
            if arriving:
                # pinned to their SLA policy before they are stored: one save less per ticket
                fresh = [POLICIES.apply(f.ticket, self.customers.get(f.ticket.customer_id)) for f in arriving]
                fresh = [
                    attrs.evolve(t) if t is f.ticket else t for t, f in zip(fresh, arriving, strict=True)
                ]
                uow.tickets.bulk_add(fresh)
                self.tickets.update((t.id, t) for t in fresh)
            new = {f.ticket.id for f in arriving}
            moments = sorted(
                [(_created(f), f.ticket.id) for f in arriving]
                + [(s[0].at, i) for i, s in steps.items() if i not in new]
            )
            for at, ticket_id in moments:
                ticket = self.tickets[ticket_id]
                if ticket_id in new:
                    ticket = self.route(uow, ticket, at, again=False)
                    if ticket_id not in steps:
                        self.tickets[ticket_id] = self.track(uow, ticket, at)
                        continue
                self.tickets[ticket_id] = self.play(uow, ticket, steps[ticket_id])
            uow.commit()

    def play(self, uow: UnitOfWork, ticket: Ticket, steps: list[TicketStep]) -> Ticket:
        before = ticket
        for step in steps:
            self.desk.steps += 1
            if step.kind is StepKind.SURVEY:
                self.surveys[step.id] = uow.surveys.add(step.survey(ticket))
            elif step.kind is StepKind.ANSWER:
                assert step.score is not None
                uow.surveys.save(self.surveys.pop(step.id).answer(step.score, step.at))
            else:
                if ticket.assignee is None and step.kind is not StepKind.CUSTOMER:
                    ticket = before = self.route(uow, ticket, step.at, again=True)
                ticket = step.apply(ticket, ticket.assignee or "lea")
        if ticket == before:  # only surveys: the ticket and its SLA clocks are as they were
            return ticket
        self.clock.set(steps[-1].at)
        self.held(before, ticket)
        uow.tickets.save(ticket)
        return self.track(uow, ticket, steps[-1].at)

    def run(self, at: datetime) -> None:
        """The SLA timer runner at ``at``, then the leads' queue takes what was escalated to it."""
        self.clock.set(at)
        run = run_due(self.crm, POLICIES, at, tenant=self.tenant, escalation=ESCALATION)
        self.desk.runs.append((at, run))
        self.note("run_due", run.events)
        changed = sorted({e.aggregate_id for e in run.events if isinstance(e, TicketEscalated) and e.changes})
        if not changed:
            return
        with self.crm.unit_of_work(self.tenant) as uow:
            for ticket in uow.tickets.find(Field("id").in_(changed), order_by=["id"]):
                self.held(self.tickets.get(ticket.id), ticket)
                if ticket.assignee is None and ticket.is_open:
                    ticket = self.route(uow, ticket, at, again=True)
                self.tickets[ticket.id] = ticket
            uow.commit()


def _simulate(crm: CRM, tenant: str, clock: FixedClock, seed: int) -> ServiceDesk:
    with crm.unit_of_work(tenant) as uow:
        customers = list(uow.customers.iter_all())
    flows = generate_tickets(
        customers, max(1, len(customers) // CUSTOMERS_PER_TICKET), seed=seed, start=START, end=ARRIVALS_END
    )
    sim = _Simulation(crm, tenant, clock, customers)
    sim.desk.tickets = len(flows)
    sim.desk.writers = len({f.ticket.customer_id for f in flows})
    sim.desk.original = {f.ticket.id: f.ticket.priority for f in flows}
    agenda = sorted(
        ((s.at, f.ticket.id, i) for f in flows for i, s in enumerate(f.steps) if s.at < DEMO_NOW),
        key=lambda x: (x[0], x[1], x[2]),
    )
    by_id = {f.ticket.id: f for f in flows}
    ticks = [START + TICK * k for k in range(1, (DEMO_NOW - START) // TICK + 1)]
    if ticks[-1] < DEMO_NOW:
        ticks.append(DEMO_NOW)
    arrived = played = 0
    for at in ticks:
        first = arrived
        while arrived < len(flows) and _created(flows[arrived]) < at:
            arrived += 1
        steps: dict[str, list[TicketStep]] = defaultdict(list)
        while played < len(agenda) and agenda[played][0] < at:
            _, ticket_id, index = agenda[played]
            steps[ticket_id].append(by_id[ticket_id].steps[index])
            played += 1
        if arrived > first or steps:
            sim.tick(flows[first:arrived], steps)
        sim.run(at)
    clock.set(DEMO_NOW)
    sim.desk.rerun = run_due(crm, POLICIES, DEMO_NOW, tenant=tenant, escalation=ESCALATION)
    return sim.desk


def _created(flow: TicketFlow) -> datetime:
    assert flow.ticket.created_at is not None
    return flow.ticket.created_at


def _local(at: datetime | None, fmt: str = "%a %d %b %H:%M") -> str:
    """``at`` on Berlin's wall clock, where the office is."""
    return "-" if at is None else at.astimezone(BERLIN).strftime(fmt)


def _hours(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = round(value / timedelta(minutes=1))
    days, rest = divmod(minutes, 24 * 60)
    if days:
        return f"{days}d {rest // 60:02d}h"
    return f"{rest // 60}h {rest % 60:02d}m"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _wrap(report: Report, text: str, indent: int) -> None:
    for part in textwrap.wrap(text, 78 - indent):
        report.line(" " * indent + part)


def service_desk_section(crm: CRM, tenant: str, seed: int, clock: FixedClock, report: Report) -> ServiceDesk:
    """Simulate four weeks of support; show calendars, policies, routing, the timer runner, escalation."""
    started = time.perf_counter()
    desk = _simulate(crm, tenant, clock, seed)
    desk.seconds = time.perf_counter() - started
    report.section("Service desk: routing, SLA clocks and escalation")
    _wrap(
        report,
        f"Four weeks of support, simulated: {n(desk.tickets)} tickets from {n(desk.writers)} customers "
        f"arrive from {_local(START, '%a %d %b')} to {_local(ARRIVALS_END - TICK, '%a %d %b %Y')} "
        "(generate_tickets; VIPs write three times as often). Agents reply in office hours, ask for "
        "details (the ticket waits, pending), customers follow up, tickets are solved, a few reopened, "
        "surveys go out. A FixedClock moves in 2-hour ticks: each tick stores the new tickets, routes "
        f"(route_ticket) and tracks (track_ticket) them, saves and tracks every change ({n(desk.steps)} "
        "in all), then runs the SLA timer runner (run_due).",
        2,
    )
    _calendars(report)
    _policies(report)
    _routing(desk, report)
    _runner(desk, report)
    _escalations(desk, report)
    _late_ticket(crm, tenant, desk, report)
    with crm.unit_of_work(tenant) as uow:
        stored = [
            ("tickets", uow.tickets.count()),
            ("surveys", uow.surveys.count()),
            ("SLA timers", uow.sla_timers.count()),
            ("queue states", uow.assignment_queues.count()),
        ]
    report.line()
    report.line("  Stored: " + ", ".join(f"{n(count)} {what}" for what, count in stored) + ";")
    report.line(
        f"  {n(sum(desk.events.values()))} events recorded to the outbox. Simulated in {desk.seconds:.2f} s."
    )
    return desk


def _calendars(report: Report) -> None:
    report.line()
    report.line("  Business calendars: SLA clocks count only the time their calendar is open.")
    days = [START.date() + timedelta(days=d) for d in range(7 * WEEKS)]
    closed = ", ".join(d.strftime("%a %d %b") for d in days if d.weekday() < 5 and not OFFICE.hours_on(d))
    report.line("    office  Europe/Berlin, Mon-Fri 09:00-18:00, public holidays of DE-BE")
    report.line(f"            (closed on {closed or 'no weekday'} in these weeks)")
    report.line('    24x7    BusinessCalendar.always_open("Europe/Berlin"), for urgent tickets')
    report.line("    office.add(start, duration), the due time:")
    for start, hours, why in (
        (datetime(2025, 6, 6, 16, 0, tzinfo=BERLIN), 4, "weekend, Whit Monday"),
        (datetime(2025, 6, 11, 7, 30, tzinfo=BERLIN), 10, "the night"),
    ):
        due = OFFICE.add(start, timedelta(hours=hours))
        report.line(f"      {_local(start)} + {hours:>2}h = {_local(due)}  (skips {why})")


def _policies(report: Report) -> None:
    report.line()
    report.line("  SLA policies; the first that matches pins a ticket when it is first tracked:")
    when = {"urgent": "priority is urgent", "vip": "customer tagged vip", "standard": "every other ticket"}
    rows = []
    for policy in POLICIES.policies:
        priorities = [p for p in reversed(TicketPriority) if policy.target_for(SlaMetric.RESOLUTION, p)]
        distinct = {tuple(policy.target_for(m, p) for m in _METRICS) for p in priorities}
        shown: list[TicketPriority | None] = [None] if len(distinct) == 1 else list(priorities)
        for i, priority in enumerate(shown):
            targets = [policy.target_for(m, priority or TicketPriority.NORMAL) for m in _METRICS]
            rows.append(
                [
                    policy.name if i == 0 else "",
                    when[policy.name] if i == 0 else "",
                    ("24x7" if policy.calendar == AROUND_THE_CLOCK else "office") if i == 0 else "",
                    "any" if priority is None else priority.value,
                    *(f"{t.minutes // 60}h" if t else "-" for t in targets),
                ]
            )
    report.table(
        ["policy", "applies to", "clock", "priority", "1st reply", "next", "solve"], rows, "llllrrr", indent=4
    )
    report.line('    vip: Field("customer_tags").contains("vip"), a condition on the customer.')
    report.line("    Clocks pause while a ticket waits on the customer (pending); warn at 80%.")


_CONDITIONS = {
    "escalated": 'Field("team") == "leads"',
    "urgent": 'Field("priority") == "urgent"',
    "billing": 'Field("team") == "billing"',
    "everything else": "All()",
}


def _routing(desk: ServiceDesk, report: Report) -> None:
    report.line()
    report.line("  Routing: route_ticket(uow, router, ticket, roster, now), where router is")
    report.line("  ticket_router(AssignmentConfig(...)); the first rule that matches wins:")
    queues = {q.name: q for q in ROUTING.queues}
    report.table(
        ["rule", "condition", "queue", "strategy"],
        [
            [
                r.name,
                _CONDITIONS[r.name],
                r.target.queue or "",
                queues[r.target.queue or ""].strategy.value.replace("_", " "),
            ]
            for r in ROUTING.rules
        ],
        "llll",
        indent=4,
    )
    report.line()
    rows = [
        [
            queue.name,
            member,
            n(desk.routed[(queue.name, member)]),
            n(desk.rerouted[(queue.name, member)]),
            n(desk.skipped[(member, SkipReason.OUT_OF_OFFICE)]),
        ]
        for queue in ROUTING.queues
        for member in queue.members
    ]
    away = sum(count for (_, reason), count in desk.skipped.items() if reason is SkipReason.OUT_OF_OFFICE)
    rows.append(["all", "", n(sum(desk.routed.values())), n(sum(desk.rerouted.values())), n(away)])
    report.table(["queue", "agent", "on arrival", "escalated", "skipped (away)"], rows, "llrrr", indent=4)
    user, away_from, away_until = AWAY
    _wrap(
        report,
        f"{user} is on leave from {_local(away_from, '%a %d %b')} to "
        f"{_local(away_until - timedelta(days=1), '%a %d %b')} (Member(out_of_office=True) in the roster): "
        f"round robin passes {user} over and the others share the turns. A decision's reason, as the "
        "TicketAssigned event records it:",
        4,
    )
    _wrap(report, f'"{desk.skip_example}"', 6)


_EVENT_ROWS = (
    ("ticket.sla_warning", "SlaWarning"),
    ("ticket.sla_breached", "SlaBreached"),
    ("ticket.sla_met", "SlaMet"),
    ("ticket.escalated", "TicketEscalated"),
    ("ticket.escalation_notice", "EscalationNotice"),
)


def _runner(desk: ServiceDesk, report: Report) -> None:
    report.line()
    _wrap(
        report,
        "SLA events: track_ticket records those a change brings (a reply meets its target), run_due "
        f"those whose moment came while nobody touched the ticket. run_due ran {n(len(desk.runs))} times, "
        "every 2 hours of simulated time; each event is recorded once, by whichever comes first.",
        2,
    )
    rows = []
    for event_type, name in _EVENT_ROWS:
        by_track = desk.events[("track_ticket", event_type)]
        by_run = desk.events[("run_due", event_type)]
        rows.append([name, n(by_track), n(by_run), n(by_track + by_run)])
    report.table(["event", "track_ticket", "run_due", "total"], rows, "lrrr", indent=4)
    twice = sum(count - 1 for count in desk.keys.values() if count > 1)
    report.leader(
        "  SLA events / distinct (ticket, clock, kind)", f"{n(sum(desk.keys.values()))} / {n(len(desk.keys))}"
    )
    report.leader("  recorded twice", n(twice))
    rerun = desk.rerun
    assert rerun is not None
    report.leader(
        f"  run_due again at {_local(DEMO_NOW)}",
        f"{n(rerun.checked)} timers due, {n(len(rerun.events))} events",
    )
    per_day: dict[date, list[tuple[datetime, SlaRun]]] = defaultdict(list)
    for at, run in desk.runs:
        per_day[at.astimezone(BERLIN).date()].append((at, run))
    day, runs = max(per_day.items(), key=lambda kv: (sum(len(r.events) for _, r in kv[1]), kv[0]))
    if not any(run.checked for _, run in runs):
        return
    report.line()
    report.line(f"  The runner's busiest day, {day:%a %d %b} (runs with nothing due left out):")

    def count(run: SlaRun, kind: type[DomainEvent]) -> str:
        return n(sum(1 for e in run.events if isinstance(e, kind)))

    report.table(
        ["run_due at", "timers due", "warnings", "breaches", "escalations", "notices"],
        [
            [
                _local(at, "%H:%M"),
                n(run.checked),
                count(run, SlaWarning),
                count(run, SlaBreached),
                count(run, TicketEscalated),
                count(run, EscalationNotice),
            ]
            for at, run in runs
            if run.checked
        ],
        "lrrrrr",
        indent=4,
    )


_RULE_ACTIONS = {
    "urgent breach": "tell assignee, reassign(team=leads), tag, notify leads+head",
    "vip breach": "reassign(team=leads), raise priority, tag, notify leads",
    "late first response": "raise priority, notify assignee",
    "resolution warning": "notify assignee",
}
_RULE_TRIGGERS = {
    "urgent breach": "breach, urgent",
    "vip breach": "breach, VIP",
    "late first response": "1st reply breach",
    "resolution warning": "resolve warning",
}


def _escalations(desk: ServiceDesk, report: Report) -> None:
    report.line()
    report.line("  Escalation rules (first match wins; open tickets only) act on every warning")
    report.line("  and breach, in the unit of work that records it:")
    report.table(
        ["rule", "on", "times"],
        [[r.name, _RULE_TRIGGERS[r.name], n(desk.rules[r.name])] for r in ESCALATION.rules],
        "llr",
        indent=4,
    )
    for rule in ESCALATION.rules:
        report.line(f"    {rule.name}: {_RULE_ACTIONS[rule.name]}")
    changes = ", ".join(f"{field} {n(count)}" for field, count in sorted(desk.changes.items()))
    report.line("    fields changed (TicketEscalated.changes):")
    report.line(f"      {changes or 'none'}")
    recipients = ", ".join(f"{kind} {n(count)}" for kind, count in sorted(desk.recipients.items()))
    report.line(f"    notices for the host to deliver (EscalationNotice): {n(desk.notices)}")
    report.line(
        f"    (recipients: {recipients or 'none'}); routed to the leads: {n(sum(desk.rerouted.values()))}"
    )


def _late_ticket(crm: CRM, tenant: str, desk: ServiceDesk, report: Report) -> None:
    """Explain one ticket whose resolution clock is breached: what counted, what was paused."""
    with crm.unit_of_work(tenant) as uow:
        tickets = sorted(uow.tickets.iter_all(), key=lambda t: t.id)
        ids = sorted({t.customer_id for t in tickets})
        customers = {c.id: c for c in uow.customers.find(Field("id").in_(ids))} if ids else {}
    reports = POLICIES.evaluate_many(tickets, DEMO_NOW, customers)
    best: tuple[tuple[bool, bool, bool, bool, int], Ticket, SlaStatus] | None = None
    for ticket, quick in zip(tickets, reports, strict=True):
        resolution = quick.status(SlaMetric.RESOLUTION)
        if resolution is None or resolution.state is not SlaState.BREACHED:
            continue
        status = POLICIES.evaluate(ticket, DEMO_NOW, customers.get(ticket.customer_id)).status(
            SlaMetric.RESOLUTION
        )
        assert status is not None
        # the clearest example: in office hours, paused a while, in a few stretches
        score = (
            ticket.sla_policy != "urgent",
            bool(status.paused),
            3 <= len(status.counted) <= 5,
            desk.original.get(ticket.id) is ticket.priority,
            -len(status.counted),
        )
        if best is None or score > best[0]:
            best = (score, ticket, status)
    if best is None:
        return
    _, ticket, status = best
    customer = customers.get(ticket.customer_id)
    name = ticket.customer_id if customer is None else short(customer.name, 30)
    vip = customer is not None and "vip" in customer.tags
    report.line()
    report.line("  Why is a ticket late? Ask its SLA status to explain itself:")
    report.line('    POLICIES.evaluate(ticket, now, customer).status("resolution").explain("Europe/Berlin")')
    priority = ticket.priority.value
    original = desk.original.get(ticket.id)
    if original is not None and original is not ticket.priority:
        priority += f" (raised from {original.value} by escalation)"
    report.line(f"    {ticket.subject!r} from {name}{' (VIP)' if vip else ''}")
    report.line(f"    priority {priority}, policy {ticket.sla_policy!r}")
    report.line(f"    created {_local(ticket.created_at)}, solved {_local(ticket.solved_at)}:")
    _wrap(report, status.explain("Europe/Berlin"), 6)
    report.line("    business time counted:")
    for span in status.counted:
        report.line(
            f"      {_local(span.start)}-{_local(span.end, '%H:%M')}  {_hours(span.end - span.start):>7}"
        )
    for pause in status.paused:
        report.line(f"    paused, {pause.status}: {_local(pause.start)} to {_local(pause.end)}")
    report.line("    Nothing counts at night, at weekends or on public holidays either.")


def service_metrics_section(crm: CRM, tenant: str, report: Report) -> None:
    """Weekly, per-team and per-priority service metrics of the simulated weeks, read from the store."""
    report.section("Service metrics: response, resolution, SLA attainment, CSAT, backlog")
    started = time.perf_counter()
    with crm.unit_of_work(tenant) as uow:
        weekly = service_metrics_from_store(
            uow,
            DEMO_NOW,
            since=START,
            period="week",
            timezone="Europe/Berlin",
            policies=POLICIES,
            calendar=OFFICE,
            resolution_within=timedelta(hours=24),
        )
        tickets = list(uow.tickets.iter_all())
        surveys = list(uow.surveys.iter_all())
    grouped = {
        field: service_metrics(
            tickets,
            DEMO_NOW,
            surveys=surveys,
            since=START,
            period="quarter",  # the four weeks lie in one quarter: one row per group
            timezone="Europe/Berlin",
            group_by=(field,),
            policies=POLICIES,
            calendar=OFFICE,
        )
        for field in ("team", "priority")
    }
    elapsed = time.perf_counter() - started
    _wrap(
        report,
        'service_metrics_from_store(uow, now, since=START, period="week", policies=POLICIES, ...). '
        "Medians are business time as the SLA clocks count it (pending left out); SLA is "
        "met / (met + breached) for the clocks that stopped in the week; CSAT is the average score (1-5).",
        2,
    )
    report.line()
    heads = ["new", "solved", "1st reply", "resolve", "SLA 1st", "SLA res", "reopen", "CSAT"]
    align = "l" + "r" * len(heads)
    rows = [[p.period or "", *_cells(p)] for p in weekly.periods]
    report.table(["week", *heads], [*rows, ["total", *_cells(weekly.total)]], align)
    report.line(f"  (2025-W27 is this Monday morning, up to {_local(DEMO_NOW, '%H:%M')}.)")
    report.line()
    report.line('  Per team, then per priority: group_by=("team",) and ("priority",); a ticket')
    report.line("  counts in the team and priority it has now (escalations change them):")
    rows = [[str(p.group[0]), *_cells(p)] for p in grouped["team"].periods]
    by_priority = sorted(grouped["priority"].periods, key=lambda p: _PRIORITY_ORDER.index(str(p.group[0])))
    rows += [[str(p.group[0]), *_cells(p)] for p in by_priority]
    report.table(["group", *heads], rows, align)
    total = weekly.total
    csat = total.csat
    report.line()
    report.leader(
        "surveys sent / answered", f"{n(csat.sent)} / {n(csat.answered)} ({_pct(csat.response_rate)})"
    )
    average = "-" if csat.average is None else f"{csat.average:.2f}"
    report.leader("CSAT average / satisfied (4 or 5)", f"{average} / {_pct(csat.satisfied)}")
    top = max(csat.distribution) or 1
    for score, count in zip(range(1, 6), csat.distribution, strict=True):
        report.line(f"    score {score}  {'#' * round(40 * count / top):<40} {count:>5,}")
    report.leader("solved within 24 business hours", _pct(total.resolved_within_rate))
    report.leader("reopen rate (solved tickets reopened)", _pct(total.reopen_rate))
    report.line()
    report.line(f"  Backlog at {_local(DEMO_NOW)}: tickets open or pending, by wall-clock age:")
    backlog = grouped["team"]
    report.table(
        ["team", "open", "<1d", "1-3d", "3-7d", ">7d", "oldest"],
        [
            [
                str(b.group[0]) if b.group else "all",
                n(b.open),
                n(b.under_1d),
                n(b.from_1d_to_3d),
                n(b.from_3d_to_7d),
                n(b.over_7d),
                _hours(b.oldest_age),
            ]
            for b in (*backlog.backlog, backlog.backlog_total)
        ],
        "lrrrrrr",
    )
    report.line(f"  Computed in {elapsed:.2f} s.")


_PRIORITY_ORDER = [p.value for p in reversed(TicketPriority)]


def _cells(p: PeriodMetrics) -> list[str]:
    first = p.attainment(SlaMetric.FIRST_RESPONSE)
    resolution = p.attainment(SlaMetric.RESOLUTION)
    return [
        n(p.created),
        n(p.solved),
        _hours(p.first_response_business.median),
        _hours(p.resolution_business.median),
        _pct(None if first is None else first.rate),
        _pct(None if resolution is None else resolution.rate),
        _pct(p.reopen_rate),
        "-" if p.csat.average is None else f"{p.csat.average:.2f}",
    ]
