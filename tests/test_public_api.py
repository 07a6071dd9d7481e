"""The public API: every public module exports a sorted, importable __all__."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import crmcore

PUBLIC = sorted(
    m.name
    for m in pkgutil.walk_packages(crmcore.__path__, "crmcore.")
    if not any(part.startswith("_") for part in m.name.split(".")) and m.name != "crmcore.demo"
)


@pytest.mark.parametrize("name", ["crmcore", *PUBLIC])
def test_all_is_sorted_and_importable(name: str) -> None:
    """__all__ exists, is sorted and names only things the module has."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes {missing}"


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version."""
    from importlib.metadata import version

    assert crmcore.__version__ == version("crmcore")


def test_subpackages_exist() -> None:
    """The domain subpackages are importable (later issues fill them)."""
    for name in ("customers", "pipeline", "service", "analytics", "storage", "testing", "assignment"):
        importlib.import_module(f"crmcore.{name}")


def test_open_refuses_bad_urls() -> None:
    """crmcore.open names the problem for URLs that are no store."""
    with pytest.raises(crmcore.ValidationError, match="not a store URL"):
        crmcore.open("crm.db")
    with pytest.raises(crmcore.ValidationError, match="memory store takes no path"):
        crmcore.open("memory://somewhere")
    with pytest.raises(crmcore.ValidationError, match="url"):
        crmcore.open("nosuchdb://x")
