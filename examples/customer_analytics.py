"""The analytics tour: summaries, RFM segments, Pareto, BG/NBD + Gamma-Gamma lifetime value, churn.

Generates 18 months of orders for 300 customers (each with their own purchase rate and basket
size; about a third stop buying partway), stores them in an in-memory SQLite store, and prints a
short report. Needs numpy and scipy: ``pip install "crmcore[analytics]"``. Run:
``python examples/customer_analytics.py``. The data are seeded, so the output is the same on every run.
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import crmcore
from crmcore.analytics import (
    BetaGeoModel,
    ChurnMonitor,
    ClvTimeUnit,
    GammaGammaModel,
    InactivityRule,
    ProbabilityAliveRule,
    activity_from,
    customer_summaries,
    pareto,
    rfm,
)
from crmcore.customers import Order, OrderLine
from crmcore.money import Money

CUSTOMERS = 300
START = datetime(2025, 1, 1, tzinfo=UTC)
OBSERVED = datetime(2026, 7, 1, tzinfo=UTC)  # 18 months later


def generate_orders(seed: int) -> tuple[list[Order], set[str]]:
    """Orders of every customer, and the ids of those who stopped buying before ``OBSERVED``.

    Each customer joins in the first year with a first order, then buys as a Poisson process at
    their own rate (mean one order a month) with their own mean basket; 35 % stop at a random time.
    """
    rng = random.Random(seed)
    orders: list[Order] = []
    stopped: set[str] = set()
    for i in range(CUSTOMERS):
        cid = f"c{i:03d}"
        joined = START + timedelta(days=rng.uniform(0, 365))
        per_day = rng.gammavariate(1.5, 1 / 45)  # purchase rate, mean 1/30 a day
        basket = rng.gammavariate(3.0, 20.0)  # mean basket, mean 60 EUR
        end = OBSERVED
        if rng.random() < 0.35:
            end = joined + (OBSERVED - joined) * rng.uniform(0.1, 0.7)
            stopped.add(cid)
        at = joined
        while at < end:
            amount = max(1.0, rng.gammavariate(5.0, basket / 5))
            line = OrderLine(product="basket", unit_price=Money(f"{amount:.2f}", "EUR"))
            orders.append(Order(customer_id=cid, ordered_at=at, currency="EUR", lines=(line,)))
            at += timedelta(days=rng.expovariate(per_day))
    return orders, stopped


def main() -> None:
    """Store the generated orders, then print each analytics step on them."""
    orders, stopped = generate_orders(seed=42)
    with crmcore.open("sqlite://") as crm:
        with crm.unit_of_work() as uow:
            uow.orders.bulk_add(orders)
            uow.commit()
        with crm.unit_of_work() as uow:
            summaries = customer_summaries(uow, OBSERVED, unit="weeks", currency="EUR")
            activities = activity_from(uow.orders.iter_all())

    buyers = {o.customer_id for o in orders}
    print(f"{len(orders)} orders of {len(buyers)} customers, {START:%Y-%m-%d} to {OBSERVED:%Y-%m-%d}")
    assert len(summaries) == len(buyers) == CUSTOMERS
    first = summaries.get("c000")
    assert first is not None and first.orders == sum(o.customer_id == "c000" for o in orders)
    print(
        f"c000: {first.frequency} repeat purchases, recency {first.recency:.1f} weeks, "
        f"age {first.age:.1f} weeks, {first.monetary_value} per repeat purchase"
    )

    # RFM segments and how concentrated revenue is
    scores = rfm(summaries)
    counts = scores.segment_counts()
    assert sum(counts.values()) == len(summaries)
    print("\nRFM segments:")
    for segment, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"  {segment:20} {n:4}")
    view = pareto(summaries)
    assert 0 < view.customers_needed < view.customers
    print(
        f"Pareto: {view.customers_needed} customers ({view.customer_share:.0%}) bring 80 % of "
        f"{view.revenue}; the top 20 % bring {view.revenue_share_of_top(0.2):.0%}"
    )

    # lifetime value: BG/NBD for purchases and drop-out, Gamma-Gamma for spend per purchase
    purchases = BetaGeoModel().fit_summaries(summaries)
    spend = GammaGammaModel().fit_summaries(summaries)
    assert all(e.value > 0 for e in (*purchases.estimates, *spend.estimates))
    print("\nBG/NBD:      " + ", ".join(f"{e.name} {e.value:.3g}" for e in purchases.estimates))
    print("Gamma-Gamma: " + ", ".join(f"{e.name} {e.value:.3g}" for e in spend.estimates))
    print(f"  mean spend per purchase {spend.population_mean_value:.2f} EUR")
    columns = (summaries.frequency, summaries.recency, summaries.age)
    alive = purchases.probability_alive(*columns)
    year = 12 * ClvTimeUnit.WEEKS.per_month
    expected = purchases.expected_purchases(year, *columns)
    clv = spend.customer_lifetime_value(
        purchases,
        *columns,
        summaries.amounts("monetary_value"),
        time_unit="weeks",
        months=12,
        discount_rate=0.01,
    )
    assert (clv >= 0).all()
    top = sorted(range(len(summaries)), key=lambda i: (-clv[i], summaries.customer_ids[i]))[:5]
    assert alive[top[0]] > 0
    print("Top 5 by 12-month CLV (1 % a month discount):")
    for i in top:
        weeks_ago = summaries.age[i] - summaries.recency[i]
        print(
            f"  {summaries.customer_ids[i]}  {summaries.frequency[i]:3} repeats, last {weeks_ago:4.1f} "
            f"weeks ago, P(alive) {alive[i]:.2f}, {expected[i]:4.1f} purchases next year, "
            f"CLV {clv[i]:8.2f} EUR"
        )
    is_stopped = [cid in stopped for cid in summaries.customer_ids]
    gone = statistics.mean(float(p) for p, s in zip(alive, is_stopped, strict=True) if s)
    staying = statistics.mean(float(p) for p, s in zip(alive, is_stopped, strict=True) if not s)
    assert gone < staying
    print(f"  mean P(alive): {gone:.2f} for those who stopped, {staying:.2f} for the others")

    # churn warnings: overdue by their own rhythm, or unlikely to be alive per the BG/NBD fit
    monitor = ChurnMonitor(
        rules=(
            InactivityRule(name="overdue", days=None, gap_multiple=3.0),
            ProbabilityAliveRule(name="probably_gone", threshold=0.3),
        )
    )
    by_id = {cid: float(p) for cid, p in zip(summaries.customer_ids, alive, strict=True)}
    warnings = monitor.check(activities.values(), OBSERVED, probability_alive=by_id)
    flagged = {w.customer_id for w in warnings}
    hits = len(flagged & stopped)
    assert flagged and hits / len(flagged) > len(stopped) / CUSTOMERS  # better than guessing
    print(f"\nChurn warnings: {len(warnings)} for {len(flagged)} customers")
    for rule in monitor.rules:
        print(f"  {rule.name:14} {sum(w.rule == rule.name for w in warnings):4}")
    print(f"  {hits} of the {len(flagged)} flagged really stopped ({len(stopped)} stopped in all)")
    for warning in warnings[:3]:
        print(f"  {warning.customer_id} [{warning.severity.value}] {'; '.join(warning.reasons)}")


if __name__ == "__main__":
    main()
