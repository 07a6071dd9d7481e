"""Privacy: consent, export of everything about a person, and erasure that leaves no trace in any table."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import text

import crmcore
from crmcore import CRM, ConcurrencyError, FixedClock, NotFound, ValidationError
from crmcore.customers import (
    Address,
    ConsentChannel,
    Contact,
    Customer,
    EmailAddress,
    Interaction,
    InteractionChannel,
    Order,
    OrderLine,
    PhoneNumber,
)
from crmcore.customers.merge import merge_customers
from crmcore.customers.privacy import (
    EXPORT_VERSION,
    CustomerErased,
    erase_customer,
    export_customer,
    record_consent,
)
from crmcore.events import CustomerCreated, CustomerUpdated, EventRedacted
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import Opportunity
from crmcore.pipeline.quote import Quote, QuoteLine
from crmcore.serialization import unstructure
from crmcore.service import SatisfactionSurvey, Ticket
from crmcore.storage import MemoryStore
from crmcore.storage.base import CUSTOMER_LINKS, UnitOfWork
from crmcore.storage.sql import SqlStore

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
Scan = Callable[[], str]
"""Returns every value stored anywhere in the store, as text."""


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CRM, Scan]]:
    """A CRM on each store, and a function that dumps the whole database as text."""
    clock = FixedClock(T0)
    if request.param == "memory":
        memory = MemoryStore()

        def scan_memory() -> str:
            return repr(memory.tables) + repr(memory.outbox)

        yield CRM(memory, clock=clock), scan_memory
    elif request.param == "sqlite":
        path = tmp_path / "crm.db"

        def scan_sqlite() -> str:
            with sqlite3.connect(path) as conn:
                names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                assert "crm_outbox" in names and "crm_customers" in names
                return "\n".join(
                    str(value)
                    for name in names
                    for row in conn.execute(f'SELECT * FROM "{name}"')
                    for value in row
                )

        with crmcore.open(f"sqlite:///{path}", clock=clock) as crm:
            yield crm, scan_sqlite
    else:
        engine = request.getfixturevalue("postgres_engine")
        sql_store = SqlStore(engine)
        sql_store.create_schema()

        def scan_postgres() -> str:
            with engine.connect() as conn:
                names = conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                    )
                ).scalars()
                tables = list(names)
                assert "crm_outbox" in tables and "crm_customers" in tables
                return "\n".join(
                    value
                    for name in tables
                    for value in conn.execute(text(f'SELECT t::text FROM "{name}" AS t')).scalars()
                )

        yield CRM(sql_store, clock=clock), scan_postgres


@attrs.frozen
class Person:
    """A person with distinctive data stored everywhere, and what must vanish when they are erased."""

    customer: Customer
    needles: tuple[str, ...]
    order_totals: tuple[Money, ...]
    record_ids: tuple[str, ...]
    event_ids: tuple[str, ...]


def _order(customer_id: str, price: str, **kw: Any) -> Order:
    line = OrderLine(product="Widget", quantity=Decimal(2), unit_price=Money(price, "EUR"))
    return Order(
        customer_id=customer_id, ordered_at=T0 - timedelta(days=30), currency="EUR", lines=[line], **kw
    )


def _person(crm: CRM, tenant: str, first: str = "Zelda") -> Person:
    """Store a person (plus a duplicate merged into them) with contacts, interactions, orders, events."""
    token = new_id()[-10:].lower()
    surname = f"Quixotica{token}"
    name = f"{first} {surname}"
    digits = "".join(random.Random(token).choice("123456789") for _ in range(8))
    phone_typed, phone_e164 = f"+49 30 {digits[:4]} {digits[4:]}", f"+4930{digits}"
    mobile_typed, mobile_e164 = f"+49 151 {digits[:4]} {digits[4:]}", f"+49151{digits}"
    email_typed, email = f"{first}.{token}@Example.ORG", f"{first}.{token}@example.org"
    alias = f"z.{token}@mail.example.net"
    customer = Customer(
        name=name,
        emails=[EmailAddress(address=email_typed, primary=True)],
        phones=[PhoneNumber(number=phone_typed)],
        addresses=[Address(country="DE", line1=f"{surname}weg 7", city="Berlin")],
        custom={"nickname": f"Zee {surname}"},
    )
    duplicate = Customer(
        name=f"Z. {surname}", emails=[EmailAddress(address=alias)], phones=[PhoneNumber(number=mobile_typed)]
    )
    assistant = Contact(
        customer_id=customer.id,
        name=f"Assistant of {surname}",
        emails=[EmailAddress(address=f"assistant.{token}@example.org")],
    )
    touches = [
        Interaction(
            customer_id=cid,
            occurred_at=T0 - timedelta(days=d),
            channel=InteractionChannel.EMAIL,
            subject=f"Re: your order, {name}",
            body=f"Write to {email} or call {phone_typed} / {mobile_e164}.",
        )
        for d, cid in ((1, customer.id), (2, duplicate.id))
    ]
    ticket = Ticket(
        customer_id=duplicate.id,
        subject=f"Refund for {name}",
        description=f"Call back on {phone_typed}, or mail {email}.",
    )
    survey = SatisfactionSurvey(
        ticket_id=ticket.id,
        customer_id=customer.id,
        sent_at=T0,
        score=2,
        answered_at=T0,
        comment=f"Slow. {surname}",
    )
    orders = [
        _order(customer.id, "19.99", number=f"ZQ-{token}", custom={"gift_note": f"For {surname}"}),
        _order(duplicate.id, "5.00", custom={"ship_to": f"{surname}weg 7"}),
    ]
    # The duplicate came in as a lead: converted, the lead links to it by converted_customer_id.
    deal = Opportunity(
        name=f"Deal with {surname}", customer_id=duplicate.id, pipeline="sales", stage="proposal"
    )
    lead = Lead(
        name=name,
        email=EmailAddress(address=email_typed),
        phone=PhoneNumber(number=mobile_typed),
        status=LeadStatus.QUALIFIED,
        converted_at=T0,
        converted_customer_id=duplicate.id,
        converted_opportunity_id=deal.id,
    )
    quote = Quote(
        opportunity_id=deal.id,
        customer_id=customer.id,
        currency="EUR",
        number=f"QQ-{token}",
        lines=[QuoteLine(product="Advice", unit_price=Money("100", "EUR"))],
    )
    events = [
        CustomerCreated(aggregate_id=customer.id, occurred_at=T0, name=name),
        CustomerCreated(aggregate_id=duplicate.id, occurred_at=T0, name=duplicate.name),
        CustomerCreated(aggregate_id=assistant.id, occurred_at=T0, name=assistant.name),  # a record's event
        CustomerUpdated(aggregate_id=customer.id, occurred_at=T0, fields=("emails",)),
    ]
    with crm.unit_of_work(tenant) as uow:
        uow.customers.add(customer)
        uow.customers.add(duplicate)
        uow.contacts.add(assistant)
        uow.interactions.bulk_add(touches)
        uow.orders.bulk_add(orders)
        uow.tickets.add(ticket)
        uow.surveys.add(survey)
        uow.leads.add(lead)
        uow.opportunities.add(deal)
        uow.quotes.add(quote)
        uow.record(*events)
        uow.commit()
    with crm.unit_of_work(tenant) as uow:
        report = merge_customers(uow, customer.id, [duplicate.id])
        uow.commit()
    needles = (
        name,
        surname,
        duplicate.name,
        email,
        email_typed,
        alias,
        f"assistant.{token}@example.org",
        phone_typed,
        phone_e164,
        mobile_typed,
        mobile_e164,
        f"ZQ-{token}",
        f"QQ-{token}",
    )
    return Person(
        customer=report.survivor,
        needles=needles,
        order_totals=tuple(o.total for o in orders),
        record_ids=(
            assistant.id,
            *(t.id for t in touches),
            *(o.id for o in orders),
            ticket.id,
            survey.id,
            lead.id,
            deal.id,
            quote.id,
        ),
        event_ids=(*(e.event_id for e in events), report.event.event_id),
    )


def _bystander(crm: CRM, tenant: str) -> tuple[Customer, Order]:
    other = Customer(name=f"Otto Bystander{new_id()[-6:]}", emails=[EmailAddress(address="otto@example.com")])
    order = _order(other.id, "42.00", number="OT-1", custom={"note": "keep me"})
    with crm.unit_of_work(tenant) as uow:
        uow.customers.add(other)
        uow.orders.add(order)
        uow.contacts.add(Contact(customer_id=other.id, name="Otto's colleague"))
        uow.record(CustomerCreated(aggregate_id=other.id, occurred_at=T0, name=other.name))
        uow.commit()
    return other, order


def test_erasure_leaves_no_personal_data_in_any_table(store: tuple[CRM, Scan]) -> None:
    """After erasure no table (outbox included) holds the person's name, emails or phones; others stay."""
    crm, scan = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    other, other_order = _bystander(crm, tenant)
    before = scan().casefold()
    assert all(n.casefold() in before for n in person.needles[:3])  # the scan does see stored data

    with crm.unit_of_work(tenant) as uow:
        report = erase_customer(uow, person.customer.id, reason="request 2026-17")
        uow.commit()

    haystack = scan().casefold()
    found = [n for n in person.needles if n.casefold() in haystack]
    assert found == []
    assert other.name.casefold() in haystack and "otto@example.com" in haystack and "keep me" in haystack
    assert report.deleted == {
        "customers": 1,
        "contacts": 1,
        "interactions": 2,
        "tickets": 1,
        "surveys": 1,
        "leads": 1,
    }
    assert report.anonymized == {"orders": 2, "opportunities": 1, "quotes": 1}
    assert report.events_redacted == 5 and len(report.merged_ids) == 1
    with crm.unit_of_work(tenant) as uow:
        assert not uow.customers.exists(person.customer.id)
        assert uow.customers.get(other.id) == other and uow.orders.get(other_order.id) == other_order
        kept = [o for o in uow.orders.iter_all() if o.id != other_order.id]
        assert sorted(o.total for o in kept) == sorted(person.order_totals)  # amounts stay for revenue
        assert len({o.customer_id for o in kept}) == 1  # one pseudonymous buyer, no customer row
        assert not uow.customers.exists(kept[0].customer_id) and kept[0].customer_id != person.customer.id
        [deal] = uow.opportunities.iter_all()  # the pipeline's history stays, linked to the same pseudonym
        [quote] = uow.quotes.iter_all()
        assert deal.customer_id == quote.customer_id == kept[0].customer_id
        assert (deal.name, deal.contact_id, quote.number) == ("Erased customer's deal", None, "")
        assert quote.total.amount == 100
        assert all(o.number == "" and o.custom == {} for o in kept)
        totals = uow.orders.totals()
        assert totals[kept[0].customer_id].spend_in("EUR") == sum(person.order_totals, Money.zero("EUR"))
        assert totals[other.id].spend_in("EUR") == other_order.total
        outbox = [r.event for r in uow.events_since(0, 1000)]
    redacted = [e for e in outbox if isinstance(e, EventRedacted)]
    assert {e.event_id for e in redacted} == set(person.event_ids)  # the merge event too: it names the ids
    erased = outbox[-1]
    assert isinstance(erased, CustomerErased) and erased.aggregate_id == person.customer.id
    assert erased.reason == "request 2026-17" and erased.deleted == report.deleted
    assert any(isinstance(e, CustomerCreated) and e.aggregate_id == other.id for e in outbox)


def test_export_holds_every_stored_record_and_event(store: tuple[CRM, Scan]) -> None:
    """The export lists the customer, every linked record and every event about them, as JSON."""
    crm, _ = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    _bystander(crm, tenant)
    now = T0 + timedelta(hours=3)
    with crm.unit_of_work(tenant) as uow:
        data = export_customer(uow, person.customer.id, now=now)
        stored = {
            a.attribute: [
                unstructure(r)
                for r in uow.repository(a).iter_all()
                if getattr(r, str(a.customer_field)) == person.customer.id
            ]
            for a in CUSTOMER_LINKS
        }
        customer = uow.customers.get(person.customer.id)
    assert json.loads(json.dumps(data)) == data
    assert (data["format"], data["format_version"], data["exported_at"]) == (
        "crmcore.customer-export",
        EXPORT_VERSION,
        now.isoformat(),
    )
    assert data["customer"] == unstructure(customer) and data["tenant"] == tenant
    assert data["records"] == stored
    assert sorted(r["id"] for rs in data["records"].values() for r in rs) == sorted(person.record_ids)
    assert {e["event"]["event_id"] for e in data["events"]} == set(person.event_ids)
    assert [e["position"] for e in data["events"]] == sorted(e["position"] for e in data["events"])
    assert len(data["merged_ids"]) == 1


def test_erasure_is_atomic(store: tuple[CRM, Scan], monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure midway through erasure (or no commit) leaves every table and the outbox as they were."""
    crm, scan = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    before = sorted(scan().splitlines())

    def boom(obj: Any) -> Any:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError), crm.unit_of_work(tenant) as uow:
        monkeypatch.setattr(uow.orders, "save", boom)  # after contacts and interactions went
        erase_customer(uow, person.customer.id)
    assert sorted(scan().splitlines()) == before
    with crm.unit_of_work(tenant) as uow:
        erase_customer(uow, person.customer.id)  # and never committed
    assert sorted(scan().splitlines()) == before


def test_erasure_redacts_events_recorded_earlier_in_its_unit_of_work(store: tuple[CRM, Scan]) -> None:
    """An event about the person recorded earlier in the erasing unit of work is redacted too."""
    crm, scan = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    with crm.unit_of_work(tenant) as uow:
        uow.record(CustomerCreated(aggregate_id=person.customer.id, occurred_at=T0, name="Pending Quixotica"))
        report = erase_customer(uow, person.customer.id)
        uow.commit()
    assert "Pending Quixotica" not in scan()
    events = crm.events_since(0, 10_000, tenant=tenant)
    assert isinstance(events[-2].event, EventRedacted) and events[-1].event == report.event
    assert report.events_redacted == len(person.event_ids) + 1


def _race_before_delete(crm: CRM, tenant: str, erasing: UnitOfWork, attribute: str) -> Callable[..., None]:
    """``erasing``'s delete in ``attribute``, but another unit of work saves the record first."""
    real_delete = getattr(erasing, attribute).delete

    def delete(id: str, *, expected_version: int | None = None) -> None:
        with crm.unit_of_work(tenant) as other:
            repo = getattr(other, attribute)
            changed = repo.get(id)
            changed.custom = {"edited": True}
            repo.save(changed)
            other.commit()
        real_delete(id, expected_version=expected_version)

    return delete


def test_erasure_refuses_changes_made_while_it_runs(
    store: tuple[CRM, Scan], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer or a record saved by another unit of work after erasure read it: ConcurrencyError."""
    crm, _ = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    # Once erasure has written (the customer goes first), SQLite lets no other writer in until it ends.
    raced = ["customers", "contacts"] if crm.store.capabilities.concurrent_writers else ["customers"]
    for attribute in raced:
        erasing = crm.unit_of_work(tenant)
        with monkeypatch.context() as patch, pytest.raises(ConcurrencyError), erasing:
            patch.setattr(
                getattr(erasing, attribute), "delete", _race_before_delete(crm, tenant, erasing, attribute)
            )
            erase_customer(erasing, person.customer.id)
            erasing.commit()
    with crm.unit_of_work(tenant) as uow:  # both changes kept, nothing erased
        assert uow.customers.get(person.customer.id).custom == {"edited": True}
        assert [c.custom == {"edited": True} for c in uow.contacts.find()] == ["contacts" in raced]
        assert uow.interactions.count() == 2 and uow.orders.count() == 2


def test_customer_is_deleted_before_its_records_are_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Erasure deletes the customer row first, so a record linked meanwhile is most likely found."""
    crm = crmcore.open("memory://", clock=FixedClock(T0))
    person = _person(crm, "default")
    calls: list[str] = []

    def logged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return method(*args, **kwargs)

        return call

    with crm.unit_of_work() as uow:
        monkeypatch.setattr(uow.customers, "delete", logged("customer", uow.customers.delete))
        monkeypatch.setattr(uow.contacts, "find", logged("contacts", uow.contacts.find))
        erase_customer(uow, person.customer.id)
    assert calls[:2] == ["customer", "contacts"]


def test_missing_ok_sweeps_records_left_behind(store: tuple[CRM, Scan]) -> None:
    """erase_customer(missing_ok=True) erases records and events still linked to an erased customer."""
    crm, scan = store
    tenant = f"t-{new_id()}"
    person = _person(crm, tenant)
    with crm.unit_of_work(tenant) as uow:
        erase_customer(uow, person.customer.id)
        uow.commit()
    late = Contact(customer_id=person.customer.id, name="Late Quixotica")  # linked by a concurrent writer
    with crm.unit_of_work(tenant) as uow:
        uow.contacts.add(late)
        uow.record(CustomerCreated(aggregate_id=late.id, occurred_at=T0, name=late.name))
        uow.commit()
    with crm.unit_of_work(tenant) as uow:
        with pytest.raises(NotFound):
            erase_customer(uow, person.customer.id)
        with pytest.raises(ValidationError, match="missing_ok"):
            erase_customer(uow, person.customer.id, missing_ok="yes")  # type: ignore[arg-type]
        report = erase_customer(uow, person.customer.id, missing_ok=True)
        uow.commit()
    assert report.deleted == {
        "customers": 0,
        "contacts": 1,
        "interactions": 0,
        "tickets": 0,
        "surveys": 0,
        "leads": 0,
    }
    assert report.anonymized == {"orders": 0, "opportunities": 0, "quotes": 0}
    assert report.events_redacted == 1
    assert "Late Quixotica" not in scan()
    with crm.unit_of_work(tenant) as uow:
        assert not uow.contacts.exists(late.id)


def test_anonymizers_decide_what_is_kept() -> None:
    """With no anonymizers every linked record is deleted; a host anonymizer keeps what it chooses."""
    crm = crmcore.open("memory://", clock=FixedClock(T0))
    person = _person(crm, "default")
    with crm.unit_of_work() as uow:
        report = erase_customer(uow, person.customer.id, anonymizers={})
        assert report.deleted == {
            "customers": 1,
            "contacts": 1,
            "interactions": 2,
            "orders": 2,
            "tickets": 1,
            "surveys": 1,
            "leads": 1,
            "opportunities": 1,
            "quotes": 1,
        }
        assert report.anonymized == {} and uow.orders.count() == 0

    def keep_number(order: Order, pseudonym: str) -> Order:
        order.customer_id, order.custom = pseudonym, {}
        return order

    with crm.unit_of_work() as uow:
        erase_customer(uow, person.customer.id, anonymizers={"orders": keep_number})
        assert sorted(o.number for o in uow.orders.iter_all())[-1].startswith("ZQ-")


def test_bad_input_is_refused() -> None:
    """Unknown customers are NotFound; bad ids, reasons and anonymizer names are ValidationErrors."""
    crm = crmcore.open("memory://", clock=FixedClock(T0))
    person = _person(crm, "default")
    with crm.unit_of_work() as uow:
        with pytest.raises(NotFound, match="nobody"):
            export_customer(uow, "nobody")
        with pytest.raises(NotFound, match="nobody"):
            erase_customer(uow, "nobody")
        with pytest.raises(ValidationError, match="customer_id"):
            erase_customer(uow, "")
        with pytest.raises(ValidationError, match="reason"):
            erase_customer(uow, person.customer.id, reason="x" * 201)
        with pytest.raises(ValidationError, match=r"\['deals'\] name no linked aggregate"):
            erase_customer(uow, person.customer.id, anonymizers={"deals": lambda r, p: r})
        with pytest.raises(ValidationError, match="now"):
            export_customer(uow, person.customer.id, now=datetime(2026, 1, 1))
        assert uow.customers.exists(person.customer.id)


def test_erased_customer_cannot_be_exported_or_erased_again() -> None:
    """After erasure the id resolves to nothing: export and a second erasure raise NotFound."""
    crm = crmcore.open("memory://", clock=FixedClock(T0))
    person = _person(crm, "default")
    with crm.unit_of_work() as uow:
        erase_customer(uow, person.customer.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        with pytest.raises(NotFound):
            export_customer(uow, person.customer.id)
        with pytest.raises(NotFound):
            erase_customer(uow, person.customer.id)


# --- consent ----------------------------------------------------------------------------------------


def test_record_consent_replaces_the_channel_and_returns_a_copy() -> None:
    """record_consent sets one channel's consent on a copy; other channels and the original stay."""
    ada = Customer(name="Ada")
    opted_in = record_consent(ada, "email", True, "signup form", T0)
    opted_in = record_consent(opted_in, ConsentChannel.SMS, True, "signup form", T0)
    withdrawn = record_consent(opted_in, "email", False, "unsubscribe link", T0 + timedelta(days=1))
    assert ada.consents == () and opted_in.may_contact("email") and opted_in.may_contact("sms")
    assert not withdrawn.may_contact("email") and withdrawn.may_contact("sms")
    assert withdrawn.consent("email") is not None and withdrawn.consent("email").source == "unsubscribe link"  # type: ignore[union-attr]
    assert len(withdrawn.consents) == 2 and withdrawn.id == ada.id
    contact = record_consent(Contact(customer_id="c1", name="Bo"), "phone", True, "call", T0)
    assert isinstance(contact, Contact) and contact.may_contact("phone")


def test_record_consent_checks_its_input() -> None:
    """A bad holder, channel, source or naive time is a ValidationError."""
    with pytest.raises(ValidationError, match="Customer or a Contact"):
        record_consent("ada", "email", True, "form", T0)  # type: ignore[type-var]
    with pytest.raises(ValidationError) as caught:
        record_consent(Customer(name="Ada"), "fax", True, "", datetime(2026, 1, 1))
    assert {e.path for e in caught.value.errors} == {"channel", "source", "at"}
