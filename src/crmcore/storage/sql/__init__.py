"""The SQL store (SQLAlchemy 2 Core): SQLite files or memory, PostgreSQL."""

from crmcore.storage.sql.mapping import SqlMapping
from crmcore.storage.sql.store import SqlStore, SqlUnitOfWork, translate_errors
from crmcore.storage.sql.tables import metadata
from crmcore.storage.sql.where import SqlFields, compile_condition, compile_order_by

__all__ = [
    "SqlFields",
    "SqlMapping",
    "SqlStore",
    "SqlUnitOfWork",
    "compile_condition",
    "compile_order_by",
    "metadata",
    "translate_errors",
]
