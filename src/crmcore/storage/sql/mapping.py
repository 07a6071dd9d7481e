"""Explicit mappings between aggregates and table rows (no ORM instrumentation of domain classes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any, Generic, TypeVar

import attrs
from sqlalchemy import Row, Table

from crmcore.assignment.state import MemberTurns, QueueState
from crmcore.customers.contact import Contact
from crmcore.customers.contact_points import Address, Consent, EmailAddress, PhoneNumber
from crmcore.customers.customer import Customer, CustomerKind, LifecycleStage
from crmcore.customers.interaction import Direction, Interaction, InteractionChannel
from crmcore.customers.order import Order, OrderLine, OrderStatus, SalesChannel
from crmcore.money import Money, minor_units
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import ForecastCategory, LineItem, Opportunity, StageChange
from crmcore.pipeline.quote import Quote, QuoteLine, QuoteStatus
from crmcore.serialization import structure, unstructure
from crmcore.service.ticket import (
    Comment,
    SatisfactionSurvey,
    StatusChange,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketType,
)
from crmcore.service.timers import SlaTimer
from crmcore.storage.base import (
    ASSIGNMENT_QUEUES,
    CONTACTS,
    CUSTOMERS,
    INTERACTIONS,
    LEADS,
    OPPORTUNITIES,
    ORDERS,
    QUOTES,
    SLA_TIMERS,
    SURVEYS,
    TICKETS,
    Aggregate,
)
from crmcore.storage.sql import tables
from crmcore.storage.sql.where import SqlFields
from crmcore.validation import trusted

__all__ = [
    "ASSIGNMENT_QUEUE_MAPPING",
    "CONTACT_MAPPING",
    "CUSTOMER_MAPPING",
    "INTERACTION_MAPPING",
    "LEAD_MAPPING",
    "MAPPINGS",
    "OPPORTUNITY_MAPPING",
    "ORDER_MAPPING",
    "QUOTE_MAPPING",
    "SLA_TIMER_MAPPING",
    "SURVEY_MAPPING",
    "SqlMapping",
    "TICKET_MAPPING",
]

T = TypeVar("T")


@attrs.frozen
class SqlMapping(Generic[T]):
    """How one aggregate is written to and read from its table."""

    aggregate: Aggregate[T]
    table: Table
    to_row: Callable[[T, str], dict[str, Any]]
    """(object, tenant) -> column values."""
    from_rows: Callable[[Sequence[Row[Any]]], list[T]]
    """Rows this library wrote -> objects (field checks skipped: they ran on write)."""
    fields: SqlFields


def _values(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


_EMAIL = ("address", "label", "primary")
_PHONE = ("number", "label", "primary", "extension")
_ADDRESS = tuple(a.name for a in attrs.fields(Address))


def customer_to_row(c: Customer, tenant: str) -> dict[str, Any]:
    """Column values for a customer; denormalized lookup columns (email, country, city) included."""
    limit = c.credit_limit
    address = c.primary_address
    return {
        "tenant_id": tenant,
        "id": c.id,
        "version": c.version,
        "kind": c.kind.value,
        "name": c.name,
        "owner": c.owner,
        "currency": c.currency,
        "credit_limit_amount": limit.amount if limit else None,
        "credit_limit_currency": limit.currency if limit else None,
        "birthday": c.birthday,
        "lifecycle_stage": c.lifecycle_stage.value,
        "email": c.primary_email,
        "phone": c.primary_phone,
        "country": address.country if address else None,
        "city": (address.city or None) if address else None,
        "emails": [_values(e, _EMAIL) for e in c.emails],
        "phones": [_values(p, _PHONE) for p in c.phones],
        "addresses": [_values(a, _ADDRESS) for a in c.addresses],
        "tags": list(c.tags),
        "consents": _consents_data(c.consents),
        "custom": c.custom,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _consents_data(consents: Sequence[Consent]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = unstructure(list(consents))
    return data


def _consents(data: list[dict[str, Any]]) -> tuple[Consent, ...]:
    if not data:
        return ()
    return structure(data, tuple[Consent, ...])


_STAGES = {stage.value: stage for stage in LifecycleStage}
_KINDS = {kind.value: kind for kind in CustomerKind}
_ROW_COLUMNS = (
    "id",
    "version",
    "kind",
    "name",
    "owner",
    "currency",
    "credit_limit_amount",
    "credit_limit_currency",
    "birthday",
    "lifecycle_stage",
    "emails",
    "phones",
    "addresses",
    "tags",
    "consents",
    "custom",
    "created_at",
    "updated_at",
)
_new = object.__new__
_set = object.__setattr__


def _trusted_money(amount: Any, currency: str) -> Money:
    # Money's converter and currency check already ran when the row was written, and the
    # column type hands back a Decimal: skip both (the hottest constructor on a read).
    money: Money = _new(Money)
    _set(money, "amount", amount)
    _set(money, "currency", currency)
    return money


def customers_from_rows(rows: Sequence[Row[Any]]) -> list[Customer]:
    """Customers from rows of `tables.customers`.

    Columns are taken by position (looked up once per call from the rows' keys): a `Row`'s
    attribute access costs more than building the customer's value objects.
    """
    if not rows:
        return []
    pick = itemgetter(*map(rows[0]._fields.index, _ROW_COLUMNS))
    kinds = _KINDS
    out: list[Customer] = []
    append = out.append
    with trusted():
        for (
            id,
            version,
            kind,
            name,
            owner,
            currency,
            limit_amount,
            limit_currency,
            birthday,
            stage,
            emails,
            phones,
            addresses,
            tags,
            consents,
            custom,
            created_at,
            updated_at,
        ) in map(pick, rows):
            append(
                Customer(
                    id=id,
                    version=version,
                    kind=kinds[kind],
                    name=name,
                    owner=owner,
                    currency=currency,
                    credit_limit=(
                        None if limit_amount is None else _trusted_money(limit_amount, limit_currency)
                    ),
                    birthday=birthday,
                    lifecycle_stage=_STAGES[stage],
                    emails=tuple([EmailAddress(**e) for e in emails]),
                    phones=tuple([PhoneNumber(**p) for p in phones]),
                    addresses=tuple([Address(**a) for a in addresses]),
                    tags=tuple(tags),
                    consents=_consents(consents),
                    custom=custom,
                    created_at=created_at,
                    updated_at=updated_at,
                )
            )
    return out


_c = tables.customers.c
CUSTOMER_MAPPING: SqlMapping[Customer] = SqlMapping(
    CUSTOMERS,
    tables.customers,
    customer_to_row,
    customers_from_rows,
    SqlFields(
        CUSTOMERS.fields,
        columns={
            name: _c[name]
            for name in (
                "id",
                "name",
                "kind",
                "owner",
                "currency",
                "birthday",
                "lifecycle_stage",
                "email",
                "phone",
                "country",
                "city",
                "tags",
                "created_at",
                "updated_at",
                "version",
            )
        },
        money={"credit_limit": (_c.credit_limit_amount, _c.credit_limit_currency)},
        json={"custom": _c.custom},
    ),
)


def contact_to_row(c: Contact, tenant: str) -> dict[str, Any]:
    """Column values for a contact."""
    return {
        "tenant_id": tenant,
        "id": c.id,
        "version": c.version,
        "customer_id": c.customer_id,
        "name": c.name,
        "title": c.title,
        "roles": list(c.roles),
        "email": c.primary_email,
        "phone": c.primary_phone,
        "emails": [_values(e, _EMAIL) for e in c.emails],
        "phones": [_values(p, _PHONE) for p in c.phones],
        "consents": _consents_data(c.consents),
        "owner": c.owner,
        "custom": c.custom,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def contacts_from_rows(rows: Sequence[Row[Any]]) -> list[Contact]:
    """Contacts from rows of `tables.contacts`."""
    with trusted():
        return [
            Contact(
                id=r.id,
                version=r.version,
                customer_id=r.customer_id,
                name=r.name,
                title=r.title,
                roles=tuple(r.roles),
                emails=tuple([EmailAddress(**e) for e in r.emails]),
                phones=tuple([PhoneNumber(**p) for p in r.phones]),
                consents=_consents(r.consents),
                owner=r.owner,
                custom=r.custom,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


_INTERACTION_COLUMNS = (
    "id",
    "version",
    "customer_id",
    "contact_id",
    "occurred_at",
    "owner",
    "subject",
    "body",
    "outcome",
    "duration_seconds",
    "custom",
    "created_at",
    "updated_at",
)


def interaction_to_row(i: Interaction, tenant: str) -> dict[str, Any]:
    """Column values for an interaction."""
    row = {name: getattr(i, name) for name in _INTERACTION_COLUMNS}
    row.update(tenant_id=tenant, channel=i.channel.value, direction=i.direction.value)
    return row


_CHANNELS = {c.value: c for c in InteractionChannel}
_DIRECTIONS = {d.value: d for d in Direction}


def interactions_from_rows(rows: Sequence[Row[Any]]) -> list[Interaction]:
    """Interactions from rows of `tables.interactions`."""
    with trusted():
        return [
            Interaction(
                channel=_CHANNELS[r.channel],
                direction=_DIRECTIONS[r.direction],
                **{name: getattr(r, name) for name in _INTERACTION_COLUMNS},
            )
            for r in rows
        ]


def _line_data(line: OrderLine) -> dict[str, Any]:
    data: dict[str, Any] = {
        "product": line.product,
        "sku": line.sku,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price.amount),
    }
    if line.discount is not None:
        data["discount"] = str(line.discount.amount)
    return data


def _line(data: dict[str, Any], currency: str) -> OrderLine:
    discount = data.get("discount")
    return OrderLine(
        product=data["product"],
        sku=data["sku"],
        quantity=Decimal(data["quantity"]),
        unit_price=_trusted_money(Decimal(data["unit_price"]), currency),
        discount=None if discount is None else _trusted_money(Decimal(discount), currency),
    )


def order_to_row(o: Order, tenant: str) -> dict[str, Any]:
    """Column values for an order; the total is stored twice: exact decimal and minor units."""
    total = o.total
    return {
        "tenant_id": tenant,
        "id": o.id,
        "version": o.version,
        "customer_id": o.customer_id,
        "number": o.number,
        "ordered_at": o.ordered_at,
        "status": o.status.value,
        "counts": o.status.counts,
        "channel": o.channel.value,
        "currency": o.currency,
        "total_amount": total.amount,
        "total_minor": int(total.amount.scaleb(minor_units(o.currency))),
        "discount_amount": None if o.discount is None else o.discount.amount,
        "lines": [_line_data(line) for line in o.lines],
        "custom": o.custom,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


_STATUSES = {s.value: s for s in OrderStatus}
_SALES_CHANNELS = {c.value: c for c in SalesChannel}


def orders_from_rows(rows: Sequence[Row[Any]]) -> list[Order]:
    """Orders from rows of `tables.orders` (lines' amounts are in the order's currency)."""
    with trusted():
        return [
            Order(
                id=r.id,
                version=r.version,
                customer_id=r.customer_id,
                number=r.number,
                ordered_at=r.ordered_at,
                status=_STATUSES[r.status],
                channel=_SALES_CHANNELS[r.channel],
                currency=r.currency,
                discount=None if r.discount_amount is None else _trusted_money(r.discount_amount, r.currency),
                lines=tuple([_line(line, r.currency) for line in r.lines]),
                custom=r.custom,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


def _columns(table: Any, names: Sequence[str]) -> dict[str, Any]:
    return {name: table.c[name] for name in names}


_STAMPS = ("id", "created_at", "updated_at", "version")
CONTACT_MAPPING: SqlMapping[Contact] = SqlMapping(
    CONTACTS,
    tables.contacts,
    contact_to_row,
    contacts_from_rows,
    SqlFields(
        CONTACTS.fields,
        columns=_columns(
            tables.contacts, ("customer_id", "name", "title", "roles", "email", "phone", "owner", *_STAMPS)
        ),
        json={"custom": tables.contacts.c.custom},
    ),
)
INTERACTION_MAPPING: SqlMapping[Interaction] = SqlMapping(
    INTERACTIONS,
    tables.interactions,
    interaction_to_row,
    interactions_from_rows,
    SqlFields(
        INTERACTIONS.fields,
        columns=_columns(
            tables.interactions,
            (
                "customer_id",
                "contact_id",
                "occurred_at",
                "channel",
                "direction",
                "owner",
                "subject",
                "outcome",
                "duration_seconds",
                *_STAMPS,
            ),
        ),
        json={"custom": tables.interactions.c.custom},
    ),
)
_o = tables.orders.c
ORDER_MAPPING: SqlMapping[Order] = SqlMapping(
    ORDERS,
    tables.orders,
    order_to_row,
    orders_from_rows,
    SqlFields(
        ORDERS.fields,
        columns=_columns(
            tables.orders, ("customer_id", "number", "ordered_at", "status", "channel", "currency", *_STAMPS)
        ),
        money={"total": (_o.total_amount, _o.currency)},
        json={"custom": _o.custom},
    ),
)

_TICKET_COLUMNS = (
    "id",
    "version",
    "customer_id",
    "contact_id",
    "subject",
    "description",
    "status",
    "assignee",
    "team",
    "first_response_at",
    "solved_at",
    "reopen_count",
    "sla_policy",
    "sla_version",
    "custom",
    "created_at",
    "updated_at",
)


def ticket_to_row(t: Ticket, tenant: str) -> dict[str, Any]:
    """Column values for a ticket; comments and status history go to JSON columns."""
    row = {name: getattr(t, name) for name in _TICKET_COLUMNS}
    row.update(
        tenant_id=tenant,
        channel=t.channel.value,
        priority=t.priority.value,
        type=t.type.value,
        tags=list(t.tags),
        comments=unstructure(list(t.comments)),
        status_history=unstructure(list(t.status_history)),
    )
    return row


_TICKET_CHANNELS = {c.value: c for c in TicketChannel}
_PRIORITIES = {p.value: p for p in TicketPriority}
_TICKET_TYPES = {t.value: t for t in TicketType}


def tickets_from_rows(rows: Sequence[Row[Any]]) -> list[Ticket]:
    """Tickets from rows of `tables.tickets` (statuses are not checked against a status set on read)."""
    with trusted():
        return [
            Ticket(
                channel=_TICKET_CHANNELS[r.channel],
                priority=_PRIORITIES[r.priority],
                type=_TICKET_TYPES[r.type],
                tags=tuple(r.tags),
                comments=structure(r.comments, tuple[Comment, ...]) if r.comments else (),
                status_history=(
                    structure(r.status_history, tuple[StatusChange, ...]) if r.status_history else ()
                ),
                **{name: getattr(r, name) for name in _TICKET_COLUMNS},
            )
            for r in rows
        ]


_SURVEY_COLUMNS = tuple(a.name for a in attrs.fields(SatisfactionSurvey))


def survey_to_row(s: SatisfactionSurvey, tenant: str) -> dict[str, Any]:
    """Column values for a satisfaction survey."""
    row = {name: getattr(s, name) for name in _SURVEY_COLUMNS}
    row["tenant_id"] = tenant
    return row


def surveys_from_rows(rows: Sequence[Row[Any]]) -> list[SatisfactionSurvey]:
    """Surveys from rows of `tables.surveys`."""
    with trusted():
        return [SatisfactionSurvey(**{name: getattr(r, name) for name in _SURVEY_COLUMNS}) for r in rows]


TICKET_MAPPING: SqlMapping[Ticket] = SqlMapping(
    TICKETS,
    tables.tickets,
    ticket_to_row,
    tickets_from_rows,
    SqlFields(
        TICKETS.fields,
        columns=_columns(
            tables.tickets,
            (
                "customer_id",
                "contact_id",
                "subject",
                "channel",
                "priority",
                "type",
                "status",
                "assignee",
                "team",
                "tags",
                "first_response_at",
                "solved_at",
                "reopen_count",
                "sla_policy",
                "sla_version",
                *_STAMPS,
            ),
        ),
        json={"custom": tables.tickets.c.custom},
    ),
)
SURVEY_MAPPING: SqlMapping[SatisfactionSurvey] = SqlMapping(
    SURVEYS,
    tables.surveys,
    survey_to_row,
    surveys_from_rows,
    SqlFields(
        SURVEYS.fields,
        columns=_columns(
            tables.surveys, ("ticket_id", "customer_id", "score", "sent_at", "answered_at", *_STAMPS)
        ),
        json={"custom": tables.surveys.c.custom},
    ),
)


def sla_timer_to_row(t: SlaTimer, tenant: str) -> dict[str, Any]:
    """Column values for an SLA timer."""
    return {
        "tenant_id": tenant,
        "id": t.id,
        "version": t.version,
        "next_check_at": t.next_check_at,
        "fired": list(t.fired),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def sla_timers_from_rows(rows: Sequence[Row[Any]]) -> list[SlaTimer]:
    """SLA timers from rows of `tables.sla_timers`."""
    with trusted():
        return [
            SlaTimer(
                id=r.id,
                version=r.version,
                next_check_at=r.next_check_at,
                fired=tuple(r.fired),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


def queue_state_to_row(s: QueueState, tenant: str) -> dict[str, Any]:
    """Column values for a queue's rotation state; the members' turns go to one JSON column."""
    return {
        "tenant_id": tenant,
        "id": s.id,
        "version": s.version,
        "sequence": s.sequence,
        "members": unstructure(s.members),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def queue_states_from_rows(rows: Sequence[Row[Any]]) -> list[QueueState]:
    """Rotation states from rows of `tables.assignment_queues`."""
    with trusted():
        return [
            QueueState(
                id=r.id,
                version=r.version,
                sequence=r.sequence,
                members=structure(r.members, dict[str, MemberTurns]),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]


SLA_TIMER_MAPPING: SqlMapping[SlaTimer] = SqlMapping(
    SLA_TIMERS,
    tables.sla_timers,
    sla_timer_to_row,
    sla_timers_from_rows,
    SqlFields(SLA_TIMERS.fields, columns=_columns(tables.sla_timers, ("next_check_at", *_STAMPS))),
)
ASSIGNMENT_QUEUE_MAPPING: SqlMapping[QueueState] = SqlMapping(
    ASSIGNMENT_QUEUES,
    tables.assignment_queues,
    queue_state_to_row,
    queue_states_from_rows,
    SqlFields(
        ASSIGNMENT_QUEUES.fields,
        columns=_columns(tables.assignment_queues, ("sequence", *_STAMPS)),
    ),
)

_LEAD_COLUMNS = (
    "id",
    "version",
    "name",
    "company",
    "title",
    "source",
    "campaign",
    "industry",
    "company_size",
    "country",
    "region",
    "disqualified_reason",
    "owner",
    "assigned_at",
    "last_touched_at",
    "converted_at",
    "converted_customer_id",
    "converted_contact_id",
    "converted_opportunity_id",
    "custom",
    "created_at",
    "updated_at",
)


def lead_to_row(lead: Lead, tenant: str) -> dict[str, Any]:
    """Column values for a lead; email and phone (with their labels) also go to one JSON column.

    ``email`` holds the address as given, so conditions on it answer as in Python;
    ``email_folded`` holds it casefolded, for case-insensitive lookups by index.
    """
    row = {name: getattr(lead, name) for name in _LEAD_COLUMNS}
    email, phone = lead.email, lead.phone
    row.update(
        tenant_id=tenant,
        status=lead.status.value,
        email=None if email is None else email.address,
        email_folded=None if email is None else email.address.casefold(),
        phone=None if phone is None else phone.number,
        contact_points={
            "email": None if email is None else _values(email, _EMAIL),
            "phone": None if phone is None else _values(phone, _PHONE),
        },
        tags=list(lead.tags),
    )
    return row


_LEAD_STATUSES = {s.value: s for s in LeadStatus}


def leads_from_rows(rows: Sequence[Row[Any]]) -> list[Lead]:
    """Leads from rows of `tables.leads`."""
    with trusted():
        out: list[Lead] = []
        for r in rows:
            points = r.contact_points
            email, phone = points.get("email"), points.get("phone")
            out.append(
                Lead(
                    status=_LEAD_STATUSES[r.status],
                    email=None if email is None else EmailAddress(**email),
                    phone=None if phone is None else PhoneNumber(**phone),
                    tags=tuple(r.tags),
                    **{name: getattr(r, name) for name in _LEAD_COLUMNS},
                )
            )
        return out


_OPPORTUNITY_COLUMNS = (
    "id",
    "version",
    "name",
    "customer_id",
    "pipeline",
    "stage",
    "close_date",
    "owner",
    "contact_id",
    "lead_id",
    "probability",
    "next_step",
    "lost_reason",
    "source",
    "stage_entered_at",
    "closed_at",
    "won",
    "custom",
    "created_at",
    "updated_at",
)


def opportunity_to_row(o: Opportunity, tenant: str) -> dict[str, Any]:
    """Column values for an opportunity; the amount exactly as given, line items and history as JSON."""
    row = {name: getattr(o, name) for name in _OPPORTUNITY_COLUMNS}
    amount = o.amount
    row.update(
        tenant_id=tenant,
        amount=None if amount is None else amount.amount,
        currency=None if amount is None else amount.currency,
        forecast_category=o.forecast_category.value,
        line_items=unstructure(list(o.line_items)),
        stage_history=unstructure(list(o.stage_history)),
        tags=list(o.tags),
    )
    return row


_FORECAST = {f.value: f for f in ForecastCategory}


def opportunities_from_rows(rows: Sequence[Row[Any]]) -> list[Opportunity]:
    """Opportunities from rows of `tables.opportunities`."""
    with trusted():
        return [
            Opportunity(
                amount=None if r.amount is None else _trusted_money(r.amount, r.currency),
                forecast_category=_FORECAST[r.forecast_category],
                line_items=structure(r.line_items, tuple[LineItem, ...]) if r.line_items else (),
                stage_history=structure(r.stage_history, tuple[StageChange, ...]) if r.stage_history else (),
                tags=tuple(r.tags),
                **{name: getattr(r, name) for name in _OPPORTUNITY_COLUMNS},
            )
            for r in rows
        ]


_QUOTE_COLUMNS = (
    "id",
    "version",
    "number",
    "customer_id",
    "opportunity_id",
    "currency",
    "expires_on",
    "sent_at",
    "accepted_at",
    "rejected_at",
    "rejection_reason",
    "expired_at",
    "custom",
    "created_at",
    "updated_at",
)


def _quote_line_data(line: QuoteLine) -> dict[str, Any]:
    return {
        "product": line.product,
        "quantity": str(line.quantity),
        "unit_price": str(line.unit_price.amount),
        "discount_percent": str(line.discount_percent),
        "tax_rate": str(line.tax_rate),
    }


def _quote_line(data: dict[str, Any], currency: str) -> QuoteLine:
    return QuoteLine(
        product=data["product"],
        quantity=Decimal(data["quantity"]),
        unit_price=_trusted_money(Decimal(data["unit_price"]), currency),
        discount_percent=Decimal(data["discount_percent"]),
        tax_rate=Decimal(data["tax_rate"]),
    )


def quote_to_row(q: Quote, tenant: str) -> dict[str, Any]:
    """Column values for a quote; the total is stored twice: exact decimal and minor units."""
    row = {name: getattr(q, name) for name in _QUOTE_COLUMNS}
    total = q.total
    row.update(
        tenant_id=tenant,
        status=q.status.value,
        total_amount=total.amount,
        total_minor=int(total.amount.scaleb(minor_units(q.currency))),
        lines=[_quote_line_data(line) for line in q.lines],
    )
    return row


_QUOTE_STATUSES = {s.value: s for s in QuoteStatus}


def quotes_from_rows(rows: Sequence[Row[Any]]) -> list[Quote]:
    """Quotes from rows of `tables.quotes` (lines' prices are in the quote's currency)."""
    with trusted():
        return [
            Quote(
                status=_QUOTE_STATUSES[r.status],
                lines=tuple([_quote_line(line, r.currency) for line in r.lines]),
                **{name: getattr(r, name) for name in _QUOTE_COLUMNS},
            )
            for r in rows
        ]


_l = tables.leads.c
LEAD_MAPPING: SqlMapping[Lead] = SqlMapping(
    LEADS,
    tables.leads,
    lead_to_row,
    leads_from_rows,
    SqlFields(
        LEADS.fields,
        columns=_columns(
            tables.leads,
            (
                "name",
                "company",
                "title",
                "email",
                "email_folded",
                "phone",
                "source",
                "campaign",
                "industry",
                "company_size",
                "country",
                "region",
                "status",
                "owner",
                "assigned_at",
                "last_touched_at",
                "tags",
                "converted_at",
                "converted_customer_id",
                *_STAMPS,
            ),
        ),
        json={"custom": _l.custom},
    ),
)
_op = tables.opportunities.c
OPPORTUNITY_MAPPING: SqlMapping[Opportunity] = SqlMapping(
    OPPORTUNITIES,
    tables.opportunities,
    opportunity_to_row,
    opportunities_from_rows,
    SqlFields(
        OPPORTUNITIES.fields,
        columns=_columns(
            tables.opportunities,
            (
                "name",
                "customer_id",
                "pipeline",
                "stage",
                "close_date",
                "owner",
                "contact_id",
                "lead_id",
                "probability",
                "forecast_category",
                "source",
                "stage_entered_at",
                "closed_at",
                "won",
                "tags",
                *_STAMPS,
            ),
        ),
        money={"amount": (_op.amount, _op.currency)},
        json={"custom": _op.custom},
    ),
)
_q = tables.quotes.c
QUOTE_MAPPING: SqlMapping[Quote] = SqlMapping(
    QUOTES,
    tables.quotes,
    quote_to_row,
    quotes_from_rows,
    SqlFields(
        QUOTES.fields,
        columns=_columns(
            tables.quotes,
            (
                "number",
                "customer_id",
                "opportunity_id",
                "status",
                "currency",
                "expires_on",
                "sent_at",
                "accepted_at",
                "rejected_at",
                "expired_at",
                *_STAMPS,
            ),
        ),
        minor_money={"total": (_q.total_minor, _q.currency)},
        json={"custom": _q.custom},
    ),
)

MAPPINGS: dict[str, SqlMapping[Any]] = {
    m.aggregate.name: m
    for m in (
        CUSTOMER_MAPPING,
        CONTACT_MAPPING,
        INTERACTION_MAPPING,
        ORDER_MAPPING,
        TICKET_MAPPING,
        SURVEY_MAPPING,
        SLA_TIMER_MAPPING,
        ASSIGNMENT_QUEUE_MAPPING,
        LEAD_MAPPING,
        OPPORTUNITY_MAPPING,
        QUOTE_MAPPING,
    )
}
