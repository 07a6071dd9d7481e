"""Alembic environment of crmcore's own tables, run by `crmcore.storage.sql.migrate` (never imported).

A connection handed over in ``config.attributes["connection"]`` is used as is; otherwise one is
made from ``sqlalchemy.url``. Offline (``sql=True``) the migrations are written out as SQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from crmcore.storage.sql.migrate import context_options
from crmcore.storage.sql.store import SqlStore


def run_offline() -> None:
    """Write the migrations out as SQL for the dialect of ``sqlalchemy.url``."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True, **context_options()
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    """Run the migrations on ``connection``, inside its transaction if it has one."""
    context.configure(connection=connection, **context_options())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the handed-over connection, or on a new one to ``sqlalchemy.url``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("crmcore migrations need a connection or sqlalchemy.url")
    engine = SqlStore(url).engine  # as crmcore.open makes it: postgresql:// means psycopg 3
    try:
        with engine.begin() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
