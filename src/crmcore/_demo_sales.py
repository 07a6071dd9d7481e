"""The demo's sales sections: eight weeks of leads routed, scored, converted, quoted and closed.

A simulation in two-hour ticks of simulated time, driven by a `FixedClock`: in each tick the
leads that arrived are stored and routed (`route_lead`); what owners and prospects did is applied
(touches, disqualifications, conversions with `convert_lead`, deal moves with the `StageMachine`,
quotes sent and accepted with `accept_quote`, deals lost); then leads nobody touched for 16
business hours are routed again (`reassign_untouched`). Everything goes through the public API, so
the report shows what a host would see. Scores and the pipeline summary are read from the store
at the end.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs

from crmcore._report import Report, money, n, short
from crmcore.assignment import (
    AssignmentConfig,
    AssignmentRule,
    Member,
    Queue,
    Roster,
    SkipReason,
    Strategy,
    Target,
    Territory,
)
from crmcore.clock import FixedClock
from crmcore.conditions import All, Field
from crmcore.demo_data import DEMO_NOW, SALES_HOURS, LeadFlow, LeadStep, LeadStepKind, generate_leads
from crmcore.errors import TransitionError
from crmcore.events import DomainEvent
from crmcore.facade import CRM
from crmcore.money import Money
from crmcore.pipeline import (
    BehaviourRule,
    CreateTask,
    ForecastCategory,
    Lead,
    LeadConverted,
    LeadRouting,
    LeadStatus,
    NaiveBayesScorer,
    Opportunity,
    Pipeline,
    PointsModel,
    PointsRule,
    Quote,
    QuoteStatus,
    Stage,
    StageMachine,
    accept_quote,
    convert_lead,
    lead_router,
    reassign_untouched,
    route_lead,
)
from crmcore.storage.base import UnitOfWork

__all__ = ["SalesDesk", "sales_pipeline_section", "sales_section"]

BERLIN = ZoneInfo("Europe/Berlin")
WEEKS = 8
START = DEMO_NOW - timedelta(weeks=WEEKS)
"""Monday 5 May 2025, 11:00 in Berlin: eight weeks of leads arrive from here until the demo's now."""
TRAIN_UNTIL = START + timedelta(weeks=4)
"""Naive Bayes learns from the leads of the first four weeks and is tested on the later ones."""
TICK = timedelta(hours=2)
CUSTOMERS_PER_LEAD = 5
"""One lead per five customers (600 at the demo's default size), but at least `MIN_LEADS`."""
MIN_LEADS = 240
UNTOUCHED = timedelta(hours=16)
"""Two working days: a lead its owner has not touched for that long goes to someone else."""
AWAY = ("rep-gita", datetime(2025, 5, 19, tzinfo=BERLIN), datetime(2025, 5, 31, tzinfo=BERLIN))
"""One inside-sales rep on leave for two weeks: round robin skips her."""
CURRENCY = "EUR"
PIPELINE = "new-business"

ROUTING = AssignmentConfig(
    rules=(
        AssignmentRule(
            name="enterprise", condition=Field("company_size") >= 1000, target=Target.to_user("rep-amara")
        ),
        AssignmentRule(
            name="mid-market", condition=Field("company_size") >= 200, target=Target.to_queue("regions")
        ),
        AssignmentRule(name="inside sales", condition=All(), target=Target.to_queue("inside")),
    ),
    queues=(
        Queue(
            name="regions",
            strategy=Strategy.TERRITORY,
            field="region",
            territories=(
                Territory(values=("emea",), target=Target.to_queue("emea")),
                Territory(values=("amer",), target=Target.to_user("rep-diego")),
                Territory(values=("apac",), target=Target.to_user("rep-emi")),
            ),
            otherwise=Target.to_queue("inside"),
        ),
        Queue(name="emea", members=("rep-bjorn", "rep-chloe")),
        Queue(name="inside", members=("rep-farid", "rep-gita", "rep-hugo")),
    ),
    fallback=Target.to_queue("inside"),
)
REPS = ("rep-amara", "rep-bjorn", "rep-chloe", "rep-diego", "rep-emi", "rep-farid", "rep-gita", "rep-hugo")

_MINIMUM = Money("500", CURRENCY)
STAGES = Pipeline(
    name=PIPELINE,
    stages=(
        Stage(name="Discovery", probability=10, rotting_days=7),
        Stage(name="Qualified", probability=25, rotting_days=10, required_fields=("amount",)),
        Stage(
            name="Proposal",
            probability=50,
            forecast_category=ForecastCategory.BEST_CASE,
            rotting_days=10,
            required_fields=("amount", "close_date"),
            condition=Field("amount") >= _MINIMUM,
            condition_message="an amount of at least 500 EUR (smaller orders go through the web shop)",
            on_enter=(CreateTask(title="Follow up on the quote", due_in_days=3),),
        ),
        Stage(
            name="Negotiation",
            probability=75,
            forecast_category=ForecastCategory.COMMIT,
            rotting_days=7,
            guard="next step agreed",
        ),
        Stage(name="Won", won=True, required_fields=("amount",)),
        Stage(name="Lost", lost=True),
    ),
    allow_skip=False,
    description="New customers and upsells: discovery, scoping, a quote, negotiation, signature.",
)


def _next_step_agreed(deal: Opportunity, stage: Stage) -> str | None:
    """A guard (a developer's check, registered by name): negotiating needs an agreed next step."""
    return None if deal.next_step.strip() else "the deal needs a next step the customer agreed to"


MACHINE = StageMachine([STAGES], guards={"next step agreed": _next_step_agreed})

POINTS = PointsModel(
    rules=(
        PointsRule(
            name="target industry", condition=Field("industry").in_(["software", "finance"]), points=15
        ),
        PointsRule(name="mid-size", condition=Field("company_size").between(200, 4999), points=15),
        PointsRule(
            name="decision maker", condition=Field("title").in_(["CEO", "CTO", "Head of IT"]), points=10
        ),
        PointsRule(name="referral", condition=Field("source") == "referral", points=10),
        PointsRule(name="tiny firm", condition=Field("company_size") < 10, points=-10),
        PointsRule(name="student", condition=Field("title") == "Student", points=-40),
    ),
    behaviour=(
        BehaviourRule(kind="demo_requested", points=40, half_life_days=14),
        BehaviourRule(kind="webinar_attended", points=15, half_life_days=21),
        BehaviourRule(kind="pricing_page_visited", points=8, half_life_days=7, max_count=3),
        BehaviourRule(kind="email_opened", points=3, half_life_days=7, max_count=5),
    ),
)
NAIVE_BAYES = NaiveBayesScorer(fields=("source", "industry", "company_size", "title", "region"))
"""Not the default fields: ``campaign`` only repeats the source, and naive Bayes would count it twice."""
_OPEN = (LeadStatus.NEW, LeadStatus.WORKING)


@attrs.define
class SalesDesk:
    """What the simulation did, for the report and the tests."""

    leads: int = 0
    existing: int = 0
    """Leads that come from existing customers (planned by the generator)."""
    routed: Counter[tuple[str, str, str]] = attrs.field(factory=Counter)
    """(rule, queue or "-", rep) -> leads routed on arrival."""
    skipped: Counter[tuple[str, SkipReason]] = attrs.field(factory=Counter)
    skip_example: str = ""
    reassigned: list[LeadRouting] = attrs.field(factory=list)
    touches: int = 0
    conversions: Counter[str] = attrs.field(factory=Counter)
    """How the customer was found ("new customer", or the signals that matched) -> conversions."""
    refused: int = 0
    refusal: tuple[str, ...] = ()
    refusal_call: str = ""
    moves: int = 0
    quotes: Counter[str] = attrs.field(factory=Counter)
    accepted_example: Quote | None = None
    lost: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    """(stage lost from, reason) -> deals."""
    events: Counter[str] = attrs.field(factory=Counter)
    stored: dict[str, int] = attrs.field(factory=dict)
    seconds: float = 0.0


class _Simulation:
    """The moving parts of one run: the store, the clock, the router and the latest copies.

    Like a host's worker it keeps each lead, deal and quote as it saved them last; reassignment
    changes leads in the store, and the copies are replaced with what it saved.
    """

    def __init__(self, crm: CRM, tenant: str, clock: FixedClock) -> None:
        self.crm, self.tenant, self.clock = crm, tenant, clock
        self.router = lead_router(ROUTING)
        self.desk = SalesDesk()
        self.flows: dict[str, LeadFlow] = {}
        self.leads: dict[str, Lead] = {}
        self.deals: dict[str, Opportunity] = {}
        self.quotes: dict[str, Quote] = {}

    def roster(self, at: datetime) -> Roster:
        user, away_from, away_until = AWAY
        return Roster(
            members=tuple(
                Member(user=u, out_of_office=u == user and away_from <= at < away_until) for u in REPS
            )
        )

    def note(self, events: Iterable[DomainEvent]) -> None:
        self.desk.events.update(e.event_type for e in events)

    def tick(self, at: datetime, arriving: Sequence[LeadFlow], steps: Sequence[tuple[LeadStep, str]]) -> None:
        """Store and route the new leads, play the steps, reassign untouched leads; one unit of work."""
        # untouched time grows only in office hours: the reassignment job runs after ticks that had some
        busy = SALES_HOURS.between(at - TICK, at) > timedelta(0)
        if not (arriving or steps or busy):
            return
        with self.crm.unit_of_work(self.tenant) as uow:
            if arriving:
                fresh = [attrs.evolve(f.lead) for f in arriving]
                self.clock.set(at)
                uow.leads.bulk_add(fresh)
                self.leads.update((lead.id, lead) for lead in fresh)
            moments = sorted(
                [(_created(f), f.lead.id, -1) for f in arriving]
                + [(step.at, lead_id, i) for i, (step, lead_id) in enumerate(steps)]
            )
            for when, lead_id, i in moments:
                self.clock.set(when)
                if i < 0:
                    self.route(uow, lead_id, when)
                else:
                    self.play(uow, lead_id, steps[i][0])
            self.clock.set(at)
            moved = (
                reassign_untouched(uow, self.router, self.roster(at), SALES_HOURS, UNTOUCHED, at)
                if busy
                else []
            )
            for routing in moved:
                self.leads[routing.lead.id] = routing.lead
                self.desk.reassigned.append(routing)
                self.note([routing.event])
            uow.commit()

    def route(self, uow: UnitOfWork, lead_id: str, at: datetime) -> None:
        routing = route_lead(uow, self.router, self.leads[lead_id], self.roster(at), at)
        decision = routing.decision
        self.desk.routed[(decision.rule or "fallback", decision.queue or "-", decision.owner or "-")] += 1
        for skip in decision.skipped:
            self.desk.skipped[(skip.user, skip.reason)] += 1
            if not self.desk.skip_example:
                self.desk.skip_example = decision.reason
        self.leads[lead_id] = routing.lead
        self.note([routing.event])

    def play(self, uow: UnitOfWork, lead_id: str, step: LeadStep) -> None:
        kind, at = step.kind, step.at
        lead = self.leads[lead_id]
        flow = self.flows[lead_id]
        by = lead.owner
        if kind is LeadStepKind.TOUCH:
            if lead.status in _OPEN:
                self.desk.touches += 1
                self.save_lead(uow, attrs.evolve(lead, status=LeadStatus.WORKING, last_touched_at=at))
        elif kind is LeadStepKind.DISQUALIFY:
            self.save_lead(uow, lead.disqualify(step.reason))
        elif kind is LeadStepKind.NURTURE:
            self.save_lead(uow, attrs.evolve(lead, status=LeadStatus.NURTURING))
        elif kind is LeadStepKind.QUALIFY:
            name = lead.company or lead.name
            done = convert_lead(
                uow,
                lead.qualify(),
                at,
                machine=MACHINE,
                pipeline=PIPELINE,
                opportunity_name=f"{name}: {flow.offer[0].product.split(' (')[0]}",
                by=by,
            )
            self.leads[lead_id] = done.lead
            assert done.opportunity is not None
            self.deals[lead_id] = done.opportunity
            converted = done.events[0]
            assert isinstance(converted, LeadConverted)
            how = "new customer" if done.new_customer else " + ".join(converted.matched_by)
            self.desk.conversions[how] += 1
            self.note(done.events)
        elif kind is LeadStepKind.RUSH:
            self.rush(self.deals[lead_id], at, by)
        elif kind is LeadStepKind.SCOPE:
            deal = attrs.evolve(
                self.deals[lead_id],
                amount=flow.estimate,
                close_date=flow.close_date,
                next_step="Send the quote",
            )
            self.move(uow, lead_id, deal, "Qualified", at, by)
        elif kind is LeadStepKind.PROPOSE:
            deal = self.deals[lead_id]
            self.desk.quotes["sent"] += 1
            quote = Quote(
                opportunity_id=deal.id,
                customer_id=deal.customer_id,
                currency=CURRENCY,
                number=f"Q-2025-{self.desk.quotes['sent']:04d}",
                lines=flow.offer,
                expires_on=(at + timedelta(days=30)).date(),
                created_at=at,
            ).send(at)
            self.quotes[lead_id] = uow.quotes.add(quote)
            deal = attrs.evolve(deal, amount=quote.net_total, next_step="Follow up on the quote")
            self.move(uow, lead_id, deal, "Proposal", at, by)
        elif kind is LeadStepKind.NEGOTIATE:
            deal = attrs.evolve(self.deals[lead_id], next_step="Agree on terms and sign")
            self.move(uow, lead_id, deal, "Negotiation", at, by)
        elif kind is LeadStepKind.ACCEPT:
            acceptance = accept_quote(uow, self.quotes[lead_id].id, at, machine=MACHINE, move_to="Won", by=by)
            self.quotes[lead_id], self.deals[lead_id] = acceptance.quote, acceptance.opportunity
            self.desk.quotes["accepted"] += 1
            self.desk.moves += 1
            example = self.desk.accepted_example
            if example is None or len(acceptance.quote.lines) > len(example.lines):
                self.desk.accepted_example = acceptance.quote
            self.note(acceptance.events)
        elif kind is LeadStepKind.LOSE:
            sent = self.quotes.get(lead_id)
            if sent is not None:
                self.quotes[lead_id] = uow.quotes.save(sent.reject(at, step.reason))
                self.desk.quotes["rejected"] += 1
            deal = self.deals[lead_id]
            self.desk.lost[(deal.stage, step.reason)] += 1
            self.move(uow, lead_id, attrs.evolve(deal, next_step=""), "Lost", at, by, lost_reason=step.reason)

    def save_lead(self, uow: UnitOfWork, lead: Lead) -> None:
        self.leads[lead.id] = uow.leads.save(lead)

    def move(
        self,
        uow: UnitOfWork,
        lead_id: str,
        deal: Opportunity,
        stage: str,
        at: datetime,
        by: str | None,
        *,
        lost_reason: str = "",
    ) -> None:
        moved = MACHINE.move(deal, stage, at, by=by, lost_reason=lost_reason)
        self.deals[lead_id] = uow.opportunities.save(moved.opportunity)
        uow.record(*moved.events)
        self.desk.moves += 1
        self.note(moved.events)

    def rush(self, deal: Opportunity, at: datetime, by: str | None) -> None:
        """An owner tries to skip ahead to Proposal before scoping the deal: the machine refuses."""
        try:
            MACHINE.move(deal, "Proposal", at, by=by)
        except TransitionError as exc:
            self.desk.refused += 1
            if not self.desk.refusal:
                self.desk.refusal = exc.unmet
                self.desk.refusal_call = f'MACHINE.move(deal, "Proposal", now, by="{by}")'
        else:  # pragma: no cover - the pipeline makes this move impossible
            raise AssertionError("a deal skipped to Proposal unscoped")


def _created(flow: LeadFlow) -> datetime:
    assert flow.lead.created_at is not None
    return flow.lead.created_at


def _simulate(crm: CRM, tenant: str, clock: FixedClock, seed: int) -> tuple[SalesDesk, tuple[LeadFlow, ...]]:
    with crm.unit_of_work(tenant) as uow:
        customers = sorted(uow.customers.iter_all(), key=lambda c: c.id)
        before = {
            "customers": uow.customers.count(),
            "contacts": uow.contacts.count(),
            "queue states": uow.assignment_queues.count(),
        }
    position = _last_position(crm, tenant)
    count = max(MIN_LEADS, len(customers) // CUSTOMERS_PER_LEAD)
    flows = generate_leads(customers, count, seed=seed, start=START, end=DEMO_NOW)
    sim = _Simulation(crm, tenant, clock)
    sim.flows = {f.lead.id: f for f in flows}
    sim.desk.leads = len(flows)
    sim.desk.existing = sum(1 for f in flows if f.customer_id is not None)
    agenda = sorted(
        ((s.at, f.lead.id, i) for f in flows for i, s in enumerate(f.steps) if s.at < DEMO_NOW),
        key=lambda x: (x[0], x[1], x[2]),
    )
    ticks = [START + TICK * k for k in range(1, (DEMO_NOW - START) // TICK + 1)]
    if ticks[-1] < DEMO_NOW:
        ticks.append(DEMO_NOW)
    arrived = played = 0
    for at in ticks:
        first = arrived
        while arrived < len(flows) and _created(flows[arrived]) < at:
            arrived += 1
        steps: list[tuple[LeadStep, str]] = []
        while played < len(agenda) and agenda[played][0] < at:
            _, lead_id, index = agenda[played]
            steps.append((sim.flows[lead_id].steps[index], lead_id))
            played += 1
        sim.tick(at, flows[first:arrived], steps)
    clock.set(DEMO_NOW)
    with crm.unit_of_work(tenant) as uow:
        sim.desk.stored = {
            "leads": uow.leads.count(),
            "opportunities": uow.opportunities.count(),
            "quotes": uow.quotes.count(),
            "new customers": uow.customers.count() - before["customers"],
            "contacts": uow.contacts.count() - before["contacts"],
            "queue states": uow.assignment_queues.count() - before["queue states"],
        }
    sim.desk.stored["events"] = _events_since(crm, tenant, position)
    return sim.desk, flows


def _last_position(crm: CRM, tenant: str) -> int:
    position = 0
    while batch := crm.events_since(position, 1000, tenant=tenant):
        position = batch[-1].position
    return position


def _events_since(crm: CRM, tenant: str, position: int) -> int:
    count = 0
    while batch := crm.events_since(position, 1000, tenant=tenant):
        count += len(batch)
        position = batch[-1].position
    return count


def _local(at: datetime | None, fmt: str = "%a %d %b %H:%M") -> str:
    """``at`` on Berlin's wall clock, where the sales team sits."""
    return "-" if at is None else at.astimezone(BERLIN).strftime(fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _wrap(report: Report, text: str, indent: int) -> None:
    for part in textwrap.wrap(text, 78 - indent):
        report.line(" " * indent + part)


def _eur(amount: Decimal) -> str:
    return money(Money(amount, CURRENCY).rounded())


def _total(deals: Iterable[Opportunity]) -> str:
    amounts = [d.amount.amount for d in deals if d.amount is not None]
    return _eur(sum(amounts, Decimal(0))) if amounts else "-"


def _weighted(deals: Iterable[Opportunity]) -> str:
    amounts = [w.amount for d in deals if (w := d.weighted_amount) is not None]
    return _eur(sum(amounts, Decimal(0))) if amounts else "-"


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {n(v)}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def sales_section(
    crm: CRM, tenant: str, seed: int, clock: FixedClock, report: Report
) -> tuple[SalesDesk, tuple[LeadFlow, ...]]:
    """Simulate eight weeks of leads; show routing, reassignment, scoring and conversion."""
    started = time.perf_counter()
    desk, flows = _simulate(crm, tenant, clock, seed)
    desk.seconds = time.perf_counter() - started
    report.section("Sales: leads routed, reassigned, scored and converted")
    _wrap(
        report,
        f"Eight weeks of sales, simulated: {n(desk.leads)} leads arrive from {_local(START, '%a %d %b')} "
        f"to {_local(DEMO_NOW - TICK, '%a %d %b %Y')} (generate_leads: sources, campaigns, industries, "
        f"company sizes, regions; {n(desk.existing)} from existing customers). Reps touch them in "
        "office hours and qualify or disqualify them; qualified leads become deals. A FixedClock moves "
        "in 2-hour ticks: each tick stores and routes the new leads (route_lead), applies what reps "
        "and prospects did, then reassigns untouched leads (reassign_untouched).",
        2,
    )
    _lead_routing(desk, report)
    _reassignment(desk, report)
    with crm.unit_of_work(tenant) as uow:
        leads = sorted(uow.leads.iter_all(), key=lambda lead: lead.id)
        deals = {o.lead_id: o for o in uow.opportunities.iter_all()}
    _scoring(leads, deals, flows, report)
    _conversion(desk, leads, report)
    return desk, flows


def _lead_routing(desk: SalesDesk, report: Report) -> None:
    report.line()
    report.line("  Routing: route_lead(uow, router, lead, roster, now) with")
    report.line("  router = lead_router(AssignmentConfig(...)); the first rule that matches wins:")
    report.table(
        ["rule", "condition", "target"],
        [
            ["enterprise", 'Field("company_size") >= 1000', "user rep-amara"],
            ["mid-market", 'Field("company_size") >= 200', "territory queue, by region:"],
            ["", "", "emea -> queue emea (round robin),"],
            ["", "", "amer -> rep-diego, apac -> rep-emi"],
            ["inside sales", "All()", "queue inside (round robin)"],
        ],
        "lll",
        indent=4,
    )
    report.line()
    order = [r.name for r in ROUTING.rules]
    rows = [
        [rule, queue, rep, n(count), n(desk.skipped[(rep, SkipReason.OUT_OF_OFFICE)])]
        for (rule, queue, rep), count in sorted(
            desk.routed.items(), key=lambda kv: (order.index(kv[0][0]), kv[0])
        )
    ]
    away = sum(c for (_, reason), c in desk.skipped.items() if reason is SkipReason.OUT_OF_OFFICE)
    rows.append(["all", "", "", n(sum(desk.routed.values())), n(away)])
    report.table(["rule", "queue", "rep", "leads", "skipped (away)"], rows, "lllrr", indent=4)
    user, away_from, away_until = AWAY
    _wrap(
        report,
        f"{user} is on leave from {_local(away_from, '%a %d %b')} to "
        f"{_local(away_until - timedelta(days=1), '%a %d %b')} (Member(out_of_office=True) in the "
        "roster): round robin passes her over. A decision's reason, as LeadAssigned records it:",
        4,
    )
    _wrap(report, f'"{desk.skip_example}"', 6)


def _reassignment(desk: SalesDesk, report: Report) -> None:
    report.line()
    hours = UNTOUCHED // timedelta(hours=1)
    _wrap(
        report,
        "Untouched leads: after every tick with office hours in it, reassign_untouched(uow, router, "
        f"roster, SALES_HOURS, timedelta(hours={hours}), now) routes again the open leads whose owner "
        f"has not touched them for {hours} business hours (Mon-Fri 09:00-17:00 Berlin, German holidays "
        "off: nights and weekends do not count), never back to the same rep.",
        2,
    )
    report.leader("touches (calls, emails) saved on leads", n(desk.touches))
    report.leader("leads reassigned", n(len(desk.reassigned)))
    if not desk.reassigned:
        return
    _wrap(report, "taken from: " + _counts(Counter(r.event.previous or "-" for r in desk.reassigned)), 4)
    _wrap(report, "given to: " + _counts(Counter(r.lead.owner or "-" for r in desk.reassigned)), 4)
    example = desk.reassigned[0]
    lead = example.lead
    report.line(
        f"    e.g. {short(lead.name, 24)} ({short(lead.company or 'no company', 28)}), "
        f"arrived {_local(lead.created_at)},"
    )
    report.line(f"    moved {_local(example.event.occurred_at)}:")
    _wrap(report, f'"{example.event.reason}"', 6)


def _auc(won: Sequence[float], lost: Sequence[float]) -> float | None:
    """The chance that a random won lead scores above a random lost one (ties count half)."""
    if not won or not lost:
        return None
    above = 0.0
    for w in won:
        for x in lost:
            above += 1.0 if w > x else 0.5 if w == x else 0.0
    return above / (len(won) * len(lost))


def _outcome(lead: Lead, deal: Opportunity | None) -> bool | None:
    """How a host reads a lead's outcome: won deal True; disqualified or lost deal False; else None."""
    if lead.status is LeadStatus.DISQUALIFIED:
        return False
    return None if deal is None else deal.won


def _arrived(lead: Lead) -> datetime:
    assert lead.created_at is not None
    return lead.created_at


def _scoring(
    leads: Sequence[Lead], deals: dict[str | None, Opportunity], flows: Sequence[LeadFlow], report: Report
) -> None:
    activities = {f.lead.id: f.activities for f in flows}
    report.line()
    _wrap(
        report,
        "Lead scoring. (a) Points: POINTS.score_many(open leads, activities, now). Fit rules over the "
        "lead's fields plus behaviour points that halve with time (demo requested 40 points, half-life "
        "14 days; pricing page visits 8, 7 days, at most 3 count; emails opened 3, 7 days, at most 5). "
        "Whom to call first this morning, and why:",
        2,
    )
    open_leads = [lead for lead in leads if lead.status in _OPEN]
    points = POINTS.score_many(open_leads, activities, DEMO_NOW)
    ranked = sorted(zip(points, open_leads, strict=True), key=lambda sl: (-sl[0].value, sl[1].id))
    for score, lead in ranked[:5]:
        company = short(lead.company or "no company", 30)
        report.line(f"    {score.value:3.0f}  {short(lead.name, 22)}, {company} ({lead.owner or '-'})")
        report.line("         " + ", ".join(f"{f.name} {f.contribution:+.0f}" for f in score.factors[:3]))

    outcomes = {lead.id: _outcome(lead, deals.get(lead.id)) for lead in leads}
    decided = [lead for lead in leads if outcomes[lead.id] is not None]
    train = [lead for lead in decided if _arrived(lead) < TRAIN_UNTIL]
    test = [lead for lead in decided if _arrived(lead) >= TRAIN_UNTIL]
    model = NAIVE_BAYES.fit(train, [bool(outcomes[lead.id]) for lead in train])
    scores = [s.value for s in model.score_many(test)]
    early = [POINTS.score(x, activities[x.id], _arrived(x) + timedelta(days=7)).value for x in test]
    won = [bool(outcomes[lead.id]) for lead in test]
    auc = _auc(
        [s for s, w in zip(scores, won, strict=True) if w],
        [s for s, w in zip(scores, won, strict=True) if not w],
    )
    points_auc = _auc(
        [s for s, w in zip(early, won, strict=True) if w],
        [s for s, w in zip(early, won, strict=True) if not w],
    )
    report.line()
    fields = ", ".join(NAIVE_BAYES.fields)
    _wrap(
        report,
        f"(b) Naive Bayes: NaiveBayesScorer(fields=({fields})).fit(leads, outcomes), trained on the "
        f"leads of the first four weeks (to {_local(TRAIN_UNTIL - timedelta(days=1), '%a %d %b')}) whose "
        "outcome is known now: won (their deal was won) or lost (disqualified, or their deal lost). "
        "Tested on the later leads whose outcome is known:",
        2,
    )
    report.leader(
        "training leads: won / lost", f"{n(model.won)} / {n(model.lost)} ({_pct(model.base_rate)} won)"
    )
    report.leader("test leads: won / lost", f"{n(sum(won))} / {n(len(won) - sum(won))}")
    report.leader("AUC of naive Bayes on the test leads", "-" if auc is None else f"{auc:.3f}")
    report.leader(
        "AUC of the points model a week after arrival", "-" if points_auc is None else f"{points_auc:.3f}"
    )
    report.line("    AUC: the share of (won, lost) pairs of test leads in which the won one")
    report.line("    scores higher (ties count half): 0.5 is a coin toss, 1.0 a perfect ranking.")
    ranking = model.informativeness()
    _wrap(
        report,
        "fields by what they tell (model.informativeness()): "
        + ", ".join(f"{f.name} {f.contribution:.2f}" for f in ranking),
        4,
    )
    if not open_leads:
        return
    predictions = model.score_many(open_leads)
    best, lead = max(zip(predictions, open_leads, strict=True), key=lambda sl: (sl[0].value, sl[1].id))
    report.line()
    report.line(
        f"  The open lead naive Bayes rates highest: {lead.name}, {short(lead.company or 'no company', 30)};"
    )
    report.line(f"  model.predict(lead) = {best.value:.0%}: log-odds {best.base:+.2f} (the base rate) plus")
    report.line("  each field's factor, largest first:")
    for factor in best.factors:
        report.line(f"    {factor.contribution:+5.2f}  {factor.detail}")


def _conversion(desk: SalesDesk, leads: Sequence[Lead], report: Report) -> None:
    report.line()
    _wrap(
        report,
        'Conversion: convert_lead(uow, lead.qualify(), now, machine=MACHINE, pipeline="new-business") '
        "finds the customer (a company customer of the same name, else the duplicate rules on email, "
        "phone and name) or creates one, adds the person as a contact and starts a deal in the "
        "pipeline's first stage, all in one unit of work. How the customer was found:",
        2,
    )
    rows = [["new customer", n(desk.conversions["new customer"])]]
    rows += [
        [f"existing: {how}", n(count)]
        for how, count in sorted(desk.conversions.items(), key=lambda kv: (-kv[1], kv[0]))
        if how != "new customer"
    ]
    rows.append(["converted leads", n(sum(desk.conversions.values()))])
    report.table(["customer", "leads"], rows, "lr", indent=4)
    statuses = Counter(lead.status for lead in leads)
    report.line()
    report.line("  Leads now, by status (uow.leads); qualified ones were all converted:")
    report.table(
        ["status", "leads"],
        [[s.value, n(statuses[s])] for s in LeadStatus] + [["all", n(len(leads))]],
        "lr",
        indent=4,
    )
    reasons = Counter(lead.disqualified_reason for lead in leads if lead.status is LeadStatus.DISQUALIFIED)
    _wrap(report, "disqualified for: " + _counts(reasons), 4)
    report.line(f"    converted (converted_at set): {n(sum(1 for lead in leads if lead.converted))}")


def sales_pipeline_section(crm: CRM, tenant: str, desk: SalesDesk, report: Report) -> None:
    """The pipeline the deals moved through: stages, a refused move, quotes, won and lost, a summary."""
    report.section("Sales pipeline: stages, quotes, won and lost")
    _stages(report)
    _refusal(desk, report)
    with crm.unit_of_work(tenant) as uow:
        deals = sorted(uow.opportunities.iter_all(), key=lambda o: (o.lead_id or "", o.name))
        quotes = list(uow.quotes.iter_all())
    _quotes(desk, quotes, report)
    _closed(desk, deals, report)
    _summary(deals, report)
    stored = [f"{n(count)} {what}" for what, count in desk.stored.items() if what != "events"]
    report.line()
    report.line("  Stored: " + ", ".join(stored[:4]) + ",")
    report.line("  " + ", ".join(stored[4:]) + f"; {n(desk.stored['events'])} events recorded to the outbox.")
    report.line(f"  Simulated in {desk.seconds:.2f} s.")


def _requires(stage: Stage) -> str:
    parts = list(stage.required_fields)
    if stage.condition is not None:
        parts.append("amount >= 500 EUR")
    if stage.guard is not None:
        parts.append(f"guard {stage.guard!r}")
    return ", ".join(parts) or "-"


def _stages(report: Report) -> None:
    _wrap(
        report,
        'StageMachine([Pipeline(name="new-business", stages=[...], allow_skip=False)], guards={...}): '
        "deals move one stage forward or back, or to Won or Lost from any open stage; entering a stage "
        "sets its probability and forecast category:",
        2,
    )
    report.table(
        ["stage", "prob.", "forecast", "rots after", "requires"],
        [
            [
                s.name,
                f"{s.probability}%",
                s.forecast_category.value,
                "-" if s.rotting_days is None else f"{s.rotting_days} days",
                _requires(s),
            ]
            for s in STAGES.stages
        ],
        "lrlll",
        indent=4,
    )
    for stage in STAGES.stages:
        for task in stage.on_enter:
            report.line(
                f"    Entering {stage.name} requests a task {task.title!r} due in {task.due_in_days} days"
            )
            report.line("    (FollowUpTaskRequested, for the host to create).")


def _refusal(desk: SalesDesk, report: Report) -> None:
    report.line()
    _wrap(
        report,
        f"Reps tried {n(desk.refused)} times to move a new deal from Discovery straight to Proposal, "
        "before scoping it. The stage machine refused every time, naming every unmet requirement at "
        "once; for example:",
        2,
    )
    if desk.refusal:
        report.line(f"    {desk.refusal_call}")
        report.line("    -> TransitionError, with unmet =")
        for item in desk.refusal:
            _wrap(report, f"- {item}", 8)


def _quotes(desk: SalesDesk, quotes: Sequence[Quote], report: Report) -> None:
    report.line()
    _wrap(
        report,
        "Quotes: one is sent as the deal enters Proposal (Quote(lines=[QuoteLine(...)]).send(now)). "
        'accept_quote(uow, quote_id, now, machine=MACHINE, move_to="Won") accepts it and moves its '
        "deal to Won in the same unit of work; a lost deal's quote is rejected.",
        2,
    )
    rows = []
    for status, label in (
        (QuoteStatus.SENT, "sent, no answer yet"),
        (QuoteStatus.ACCEPTED, "accepted"),
        (QuoteStatus.REJECTED, "rejected"),
    ):
        mine = [q for q in quotes if q.status is status]
        rows.append([label, n(len(mine)), _eur(sum((q.total.amount for q in mine), Decimal(0)))])
    rows.append(["all", n(len(quotes)), _eur(sum((q.total.amount for q in quotes), Decimal(0)))])
    report.table(["quotes", "count", "total with tax"], rows, "lrr", indent=4)
    quote = desk.accepted_example
    if quote is None:
        return
    report.line(f"    {quote.number}, accepted {_local(quote.accepted_at)} (the first with the most lines):")
    report.table(
        ["product", "qty", "unit price", "disc.", "tax", "total"],
        [
            [
                line.product,
                f"{line.quantity:,}",
                money(line.unit_price),
                f"{line.discount_percent}%",
                f"{line.tax_rate}%",
                money(line.total),
            ]
            for line in quote.lines
        ],
        "lrrrrr",
        indent=6,
    )
    report.line(f"      subtotal {money(quote.subtotal)} - discount {money(quote.discount_total)}")
    report.line(f"      + tax {money(quote.tax_total)} = total {money(quote.total)}")


def _closed(desk: SalesDesk, deals: Sequence[Opportunity], report: Report) -> None:
    won = [d for d in deals if d.won is True]
    lost = [d for d in deals if d.won is False]
    report.line()
    report.leader("deals won (their quote accepted)", f"{n(len(won))}  {_total(won)}")
    report.leader("deals lost, with a lost reason", f"{n(len(lost))}  {_total(lost)}")
    order = STAGES.stage_names
    report.table(
        ["lost in stage", "reason", "deals"],
        [
            [stage, reason, n(count)]
            for (stage, reason), count in sorted(
                desk.lost.items(), key=lambda kv: (order.index(kv[0][0]), -kv[1], kv[0][1])
            )
        ],
        "llr",
        indent=4,
    )


def _summary(deals: Sequence[Opportunity], report: Report) -> None:
    report.line()
    _wrap(
        report,
        f"The pipeline at {_local(DEMO_NOW)}, read from uow.opportunities. Weighted: amount x "
        "probability (Opportunity.weighted_amount); days in stage: the average time_in_stage of the "
        "StageChange history; rotting: open deals past their stage's rotting days "
        "(MACHINE.rotting(deal, now)).",
        2,
    )
    spent: dict[str, list[timedelta]] = defaultdict(list)
    for deal in deals:
        for change in deal.stage_history:
            spent[change.from_stage].append(change.time_in_stage)
    rows = []
    for stage in STAGES.stages:
        here = [d for d in deals if d.stage == stage.name]
        days = spent.get(stage.name)
        rows.append(
            [
                stage.name,
                n(len(here)),
                _total(here),
                _weighted(here) if stage.is_open else "-",
                "-" if not days else f"{sum(days, timedelta(0)) / len(days) / timedelta(days=1):.1f}",
                n(sum(1 for d in here if MACHINE.rotting(d, DEMO_NOW) is not None)) if stage.is_open else "-",
            ]
        )
    rows.append(["all", n(len(deals)), _total(deals), "", "", ""])
    report.table(["stage", "deals", "amount", "weighted", "avg days", "rotting"], rows, "lrrrrr", indent=4)
    report.line()
    report.line("  Forecast by category (the stage sets it):")
    rows = []
    for category in (
        ForecastCategory.PIPELINE,
        ForecastCategory.BEST_CASE,
        ForecastCategory.COMMIT,
        ForecastCategory.CLOSED,
    ):
        mine = [d for d in deals if d.forecast_category is category]
        label = category.value + (" (won)" if category is ForecastCategory.CLOSED else "")
        rows.append([label, n(len(mine)), _total(mine), _weighted(mine)])
    report.table(["category", "deals", "amount", "weighted"], rows, "lrrr", indent=4)
    won = sum(1 for d in deals if d.won is True)
    lost = sum(1 for d in deals if d.won is False)
    rate = _pct(won / (won + lost) if won + lost else None)
    report.leader("win rate: won / closed deals", f"{n(won)} / {n(won + lost)} = {rate}")
    report.leader("open deals", n(len(deals) - won - lost))
    cycle = [
        (d.closed_at - d.created_at) / timedelta(days=1)
        for d in deals
        if d.won and d.closed_at is not None and d.created_at is not None
    ]
    if cycle:
        report.leader("average days from conversion to won", f"{sum(cycle) / len(cycle):.1f}")
