"""Pluggable storage: the contract (`Store`, `UnitOfWork`, `Repository`) and the adapters.

`MemoryStore` keeps everything in process; `crmcore.storage.sql.SqlStore` uses SQLAlchemy.
Third-party adapters implement the same contract and prove it with `crmcore.testing.StoreContract`.
"""

from crmcore.storage.base import (
    AGGREGATES,
    ASSIGNMENT_QUEUES,
    CONTACTS,
    CUSTOMER_LINKS,
    CUSTOMERS,
    DEFAULT_TENANT,
    INTERACTIONS,
    LEADS,
    OPPORTUNITIES,
    ORDERS,
    QUOTES,
    SLA_TIMERS,
    SURVEYS,
    TICKETS,
    Aggregate,
    CustomerRepository,
    InteractionRepository,
    OrderRepository,
    Repository,
    Store,
    StoreCapabilities,
    UnitOfWork,
)
from crmcore.storage.memory import MemoryStore

__all__ = [
    "AGGREGATES",
    "ASSIGNMENT_QUEUES",
    "Aggregate",
    "CONTACTS",
    "CUSTOMERS",
    "CUSTOMER_LINKS",
    "CustomerRepository",
    "DEFAULT_TENANT",
    "INTERACTIONS",
    "InteractionRepository",
    "LEADS",
    "MemoryStore",
    "OPPORTUNITIES",
    "ORDERS",
    "OrderRepository",
    "QUOTES",
    "Repository",
    "SLA_TIMERS",
    "SURVEYS",
    "Store",
    "StoreCapabilities",
    "TICKETS",
    "UnitOfWork",
]
