"""The storage contract suite: every adapter, ours or a third party's, must pass it.

Use it from a pytest module::

    from crmcore import CRM
    from crmcore.testing import StoreContract

    class TestMyStore(StoreContract):
        def create_crm(self) -> CRM:
            return CRM(MyStore(...))

Each test works in a tenant of its own (the ``tenant`` fixture), so a store may be shared by all
tests of a session. Differences between adapters are gated by `StoreCapabilities`, never by name.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.clock import FixedClock
from crmcore.conditions import Condition, Field, evaluate, sort_key
from crmcore.customers.customer import CUSTOMER_FIELDS, Address, Customer, EmailAddress
from crmcore.errors import AlreadyExists, ConcurrencyError, CrmError, NotFound, ValidationError
from crmcore.events import CustomerCreated, CustomerUpdated, DomainEvent
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.storage.base import DEFAULT_TENANT, UnitOfWork
from crmcore.testing import strategies as cst
from crmcore.testing.assignment_contract import AssignmentContract
from crmcore.testing.pipeline_contract import PipelineContract
from crmcore.testing.racing import race_threads
from crmcore.testing.records_contract import RecordsContract
from crmcore.testing.segments_contract import SegmentsContract
from crmcore.testing.tickets_contract import TicketsContract

__all__ = ["StoreContract"]

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_DB_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # one test body runs under every adapter subclass, which is the point of a contract suite
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def _customer(name: str = "Ada Lovelace", **kw: Any) -> Customer:
    return Customer(name=name, **kw)


def _ids(objs: list[Customer]) -> list[str]:
    return [o.id for o in objs]


class StoreContract(RecordsContract, SegmentsContract, TicketsContract, AssignmentContract, PipelineContract):
    """Abstract contract tests; subclass and implement `create_crm` (and `dispose_crm` if needed)."""

    def create_crm(self) -> CRM:
        """A CRM on the store under test. Tests use fresh tenants, so the store may be shared."""
        raise NotImplementedError

    def dispose_crm(self, crm: CRM) -> None:
        """Release what `create_crm` made; by default, close the store."""
        crm.close()

    # --- fixtures ---

    @pytest.fixture
    def crm(self) -> Iterator[CRM]:
        crm = self.create_crm()
        try:
            yield crm
        finally:
            self.dispose_crm(crm)

    @pytest.fixture
    def tenant(self) -> str:
        return f"t-{new_id()}"

    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(T0)

    @pytest.fixture
    def fixed(self, crm: CRM, clock: FixedClock) -> CRM:
        """The same store, seen through a fixed clock and a fresh event bus."""
        return CRM(crm.store, clock=clock)

    def stored(self, crm: CRM, tenant: str, *objs: Customer) -> list[Customer]:
        with crm.unit_of_work(tenant) as uow:
            for obj in objs:
                uow.customers.add(obj)
            uow.commit()
        return list(objs)

    # --- round trips ---

    @_DB_SETTINGS
    @given(customer=cst.customers(rich=True))
    def test_every_field_round_trips(self, crm: CRM, customer: Customer) -> None:
        """What is added comes back equal, field by field, for every field type."""
        tenant = f"t-{new_id()}"
        self.stored(crm, tenant, customer)
        with crm.unit_of_work(tenant) as uow:
            got = uow.customers.get(customer.id)
            assert got == customer
            assert [c == customer for c in uow.customers.iter_all()] == [True]

    def test_custom_json_and_money_keep_their_types(self, crm: CRM, tenant: str) -> None:
        """Nested custom JSON, exact decimals and non-UTC datetimes come back with equal values."""
        created = datetime(2025, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        c = _customer(
            custom={
                "tier": "gold",
                "n": 3,
                "x": 2.5,
                "ok": True,
                "none": None,
                "nested": {"a": [1, "b", {"c": False}]},
            },
            credit_limit=Money("1234567890.12", "EUR"),
            created_at=created,
        )
        self.stored(crm, tenant, c)
        with crm.unit_of_work(tenant) as uow:
            got = uow.customers.get(c.id)
        assert got.custom == c.custom
        assert type(got.custom["n"]) is int and type(got.custom["x"]) is float
        assert got.credit_limit == Money(Decimal("1234567890.12"), "EUR")
        assert got.created_at == created and got.created_at.utcoffset() == timedelta(0)

    def test_returned_objects_are_copies(self, crm: CRM, tenant: str) -> None:
        """Changing an object after add or get changes nothing stored until save."""
        c = _customer(custom={"a": [1]})
        self.stored(crm, tenant, c)
        c.custom["a"].append(2)
        c.name = "Changed"
        with crm.unit_of_work(tenant) as uow:
            got = uow.customers.get(c.id)
            got.custom["a"].append(3)
            assert uow.customers.get(c.id).custom == {"a": [1]}
            assert uow.customers.get(c.id).name == "Ada Lovelace"

    # --- add / get / save / delete ---

    def test_add_stamps_times_and_version(self, fixed: CRM, tenant: str) -> None:
        """add() sets created_at/updated_at from the clock when empty, and version 1."""
        c = _customer()
        assert (c.version, c.created_at) == (0, None)
        self.stored(fixed, tenant, c)
        assert (c.version, c.created_at, c.updated_at) == (1, T0, T0)
        given_time = T0 - timedelta(days=400)
        d = self.stored(fixed, tenant, _customer(created_at=given_time))[0]
        assert d.created_at == given_time and d.updated_at == T0

    def test_get_missing_raises_not_found(self, crm: CRM, tenant: str) -> None:
        """get() of an unknown id raises NotFound naming the kind and id."""
        with (
            crm.unit_of_work(tenant) as uow,
            pytest.raises(NotFound, match="customer 'nope' not found"),
        ):
            uow.customers.get("nope")

    def test_add_existing_id_raises_and_unit_of_work_goes_on(self, crm: CRM, tenant: str) -> None:
        """A taken id raises AlreadyExists; the unit of work stays usable and can commit."""
        c = self.stored(crm, tenant, _customer())[0]
        with crm.unit_of_work(tenant) as uow:
            with pytest.raises(AlreadyExists):
                uow.customers.add(_customer("Other", id=c.id))
            uow.customers.add(_customer("Fine"))
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert sorted(x.name for x in uow.customers.find()) == ["Ada Lovelace", "Fine"]

    def test_failed_add_leaves_object_unstamped(self, crm: CRM, tenant: str) -> None:
        """An add that fails restores the object's version and times."""
        c = self.stored(crm, tenant, _customer())[0]
        twin = _customer(id=c.id)
        with crm.unit_of_work(tenant) as uow, pytest.raises(AlreadyExists):
            uow.customers.add(twin)
        assert (twin.version, twin.created_at, twin.updated_at) == (0, None, None)

    def test_save_bumps_version_and_updated_at(self, fixed: CRM, clock: FixedClock, tenant: str) -> None:
        """save() stores the change, increments version and stamps updated_at."""
        c = self.stored(fixed, tenant, _customer())[0]
        clock.advance(timedelta(hours=1))
        with fixed.unit_of_work(tenant) as uow:
            got = uow.customers.get(c.id)
            got.tags = ("vip",)
            uow.customers.save(got)
            uow.commit()
        assert got.version == 2
        with fixed.unit_of_work(tenant) as uow:
            again = uow.customers.get(c.id)
        assert again.tags == ("vip",) and again.version == 2
        assert again.updated_at == T0 + timedelta(hours=1) and again.created_at == T0

    def test_stale_save_raises_concurrency_error(self, crm: CRM, tenant: str) -> None:
        """Two units of work save the same version: exactly one wins, the other gets ConcurrencyError."""
        c = self.stored(crm, tenant, _customer())[0]
        outcomes: list[str] = []
        first, second = crm.unit_of_work(tenant), crm.unit_of_work(tenant)
        with first, second:
            a, b = first.customers.get(c.id), second.customers.get(c.id)
            a.name, b.name = "From A", "From B"
            first.customers.save(a)
            first.commit()
            outcomes.append("A committed")
            try:
                second.customers.save(b)
                second.commit()
                outcomes.append("B committed")
            except ConcurrencyError:
                outcomes.append("B refused")
        assert outcomes == ["A committed", "B refused"]
        with crm.unit_of_work(tenant) as uow:
            assert uow.customers.get(c.id).name == "From A"
            assert uow.customers.get(c.id).version == 2

    def test_racing_saves_one_wins(self, crm: CRM, tenant: str) -> None:
        """Two units of work race to save one version: exactly one commits, the other gets ConcurrencyError.

        The second saves in a thread while the first still holds its uncommitted change, so each
        adapter's way of meeting the race is exercised (a row lock, a busy database, a version
        check at commit), whichever of the two wins.
        """
        c = self.stored(crm, tenant, _customer())[0]
        results: dict[str, str] = {}
        started = threading.Event()
        first, second = crm.unit_of_work(tenant), crm.unit_of_work(tenant)

        def attempt(uow: UnitOfWork, name: str, signal: threading.Event | None = None) -> None:
            try:
                got = uow.customers.get(c.id)
                got.name = f"From {name}"
                if signal is not None:
                    signal.set()
                uow.customers.save(got)
                uow.commit()
                results[name] = "committed"
            except ConcurrencyError:
                results[name] = "refused"

        with first, second:
            a = first.customers.get(c.id)
            a.name = "From A"
            first.customers.save(a)
            racer = threading.Thread(target=attempt, args=(second, "B", started))
            racer.start()
            started.wait(timeout=10)
            time.sleep(0.1)  # let B reach the contested row before A commits
            try:
                first.commit()
                results["A"] = "committed"
            except ConcurrencyError:
                results["A"] = "refused"
            racer.join(timeout=60)
        assert sorted(results.values()) == ["committed", "refused"]
        winner = next(name for name, outcome in results.items() if outcome == "committed")
        with crm.unit_of_work(tenant) as uow:
            stored = uow.customers.get(c.id)
        assert (stored.name, stored.version) == (f"From {winner}", 2)

    def test_no_update_is_lost_under_threads(self, crm: CRM, tenant: str) -> None:
        """Threads incrementing one counter with retry-on-conflict lose no increment."""
        c = self.stored(crm, tenant, _customer(custom={"n": 0}))[0]
        threads, per_thread = 4, 5

        def one_round(_: random.Random) -> None:
            with crm.unit_of_work(tenant) as uow:
                got = uow.customers.get(c.id)
                got.custom = {"n": got.custom["n"] + 1}
                uow.customers.save(got)
                uow.commit()

        race_threads(threads, per_thread, one_round)
        with crm.unit_of_work(tenant) as uow:
            final = uow.customers.get(c.id)
        assert final.custom["n"] == threads * per_thread
        assert final.version == 1 + threads * per_thread

    def test_save_missing_raises_not_found(self, crm: CRM, tenant: str) -> None:
        """save() of an object never added raises NotFound and leaves its version alone."""
        c = _customer(version=3)
        with crm.unit_of_work(tenant) as uow, pytest.raises(NotFound):
            uow.customers.save(c)
        assert c.version == 3

    def test_delete(self, crm: CRM, tenant: str) -> None:
        """delete() removes the object; deleting it again raises NotFound."""
        c = self.stored(crm, tenant, _customer())[0]
        with crm.unit_of_work(tenant) as uow:
            uow.customers.delete(c.id)
            assert not uow.customers.exists(c.id)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert not uow.customers.exists(c.id)
            with pytest.raises(NotFound):
                uow.customers.delete(c.id)

    def test_delete_with_expected_version(self, crm: CRM, tenant: str) -> None:
        """delete(id, expected_version=v) deletes version v only: else ConcurrencyError, or NotFound."""
        c = self.stored(crm, tenant, _customer())[0]
        with crm.unit_of_work(tenant) as uow:
            for bad in (0, -1, True, "1"):
                with pytest.raises(ValidationError, match="expected_version"):
                    uow.customers.delete(c.id, expected_version=bad)  # type: ignore[arg-type]
            with pytest.raises(ConcurrencyError, match="version 1"):
                uow.customers.delete(c.id, expected_version=2)
            assert uow.customers.exists(c.id)
            with pytest.raises(NotFound):
                uow.customers.delete("nobody", expected_version=1)
            got = uow.customers.get(c.id)
            got.tags = ("vip",)
            uow.customers.save(got)  # version 2, not committed: this unit of work sees it
            with pytest.raises(ConcurrencyError):
                uow.customers.delete(c.id, expected_version=1)
            uow.customers.delete(c.id, expected_version=2)
            assert not uow.customers.exists(c.id)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert not uow.customers.exists(c.id)

    def test_versioned_delete_refuses_a_change_committed_since_the_read(self, crm: CRM, tenant: str) -> None:
        """A record saved by another unit of work between read and versioned delete is not lost."""
        c = self.stored(crm, tenant, _customer())[0]
        with crm.unit_of_work(tenant) as deleting:
            read = deleting.customers.get(c.id)
            with crm.unit_of_work(tenant) as other:
                changed = other.customers.get(c.id)
                changed.tags = ("edited",)
                other.customers.save(changed)
                other.commit()
            with pytest.raises(ConcurrencyError):  # at the delete or, at the latest, at commit
                deleting.customers.delete(c.id, expected_version=read.version)
                deleting.commit()
        with crm.unit_of_work(tenant) as uow:
            kept = uow.customers.get(c.id)
        assert (kept.tags, kept.version) == (("edited",), 2)

    def test_versioned_delete_racing_a_save_one_wins(self, crm: CRM, tenant: str) -> None:
        """A versioned delete and a save of the same version race: one commits, the other is refused.

        The save runs in a thread while the delete is still uncommitted, so each adapter's way of
        meeting the race (a row lock, a busy database, a version check at commit) is exercised.
        """
        c = self.stored(crm, tenant, _customer())[0]
        results: dict[str, str] = {}
        started = threading.Event()
        deleting, saving = crm.unit_of_work(tenant), crm.unit_of_work(tenant)

        def save() -> None:
            try:
                got = saving.customers.get(c.id)
                got.tags = ("edited",)
                started.set()
                saving.customers.save(got)
                saving.commit()
                results["save"] = "committed"
            except (ConcurrencyError, NotFound):
                results["save"] = "refused"
            finally:
                started.set()

        with deleting, saving:
            read = deleting.customers.get(c.id)
            deleting.customers.delete(c.id, expected_version=read.version)
            racer = threading.Thread(target=save)
            racer.start()
            started.wait(timeout=10)
            time.sleep(0.1)  # let the save reach the contested row before the delete commits
            try:
                deleting.commit()
                results["delete"] = "committed"
            except ConcurrencyError:
                results["delete"] = "refused"
            racer.join(timeout=60)
        assert sorted(results.values()) == ["committed", "refused"]
        with crm.unit_of_work(tenant) as uow:
            if results["delete"] == "committed":
                assert not uow.customers.exists(c.id)
            else:
                assert uow.customers.get(c.id).tags == ("edited",)

    def test_wrong_type_and_bad_ids_are_refused(self, crm: CRM, tenant: str) -> None:
        """Repositories refuse objects of another type and malformed ids with ValidationError."""
        with crm.unit_of_work(tenant) as uow:
            with pytest.raises(ValidationError, match="expected a Customer"):
                uow.customers.add("not a customer")  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="id"):
                uow.customers.get("")
            with pytest.raises(ValidationError, match="id"):
                uow.customers.get("has space")

    # --- units of work ---

    def test_nothing_is_written_without_commit(self, crm: CRM, tenant: str) -> None:
        """Leaving the block without commit() discards changes and events."""
        with crm.unit_of_work(tenant) as uow:
            c = uow.customers.add(_customer())
            uow.record(CustomerCreated(aggregate_id=c.id, occurred_at=T0, name=c.name))
            assert uow.customers.exists(c.id)
        with crm.unit_of_work(tenant) as uow:
            assert uow.customers.count() == 0
            assert uow.events_since(0) == []

    def test_exception_rolls_back_every_change(self, crm: CRM, tenant: str) -> None:
        """An exception half-way through leaves the store exactly as before the unit of work."""
        kept = self.stored(crm, tenant, _customer("Kept"))[0]
        with pytest.raises(ValidationError), crm.unit_of_work(tenant) as uow:
            got = uow.customers.get(kept.id)
            got.name = "Changed"
            uow.customers.save(got)
            uow.customers.add(_customer("New"))
            uow.customers.delete(kept.id)
            uow.record(CustomerCreated(aggregate_id="x", occurred_at=T0, name="New"))
            uow.customers.add(_customer("Bad", created_at=datetime(2026, 1, 1)))  # naive: refused
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [(c.name, c.version) for c in uow.customers.find()] == [("Kept", 1)]
            assert uow.events_since(0) == []

    def test_commit_then_keep_working(self, crm: CRM, tenant: str) -> None:
        """After commit() the unit of work goes on; later changes need their own commit."""
        with crm.unit_of_work(tenant) as uow:
            uow.customers.add(_customer("First"))
            uow.commit()
            uow.customers.add(_customer("Second"))
        with crm.unit_of_work(tenant) as uow:
            assert [c.name for c in uow.customers.find()] == ["First"]

    def test_unit_of_work_must_be_open(self, crm: CRM, tenant: str) -> None:
        """Using a unit of work outside its with block is an error, not a silent no-op."""
        uow = crm.unit_of_work(tenant)
        with pytest.raises(CrmError, match="not open"):
            uow.commit()

    def test_repositories_need_an_open_unit_of_work(self, crm: CRM, tenant: str) -> None:
        """Every repository method outside the with block raises CrmError, before and after it."""
        uow = crm.unit_of_work(tenant)
        calls: list[Callable[[], object]] = [
            lambda: uow.customers.get("x"),
            lambda: uow.customers.add(_customer()),
            lambda: uow.customers.find(),
            lambda: uow.customers.count(),
            lambda: list(uow.customers.iter_all()),
            lambda: uow.customers.bulk_add([_customer()]),
        ]
        for call in calls:
            with pytest.raises(CrmError, match="not open"):
                call()
        with uow:
            uow.customers.add(_customer())
            uow.commit()
        with pytest.raises(CrmError, match="not open"):
            uow.customers.count()

    def test_bad_tenant_is_refused(self, crm: CRM) -> None:
        """Tenant ids are checked like ids."""
        for bad in ("", "a b", "x" * 65):
            with pytest.raises(ValidationError, match="tenant"):
                crm.unit_of_work(bad)

    def test_default_tenant(self, crm: CRM) -> None:
        """Hosts that never name a tenant use the default one, isolated like any other."""
        crm.purge_tenant(DEFAULT_TENANT)
        c = self.stored(crm, DEFAULT_TENANT, _customer())[0]
        with crm.unit_of_work() as uow:
            assert uow.tenant == DEFAULT_TENANT and uow.customers.get(c.id) == c
        assert crm.purge_tenant(DEFAULT_TENANT) == 1

    # --- tenancy ---

    def test_tenant_isolation(self, crm: CRM, tenant: str) -> None:
        """No repository method of one tenant reads, finds, changes or deletes another's rows."""
        other = f"{tenant}-other"
        mine = self.stored(crm, tenant, _customer("Mine", tags=["vip"]))[0]
        with crm.unit_of_work(tenant) as uow:
            uow.record(CustomerCreated(aggregate_id=mine.id, occurred_at=T0, name="Mine"))
            uow.commit()
        with crm.unit_of_work(other) as uow:
            repo = uow.customers
            with pytest.raises(NotFound):
                repo.get(mine.id)
            assert not repo.exists(mine.id)
            assert repo.find() == [] and repo.find(Field("tags").contains("vip")) == []
            assert repo.count() == 0 and list(repo.iter_all()) == []
            intruder = attrs.evolve(mine, name="Hijacked")
            with pytest.raises(NotFound):
                repo.save(intruder)
            with pytest.raises(NotFound):
                repo.delete(mine.id)
            assert uow.events_since(0) == []
            twin = repo.add(_customer("Twin", id=mine.id))  # the same id is free in another tenant
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.customers.get(mine.id) == mine
            assert uow.customers.count() == 1
            assert len(uow.events_since(0)) == 1
        crm.purge_tenant(tenant)
        with crm.unit_of_work(other) as uow:
            assert uow.customers.get(mine.id) == twin

    # --- find, ordering, paging ---

    @_DB_SETTINGS
    @given(
        data=st.lists(cst.customers(), max_size=12, unique_by=lambda c: c.id),
        where=cst.conditions(),
    )
    def test_find_agrees_with_python_evaluation(
        self, crm: CRM, data: list[Customer], where: Condition
    ) -> None:
        """find() and count() return exactly the objects the condition's Python evaluation accepts."""
        tenant = f"t-{new_id()}"
        self.stored(crm, tenant, *data)
        expected = sorted(c.id for c in data if evaluate(where, c, CUSTOMER_FIELDS, cst.NOW))
        with crm.unit_of_work(tenant) as uow:
            assert _ids(uow.customers.find(where, now=cst.NOW)) == expected
            assert uow.customers.count(where, now=cst.NOW) == len(expected)

    @_DB_SETTINGS
    @given(
        data=st.lists(cst.customers(), max_size=12, unique_by=lambda c: c.id),
        order=cst.order_by(),
        limit=st.none() | st.integers(0, 5),
        offset=st.integers(0, 4),
    )
    def test_order_and_paging(
        self, crm: CRM, data: list[Customer], order: list[str], limit: int | None, offset: int
    ) -> None:
        """order_by sorts like Python (None first, code-point text, id breaks ties); limit/offset slice it."""
        tenant = f"t-{new_id()}"
        self.stored(crm, tenant, *data)
        expected = sorted(data, key=lambda c: c.id)
        for key, descending in reversed(sort_key(CUSTOMER_FIELDS, order)):
            expected.sort(key=key, reverse=descending)
        end = None if limit is None else offset + limit
        with crm.unit_of_work(tenant) as uow:
            got = uow.customers.find(order_by=order, limit=limit, offset=offset)
        assert _ids(got) == _ids(expected[offset:end])

    def test_find_rejects_bad_queries_all_at_once(self, crm: CRM, tenant: str) -> None:
        """Unknown fields, wrong value types and bad paging are reported together, by path."""
        where = (Field("nope") == 1) & (Field("created_at") > "yesterday") & (Field("kind") == "robot")
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError) as caught:
            uow.customers.find(where, order_by=["tags"], limit=-1, offset=-2)
        paths = [e.path for e in caught.value.errors]
        assert paths == [
            "where.conditions[0]",
            "where.conditions[1]",
            "where.conditions[2]",
            "order_by[0]",
            "limit",
            "offset",
        ]
        assert "unknown field 'nope'" in str(caught.value)
        assert "choose one of person, company" in str(caught.value)

    def test_relative_dates_use_the_clock(self, fixed: CRM, clock: FixedClock, tenant: str) -> None:
        """Relative-date conditions default to the unit of work's clock for now."""
        old = _customer("Old", created_at=T0 - timedelta(days=100))
        new = _customer("New", created_at=T0 - timedelta(days=10))
        self.stored(fixed, tenant, old, new)
        with fixed.unit_of_work(tenant) as uow:
            assert [c.name for c in uow.customers.find(Field("created_at").older_than(days=90))] == ["Old"]
            assert [c.name for c in uow.customers.find(Field("created_at").within_last(days=30))] == ["New"]
        clock.advance(timedelta(days=85))
        with fixed.unit_of_work(tenant) as uow:
            assert uow.customers.count(Field("created_at").older_than(days=90)) == 2

    def test_iter_all_pages_through_everything(self, crm: CRM, tenant: str) -> None:
        """iter_all() yields every object once, in id order, for any batch size."""
        data = [_customer(f"C{i}", id=f"id-{i:03d}") for i in range(23)]
        with crm.unit_of_work(tenant) as uow:
            uow.customers.bulk_add(data)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            for batch in (1, 5, 23, 1000):
                assert _ids(list(uow.customers.iter_all(batch_size=batch))) == sorted(_ids(data))
            with pytest.raises(ValidationError, match="batch_size"):
                next(uow.customers.iter_all(batch_size=0))

    def test_saving_while_iterating_visits_each_object_once(self, crm: CRM, tenant: str) -> None:
        """Objects saved during iter_all() are neither skipped nor seen twice, whatever the batching."""
        data = [_customer(f"C{i}", id=f"id-{i:03d}", custom={"n": 0}) for i in range(9)]
        with crm.unit_of_work(tenant) as uow:
            uow.customers.bulk_add(data)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            seen = []
            for c in uow.customers.iter_all(batch_size=2):
                seen.append(c.id)
                c.custom = {"n": c.custom["n"] + 1}
                uow.customers.save(c)
            uow.commit()
        assert seen == _ids(data)
        with crm.unit_of_work(tenant) as uow:
            assert [(c.custom["n"], c.version) for c in uow.customers.find()] == [(1, 2)] * 9

    # --- bulk ---

    def test_bulk_add_is_all_or_nothing(self, crm: CRM, tenant: str) -> None:
        """A taken id fails the whole import; nothing of it is stored."""
        existing = self.stored(crm, tenant, _customer("Existing"))[0]
        batch = [_customer(f"New {i}") for i in range(10)] + [_customer("Clash", id=existing.id)]
        with pytest.raises(AlreadyExists), crm.unit_of_work(tenant) as uow:
            uow.customers.bulk_add(batch)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [c.name for c in uow.customers.find()] == ["Existing"]
        assert {(c.version, c.created_at) for c in batch} == {(0, None)}  # stamps put back, like add()

    def test_bulk_add_checks_input(self, crm: CRM, tenant: str) -> None:
        """bulk_add refuses repeated ids and wrong types, naming each bad item."""
        a = _customer("A")
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError) as caught:
            uow.customers.bulk_add([a, _customer("B", id=a.id), "x"])  # type: ignore[list-item]
        assert {e.path for e in caught.value.errors} == {"[1].id", "[2]"}

    def test_bulk_add_counts_and_stamps(self, fixed: CRM, tenant: str) -> None:
        """bulk_add returns the count and stamps like add()."""
        data = [_customer(f"C{i}") for i in range(5)]
        with fixed.unit_of_work(tenant) as uow:
            assert uow.customers.bulk_add(data) == 5
            uow.commit()
        assert {(c.version, c.created_at) for c in data} == {(1, T0)}
        with fixed.unit_of_work(tenant) as uow:
            assert uow.customers.count() == 5

    # --- outbox and bus ---

    def test_outbox_is_written_with_the_change(self, fixed: CRM, tenant: str) -> None:
        """Events recorded in a unit of work are stored at commit, in order, readable by position."""
        with fixed.unit_of_work(tenant) as uow:
            created = [CustomerCreated(aggregate_id=f"c{i}", occurred_at=T0, name=f"N{i}") for i in range(5)]
            uow.record(*created)
            uow.commit()
        records = fixed.events_since(0, tenant=tenant)
        assert [r.event for r in records] == created
        positions = [r.position for r in records]
        assert positions == sorted(positions) and len(set(positions)) == 5
        assert all(r.tenant == tenant for r in records)
        page = fixed.events_since(positions[1], limit=2, tenant=tenant)
        assert [r.position for r in page] == positions[2:4]
        assert fixed.events_since(positions[-1], tenant=tenant) == []

    def test_outbox_positions_are_never_reused(self, crm: CRM, tenant: str) -> None:
        """After purge_tenant removes the newest events, new events still get higher positions."""
        other = f"{tenant}-other"
        for t in (tenant, other):
            with crm.unit_of_work(t) as uow:
                uow.record(CustomerCreated(aggregate_id="c", occurred_at=T0, name=t))
                uow.commit()
        before = crm.events_since(0, tenant=other)[-1].position
        crm.purge_tenant(other)
        with crm.unit_of_work(tenant) as uow:
            uow.record(CustomerCreated(aggregate_id="c", occurred_at=T0, name="after"))
            uow.commit()
        assert crm.events_since(0, tenant=tenant)[-1].position > before

    def test_bus_delivers_after_commit_only(self, fixed: CRM, tenant: str) -> None:
        """Subscribers see events once committed; never for a rolled-back unit of work."""
        seen: list[DomainEvent] = []
        fixed.bus.subscribe(DomainEvent, seen.append)
        event = CustomerUpdated(aggregate_id="c1", occurred_at=T0, fields=("name",))
        with fixed.unit_of_work(tenant) as uow:
            uow.record(event)
            assert seen == []
        assert seen == []
        with fixed.unit_of_work(tenant) as uow:
            uow.record(event)
            uow.commit()
            assert seen == [event]

    def test_failing_handler_does_not_undo_commit(self, fixed: CRM, tenant: str) -> None:
        """A handler that raises is logged; the commit stands and other handlers still run."""
        seen: list[DomainEvent] = []

        def broken(_: DomainEvent) -> None:
            raise RuntimeError("handler bug")

        fixed.bus.subscribe(CustomerCreated, broken)
        fixed.bus.subscribe(CustomerCreated, seen.append)
        c = _customer()
        with fixed.unit_of_work(tenant) as uow:
            uow.customers.add(c)
            uow.record(CustomerCreated(aggregate_id=c.id, occurred_at=T0, name=c.name))
            uow.commit()
        assert len(seen) == 1
        with fixed.unit_of_work(tenant) as uow:
            assert uow.customers.exists(c.id)

    def test_events_since_checks_arguments(self, crm: CRM, tenant: str) -> None:
        """Bad positions and limits are refused with the argument named."""
        with pytest.raises(ValidationError, match="position"):
            crm.events_since(-1, tenant=tenant)
        with pytest.raises(ValidationError, match="limit"):
            crm.events_since(0, limit=0, tenant=tenant)

    def test_record_refuses_non_events(self, crm: CRM, tenant: str) -> None:
        """Only DomainEvents go to the outbox."""
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError, match="DomainEvent"):
            uow.record({"type": "x"})  # type: ignore[arg-type]

    def test_purge_tenant_removes_rows_and_events(self, crm: CRM, tenant: str) -> None:
        """purge_tenant() deletes a tenant's objects and outbox, and nothing else."""
        other = f"{tenant}-other"
        for t in (tenant, other):
            c = self.stored(
                crm,
                t,
                _customer(emails=[EmailAddress(address="a@b.co")], addresses=[Address(country="DE")]),
            )[0]
            with crm.unit_of_work(t) as uow:
                uow.record(CustomerCreated(aggregate_id=c.id, occurred_at=T0, name=c.name))
                uow.commit()
        assert crm.purge_tenant(tenant) == 2
        with crm.unit_of_work(tenant) as uow:
            assert uow.customers.count() == 0 and uow.events_since(0) == []
        with crm.unit_of_work(other) as uow:
            assert uow.customers.count() == 1 and len(uow.events_since(0)) == 1
