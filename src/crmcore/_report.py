"""Plain-text report primitives for the demo: numbered sections, aligned tables, leader lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TextIO

from crmcore.money import Money, minor_units

_WIDTH = 78


class Report:
    """Headed sections, aligned tables and indented code, written to ``out`` as they come."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.sections = 0

    def line(self, text: str = "") -> None:
        self.out.write(f"{text}\n".rstrip(" ") if text else "\n")
        self.out.flush()

    def title(self, text: str) -> None:
        self.line(text)
        self.line("=" * len(text))

    def section(self, text: str) -> None:
        self.sections += 1
        heading = f"{self.sections}. {text}"
        self.line()
        self.line(heading)
        self.line("-" * len(heading))

    def table(
        self, headers: Sequence[str], rows: Iterable[Sequence[str]], align: str, indent: int = 2
    ) -> None:
        """Columns aligned left (``l``) or right (``r``), one letter per column."""
        body = [list(r) for r in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(headers, *body, strict=False)]

        def fmt(cells: Sequence[str]) -> str:
            parts = [
                c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align, strict=True)
            ]
            return " " * indent + "  ".join(parts).rstrip()

        self.line(fmt(headers))
        self.line(" " * indent + "  ".join("-" * w for w in widths))
        for row in body:
            self.line(fmt(row))
        if not body:
            self.line(" " * indent + "(none)")

    def leader(self, label: str, value: str, note: str = "", indent: int = 2) -> None:
        """``label ........ value  note`` with the values lined up."""
        room = _WIDTH - indent - 14
        dots = "." * max(2, room - len(label) - 1 - len(value))
        self.line(f"{' ' * indent}{label} {dots} {value}{'  ' + note if note else ''}")


def n(value: int) -> str:
    return f"{value:,}"


def money(m: Money | None) -> str:
    if m is None:
        return "-"
    return f"{m.amount:,.{minor_units(m.currency)}f} {m.currency}"


def day(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d") if at else "-"


def short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    """``fn()``'s result and how long it took, in milliseconds."""
    started = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - started) * 1000
