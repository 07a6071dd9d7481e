"""crmcore's Alembic migrations on SQLite files and PostgreSQL: they build exactly `metadata`'s schema.

`test_upgrade_builds_what_metadata_describes` guards against drift: a change to the tables
without a migration (or a migration without the change) fails it.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.operations.ops import MigrationScript, UpgradeOps
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, create_engine, insert, inspect, text
from sqlalchemy.engine import make_url

import crmcore
from crmcore import StorageError, ValidationError
from crmcore.__main__ import main
from crmcore.analytics.summaries import customer_summaries, summarize
from crmcore.customers import Customer, Order, OrderLine, OrderStatus
from crmcore.events import CustomerCreated
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.storage.sql import metadata, migrate, tables
from crmcore.storage.sql.mapping import ORDER_MAPPING

from .conftest import postgres_url

NewDatabase = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgres"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewDatabase]:
    """Makes empty databases (SQLite files, or PostgreSQL schemas reached by search_path) as URLs."""
    if request.param == "sqlite":
        paths = iter(range(1_000))
        yield lambda: f"sqlite:///{tmp_path / f'crm{next(paths)}.db'}"
        return
    url = postgres_url()
    admin = create_engine(url)
    schemas: list[str] = []

    def make() -> str:
        schema = f"crmcore_mig_{new_id().lower()}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)

    try:
        yield make
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(new_database: NewDatabase) -> Iterator[Engine]:
    """An engine on an empty database."""
    engine = create_engine(new_database())
    try:
        yield engine
    finally:
        engine.dispose()


def crm_tables(engine: Engine) -> set[str]:
    """The crmcore tables (of `metadata`) the database has."""
    return set(inspect(engine).get_table_names()) & set(metadata.tables)


def fingerprint(engine: Engine) -> dict[str, Any]:
    """Everything the database says about crmcore's tables: columns, types, keys, indexes, DDL."""
    found = inspect(engine)
    result: dict[str, Any] = {}
    for name in sorted(metadata.tables):
        columns = [
            (
                c["name"],
                c["type"].compile(dialect=engine.dialect),
                c["nullable"],
                c.get("comment"),
                c.get("default"),
            )
            for c in found.get_columns(name)
        ]
        indexes = sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in found.get_indexes(name))
        result[name] = (columns, found.get_pk_constraint(name), indexes)
    if engine.dialect.name == "sqlite":  # the DDL itself, AUTOINCREMENT included
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE tbl_name LIKE 'crm\\_%' ESCAPE '\\'")
            )
            result["sqlite_master"] = sorted((n, s) for n, s in rows if "alembic" not in n)
    return result


def test_upgrade_builds_what_metadata_describes(engine: Engine) -> None:
    """After upgrade to head, Alembic finds no difference between the database and `metadata`."""
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert crm_tables(engine) == set(metadata.tables)
    assert migrate.check(engine) == []
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_upgrade_and_create_all_give_the_same_schema(new_database: NewDatabase) -> None:
    """The migrations and `metadata.create_all` build identical tables, down to the DDL on SQLite."""
    migrated, created = create_engine(new_database()), create_engine(new_database())
    try:
        migrate.upgrade(migrated)
        with created.begin() as conn:
            metadata.create_all(conn)
        assert fingerprint(migrated) == fingerprint(created)
        assert fingerprint(migrated)["crm_customers"][0]  # the comparison compared something
    finally:
        migrated.dispose()
        created.dispose()


def test_upgrade_is_idempotent_and_keeps_data(engine: Engine) -> None:
    """Upgrading a database that is already at head changes nothing and loses no row."""
    migrate.upgrade(engine)
    with crmcore.open(engine, create_schema=False) as crm, crm.unit_of_work() as uow:
        uow.customers.add(Customer(name="Ada", id="ada"))
        uow.commit()
    migrate.upgrade(engine)
    migrate.upgrade(engine, migrate.head_revision())
    assert migrate.current_revision(engine) == migrate.head_revision()
    with crmcore.open(engine, create_schema=False) as crm, crm.unit_of_work() as uow:
        assert uow.customers.get("ada").name == "Ada"


def test_store_works_on_an_upgraded_database(new_database: NewDatabase) -> None:
    """crmcore.open(..., create_schema=False) on a migrated database stores and reads aggregates."""
    url = new_database()
    migrate.upgrade(url)
    with crmcore.open(url, create_schema=False) as crm:
        with crm.unit_of_work(tenant="acme") as uow:
            uow.customers.add(Customer(name="Grace Hopper", id="grace", tags=["navy"]))
            uow.record(
                CustomerCreated(aggregate_id="grace", occurred_at=crm.clock.now(), name="Grace Hopper")
            )
            uow.commit()
        with crm.unit_of_work(tenant="acme") as uow:
            grace = uow.customers.get("grace")
            assert (grace.name, list(grace.tags), grace.version) == ("Grace Hopper", ["navy"], 1)
            assert [r.event.aggregate_id for r in uow.events_since(0, limit=10)] == ["grace"]


def test_upgrade_to_0002_fills_the_purchase_rollup_from_stored_orders(engine: Engine) -> None:
    """Orders stored at revision 0001 (no rollup yet) are summarised correctly after the upgrade,
    per tenant; downgrading to 0001 drops only the rollup."""
    migrate.upgrade(engine, "0001")
    start = datetime(2025, 3, 1, 12, tzinfo=UTC)
    orders = {
        tenant: [
            Order(
                customer_id=f"c{i % 3}",
                ordered_at=start + timedelta(days=i * (2 if tenant == "acme" else 5), hours=i),
                currency="EUR",
                lines=[OrderLine(product="Tea", unit_price=Money(f"{i + 1}.25", "EUR"))],
                status=OrderStatus.REFUNDED if i == 4 else OrderStatus.PAID,
                created_at=start,
                updated_at=start,
            )
            for i in range(9)
        ]
        for tenant in ("acme", "globex")
    }
    with engine.begin() as conn:  # as crmcore 0001 wrote them: no rollup rows
        for tenant, some in orders.items():
            conn.execute(insert(tables.orders), [ORDER_MAPPING.to_row(o, tenant) for o in some])
    migrate.upgrade(engine)
    observed = start + timedelta(days=60)
    with crmcore.open(engine, create_schema=False) as crm:
        for tenant, some in orders.items():
            with crm.unit_of_work(tenant) as uow:
                got = customer_summaries(uow, observed, unit="weeks")
            assert len(got) == 3 and got == summarize(some, observed, unit="weeks")
    migrate.downgrade(engine, "0001")
    assert crm_tables(engine) == set(metadata.tables) - {"crm_order_stats"}


def test_downgrade_to_base_removes_the_tables(engine: Engine) -> None:
    """Downgrading to base drops every crmcore table; upgrading again rebuilds them."""
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert crm_tables(engine) == set()
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert crm_tables(engine) == set(metadata.tables) and migrate.check(engine) == []


def test_check_reports_drift(engine: Engine) -> None:
    """check() names missing tables, missing indexes, extra columns and changed types."""
    assert "add_table crm_customers" in migrate.check(engine)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_crm_orders_tenant_id_ordered_at"))
        conn.execute(text("ALTER TABLE crm_customers ADD COLUMN segment VARCHAR(20)"))
        if engine.dialect.name == "postgresql":
            conn.execute(
                text('ALTER TABLE crm_customers ALTER COLUMN name TYPE VARCHAR(300) COLLATE "default"')
            )
            conn.execute(text("ALTER TABLE crm_customers ALTER COLUMN city TYPE VARCHAR(50)"))
    differences = migrate.check(engine)
    assert "add_index ix_crm_orders_tenant_id_ordered_at on crm_orders" in differences
    assert "remove_column crm_customers.segment" in differences
    if engine.dialect.name == "postgresql":
        assert 'modify_type crm_customers.name: VARCHAR(300) -> VARCHAR(300) COLLATE "C"' in differences
        assert 'modify_type crm_customers.city: VARCHAR(50) -> VARCHAR(100) COLLATE "C"' in differences
        assert len(differences) == 4
    else:
        assert len(differences) == 2


def test_other_tables_are_left_alone(engine: Engine) -> None:
    """A host's tables in the same database survive upgrade and downgrade and are not reported."""
    host = MetaData()
    Table("host_invoices", host, Column("id", Integer, primary_key=True), Column("note", String(20)))
    with engine.begin() as conn:
        host.create_all(conn)
    migrate.upgrade(engine)
    assert migrate.check(engine) == []
    migrate.downgrade(engine, "base")
    assert "host_invoices" in inspect(engine).get_table_names()


def upgrade_ops(script: MigrationScript) -> UpgradeOps:
    """The upgrade operations Alembic's autogenerate produced."""
    assert script.upgrade_ops is not None
    return script.upgrade_ops


def test_host_autogenerate_can_exclude_crmcore(engine: Engine) -> None:
    """With exclude_crmcore_tables, a host's own autogenerate ignores crmcore's tables and revision."""
    host = MetaData()
    Table("host_invoices", host, Column("id", Integer, primary_key=True))
    with engine.begin() as conn:
        host.create_all(conn)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        plain = MigrationContext.configure(conn, opts={"target_metadata": host})
        assert "remove_table" in str(upgrade_ops(produce_migrations(plain, host)).as_diffs())
        hooked = MigrationContext.configure(
            conn, opts={"target_metadata": host, "include_object": migrate.exclude_crmcore_tables}
        )
        assert upgrade_ops(produce_migrations(hooked, host)).as_diffs() == []


def test_host_autogenerate_can_include_crmcore(engine: Engine) -> None:
    """A host whose target_metadata includes crmcore's gets crmcore's tables rendered with its types."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"target_metadata": metadata})
        code = render_python_code(
            upgrade_ops(produce_migrations(context, metadata)), render_item=migrate.render_item
        )
    assert "op.create_table('crm_customers'" in code
    for rendered in ("Text(64)", "UtcDateTime()", "JsonDocument", "ExactDecimal()"):
        assert f"crm_types.{rendered}" in code
    assert "with_variant(sa.String" not in code and "sqlite_autoincrement=True" in code


def test_stamp_marks_tables_made_otherwise(engine: Engine) -> None:
    """Tables made by create_all and stamped at head are managed from then on (upgrade: nothing to do)."""
    with engine.begin() as conn:
        metadata.create_all(conn)
    migrate.stamp(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.upgrade(engine)
    assert migrate.check(engine) == []


def test_ensure_schema_creates_stamps_and_leaves_unmanaged_tables_unstamped(
    new_database: NewDatabase,
) -> None:
    """ensure_schema stamps the tables it creates, is idempotent, and never stamps others' tables."""
    fresh, hosted = create_engine(new_database()), create_engine(new_database())
    try:
        for _ in range(2):
            with fresh.begin() as conn:
                migrate.ensure_schema(conn)
            assert migrate.current_revision(fresh) == migrate.head_revision() and migrate.check(fresh) == []
        with hosted.begin() as conn:
            metadata.tables["crm_customers"].create(conn)  # as a host's own migration might have
            migrate.ensure_schema(conn)
        assert migrate.current_revision(hosted) is None and migrate.check(hosted) == []
        with fresh.begin() as conn:
            migrate.drop_schema(conn)
        assert inspect(fresh).get_table_names() == []
    finally:
        fresh.dispose()
        hosted.dispose()


def test_refuses_unknown_revisions(engine: Engine) -> None:
    """An unknown target is a ValidationError; a database at an unknown revision a StorageError."""
    with pytest.raises(ValidationError, match="'nope' is not a crmcore revision"):
        migrate.upgrade(engine, "nope")
    with pytest.raises(ValidationError, match="memory store has no schema"):
        migrate.upgrade("memory://")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'f00d'"))
    with pytest.raises(StorageError, match="revision 'f00d', which this version of crmcore does not know"):
        migrate.upgrade(engine)
    with engine.begin() as conn, pytest.raises(StorageError, match="f00d"):
        migrate.ensure_schema(conn)


def test_a_connection_is_used_in_the_callers_transaction(engine: Engine) -> None:
    """Given a Connection, upgrade runs in the caller's transaction: a rollback undoes it."""
    with engine.connect() as conn:
        migrate.upgrade(conn)
        assert migrate.current_revision(conn) == migrate.head_revision()
        conn.rollback()
    if engine.dialect.name == "postgresql":  # transactional DDL; SQLite commits DDL as it goes
        assert crm_tables(engine) == set() and migrate.current_revision(engine) is None


def test_alembic_commands_run_on_the_packaged_migrations(tmp_path: Path) -> None:
    """alembic_config() runs Alembic's own commands: online on a URL, and offline to SQL text."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    command.upgrade(migrate.alembic_config(url), "head")
    assert migrate.current_revision(url) == migrate.head_revision() and migrate.check(url) == []
    config = migrate.alembic_config("postgresql://app@db.invalid/crm")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE crm_alembic_version" in sql and "CREATE TABLE crm_outbox" in sql
    assert 'name VARCHAR(300) COLLATE "C" NOT NULL' in sql and "payload JSONB NOT NULL" in sql


@pytest.mark.postgres
def test_concurrent_upgrades_take_turns_on_postgresql(tmp_path: Path) -> None:
    """Processes upgrading one PostgreSQL database at once (an app's start-up) all succeed."""
    url = postgres_url()
    schema = f"crmcore_mig_{new_id().lower()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert migrate.current_revision(engine) == migrate.head_revision() and migrate.check(engine) == []
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``crmcore`` with ``argv``; (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_migrate_and_check(new_database: NewDatabase, capsys: pytest.CaptureFixture[str]) -> None:
    """`crmcore migrate` upgrades, says when there is nothing to do, and --check reports the state."""
    url = new_database()
    code, out, _ = run_cli(capsys, "migrate", "--db", url, "--check")
    assert code == 1 and "at revision (none)" in out and "add_table crm_customers" in out
    assert migrate.current_revision(url) is None  # --check changed nothing
    code, out, _ = run_cli(capsys, "migrate", "--db", url)
    assert code == 0 and f"upgraded from revision (none) to {migrate.head_revision()}" in out
    code, out, _ = run_cli(capsys, "migrate", "--db", url, "--revision", "head")
    assert code == 0 and f"already at revision {migrate.head_revision()}" in out
    code, out, _ = run_cli(capsys, "migrate", "--db", url, "--check")
    assert code == 0 and out.rstrip().endswith("up to date")


def test_cli_migrate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad revisions and URLs exit 2 with the reason; --db is required."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    code, _, err = run_cli(capsys, "migrate", "--db", url, "--revision", "nope")
    assert code == 2 and "'nope' is not a crmcore revision" in err
    code, _, err = run_cli(capsys, "migrate", "--db", "memory://")
    assert code == 2 and "memory store has no schema" in err
    code, _, err = run_cli(capsys, "migrate")
    assert code == 2 and "--db" in err
