"""Merging duplicate customers: survivorship rules, the plan's explanations, and the store-level merge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmcore
from crmcore import CRM, ConcurrencyError, FixedClock, NotFound, ValidationError
from crmcore.customers import (
    Address,
    Consent,
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
from crmcore.customers.merge import (
    LIST_FIELDS,
    MERGEABLE_FIELDS,
    CustomersMerged,
    MergePlan,
    MergeRules,
    Survivorship,
    merge_customers,
    plan_merge,
)
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import Opportunity
from crmcore.pipeline.quote import Quote
from crmcore.serialization import structure, unstructure
from crmcore.service import SatisfactionSurvey, Ticket
from crmcore.storage import MemoryStore
from crmcore.storage.base import CUSTOMER_LINKS
from crmcore.storage.sql import SqlStore
from crmcore.testing import strategies as cst

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CRM]:
    """A CRM on each store; PostgreSQL only when CRMCORE_TEST_POSTGRES_URL is set."""
    clock = FixedClock(T0)
    if request.param == "memory":
        yield CRM(MemoryStore(), clock=clock)
    elif request.param == "sqlite":
        with crmcore.open(f"sqlite:///{tmp_path / 'crm.db'}", clock=clock) as opened:
            yield opened
    else:
        store = SqlStore(request.getfixturevalue("postgres_engine"))
        store.create_schema()
        yield CRM(store, clock=clock)


def _order(customer_id: str, price: str = "10.00") -> Order:
    line = OrderLine(product="Widget", quantity=Decimal(1), unit_price=Money(price, "EUR"))
    return Order(customer_id=customer_id, ordered_at=T0, currency="EUR", lines=[line])


Snapshot = dict[str, dict[str, Any]]


def _snapshot(crm: CRM, tenant: str) -> Snapshot:
    """Every stored customer and linked record of ``tenant``, by repository name and id."""
    with crm.unit_of_work(tenant) as uow:
        return {a.attribute: {r.id: r for r in uow.repository(a).iter_all()} for a in _ALL}


_ALL = list(crmcore.storage.AGGREGATES)


def _events(crm: CRM, tenant: str) -> list[Any]:
    return [r.event for r in crm.events_since(0, 10_000, tenant=tenant)]


def _store(crm: CRM, tenant: str, *objs: Any) -> None:
    with crm.unit_of_work(tenant) as uow:
        for obj in objs:
            uow.repository(next(a for a in _ALL if isinstance(obj, a.cls))).add(obj)
        uow.commit()


# --- the store-level merge, on every store ----------------------------------------------------------


@_SETTINGS
@given(data=st.data())
def test_merge_moves_every_linked_record_and_nothing_else(crm: CRM, data: st.DataObject) -> None:
    """After a merge every record of the survivor or a duplicate is the survivor's; none lost, none added."""
    n = data.draw(st.integers(2, 5), label="customers")
    ids = [f"c{i}" for i in range(n)]
    customers = [attrs.evolve(data.draw(cst.customers()), id=i) for i in ids]
    pool = st.sampled_from(ids)
    contacts = data.draw(st.lists(cst.contacts(pool), max_size=6), label="contacts")
    interactions = data.draw(st.lists(cst.interactions(pool), max_size=6), label="interactions")
    orders = data.draw(st.lists(cst.orders(pool), max_size=6), label="orders")
    leads = data.draw(st.lists(cst.leads(pool), max_size=6), label="leads")  # some unconverted: no link
    deals = data.draw(st.lists(cst.opportunities(pool), max_size=3), label="opportunities")
    quotes = data.draw(st.lists(cst.quotes(pool), max_size=3), label="quotes")
    survivor = data.draw(pool, label="survivor")
    dups = data.draw(
        st.lists(st.sampled_from([i for i in ids if i != survivor]), min_size=1, unique=True), label="dups"
    )
    tenant = f"t-{new_id()}"
    _store(crm, tenant, *customers, *contacts, *interactions, *orders, *leads, *deals, *quotes)
    before = _snapshot(crm, tenant)

    with crm.unit_of_work(tenant) as uow:
        report = merge_customers(uow, survivor, dups)
        uow.commit()

    after = _snapshot(crm, tenant)
    group = {survivor, *dups}
    for aggregate in CUSTOMER_LINKS:
        name, link = aggregate.attribute, aggregate.customer_field
        assert link is not None
        assert set(after[name]) == set(before[name])  # no record lost or added
        for id, old in before[name].items():
            new = after[name][id]
            if getattr(old, link) in dups:
                assert getattr(new, link) == survivor and new.version == old.version + 1
                assert (
                    attrs.evolve(
                        new, **{link: getattr(old, link)}, version=old.version, updated_at=old.updated_at
                    )
                    == old
                )
            else:
                assert new == old  # unlinked, the survivor's own and other customers' records are untouched
            assert (getattr(new, link) in group) == (getattr(old, link) in group)
        assert report.moved[name] == sum(1 for r in before[name].values() if getattr(r, link) in dups)
    assert set(after["customers"]) == set(before["customers"]) - set(dups)
    for id in set(ids) - group:
        assert after["customers"][id] == before["customers"][id]
    assert after["customers"][survivor] == report.survivor
    event = _events(crm, tenant)[-1]
    assert isinstance(event, CustomersMerged)
    assert (event.aggregate_id, event.duplicate_ids, event.moved) == (survivor, tuple(dups), report.moved)


def _pair(crm: CRM, tenant: str) -> tuple[Customer, Customer]:
    """A survivor and a duplicate, each with a contact, an interaction, an order, a ticket, a survey,
    a converted lead, an opportunity and a quote (and an unconverted lead, linked to nobody)."""
    a, b = Customer(name="Ada Lovelace"), Customer(name="A. Lovelace", owner="u1")
    records: list[Any] = [a, b, Lead(name="Not yet converted")]
    for c in (a, b):
        ticket = Ticket(customer_id=c.id, subject="Engine jammed")
        deal = Opportunity(name="Engines", customer_id=c.id, pipeline="sales", stage="proposal")
        records += [
            Contact(customer_id=c.id, name="Assistant"),
            Interaction(customer_id=c.id, occurred_at=T0, channel=InteractionChannel.CALL),
            _order(c.id),
            ticket,
            SatisfactionSurvey(ticket_id=ticket.id, customer_id=c.id, sent_at=T0),
            Lead(
                name="Ada",
                status=LeadStatus.QUALIFIED,
                converted_at=T0,
                converted_customer_id=c.id,
                converted_opportunity_id=deal.id,
            ),
            deal,
            Quote(opportunity_id=deal.id, customer_id=c.id, currency="EUR"),
        ]
    _store(crm, tenant, *records)
    return a, b


def test_failure_midway_writes_nothing(crm: CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception after some records moved leaves every record, customer and event as it was."""
    tenant = f"t-{new_id()}"
    a, b = _pair(crm, tenant)
    before = _snapshot(crm, tenant)
    events_before = _events(crm, tenant)

    def boom(obj: Any) -> Any:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"), crm.unit_of_work(tenant) as uow:
        monkeypatch.setattr(uow.orders, "save", boom)  # contacts and interactions have moved by then
        merge_customers(uow, a.id, [b.id])
        uow.commit()
    assert _snapshot(crm, tenant) == before
    assert _events(crm, tenant) == events_before


@pytest.mark.parametrize("racer", ["survivor", "duplicate"])
def test_a_record_changed_during_the_merge_is_not_lost(
    crm: CRM, monkeypatch: pytest.MonkeyPatch, racer: str
) -> None:
    """The survivor or a duplicate saved by another unit of work after the merge read it:
    ConcurrencyError, the other change kept, nothing merged."""
    tenant = f"t-{new_id()}"
    a, b = _pair(crm, tenant)
    raced, untouched = (a, b) if racer == "survivor" else (b, a)
    before = _snapshot(crm, tenant)
    merging = crm.unit_of_work(tenant)
    real_get = merging.customers.get

    def get_then_race(id: str) -> Customer:
        found = real_get(id)
        if id == raced.id:  # someone else saves the record right after the merge read it
            with crm.unit_of_work(tenant) as other:
                changed = other.customers.get(raced.id)
                changed.tags = ["edited"]
                other.customers.save(changed)
                other.commit()
        return found

    monkeypatch.setattr(merging.customers, "get", get_then_race)
    with pytest.raises(ConcurrencyError), merging:
        merge_customers(merging, a.id, [b.id])
        merging.commit()
    after = _snapshot(crm, tenant)
    assert after["customers"][raced.id].tags == ("edited",) and after["customers"][raced.id].version == 2
    assert after["customers"][untouched.id] == before["customers"][untouched.id]
    for aggregate in CUSTOMER_LINKS:
        assert after[aggregate.attribute] == before[aggregate.attribute]
    assert not any(isinstance(e, CustomersMerged) for e in _events(crm, tenant))


def test_missing_customers_raise_not_found(crm: CRM) -> None:
    """An unknown survivor or duplicate is NotFound, and nothing is changed."""
    tenant = f"t-{new_id()}"
    a, b = _pair(crm, tenant)
    before = _snapshot(crm, tenant)
    with crm.unit_of_work(tenant) as uow:
        with pytest.raises(NotFound, match="nobody"):
            merge_customers(uow, "nobody", [b.id])
        with pytest.raises(NotFound, match="ghost"):
            merge_customers(uow, a.id, [b.id, "ghost"])
        uow.commit()
    assert _snapshot(crm, tenant) == before


def test_bad_ids_are_refused_all_at_once() -> None:
    """No duplicates, a repeat, the survivor among the duplicates, one string: ValidationError naming each."""
    with crmcore.open("memory://") as crm, crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="at least one duplicate"):
            merge_customers(uow, "a", [])
        with pytest.raises(ValidationError, match="not one string"):
            merge_customers(uow, "a", "b")
        with pytest.raises(ValidationError, match="duplicate_ids: must be a list of ids, got None"):
            merge_customers(uow, "a", None)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"must be a list of ids, got int$"):
            merge_customers(uow, "a", 7)  # type: ignore[arg-type]
        with pytest.raises(ValidationError) as caught:
            merge_customers(uow, "a", ["b", "a", "b", ""])
        assert [(e.path, e.reason) for e in caught.value.errors] == [
            ("duplicate_ids[3]", "must not be empty"),
            ("duplicate_ids[1]", "'a' is the survivor"),
            ("duplicate_ids[2]", "'b' is named twice"),
        ]


def test_report_and_event_count_moves_per_repository() -> None:
    """The report and the event count moved records under every CUSTOMER_LINKS repository name."""
    with crmcore.open("memory://", clock=FixedClock(T0)) as crm:
        a, b = _pair(crm, "default")
        with crm.unit_of_work() as uow:
            report = merge_customers(uow, a.id, [b.id])
            uow.commit()
            assert uow.contacts.count() == 2
        assert report.moved == {link.attribute: 1 for link in CUSTOMER_LINKS}
        assert report.survivor.owner == "u1" and report.survivor.name == "Ada Lovelace"
        assert report.survivor.version == 2
        assert report.event.moved == report.moved and report.event.occurred_at == T0


# --- survivorship rules (pure) ----------------------------------------------------------------------


def _c(name: str, at: datetime | None = None, **kw: Any) -> Customer:
    return Customer(name=name, updated_at=at, **kw)


def test_keep_survivor_keeps_even_an_empty_value() -> None:
    """KEEP_SURVIVOR keeps the survivor's value, empty or not, and names the survivor as source."""
    s, d = _c("S"), _c("D", owner="u1", tags=["x"])
    rules = MergeRules(default=Survivorship.KEEP_SURVIVOR, lists=Survivorship.KEEP_SURVIVOR)
    plan = plan_merge(s, [d], rules)
    assert plan.merged.owner is None and plan.merged.tags == () and plan.merged.name == "S"
    assert plan.choice("owner").sources == (s.id,)


def test_keep_non_empty_takes_the_first_duplicate_in_order() -> None:
    """KEEP_NON_EMPTY: the survivor's value unless empty, else the first duplicate (in order) with one."""
    s, d1, d2, d3 = _c("S"), _c("D1"), _c("D2", owner="u2"), _c("D3", owner="u3")
    assert plan_merge(s, [d1, d2, d3]).merged.owner == "u2"
    assert plan_merge(s, [d3, d2]).merged.owner == "u3"
    plan = plan_merge(_c("S", owner="u0"), [d2])
    assert plan.merged.owner == "u0" and plan.choice("owner").reason == "the survivor has a value"
    empty = plan_merge(s, [d1]).choice("birthday")
    assert empty.sources == () and empty.reason == "no record has a value"


def test_keep_newest_takes_the_newest_non_empty_value() -> None:
    """KEEP_NEWEST: the most recently updated record that has a value; ties go to the survivor."""
    rules = MergeRules(default=Survivorship.KEEP_NEWEST)
    s = _c("Survivor", T0, currency="EUR")
    old = _c("Old", T0 - timedelta(days=2), currency="USD")
    new = _c("New", T0 + timedelta(days=1))  # newest, but has no currency
    plan = plan_merge(s, [old, new], rules)
    assert plan.merged.name == "New" and plan.choice("name").sources == (new.id,)
    assert plan.merged.currency == "EUR" and plan.choice("currency").sources == (s.id,)
    tie = plan_merge(s, [_c("Tie", T0)], rules)
    assert tie.merged.name == "Survivor"


def test_union_of_contact_points_dedupes_and_keeps_the_survivors_primary() -> None:
    """UNION keeps each email/phone/address once (survivor's copy first) and only the survivor's primary."""
    s = _c(
        "S",
        emails=[
            EmailAddress(address="ada@example.com"),
            EmailAddress(address="a@work.example", primary=True),
        ],
        phones=[PhoneNumber(number="+49 30 1234567")],
    )
    d = _c(
        "D",
        emails=[
            EmailAddress(address="ADA@Example.com", primary=True),
            EmailAddress(address="new@example.org"),
        ],
        phones=[PhoneNumber(number="+49301234567", primary=True), PhoneNumber(number="+1 202 555 0100")],
        addresses=[
            Address(country="DE", city="Berlin", primary=True),
            Address(country="de", city=" berlin "),
        ],
    )
    plan = plan_merge(s, [d])
    merged = plan.merged
    assert [e.address for e in merged.emails] == ["ada@example.com", "a@work.example", "new@example.org"]
    assert merged.primary_email == "a@work.example" and sum(e.primary for e in merged.emails) == 1
    assert [p.number for p in merged.phones] == ["+49301234567", "+12025550100"]
    assert not any(p.primary for p in merged.phones)  # survivor had no flag: its first stays primary
    assert merged.primary_phone == "+49301234567"
    assert len(merged.addresses) == 1 and merged.addresses[0].primary  # survivor had none: duplicate's wins
    assert plan.choice("emails").sources == (s.id, d.id)
    assert "1 repeated dropped" in plan.choice("emails").reason


def test_union_of_tags_and_consents_keeps_the_latest_consent_per_channel() -> None:
    """Tags are unioned; consents keep the most recent per channel, whichever record holds it."""
    early, late = T0 - timedelta(days=10), T0

    def consent(channel: str, granted: bool, at: datetime) -> Consent:
        return Consent(channel=ConsentChannel(channel), granted=granted, source="form", at=at)

    s = _c("S", tags=["vip"], consents=[consent("email", True, early), consent("sms", True, late)])
    d = _c("D", tags=["b2b", "vip"], consents=[consent("email", False, late), consent("post", True, early)])
    plan = plan_merge(s, [d])
    assert plan.merged.tags == ("b2b", "vip")
    assert {c.channel: c.granted for c in plan.merged.consents} == {
        ConsentChannel.EMAIL: False,
        ConsentChannel.SMS: True,
        ConsentChannel.POST: True,
    }
    assert not plan.merged.may_contact("email")


def test_custom_fields_merge_per_key() -> None:
    """Custom fields merge key by key; 'custom.<key>' overrides the rule for one key."""
    s = _c("S", T0 - timedelta(days=1), custom={"tier": "gold", "nps": None, "mine": 1})
    d = _c("D", T0, custom={"tier": "silver", "nps": 9, "theirs": "x"})
    assert plan_merge(s, [d]).merged.custom == {"tier": "gold", "nps": 9, "mine": 1, "theirs": "x"}
    rules = MergeRules(fields={"custom": Survivorship.KEEP_SURVIVOR, "custom.tier": Survivorship.KEEP_NEWEST})
    plan = plan_merge(s, [d], rules)
    assert plan.merged.custom == {"tier": "silver", "nps": None, "mine": 1}
    assert plan.choice("custom.theirs").sources == () and plan.choice("custom.tier").sources == (d.id,)


def test_currency_and_credit_limit_come_from_one_record() -> None:
    """The merged customer's currency and credit limit are one record's pair, never mixed."""
    eur_only = _c("S", T0, currency="EUR")
    usd = _c("D", T0 + timedelta(days=1), currency="USD", credit_limit=Money("1000", "USD"))
    plan = plan_merge(eur_only, [usd])  # KEEP_NON_EMPTY: the survivor has a currency
    assert (plan.merged.currency, plan.merged.credit_limit) == ("EUR", None)
    assert plan.choice("currency").sources == plan.choice("credit_limit").sources == (eur_only.id,)
    assert "taken together" in plan.choice("credit_limit").reason
    limit_only = _c("L", currency=None, credit_limit=Money("500", "JPY"))
    plan = plan_merge(_c("S"), [limit_only, usd])
    assert (plan.merged.currency, plan.merged.credit_limit) == (None, Money("500", "JPY"))
    newest = plan_merge(eur_only, [usd], MergeRules(fields={"credit_limit": Survivorship.KEEP_NEWEST}))
    assert (newest.merged.currency, newest.merged.credit_limit) == ("USD", Money("1000", "USD"))
    assert newest.choice("currency").rule is Survivorship.KEEP_NEWEST
    kept = plan_merge(usd, [eur_only], MergeRules(fields={"currency": Survivorship.KEEP_SURVIVOR}))
    assert (kept.merged.currency, kept.merged.credit_limit) == ("USD", Money("1000", "USD"))
    with pytest.raises(ValidationError, match="currency and credit_limit are merged together"):
        MergeRules(fields={"currency": Survivorship.KEEP_NEWEST, "credit_limit": Survivorship.KEEP_NON_EMPTY})


def test_merged_customer_keeps_survivor_identity_and_earliest_creation() -> None:
    """The merged customer has the survivor's id and version and the earliest created_at."""
    s = Customer(name="S", created_at=T0, version=3)
    d = Customer(name="D", created_at=T0 - timedelta(days=400))
    plan = plan_merge(s, [d])
    assert (plan.merged.id, plan.merged.version, plan.merged.created_at) == (s.id, 3, d.created_at)
    assert plan.choice("created_at").sources == (d.id,) and plan.choice("created_at").rule is None
    assert s.name == "S" and s.created_at == T0  # inputs are not changed


def test_plan_refuses_bad_groups() -> None:
    """plan_merge refuses no duplicates, the survivor as its own duplicate, and repeats."""
    s, d = _c("S"), _c("D")
    with pytest.raises(ValidationError, match="at least one"):
        plan_merge(s, [])
    with pytest.raises(ValidationError, match="is the survivor"):
        plan_merge(s, [s])
    with pytest.raises(ValidationError, match="named twice"):
        plan_merge(s, [d, d])
    with pytest.raises(ValidationError, match="must be a Customer"):
        plan_merge(s, [d, "x"])  # type: ignore[list-item]


def test_rules_are_checked_when_built() -> None:
    """Unknown fields (listing the valid ones), UNION on single values and bad rules fail at once."""
    with pytest.raises(ValidationError) as caught:
        MergeRules(fields={"nmae": Survivorship.KEEP_NEWEST, "owner": Survivorship.UNION, "tags": "newest"})  # type: ignore[dict-item]
    messages = [f"{e.path}: {e.reason}" for e in caught.value.errors]
    assert len(messages) == 3
    assert messages[0].startswith(
        "fields.nmae: is not a field a merge decides on; valid: addresses, birthday"
    )
    assert "UNION combines lists" in messages[1] and "'newest' is not one of" in messages[2]
    with pytest.raises(ValidationError, match="default"):
        MergeRules(default=Survivorship.UNION)
    with pytest.raises(ValidationError, match=r"custom\.1x"):
        MergeRules(fields={"custom.1x": Survivorship.KEEP_NEWEST})
    assert MergeRules(fields={"name": "keep_newest"}).rule_for("name") is Survivorship.KEEP_NEWEST  # type: ignore[dict-item]


def test_every_customer_field_is_classified() -> None:
    """Every Customer field is either decided by a merge or managed by the store; list fields are known."""
    names = {f.name for f in attrs.fields(Customer)}
    assert set(MERGEABLE_FIELDS) | {"id", "created_at", "updated_at", "version"} == names
    assert set(LIST_FIELDS) <= set(MERGEABLE_FIELDS)
    plan = plan_merge(_c("S"), [_c("D")])
    assert {c.field for c in plan.choices} == set(MERGEABLE_FIELDS) - {"custom"}


_RULES = st.sampled_from(list(Survivorship))


@settings(max_examples=50)
@given(
    default=st.sampled_from([r for r in Survivorship if r is not Survivorship.UNION]),
    lists=_RULES,
    fields=st.dictionaries(st.sampled_from([*LIST_FIELDS, "custom"]), _RULES, max_size=4)
    | st.dictionaries(
        st.sampled_from(["name", "owner", "birthday", "custom.tier", "custom.nps"]),
        st.sampled_from([r for r in Survivorship if r is not Survivorship.UNION]),
        max_size=3,
    ),
)
def test_rules_round_trip(
    default: Survivorship, lists: Survivorship, fields: dict[str, Survivorship]
) -> None:
    """MergeRules round-trip through crmcore.serialization unchanged."""
    rules = MergeRules(default=default, lists=lists, fields=fields)
    assert structure(unstructure(rules), MergeRules) == rules


@settings(max_examples=30, deadline=None)
@given(survivor=cst.customers(), duplicates=st.lists(cst.customers(), min_size=1, max_size=3))
def test_any_group_merges_into_a_valid_customer(survivor: Customer, duplicates: list[Customer]) -> None:
    """Any group of customers yields a valid merged customer with the survivor's id; the plan round-trips."""
    plan = plan_merge(survivor, duplicates)
    assert plan.merged.id == survivor.id
    pairs = [(c.currency, c.credit_limit) for c in [survivor, *duplicates]]
    assert (plan.merged.currency, plan.merged.credit_limit) in pairs
    assert sum(e.primary for e in plan.merged.emails) <= 1
    assert set(plan.merged.tags) == {t for c in [survivor, *duplicates] for t in c.tags}
    assert structure(unstructure(plan), MergePlan) == plan
