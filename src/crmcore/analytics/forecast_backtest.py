"""Backtest forecasting methods: at each past cutoff, forecast the next month and compare to the actual.

A method is any callable ``(history, month) -> float`` that sees only the months before the cutoff
(``history``, a `RevenueSeries`) and the first day of the month to forecast (None for a plain
series). Built in: exponential smoothing, seasonal naive and naive; a pipeline method wraps a
function returning, for a cutoff month, the weighted pipeline or simulated P50 recorded then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.analytics._extras import require
from crmcore.analytics.revenue_forecast import (
    RevenueSeries,
    _series,
    forecast_bias,
    forecast_revenue,
    mape,
    seasonal_naive,
)
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BacktestPoint",
    "ForecastBacktest",
    "ForecastMethod",
    "MethodScore",
    "backtest",
    "default_methods",
]

ForecastMethod = Callable[[RevenueSeries, date | None], float]
"""Forecast the month after ``history``, given the history and that month's first day (or None)."""


def default_methods(season: int = 12) -> dict[str, ForecastMethod]:
    """Exponential smoothing (trend and seasonality), seasonal naive and naive (last month)."""

    def smoothing(history: RevenueSeries, _: date | None) -> float:
        return forecast_revenue(history, horizon=1, seasonal_periods=season, simulations=10).values[0]

    def snaive(history: RevenueSeries, _: date | None) -> float:
        return seasonal_naive(history, 1, season)[0]

    def naive(history: RevenueSeries, _: date | None) -> float:
        return history.values[-1]

    return {"exponential_smoothing": smoothing, "seasonal_naive": snaive, "naive": naive}


@attrs.frozen(kw_only=True)
class BacktestPoint:
    """One method's forecast of one month against what happened."""

    method: str
    index: int
    """Position of the forecast month in the series."""
    month: date | None
    forecast: float
    actual: float

    @property
    def error(self) -> float:
        """Forecast minus actual."""
        return self.forecast - self.actual


@attrs.frozen(kw_only=True)
class MethodScore:
    """A method's MAPE and bias (in %) over the cutoffs (months with zero actual left out)."""

    method: str
    mape: float
    bias: float
    periods: int


@attrs.frozen(kw_only=True)
class ForecastBacktest:
    """Each method's scores (best MAPE first) and every point they were computed from."""

    scores: tuple[MethodScore, ...]
    points: tuple[BacktestPoint, ...]

    def score(self, method: str) -> MethodScore:
        """The scores of ``method``."""
        for s in self.scores:
            if s.method == method:
                return s
        raise ValidationError(
            "method", f"{method!r} is not one of {', '.join(s.method for s in self.scores)}"
        )

    @property
    def best(self) -> MethodScore:
        """The method with the lowest MAPE."""
        return self.scores[0]

    def rows(self) -> list[dict[str, Any]]:
        """One row per method: MAPE, bias and periods."""
        return [attrs.asdict(s) for s in self.scores]

    def point_rows(self) -> list[dict[str, Any]]:
        """One row per method and month."""
        return [{**attrs.asdict(p), "error": p.error} for p in self.points]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame(self.rows())


def backtest(
    data: RevenueSeries | Sequence[float | int | Decimal],
    methods: Mapping[str, ForecastMethod] | None = None,
    *,
    cutoffs: int = 12,
) -> ForecastBacktest:
    """Forecast each of the last ``cutoffs`` months from the months before it, with every method.

    Args:
        data: the actual monthly revenue, oldest first.
        methods: name -> method (default: `default_methods`, which need the ``analytics`` extra
            and two years of history before the first cutoff).
        cutoffs: how many final months to forecast one step ahead.

    Raises:
        ValidationError: too few months for the cutoffs, or no methods.
    """
    series = _series(data)
    chosen = dict(default_methods() if methods is None else methods)
    if not chosen:
        raise ValidationError("methods", "needs at least one method")
    if not 1 <= cutoffs < len(series):
        raise ValidationError("cutoffs", f"must be from 1 to {len(series) - 1} for {len(series)} months")
    points: list[BacktestPoint] = []
    for name, method in chosen.items():
        for index in range(len(series) - cutoffs, len(series)):
            forecast = float(method(series.head(index), series.month(index)))
            points.append(
                BacktestPoint(
                    method=name,
                    index=index,
                    month=series.month(index),
                    forecast=forecast,
                    actual=series.values[index],
                )
            )
    scores = []
    for name in chosen:
        mine = [p for p in points if p.method == name]
        actual = [p.actual for p in mine]
        predicted = [p.forecast for p in mine]
        scores.append(
            MethodScore(
                method=name,
                mape=mape(actual, predicted),
                bias=forecast_bias(actual, predicted),
                periods=sum(a != 0 for a in actual),
            )
        )
    scores.sort(key=lambda s: s.mape)
    return ForecastBacktest(scores=tuple(scores), points=tuple(points))
