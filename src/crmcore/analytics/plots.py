"""Notebook plots of the main analytics results: funnel, RFM grid, probability alive, revenue forecast.

Each function draws on the matplotlib ``Axes`` it is given and returns it; without one it draws on
a new `matplotlib.figure.Figure` that belongs to no GUI backend (save it with ``ax.figure.savefig``
or show it in a notebook), so nothing here changes the global pyplot state or needs a display.
Needs the ``plot`` extra (matplotlib), imported on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.analytics._extras import require
from crmcore.analytics.revenue_forecast import RevenueSeries
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from crmcore.analytics.clv import BetaGeoFit
    from crmcore.analytics.funnel import FunnelReport
    from crmcore.analytics.revenue_forecast import RevenueForecast
    from crmcore.analytics.rfm import RfmResult

__all__ = ["plot_forecast", "plot_funnel", "plot_probability_alive", "plot_rfm_grid"]


def _axes(ax: Axes | None) -> Axes:
    """``ax``, or the axes of a new backend-free figure (matplotlib, or a MissingExtra naming ``plot``)."""
    figure = require("matplotlib.figure", "plot")
    if ax is not None:
        return ax
    new: Axes = figure.Figure(figsize=(7, 4.5)).add_subplot()
    return new


def plot_funnel(report: FunnelReport, ax: Axes | None = None, *, group: str | None = None) -> Axes:
    """Horizontal bars of how many deals reached each stage, first stage on top, with step conversion.

    Args:
        report: a `funnel` result.
        ax: axes to draw on (default: a new figure).
        group: a group key of ``report`` to draw instead of the total.

    Raises:
        ValidationError: ``group`` is not a group of the report.
        MissingExtra: matplotlib is not installed (``pip install "crmcore[plot]"``).
    """
    ax = _axes(ax)
    metrics = report.total if group is None else report.group(group)
    reached = metrics.reached
    stages = list(report.stages)
    counts = [reached.get(stage, 0) for stage in stages]
    bars = ax.barh(range(len(stages)), counts, color="tab:blue")
    ax.set_yticks(range(len(stages)), stages)
    ax.invert_yaxis()
    labels = [str(counts[0])] if counts else []
    labels += [
        f"{n} ({c.rate:.0%})" if c.rate is not None else str(n)
        for n, c in zip(counts[1:], metrics.conversions, strict=False)
    ]
    ax.bar_label(bars, labels=labels, padding=3)
    ax.set_xlabel("deals that reached the stage")
    ax.set_title(f"Funnel: {metrics.key} ({metrics.deals} deals, {metrics.won} won)")
    return ax


def plot_rfm_grid(rfm_result: RfmResult, ax: Axes | None = None) -> Axes:
    """Heatmap of customers per (R, F) score cell, R up the side and F along the bottom, counts written in.

    Raises:
        MissingExtra: matplotlib is not installed (``pip install "crmcore[plot]"``).
    """
    ax = _axes(ax)
    k = rfm_result.config.scores
    grid = rfm_result.grid()
    counts = [[grid[r, f] for f in range(1, k + 1)] for r in range(1, k + 1)]
    image = ax.imshow(counts, origin="lower", cmap="Blues", aspect="equal")
    ticks = list(range(k))
    names = [str(s) for s in range(1, k + 1)]
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("F score (frequency)")
    ax.set_ylabel("R score (recency; high = recent)")
    peak = max((n for row in counts for n in row), default=0)
    for r, row in enumerate(counts):
        for f, n in enumerate(row):
            ax.text(f, r, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black")
    ax.figure.colorbar(image, ax=ax, label="customers")
    ax.set_title(f"RFM grid ({len(rfm_result.customers)} customers)")
    return ax


def plot_probability_alive(
    bgnbd_fit: BetaGeoFit, max_frequency: int, max_recency: int, age: float, ax: Axes | None = None
) -> Axes:
    """The classic probability-alive matrix: P(alive) at ``age`` for each repeat count and recency.

    Row ``x`` (0 to ``max_frequency``, bottom to top) and column ``t`` (0 to ``max_recency``) hold
    `BetaGeoFit.probability_alive` of a customer with ``x`` repeat purchases, the last at ``t``.
    Customers without repeats are alive (the bottom row is 1), whatever their recency.

    Raises:
        ValidationError: negative maxima, or ``max_recency`` later than ``age``.
        MissingExtra: matplotlib or the ``analytics`` extra is not installed.
    """
    problems = []
    if max_frequency < 0:
        problems.append(f"max_frequency must be >= 0, got {max_frequency}")
    if max_recency < 0:
        problems.append(f"max_recency must be >= 0, got {max_recency}")
    if not max_recency <= age:
        problems.append(f"max_recency {max_recency} is later than the end of observation (age {age})")
    if problems:
        raise ValidationError("max_recency", "; ".join(problems))
    ax = _axes(ax)
    np = require("numpy", "analytics")
    x, t = np.meshgrid(np.arange(max_frequency + 1), np.arange(max_recency + 1), indexing="ij")
    recency = np.where(x > 0, t, 0)  # no repeats: recency is 0 by definition, and P(alive) is 1
    matrix = bgnbd_fit.probability_alive(x.ravel(), recency.ravel(), np.full(x.size, float(age)))
    image = ax.imshow(
        np.asarray(matrix).reshape(x.shape), origin="lower", aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis"
    )
    ax.set_xlabel("recency (time of the last purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(f"Probability alive at age {age:g}")
    ax.figure.colorbar(image, ax=ax, label="P(alive)")
    return ax


def plot_forecast(
    revenue_forecast: RevenueForecast,
    ax: Axes | None = None,
    *,
    history: RevenueSeries | Sequence[float] | None = None,
) -> Axes:
    """The revenue history (when given), the point forecast and its prediction-interval band.

    The x axis is calendar months when both the forecast and the history carry them, otherwise the
    month index (0 = first month of the history; the forecast follows it).

    Args:
        revenue_forecast: a `forecast_revenue` result.
        ax: axes to draw on (default: a new figure).
        history: the monthly revenue the forecast was fitted on (a `RevenueSeries` or plain values).

    Raises:
        MissingExtra: matplotlib is not installed (``pip install "crmcore[plot]"``).
    """
    ax = _axes(ax)
    series = (
        history if history is None or isinstance(history, RevenueSeries) else RevenueSeries(values=history)
    )
    values = [] if series is None else list(series.values)
    points = revenue_forecast.points
    calendar = all(p.month is not None for p in points) and (series is None or series.start is not None)
    past: list[Any]
    future: list[Any]
    if calendar:
        past = [] if series is None else [series.month(i) for i in range(len(values))]
        future = [p.month for p in points]
    else:
        past = list(range(len(values)))
        future = [len(values) - 1 + p.step for p in points]
    unit = f" ({revenue_forecast.currency})" if revenue_forecast.currency else ""
    if values:
        ax.plot(past, values, color="black", label="history")
    ax.plot(future, [p.forecast for p in points], color="tab:blue", label="forecast")
    ax.fill_between(
        future,
        [p.lower for p in points],
        [p.upper for p in points],
        color="tab:blue",
        alpha=0.25,
        label=f"{revenue_forecast.interval:.0%} interval",
    )
    ax.set_xlabel("month")
    ax.set_ylabel(f"revenue{unit}")
    ax.set_title("Revenue forecast")
    ax.legend()
    return ax
