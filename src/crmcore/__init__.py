"""crmcore: an embeddable CRM domain library.

Open a store, then work in units of work::

    import crmcore
    from crmcore.customers import Customer

    crm = crmcore.open("sqlite:///crm.db")
    with crm.unit_of_work() as uow:
        uow.customers.add(Customer(name="Ada Lovelace"))
        uow.commit()
"""

from importlib.metadata import PackageNotFoundError, version

from crmcore.clock import Clock, FixedClock, SystemClock
from crmcore.conditions import All, Any, Field, Not
from crmcore.errors import (
    AlreadyExists,
    ConcurrencyError,
    CrmError,
    NotFound,
    PermissionDenied,
    RuleError,
    StorageError,
    TransitionError,
    ValidationError,
)
from crmcore.events import DomainEvent, EventBus
from crmcore.facade import CRM, open_crm
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.storage.base import DEFAULT_TENANT

open = open_crm

try:
    __version__ = version("crmcore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "All",
    "AlreadyExists",
    "Any",
    "CRM",
    "Clock",
    "ConcurrencyError",
    "CrmError",
    "DEFAULT_TENANT",
    "DomainEvent",
    "EventBus",
    "Field",
    "FixedClock",
    "Money",
    "Not",
    "NotFound",
    "PermissionDenied",
    "RuleError",
    "StorageError",
    "SystemClock",
    "TransitionError",
    "ValidationError",
    "__version__",
    "new_id",
    "open",
]
