"""Lazy imports of the optional extras the analytics modules use, with an error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from crmcore.errors import CrmError

__all__ = ["MissingExtra", "require"]


class MissingExtra(CrmError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise `MissingExtra` telling to ``pip install "crmcore[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f'{module} is needed for this: pip install "crmcore[{extra}]" ({exc})') from exc
