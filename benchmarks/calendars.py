"""Business-calendar benchmark: due times for 100,000 tickets on a German calendar with holidays.

Method: a fresh `BusinessCalendar` (Europe/Berlin, Monday-Friday 09:00-12:30 and 13:30-18:00,
DE-BY public holidays, a half-day Christmas Eve each year); ``--n`` tickets with starts drawn
uniformly over 2026-2027 (fixed seed) and durations from 1 hour to 5 days of business time
(whole minutes). Timed: one `add` per ticket, then one `between` per ticket back to its start as a
check (timed separately). The calendar is new on each run, so every run pays for filling its day
cache and loading the holidays. ``--repeat`` runs; the median is reported. Target: add < 2 s.

Run: ``python benchmarks/calendars.py --n 100000 --repeat 3``.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from crmcore.service.calendar import (
    BusinessCalendar,
    HolidayRule,
    SpecialDay,
    TimeRange,
    Weekday,
    WorkingHours,
)

TARGET_SECONDS = 2.0


def german_calendar() -> BusinessCalendar:
    """The benchmark's calendar (see the module docstring)."""
    weekdays = list(Weekday)[:5]
    return BusinessCalendar(
        timezone="Europe/Berlin",
        hours=tuple(
            WorkingHours(weekday=d, start=s, end=e)
            for d in weekdays
            for s, e in [("09:00", "12:30"), ("13:30", "18:00")]
        ),
        holidays=(HolidayRule(country="DE", subdivision="BY"),),
        special_days=tuple(
            SpecialDay(date=date(year, 12, 24), hours=(TimeRange(start="09:00", end="12:00"),))
            for year in (2026, 2027, 2028)
        ),
    )


def tickets(n: int, seed: int = 5) -> list[tuple[datetime, timedelta]]:
    """``n`` (start, business duration) pairs: starts over two years, durations 1 hour to 5 days."""
    rng = random.Random(seed)
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    span = 2 * 365 * 24 * 3600
    return [
        (origin + timedelta(seconds=rng.randrange(span)), timedelta(minutes=rng.randint(60, 5 * 24 * 60)))
        for _ in range(n)
    ]


def run(work: list[tuple[datetime, timedelta]]) -> tuple[float, float]:
    """Seconds for all `add` calls and for the `between` checks, on a fresh calendar."""
    cal = german_calendar()
    began = time.perf_counter()
    dues = [cal.add(start, duration) for start, duration in work]
    added = time.perf_counter() - began
    began = time.perf_counter()
    for (start, duration), due in zip(work, dues, strict=True):
        if cal.between(start, due) != duration:
            raise AssertionError(f"between({start}, {due}) != {duration}")
    checked = time.perf_counter() - began
    return added, checked


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the median misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = tickets(args.n)
    print(f"{args.n:,} tickets, Python {platform.python_version()} on {platform.machine()}")
    adds, checks = [], []
    for i in range(args.repeat):
        added, checked = run(work)
        adds.append(added)
        checks.append(checked)
        print(f"run {i + 1}: add {added:.2f} s, between {checked:.2f} s")
    median = statistics.median(adds)
    print(
        f"median: add {median:.2f} s (target < {TARGET_SECONDS:.0f} s), "
        f"between {statistics.median(checks):.2f} s"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
