"""The storage contract suite under the storage package's name (see `crmcore.testing`)."""

from crmcore.testing.contract import StoreContract

__all__ = ["StoreContract"]
