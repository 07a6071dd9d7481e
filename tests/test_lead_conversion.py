"""Lead conversion and lead routing: one unit of work, duplicate-checked customers, fair owners."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crmcore.assignment import AssignmentConfig, AssignmentRule, Member, Queue, Roster, Target
from crmcore.conditions import All, Field
from crmcore.customers import Customer, CustomerKind, EmailAddress
from crmcore.errors import NotFound, TransitionError, ValidationError
from crmcore.facade import CRM
from crmcore.money import Money
from crmcore.pipeline.conversion import LeadConverted, QuoteAccepted, accept_quote, convert_lead
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.quote import Quote, QuoteLine, QuoteStatus
from crmcore.pipeline.routing import (
    LeadAssigned,
    lead_router,
    reassign_untouched,
    route_lead,
    untouched_leads,
)
from crmcore.pipeline.stages import Pipeline, Stage
from crmcore.pipeline.transitions import StageChanged, StageMachine
from crmcore.service import BusinessCalendar, Weekday, WorkingHours

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SALES = Pipeline(
    name="sales",
    stages=[
        Stage(name="Qualify", probability=20),
        Stage(name="Proposal", probability=50, required_fields=["amount"]),
        Stage(name="Won", won=True),
        Stage(name="Lost", lost=True),
    ],
)
MACHINE = StageMachine([SALES])


def qualified(**kw: object) -> Lead:
    fields: dict[str, object] = {
        "name": "Ada Lovelace",
        "company": "Analytical Engines Ltd",
        "email": EmailAddress(address="ada@engines.example"),
        "source": "web",
        "country": "GB",
        "status": LeadStatus.QUALIFIED,
        "owner": "rep1",
    }
    fields.update(kw)
    return Lead(**fields)  # type: ignore[arg-type]


def test_a_company_lead_becomes_a_company_a_contact_and_a_deal_in_one_commit(
    any_crm: CRM, tenant: str
) -> None:
    """Customer, contact and deal are stored together; the deal starts at the first stage's probability."""
    with any_crm.unit_of_work(tenant) as uow:
        lead = qualified()
        uow.leads.add(lead)
        done = convert_lead(uow, lead, MONDAY, machine=MACHINE, pipeline="sales", amount=Money("5000", "EUR"))
        uow.commit()
    assert done.new_customer and done.customer.kind is CustomerKind.COMPANY
    assert done.customer.name == "Analytical Engines Ltd"
    assert done.contact is not None and done.contact.primary_email == "ada@engines.example"
    assert done.opportunity is not None and (done.opportunity.stage, done.opportunity.probability) == (
        "Qualify",
        20,
    )
    assert [type(e) for e in done.events][:2] == [LeadConverted, StageChanged]
    with any_crm.unit_of_work(tenant) as uow:
        stored = uow.leads.get(lead.id)
        assert stored.converted and stored.converted_customer_id == done.customer.id
        assert stored.converted_opportunity_id == done.opportunity.id
        assert uow.opportunities.get(done.opportunity.id).lead_id == lead.id
        assert uow.contacts.get(done.contact.id).customer_id == done.customer.id
        outbox = [r.event for r in uow.events_about([lead.id])]
        assert [type(e) for e in outbox] == [LeadConverted]


def test_an_existing_customer_is_found_by_the_duplicate_check(any_crm: CRM, tenant: str) -> None:
    """A person lead whose email a customer already has converts into that customer, with the reason."""
    existing = Customer(
        name="Grace Hopper", emails=[EmailAddress(address="grace@navy.example", primary=True)]
    )
    company = Customer(name="Analytical Engines Ltd", kind=CustomerKind.COMPANY)
    with any_crm.unit_of_work(tenant) as uow:
        uow.customers.add(existing)
        uow.customers.add(company)
        person = qualified(name="G. Hopper", company="", email=EmailAddress(address="GRACE@navy.example"))
        firm = qualified()
        uow.leads.add(person)
        uow.leads.add(firm)
        first = convert_lead(uow, person, MONDAY)
        second = convert_lead(uow, firm, MONDAY)
        uow.commit()
    assert (first.customer.id, first.new_customer, first.contact) == (existing.id, False, None)
    assert first.events[0].matched_by == ("same_email",)  # type: ignore[attr-defined]
    assert (second.customer.id, second.events[0].matched_by) == (company.id, ("same_company_name",))  # type: ignore[attr-defined]


def test_conversion_is_all_or_nothing_and_refuses_bad_leads(any_crm: CRM, tenant: str) -> None:
    """A refused first stage stores nothing; unqualified, converted and unknown targets are refused."""
    strict = StageMachine(
        [
            Pipeline(
                name="strict",
                stages=[
                    Stage(name="Open", probability=10, required_fields=["amount"]),
                    Stage(name="Won", won=True),
                    Stage(name="Lost", lost=True),
                ],
            )
        ]
    )
    with any_crm.unit_of_work(tenant) as uow:
        lead = qualified()
        uow.leads.add(lead)
        uow.commit()
    with any_crm.unit_of_work(tenant) as uow, pytest.raises(TransitionError, match="amount"):
        convert_lead(uow, uow.leads.get(lead.id), MONDAY, machine=strict, pipeline="strict")
    with any_crm.unit_of_work(tenant) as uow:
        assert uow.customers.count() == 0 and uow.contacts.count() == 0 and uow.opportunities.count() == 0
        assert not uow.leads.get(lead.id).converted
        working = Lead(name="Not yet", status=LeadStatus.WORKING)
        uow.leads.add(working)
        with pytest.raises(TransitionError, match="only qualified leads convert"):
            convert_lead(uow, working, MONDAY)
        with pytest.raises(NotFound):
            convert_lead(uow, uow.leads.get(lead.id), MONDAY, customer_id="nobody")
        with pytest.raises(ValidationError, match="now"):
            convert_lead(uow, uow.leads.get(lead.id), datetime(2026, 3, 2))
        with pytest.raises(ValidationError, match="pipeline"):
            convert_lead(uow, uow.leads.get(lead.id), MONDAY, pipeline="sales")
        done = convert_lead(uow, uow.leads.get(lead.id), MONDAY)
        with pytest.raises(TransitionError, match="converted already"):
            convert_lead(uow, done.lead, MONDAY)


ROUTING = AssignmentConfig(
    rules=(
        AssignmentRule(
            name="enterprise", condition=Field("company_size") >= 1000, target=Target.to_user("ent")
        ),
        AssignmentRule(name="everyone else", condition=All(), target=Target.to_queue("inside")),
    ),
    queues=(Queue(name="inside", members=("amy", "ben", "cal")),),
)
ROSTER = Roster(members=(Member(user="ent"), Member(user="amy"), Member(user="ben"), Member(user="cal")))
OFFICE = BusinessCalendar(
    timezone="UTC",
    hours=tuple(WorkingHours(weekday=d, start="09:00", end="17:00") for d in list(Weekday)[:5]),
)


def test_leads_are_routed_by_rule_and_untouched_ones_move_to_someone_else(any_crm: CRM, tenant: str) -> None:
    """Round robin shares small leads, a rule sends big ones to one rep; four business hours untouched
    (counted over the weekend correctly) hands a lead to another rep with the reason."""
    router = lead_router(ROUTING)
    with any_crm.unit_of_work(tenant) as uow:
        leads = [Lead(name=f"Lead {i}", company_size=5000 if i == 0 else 10) for i in range(7)]
        routed = []
        for lead in leads:
            uow.leads.add(lead)
            routed.append(route_lead(uow, router, lead, ROSTER, MONDAY))
        uow.commit()
    assert routed[0].lead.owner == "ent" and routed[0].decision.rule == "enterprise"
    assert Counter(r.lead.owner for r in routed[1:]) == {"amy": 2, "ben": 2, "cal": 2}
    friday_4pm = MONDAY + timedelta(days=4, hours=7)
    with any_crm.unit_of_work(tenant) as uow:
        touched = uow.leads.get(leads[1].id)
        touched.last_touched_at = friday_4pm
        uow.leads.save(touched)
        uow.commit()
    # Monday 11:00 next week: 3 business hours since Friday 16:00 for the touched lead, a week for the rest.
    next_monday_noon = MONDAY + timedelta(days=7, hours=2)
    with any_crm.unit_of_work(tenant) as uow:
        moved = reassign_untouched(uow, router, ROSTER, OFFICE, timedelta(hours=4), next_monday_noon)
        uow.commit()
    assert {m.lead.id for m in moved} == {lead.id for lead in leads} - {leads[1].id}
    handed_on = [m for m in moved if m.decision.assigned]
    assert len(handed_on) == 5 and all(m.event.previous != m.lead.owner for m in handed_on)
    [stuck] = [m for m in moved if not m.decision.assigned]  # only 'ent' takes enterprise leads
    assert stuck.event.owner == "ent" and stuck.decision.rule == "enterprise"
    assert all(isinstance(m.event, LeadAssigned) and "not touched by" in m.event.reason for m in moved)
    with any_crm.unit_of_work(tenant) as uow:
        still = untouched_leads(list(uow.leads.iter_all()), OFFICE, timedelta(hours=4), next_monday_noon)
        assert [lead.id for lead in still] == [stuck.lead.id]  # nobody else could take it


def test_lead_routing_refuses_bad_input(any_crm: CRM, tenant: str) -> None:
    """Unstored leads, naive times, other routers and a non-positive window are refused by name."""
    router = lead_router(ROUTING)
    with any_crm.unit_of_work(tenant) as uow:
        with pytest.raises(ValidationError, match="must be stored"):
            route_lead(uow, router, Lead(name="x"), ROSTER, MONDAY)
        with pytest.raises(ValidationError, match="within"):
            reassign_untouched(uow, router, ROSTER, OFFICE, timedelta(0), MONDAY)
        with pytest.raises(ValidationError, match="now"):
            untouched_leads([], OFFICE, timedelta(hours=1), datetime(2026, 3, 2))


def test_accepting_a_quote_moves_its_deal_in_the_same_unit_of_work(any_crm: CRM, tenant: str) -> None:
    """The quote is accepted and the deal enters the configured stage together; a refused move keeps both."""
    with any_crm.unit_of_work(tenant) as uow:
        lead = qualified()
        uow.leads.add(lead)
        deal = convert_lead(uow, lead, MONDAY, machine=MACHINE, pipeline="sales").opportunity
        assert deal is not None
        line = QuoteLine(
            product="Engine", quantity=Decimal(2), unit_price=Money("1000", "EUR"), tax_rate=Decimal(19)
        )
        quote = Quote(opportunity_id=deal.id, customer_id=deal.customer_id, currency="EUR", lines=[line])
        uow.quotes.add(quote.send(MONDAY))
        uow.commit()
    # Proposal needs an amount, which the deal lacks
    with any_crm.unit_of_work(tenant) as uow, pytest.raises(TransitionError, match="amount"):
        accept_quote(uow, quote.id, MONDAY + timedelta(days=1), machine=MACHINE, move_to="Proposal")
    with any_crm.unit_of_work(tenant) as uow:
        assert uow.quotes.get(quote.id).status is QuoteStatus.SENT
        stored = uow.opportunities.get(deal.id)
        stored.amount = Money("2380.00", "EUR")
        uow.opportunities.save(stored)
        done = accept_quote(uow, quote.id, MONDAY + timedelta(days=1), machine=MACHINE, move_to="Proposal")
        uow.commit()
    assert done.quote.accepted and (done.opportunity.stage, done.opportunity.probability) == ("Proposal", 50)
    accepted = done.events[0]
    assert isinstance(accepted, QuoteAccepted) and accepted.total == Money("2380.00", "EUR")
    with any_crm.unit_of_work(tenant) as uow:
        assert uow.opportunities.get(deal.id).stage == "Proposal"
        assert uow.quotes.get(quote.id).accepted
