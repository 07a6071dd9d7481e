"""Shared fixtures: PostgreSQL, when CRMCORE_TEST_POSTGRES_URL names a server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from crmcore.ids import new_id

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
