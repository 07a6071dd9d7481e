"""Probabilistic pipeline forecast: P10 / P50 / P90 revenue per period by Monte Carlo simulation.

The model, per simulated future and per open deal:

1. **Win or not.** The deal wins with the historical stage-to-win rate of its current stage: of
   the closed deals of the same pipeline that ever reached that stage, the share that was won
   (`estimate_win_rates`). With fewer than ``min_deals`` such deals the stage's own probability
   (the deal's ``probability``) stands in.
2. **When.** A won deal closes on its ``close_date`` plus a slip drawn from the slips of past won
   deals (actual close day minus the close date they carried, in days; `estimate_slippage`). A
   date that lands before today lands today: an overdue deal closes now or later, never in the
   past. Without history there is no slip.
3. Revenue per period is the sum of the won deals' amounts landing in it; P10/P50/P90 are the
   quantiles over the simulated futures, so they are not additive across periods (the horizon's
   own quantiles are given separately).

Deals are independent given their stage. numpy (the ``analytics`` extra) runs the simulation; the
same seed gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.analytics._extras import require
from crmcore.analytics.forecast import ForecastPeriod, PeriodUnit, SkippedDeal
from crmcore.errors import ValidationError
from crmcore.money import Money, check_currency, minor_units
from crmcore.pipeline.opportunity import Opportunity
from crmcore.validation import utc_datetime

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PipelineSimulation",
    "SimulatedPeriod",
    "Slippage",
    "StageWinRate",
    "WinRates",
    "estimate_slippage",
    "estimate_win_rates",
    "simulate_pipeline",
]


def _stages_reached(deal: Opportunity) -> set[str]:
    reached = {deal.stage}
    for change in deal.stage_history:
        reached.add(change.from_stage)
        reached.add(change.to_stage)
    return reached


@attrs.frozen(kw_only=True)
class StageWinRate:
    """Of the ``reached`` closed deals of ``pipeline`` that ever were in ``stage``, ``won`` were won."""

    pipeline: str
    stage: str
    reached: int
    won: int

    @property
    def rate(self) -> float:
        """``won / reached``."""
        return self.won / self.reached if self.reached else 0.0


@attrs.frozen(kw_only=True)
class WinRates:
    """Historical stage-to-win rates; `for_deal` falls back to the stage probability on thin history."""

    rates: tuple[StageWinRate, ...]
    min_deals: int = 10

    def for_deal(self, deal: Opportunity) -> tuple[float, str]:
        """The deal's win probability and where it came from (``history`` or ``stage probability``)."""
        for rate in self.rates:
            if rate.pipeline == deal.pipeline and rate.stage == deal.stage and rate.reached >= self.min_deals:
                return rate.rate, "history"
        return deal.probability / 100, "stage probability"

    def rows(self) -> list[dict[str, Any]]:
        """One row per pipeline and stage."""
        return [{**attrs.asdict(r), "rate": r.rate, "used": r.reached >= self.min_deals} for r in self.rates]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame(
            self.rows(), columns=["pipeline", "stage", "reached", "won", "rate", "used"]
        )


def estimate_win_rates(closed: Iterable[Opportunity], *, min_deals: int = 10) -> WinRates:
    """Stage-to-win rates from closed deals' stage histories (open deals are ignored).

    Args:
        closed: past deals; only won and lost ones count.
        min_deals: fewer closed deals through a stage than this and the stage probability is used.
    """
    reached: dict[tuple[str, str], list[int]] = {}
    for deal in closed:
        if deal.won is None:
            continue
        for stage in _stages_reached(deal):
            counts = reached.setdefault((deal.pipeline, stage), [0, 0])
            counts[0] += 1
            counts[1] += bool(deal.won)
    rates = tuple(
        StageWinRate(pipeline=p, stage=s, reached=n, won=w) for (p, s), (n, w) in sorted(reached.items())
    )
    return WinRates(rates=rates, min_deals=min_deals)


@attrs.frozen(kw_only=True)
class Slippage:
    """Observed slips in days (actual close minus expected close date) of past won deals."""

    days: tuple[int, ...] = (0,)

    @property
    def mean(self) -> float:
        """Average slip in days (positive: deals close late)."""
        return sum(self.days) / len(self.days)

    @property
    def late_share(self) -> float:
        """Share of deals that closed after their close date."""
        return sum(d > 0 for d in self.days) / len(self.days)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per observed slip (column ``days``) as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame({"days": list(self.days)})


def estimate_slippage(closed: Iterable[Opportunity]) -> Slippage:
    """Slips of the won deals that have a close date (no such deals: no slip)."""
    days = tuple(
        sorted(
            (d.closed_at.date() - d.close_date).days
            for d in closed
            if d.won and d.closed_at is not None and d.close_date is not None
        )
    )
    return Slippage(days=days or (0,))


@attrs.frozen(kw_only=True)
class SimulatedPeriod:
    """Simulated revenue of one period (or, with ``period`` None, of the whole horizon)."""

    period: ForecastPeriod | None
    p10: Money
    p50: Money
    p90: Money
    mean: Money

    def row(self) -> dict[str, Any]:
        """Plain values for tables and UIs."""
        return {
            "period": "horizon" if self.period is None else self.period.label,
            "period_start": None if self.period is None else self.period.start,
            "p10": self.p10.amount,
            "p50": self.p50.amount,
            "p90": self.p90.amount,
            "mean": self.mean.amount,
        }


@attrs.frozen(kw_only=True)
class PipelineSimulation:
    """P10/P50/P90 per period of the horizon, the horizon's total, and the inputs that drove them."""

    currency: str
    periods: tuple[SimulatedPeriod, ...]
    horizon_total: SimulatedPeriod
    beyond_horizon_mean: Money
    """Expected won revenue landing after the horizon (slipped or late deals)."""
    win_rates: WinRates
    slippage: Slippage
    deal_probabilities: tuple[tuple[str, float, str], ...]
    """(opportunity id, win probability, ``history`` or ``stage probability``) per simulated deal."""
    skipped: tuple[SkippedDeal, ...]
    simulations: int
    seed: int

    def period(self, period: ForecastPeriod) -> SimulatedPeriod | None:
        """The result for ``period`` (None outside the horizon)."""
        return next((p for p in self.periods if p.period == period), None)

    def rows(self) -> list[dict[str, Any]]:
        """One row per period, then the horizon's."""
        return [p.row() for p in (*self.periods, self.horizon_total)]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        return require("pandas", "pandas").DataFrame(self.rows())


def simulate_pipeline(
    open_deals: Iterable[Opportunity],
    history: Iterable[Opportunity] = (),
    *,
    now: datetime,
    unit: PeriodUnit = PeriodUnit.MONTH,
    horizon: int = 3,
    simulations: int = 10_000,
    seed: int = 0,
    min_deals: int = 10,
    currency: str | None = None,
) -> PipelineSimulation:
    """Simulate which open deals win and when, and report revenue quantiles per period.

    Args:
        open_deals: the pipeline now (closed deals among them are ignored).
        history: closed deals to learn stage-to-win rates and slippage from.
        now: today's period is the first of the horizon; overdue deals land no earlier.
        unit, horizon: months or quarters, and how many from now's on.
        simulations, seed: number of simulated futures and the random seed.
        min_deals: closed deals through a stage needed to trust its historical win rate.
        currency: simulate deals in this currency only; without it, mixed currencies are refused.

    Raises:
        ValidationError: bad arguments or mixed currencies.
        MissingExtra: without the ``analytics`` extra.
    """
    now = utc_datetime(now, "now")
    if horizon < 1 or simulations < 1:
        raise ValidationError("horizon", "horizon and simulations must be at least 1")
    deals = [d for d in open_deals if d.is_open]
    if currency is None:
        found = sorted({d.amount.currency for d in deals if d.amount is not None})
        if len(found) > 1:
            raise ValidationError("currency", f"the deals are in {', '.join(found)}: pass currency=")
        currency = found[0] if found else "EUR"
    check_currency(currency)
    past = list(history)
    win_rates = estimate_win_rates(past, min_deals=min_deals)
    slippage = estimate_slippage(past)

    placed: list[tuple[Opportunity, date, int]] = []
    skipped: list[SkippedDeal] = []
    scale = 10 ** minor_units(currency)
    for deal in deals:
        if deal.amount is None or deal.close_date is None or deal.amount.currency != currency:
            reason = (
                "has no amount"
                if deal.amount is None
                else f"is in {deal.amount.currency}, not {currency}"
                if deal.amount.currency != currency
                else "has no close date"
            )
            skipped.append(SkippedDeal(opportunity_id=deal.id, reason=reason))
            continue
        # Whole minor units keep sums exact (a certain pipeline's quantiles equal its sum).
        placed.append((deal, deal.close_date, int((deal.amount.amount * scale).to_integral_value())))

    np = require("numpy", "analytics")
    rng = np.random.default_rng(seed)
    today = np.datetime64(now.date(), "D")
    first = ForecastPeriod.of(now.date(), unit)
    probabilities = [win_rates.for_deal(d) for d, _, _ in placed]
    n = len(placed)
    p = np.array([prob for prob, _ in probabilities], dtype=float)
    amounts = np.array([minor for _, _, minor in placed], dtype=float)
    close = np.array([day for _, day, _ in placed], dtype="datetime64[D]")
    wins = rng.random((simulations, n)) < p
    slips = rng.choice(np.array(slippage.days, dtype="int64"), size=(simulations, n))
    landed = np.maximum(close + slips.astype("timedelta64[D]"), today)
    months = landed.astype("datetime64[M]").astype("int64") + 1970 * 12  # months since year 0
    offset = months // unit.months - first.index  # 0 = now's period
    in_horizon = wins & (offset < horizon)
    slots = np.where(in_horizon, np.arange(simulations)[:, None] * horizon + offset, 0)
    revenue = np.bincount(
        slots.ravel(), weights=(amounts * in_horizon).ravel(), minlength=simulations * horizon
    ).reshape(simulations, horizon)
    beyond = ((amounts * (wins & ~in_horizon)).sum(axis=1)).mean() if n else 0.0

    def money(minor: float) -> Money:
        return Money(Decimal(str(round(float(minor)))) / scale, currency)

    def summary(values: Any, period: ForecastPeriod | None) -> SimulatedPeriod:
        q10, q50, q90 = np.quantile(values, [0.1, 0.5, 0.9])
        return SimulatedPeriod(
            period=period, p10=money(q10), p50=money(q50), p90=money(q90), mean=money(values.mean())
        )

    periods = tuple(summary(revenue[:, k], first.shifted(k)) for k in range(horizon))
    return PipelineSimulation(
        currency=currency,
        periods=periods,
        horizon_total=summary(revenue.sum(axis=1), None),
        beyond_horizon_mean=money(beyond),
        win_rates=win_rates,
        slippage=slippage,
        deal_probabilities=tuple(
            (d.id, prob, source) for (d, _, _), (prob, source) in zip(placed, probabilities, strict=True)
        ),
        skipped=tuple(skipped),
        simulations=simulations,
        seed=seed,
    )
