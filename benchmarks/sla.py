"""SLA benchmark: evaluate the SLA status of 100,000 open tickets.

Method: the calendar of `benchmarks/calendars.py` (Europe/Berlin, two shifts a day, DE-BY holidays);
three policies tried in order (urgent tickets, tickets tagged ``vip``, everyone else), each with
first-response, next-response and resolution targets. ``--n`` open tickets (fixed seed) created
uniformly over the two weeks before ``now`` with realistic histories: most were opened, half got
a first reply, a third waited on the customer for a while (a pause), some have a customer
follow-up (a next-response cycle). The tickets are pinned to their policy first (as `track_ticket`
does when a ticket is created). Timed: `SlaPolicies.evaluate_many` over all tickets (what a queue
view or a report needs), then the same with ``pause_gc=True``, `evaluate(explain=False)` one
ticket at a time, and `evaluate` with the explanation intervals. The policies are new on each
run, so every run pays for the calendar's index and holidays.
``--repeat`` runs; the median is reported. Target: < 2 s for 100,000 tickets without explanation.

Run: ``python benchmarks/sla.py --n 100000 --repeat 3`` (the script's folder is on ``sys.path``, so
it finds ``calendars.py`` beside it).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from calendars import german_calendar  # benchmarks/calendars.py, next to this script

from crmcore.conditions import Field
from crmcore.service import (
    AuthorRole,
    SlaPolicies,
    SlaPolicy,
    SlaState,
    SlaTarget,
    Ticket,
    TicketPriority,
)

TARGET_SECONDS = 2.0
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def policies() -> SlaPolicies:
    """Urgent, VIP and standard policies on a fresh German calendar."""
    cal = german_calendar()
    return SlaPolicies(
        policies=(
            SlaPolicy(
                name="urgent",
                condition=Field("priority") == "urgent",
                calendar=cal,
                targets=(
                    SlaTarget.hours("first_response", 1),
                    SlaTarget.hours("next_response", 2),
                    SlaTarget.hours("resolution", 8),
                ),
            ),
            SlaPolicy(
                name="vip",
                condition=Field("tags").contains("vip"),
                calendar=cal,
                targets=(
                    SlaTarget.hours("first_response", 2),
                    SlaTarget.hours("next_response", 4),
                    SlaTarget.hours("resolution", 16),
                ),
            ),
            SlaPolicy(
                name="standard",
                calendar=cal,
                targets=(
                    SlaTarget.hours("first_response", 8),
                    SlaTarget.hours("next_response", 8),
                    SlaTarget.hours("resolution", 40),
                    SlaTarget.hours("resolution", 80, "low"),
                ),
            ),
        )
    )


def open_tickets(n: int, seed: int = 7) -> list[Ticket]:
    """``n`` open tickets with histories (see the module docstring)."""
    rng = random.Random(seed)
    span = 14 * 24 * 3600
    priorities = list(TicketPriority)
    out = []
    for i in range(n):
        created = NOW - timedelta(seconds=rng.randrange(span))
        t = Ticket(
            customer_id=f"c{i % 5000}",
            subject="Order did not arrive",
            priority=rng.choices(priorities, weights=[2, 6, 2, 1])[0],
            tags=("vip",) if rng.random() < 0.1 else (),
            created_at=created,
        )

        def later(at: datetime) -> datetime:
            return min(at + timedelta(minutes=rng.randint(5, 24 * 60)), NOW)

        at = later(created)
        if rng.random() < 0.8:
            t = t.change_status("open", at)
        if rng.random() < 0.5:
            at = later(at)
            t = t.add_comment("agent1", "Looking into it", at)
            if rng.random() < 0.35:
                at = later(at)
                t = t.change_status("pending", at)
                if rng.random() < 0.6:
                    at = later(at)
                    t = t.add_comment(t.customer_id, "Here it is", at, role=AuthorRole.CUSTOMER)
                    t = t.change_status("open", at)
        out.append(t)
    return out


def run(tickets: list[Ticket]) -> tuple[float, float, float, float, Counter[str]]:
    """Seconds to evaluate every ticket in bulk (plain, then with the collector paused), one by one,
    and with explanations; the worst state per ticket."""
    book = policies()
    began = time.perf_counter()
    reports = book.evaluate_many(tickets, NOW)
    bulk = time.perf_counter() - began
    book = policies()
    began = time.perf_counter()
    paused = book.evaluate_many(tickets, NOW, pause_gc=True)
    bulk_paused = time.perf_counter() - began
    if paused != reports:
        raise AssertionError("pause_gc changed a report")
    book = policies()
    began = time.perf_counter()
    singles = [book.evaluate(t, NOW, explain=False) for t in tickets]
    single = time.perf_counter() - began
    book = policies()
    began = time.perf_counter()
    explained = [book.evaluate(t, NOW) for t in tickets]
    slow = time.perf_counter() - began
    if singles != reports:
        raise AssertionError("evaluate_many and evaluate disagree")
    for a, b in zip(reports, explained, strict=True):
        if [s.due_at for s in a.statuses] != [s.due_at for s in b.statuses]:
            raise AssertionError(f"explain changed a due time for {a.ticket_id}")
    order = [SlaState.BREACHED, SlaState.WARNING, SlaState.PAUSED, SlaState.ON_TRACK, SlaState.MET]
    states: Counter[str] = Counter(
        min((s.state for s in r.statuses), key=order.index, default=SlaState.MET).value for r in reports
    )
    return bulk, bulk_paused, single, slow, states


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the median misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    book = policies()
    tickets = [book.apply(t) for t in open_tickets(args.n)]  # pinned when created, as track_ticket does
    print(f"{args.n:,} open tickets, Python {platform.python_version()} on {platform.machine()}")
    bulks, pauses, singles, slows = [], [], [], []
    states: Counter[str] = Counter()
    for i in range(args.repeat):
        bulk, bulk_paused, single, slow, states = run(tickets)
        bulks.append(bulk)
        pauses.append(bulk_paused)
        singles.append(single)
        slows.append(slow)
        print(
            f"run {i + 1}: evaluate_many {bulk:.2f} s (pause_gc {bulk_paused:.2f} s), "
            f"evaluate one by one {single:.2f} s, with explanations {slow:.2f} s"
        )
    median = statistics.median(bulks)
    print(f"worst state per ticket: {dict(states.most_common())}")
    print(
        f"median: evaluate_many {median:.2f} s (target < {TARGET_SECONDS:.0f} s), "
        f"with pause_gc {statistics.median(pauses):.2f} s, one by one {statistics.median(singles):.2f} s, "
        f"with explanations {statistics.median(slows):.2f} s"
    )
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
