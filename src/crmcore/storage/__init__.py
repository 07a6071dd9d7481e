"""Pluggable storage: the contract (`Store`, `UnitOfWork`, `Repository`) and the adapters.

`MemoryStore` keeps everything in process; `crmcore.storage.sql.SqlStore` uses SQLAlchemy.
Third-party adapters implement the same contract and prove it with `crmcore.testing.StoreContract`.
"""

from crmcore.storage.base import (
    AGGREGATES,
    CUSTOMERS,
    DEFAULT_TENANT,
    Aggregate,
    Repository,
    Store,
    StoreCapabilities,
    UnitOfWork,
)
from crmcore.storage.memory import MemoryStore

__all__ = [
    "AGGREGATES",
    "Aggregate",
    "CUSTOMERS",
    "DEFAULT_TENANT",
    "MemoryStore",
    "Repository",
    "Store",
    "StoreCapabilities",
    "UnitOfWork",
]
