"""Migrations for crmcore's own tables: Alembic, configured in code, shipped with the package.

crmcore keeps its revision in a table of its own, ``crm_alembic_version``, so it never collides
with a host application's ``alembic_version``. Hosts either let crmcore migrate its tables
(`upgrade` at start-up, or ``python -m crmcore migrate``) or take the tables into their own
Alembic environment (``target_metadata`` = `crmcore.storage.sql.metadata`); see docs/storage.md.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    JSON,
    Connection,
    Dialect,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from crmcore.errors import StorageError, ValidationError
from crmcore.storage.sql.tables import metadata
from crmcore.storage.sql.types import ExactDecimal, UtcDateTime

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

__all__ = [
    "SCRIPT_LOCATION",
    "Target",
    "VERSION_TABLE",
    "alembic_config",
    "check",
    "compare_type",
    "context_options",
    "current_revision",
    "downgrade",
    "drop_schema",
    "ensure_schema",
    "exclude_crmcore_tables",
    "head_revision",
    "include_crmcore_tables",
    "render_item",
    "stamp",
    "upgrade",
]

VERSION_TABLE = "crm_alembic_version"
"""The table holding the revision of crmcore's schema (not ``alembic_version``: that is the host's)."""

SCRIPT_LOCATION = "crmcore.storage.sql:migrations"
"""crmcore's Alembic script directory, as a package resource (no ``alembic.ini`` needed)."""

# Any constant will do: every process migrating one PostgreSQL database takes the same lock.
_PG_LOCK_KEY = 0x63726D636F7265  # "crmcore"

Target = Engine | Connection | str
"""Where to migrate: an `Engine`, a `Connection` (used as is, in its transaction) or a URL."""


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic `Config` for crmcore's migrations, to run any `alembic.command` on them.

    Args:
        url: the database URL, for commands that connect themselves (or ``sql=True`` output).
        connection: a connection the commands use instead (``config.attributes["connection"]``).
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision shipped with this version of crmcore."""
    head = _scripts().get_current_head()
    assert head is not None, "crmcore ships at least one revision"
    return head


def include_crmcore_tables(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """Alembic ``include_object`` hook that sees only crmcore's tables (and their columns, indexes).

    crmcore's environment uses it, so a database shared with a host's tables is never touched
    beyond crmcore's own.
    """
    return _table_name(obj, name, type_) in metadata.tables


def exclude_crmcore_tables(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
) -> bool:
    """Alembic ``include_object`` hook for a host's own environment: ignore everything crmcore owns.

    Use it when crmcore migrates its own tables, so the host's autogenerate proposes neither to
    drop them nor to drop ``crm_alembic_version``.
    """
    table = _table_name(obj, name, type_)
    return table not in metadata.tables and table != VERSION_TABLE


def _table_name(obj: SchemaItem, name: str | None, type_: str) -> str | None:
    if type_ == "table":
        return name
    table = getattr(obj, "table", None)
    return getattr(table, "name", None)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Alembic ``render_item`` hook: write crmcore's column types as crmcore types in revisions.

    A migration must create what `metadata` describes on every dialect (``"C"`` collation and
    JSONB on PostgreSQL, fixed-width UTC text on SQLite), which only the types themselves know.
    """
    if type_ != "type":
        return False
    rendered = _render_type(obj)
    if rendered is None:
        return False
    autogen_context.imports.add("from crmcore.storage.sql import types as crm_types")
    return rendered


def _render_type(obj: Any) -> str | None:
    if isinstance(obj, UtcDateTime):
        return "crm_types.UtcDateTime()"
    if isinstance(obj, ExactDecimal):
        return "crm_types.ExactDecimal()"
    variants = getattr(obj, "_variant_mapping", {})
    pg = variants.get("postgresql")
    if type(obj) is JSON and isinstance(pg, JSONB) and len(variants) == 1:
        return "crm_types.JsonDocument"
    if (
        type(obj) is String
        and obj.collation is None
        and obj.length is not None
        and type(pg) is String
        and pg.collation == "C"
        and pg.length == obj.length
        and len(variants) == 1
    ):
        return f"crm_types.Text({obj.length})"
    return None


def compare_type(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic ``compare_type`` hook: a text column's collation counts too (``"C"`` on PostgreSQL).

    Alembic's own comparison ignores collations, so a column that lost the ``"C"`` collation, and
    with it code-point order and keyset paging on its index, would go unnoticed.
    """
    expected = getattr(metadata_type.dialect_impl(context.dialect), "collation", None)
    found = getattr(inspected_type, "collation", None)
    if expected != found:
        return True
    return None  # Alembic compares the rest


def context_options() -> dict[str, Any]:
    """The `EnvironmentContext.configure` options of crmcore's environment (also used by `check`)."""
    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "include_object": include_crmcore_tables,
        "render_item": render_item,
        "render_as_batch": True,  # revisions must also run on SQLite, which cannot ALTER much
        "compare_type": compare_type,
    }


@contextmanager
def _connected(target: Target) -> Iterator[Connection]:
    """A connection in a transaction: the caller's own, or one committed when the block ends."""
    if isinstance(target, Connection):
        yield target
        return
    engine = _engine(target) if isinstance(target, str) else target
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        if isinstance(target, str):
            engine.dispose()


def _engine(url: str) -> Engine:
    from crmcore.storage.sql.store import SqlStore

    if url.split("://", 1)[0] == "memory":
        raise ValidationError("url", f"{url!r}: the memory store has no schema to migrate")
    return SqlStore(url).engine


@contextmanager
def _translated(what: str) -> Iterator[None]:
    from crmcore.storage.sql.store import translate_errors

    with translate_errors(what):
        try:
            yield
        except CommandError as exc:
            raise StorageError(f"{what}: {exc}") from exc


def _serialized(conn: Connection) -> None:
    """On PostgreSQL, wait for any other process migrating the same database, until commit."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))


def _known(revision: str) -> str:
    if revision in ("head", "heads", "base"):
        return revision
    try:
        script = _scripts().get_revision(revision)
    except CommandError as exc:
        raise ValidationError("revision", f"{revision!r} is not a crmcore revision: {exc}") from exc
    if script is None:
        raise ValidationError("revision", f"{revision!r} is not a crmcore revision")
    return script.revision


def _current(conn: Connection) -> str | None:
    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    if len(heads) > 1:
        raise StorageError(f"{VERSION_TABLE} holds several revisions {sorted(heads)}; expected one")
    return heads[0] if heads else None


def _check_known(current: str | None) -> None:
    if current is not None and current not in {s.revision for s in _scripts().walk_revisions()}:
        raise StorageError(
            f"the database's crmcore schema is at revision {current!r}, which this version of crmcore "
            f"does not know (newest: {head_revision()!r}); upgrade crmcore"
        )


def upgrade(target: Target, revision: str = "head") -> None:
    """Migrate crmcore's tables up to ``revision``, creating them on an empty database.

    Already at ``revision``: nothing happens. On PostgreSQL, processes that upgrade one database
    at the same time take turns (an advisory lock), so an application may upgrade at start-up.

    Args:
        target: an `Engine`, a URL, or a `Connection` (which the caller then commits).
        revision: the revision to reach (default: the newest one shipped).

    Raises:
        ValidationError: for an unknown revision or a URL that names no database.
        StorageError: if the database holds a revision this crmcore does not know, or fails.
    """
    revision = _known(revision)
    with _translated("upgrade schema"), _connected(target) as conn:
        _serialized(conn)
        _check_known(_current(conn))
        command.upgrade(alembic_config(connection=conn), revision)


def downgrade(target: Target, revision: str) -> None:
    """Migrate crmcore's tables down to ``revision``; ``"base"`` drops them all, with their data.

    Args:
        target: an `Engine`, a URL, or a `Connection` (which the caller then commits).
        revision: the revision to go back to, or ``"base"``.

    Raises:
        ValidationError: for an unknown revision or a URL that names no database.
        StorageError: if the database holds a revision this crmcore does not know, or fails.
    """
    revision = _known(revision)
    with _translated("downgrade schema"), _connected(target) as conn:
        _serialized(conn)
        _check_known(_current(conn))
        command.downgrade(alembic_config(connection=conn), revision)


def stamp(target: Target, revision: str = "head") -> None:
    """Record ``revision`` as the schema's revision without running any migration.

    For databases whose crmcore tables were made otherwise (``metadata.create_all``, a host's own
    migrations) and that crmcore's migrations should manage from now on.

    Raises:
        ValidationError: for an unknown revision or a URL that names no database.
    """
    revision = _known(revision)
    with _translated("stamp schema"), _connected(target) as conn:
        _serialized(conn)
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        context.stamp(_scripts(), revision)


def current_revision(target: Target) -> str | None:
    """The revision of crmcore's schema in the database; None if crmcore's migrations never ran."""
    with _translated("read schema revision"), _connected(target) as conn:
        return _current(conn)


def check(target: Target) -> list[str]:
    """How the database's crmcore tables differ from `metadata`; empty when they match.

    One line per difference found by Alembic's ``compare_metadata`` (tables, columns, types and
    collations, nullability, indexes, comments), e.g. ``"add_column crm_customers.segment"`` or
    ``"modify_type crm_customers.city: VARCHAR(50) -> VARCHAR(100)"`` (database -> crmcore):
    what a migration would have to do. Other tables in the database are ignored.
    """
    with _translated("check schema"), _connected(target) as conn:
        context = MigrationContext.configure(conn, opts=context_options())
        return [_describe(diff, conn.dialect) for diff in compare_metadata(context, metadata)]


def _describe(diff: Any, dialect: Dialect) -> str:
    if isinstance(diff, list):  # modify_* changes of one column come grouped
        return "; ".join(_describe(d, dialect) for d in diff)
    kind, *rest = diff
    if kind.startswith("modify_"):
        _, table, column, _, old, new = rest
        return f"{kind} {table}.{column}: {_show(old, dialect)} -> {_show(new, dialect)}"
    if kind in ("add_column", "remove_column"):
        _, table, column = rest
        return f"{kind} {table}.{column.name}"
    obj = rest[0]
    if isinstance(obj, Index):
        return f"{kind} {obj.name} on {obj.table.name if obj.table is not None else '?'}"
    table = getattr(obj, "table", None)
    where = f" on {table.name}" if table is not None and table is not obj else ""
    return f"{kind} {getattr(obj, 'name', obj)}{where}"


def _show(value: Any, dialect: Dialect) -> str:
    if isinstance(value, TypeEngine):
        compiled = value.compile(dialect=dialect)
        collation = getattr(value.dialect_impl(dialect), "collation", None)
        return compiled if collation is None or "COLLATE" in compiled else f'{compiled} COLLATE "{collation}"'
    return repr(value) if isinstance(value, str | None) else str(value)


def ensure_schema(conn: Connection) -> None:
    """Give ``conn``'s database the tables of this crmcore version (what ``create_schema`` does).

    - No crmcore table yet: create them all and stamp the newest revision, so later versions of
      crmcore can upgrade them.
    - Tables that crmcore's migrations manage (stamped): upgrade them to the newest revision.
    - Tables made some other way (a host's own migrations): only create missing tables, as
      ``metadata.create_all`` does.

    Raises:
        StorageError: if the database holds a revision this crmcore does not know.
    """
    _serialized(conn)
    current = _current(conn)
    _check_known(current)
    if current is None:
        existing = set(inspect(conn).get_table_names()) & set(metadata.tables)
        metadata.create_all(conn)
        if not existing:
            MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).stamp(_scripts(), "head")
    elif current != head_revision():
        command.upgrade(alembic_config(connection=conn), "head")


def drop_schema(conn: Connection) -> None:
    """Drop crmcore's tables and its revision table (what ``drop_schema`` does), with all data."""
    metadata.drop_all(conn)
    Table(VERSION_TABLE, MetaData()).drop(conn, checkfirst=True)
