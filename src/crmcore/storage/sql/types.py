"""Column types that give every SQL dialect the same values back as Python put in."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ExactDecimal", "JsonDocument", "Text", "UtcDateTime"]

_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def Text(length: int) -> TypeEngine[str]:  # noqa: N802 - reads as a type in table definitions
    """A bounded string compared by code point everywhere (PostgreSQL: the "C" collation).

    Python, SQLite and PostgreSQL then agree on ``<`` and on sort order, and PostgreSQL can use
    the column's index for keyset paging.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


JsonDocument: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere; JSONB on PostgreSQL (indexable, with containment operators)."""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as a UTC instant.

    PostgreSQL: ``timestamptz``. Elsewhere: a fixed-width ``YYYY-MM-DD HH:MM:SS.ffffff`` string in
    UTC, which sorts and compares chronologically as text. Naive datetimes are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(String(26))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.strftime(_SQLITE_FORMAT).rjust(26, "0")

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            # fromisoformat reads the fixed-width format about 20x faster than strptime
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        result: datetime = value.astimezone(UTC)
        return result


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: ``NUMERIC`` on PostgreSQL, text elsewhere (SQLite has no decimal).

    On SQLite, comparisons cast to REAL: exact for amounts of up to 15 significant digits.
    """

    impl = Numeric(asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value) if isinstance(value, str) else value
