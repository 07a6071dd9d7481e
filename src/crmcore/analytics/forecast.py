"""Pipeline forecast: open deals per period and owner, weighted and by forecast category, against quotas.

Pure and dependency-free: it reads `Opportunity` records and returns frozen rows. Amounts never mix
currencies: a forecast is in one currency, and deals in another are refused (or left out when the
caller names the currency to forecast).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id
from crmcore.money import Money, check_currency
from crmcore.pipeline.opportunity import ForecastCategory, Opportunity
from crmcore.validation import checked, instance_of, one_of, run_checks, tuple_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ForecastPeriod",
    "PeriodUnit",
    "PipelineForecast",
    "PipelineForecastRow",
    "Quota",
    "SkippedDeal",
    "pipeline_forecast",
]


class PeriodUnit(enum.Enum):
    """How close dates are grouped: calendar months or calendar quarters."""

    MONTH = "month"
    QUARTER = "quarter"

    @property
    def months(self) -> int:
        """Calendar months per period (1 or 3)."""
        return 1 if self is PeriodUnit.MONTH else 3


def _period_start(value: Any, path: str) -> date:
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise ValidationError(path, f"must be a date, not {type(value).__name__}")
    if value.day != 1:
        raise ValidationError(path, f"must be the first day of a month, got {value.isoformat()}")
    return value


@attrs.frozen(kw_only=True, order=True)
class ForecastPeriod:
    """A calendar month or quarter, starting on ``start`` (``ForecastPeriod.of(day, unit)`` finds it)."""

    start: date = checked(_period_start)
    unit: PeriodUnit = checked(one_of(PeriodUnit), default=PeriodUnit.MONTH)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.unit is PeriodUnit.QUARTER and (self.start.month - 1) % 3:
            raise ValidationError("start", f"a quarter starts in Jan, Apr, Jul or Oct, not {self.start}")

    @classmethod
    def of(cls, day: date, unit: PeriodUnit = PeriodUnit.MONTH) -> ForecastPeriod:
        """The period of ``unit`` that holds ``day``."""
        month = day.month - (day.month - 1) % unit.months
        return cls(start=date(day.year, month, 1), unit=unit)

    @property
    def index(self) -> int:
        """A running number (months or quarters since year 0): consecutive periods differ by 1."""
        months = self.start.year * 12 + self.start.month - 1
        return months // self.unit.months

    @classmethod
    def from_index(cls, index: int, unit: PeriodUnit = PeriodUnit.MONTH) -> ForecastPeriod:
        """The period whose `index` is ``index``."""
        year, month0 = divmod(index * unit.months, 12)
        return cls(start=date(year, month0 + 1, 1), unit=unit)

    def shifted(self, periods: int) -> ForecastPeriod:
        """The period ``periods`` later (earlier when negative)."""
        return ForecastPeriod.from_index(self.index + periods, self.unit)

    @property
    def end(self) -> date:
        """The first day after the period."""
        return self.shifted(1).start

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day < self.end

    @property
    def label(self) -> str:
        """``2025-03`` for a month, ``2025-Q1`` for a quarter."""
        if self.unit is PeriodUnit.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    def __str__(self) -> str:
        return self.label


@attrs.frozen(kw_only=True)
class Quota:
    """What ``owner`` should close in ``period``; the forecast compares won and committed deals to it."""

    owner: str = checked(check_id)
    period: ForecastPeriod = checked(instance_of(ForecastPeriod))
    amount: Money = checked(instance_of(Money))

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.amount.amount < 0:
            raise ValidationError("amount", "must not be negative")


def _ratio(part: Money, whole: Money | None) -> float | None:
    if whole is None or whole.amount == 0:
        return None
    return float(part.amount / whole.amount)


@attrs.frozen(kw_only=True)
class PipelineForecastRow:
    """One owner's (or, with ``owner`` None and ``is_total``, everyone's) forecast for one period.

    ``pipeline`` sums every open deal not omitted, ``best_case`` the best-case and commit deals,
    ``commit`` the commit deals, ``weighted`` each open deal's amount x probability; ``won`` sums
    the deals won in the period (by ``closed_at``, UTC). Amounts are rounded to minor units.
    """

    period: ForecastPeriod
    owner: str | None
    is_total: bool = False
    currency: str
    open_deals: int
    won_deals: int
    pipeline: Money
    best_case: Money
    commit: Money
    weighted: Money
    won: Money
    quota: Money | None = None

    @property
    def forecast_call(self) -> Money:
        """Won plus commit: what the owner calls for the period."""
        return self.won + self.commit

    @property
    def attainment(self) -> float | None:
        """Won / quota (None without a quota or with a zero quota)."""
        return _ratio(self.won, self.quota)

    @property
    def call_attainment(self) -> float | None:
        """(Won + commit) / quota."""
        return _ratio(self.forecast_call, self.quota)

    @property
    def coverage(self) -> float | None:
        """Open pipeline / quota still to close (quota - won); None when nothing remains to close."""
        if self.quota is None or self.quota <= self.won:
            return None
        return float(self.pipeline.amount / (self.quota - self.won).amount)

    def row(self) -> dict[str, Any]:
        """Plain values for tables and UIs (amounts as Decimal, the period as its label)."""
        return {
            "period": self.period.label,
            "period_start": self.period.start,
            "owner": self.owner,
            "is_total": self.is_total,
            "currency": self.currency,
            "open_deals": self.open_deals,
            "won_deals": self.won_deals,
            "pipeline": self.pipeline.amount,
            "best_case": self.best_case.amount,
            "commit": self.commit.amount,
            "weighted": self.weighted.amount,
            "won": self.won.amount,
            "forecast_call": self.forecast_call.amount,
            "quota": None if self.quota is None else self.quota.amount,
            "attainment": self.attainment,
            "call_attainment": self.call_attainment,
            "coverage": self.coverage,
        }


@attrs.frozen(kw_only=True)
class SkippedDeal:
    """A deal the forecast could not place, and why (no amount, no close date, another currency)."""

    opportunity_id: str
    reason: str


@attrs.frozen(kw_only=True)
class PipelineForecast:
    """Forecast rows per period and owner (``owner_rows``), period ``totals``, and the deals left out."""

    currency: str
    unit: PeriodUnit
    owner_rows: tuple[PipelineForecastRow, ...] = checked(tuple_of(instance_of(PipelineForecastRow)))
    totals: tuple[PipelineForecastRow, ...] = checked(tuple_of(instance_of(PipelineForecastRow)))
    skipped: tuple[SkippedDeal, ...] = checked(tuple_of(instance_of(SkippedDeal)), default=())

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def row_for(self, period: ForecastPeriod, owner: str | None) -> PipelineForecastRow | None:
        """The row of ``owner`` in ``period`` (None when the owner has nothing there)."""
        return next((r for r in self.owner_rows if r.period == period and r.owner == owner), None)

    def total_for(self, period: ForecastPeriod) -> PipelineForecastRow | None:
        """All owners together in ``period``."""
        return next((r for r in self.totals if r.period == period), None)

    def rows(self) -> list[dict[str, Any]]:
        """Owner rows then totals, each as plain values, ordered by period."""
        rows = sorted((*self.owner_rows, *self.totals), key=lambda r: (r.period, r.is_total, r.owner or ""))
        return [r.row() for r in rows]

    def to_dataframe(self) -> pd.DataFrame:
        """`rows` as a pandas DataFrame (needs the ``pandas`` extra)."""
        from crmcore.analytics._extras import require

        pandas = require("pandas", "pandas")
        return pandas.DataFrame(self.rows())


@attrs.define
class _Sums:
    currency: str
    open_deals: int = 0
    won_deals: int = 0
    pipeline: Decimal = Decimal(0)
    best_case: Decimal = Decimal(0)
    commit: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    won: Decimal = Decimal(0)

    def add(self, deal: Opportunity, amount: Decimal) -> None:
        if deal.won is True:
            self.won_deals += 1
            self.won += amount
            return
        self.open_deals += 1
        category = deal.forecast_category
        self.pipeline += amount
        self.weighted += amount * deal.probability / 100
        if category in (ForecastCategory.BEST_CASE, ForecastCategory.COMMIT):
            self.best_case += amount
        if category is ForecastCategory.COMMIT:
            self.commit += amount

    def to_row(
        self, period: ForecastPeriod, owner: str | None, quota: Money | None, *, total: bool = False
    ) -> PipelineForecastRow:
        def money(value: Decimal) -> Money:
            return Money(value, self.currency).rounded()

        return PipelineForecastRow(
            period=period,
            owner=owner,
            is_total=total,
            currency=self.currency,
            open_deals=self.open_deals,
            won_deals=self.won_deals,
            pipeline=money(self.pipeline),
            best_case=money(self.best_case),
            commit=money(self.commit),
            weighted=money(self.weighted),
            won=money(self.won),
            quota=quota,
        )


def _single_currency(deals: Sequence[Opportunity], currency: str | None) -> str:
    if currency is not None:
        return check_currency(currency)
    found = sorted({d.amount.currency for d in deals if d.amount is not None})
    if len(found) > 1:
        raise ValidationError(
            "currency",
            f"the deals are in {', '.join(found)}: forecast one currency at a time (pass currency=)",
        )
    if not found:
        raise ValidationError(
            "currency", "no deal has an amount: pass currency= to forecast an empty pipeline"
        )
    return found[0]


def pipeline_forecast(
    opportunities: Iterable[Opportunity],
    *,
    unit: PeriodUnit = PeriodUnit.MONTH,
    quotas: Iterable[Quota] = (),
    currency: str | None = None,
) -> PipelineForecast:
    """Sum deals per period of their close date and per owner, weighted and by forecast category.

    Open deals count in ``pipeline`` (unless their category is ``omitted``), ``best_case`` and
    ``commit`` by category, and ``weighted`` by probability; won deals count in ``won`` in the
    period they were won (``closed_at``, UTC), so ``won`` + ``commit`` can be held against the
    quota; lost deals are ignored. Open deals without an amount or a close date are listed in ``skipped``.

    Args:
        opportunities: open and won deals (lost ones are ignored).
        unit: months or quarters.
        quotas: per owner and period; a quota in another currency or unit is refused.
        currency: forecast only deals in this currency (others go to ``skipped``); without it,
            deals in several currencies are refused.

    Raises:
        ValidationError: mixed currencies without ``currency``, or quotas that do not fit.
    """
    deals = [d for d in opportunities if d.won is not False]
    code = _single_currency(deals, currency)
    quota_of: dict[tuple[ForecastPeriod, str], Money] = {}
    errors: list[FieldError] = []
    for i, quota in enumerate(quotas):
        key = (quota.period, quota.owner)
        if quota.amount.currency != code:
            errors.append(FieldError(f"quotas[{i}].amount", f"is in {quota.amount.currency}, not {code}"))
        elif quota.period.unit is not unit:
            errors.append(
                FieldError(f"quotas[{i}].period", f"is a {quota.period.unit.value}, not a {unit.value}")
            )
        elif key in quota_of:
            errors.append(FieldError(f"quotas[{i}]", f"repeats {quota.owner}'s quota for {quota.period}"))
        else:
            quota_of[key] = quota.amount
    if errors:
        raise ValidationError.from_errors(errors)

    sums: dict[tuple[ForecastPeriod, str | None], _Sums] = {}
    totals: dict[ForecastPeriod, _Sums] = {}
    skipped: list[SkippedDeal] = []
    for deal in deals:
        if deal.won is None and deal.forecast_category is ForecastCategory.OMITTED:
            continue
        day = deal.closed_at.date() if deal.closed_at is not None else deal.close_date
        if deal.amount is None or deal.amount.currency != code or day is None:
            reason = (
                "has no amount"
                if deal.amount is None
                else f"is in {deal.amount.currency}, not {code}"
                if deal.amount.currency != code
                else "has no close date"
            )
            skipped.append(SkippedDeal(opportunity_id=deal.id, reason=reason))
            continue
        period = ForecastPeriod.of(day, unit)
        sums.setdefault((period, deal.owner), _Sums(code)).add(deal, deal.amount.amount)
        totals.setdefault(period, _Sums(code)).add(deal, deal.amount.amount)
    # Owners with a quota but no deals still get a row: a zero forecast against a quota matters.
    for period, owner in quota_of:
        sums.setdefault((period, owner), _Sums(code))
        totals.setdefault(period, _Sums(code))

    quota_totals: dict[ForecastPeriod, Money] = {}
    for (period, _), amount in quota_of.items():
        quota_totals[period] = quota_totals.get(period, Money.zero(code)) + amount
    owner_rows = tuple(
        s.to_row(period, owner, quota_of.get((period, owner)) if owner is not None else None)
        for (period, owner), s in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    )
    total_rows = tuple(
        s.to_row(period, None, quota_totals.get(period), total=True) for period, s in sorted(totals.items())
    )
    return PipelineForecast(
        currency=code, unit=unit, owner_rows=owner_rows, totals=total_rows, skipped=tuple(skipped)
    )
