"""Contract tests for the aggregates that belong to a customer: contacts, interactions, orders.

Mixed into `crmcore.testing.StoreContract`; the fixtures (``crm``, ``tenant``, ``fixed``) come
from there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.clock import epoch_micros
from crmcore.conditions import Field
from crmcore.customers.contact import Contact
from crmcore.customers.contact_points import PhoneNumber
from crmcore.customers.customer import Customer, LifecycleStage
from crmcore.customers.interaction import Interaction, InteractionChannel
from crmcore.customers.order import Order, OrderLine, OrderStatus, order_totals
from crmcore.customers.purchases import purchase_stats_of
from crmcore.errors import ConcurrencyError, NotFound, ValidationError
from crmcore.events import CustomerCreated, CustomerUpdated, DomainEvent, EventRedacted
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.storage.base import CUSTOMER_LINKS, Aggregate, UnitOfWork
from crmcore.testing import strategies as cst
from crmcore.testing.racing import race_threads

__all__ = ["RecordsContract"]

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_FAR = datetime(9999, 1, 1, tzinfo=UTC)
_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def _sample(aggregate: Aggregate[Any], customer_id: str = "c0") -> Any:
    """A small valid object of each customer-linked aggregate."""
    if aggregate.cls is Contact:
        return Contact(customer_id=customer_id, name="Grace Hopper", title="CTO")
    if aggregate.cls is Interaction:
        return Interaction(customer_id=customer_id, occurred_at=T0, channel=InteractionChannel.CALL)
    if aggregate.cls is Order:
        return _order(customer_id, T0, "10.00")
    raise NotImplementedError(f"no sample for {aggregate.name}")


def _order(customer_id: str, at: datetime, price: str, currency: str = "EUR", **kw: Any) -> Order:
    line = OrderLine(product="Widget", quantity=Decimal(1), unit_price=Money(price, currency))
    return Order(customer_id=customer_id, ordered_at=at, currency=currency, lines=[line], **kw)


_LINKED = [pytest.param(a, id=a.name) for a in CUSTOMER_LINKS if a.cls in (Contact, Interaction, Order)]


class RecordsContract:
    """Contacts, interactions and orders: round trips, queries, timeline, totals, redaction."""

    @_SETTINGS
    @given(
        contacts=st.lists(cst.contacts(), max_size=4),
        interactions=st.lists(cst.interactions(), max_size=4),
        orders=st.lists(cst.orders(), max_size=4),
    )
    def test_linked_records_round_trip(
        self, crm: CRM, contacts: list[Contact], interactions: list[Interaction], orders: list[Order]
    ) -> None:
        """Contacts, interactions and orders come back equal, field by field, lines included."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            for obj in contacts:
                uow.contacts.add(obj)
            uow.interactions.bulk_add(interactions)
            uow.orders.bulk_add(orders)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [uow.contacts.get(c.id) for c in contacts] == contacts
            assert sorted(uow.interactions.iter_all(), key=lambda i: i.id) == sorted(
                interactions, key=lambda i: i.id
            )
            got = {o.id: o for o in uow.orders.iter_all()}
            assert got == {o.id: o for o in orders}
            assert all(got[o.id].total == o.total for o in orders)

    @pytest.mark.parametrize("aggregate", _LINKED)
    def test_linked_record_lifecycle(self, crm: CRM, tenant: str, aggregate: Aggregate[Any]) -> None:
        """Each linked aggregate supports add, get, save with version check, find and delete."""
        obj = _sample(aggregate)
        with crm.unit_of_work(tenant) as uow:
            repo = uow.repository(aggregate)
            repo.add(obj)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            repo = uow.repository(aggregate)
            first, second = repo.get(obj.id), repo.get(obj.id)
            first.custom = {"k": 1}
            repo.save(first)
            with pytest.raises(ConcurrencyError):
                repo.save(second)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            repo = uow.repository(aggregate)
            assert repo.get(obj.id).custom == {"k": 1} and repo.get(obj.id).version == 2
            assert [o.id for o in repo.find(Field("customer_id") == "c0")] == [obj.id]
            assert repo.count(Field("customer_id") == "c1") == 0
            repo.delete(obj.id)
            uow.commit()
        with crm.unit_of_work(tenant) as uow, pytest.raises(NotFound):
            uow.repository(aggregate).get(obj.id)

    @pytest.mark.parametrize("aggregate", _LINKED)
    def test_linked_records_stay_in_their_tenant(
        self, crm: CRM, tenant: str, aggregate: Aggregate[Any]
    ) -> None:
        """Another tenant sees none of a tenant's contacts, interactions or orders."""
        obj = _sample(aggregate)
        with crm.unit_of_work(tenant) as uow:
            uow.repository(aggregate).add(obj)
            uow.commit()
        with crm.unit_of_work(f"{tenant}-other") as uow:
            repo = uow.repository(aggregate)
            assert not repo.exists(obj.id) and repo.count() == 0 and list(repo.iter_all()) == []
            assert uow.orders.totals() == {}

    @_SETTINGS
    @given(
        data=st.lists(cst.interactions(st.sampled_from(["c0", "c1"])), max_size=12), page=st.integers(1, 4)
    )
    def test_timeline_is_newest_first_and_pages_cleanly(
        self, crm: CRM, data: list[Interaction], page: int
    ) -> None:
        """timeline() lists one customer's touches newest first (id breaks ties), in whole pages."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.interactions.bulk_add(data)
            uow.commit()
        expected = sorted(
            (i for i in data if i.customer_id == "c0"), key=lambda i: (i.occurred_at, i.id), reverse=True
        )
        since = cst.NOW - timedelta(days=30)
        with crm.unit_of_work(tenant) as uow:
            pages: list[Interaction] = []
            while True:
                got = uow.interactions.timeline("c0", limit=page, offset=len(pages))
                pages += got
                if len(got) < page:
                    break
            assert pages == expected
            recent = uow.interactions.timeline("c0", since=since, until=cst.NOW, limit=None)
            assert recent == [i for i in expected if since <= i.occurred_at < cst.NOW]

    def test_timeline_checks_its_arguments(self, crm: CRM, tenant: str) -> None:
        """Bad ids, naive datetimes and negative limits are refused with the field named."""
        with crm.unit_of_work(tenant) as uow:
            with pytest.raises(ValidationError, match="customer_id"):
                uow.interactions.timeline("")
            with pytest.raises(ValidationError, match="since"):
                uow.interactions.timeline("c0", since=datetime(2026, 1, 1))
            with pytest.raises(ValidationError, match="limit"):
                uow.interactions.timeline("c0", limit=-1)

    @_SETTINGS
    @given(
        data=st.lists(cst.orders(st.sampled_from(["c0", "c1", "c2"])), max_size=12),
        until=st.none() | cst.aware_datetimes(),
    )
    def test_order_totals_agree_with_python(
        self, crm: CRM, data: list[Order], until: datetime | None
    ) -> None:
        """totals() counts only purchases, sums exactly per currency and agrees with order_totals()."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.orders.bulk_add(data)
            uow.commit()
        kept = [o for o in data if until is None or o.ordered_at < until]
        with crm.unit_of_work(tenant) as uow:
            assert uow.orders.totals(until=until) == order_totals(kept)
            some = uow.orders.totals(["c1", "nobody"], until=until)
            assert some == {k: v for k, v in order_totals(kept).items() if k == "c1"}

    @_SETTINGS
    @given(
        first=st.lists(cst.orders(st.sampled_from(["c0", "c1", "c2"])), min_size=1, max_size=8),
        steps=st.lists(
            st.tuples(
                st.sampled_from(["add", "bulk_add", "save", "move", "delete", "rollback"]),
                st.integers(0, 99),
                st.lists(cst.orders(st.sampled_from(["c0", "c1", "c2"])), min_size=1, max_size=3),
            ),
            max_size=6,
        ),
        through=cst.aware_datetimes(),
    )
    def test_purchase_stats_follow_every_order_write(
        self, crm: CRM, first: list[Order], steps: list[tuple[str, int, list[Order]]], through: datetime
    ) -> None:
        """After adds, saves (any field), moves between customers, deletes and rollbacks,
        purchase_stats equals purchase_stats_of over the stored orders, at any observation time."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.orders.bulk_add(first)
            uow.commit()
        stored = {o.id: o for o in first}
        for op, pick, new in steps:
            with crm.unit_of_work(tenant) as uow:
                target = sorted(stored)[pick % len(stored)] if stored else None
                if op in ("add", "bulk_add") or target is None:
                    uow.orders.add(new[0]) if op == "add" else uow.orders.bulk_add(new)
                    stored.update((o.id, o) for o in ([new[0]] if op == "add" else new))
                elif op == "save":  # every field of another order, on this one
                    old = uow.orders.get(target)
                    uow.orders.save(attrs.evolve(new[0], id=old.id, version=old.version))
                    stored[target] = uow.orders.get(target)
                elif op == "move":
                    moved = uow.orders.get(target)
                    moved.customer_id = new[0].customer_id
                    uow.orders.save(moved)
                    stored[target] = moved
                elif op == "delete":
                    uow.orders.delete(target)
                    del stored[target]
                else:  # written, then rolled back: the rollup must not keep any of it
                    uow.orders.bulk_add(new)
                    gone = uow.orders.get(target)
                    gone.status = OrderStatus.REFUNDED if gone.status.counts else OrderStatus.PAID
                    uow.orders.save(gone)
                    uow.rollback()
                    continue
                uow.commit()
            with crm.unit_of_work(tenant) as uow:
                for when in (through, _FAR):
                    assert uow.orders.purchase_stats(through=when) == purchase_stats_of(
                        stored.values(), through=when
                    ), (op, when)
                assert uow.orders.purchase_stats(through=_FAR, currency="EUR", customer_ids=["c1"]) == (
                    purchase_stats_of(stored.values(), through=_FAR, currency="EUR", customer_ids=["c1"])
                )

    def test_purchase_stats_stay_exact_when_writers_race(self, crm: CRM, tenant: str) -> None:
        """Threads adding (in and out of time order), bulk-adding and refunding the same customers'
        orders at once, retrying on conflicts, leave purchase_stats equal to the stored orders'."""
        threads, rounds = 4, 6

        def one_round(rng: random.Random) -> None:
            with crm.unit_of_work(tenant) as uow:
                at = T0 + timedelta(hours=rng.randrange(-200, 200))
                new = [_order(rng.choice(["c0", "c1"]), at, f"{rng.randrange(1, 99)}.50")]
                if rng.random() < 0.3:
                    new.append(_order("c0", at + timedelta(minutes=5), "1.00"))
                    uow.orders.bulk_add(new)
                else:
                    uow.orders.add(new[0])
                if rng.random() < 0.3:
                    some = uow.orders.find(Field("customer_id") == "c1", limit=1)
                    if some:
                        some[0].status = OrderStatus.REFUNDED
                        uow.orders.save(some[0])
                uow.commit()

        race_threads(threads, rounds, one_round)
        with crm.unit_of_work(tenant) as uow:
            stored = list(uow.orders.iter_all())
            assert len(stored) >= threads * rounds
            assert uow.orders.purchase_stats(through=_FAR) == purchase_stats_of(stored, through=_FAR)
            assert uow.orders.purchase_stats(through=T0) == purchase_stats_of(stored, through=T0)

    def test_purchase_stats_count_days_and_first_day_spend(self, crm: CRM, tenant: str) -> None:
        """Two orders on one UTC day are one purchase day; the first day's spend is kept apart."""
        orders = [
            _order("c0", T0, "10.00"),
            _order("c0", T0 + timedelta(hours=1), "5.50"),
            _order("c0", T0 + timedelta(days=2), "7.25"),
            _order("c0", T0 + timedelta(days=3), "99", status=OrderStatus.CANCELLED),
            _order("c1", T0 + timedelta(days=5), "1000", currency="JPY"),
        ]
        with crm.unit_of_work(tenant) as uow:
            uow.orders.bulk_add(orders)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            stats = uow.orders.purchase_stats(through=T0 + timedelta(days=9))
            assert list(stats.rows()) == [
                ("c0", "EUR", 3, 2, 2275, 1550, epoch_micros(T0), epoch_micros(T0 + timedelta(days=2))),
                ("c1", "JPY", 1, 1, 1000, 1000, *[epoch_micros(T0 + timedelta(days=5))] * 2),
            ]
            mid = uow.orders.purchase_stats(through=T0 + timedelta(days=1), currency="EUR")
            assert list(mid.rows()) == [
                ("c0", "EUR", 2, 1, 1550, 1550, epoch_micros(T0), epoch_micros(T0) + 3_600_000_000)
            ]
            assert len(uow.orders.purchase_stats(through=T0 - timedelta(seconds=1))) == 0
            with pytest.raises(ValidationError, match="through"):
                uow.orders.purchase_stats(through=datetime(2026, 1, 1))
            with pytest.raises(ValidationError, match="currency"):
                uow.orders.purchase_stats(through=T0, currency="euro")
            with pytest.raises(ValidationError, match="customer_ids"):
                uow.orders.purchase_stats(through=T0, customer_ids="c0")

    def test_order_totals_by_currency(self, crm: CRM, tenant: str) -> None:
        """Spend is kept per currency, cancelled and refunded orders are left out."""
        orders = [
            _order("c0", T0, "10.05"),
            _order("c0", T0 + timedelta(days=3), "0.10"),
            _order("c0", T0 - timedelta(days=1), "1000", currency="JPY"),
            _order("c0", T0 + timedelta(days=9), "99", status=OrderStatus.CANCELLED),
            _order("c0", T0 + timedelta(days=9), "99", status=OrderStatus.REFUNDED),
        ]
        with crm.unit_of_work(tenant) as uow:
            uow.orders.bulk_add(orders)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            totals = uow.orders.totals()["c0"]
            assert totals.orders == 3
            assert totals.spend == (Money("10.15", "EUR"), Money("1000", "JPY"))
            assert totals.spend_in("EUR") == Money("10.15", "EUR") and totals.spend_in("USD").amount == 0
            assert (totals.first_order_at, totals.last_order_at) == (
                T0 - timedelta(days=1),
                T0 + timedelta(days=3),
            )
            assert uow.orders.count(Field("total") > Money("10", "EUR")) == 3  # statuses aside
            with pytest.raises(ValidationError, match="customer_ids"):
                uow.orders.totals("c0")

    def test_order_invariants_are_checked_before_writing(self, crm: CRM, tenant: str) -> None:
        """An order changed into mixed currencies is refused by save, naming the bad line."""
        order = _order("c0", T0, "10")
        with crm.unit_of_work(tenant) as uow:
            uow.orders.add(order)
            order.lines = [OrderLine(product="x", unit_price=Money("1", "USD"))]
            with pytest.raises(ValidationError, match=r"lines\[0\].unit_price"):
                uow.orders.save(order)
            with pytest.raises(ValidationError, match=r"\[0\].lines\[0\]"):
                uow.orders.bulk_add([order])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.orders.get(order.id).currency == "EUR" and uow.orders.get(order.id).version == 1

    def test_redact_events_hides_payloads_at_commit(self, crm: CRM, tenant: str) -> None:
        """redact_events replaces the events of given aggregates by markers, only once committed."""
        other = f"{tenant}-other"
        for t in (tenant, other):
            with crm.unit_of_work(t) as uow:
                uow.record(
                    CustomerCreated(aggregate_id="c0", occurred_at=T0, name="Secret Name"),
                    CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Kept Name"),
                )
                uow.commit()
        before = crm.events_since(0, tenant=tenant)
        with crm.unit_of_work(tenant) as uow:
            assert uow.redact_events(["c0"]) == 1
            # not committed: rolled back
        assert crm.events_since(0, tenant=tenant) == before
        with crm.unit_of_work(tenant) as uow:
            assert uow.redact_events(["c0", "nobody"]) == 1
            uow.commit()
        after = crm.events_since(0, tenant=tenant)
        assert [r.position for r in after] == [r.position for r in before]
        marker = after[0].event
        assert isinstance(marker, EventRedacted) and marker.original_type == "customer.created"
        assert (marker.event_id, marker.occurred_at) == (before[0].event.event_id, T0)
        assert "Secret" not in repr(after) and after[1] == before[1]
        assert "Secret Name" in repr(crm.events_since(0, tenant=other))
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError, match="aggregate_ids"):
            uow.redact_events("c0")

    def test_redact_events_covers_pending_events_and_keeps_types_asked_for(
        self, crm: CRM, tenant: str
    ) -> None:
        """redact_events replaces pending events too; events of keep_types, and later ones, stay."""
        committed = CustomerCreated(aggregate_id="c0", occurred_at=T0, name="Secret Committed")
        audit = CustomerUpdated(aggregate_id="c0", occurred_at=T0, fields=("tags",))
        with crm.unit_of_work(tenant) as uow:
            uow.record(committed, audit)
            uow.commit()
        pending = CustomerCreated(aggregate_id="c0", occurred_at=T0, name="Secret Pending")
        kept = CustomerCreated(aggregate_id="c1", occurred_at=T0, name="Kept Name")
        later = CustomerCreated(aggregate_id="c0", occurred_at=T0, name="Recorded After")
        published: list[DomainEvent] = []
        crm.bus.subscribe(DomainEvent, published.append)
        with crm.unit_of_work(tenant) as uow:
            uow.record(pending, audit, kept)
            assert uow.redact_events(["c0"], keep_types=["customer.updated"]) == 2
            assert uow.redact_events(["c0"]) == 2  # the audit events; markers are not counted again
            uow.record(later)
            uow.commit()
        events = [r.event for r in crm.events_since(0, tenant=tenant)]
        assert [type(e).__name__ for e in events] == [
            "EventRedacted",
            "EventRedacted",
            "EventRedacted",
            "EventRedacted",
            "CustomerCreated",
            "CustomerCreated",
        ]
        assert events[4:] == [kept, later]
        for marker, original in zip(events, [committed, audit, pending, audit], strict=False):
            assert isinstance(marker, EventRedacted) and marker.original_type == original.event_type
            assert (marker.event_id, marker.occurred_at, marker.aggregate_id) == (original.event_id, T0, "c0")
        assert "Secret" not in repr(events) and "Secret" not in repr(published)
        with crm.unit_of_work(tenant) as uow:
            audit2 = CustomerUpdated(aggregate_id="c2", occurred_at=T0, fields=("name",))
            uow.record(CustomerCreated(aggregate_id="c2", occurred_at=T0, name="Secret Two"), audit2)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.redact_events(["c2"], keep_types=["customer.updated"]) == 1
            uow.commit()
        last = [r.event for r in crm.events_since(0, tenant=tenant)][-2:]
        assert isinstance(last[0], EventRedacted) and last[1] == audit2
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError) as caught:
            uow.redact_events("c0", keep_types="customer.updated")
        assert [e.path for e in caught.value.errors] == ["aggregate_ids", "keep_types"]

    def test_integers_beyond_the_database_are_refused_as_validation_errors(
        self, crm: CRM, tenant: str
    ) -> None:
        """An integer too large for the store's columns is answered, or refused with ValidationError."""
        c = Customer(name="Ada")
        with crm.unit_of_work(tenant) as uow:
            uow.customers.add(c)
            uow.commit()

        def outcome(call: Callable[[UnitOfWork], object]) -> str:
            with crm.unit_of_work(tenant) as uow:
                try:
                    call(uow)
                except ValidationError as exc:  # anything else (OverflowError) fails the test
                    return f"refused: {exc}"
                except ConcurrencyError:
                    return "stale"
            return "answered"

        def find(uow: UnitOfWork) -> None:
            assert uow.interactions.find(Field("duration_seconds") > 2**64) == []

        def save(uow: UnitOfWork) -> None:
            huge = uow.customers.get(c.id)
            huge.version = 2**63  # the model allows any non-negative version
            uow.customers.save(huge)

        found = outcome(find)
        assert found == "answered" or found.startswith("refused: interaction"), found
        saved = outcome(save)
        assert saved == "stale" or saved.startswith("refused: customer"), saved
        with crm.unit_of_work(tenant) as uow:
            assert uow.customers.get(c.id).version == 1

    def test_events_about_finds_one_aggregates_events(self, crm: CRM, tenant: str) -> None:
        """events_about returns the committed events of given aggregates, in order, in this tenant."""
        other = f"{tenant}-other"
        for t in (tenant, other):
            with crm.unit_of_work(t) as uow:
                uow.record(
                    CustomerCreated(aggregate_id="c0", occurred_at=T0, name="A"),
                    CustomerCreated(aggregate_id="c1", occurred_at=T0, name="B"),
                    CustomerUpdated(aggregate_id="c0", occurred_at=T0, fields=("name",)),
                )
                uow.commit()
        with crm.unit_of_work(tenant) as uow:
            uow.record(CustomerCreated(aggregate_id="c0", occurred_at=T0, name="not committed"))
            found = uow.events_about(["c0", "nobody"])
            assert [r.event.event_type for r in found] == ["customer.created", "customer.updated"]
            assert [r.position for r in found] == sorted(r.position for r in found)
            assert {r.tenant for r in found} == {tenant}
            updated = uow.events_about(["c0", "c1"], event_types=["customer.updated"])
            assert [(r.event.aggregate_id, r.event.event_type) for r in updated] == [
                ("c0", "customer.updated")
            ]
            assert uow.events_about([]) == [] and uow.events_about(["c0"], event_types=[]) == []
            with pytest.raises(ValidationError) as caught:
                uow.events_about("c0", event_types="customer.created")
            assert [e.path for e in caught.value.errors] == ["aggregate_ids", "event_types"]

    def test_customer_links_name_every_linked_repository(self, crm: CRM, tenant: str) -> None:
        """Every aggregate registered as customer-linked has a repository and a customer field."""
        with crm.unit_of_work(tenant) as uow:
            for aggregate in CUSTOMER_LINKS:
                assert aggregate.customer_field in aggregate.fields.fields
                assert uow.repository(aggregate).count() == 0

    def test_customer_new_fields_query(self, crm: CRM, tenant: str) -> None:
        """Lifecycle stage and the primary phone (E.164) can be queried and sorted."""
        a = Customer(name="A", lifecycle_stage=LifecycleStage.LEAD)
        b = Customer(name="B", phones=[PhoneNumber(number="+49 (30) 123-4567")])
        with crm.unit_of_work(tenant) as uow:
            uow.customers.bulk_add([a, b])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [c.name for c in uow.customers.find(Field("lifecycle_stage") == "lead")] == ["A"]
            assert [c.name for c in uow.customers.find(Field("phone") == "+49301234567")] == ["B"]
