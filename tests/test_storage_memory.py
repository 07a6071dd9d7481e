"""The storage contract on the in-memory store."""

from __future__ import annotations

from crmcore import CRM
from crmcore.storage import MemoryStore
from crmcore.testing import StoreContract


class TestMemoryStore(StoreContract):
    """Runs every contract test on `MemoryStore`."""

    def create_crm(self) -> CRM:
        return CRM(MemoryStore())
