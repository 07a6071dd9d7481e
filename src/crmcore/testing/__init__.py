"""Test support for crmcore and for third-party storage adapters (needs the ``testing`` extra).

`StoreContract` is the storage contract suite; `crmcore.testing.strategies` holds the shared
hypothesis strategies.
"""

from crmcore.testing.contract import StoreContract

__all__ = ["StoreContract"]
