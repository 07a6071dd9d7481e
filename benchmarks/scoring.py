"""Lead scoring benchmark: re-score 100,000 leads with the points model and with naive Bayes.

Method: ``--n`` leads from the generated history (`crmcore.pipeline.scoring.synthetic`, fixed
seed), each with 0-8 activities of five kinds spread over the last 120 days (fixed seed). The
points model has 20 fit rules (equality, ``in``, ``between`` on company size, a negative rule,
one ``All`` of two conditions) and 4 behaviour rules with half-lives and a max count; it scores
every lead with ``score_many(leads, activities, now)``. Naive Bayes is fitted on the same leads
and outcomes over the 7 default fields (the fit is timed apart), then scores every lead with
``score_many(leads)``. Inputs are built before any clock starts; each figure is the median of
``--repeat`` runs (min-max shown).

Run: ``python benchmarks/scoring.py`` (``--n 100000 --repeat 3``).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crmcore.conditions import Field
from crmcore.pipeline.scoring import Activity, BehaviourRule, NaiveBayesScorer, PointsModel, PointsRule
from crmcore.pipeline.scoring.synthetic import lead_history

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KINDS = ("email_opened", "email_clicked", "demo_requested", "pricing_page_visited", "webinar_attended")


def points_model() -> PointsModel:
    """The benchmark's points model (see the module docstring)."""
    industries = ("software", "fintech", "health", "media", "retail", "manufacturing", "government")
    rules = [
        PointsRule(name=f"industry {name}", condition=Field("industry") == name, points=p)
        for name, p in zip(industries, (25, 20, 10, 5, -5, -10, -15), strict=True)
    ]
    rules += [
        PointsRule(name="referred", condition=Field("source").in_(["referral", "demo_request"]), points=20),
        PointsRule(name="cold", condition=Field("source") == "cold_list", points=-20),
        PointsRule(name="small", condition=Field("company_size") < 10, points=-10),
        PointsRule(name="mid-size", condition=Field("company_size").between(200, 4999), points=15),
        PointsRule(name="enterprise", condition=Field("company_size") >= 5000, points=5),
        PointsRule(name="executive", condition=Field("title").in_(["CEO", "CTO", "VP Sales"]), points=15),
        PointsRule(name="technical", condition=Field("title").in_(["Head of IT", "Engineer"]), points=5),
        PointsRule(name="office", condition=Field("title") == "Office Manager", points=-5),
        PointsRule(name="emea", condition=Field("region") == "emea", points=3),
        PointsRule(name="no campaign", condition=Field("campaign").is_null(), points=-2),
        PointsRule(name="dach", condition=Field("country").in_(["DE", "AT", "CH"]), points=4),
        PointsRule(
            name="software at scale",
            condition=(Field("industry") == "software") & (Field("company_size") >= 200),
            points=10,
        ),
        PointsRule(name="unowned", condition=Field("owner").is_null(), points=1),
    ]
    behaviour = (
        BehaviourRule(kind="email_opened", points=2, half_life_days=14, max_count=5),
        BehaviourRule(kind="email_clicked", points=5, half_life_days=14, max_count=5),
        BehaviourRule(kind="demo_requested", points=40, half_life_days=30),
        BehaviourRule(kind="pricing_page_visited", points=10, half_life_days=7),
    )
    return PointsModel(rules=tuple(rules), behaviour=behaviour)


def activities_for(ids: list[str], seed: int = 11) -> dict[str, list[Activity]]:
    """0-8 activities per lead, five kinds (one without a rule), over the last 120 days."""
    rng = random.Random(seed)
    out: dict[str, list[Activity]] = {}
    for lead_id in ids:
        count = rng.randint(0, 8)
        if count:
            out[lead_id] = [
                Activity(kind=rng.choice(KINDS), at=NOW - timedelta(seconds=rng.uniform(0, 120 * 86_400)))
                for _ in range(count)
            ]
    return out


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` runs, a collection before each."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    """Build the inputs, time both models, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="leads to score")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    args = parser.parse_args(argv)

    history = lead_history(args.n, seed=7)
    leads = list(history.leads)
    activities = activities_for([x.id for x in leads])
    n_activities = sum(len(a) for a in activities.values())
    model = points_model()
    scorer = NaiveBayesScorer()
    gc.freeze()  # the inputs belong to the benchmark, not to the code under test

    rows = []
    points_times = timed(lambda: model.score_many(leads, activities, NOW), args.repeat)
    rows.append(("points: `score_many(leads, activities, now)`", points_times))
    fit_times = timed(lambda: scorer.fit(leads, history.outcomes), args.repeat)
    rows.append(("naive Bayes: `fit(leads, outcomes)` (training)", fit_times))
    fitted = scorer.fit(leads, history.outcomes)
    nb_times = timed(lambda: fitted.score_many(leads), args.repeat)
    rows.append(("naive Bayes: `score_many(leads)`", nb_times))

    print(
        f"{args.n:,} leads, {n_activities:,} activities; points model: {len(model.rules)} rules, "
        f"{len(model.behaviour)} behaviour rules; naive Bayes: {len(scorer.fields)} fields; "
        f"median of {args.repeat}\n"
    )
    print("| run | time | leads per second |")
    print("|---|---:|---:|")
    for label, times in rows:
        median = statistics.median(times)
        spread = f"{min(times):.2f}-{max(times):.2f}"
        print(f"| {label} | {median:.2f} s ({spread}) | {args.n / median:,.0f} |")
    print(f"\nPython {platform.python_version()} on {platform.machine()}, {sys.platform}")


if __name__ == "__main__":
    main()
