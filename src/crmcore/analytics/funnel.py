"""Funnel and velocity from deals' stage history: conversion, win rate, deal size, cycle, time in stage.

`funnel` reads each deal's ``stage_history`` (never counters), so the figures can be recomputed for
any past set of deals. A deal *reached* a stage when it was ever in it or in a later stage of the
given order (skipping a stage counts as passing it), so counts never rise down the funnel. Results
are frozen records; `FunnelReport.rows` gives flat rows for UIs and `FunnelReport.to_dataframe`
a pandas DataFrame (``pandas`` extra, imported only then).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import attrs

from crmcore.analytics._extras import require
from crmcore.errors import FieldError, ValidationError
from crmcore.money import Money
from crmcore.pipeline.opportunity import Opportunity
from crmcore.validation import utc_datetime

__all__ = [
    "DealSize",
    "Durations",
    "FunnelMetrics",
    "FunnelReport",
    "StageConversion",
    "StageTime",
    "funnel",
]

_DAY = timedelta(days=1)
GroupBy = Literal["owner", "source", "period"] | Callable[[Opportunity], str | None]
_GROUPS = ("owner", "source", "period")
_PERIODS = ("week", "month", "quarter", "year")
_PERIOD_OF = ("created", "closed")
_TABLES = ("summary", "conversion", "deal_size", "time_in_stage")
NO_GROUP = "(none)"
"""The group of deals without a value for the grouping (no owner, no source, not closed yet)."""


@attrs.frozen(kw_only=True)
class StageConversion:
    """Of the deals that reached ``from_stage``, how many reached ``to_stage`` (the next one)."""

    from_stage: str
    to_stage: str
    reached_from: int
    reached_to: int

    @property
    def rate(self) -> float | None:
        """``reached_to / reached_from``; None when no deal reached ``from_stage``."""
        return None if not self.reached_from else self.reached_to / self.reached_from


@attrs.frozen(kw_only=True)
class DealSize:
    """Won deals with an amount in one ``currency``: how many, their total and average (rounded)."""

    currency: str
    deals: int
    total: Money
    average: Money


@attrs.frozen(kw_only=True)
class Durations:
    """How many durations, and their mean and median in days (None when there are none)."""

    count: int = 0
    mean_days: float | None = None
    median_days: float | None = None

    @classmethod
    def of(cls, days: Sequence[float]) -> Durations:
        """The summary of ``days``."""
        if not days:
            return cls()
        return cls(count=len(days), mean_days=statistics.fmean(days), median_days=statistics.median(days))


@attrs.frozen(kw_only=True)
class StageTime:
    """Time deals spent in ``stage``: finished stays from the history plus ``current`` open deals'
    time so far (to ``now``), together in ``durations``."""

    stage: str
    current: int
    durations: Durations


@attrs.frozen(kw_only=True)
class FunnelMetrics:
    """Funnel and velocity of one group of deals (``key``; ``"all"`` for the whole set).

    ``sales_cycle`` covers won deals, from creation (or first stage entry) to close.
    """

    key: str
    deals: int
    open: int
    won: int
    lost: int
    conversions: tuple[StageConversion, ...]
    deal_sizes: tuple[DealSize, ...]
    sales_cycle: Durations
    time_in_stage: tuple[StageTime, ...]

    @property
    def win_rate(self) -> float | None:
        """Won / (won + lost); None before any deal closed."""
        closed = self.won + self.lost
        return None if not closed else self.won / closed

    @property
    def reached(self) -> dict[str, int]:
        """How many deals reached each stage of the funnel, in order."""
        if not self.conversions:
            return {}
        out = {c.from_stage: c.reached_from for c in self.conversions}
        last = self.conversions[-1]
        out[last.to_stage] = last.reached_to
        return out


@attrs.frozen(kw_only=True)
class FunnelReport:
    """`funnel`'s result: ``total`` over every deal, and ``groups`` by ``grouping`` (empty without)."""

    stages: tuple[str, ...]
    grouping: str
    total: FunnelMetrics
    groups: tuple[FunnelMetrics, ...] = ()

    def group(self, key: str) -> FunnelMetrics:
        """The metrics of group ``key``.

        Raises:
            ValidationError: no such group (the message lists the groups).
        """
        for metrics in self.groups:
            if metrics.key == key:
                return metrics
        valid = ", ".join(repr(m.key) for m in self.groups) or "none"
        raise ValidationError("key", f"{key!r} is not a group; groups: {valid}")

    def rows(self, table: str = "summary") -> list[dict[str, Any]]:
        """Flat rows for UIs, one table at a time, for ``total`` then each group.

        Tables: ``summary`` (one row per group), ``conversion`` (per stage pair), ``deal_size``
        (per currency), ``time_in_stage`` (per stage).

        Raises:
            ValidationError: an unknown table (the message lists the valid ones).
        """
        if table not in _TABLES:
            raise ValidationError("table", f"{table!r} is not one of {', '.join(map(repr, _TABLES))}")
        out: list[dict[str, Any]] = []
        for m in (self.total, *self.groups):
            if table == "summary":
                out.append(
                    {
                        "group": m.key,
                        "deals": m.deals,
                        "open": m.open,
                        "won": m.won,
                        "lost": m.lost,
                        "win_rate": m.win_rate,
                        "cycle_deals": m.sales_cycle.count,
                        "cycle_mean_days": m.sales_cycle.mean_days,
                        "cycle_median_days": m.sales_cycle.median_days,
                    }
                )
            elif table == "conversion":
                out.extend(
                    {
                        "group": m.key,
                        "from_stage": c.from_stage,
                        "to_stage": c.to_stage,
                        "reached_from": c.reached_from,
                        "reached_to": c.reached_to,
                        "rate": c.rate,
                    }
                    for c in m.conversions
                )
            elif table == "deal_size":
                out.extend(
                    {
                        "group": m.key,
                        "currency": d.currency,
                        "deals": d.deals,
                        "total": d.total.amount,
                        "average": d.average.amount,
                    }
                    for d in m.deal_sizes
                )
            else:
                out.extend(
                    {
                        "group": m.key,
                        "stage": s.stage,
                        "stays": s.durations.count,
                        "current": s.current,
                        "mean_days": s.durations.mean_days,
                        "median_days": s.durations.median_days,
                    }
                    for s in m.time_in_stage
                )
        return out

    def to_dataframe(self, table: str = "summary") -> Any:
        """`rows` of ``table`` as a pandas DataFrame.

        Raises:
            CrmError: pandas is not installed (``pip install "crmcore[pandas]"``).
            ValidationError: an unknown table.
        """
        return require("pandas", "pandas").DataFrame(self.rows(table))


def _entered(deal: Opportunity) -> datetime | None:
    """When the deal entered its first stage: created_at, else derived from the first change."""
    if deal.created_at is not None:
        return deal.created_at
    if deal.stage_history:
        first = deal.stage_history[0]
        return first.at - first.time_in_stage
    return deal.stage_entered_at


def _visited(deal: Opportunity) -> list[str]:
    history = deal.stage_history
    if not history:
        return [deal.stage]
    return [history[0].from_stage, *(change.to_stage for change in history)]


def _period(moment: datetime | None, period: str) -> str | None:
    if moment is None:
        return None
    if period == "year":
        return f"{moment.year}"
    if period == "quarter":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    if period == "month":
        return f"{moment.year}-{moment.month:02d}"
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def _metrics(key: str, deals: Sequence[Opportunity], stages: tuple[str, ...], now: datetime) -> FunnelMetrics:
    index = {name: i for i, name in enumerate(stages)}
    furthest = [max((index[s] for s in _visited(d) if s in index), default=-1) for d in deals]
    reached = [sum(1 for f in furthest if f >= k) for k in range(len(stages))]
    conversions = tuple(
        StageConversion(
            from_stage=stages[k], to_stage=stages[k + 1], reached_from=reached[k], reached_to=reached[k + 1]
        )
        for k in range(len(stages) - 1)
    )
    sizes: dict[str, list[Money]] = {}
    cycle: list[float] = []
    stays: dict[str, list[float]] = {name: [] for name in stages}
    current: dict[str, int] = dict.fromkeys(stages, 0)
    for deal in deals:
        if deal.won is True:
            if deal.amount is not None:
                sizes.setdefault(deal.amount.currency, []).append(deal.amount)
            start = _entered(deal)
            if start is not None and deal.closed_at is not None:
                cycle.append((deal.closed_at - start) / _DAY)
        for change in deal.stage_history:
            if change.from_stage in stays:
                stays[change.from_stage].append(change.time_in_stage / _DAY)
        if deal.is_open and deal.stage in stays:
            since = deal.stage_entered_at
            if since is None:
                since = deal.stage_history[-1].at if deal.stage_history else deal.created_at
            if since is not None:
                stays[deal.stage].append(max((now - since) / _DAY, 0.0))
                current[deal.stage] += 1
    deal_sizes = []
    for currency, amounts in sorted(sizes.items()):
        total = Money(sum((m.amount for m in amounts), Decimal(0)), currency)
        average = Money(total.amount / len(amounts), currency).rounded()
        deal_sizes.append(DealSize(currency=currency, deals=len(amounts), total=total, average=average))
    return FunnelMetrics(
        key=key,
        deals=len(deals),
        open=sum(1 for d in deals if d.won is None),
        won=sum(1 for d in deals if d.won is True),
        lost=sum(1 for d in deals if d.won is False),
        conversions=conversions,
        deal_sizes=tuple(deal_sizes),
        sales_cycle=Durations.of(cycle),
        time_in_stage=tuple(
            StageTime(stage=name, current=current[name], durations=Durations.of(stays[name]))
            for name in stages
        ),
    )


def funnel(
    opportunities: Iterable[Opportunity],
    stages: Sequence[str],
    now: datetime,
    *,
    group_by: GroupBy | None = None,
    period: str = "month",
    period_of: str = "created",
) -> FunnelReport:
    """Funnel and velocity metrics of ``opportunities`` through ``stages``, overall and per group.

    Args:
        opportunities: the deals (open and closed) to measure.
        stages: the funnel's stages in order: a pipeline's open stages, optionally ending with its
            won stage. Stages not listed (lost, say) are ignored for conversion and time in stage.
        now: the moment open deals' time in their current stage is measured to (aware).
        group_by: ``"owner"``, ``"source"``, ``"period"`` or a function of the deal giving its group
            (a team from the owner, say); deals without a value go to ``"(none)"``.
        period: ``"week"`` (ISO), ``"month"``, ``"quarter"`` or ``"year"``, in UTC, for ``"period"``.
        period_of: ``"created"`` (creation, or first stage entry) or ``"closed"`` (close time; open
            deals go to ``"(none)"``) for ``"period"``.

    Raises:
        ValidationError: fewer than two or repeated stages, a naive ``now``, an unknown grouping,
            period or period_of (every problem at once).
    """
    errors: list[FieldError] = []
    names = tuple(stages)
    if len(names) < 2:
        errors.append(FieldError("stages", "must list at least two stages"))
    if len(set(names)) != len(names):
        errors.append(FieldError("stages", "must not repeat a stage"))
    try:
        now = utc_datetime(now, "now")
    except ValidationError as exc:
        errors.extend(exc.errors)
    if isinstance(group_by, str) and group_by not in _GROUPS:
        errors.append(FieldError("group_by", f"{group_by!r} is not one of {', '.join(map(repr, _GROUPS))}"))
    if period not in _PERIODS:
        errors.append(FieldError("period", f"{period!r} is not one of {', '.join(map(repr, _PERIODS))}"))
    if period_of not in _PERIOD_OF:
        errors.append(
            FieldError("period_of", f"{period_of!r} is not one of {', '.join(map(repr, _PERIOD_OF))}")
        )
    if errors:
        raise ValidationError.from_errors(errors)
    deals = list(opportunities)
    total = _metrics("all", deals, names, now)
    if group_by is None:
        return FunnelReport(stages=names, grouping="none", total=total)
    key_of: Callable[[Opportunity], str | None]
    if group_by == "owner":
        key_of, grouping = (lambda d: d.owner), "owner"
    elif group_by == "source":
        key_of, grouping = (lambda d: d.source or None), "source"
    elif group_by == "period":
        if period_of == "created":
            key_of = lambda d: _period(_entered(d), period)  # noqa: E731
        else:
            key_of = lambda d: _period(d.closed_at, period)  # noqa: E731
        grouping = f"{period_of} {period}"
    else:
        assert not isinstance(group_by, str)
        key_of, grouping = group_by, "custom"
    members: dict[str, list[Opportunity]] = {}
    for deal in deals:
        members.setdefault(key_of(deal) or NO_GROUP, []).append(deal)
    groups = tuple(_metrics(key, members[key], names, now) for key in sorted(members))
    return FunnelReport(stages=names, grouping=grouping, total=total, groups=groups)
