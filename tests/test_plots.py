"""Notebook output: analytics results as pandas DataFrames, and the plots of the main ones."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from crmcore.analytics._extras import MissingExtra
from crmcore.analytics.churn import (
    ChurnBacktest,
    ChurnClassifier,
    ChurnPrediction,
    FeatureContribution,
    FeatureKind,
    FeatureSpec,
    RuleBacktest,
)
from crmcore.analytics.clv import BetaGeoFit, GammaGammaFit
from crmcore.analytics.funnel import Durations, FunnelMetrics, FunnelReport, StageConversion
from crmcore.analytics.pipeline_simulation import Slippage, StageWinRate, WinRates
from crmcore.analytics.plots import plot_forecast, plot_funnel, plot_probability_alive, plot_rfm_grid
from crmcore.analytics.revenue_forecast import RevenueForecast, RevenueForecastPoint, RevenueSeries
from crmcore.analytics.rfm import RfmResult, rfm
from crmcore.analytics.summaries import CustomerSummaries, CustomerSummary, TimeUnit
from crmcore.errors import CrmError, ValidationError
from crmcore.money import Money

T0 = datetime(2026, 3, 1, tzinfo=UTC)

# Published CDNOW BG/NBD estimates (Fader, Hardie and Lee 2005), in weeks.
CDNOW = BetaGeoFit(
    r=0.243,
    alpha=4.414,
    a=0.793,
    b=2.426,
    r_se=0.013,
    alpha_se=0.378,
    a_se=0.186,
    b_se=0.705,
    log_likelihood=-9582.4,
    n_customers=2357,
    iterations=30,
    gradient_norm=1e-6,
)


def _metrics(key: str, reached: list[int], stages: tuple[str, ...]) -> FunnelMetrics:
    conversions = tuple(
        StageConversion(from_stage=a, to_stage=b, reached_from=n, reached_to=m)
        for a, b, n, m in zip(stages, stages[1:], reached, reached[1:], strict=False)
    )
    return FunnelMetrics(
        key=key,
        deals=reached[0],
        open=2,
        won=reached[-1],
        lost=reached[0] - reached[-1] - 2,
        conversions=conversions,
        deal_sizes=(),
        sales_cycle=Durations(),
        time_in_stage=(),
    )


def _funnel() -> FunnelReport:
    stages = ("Lead", "Qualified", "Proposal", "Won")
    return FunnelReport(
        stages=stages,
        grouping="owner",
        total=_metrics("all", [20, 12, 6, 3], stages),
        groups=(_metrics("ana", [8, 4, 2, 1], stages),),
    )


def _rfm() -> RfmResult:
    rows = tuple(
        CustomerSummary(
            customer_id=f"c{i}",
            frequency=i,
            recency=300.0 + 10 * i,
            age=400.0,
            monetary_value=Money.zero("EUR"),
            total_spend=Money(f"{(i + 1) * 10}.00", "EUR"),
            orders=i + 1,
            first_order_at=T0 - timedelta(days=400),
            last_order_at=T0 - timedelta(days=100 - 10 * i),
        )
        for i in range(10)
    )
    return rfm(CustomerSummaries.of(rows, observed_at=T0, unit=TimeUnit.DAYS, currency="EUR"))


def _forecast(months: bool = True) -> RevenueForecast:
    points = tuple(
        RevenueForecastPoint(
            step=h,
            month=date(2026, 2 + h, 1) if months else None,
            forecast=100.0 + h,
            lower=90.0 + h,
            upper=110.0 + h,
        )
        for h in range(1, 4)
    )
    return RevenueForecast(
        points=points, interval=0.8, currency="EUR", model="m", aic=1.0, sse=1.0, converged=True
    )


def test_plot_funnel_draws_one_bar_per_stage_with_reached_counts() -> None:
    """The funnel has a bar per stage whose length is the number of deals that reached it."""
    ax = plot_funnel(_funnel())
    assert isinstance(ax, Axes)
    (bars,) = ax.containers
    assert isinstance(bars, BarContainer)
    assert [p.get_width() for p in bars.patches] == [20, 12, 6, 3]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Lead", "Qualified", "Proposal", "Won"]
    assert [t.get_text() for t in ax.texts] == ["20", "12 (60%)", "6 (50%)", "3 (50%)"]


def test_plot_funnel_draws_a_group_on_given_axes_and_refuses_unknown_groups() -> None:
    """A group key draws that group's counts on the caller's axes; an unknown key is a ValidationError."""
    given = Figure().add_subplot()
    ax = plot_funnel(_funnel(), given, group="ana")
    assert ax is given
    bars = ax.containers[0]
    assert isinstance(bars, BarContainer)
    assert [p.get_width() for p in bars.patches] == [8, 4, 2, 1]
    with pytest.raises(ValidationError, match="not a group"):
        plot_funnel(_funnel(), group="bob")


def test_plot_rfm_grid_is_a_scores_by_scores_heatmap_of_counts() -> None:
    """The image is R x F with the grid's counts, origin at R=1/F=1, and each count written in its cell."""
    result = _rfm()
    ax = plot_rfm_grid(result)
    (image,) = ax.get_images()
    data = image.get_array()
    assert data is not None
    assert data.shape == (5, 5)
    grid = result.grid()
    assert all(data[r - 1, f - 1] == n for (r, f), n in grid.items())
    assert int(data.sum()) == 10
    assert len(ax.texts) == 25


def test_plot_probability_alive_is_the_classic_matrix() -> None:
    """Cell (x, t) is P(alive) of x repeats last at t; no repeats is alive, recent buyers more than lapsed."""
    ax = plot_probability_alive(CDNOW, max_frequency=10, max_recency=30, age=39)
    (image,) = ax.get_images()
    data = image.get_array()
    assert data is not None
    assert data.shape == (11, 31)
    assert (data[0] == 1.0).all()
    assert data[5, 30] == pytest.approx(CDNOW.probability_alive(5, 30, 39))
    assert data[5, 30] > data[5, 5]
    assert data[10, 5] < data[1, 5]  # a frequent buyer who went quiet is likelier gone


def test_plot_probability_alive_refuses_recency_past_age() -> None:
    """A recency axis longer than the observation period is refused with both problems named."""
    with pytest.raises(ValidationError, match=r"max_frequency must be >= 0.*later than the end"):
        plot_probability_alive(CDNOW, max_frequency=-1, max_recency=50, age=39)


def test_plot_forecast_draws_history_forecast_and_band_by_month() -> None:
    """History and forecast are lines over calendar months and the interval is a filled band."""
    history = RevenueSeries(start=date(2025, 11, 1), values=(80, 90, 95, 99), currency="EUR")
    ax = plot_forecast(_forecast(), history=history)
    history_line, forecast_line = ax.get_lines()
    assert np.asarray(history_line.get_xdata()).size == 4
    assert np.asarray(forecast_line.get_ydata()).tolist() == [101.0, 102.0, 103.0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["history", "forecast", "80% interval"]


def test_plot_forecast_uses_month_indexes_without_calendar_months() -> None:
    """Plain history values put the forecast right after the last history index."""
    ax = plot_forecast(_forecast(months=False), history=[1.0, 2.0])
    history_line, forecast_line = ax.get_lines()
    assert np.asarray(history_line.get_xdata()).tolist() == [0, 1]
    assert np.asarray(forecast_line.get_xdata()).tolist() == [2, 3, 4]
    ax = plot_forecast(_forecast())
    assert len(ax.get_lines()) == 1


def test_a_plot_saves_to_a_file_without_a_gui_backend(tmp_path: Path) -> None:
    """The new figure belongs to no pyplot backend and still saves a PNG."""
    ax = plot_rfm_grid(_rfm())
    path = tmp_path / "rfm.png"
    figure = ax.get_figure()
    assert isinstance(figure, Figure)
    figure.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plots_name_the_extra_when_matplotlib_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without matplotlib the error is a CrmError telling to install crmcore[plot]."""
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtra, match=r"crmcore\[plot\]") as caught:
        plot_funnel(_funnel())
    assert isinstance(caught.value, CrmError)


def test_to_dataframe_names_the_extra_when_pandas_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pandas the new to_dataframe methods raise a CrmError telling to install crmcore[pandas]."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    for result in (CDNOW, Slippage(days=(1,))):
        with pytest.raises(CrmError, match=r"crmcore\[pandas\]"):
            result.to_dataframe()


def test_fits_to_dataframe_give_one_row_per_parameter() -> None:
    """BG/NBD and Gamma-Gamma fits give each parameter with its standard error and 95 % bounds."""
    frame = CDNOW.to_dataframe()
    assert list(frame.index) == ["r", "alpha", "a", "b"]
    assert list(frame.columns) == ["value", "standard_error", "lower_95", "upper_95"]
    assert frame.loc["alpha", "value"] == 4.414
    assert frame.loc["alpha", "upper_95"] == pytest.approx(4.414 + 1.96 * 0.378, abs=1e-3)
    spend = GammaGammaFit(
        p=6.25,
        q=3.74,
        gamma=15.44,
        p_se=0.2,
        q_se=0.3,
        gamma_se=1.0,
        log_likelihood=-4000.0,
        n_customers=946,
        n_excluded=0,
        frequency_value_correlation=0.11,
        iterations=20,
        gradient_norm=1e-6,
    ).to_dataframe()
    assert list(spend.index) == ["p", "q", "gamma"]
    assert spend.loc["q", "standard_error"] == 0.3


def test_churn_results_to_dataframe() -> None:
    """A backtest gives an 'any' row then per rule; a classifier its coefficients; a prediction why."""
    backtest = ChurnBacktest(
        observed_at=T0,
        horizon=timedelta(days=90),
        customers=100,
        flagged=20,
        stopped=25,
        true_positives=10,
        rules=(
            RuleBacktest(rule="inactivity", flagged=10, true_positives=8),
            RuleBacktest(rule="x", flagged=0, true_positives=0),
        ),
    ).to_dataframe()
    assert list(backtest.columns) == ["rule", "flagged", "true_positives", "precision", "recall"]
    assert list(backtest["rule"]) == ["any", "inactivity", "x"]
    assert backtest["precision"].tolist()[:2] == [0.5, 0.8]
    assert backtest["recall"].tolist() == [0.4, 0.32, 0.0]
    assert backtest["precision"].isna().tolist() == [False, False, True]

    classifier = ChurnClassifier(
        features=(
            FeatureSpec(name="tenure", kind=FeatureKind.NUMERIC),
            FeatureSpec(name="contract", kind=FeatureKind.CATEGORICAL, levels=("One year", "Two year")),
        ),
        intercept=-1.0,
        coefficients=(-0.05, -0.8, -1.6),
        l2=1.0,
        iterations=10,
        log_likelihood=-100.0,
    ).to_dataframe()
    assert classifier["column"].tolist() == [
        "(intercept)",
        "tenure",
        "contract=One year",
        "contract=Two year",
    ]
    assert classifier["coefficient"].tolist() == [-1.0, -0.05, -0.8, -1.6]

    prediction = ChurnPrediction(
        probability=0.3,
        intercept=-1.0,
        contributions=(FeatureContribution(feature="tenure", value=24, log_odds=-1.2),),
    ).to_dataframe()
    assert prediction.to_dict("records") == [{"feature": "tenure", "value": 24, "log_odds": -1.2}]
    empty = ChurnPrediction(probability=0.5, intercept=0.0, contributions=()).to_dataframe()
    assert list(empty.columns) == ["feature", "value", "log_odds"] and len(empty) == 0


def test_simulation_inputs_to_dataframe() -> None:
    """Win rates give a row per pipeline stage with rate and whether it is used; slippage a row per slip."""
    rates = WinRates(
        rates=(
            StageWinRate(pipeline="p", stage="Proposal", reached=20, won=5),
            StageWinRate(pipeline="p", stage="Lead", reached=4, won=1),
        ),
        min_deals=10,
    ).to_dataframe()
    assert list(rates.columns) == ["pipeline", "stage", "reached", "won", "rate", "used"]
    assert rates["rate"].tolist() == [0.25, 0.25]
    assert rates["used"].tolist() == [True, False]
    assert len(WinRates(rates=()).to_dataframe().columns) == 6
    slips = Slippage(days=(-3, 0, 7)).to_dataframe()
    assert slips["days"].tolist() == [-3, 0, 7]


def test_existing_results_already_convert() -> None:
    """The results that had to_dataframe before keep it: funnel tables, RFM scores and the forecast."""
    assert _funnel().to_dataframe("conversion").shape == (6, 6)
    assert list(_rfm().to_dataframe().columns)[-2:] == ["code", "segment"]
    assert _forecast().to_dataframe()["upper"].tolist() == [111.0, 112.0, 113.0]
