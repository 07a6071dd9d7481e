"""The demo's analytics report: summaries, RFM, lifetime value, churn, funnel and forecasts.

It reads what the earlier sections stored (orders, tickets, surveys, opportunities) back through a
unit of work. The model parts need the ``analytics`` extra (numpy, scipy, statsmodels); without it
they are skipped with a line naming the extra, and the rest of the report still runs.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from crmcore import CRM, Field
from crmcore._demo_sales import STAGES
from crmcore._report import Report, money, n, short
from crmcore.analytics import (
    BetaGeoFit,
    BetaGeoModel,
    ChurnMonitor,
    CustomerSummaries,
    DeclineRule,
    GammaGammaFit,
    GammaGammaModel,
    InactivityRule,
    LostDealsRule,
    ProbabilityAliveRule,
    SatisfactionRule,
    Severity,
    TicketSpikeRule,
    activity_from,
    customer_summaries,
    forecast_revenue,
    funnel,
    monthly_revenue,
    pareto,
    pipeline_forecast,
    rfm,
    simulate_pipeline,
)
from crmcore.customers import Order
from crmcore.demo_data import DEMO_NOW
from crmcore.errors import CrmError
from crmcore.money import Money
from crmcore.pipeline.opportunity import Opportunity
from crmcore.service import SatisfactionSurvey, Ticket

__all__ = ["ANALYTICS_TITLE", "EXTRA_HINT", "analytics_section", "missing_extras"]

ANALYTICS_TITLE = "Analytics: customer value, churn warnings, funnel and forecasts"
EXTRA_HINT = 'pip install "crmcore[analytics]"'
CURRENCY = "EUR"
"""The demo's largest order currency; amounts in different currencies are never mixed."""
_MODEL_MODULES = ("numpy", "scipy", "statsmodels")
_MIN_MONTHS = 24


def missing_extras() -> list[str]:
    """The modules of the ``analytics`` extra that cannot be imported (found without importing them)."""
    missing = []
    for name in _MODEL_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (import blocked)
            found = False
        if not found:
            missing.append(name)
    return missing


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _eur(value: float) -> str:
    return money(Money(f"{value:.2f}", CURRENCY))


def analytics_section(crm: CRM, tenant: str, seed: int, report: Report) -> None:
    """Analyse the orders, tickets, surveys and deals stored by the earlier sections."""
    report.section(ANALYTICS_TITLE)
    with crm.unit_of_work(tenant) as uow:
        summaries = customer_summaries(uow, DEMO_NOW, unit="weeks", currency=CURRENCY)
        orders = uow.orders.find(Field("currency") == CURRENCY)
        tickets = list(uow.tickets.iter_all())
        surveys = list(uow.surveys.iter_all())
        deals = list(uow.opportunities.iter_all())
    missing = missing_extras()
    report.line(f"  Orders, tickets, surveys and deals read back from the store; amounts in {CURRENCY}.")
    if missing:
        report.line(f"  The models need the analytics extra ({', '.join(missing)} missing): {EXTRA_HINT}.")
        report.line("  They are skipped below; everything else runs on plain Python.")
    report.line()
    _summaries(summaries, report)
    alive = None if missing else _lifetime_value(summaries, report)
    _churn(orders, tickets, surveys, deals, alive, report)
    _funnel(deals, report)
    _forecasts(orders, deals, seed, missing, report)


def _summaries(summaries: CustomerSummaries, report: Report) -> None:
    people = summaries.customers
    report.line(f"  customer_summaries(uow, now, unit='weeks', currency={CURRENCY!r}): read from the")
    report.line("  purchase rollup SQL stores keep current with every order write (a row per customer).")
    report.leader("customers with a purchase (summaries)", n(len(people)))
    top = sorted(people, key=lambda s: (-s.total_spend.amount, s.customer_id))[:3]
    report.table(
        ["customer", "orders", "repeat", "recency wk", "age wk", "avg repeat", "total spend"],
        [
            [
                short(s.customer_id, 12),
                n(s.orders),
                n(s.frequency),
                f"{s.recency:.1f}",
                f"{s.age:.1f}",
                money(s.monetary_value),
                money(s.total_spend),
            ]
            for s in top
        ],
        "lrrrrrr",
        indent=4,
    )
    report.line()
    if not people:
        report.line("  (no purchases: RFM and the Pareto view need some)")
        return
    scores = rfm(summaries)
    counts = Counter(scores.segment_counts())
    report.line("  rfm(summaries): quintile scores, customers per segment:")
    report.table(
        ["segment", "customers"],
        [[segment, n(count)] for segment, count in counts.most_common() if count]
        + [["all", n(counts.total())]],
        "lr",
        indent=4,
    )
    view = pareto(summaries)
    report.line(
        f"  Pareto: {_pct(view.customer_share)} of customers ({n(view.customers_needed)} of "
        f"{n(view.customers)}) bring 80 % of revenue ({money(view.revenue)})."
    )


def _lifetime_value(summaries: CustomerSummaries, report: Report) -> dict[str, float] | None:
    """Fit BG/NBD and Gamma-Gamma; show the parameters and the top customers.

    Returns each customer's probability alive, or None when the fit failed.
    """
    report.line()
    report.line("  Lifetime value: BetaGeoModel (purchases) and GammaGammaModel (spend), weeks:")
    people = summaries.customers
    frequency = [float(s.frequency) for s in people]
    recency = [s.recency for s in people]
    age = [s.age for s in people]
    # GammaGammaModel.fit_summaries reads monetary_value as a number; a CustomerSummary holds Money
    value = [float(s.monetary_value.amount) for s in people]
    try:
        purchases = BetaGeoModel().fit(frequency, recency, age)
    except CrmError as exc:  # FitError, or the extra missing after all
        report.line(f"    BG/NBD fit failed: {exc}")
        return None
    alive = purchases.probability_alive(frequency, recency, age)
    by_customer = {s.customer_id: float(p) for s, p in zip(people, alive, strict=True)}
    fits: list[tuple[str, BetaGeoFit | GammaGammaFit]] = [("BG/NBD", purchases)]
    failed = ""
    try:
        spend = GammaGammaModel().fit(frequency, value)
        fits.append(("Gamma-Gamma", spend))
    except CrmError as exc:
        failed = str(exc)
    report.table(
        ["model", "parameter", "estimate", "std error"],
        [
            [model, e.name, f"{e.value:.4f}", f"{e.standard_error:.4f}"]
            for model, fit in fits
            for e in fit.estimates
        ],
        "llrr",
        indent=4,
    )
    if failed:
        report.line(f"    Gamma-Gamma fit failed: {failed}")
        report.line("    so no lifetime values; P(alive) from BG/NBD still feeds the churn rules.")
        return by_customer
    clv = spend.customer_lifetime_value(
        purchases, frequency, recency, age, value, time_unit="weeks", months=12
    )
    best = sorted(range(len(people)), key=lambda i: (-float(clv[i]), people[i].customer_id))[:5]
    report.line(f"  Top customers by 12-month CLV (1 % monthly discount), {n(purchases.n_customers)} fitted:")
    report.table(
        ["customer", "orders", "P(alive)", "12-month CLV"],
        [
            [short(people[i].customer_id, 12), n(people[i].orders), f"{float(alive[i]):.2f}", _eur(clv[i])]
            for i in best
        ],
        "lrrr",
        indent=4,
    )
    return by_customer


_MONITOR = ChurnMonitor(
    rules=(
        InactivityRule(name="overdue", days=None, gap_multiple=3.0, severity=Severity.HIGH),
        DeclineRule(name="slowing", recent_days=180, baseline_days=365, min_drop=0.5),
        SatisfactionRule(name="unhappy", window_days=180, max_average=2.5),
        TicketSpikeRule(name="ticket_spike", window_days=30, min_tickets=2, ratio=3.0),
        LostDealsRule(name="lost_deal", window_days=90),
        ProbabilityAliveRule(name="probably_gone", threshold=0.3, severity=Severity.HIGH),
    )
)


def _churn(
    orders: Sequence[Order],
    tickets: list[Ticket],
    surveys: list[SatisfactionSurvey],
    deals: list[Opportunity],
    alive: dict[str, float] | None,
    report: Report,
) -> None:
    eur = [o for o in orders if o.currency == CURRENCY]
    activities = activity_from(eur, surveys, tickets, deals)
    warnings = _MONITOR.check(activities.values(), DEMO_NOW, probability_alive=alive)
    report.line()
    report.line(
        f"  Churn warnings: ChurnMonitor, {len(_MONITOR.rules)} rules, {n(len(activities))} customers with "
        "orders, tickets, surveys or deals"
    )
    if alive is None:
        report.line("  (probably_gone needs the lifetime value fit and stays silent without it):")
    counts = Counter((w.rule, w.severity.value) for w in warnings)
    report.table(
        ["rule", "severity", "warnings"],
        [[r.name, r.severity.value, n(counts[(r.name, r.severity.value)])] for r in _MONITOR.rules]
        + [["customers warned", "", n(len({w.customer_id for w in warnings}))]],
        "llr",
        indent=4,
    )
    then = DEMO_NOW - timedelta(days=180)
    test = _MONITOR.backtest(activities.values(), then, timedelta(days=180))
    report.line(
        f"  Backtest at {then:%Y-%m-%d} (rules without P(alive)), next 180 days: "
        f"{n(test.flagged)} of {n(test.customers)} flagged,"
    )
    report.line(
        f"  {n(test.stopped)} stopped buying; precision {_pct(test.precision)}, "
        f"recall {_pct(test.recall)}, base rate {_pct(test.base_rate)}."
    )


def _funnel(deals: list[Opportunity], report: Report) -> None:
    stages = [s.name for s in STAGES.stages if not s.lost]
    result = funnel(deals, stages, DEMO_NOW).total
    report.line()
    report.line(f"  Funnel of the sales section's {n(result.deals)} deals: funnel(deals, stages, now)")
    report.table(
        ["from", "to", "reached from", "reached to", "conversion"],
        [
            [c.from_stage, c.to_stage, n(c.reached_from), n(c.reached_to), _pct(c.rate)]
            for c in result.conversions
        ],
        "llrrr",
        indent=4,
    )
    report.line(
        f"  won {n(result.won)}, lost {n(result.lost)}, open {n(result.open)}; "
        f"win rate {_pct(result.win_rate)}; median sales cycle "
        + ("-" if result.sales_cycle.median_days is None else f"{result.sales_cycle.median_days:.1f} days")
        + "."
    )


def _forecasts(
    orders: Sequence[Order], deals: list[Opportunity], seed: int, missing: list[str], report: Report
) -> None:
    forecast = pipeline_forecast(deals, currency=CURRENCY)
    report.line()
    report.line("  Pipeline forecast by close month and forecast category: pipeline_forecast(deals)")
    report.table(
        ["month", "open", "pipeline", "best case", "commit", "weighted", "won"],
        [
            [
                row.period.label,
                n(row.open_deals),
                money(row.pipeline),
                money(row.best_case),
                money(row.commit),
                money(row.weighted),
                money(row.won),
            ]
            for row in forecast.totals
        ],
        "lrrrrrr",
        indent=4,
    )
    if forecast.skipped:
        report.line(f"  ({n(len(forecast.skipped))} open deals without an amount or close date left out)")
    if missing:
        report.line(f"  Simulation and revenue forecast skipped: {EXTRA_HINT}.")
        return
    open_deals = [d for d in deals if d.won is None]
    closed = [d for d in deals if d.won is not None]
    simulation = simulate_pipeline(
        open_deals, closed, now=DEMO_NOW, horizon=3, simulations=1000, seed=seed, currency=CURRENCY
    )
    report.line(f"  simulate_pipeline: {n(simulation.simulations)} futures from stage win rates and slips:")
    report.table(
        ["period", "P10", "P50", "P90", "mean"],
        [
            [
                "3 months" if p.period is None else p.period.label,
                money(p.p10),
                money(p.p50),
                money(p.p90),
                money(p.mean),
            ]
            for p in (*simulation.periods, simulation.horizon_total)
        ],
        "lrrrr",
        indent=4,
    )
    _revenue(orders, seed, report)


def _revenue(orders: Sequence[Order], seed: int, report: Report) -> None:
    series = monthly_revenue(orders, currency=CURRENCY)
    months = len(series.values)
    report.line()
    if months < _MIN_MONTHS:
        report.line(
            f"  Revenue forecast skipped: {months} months of order history, Holt-Winters with a yearly"
        )
        report.line(f"  season needs at least {_MIN_MONTHS}.")
        return
    try:
        result = forecast_revenue(series, horizon=6, seed=seed)
    except CrmError as exc:
        report.line(f"  Revenue forecast failed: {exc}")
        return
    report.line(
        f"  forecast_revenue(monthly_revenue(orders)): {months} months of {CURRENCY} history, "
        f"{100 * result.interval:.0f} % interval"
    )
    report.line(f"  model: Holt-Winters {result.model}")
    report.table(
        ["month", "forecast", "low", "high"],
        [
            [
                "-" if p.month is None else f"{p.month:%Y-%m}",
                _eur(p.forecast),
                _eur(p.lower),
                _eur(p.upper),
            ]
            for p in result.points
        ],
        "lrrr",
        indent=4,
    )
