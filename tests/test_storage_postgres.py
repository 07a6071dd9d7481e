"""The storage contract on PostgreSQL, plus PostgreSQL-only behaviour (real server, no mocks)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, create_engine, inspect

import crmcore
from crmcore import CRM, StorageError
from crmcore.events import CustomerCreated
from crmcore.ids import new_id
from crmcore.storage.sql import SqlStore, metadata
from crmcore.testing import StoreContract
from crmcore.testing.contract import T0

from .conftest import postgres_url

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract):
    """Runs every contract test on PostgreSQL (one schema per test session)."""

    @pytest.fixture(autouse=True)
    def _engine(self, postgres_engine: Engine) -> None:
        self.engine = postgres_engine

    def create_crm(self) -> CRM:
        store = SqlStore(self.engine)
        store.create_schema()
        return CRM(store)

    def dispose_crm(self, crm: CRM) -> None:
        """The engine is shared by the session; nothing to close per test."""


def test_open_accepts_plain_postgresql_urls() -> None:
    """crmcore.open('postgresql://...') picks psycopg 3 without the host naming a driver."""
    url = postgres_url().replace("postgresql+psycopg://", "postgresql://")
    with crmcore.open(url, create_schema=False) as crm:
        assert crm.capabilities.name == "postgresql" and crm.capabilities.concurrent_writers
        assert isinstance(crm.store, SqlStore) and crm.store.engine.dialect.driver == "psycopg"


def test_schema_is_what_metadata_says(postgres_engine: Engine) -> None:
    """create_schema() builds the tables of the exposed MetaData, with text columns in "C" order."""
    SqlStore(postgres_engine).create_schema()
    found = inspect(postgres_engine)
    assert set(metadata.tables) <= set(found.get_table_names())
    name = next(c for c in found.get_columns("crm_customers") if c["name"] == "name")
    assert name["type"].collation == "C"  # type: ignore[attr-defined]


def test_outbox_positions_commit_in_order_under_concurrency(postgres_engine: Engine) -> None:
    """Concurrent writers of one tenant never leave a reader behind a later-committed gap."""
    store = SqlStore(postgres_engine)
    store.create_schema()
    crm = CRM(store)
    tenant = f"t-{new_id()}"
    writers, per_writer = 4, 10

    def write(w: int) -> None:
        for i in range(per_writer):
            with crm.unit_of_work(tenant) as uow:
                uow.record(CustomerCreated(aggregate_id=f"w{w}-{i}", occurred_at=T0, name="x"))
                uow.commit()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    seen: list[int] = []
    last = 0
    while any(t.is_alive() for t in threads) or len(seen) < writers * per_writer:
        for record in crm.events_since(last, tenant=tenant):
            seen.append(record.position)
            last = record.position
        if len(seen) >= writers * per_writer:
            break
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == writers * per_writer
    assert seen == sorted(seen)


def test_unreachable_server_raises_storage_error() -> None:
    """A server that does not answer is a StorageError, not a driver exception."""
    engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/test", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(StorageError, match="connection"):
        CRM(SqlStore(engine)).create_schema()
