"""Lead conversion and quote acceptance, each in one unit of work.

Lead conversion: a qualified lead becomes a customer, a contact and an opportunity, in one unit of work.

The customer is the one the host names, else an existing one found by the duplicate rules (same
email or phone, or a similar name with a shared company, ...), else a new one. A lead with a
company converts into a company customer with the person as its `Contact`; a lead without one
converts into a person customer (no contact). The opportunity starts in its pipeline's first
stage through the stage machine, so its probability and forecast category are the stage's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import attrs

from crmcore.conditions import Condition, Field
from crmcore.customers.contact import Contact
from crmcore.customers.contact_points import Address
from crmcore.customers.customer import Customer, CustomerKind, LifecycleStage
from crmcore.customers.duplicates import DuplicateRules, find_matches
from crmcore.errors import TransitionError, ValidationError
from crmcore.events import DomainEvent
from crmcore.money import Money
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import Opportunity
from crmcore.pipeline.quote import Quote
from crmcore.pipeline.transitions import StageMachine
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

__all__ = ["Acceptance", "Conversion", "LeadConverted", "QuoteAccepted", "accept_quote", "convert_lead"]


@attrs.frozen(kw_only=True)
class LeadConverted(DomainEvent):
    """Lead ``aggregate_id`` became ``customer_id`` (``new_customer``: created for it), with a contact
    and an opportunity (None when not asked for)."""

    event_type: ClassVar[str] = "lead.converted"
    customer_id: str
    new_customer: bool
    contact_id: str | None = None
    opportunity_id: str | None = None
    matched_by: tuple[str, ...] = ()
    """Why an existing customer was taken: the duplicate signals (``same_email``, ...) or ``given``."""


@attrs.frozen(kw_only=True)
class Conversion:
    """What `convert_lead` stored: the lead as saved, the customer, contact and opportunity, events."""

    lead: Lead
    customer: Customer
    new_customer: bool
    contact: Contact | None
    opportunity: Opportunity | None
    events: tuple[DomainEvent, ...]


def _candidates(uow: UnitOfWork, lead: Lead) -> list[Customer]:
    """Customers that could be the lead's: same email, phone or (company leads) company name."""
    probes: list[Condition] = []
    if lead.email is not None:  # stored addresses keep their local part's case: try it as given and lower
        probes.append(Field("email").in_(sorted({lead.email.address, lead.email.address.lower()})))
    if lead.phone is not None:
        probes.append(Field("phone") == lead.phone.number)
    if lead.company:
        probes.append(Field("name") == lead.company)
    elif lead.name:
        probes.append(Field("name") == lead.name)
    found: dict[str, Customer] = {}
    for probe in probes:
        for customer in uow.customers.find(probe, limit=50):
            found.setdefault(customer.id, customer)
    return list(found.values())


def _as_customer(lead: Lead, now: datetime) -> Customer:
    company = bool(lead.company)
    return Customer(
        name=lead.company if company else lead.name,
        kind=CustomerKind.COMPANY if company else CustomerKind.PERSON,
        emails=() if company or lead.email is None else (attrs.evolve(lead.email, primary=True),),
        phones=() if company or lead.phone is None else (attrs.evolve(lead.phone, primary=True),),
        addresses=(Address(country=lead.country, primary=True),) if lead.country else (),
        owner=lead.owner,
        lifecycle_stage=LifecycleStage.OPPORTUNITY,
        custom={"industry": lead.industry} if lead.industry else {},
        created_at=now,
    )


def convert_lead(
    uow: UnitOfWork,
    lead: Lead,
    now: datetime,
    *,
    machine: StageMachine | None = None,
    pipeline: str | None = None,
    opportunity_name: str | None = None,
    amount: Money | None = None,
    customer_id: str | None = None,
    rules: DuplicateRules | None = None,
    by: str | None = None,
) -> Conversion:
    """Convert qualified ``lead`` in ``uow`` (the caller commits; nothing is stored until then).

    The customer: ``customer_id`` if given, else the best existing match under ``rules`` (the
    duplicate rules; candidates are read by email, phone and name), else a new customer. With a
    company, the person becomes a `Contact` of it (an existing contact with the same email is
    reused). With ``machine`` and ``pipeline``, an opportunity starts in the pipeline's first
    stage. The lead is saved with its ``converted_*`` fields, and `LeadConverted` is recorded
    with the stage machine's events.

    Raises:
        ValidationError: a naive ``now``, an unstored lead, ``pipeline`` without ``machine``.
        TransitionError: the lead is not qualified, or was converted already; the first stage's
            requirements are not met by the new opportunity (all listed).
        NotFound: ``customer_id`` names no customer.
    """
    at = utc_datetime(now, "now")
    if not isinstance(lead, Lead) or lead.version == 0:
        raise ValidationError("lead", "must be a stored Lead (uow.leads.add first)")
    if (machine is None) != (pipeline is None):
        raise ValidationError(
            "pipeline", "and machine go together: both for an opportunity, neither for none"
        )
    if lead.converted:
        raise TransitionError(
            f"lead {lead.id!r} was converted already, to customer {lead.converted_customer_id!r}"
        )
    if lead.status is not LeadStatus.QUALIFIED:
        raise TransitionError(f"lead {lead.id!r} is {lead.status.value}: only qualified leads convert")

    matched_by: tuple[str, ...] = ()
    new_customer = False
    if customer_id is not None:
        customer = uow.customers.get(customer_id)
        matched_by = ("given",)
    else:
        candidate = _as_customer(lead, at)
        candidates = _candidates(uow, lead)
        same_company = sorted(
            (
                c.id
                for c in candidates
                if lead.company
                and c.kind is CustomerKind.COMPANY
                and c.name.casefold() == lead.company.casefold()
            ),
        )
        matches = [] if same_company else find_matches([candidate], candidates, rules)
        if same_company:
            customer = uow.customers.get(same_company[0])
            matched_by = ("same_company_name",)
        elif matches:
            customer = uow.customers.get(matches[0].b)
            matched_by = tuple(sorted({r.kind.value for r in matches[0].reasons}))
        else:
            customer, new_customer = candidate, True
            uow.customers.add(customer)

    contact: Contact | None = None
    if lead.company:
        existing: Sequence[Contact] = ()
        if lead.email is not None:
            existing = uow.contacts.find(
                (Field("customer_id") == customer.id) & (Field("email") == lead.email.address), limit=1
            )
        if existing:
            contact = existing[0]
        else:
            contact = Contact(
                customer_id=customer.id,
                name=lead.name,
                title=lead.title,
                emails=() if lead.email is None else (attrs.evolve(lead.email, primary=True),),
                phones=() if lead.phone is None else (attrs.evolve(lead.phone, primary=True),),
                owner=lead.owner,
            )
            uow.contacts.add(contact)

    events: list[DomainEvent] = []
    opportunity: Opportunity | None = None
    if machine is not None and pipeline is not None:
        draft = Opportunity(
            name=opportunity_name or f"{customer.name}: {lead.source or 'new'} deal",
            customer_id=customer.id,
            pipeline=pipeline,
            stage="-",
            amount=amount,
            owner=lead.owner,
            contact_id=None if contact is None else contact.id,
            lead_id=lead.id,
            source=lead.source,
        )
        started = machine.start(draft, at, by=by)
        opportunity = started.opportunity
        uow.opportunities.add(opportunity)
        events.extend(started.events)

    converted = attrs.evolve(
        lead,
        converted_at=at,
        converted_customer_id=customer.id,
        converted_contact_id=None if contact is None else contact.id,
        converted_opportunity_id=None if opportunity is None else opportunity.id,
    )
    uow.leads.save(converted)
    event = LeadConverted(
        aggregate_id=lead.id,
        occurred_at=at,
        customer_id=customer.id,
        new_customer=new_customer,
        contact_id=None if contact is None else contact.id,
        opportunity_id=None if opportunity is None else opportunity.id,
        matched_by=matched_by,
    )
    events.insert(0, event)
    uow.record(*events)
    return Conversion(
        lead=converted,
        customer=customer,
        new_customer=new_customer,
        contact=contact,
        opportunity=opportunity,
        events=tuple(events),
    )


@attrs.frozen(kw_only=True)
class QuoteAccepted(DomainEvent):
    """Quote ``aggregate_id`` for ``opportunity_id`` was accepted; ``moved_to`` the deal's new stage."""

    event_type: ClassVar[str] = "quote.accepted"
    opportunity_id: str
    total: Money
    moved_to: str | None = None


@attrs.frozen(kw_only=True)
class Acceptance:
    """What `accept_quote` stored: the quote, the deal (moved or not) and the events recorded."""

    quote: Quote
    opportunity: Opportunity
    events: tuple[DomainEvent, ...]


def accept_quote(
    uow: UnitOfWork,
    quote_id: str,
    now: datetime,
    *,
    machine: StageMachine | None = None,
    move_to: str | None = None,
    by: str | None = None,
) -> Acceptance:
    """Accept quote ``quote_id`` in ``uow`` and, with ``machine`` and ``move_to``, move its deal there.

    Both are saved in the same unit of work (the caller commits), so a deal never shows an
    accepted quote in the wrong stage. A deal already in ``move_to`` stays where it is.

    Raises:
        NotFound: no such quote, or its opportunity is gone.
        TransitionError: the quote cannot be accepted (not sent, expired, decided), or the deal
            cannot enter ``move_to`` (every unmet requirement listed).
        ValidationError: a naive ``now``; ``move_to`` without ``machine``.
    """
    at = utc_datetime(now, "now")
    if (machine is None) != (move_to is None):
        raise ValidationError("move_to", "and machine go together")
    quote = uow.quotes.get(quote_id).accept(at)
    opportunity = uow.opportunities.get(quote.opportunity_id)
    events: list[DomainEvent] = []
    moved_to = None
    if machine is not None and move_to is not None and opportunity.stage != move_to:
        moved = machine.move(opportunity, move_to, at, by=by)
        opportunity = moved.opportunity
        uow.opportunities.save(opportunity)
        events.extend(moved.events)
        moved_to = move_to
    uow.quotes.save(quote)
    accepted = QuoteAccepted(
        aggregate_id=quote.id,
        occurred_at=at,
        opportunity_id=opportunity.id,
        total=quote.total,
        moved_to=moved_to,
    )
    events.insert(0, accepted)
    uow.record(*events)
    return Acceptance(quote=quote, opportunity=opportunity, events=tuple(events))
