"""The README, the docs and the examples run as written, so they never drift from the code.

Every fenced block whose info string is exactly ``python`` is executed; the blocks of one file
run in order in one namespace, as a reader would paste them, in a fresh working directory. Use
``pycon``, ``text`` or ``bash`` fences for snippets that are not meant to run on their own.
"""

from __future__ import annotations

import re
import runpy
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(line number, code) of each ```python block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(text)]


def test_there_is_something_to_check() -> None:
    """The README, the docs and the examples are found (a moved folder cannot pass silently)."""
    assert ROOT / "README.md" in PAGES
    assert len(PAGES) >= 10
    assert python_blocks(ROOT / "README.md")
    assert {p.name for p in EXAMPLES} >= {"quickstart.py", "conditions_and_paging.py"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ```python block of the page runs, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    # A real module, so classes defined in a page resolve their annotations like a reader's would.
    module = types.ModuleType(f"crmcore_docs_{page.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for line, code in python_blocks(page):
        # Padding keeps traceback line numbers equal to the page's own; dont_inherit keeps this
        # file's `from __future__ import annotations` out of the page's code.
        exec(compile("\n" * (line - 1) + code, str(page), "exec", dont_inherit=True), module.__dict__)
    capsys.readouterr()  # what the blocks print is for readers; failures raise


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_run(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each example runs as a script and prints something."""
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(example), run_name="__main__")
    assert capsys.readouterr().out.strip()
