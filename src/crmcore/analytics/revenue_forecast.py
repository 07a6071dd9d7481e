"""Revenue time-series forecast: monthly revenue from orders, Holt-Winters exponential smoothing
(trend and seasonality, through statsmodels) with simulated prediction intervals, a seasonal-naive
baseline, and the error measures the backtests use.

statsmodels and numpy come with the ``analytics`` extra and are imported only when a forecast is
fitted; building a series needs nothing beyond the core.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.analytics._extras import require
from crmcore.analytics.forecast import ForecastPeriod
from crmcore.customers.order import Order
from crmcore.errors import ValidationError
from crmcore.money import check_currency

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "RevenueForecast",
    "RevenueForecastPoint",
    "RevenueSeries",
    "forecast_bias",
    "forecast_revenue",
    "mape",
    "monthly_revenue",
    "seasonal_naive",
]

_TRENDS = ("add", "mul", None)


def _month_after(day: date, months: int) -> date:
    return ForecastPeriod.of(day).shifted(months).start


def _values(values: Iterable[Any], path: str) -> tuple[float, ...]:
    out: list[float] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float | Decimal):
            raise ValidationError(f"{path}[{i}]", f"must be a number, not {type(v).__name__}")
        f = float(v)
        if not math.isfinite(f):
            raise ValidationError(f"{path}[{i}]", f"must be finite, got {v!r}")
        out.append(f)
    return tuple(out)


def _to_values(values: Iterable[Any]) -> tuple[float, ...]:
    return _values(values, "values")


@attrs.frozen(kw_only=True)
class RevenueSeries:
    """Revenue per calendar month from ``start`` on (``values[0]`` is ``start``'s month)."""

    start: date | None = None
    """First day of the first month (None for a plain sequence of monthly values)."""
    values: tuple[float, ...] = attrs.field(converter=_to_values)
    currency: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.start.day != 1:
            raise ValidationError("start", f"must be the first day of a month, got {self.start}")
        if self.currency is not None:
            check_currency(self.currency)

    def month(self, i: int) -> date | None:
        """The first day of month ``i`` (0 = ``start``; may lie past the end); None without a start."""
        return None if self.start is None else _month_after(self.start, i)

    def head(self, n: int) -> RevenueSeries:
        """The first ``n`` months (the history before a cutoff)."""
        return attrs.evolve(self, values=self.values[:n])

    def __len__(self) -> int:
        return len(self.values)

    def rows(self) -> list[dict[str, Any]]:
        """One row per month: its first day (or index) and the revenue."""
        return [{"month": self.month(i), "index": i, "revenue": v} for i, v in enumerate(self.values)]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame(self.rows())


def monthly_revenue(
    orders: Iterable[Order],
    *,
    currency: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> RevenueSeries:
    """Sum the totals of purchase orders (``status.counts``) per UTC calendar month, zero-filled.

    Args:
        orders: any orders; cancelled and refunded ones are left out.
        currency: use orders in this currency only; without it, several currencies are refused.
        start, end: the first and last month to cover (default: the first and last order's month).

    Raises:
        ValidationError: mixed currencies without ``currency``, no orders and no ``start``/``end``.
    """
    counted = [o for o in orders if o.status.counts]
    if currency is None:
        found = sorted({o.currency for o in counted})
        if len(found) > 1:
            raise ValidationError(
                "currency", f"the orders are in {', '.join(found)}: pass currency= to pick one"
            )
        currency = found[0] if found else None
    else:
        check_currency(currency)
        counted = [o for o in counted if o.currency == currency]
    sums: dict[int, Decimal] = {}
    for order in counted:
        index = ForecastPeriod.of(order.ordered_at.date()).index
        sums[index] = sums.get(index, Decimal(0)) + order.total.amount
    first = ForecastPeriod.of(start).index if start else min(sums, default=None)
    last = ForecastPeriod.of(end).index if end else max(sums, default=None)
    if first is None or last is None:
        raise ValidationError("orders", "no purchase orders: pass start= and end= for an empty series")
    if last < first:
        raise ValidationError("end", "is before start")
    return RevenueSeries(
        start=ForecastPeriod.from_index(first).start,
        values=[float(sums.get(i, Decimal(0))) for i in range(first, last + 1)],
        currency=currency,
    )


def _series(data: RevenueSeries | Sequence[float | int | Decimal]) -> RevenueSeries:
    return data if isinstance(data, RevenueSeries) else RevenueSeries(values=tuple(data))


def seasonal_naive(
    data: RevenueSeries | Sequence[float | int | Decimal], horizon: int = 12, season: int = 12
) -> tuple[float, ...]:
    """The baseline: each future month repeats the same month one season earlier."""
    values = _series(data).values
    if len(values) < season:
        raise ValidationError("data", f"needs at least one season ({season} values), got {len(values)}")
    last = values[-season:]
    return tuple(last[h % season] for h in range(horizon))


def _pairs(actual: Sequence[float], forecast: Sequence[float]) -> list[tuple[float, float]]:
    if len(actual) != len(forecast):
        raise ValidationError("forecast", f"has {len(forecast)} values for {len(actual)} actuals")
    pairs = [(float(a), float(f)) for a, f in zip(actual, forecast, strict=True) if a != 0]
    if not pairs:
        raise ValidationError("actual", "needs at least one non-zero actual value")
    return pairs


def mape(actual: Sequence[float], forecast: Sequence[float]) -> float:
    """Mean absolute percentage error, in % (periods whose actual is zero are left out)."""
    pairs = _pairs(actual, forecast)
    return 100 * sum(abs((f - a) / a) for a, f in pairs) / len(pairs)


def forecast_bias(actual: Sequence[float], forecast: Sequence[float]) -> float:
    """Mean signed percentage error, in %: positive when the forecast runs above the actuals."""
    pairs = _pairs(actual, forecast)
    return 100 * sum((f - a) / a for a, f in pairs) / len(pairs)


@attrs.frozen(kw_only=True)
class RevenueForecastPoint:
    """The forecast for one future month: point forecast and prediction interval."""

    step: int
    """1 for the month after the history."""
    month: date | None
    forecast: float
    lower: float
    upper: float


@attrs.frozen(kw_only=True)
class RevenueForecast:
    """A fitted exponential-smoothing forecast: future points, the model and its fit.

    ``lower``/``upper`` bound the central ``interval`` (0.8: P10 to P90) of simulated future paths
    of the fitted model (the errors resampled from its residual variance, not the parameters'
    uncertainty, so they are a little narrow for short histories).
    """

    points: tuple[RevenueForecastPoint, ...]
    interval: float
    currency: str | None
    model: str
    """``trend=add seasonal=add damped=False periods=12``."""
    parameters: dict[str, float] = attrs.field(factory=dict)
    """Smoothing parameters: alpha (level), beta (trend), gamma (season), phi (damping)."""
    aic: float
    sse: float
    converged: bool

    @property
    def values(self) -> tuple[float, ...]:
        """The point forecasts in order."""
        return tuple(p.forecast for p in self.points)

    def rows(self) -> list[dict[str, Any]]:
        """One row per future month."""
        return [attrs.asdict(p) for p in self.points]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame(self.rows())


def _option(value: Any, valid: tuple[Any, ...], name: str) -> Any:
    if value not in valid:
        raise ValidationError(name, f"{value!r} is not one of {', '.join(repr(v) for v in valid)}")
    return value


def forecast_revenue(
    data: RevenueSeries | Sequence[float | int | Decimal],
    *,
    horizon: int = 12,
    seasonal_periods: int = 12,
    trend: str | None = "add",
    seasonal: str | None = "add",
    damped_trend: bool = False,
    interval: float = 0.8,
    simulations: int = 1000,
    seed: int = 0,
) -> RevenueForecast:
    """Fit Holt-Winters exponential smoothing to monthly revenue and forecast ``horizon`` months.

    Args:
        data: a `RevenueSeries` (from `monthly_revenue`) or plain monthly values, oldest first.
        horizon: months to forecast.
        seasonal_periods: months per season (12: yearly).
        trend, seasonal: ``"add"``, ``"mul"`` or None (no trend / no seasonality).
        damped_trend: damp the trend towards flat.
        interval: central probability of the prediction interval (0.8 gives P10-P90).
        simulations, seed: simulated paths for the interval; the same seed gives the same interval.

    Raises:
        ValidationError: bad options, or too short a history (two seasons with seasonality).
        MissingExtra: without the ``analytics`` extra.
    """
    series = _series(data)
    _option(trend, _TRENDS, "trend")
    _option(seasonal, _TRENDS, "seasonal")
    if not 0 < interval < 1:
        raise ValidationError("interval", f"must lie strictly between 0 and 1, got {interval}")
    if horizon < 1 or simulations < 10:
        raise ValidationError("horizon", "horizon must be at least 1 and simulations at least 10")
    needed = 2 * seasonal_periods if seasonal else 4
    if len(series) < needed:
        raise ValidationError("data", f"needs at least {needed} months of history, got {len(series)}")
    if "mul" in (trend, seasonal) and min(series.values) <= 0:
        raise ValidationError("data", "multiplicative trend or seasonality needs positive values")

    np = require("numpy", "analytics")
    holtwinters = require("statsmodels.tsa.holtwinters", "analytics")
    tools = require("statsmodels.tools.sm_exceptions", "analytics")
    model = holtwinters.ExponentialSmoothing(
        np.asarray(series.values, dtype=float),
        trend=trend,
        damped_trend=damped_trend if trend else False,
        seasonal=seasonal,
        seasonal_periods=seasonal_periods if seasonal else None,
        initialization_method="estimated",
    )
    with warnings.catch_warnings():
        # Convergence is reported on the result instead of as a warning.
        warnings.simplefilter("ignore", tools.ConvergenceWarning)
        fit = model.fit()
    mean = fit.forecast(horizon)
    rng = np.random.default_rng(seed)
    takes_rng = "rng" in inspect.signature(fit.simulate).parameters
    random = {"rng": rng} if takes_rng else {"random_state": rng}
    paths = fit.simulate(horizon, repetitions=simulations, error="add", **random)
    tail = (1 - interval) / 2
    lower, upper = np.quantile(np.asarray(paths).reshape(horizon, simulations), [tail, 1 - tail], axis=1)
    names = {"alpha": "smoothing_level", "beta": "smoothing_trend", "gamma": "smoothing_seasonal"}
    parameters = {k: float(fit.params[v]) for k, v in names.items() if fit.params.get(v) is not None}
    if damped_trend and trend:
        parameters["phi"] = float(fit.params["damping_trend"])
    retvals = getattr(fit, "mle_retvals", None)
    converged = bool(getattr(retvals, "success", True))
    points = tuple(
        RevenueForecastPoint(
            step=h + 1,
            month=series.month(len(series) + h),
            forecast=float(mean[h]),
            lower=float(lower[h]),
            upper=float(upper[h]),
        )
        for h in range(horizon)
    )
    return RevenueForecast(
        points=points,
        interval=interval,
        currency=series.currency,
        model=f"trend={trend} seasonal={seasonal} damped={damped_trend} periods={seasonal_periods}",
        parameters=parameters,
        aic=float(fit.aic),
        sse=float(fit.sse),
        converged=converged,
    )
