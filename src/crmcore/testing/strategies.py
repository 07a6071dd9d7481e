"""Hypothesis strategies for crmcore objects and conditions, shared by every test suite.

Values come from small pools on purpose, so random conditions match some objects and not others,
and so orderings meet ties, NULLs, case and non-ASCII text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from crmcore.conditions import (
    All,
    Between,
    Compare,
    CompareOp,
    Condition,
    Contains,
    FieldSet,
    FieldType,
    In,
    IsNull,
    Not,
    Relative,
    TimeUnit,
)
from crmcore.conditions import (
    Any as AnyOf,
)
from crmcore.customers.contact import Contact
from crmcore.customers.contact_points import Address, Consent, ConsentChannel, EmailAddress, PhoneNumber
from crmcore.customers.customer import CUSTOMER_FIELDS, Customer, CustomerKind, LifecycleStage
from crmcore.customers.interaction import Direction, Interaction, InteractionChannel
from crmcore.customers.order import Order, OrderLine, OrderStatus, SalesChannel
from crmcore.customers.schema import (
    CustomFieldDef,
    CustomFieldType,
    DataRules,
    FieldSchema,
    UnknownKeys,
    ValidationRule,
)
from crmcore.customers.segments import CUSTOMER_FACT_FIELDS, Segment
from crmcore.money import Money, minor_units
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import ForecastCategory, LineItem, Opportunity, StageChange
from crmcore.pipeline.quote import Quote, QuoteLine
from crmcore.service.ticket import (
    DEFAULT_STATUSES,
    AuthorRole,
    SatisfactionSurvey,
    Ticket,
    TicketChannel,
    TicketPriority,
    TicketType,
)

__all__ = [
    "LEAD_EMAIL_POOL",
    "NOW",
    "TEXT_POOL",
    "aware_datetimes",
    "conditions",
    "consents",
    "contacts",
    "custom_field_defs",
    "custom_values",
    "customers",
    "data_rules",
    "interactions",
    "json_values",
    "leads",
    "money",
    "opportunities",
    "order_by",
    "orders",
    "quote_lines",
    "quotes",
    "segment_money",
    "segments",
    "surveys",
    "tickets",
]

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
"""The fixed "now" of generated data and relative-date conditions."""

TEXT_POOL = ("a", "A", "ab", "b", "Ab", "ä", "é", "z", "ß", "日本", "a b", "zz")
"""Text that exercises case, code-point order, non-ASCII and substrings."""

_ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
_TAGS = ("vip", "b2b", "new", "churn-risk", "Vip")
_CUSTOM_KEYS = ("tier", "score", "flag", "note")
_CURRENCIES = ("EUR", "USD", "JPY")


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes in several offsets, around `NOW` (so relative dates both match and miss)."""
    return st.builds(
        lambda seconds, micro, zone: (NOW + timedelta(seconds=seconds, microseconds=micro)).astimezone(zone),
        st.integers(-400 * 86400, 60 * 86400),
        st.integers(0, 999_999),
        st.sampled_from(_ZONES),
    )


def dates() -> st.SearchStrategy[date]:
    """Dates within a few years of `NOW`."""
    return st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31))


def money() -> st.SearchStrategy[Money]:
    """Money in a few currencies with amounts of up to 12 significant digits."""
    return st.builds(
        lambda cents, currency: Money(Decimal(cents).scaleb(-2), currency),
        st.integers(-(10**11), 10**11) | st.sampled_from([0, 100, 150, 10_000]),
        st.sampled_from(_CURRENCIES),
    )


def json_values() -> st.SearchStrategy[Any]:
    """JSON values, nested, with floats that survive every store's JSON column unchanged."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**53 - 1), 2**53 - 1)
        | st.floats(-1e9, 1e9, allow_nan=False).map(lambda x: round(x, 4))
        | st.text(max_size=12).filter(lambda s: "\x00" not in s)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_CUSTOM_KEYS), inner, max_size=3)
        ),
        max_leaves=6,
    )


def custom_values() -> st.SearchStrategy[Any]:
    """Custom-field values from a pool mixing types, so typed comparisons meet mismatches."""
    return st.sampled_from([0, 1, 3, -2.5, 2.5, 10, "a", "b", "ab", "B", True, False, None, [1], {"x": 1}])


def _texts() -> st.SearchStrategy[str]:
    return st.sampled_from(TEXT_POOL)


PHONE_POOL = ("+49 30 1234567", "+1-202-555-0100", "+44 20 7946 0958", "+33 1 23 45 67 89")


def _phones() -> st.SearchStrategy[list[PhoneNumber]]:
    return st.lists(
        st.builds(
            PhoneNumber,
            number=st.sampled_from(PHONE_POOL),
            label=st.sampled_from(["work", "mobile"]),
            extension=st.sampled_from(["", "12"]),
        ),
        max_size=2,
    )


def _emails() -> st.SearchStrategy[list[EmailAddress]]:
    return st.lists(
        st.builds(
            EmailAddress,
            address=st.sampled_from(["ada@example.com", "bob@example.org", "x.y+z@mail.example.de"]),
            label=st.sampled_from(["work", "home"]),
        ),
        max_size=2,
    )


def consents() -> st.SearchStrategy[list[Consent]]:
    """Zero to four consents, at most one per channel."""
    return st.lists(
        st.builds(
            Consent,
            channel=st.sampled_from(ConsentChannel),
            granted=st.booleans(),
            source=st.sampled_from(["signup form", "call", "import"]),
            at=aware_datetimes(),
        ),
        max_size=4,
        unique_by=lambda c: c.channel,
    )


def _ids(prefix: str, n: int) -> st.SearchStrategy[str]:
    return st.integers(0, n - 1).map(lambda i: f"{prefix}{i}")


def contacts(customer_ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Contact]:
    """Contacts of customers drawn from ``customer_ids`` (default ``c0``..``c3``)."""
    return st.builds(
        Contact,
        customer_id=_ids("c", 4) if customer_ids is None else customer_ids,
        name=_texts(),
        title=st.sampled_from(["", "CEO", "Buyer"]),
        roles=st.lists(st.sampled_from(["billing", "decision maker", "technical"]), max_size=2),
        emails=_emails(),
        phones=_phones(),
        consents=consents(),
        owner=st.none() | st.sampled_from(["u1", "u2"]),
        custom=st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2),
        created_at=aware_datetimes(),
        updated_at=aware_datetimes(),
    )


def interactions(customer_ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Interaction]:
    """Interactions on every channel, with ties in time on purpose."""
    return st.builds(
        Interaction,
        customer_id=_ids("c", 4) if customer_ids is None else customer_ids,
        occurred_at=st.sampled_from([NOW, NOW - timedelta(days=1)]) | aware_datetimes(),
        channel=st.sampled_from(InteractionChannel),
        direction=st.sampled_from(Direction),
        contact_id=st.none() | _ids("p", 3),
        owner=st.none() | st.sampled_from(["u1", "u2"]),
        subject=_texts(),
        body=st.sampled_from(["", "notes\nline two", "  padded  "]),
        outcome=st.sampled_from(["", "interested", "no answer"]),
        duration_seconds=st.none() | st.integers(0, 7200),
        custom=st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2),
        created_at=aware_datetimes(),
        updated_at=aware_datetimes(),
    )


@st.composite
def orders(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> Order:
    """Orders in one currency each, with line and order discounts, in every status."""
    currency = draw(st.sampled_from(_CURRENCIES))
    scale = 0 if currency == "JPY" else 2
    prices = st.integers(1, 100_000).map(lambda n: Money(Decimal(n).scaleb(-scale), currency))
    lines = draw(
        st.lists(
            st.builds(
                OrderLine,
                product=st.sampled_from(["Widget", "Gadget", "Service plan"]),
                sku=st.sampled_from(["", "W-1", "G-2"]),
                quantity=st.sampled_from([Decimal(1), Decimal(2), Decimal("0.5"), Decimal(12)]),
                unit_price=prices,
            ),
            max_size=3,
        )
    )
    order = Order(
        customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids),
        ordered_at=draw(aware_datetimes()),
        currency=currency,
        lines=lines,
        number=draw(st.sampled_from(["", "A-1", "A-2"])),
        status=draw(st.sampled_from(OrderStatus)),
        channel=draw(st.sampled_from(SalesChannel)),
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=draw(aware_datetimes()),
        updated_at=draw(aware_datetimes()),
    )
    if draw(st.booleans()) and lines:
        order.discount = Money(order.subtotal.amount / 4, currency).rounded()
    return order


def customers(*, rich: bool = False) -> st.SearchStrategy[Customer]:
    """Customers with every field type set or empty; ``rich`` draws free-form text and JSON."""
    free_text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and s.isprintable())
    names = free_text if rich else _texts()
    custom = (
        st.dictionaries(st.sampled_from(_CUSTOM_KEYS), json_values(), max_size=4)
        if rich
        else st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=3)
    )
    emails = _emails()
    phones = _phones()
    addresses = st.lists(
        st.builds(
            Address,
            country=st.sampled_from(["DE", "FR", "US", "JP"]),
            city=st.sampled_from(["", "Berlin", "Paris", "a", "Ä"]),
            line1=free_text if rich else st.just("Main St 1"),
            postal_code=st.sampled_from(["", "10115"]),
        ),
        max_size=2,
    )
    return st.builds(
        Customer,
        name=names,
        kind=st.sampled_from(CustomerKind),
        emails=emails,
        phones=phones,
        addresses=addresses,
        tags=st.lists(st.sampled_from(_TAGS), max_size=3),
        owner=st.none() | _texts().map(lambda s: f"user-{ord(s[0])}") | st.sampled_from(["u1", "u2"]),
        currency=st.none() | st.sampled_from(_CURRENCIES),
        credit_limit=st.none() | money().map(lambda m: Money(abs(m.amount), m.currency)),
        birthday=st.none() | dates(),
        lifecycle_stage=st.sampled_from(LifecycleStage),
        consents=consents(),
        custom=custom,
        created_at=aware_datetimes(),
        updated_at=aware_datetimes(),
    )


@st.composite
def tickets(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> Ticket:
    """Tickets taken through random status changes and comments (so history, reopens and first
    response come from the model's own methods), in the default statuses."""
    created = draw(aware_datetimes())
    pinned = draw(st.sampled_from([(None, None), ("standard", 2)]))
    ticket = Ticket(
        customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids),
        subject=draw(_texts()),
        contact_id=draw(st.none() | _ids("p", 3)),
        channel=draw(st.sampled_from(TicketChannel)),
        description=draw(st.sampled_from(["", "notes\nline two", "  padded  "])),
        priority=draw(st.sampled_from(TicketPriority)),
        type=draw(st.sampled_from(TicketType)),
        tags=draw(st.lists(st.sampled_from(_TAGS), max_size=3)),
        assignee=draw(st.none() | st.sampled_from(["u1", "u2"])),
        team=draw(st.none() | st.sampled_from(["support", "billing"])),
        sla_policy=pinned[0],
        sla_version=pinned[1],
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=created,
        updated_at=draw(aware_datetimes()),
    )
    at = created
    open_names = [n for n in DEFAULT_STATUSES.names if n != "closed"]
    for step in draw(st.lists(st.sampled_from(["status", "comment"]), max_size=6)):
        at = at + timedelta(minutes=draw(st.sampled_from([0, 1, 90, 60 * 30])))
        if step == "status":
            ticket = ticket.change_status(
                draw(st.sampled_from(open_names)), at, by=draw(st.none() | st.sampled_from(["u1", "u2"]))
            )
        else:
            ticket = ticket.add_comment(
                draw(st.sampled_from(["u1", "c1", "bot"])),
                draw(st.sampled_from(["Hello", "See log\nline 2", " spaced "])),
                at,
                public=draw(st.booleans()),
                role=draw(st.sampled_from(AuthorRole)),
            )
    if draw(st.booleans()):
        ticket = ticket.change_status("closed", at + timedelta(hours=1))
    return ticket


@st.composite
def surveys(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> SatisfactionSurvey:
    """Satisfaction surveys, answered (score 1-5, maybe a comment) or not."""
    sent = draw(aware_datetimes())
    survey = SatisfactionSurvey(
        ticket_id=draw(_ids("t", 4)),
        customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids),
        sent_at=sent,
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=draw(aware_datetimes()),
        updated_at=draw(aware_datetimes()),
    )
    if draw(st.booleans()):
        survey = survey.answer(
            draw(st.integers(1, 5)),
            sent + timedelta(minutes=draw(st.integers(0, 60 * 24 * 7))),
            draw(st.sampled_from(["", "Great", "slow\nreply"])),
        )
    return survey


LEAD_EMAIL_POOL = ("ada@example.com", "Ada@example.com", "bob@example.org", "BOB@example.org")
"""Lead emails, in two cases each: stores must answer queries on the address as given."""


@st.composite
def leads(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> Lead:
    """Leads in every status; disqualified ones with a reason, some qualified ones converted to a
    customer drawn from ``customer_ids`` (default ``c0``..``c3``)."""
    status = draw(st.sampled_from(LeadStatus))
    converted = status is LeadStatus.QUALIFIED and draw(st.booleans())
    return Lead(
        name=draw(_texts()),
        company=draw(st.sampled_from(["", "Acme", "a", "Ä GmbH"])),
        title=draw(st.sampled_from(["", "CEO", "Buyer"])),
        email=draw(st.none() | st.builds(EmailAddress, address=st.sampled_from(LEAD_EMAIL_POOL))),
        phone=draw(
            st.none()
            | st.builds(
                PhoneNumber, number=st.sampled_from(PHONE_POOL), extension=st.sampled_from(["", "12"])
            )
        ),
        source=draw(st.sampled_from(["", "web", "referral", "event"])),
        campaign=draw(st.none() | st.sampled_from(["spring", "a"])),
        industry=draw(st.sampled_from(["", "software", "retail"])),
        company_size=draw(st.none() | st.sampled_from([1, 2, 3, 50, 10_000])),
        country=draw(st.none() | st.sampled_from(["DE", "FR", "US"])),
        region=draw(st.sampled_from(["", "emea", "amer"])),
        status=status,
        disqualified_reason="no budget" if status is LeadStatus.DISQUALIFIED else "",
        owner=draw(st.none() | st.sampled_from(["u1", "u2"])),
        assigned_at=draw(st.none() | aware_datetimes()),
        last_touched_at=draw(st.none() | aware_datetimes()),
        tags=draw(st.lists(st.sampled_from(_TAGS), max_size=3)),
        converted_at=draw(aware_datetimes()) if converted else None,
        converted_customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids)
        if converted
        else None,
        converted_contact_id=draw(st.none() | _ids("p", 3)) if converted else None,
        converted_opportunity_id=draw(st.none() | _ids("o", 3)) if converted else None,
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=draw(aware_datetimes()),
        updated_at=draw(aware_datetimes()),
    )


_STAGES = ("prospect", "proposal", "negotiation", "won", "lost")


@st.composite
def opportunities(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> Opportunity:
    """Opportunities with a consistent stage history (each change follows the last, in time order),
    line items in the amount's currency, open, won or lost."""
    currency = draw(st.sampled_from(_CURRENCIES))
    scale = 0 if currency == "JPY" else 2
    prices = st.integers(0, 100_000).map(lambda n: Money(Decimal(n).scaleb(-scale), currency))
    items = draw(
        st.lists(
            st.builds(
                LineItem,
                product=st.sampled_from(["Widget", "Service plan"]),
                quantity=st.sampled_from([Decimal(1), Decimal(3), Decimal("0.5")]),
                unit_price=prices,
            ),
            max_size=3,
        )
    )
    amount = draw(
        st.none()
        | st.integers(0, 10**11).map(lambda n: Money(Decimal(n).scaleb(-2), currency))
        | st.sampled_from([Money("100", currency), Money("1.5", currency), Money("0", currency)])
    )
    if amount is None and items:
        amount = draw(st.none() | st.just(Money("0", currency)))
    at = draw(aware_datetimes())
    stage = draw(st.sampled_from(_STAGES))
    history: list[StageChange] = []
    for to in draw(st.lists(st.sampled_from(_STAGES), max_size=4)):
        step = timedelta(minutes=draw(st.sampled_from([0, 5, 60 * 24 * 3])))
        history.append(
            StageChange(
                at=at + step,
                from_stage=stage,
                to_stage=to,
                time_in_stage=step,
                by=draw(st.none() | st.sampled_from(["u1", "u2"])),
            )
        )
        at, stage = at + step, to
    won = draw(st.none() | st.booleans())
    return Opportunity(
        name=draw(_texts()),
        customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids),
        pipeline=draw(st.sampled_from(["sales", "renewals"])),
        stage=stage,
        amount=amount,
        close_date=draw(st.none() | dates()),
        owner=draw(st.none() | st.sampled_from(["u1", "u2"])),
        contact_id=draw(st.none() | _ids("p", 3)),
        lead_id=draw(st.none() | _ids("l", 3)),
        probability=draw(st.sampled_from([0, 1, 3, 10, 50, 100])),
        forecast_category=draw(st.sampled_from(ForecastCategory)),
        next_step=draw(st.sampled_from(["", "call back"])),
        lost_reason="price" if won is False else draw(st.sampled_from(["", "timing"])),
        source=draw(st.sampled_from(["", "web"])),
        line_items=items,
        stage_history=history,
        stage_entered_at=at if history else draw(st.none() | st.just(at)),
        closed_at=None if won is None else at,
        won=won,
        tags=draw(st.lists(st.sampled_from(_TAGS), max_size=3)),
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=draw(aware_datetimes()),
        updated_at=draw(aware_datetimes()),
    )


def quote_lines(currency: str) -> st.SearchStrategy[QuoteLine]:
    """Quote lines in ``currency``: prices finer than minor units, fractional quantities and
    percentages, so every rounding path is met."""
    return st.builds(
        QuoteLine,
        product=st.sampled_from(["Widget", "Service plan"]),
        quantity=st.sampled_from([Decimal(1), Decimal(3), Decimal("0.5"), Decimal("2.25")])
        | st.integers(1, 10_000).map(Decimal),
        unit_price=st.integers(0, 10**9).map(lambda n: Money(Decimal(n).scaleb(-3), currency)),
        discount_percent=st.sampled_from([Decimal(0), Decimal(100), Decimal("12.5")])
        | st.integers(0, 10_000).map(lambda n: Decimal(n).scaleb(-2)),
        tax_rate=st.sampled_from([Decimal(0), Decimal(7), Decimal(19), Decimal("8.1"), Decimal(100)]),
    )


@st.composite
def quotes(draw: st.DrawFn, customer_ids: st.SearchStrategy[str] | None = None) -> Quote:
    """Quotes in one currency each, taken through random transitions (so times come from the
    model's own methods)."""
    currency = draw(st.sampled_from((*_CURRENCIES, "KWD")))
    expires_on = draw(st.none() | dates())
    quote = Quote(
        opportunity_id=draw(_ids("o", 3)),
        customer_id=draw(_ids("c", 4) if customer_ids is None else customer_ids),
        currency=currency,
        number=draw(st.sampled_from(["", "Q-1", "Q-2"])),
        lines=draw(st.lists(quote_lines(currency), min_size=1, max_size=4)),
        expires_on=expires_on,
        custom=draw(st.dictionaries(st.sampled_from(_CUSTOM_KEYS), custom_values(), max_size=2)),
        created_at=draw(aware_datetimes()),
        updated_at=draw(aware_datetimes()),
    )
    sent = draw(aware_datetimes())
    if expires_on is not None and sent.date() > expires_on:
        return quote
    outcome = draw(st.sampled_from(["draft", "sent", "accepted", "rejected", "expired"]))
    if outcome == "draft":
        return quote
    quote = quote.send(sent)
    later = sent + timedelta(hours=draw(st.integers(0, 24 * 60)))
    if outcome == "accepted" and (expires_on is None or later.date() <= expires_on):
        return quote.accept(later)
    if outcome == "rejected":
        return quote.reject(later, draw(st.sampled_from(["", "too expensive"])))
    if outcome == "expired" and expires_on is not None and later.date() > expires_on:
        return quote.expire(later)
    return quote


_VALUES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.TEXT: _texts(),
    FieldType.INTEGER: st.integers(0, 3),
    FieldType.DATETIME: aware_datetimes(),
    FieldType.DATE: dates(),
    FieldType.MONEY: money(),
    FieldType.BOOLEAN: st.booleans(),
}
_SCALAR_JSON: st.SearchStrategy[Any] = st.sampled_from(
    [0, 1, 3, -2.5, 2.5, 10, "a", "b", "ab", "B", True, False]
)
_ORDERED_JSON: st.SearchStrategy[Any] = st.sampled_from([0, 1, 3, -2.5, 2.5, 10]) | st.sampled_from(
    ["a", "b", "ab", "B"]
)

_TEXT_FIELDS = {
    "name": _texts(),
    "owner": st.sampled_from(["u1", "u2", "user-97"]),
    "currency": st.sampled_from(_CURRENCIES),
    "email": st.sampled_from(["ada@example.com", "bob@example.org"]),
    "phone": st.sampled_from(["+49301234567", "+12025550100", "+1"]),
    "country": st.sampled_from(["DE", "FR", "US"]),
    "city": st.sampled_from(["Berlin", "Paris", "a", "Ä"]),
    "id": _texts(),
}


def _value_for(
    name: str, ftype: FieldType, fields: FieldSet, values: Mapping[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    if name in values:
        return values[name]
    choices = fields.fields[name].choices if name in fields.fields else None
    if choices:
        return st.sampled_from(choices)
    if name in _TEXT_FIELDS:
        return _TEXT_FIELDS[name]
    if ftype is FieldType.JSON:
        return _SCALAR_JSON
    return _VALUES[ftype]


@st.composite
def _leaf(draw: st.DrawFn, fields: FieldSet, values: Mapping[str, st.SearchStrategy[Any]]) -> Condition:
    names = [*fields.fields, *(f"{p}.{k}" for p in fields.json_getters for k in _CUSTOM_KEYS)]
    name = draw(st.sampled_from(names))
    fd = fields.resolve(name)
    ftype = fd.type
    if ftype is FieldType.TEXT_LIST:
        return Contains(name, draw(st.sampled_from(_TAGS)))
    ops: list[str] = ["eq", "ne", "in"]
    if ftype is not FieldType.BOOLEAN:
        ops += ["lt", "le", "gt", "ge", "between"]
    if ftype in (FieldType.TEXT, FieldType.JSON):
        ops.append("contains")
    if fd.nullable:
        ops.append("is_null")
    if ftype in (FieldType.DATETIME, FieldType.DATE):
        ops.append("relative")
    op = draw(st.sampled_from(ops))
    if op == "is_null":
        return IsNull(name)
    if op == "contains":
        return Contains(name, draw(st.sampled_from(["a", "b", "ä", "", "日"])))
    if op == "relative":
        return Relative(
            name,
            draw(st.sampled_from(list(CompareOp)[2:])),
            draw(st.integers(-400, 30)),
            draw(st.sampled_from([TimeUnit.DAYS, TimeUnit.HOURS, TimeUnit.MONTHS])),
        )
    if ftype is FieldType.JSON:
        value_strategy = _ORDERED_JSON if op in ("lt", "le", "gt", "ge", "between") else _SCALAR_JSON
    else:
        value_strategy = _value_for(name, ftype, fields, values)
    if op == "in":
        return In(name, tuple(draw(st.lists(value_strategy, max_size=3))))
    if op == "between":
        low, high = draw(value_strategy), draw(value_strategy)
        if ftype is FieldType.JSON and isinstance(low, str) != isinstance(high, str):
            high = low
        if ftype is FieldType.MONEY and low.currency != high.currency:
            high = Money(high.amount, low.currency)
        if low > high:
            low, high = high, low
        return Between(name, low, high)
    return Compare(name, CompareOp(op), draw(value_strategy))


def conditions(
    max_leaves: int = 6,
    *,
    fields: FieldSet = CUSTOMER_FIELDS,
    values: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Condition]:
    """Random condition trees over ``fields`` (default `CUSTOMER_FIELDS`), valid by construction.

    ``values`` overrides the values drawn for some fields (``{"total_spend": segment_money("EUR")}``).
    Custom-field keys are drawn for each JSON prefix of ``fields``.
    """
    leaf = _leaf(fields, dict(values or {}))
    return st.recursive(
        leaf,
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda cs: All(*cs))
            | st.lists(inner, max_size=3).map(lambda cs: AnyOf(*cs))
            | inner.map(Not)
        ),
        max_leaves=max_leaves,
    )


def segment_money(currency: str) -> st.SearchStrategy[Money]:
    """Amounts in ``currency`` in the range generated orders sum to; some finer than minor units."""
    scale = minor_units(currency)
    return st.builds(
        lambda n, extra: Money(Decimal(n).scaleb(-(scale + extra)), currency),
        st.integers(0, 3_000_000) | st.sampled_from([0, 1, 100]),
        st.sampled_from([0, 0, 1]),
    )


_NO_SPEND = FieldSet.of(
    CUSTOMER_FACT_FIELDS.entity,
    [fd for name, fd in CUSTOMER_FACT_FIELDS.fields.items() if name != "total_spend"],
    json=CUSTOMER_FACT_FIELDS.json_getters,
)


@st.composite
def segments(draw: st.DrawFn, max_leaves: int = 6) -> Segment:
    """Segments over customer fields, tags, custom fields and order facts, with or without a currency."""
    currency = draw(st.none() | st.sampled_from(_CURRENCIES))
    if currency is None:
        condition = draw(conditions(max_leaves, fields=_NO_SPEND))
    else:
        spend = {"total_spend": segment_money(currency)}
        condition = draw(conditions(max_leaves, fields=CUSTOMER_FACT_FIELDS, values=spend))
    return Segment(
        name=draw(st.sampled_from(["VIPs", "lapsed buyers", "Ä-Kunden"])),
        condition=condition,
        currency=currency,
        description=draw(st.sampled_from(["", "for the spring campaign"])),
    )


@st.composite
def custom_field_defs(draw: st.DrawFn) -> CustomFieldDef:
    """Custom-field definitions of every type, valid by construction (defaults of the right type)."""
    ftype = draw(st.sampled_from(CustomFieldType))
    choices: tuple[str, ...] = ()
    if ftype in (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE):
        choices = tuple(
            draw(st.lists(st.sampled_from(["gold", "silver", "Ä", "b2b"]), min_size=1, unique=True))
        )
    defaults: dict[CustomFieldType, st.SearchStrategy[Any]] = {
        CustomFieldType.TEXT: _texts(),
        CustomFieldType.INTEGER: st.integers(-5, 5),
        CustomFieldType.DECIMAL: st.sampled_from(["0", "19.99", "-3.5"]),
        CustomFieldType.NUMBER: st.sampled_from([0, 2.5, -1]),
        CustomFieldType.BOOLEAN: st.booleans(),
        CustomFieldType.DATE: dates().map(date.isoformat),
        CustomFieldType.CHOICE: st.sampled_from(choices or ("x",)),
        CustomFieldType.MULTI_CHOICE: st.lists(st.sampled_from(choices or ("x",)), unique=True),
    }
    return CustomFieldDef(
        key=draw(st.sampled_from(_CUSTOM_KEYS)),
        type=ftype,
        required=draw(st.booleans()),
        choices=choices,
        label=draw(st.sampled_from(["", "Tier", "Score (0-10)"])),
        help=draw(st.sampled_from(["", "Set by the account team."])),
        default=draw(st.none() | defaults[ftype]),
    )


@st.composite
def data_rules(draw: st.DrawFn) -> DataRules:
    """Custom-field schemas for some entities and customer validation rules with random conditions."""
    entities = draw(st.lists(st.sampled_from(["customer", "contact", "interaction", "order"]), unique=True))
    schemas = [
        FieldSchema(
            entity=entity,
            fields=tuple(draw(st.lists(custom_field_defs(), max_size=4, unique_by=lambda d: d.key))),
            unknown_keys=draw(st.sampled_from(UnknownKeys)),
        )
        for entity in entities
    ]
    rules = [
        ValidationRule(name=f"rule_{i}", condition=cond, message=f"rule {i} failed")
        for i, cond in enumerate(draw(st.lists(conditions(3), max_size=3)))
    ]
    return DataRules(schemas=tuple(schemas), rules=tuple(rules))


def order_by(extra: Sequence[str] = ()) -> st.SearchStrategy[list[str]]:
    """Random ``order_by`` lists over sortable customer fields (and ``extra``), either direction."""
    sortable = [
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
        "created_at",
        "version",
        *extra,
    ]
    return st.lists(
        st.builds(
            lambda name, desc: f"-{name}" if desc else name,
            st.sampled_from(sortable),
            st.booleans(),
        ),
        max_size=3,
        unique_by=lambda s: s.lstrip("-"),
    )
