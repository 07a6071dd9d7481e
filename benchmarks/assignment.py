"""Assignment engine benchmark: 100,000 leads routed through a table of 100 rules, in memory.

Method: a rule table of 99 rules on region (5 values), industry (10) and company size, each
sending to one of 12 queues (round robin, weighted round robin, least loaded; 5-8 members each,
some of them capacity-limited), then a catch-all rule; a territory queue and a fallback queue
close the table. 60 users: every tenth out of office, every seventh on a Europe/Berlin
09:00-18:00 weekday calendar, the rest 24x7. ``--n`` leads (fixed seed) are routed one by one
with `Router.route`, carrying the rotation states and the roster's loads from one decision to the
next, as a host's batch would. Two scenarios: all leads at one ``now`` (a batch run: calendars
read once per member) and each lead at its own ``now`` (arrivals spread over a week: calendars
read for every lead). Building the router (validation and compilation) is timed apart. The
median of ``--repeat`` runs is reported. Target: at least 50,000 leads per second.

Run: ``python benchmarks/assignment.py --n 100000 --repeat 5``.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from crmcore.assignment import (
    AssignmentConfig,
    AssignmentRule,
    Member,
    Queue,
    QueueState,
    Roster,
    Router,
    Strategy,
    Target,
    Territory,
)
from crmcore.conditions import All, Field
from crmcore.pipeline import LEAD_FIELDS, Lead
from crmcore.service.calendar import BusinessCalendar, Weekday, WorkingHours

TARGET_PER_SECOND = 50_000
REGIONS = ("emea", "amer", "apac", "latam", "mena")
INDUSTRIES = ("retail", "banking", "health", "energy", "media", "travel", "telecom", "public", "auto", "food")


def config(seed: int = 7) -> AssignmentConfig:
    """The benchmark's rule table (see the module docstring)."""
    rng = random.Random(seed)
    users = [f"user{i:02d}" for i in range(60)]
    strategies = [Strategy.ROUND_ROBIN, Strategy.WEIGHTED_ROUND_ROBIN, Strategy.LEAST_LOADED]
    queues = []
    for i in range(12):
        members = tuple(rng.sample(users, rng.randint(5, 8)))
        strategy = strategies[i % 3]
        weights = {m: rng.randint(1, 4) for m in members} if strategy is Strategy.WEIGHTED_ROUND_ROBIN else {}
        queues.append(Queue(name=f"queue{i:02d}", strategy=strategy, members=members, weights=weights))
    queues.append(
        Queue(
            name="geo",
            strategy=Strategy.TERRITORY,
            field="region",
            territories=tuple(
                Territory(values=(r,), target=Target.to_queue(f"queue{i:02d}")) for i, r in enumerate(REGIONS)
            ),
        )
    )
    queues.append(Queue(name="pool", members=tuple(users[:10])))
    rules = []
    for i in range(99):
        region, industry = REGIONS[i % 5], INDUSTRIES[(i // 5) % 10]
        cond = (Field("region") == region) & (Field("industry") == industry)
        if i >= 50:
            cond = cond & (Field("company_size") >= 500)
        if i % 7 == 0:
            cond = cond & Field("source").in_(["web", "partner"])
        rules.append(
            AssignmentRule(name=f"rule{i:02d}", condition=cond, target=Target.to_queue(f"queue{i % 12:02d}"))
        )
    rules.append(AssignmentRule(name="everything else", condition=All(), target=Target.to_queue("geo")))
    return AssignmentConfig(rules=tuple(rules), queues=tuple(queues), fallback=Target.to_queue("pool"))


def roster() -> Roster:
    """60 users: every tenth out of office, every seventh on office hours, some capacity-limited."""
    office = BusinessCalendar(
        timezone="Europe/Berlin",
        hours=tuple(WorkingHours(weekday=d, start="09:00", end="18:00") for d in list(Weekday)[:5]),
    )
    members = tuple(
        Member(
            user=f"user{i:02d}",
            out_of_office=i % 10 == 3,
            calendar=office if i % 7 == 0 else None,
            capacity=5_000 if i % 4 == 0 else None,
        )
        for i in range(60)
    )
    return Roster(members=members)


def leads(n: int, seed: int = 11) -> list[Lead]:
    """``n`` `crmcore.pipeline.Lead` objects: uniform region, industry and source, 1 to 5,000 employees."""
    rng = random.Random(seed)
    sources = ("web", "partner", "event", "referral")
    return [
        Lead(
            name=f"Lead {i}",
            region=rng.choice(REGIONS),
            industry=rng.choice(INDUSTRIES),
            company_size=rng.randint(1, 5000),
            source=rng.choice(sources),
        )
        for i in range(n)
    ]


def run(router: Router, work: list[Lead], nows: list[datetime]) -> tuple[float, int]:
    """Seconds to route every lead (lead i at ``nows[i]``), and how many got an owner."""
    team = roster()
    states: dict[str, QueueState] = {}
    assigned = 0
    began = time.perf_counter()
    for lead, now in zip(work, nows, strict=True):
        routing = router.route(lead, team, now, states)
        owner = routing.decision.owner
        if routing.state is not None:
            states[routing.state.id] = routing.state
        if owner is not None:
            team = team.with_assignment(owner)
            assigned += 1
    return time.perf_counter() - began, assigned


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a median misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cfg, work = config(), leads(args.n)
    began = time.perf_counter()
    router = Router(cfg, LEAD_FIELDS)
    built = time.perf_counter() - began
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
    week = 7 * 24 * 3600
    scenarios = {
        "one `now` (batch)": [start] * args.n,
        "own `now` per lead (a week of arrivals)": [
            start + timedelta(seconds=i * week // args.n) for i in range(args.n)
        ],
    }
    print(
        f"{args.n:,} leads, {len(cfg.rules)} rules, {len(cfg.queues)} queues; "
        f"Python {platform.python_version()} on {platform.machine()}; router built in {built * 1000:.1f} ms"
    )
    print()
    print(f"| scenario ({args.n:,} leads, median of {args.repeat}) | time | leads per second | assigned |")
    print("|---|---|---|---|")
    ok = True
    for name, nows in scenarios.items():
        times, assigned = [], 0
        for _ in range(args.repeat):
            seconds, assigned = run(router, work, nows)
            times.append(seconds)
        median = statistics.median(times)
        rate = args.n / median
        ok = ok and rate >= TARGET_PER_SECOND
        spread = f"runs {min(times):.2f}-{max(times):.2f} s"
        print(f"| {name} | {median:.2f} s ({spread}) | **{rate:,.0f}** | {assigned:,} |")
    print()
    print(f"target: at least {TARGET_PER_SECOND:,} leads per second: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
