"""Shared fixtures: PostgreSQL, when CRMCORE_TEST_POSTGRES_URL names a server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text

import crmcore
from crmcore.clock import FixedClock
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.storage.sql import SqlStore

POSTGRES_URL = os.environ.get("CRMCORE_TEST_POSTGRES_URL", "")


def postgres_url() -> str:
    """The PostgreSQL test URL with the psycopg 3 driver, or skip with the reason shown."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need CRMCORE_TEST_POSTGRES_URL (bash .ci/run sets it)")
    return POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """An engine on a schema of its own, dropped after the session, so runs never collide."""
    url = postgres_url()
    schema = f"crmcore_test_{new_id().lower()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


STORES = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=STORES)
def any_crm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CRM]:
    """A CRM on each store in turn (memory, a SQLite file, PostgreSQL), with a fixed clock.

    Tests use a fresh tenant (the ``tenant`` fixture), so the PostgreSQL schema can be shared.
    """
    clock = FixedClock(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    if request.param == "memory":
        crm = crmcore.open("memory://", clock=clock)
    elif request.param == "sqlite":
        crm = crmcore.open(f"sqlite:///{tmp_path_factory.mktemp('db') / 'crm.db'}", clock=clock)
    else:
        engine: Engine = request.getfixturevalue("postgres_engine")
        crm = CRM(SqlStore(engine), clock=clock)
        crm.create_schema()
    try:
        yield crm
    finally:
        if request.param != "postgres":
            crm.close()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for one test."""
    return f"t-{new_id()}"
