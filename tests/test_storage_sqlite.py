"""The storage contract on SQLite files, plus SQLite-only behaviour."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert

import crmcore
from crmcore import CRM, AlreadyExists, ConcurrencyError, StorageError, ValidationError
from crmcore.customers import Customer
from crmcore.storage.sql import SqlStore, tables, translate_errors
from crmcore.storage.sql.mapping import customer_to_row
from crmcore.testing import StoreContract
from crmcore.testing.contract import T0


class TestSqliteFileStore(StoreContract):
    """Runs every contract test on a SQLite file."""

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.path = tmp_path / "crm.db"

    def create_crm(self) -> CRM:
        return crmcore.open(f"sqlite:///{self.path}")


def test_schema_is_reused_by_a_second_open(tmp_path: Path) -> None:
    """Opening an existing file keeps its data (create_schema is idempotent)."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with crmcore.open(url) as crm, crm.unit_of_work() as uow:
        uow.customers.add(Customer(name="Kept"))
        uow.commit()
    with crmcore.open(url) as crm, crm.unit_of_work() as uow:
        assert [c.name for c in uow.customers.find()] == ["Kept"]


def test_in_memory_database_is_shared_and_runs_one_unit_of_work_at_a_time() -> None:
    """sqlite:// keeps data across units of work; overlapping ones wait, then fail clearly."""
    crm = crmcore.open("sqlite://")
    with crm.unit_of_work() as uow:
        uow.customers.add(Customer(name="Ada"))
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.customers.count() == 1
    store = crm.store
    assert isinstance(store, SqlStore) and store.exclusive is not None
    assert not store.capabilities.durable
    lock = store.exclusive
    acquired: list[bool] = []
    with crm.unit_of_work():
        t = threading.Thread(target=lambda: acquired.append(lock.acquire(timeout=0.05)))
        t.start()
        t.join()
    assert acquired == [False]  # another thread had to wait while the unit of work was open
    with crm.unit_of_work() as uow:  # and the lock is free again afterwards
        assert uow.customers.count() == 1


def test_in_memory_database_refuses_a_nested_unit_of_work_at_once() -> None:
    """A second unit of work in the same thread on sqlite:// fails immediately instead of deadlocking."""
    crm = crmcore.open("sqlite://")
    with crm.unit_of_work(), pytest.raises(ConcurrencyError, match="in this thread"):
        crm.events_since(0)
    assert crm.events_since(0) == []  # and the store is usable once the first one ends


def test_integrity_errors_are_translated_by_kind(tmp_path: Path) -> None:
    """A duplicate key is AlreadyExists; any other constraint is a ValidationError, never a driver error."""
    crm = crmcore.open(f"sqlite:///{tmp_path / 'crm.db'}")
    store = crm.store
    assert isinstance(store, SqlStore)
    row = customer_to_row(Customer(name="Ada", created_at=T0, updated_at=T0, version=1), "t1")
    with store.engine.begin() as conn:
        conn.execute(insert(tables.customers), row)
        with pytest.raises(AlreadyExists, match="UNIQUE"), translate_errors("customer"):
            conn.execute(insert(tables.customers), row)
        with pytest.raises(ValidationError, match="refused the data: NOT NULL"), translate_errors("customer"):
            conn.execute(insert(tables.customers), {**row, "id": "other", "name": None})


def test_unreachable_database_raises_storage_error(tmp_path: Path) -> None:
    """A file in a missing directory is a StorageError, not a driver exception."""
    with pytest.raises(StorageError, match="unable to open database"):
        crmcore.open(f"sqlite:///{tmp_path / 'missing' / 'crm.db'}")


def test_locked_database_translates_to_concurrency_error(tmp_path: Path) -> None:
    """A writer blocked past the busy timeout gets ConcurrencyError (retryable), not OperationalError."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = crmcore.open(url, connect_args={"timeout": 0.1})
    blocker = crmcore.open(url)
    with blocker.unit_of_work() as holding:
        holding.customers.add(Customer(name="Holds the write lock"))
        with crm.unit_of_work() as uow, pytest.raises(ConcurrencyError, match="retry"):
            uow.customers.add(Customer(name="Waits"))
            uow.commit()
