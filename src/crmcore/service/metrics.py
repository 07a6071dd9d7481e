"""Service metrics: volumes, response and resolution times, SLA attainment, reopens, CSAT and backlog.

`service_metrics` turns tickets and surveys into one `ServiceMetrics` report as of ``now``: a
`PeriodMetrics` per (period, group), one over everything (``total``), and the open backlog per
group. Pure: the host (or `service_metrics_from_store`) loads the objects; nothing reads a clock.

Where a measurement lands, stated once (docs/service_metrics.md explains it with examples):

- created: the period of ``created_at``;
- first response time: the period of the first response (created to first public agent reply);
- solved, resolution time, reopens, resolved-within share: the period of the (last) solve, for
  tickets solved as of ``now`` (a ticket reopened and not solved again is not solved);
- SLA attainment: the period in which each clock stopped (met or breached); running clocks
  do not count, even when already late;
- CSAT: the period in which the survey was sent (so response rate and scores describe the same
  surveys); a survey answered after ``now`` counts as unanswered;
- backlog: tickets open at ``now``, by wall-clock age since ``created_at``.

Events after ``now`` are ignored (status changes are replayed up to ``now``), as are events outside
``[since, until)``; the backlog is always the snapshot at ``now``.
"""

from __future__ import annotations

import enum
import statistics
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.conditions import Any as AnyOf
from crmcore.conditions import Condition, Field
from crmcore.errors import FieldError, ValidationError
from crmcore.service.calendar import BusinessCalendar
from crmcore.service.sla import SlaMetric, SlaPolicies, SlaPolicy, SlaState, SlaTarget, evaluate_policy
from crmcore.service.ticket import SatisfactionSurvey, Ticket, current_statuses
from crmcore.validation import JsonValue, utc_datetime

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

__all__ = [
    "BacklogMetrics",
    "CsatStats",
    "DurationStats",
    "GROUP_FIELDS",
    "MetricsPeriod",
    "PeriodMetrics",
    "ServiceMetrics",
    "SlaAttainment",
    "period_of",
    "service_metrics",
    "service_metrics_from_store",
]

_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_MEASURE_MINUTES = 10 * 365 * 24 * 60
"""The longest SLA target allowed: used to measure clocks without ever stopping at a target."""


class MetricsPeriod(enum.Enum):
    """How events are bucketed in time: local days, ISO weeks (from Monday), months or quarters."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


def _enum_value(value: enum.Enum | None) -> str | None:
    return None if value is None else str(value.value)


_GROUPERS: dict[str, Callable[[Ticket], str | None]] = {
    "assignee": lambda t: t.assignee,
    "channel": lambda t: _enum_value(t.channel),
    "priority": lambda t: _enum_value(t.priority),
    "team": lambda t: t.team,
    "type": lambda t: _enum_value(t.type),
}

GROUP_FIELDS: tuple[str, ...] = tuple(sorted(_GROUPERS))
"""The ticket fields metrics can be grouped by (``group_by``); enums group by their value."""


# --- results ----------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _seconds(value: timedelta | None) -> int | float | None:
    if value is None:
        return None
    micros = value // _US
    whole, rest = divmod(micros, 1_000_000)
    return whole if rest == 0 else micros / 1_000_000


@attrs.frozen(kw_only=True)
class DurationStats:
    """Durations of ``count`` tickets: median, 90th percentile and mean (all None when there are none).

    The 90th percentile interpolates between the two nearest values (`statistics.quantiles`,
    inclusive method); with one value it is that value.
    """

    count: int = 0
    median: timedelta | None = None
    p90: timedelta | None = None
    mean: timedelta | None = None

    @classmethod
    def of(cls, micros: Sequence[int]) -> DurationStats:
        """The statistics of durations given in microseconds."""
        if not micros:
            return cls()
        p90 = statistics.quantiles(micros, n=10, method="inclusive")[-1] if len(micros) > 1 else micros[0]
        return cls(
            count=len(micros),
            median=timedelta(microseconds=round(statistics.median(micros))),
            p90=timedelta(microseconds=round(p90)),
            mean=timedelta(microseconds=round(sum(micros) / len(micros))),
        )

    def as_row(self, prefix: str) -> dict[str, JsonValue]:
        """``{prefix}_count``, and median, p90, mean in seconds (``{prefix}_median_seconds``...)."""
        return {
            f"{prefix}_count": self.count,
            f"{prefix}_median_seconds": _seconds(self.median),
            f"{prefix}_p90_seconds": _seconds(self.p90),
            f"{prefix}_mean_seconds": _seconds(self.mean),
        }


@attrs.frozen(kw_only=True)
class SlaAttainment:
    """Finished SLA clocks of one metric: how many stopped within their target and how many late."""

    metric: SlaMetric
    met: int = 0
    breached: int = 0

    @property
    def rate(self) -> float | None:
        """``met / (met + breached)``; None when no clock finished."""
        return _ratio(self.met, self.met + self.breached)


@attrs.frozen(kw_only=True)
class CsatStats:
    """Satisfaction surveys sent, answered and their scores (``distribution[i]``: answers of score i+1)."""

    sent: int = 0
    answered: int = 0
    distribution: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def response_rate(self) -> float | None:
        """Answered / sent; None when none was sent."""
        return _ratio(self.answered, self.sent)

    @property
    def average(self) -> float | None:
        """The mean score of the answers (1-5); None without answers."""
        total = sum(score * n for score, n in enumerate(self.distribution, start=1))
        return None if self.answered == 0 else total / self.answered

    @property
    def satisfied(self) -> float | None:
        """CSAT: the share of answers scoring 4 or 5; None without answers."""
        return _ratio(self.distribution[3] + self.distribution[4], self.answered)


def _share(count: int | None, whole: int) -> float | None:
    return None if count is None else _ratio(count, whole)


@attrs.frozen(kw_only=True)
class PeriodMetrics:
    """The metrics of one period and group (see the module docstring for what lands where).

    ``period`` is a label (``2026-03-02``, ``2026-W10``, ``2026-03``, ``2026-Q1``) and ``start``/``end``
    the local dates it spans (end excluded); all three are None for a report's ``total``. ``group``
    holds the values of the report's ``group_by`` fields, in order (empty for the total).
    ``*_business`` durations are business time (see `service_metrics`), the others wall clock.
    ``responded_within``/``resolved_within`` count tickets within the report's thresholds (None
    without a threshold), out of those with a business time measured.
    """

    period: str | None
    start: date | None
    end: date | None
    group: tuple[str | None, ...] = ()
    created: int = 0
    solved: int = 0
    reopened: int = 0
    first_response: DurationStats = DurationStats()
    first_response_business: DurationStats = DurationStats()
    resolution: DurationStats = DurationStats()
    resolution_business: DurationStats = DurationStats()
    responded_within: int | None = None
    resolved_within: int | None = None
    sla: tuple[SlaAttainment, ...] = ()
    csat: CsatStats = CsatStats()

    @property
    def reopen_rate(self) -> float | None:
        """Solved tickets that were reopened at least once / solved tickets; None when none was solved."""
        return _ratio(self.reopened, self.solved)

    @property
    def responded_within_rate(self) -> float | None:
        """The share of first responses within the threshold (of those measured in business time)."""
        return _share(self.responded_within, self.first_response_business.count)

    @property
    def resolved_within_rate(self) -> float | None:
        """The share of solved tickets resolved within the threshold (of those measured in business time)."""
        return _share(self.resolved_within, self.resolution_business.count)

    def attainment(self, metric: SlaMetric | str) -> SlaAttainment | None:
        """The SLA attainment of ``metric``, None if the report had no policies."""
        wanted = SlaMetric(metric)
        return next((a for a in self.sla if a.metric is wanted), None)

    def as_row(self, group_by: Sequence[str] = ()) -> dict[str, JsonValue]:
        """One flat JSON-ready dict: group fields by name, durations in seconds, rates as 0-1 floats."""
        row: dict[str, JsonValue] = {
            "period": self.period,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }
        row.update(zip(group_by, self.group, strict=False))
        row.update(created=self.created, solved=self.solved, reopened=self.reopened)
        row["reopen_rate"] = self.reopen_rate
        row.update(self.first_response.as_row("first_response"))
        row.update(self.first_response_business.as_row("first_response_business"))
        row.update(self.resolution.as_row("resolution"))
        row.update(self.resolution_business.as_row("resolution_business"))
        row.update(
            responded_within=self.responded_within,
            responded_within_rate=self.responded_within_rate,
            resolved_within=self.resolved_within,
            resolved_within_rate=self.resolved_within_rate,
        )
        for a in self.sla:
            name = f"sla_{a.metric.value}"
            row.update({f"{name}_met": a.met, f"{name}_breached": a.breached, f"{name}_rate": a.rate})
        csat = self.csat
        row.update(csat_sent=csat.sent, csat_answered=csat.answered, csat_response_rate=csat.response_rate)
        row.update(csat_average=csat.average, csat_satisfied=csat.satisfied)
        row.update({f"csat_{score}": n for score, n in enumerate(csat.distribution, start=1)})
        return row


@attrs.frozen(kw_only=True)
class BacklogMetrics:
    """Tickets open at the report's ``now`` in one group, by wall-clock age since creation.

    Buckets: under a day, 1 to 3 days, 3 to 7 days, 7 days and more (each lower bound included).
    """

    group: tuple[str | None, ...] = ()
    open: int = 0
    under_1d: int = 0
    from_1d_to_3d: int = 0
    from_3d_to_7d: int = 0
    over_7d: int = 0
    oldest_age: timedelta | None = None
    oldest_ticket: str | None = None

    def as_row(self, group_by: Sequence[str] = ()) -> dict[str, JsonValue]:
        """One flat JSON-ready dict (the oldest age in seconds)."""
        row: dict[str, JsonValue] = dict(zip(group_by, self.group, strict=False))
        row.update(
            open=self.open,
            under_1d=self.under_1d,
            from_1d_to_3d=self.from_1d_to_3d,
            from_3d_to_7d=self.from_3d_to_7d,
            over_7d=self.over_7d,
            oldest_age_seconds=_seconds(self.oldest_age),
            oldest_ticket=self.oldest_ticket,
        )
        return row


@attrs.frozen(kw_only=True)
class ServiceMetrics:
    """A service metrics report as of ``at``: ``periods`` per (period, group), sorted by period then
    group (only those with something in them), their ``total``, and the ``backlog`` per group with
    its ``backlog_total``. Round-trips through `crmcore.serialization`."""

    at: datetime
    period: MetricsPeriod
    timezone: str
    group_by: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    response_within: timedelta | None = None
    resolution_within: timedelta | None = None
    periods: tuple[PeriodMetrics, ...] = ()
    total: PeriodMetrics = PeriodMetrics(period=None, start=None, end=None)
    backlog: tuple[BacklogMetrics, ...] = ()
    backlog_total: BacklogMetrics = BacklogMetrics()

    def rows(self) -> list[dict[str, JsonValue]]:
        """One flat JSON-ready dict per period and group (``pandas.DataFrame(report.rows())``)."""
        return [p.as_row(self.group_by) for p in self.periods]

    def backlog_rows(self) -> list[dict[str, JsonValue]]:
        """One flat JSON-ready dict per group of the backlog."""
        return [b.as_row(self.group_by) for b in self.backlog]

    def to_text(self) -> str:
        """Two aligned plain-text tables (periods with their total, then the backlog) for reports."""
        business = bool(self.total.first_response_business.count or self.total.resolution_business.count)
        kind = "business" if business else "wall clock"
        threshold = self.resolution_within
        heads = [
            "period",
            *self.group_by,
            "created",
            "solved",
            "1st resp med",
            "resol med",
            "resol p90",
            *([f"in {_fmt_limit(threshold)}"] if threshold is not None else []),
            "reopen",
            "csat avg",
            "csat",
        ]

        def line(p: PeriodMetrics, label: str) -> list[str]:
            first = p.first_response_business if business else p.first_response
            resolution = p.resolution_business if business else p.resolution
            group = [_cell(v) for v in p.group] or ["all"] * len(self.group_by)
            return [
                label,
                *group,
                str(p.created),
                str(p.solved),
                _fmt(first.median),
                _fmt(resolution.median),
                _fmt(resolution.p90),
                *([_pct(p.resolved_within_rate)] if threshold is not None else []),
                _pct(p.reopen_rate),
                "-" if p.csat.average is None else f"{p.csat.average:.2f}",
                _pct(p.csat.satisfied),
            ]

        body = [line(p, p.period or "") for p in self.periods]
        body.append(line(self.total, "total"))
        out = [f"Service metrics per {self.period.value} ({self.timezone}), durations in {kind} time"]
        out += _table(heads, body, "l" * (1 + len(self.group_by)))
        out.append("")
        out.append(f"Backlog at {self.at.isoformat(timespec='minutes')} (wall-clock age)")
        back_heads = [*(self.group_by or ("group",)), "open", "<1d", "1-3d", "3-7d", ">7d", "oldest"]
        back = [
            [
                *([_cell(v) for v in b.group] or ["all"] * max(1, len(self.group_by))),
                str(b.open),
                str(b.under_1d),
                str(b.from_1d_to_3d),
                str(b.from_3d_to_7d),
                str(b.over_7d),
                _fmt(b.oldest_age),
            ]
            for b in (*self.backlog, self.backlog_total)
            if b is self.backlog_total or self.group_by
        ]
        out += _table(back_heads, back, "l" * max(1, len(self.group_by)))
        return "\n".join(out)


def _cell(value: str | None) -> str:
    return "(none)" if value is None else value


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt(value: timedelta | None) -> str:
    if value is None:
        return "-"
    minutes = round(value / timedelta(minutes=1))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def _fmt_limit(value: timedelta) -> str:
    """A threshold in whole hours when it is one (``24h``), else as `_fmt`."""
    return f"{value // timedelta(hours=1)}h" if value % timedelta(hours=1) == timedelta(0) else _fmt(value)


def _table(heads: Sequence[str], body: Sequence[Sequence[str]], left: str) -> list[str]:
    """Aligned rows; the first ``len(left)`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in (heads, *body)) for i in range(len(heads))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < len(left) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(heads), "  ".join("-" * w for w in widths), *(fmt(r) for r in body)]


# --- periods ----------------------------------------------------------------------------------


def _period_start(day: date, period: MetricsPeriod) -> date:
    if period is MetricsPeriod.DAY:
        return day
    if period is MetricsPeriod.WEEK:
        return day - timedelta(days=day.weekday())
    if period is MetricsPeriod.MONTH:
        return day.replace(day=1)
    return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)


def _period_end(start: date, period: MetricsPeriod) -> date:
    if period is MetricsPeriod.DAY:
        return start + timedelta(days=1)
    if period is MetricsPeriod.WEEK:
        return start + timedelta(days=7)
    months = 1 if period is MetricsPeriod.MONTH else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def _label(start: date, period: MetricsPeriod) -> str:
    if period is MetricsPeriod.DAY:
        return start.isoformat()
    if period is MetricsPeriod.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period is MetricsPeriod.MONTH:
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def _check_period(value: Any, path: str = "period") -> MetricsPeriod:
    try:
        return MetricsPeriod(value)
    except ValueError:
        valid = ", ".join(repr(p.value) for p in MetricsPeriod)
        raise ValidationError(path, f"{value!r} is not a period; use one of {valid}") from None


def _check_zone(value: Any, path: str = "timezone") -> tuple[str, tzinfo]:
    if not isinstance(value, str) or not value:
        raise ValidationError(path, f"must be an IANA time zone name, not {value!r}")
    try:
        return value, zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            path, f"{value!r} is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"
        ) from None


def period_of(at: datetime, period: MetricsPeriod | str, timezone: str = "UTC") -> tuple[str, date, date]:
    """The period holding ``at`` in ``timezone``: its label and its first and (excluded) last local date.

    ``period_of(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), "week", "Europe/Berlin")`` is
    ``("2026-W10", date(2026, 3, 2), date(2026, 3, 9))``: it is already Monday in Berlin.

    Raises:
        ValidationError: ``at`` is naive, the period or the time zone is unknown (all at once).
    """
    errors: list[FieldError] = []
    checked_at = _collect(errors, lambda: utc_datetime(at, "at"))
    which = _collect(errors, lambda: _check_period(period))
    zone = _collect(errors, lambda: _check_zone(timezone))
    if errors:
        raise ValidationError.from_errors(errors)
    assert checked_at is not None and which is not None and zone is not None
    start = _period_start(checked_at.astimezone(zone[1]).date(), which)
    return _label(start, which), start, _period_end(start, which)


def _collect(errors: list[FieldError], check: Callable[[], Any]) -> Any:
    try:
        return check()
    except ValidationError as exc:
        errors.extend(exc.errors)
        return None


# --- computing --------------------------------------------------------------------------------


@attrs.define
class _Acc:
    """Running sums of one (period, group) cell; microsecond lists for the durations."""

    created: int = 0
    solved: int = 0
    reopened: int = 0
    first_wall: list[int] = attrs.Factory(list)
    first_business: list[int] = attrs.Factory(list)
    resolution_wall: list[int] = attrs.Factory(list)
    resolution_business: list[int] = attrs.Factory(list)
    responded_within: int = 0
    resolved_within: int = 0
    sla: dict[SlaMetric, list[int]] = attrs.Factory(lambda: {m: [0, 0] for m in SlaMetric})
    sent: int = 0
    answered: int = 0
    scores: list[int] = attrs.Factory(lambda: [0] * 5)

    def result(
        self,
        label: str | None,
        start: date | None,
        end: date | None,
        group: tuple[str | None, ...],
        settings: _Settings,
    ) -> PeriodMetrics:
        return PeriodMetrics(
            period=label,
            start=start,
            end=end,
            group=group,
            created=self.created,
            solved=self.solved,
            reopened=self.reopened,
            first_response=DurationStats.of(self.first_wall),
            first_response_business=DurationStats.of(self.first_business),
            resolution=DurationStats.of(self.resolution_wall),
            resolution_business=DurationStats.of(self.resolution_business),
            responded_within=None if settings.response_within is None else self.responded_within,
            resolved_within=None if settings.resolution_within is None else self.resolved_within,
            sla=()
            if settings.policies is None
            else tuple(SlaAttainment(metric=m, met=v[0], breached=v[1]) for m, v in self.sla.items()),
            csat=CsatStats(
                sent=self.sent,
                answered=self.answered,
                distribution=(self.scores[0], self.scores[1], self.scores[2], self.scores[3], self.scores[4]),
            ),
        )


@attrs.define
class _Backlog:
    open: int = 0
    buckets: list[int] = attrs.Factory(lambda: [0] * 4)
    oldest: tuple[timedelta, str] | None = None

    def add(self, age: timedelta, ticket_id: str) -> None:
        self.open += 1
        self.buckets[0 if age < _DAY else 1 if age < 3 * _DAY else 2 if age < 7 * _DAY else 3] += 1
        if self.oldest is None or (age, ticket_id) > self.oldest:
            self.oldest = (age, ticket_id)

    def result(self, group: tuple[str | None, ...]) -> BacklogMetrics:
        return BacklogMetrics(
            group=group,
            open=self.open,
            under_1d=self.buckets[0],
            from_1d_to_3d=self.buckets[1],
            from_3d_to_7d=self.buckets[2],
            over_7d=self.buckets[3],
            oldest_age=None if self.oldest is None else self.oldest[0],
            oldest_ticket=None if self.oldest is None else self.oldest[1],
        )


@attrs.frozen
class _Settings:
    now: datetime
    period: MetricsPeriod
    timezone: str
    zone: tzinfo
    group_by: tuple[str, ...]
    since: datetime | None
    until: datetime | None
    calendar: BusinessCalendar | None
    policies: SlaPolicies | None
    response_within: timedelta | None
    resolution_within: timedelta | None

    def counts(self, at: datetime | None) -> bool:
        """Whether an event at ``at`` is inside the report: not after now, in [since, until)."""
        if at is None or at > self.now:
            return False
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def _group_by(value: Any, path: str = "group_by") -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, tuple | list):
        raise ValidationError(path, f"must be a tuple of field names, not {type(value).__name__}")
    errors: list[FieldError] = []
    valid = ", ".join(map(repr, GROUP_FIELDS))
    for i, name in enumerate(names):
        if name not in _GROUPERS:
            errors.append(FieldError(f"{path}[{i}]", f"{name!r} is not a group field; use one of {valid}"))
        elif name in names[:i]:
            errors.append(FieldError(f"{path}[{i}]", f"{name!r} is given twice"))
    if errors:
        raise ValidationError.from_errors(errors)
    return tuple(names)


def _threshold(value: Any, path: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationError(path, f"must be a positive timedelta (or None), got {value!r}")
    return value


def _settings(
    now: Any,
    period: Any,
    timezone: Any,
    group_by: Any,
    since: Any,
    until: Any,
    calendar: Any,
    policies: Any,
    response_within: Any,
    resolution_within: Any,
) -> _Settings:
    errors: list[FieldError] = []
    at = _collect(errors, lambda: utc_datetime(now, "now"))
    which = _collect(errors, lambda: _check_period(period))
    zone = _collect(errors, lambda: _check_zone(timezone))
    names = _collect(errors, lambda: _group_by(group_by))
    low = None if since is None else _collect(errors, lambda: utc_datetime(since, "since"))
    high = None if until is None else _collect(errors, lambda: utc_datetime(until, "until"))
    if low is not None and high is not None and high < low:
        errors.append(FieldError("until", "is before since"))
    if calendar is not None and not isinstance(calendar, BusinessCalendar):
        errors.append(FieldError("calendar", f"must be a BusinessCalendar, not {type(calendar).__name__}"))
    if policies is not None and not isinstance(policies, SlaPolicies):
        errors.append(FieldError("policies", f"must be SlaPolicies, not {type(policies).__name__}"))
    response = _collect(errors, lambda: _threshold(response_within, "response_within"))
    resolution = _collect(errors, lambda: _threshold(resolution_within, "resolution_within"))
    if errors:
        raise ValidationError.from_errors(errors)
    return _Settings(
        now=at,
        period=which,
        timezone=zone[0],
        zone=zone[1],
        group_by=names,
        since=low,
        until=high,
        calendar=calendar,
        policies=policies,
        response_within=response,
        resolution_within=resolution,
    )


def _as_of(ticket: Ticket, now: datetime) -> tuple[str, datetime | None, int]:
    """The ticket's status, last solve time and reopen count at ``now`` (later changes ignored)."""
    history = ticket.status_history
    if not history or history[-1].at <= now:
        solved = ticket.solved_at if ticket.solved_at is not None and ticket.solved_at <= now else None
        return ticket.status, solved, ticket.reopen_count
    statuses = current_statuses()
    status, solved_at, reopens = history[0].from_status, None, 0
    if statuses.is_solved(status):
        solved_at = ticket.created_at
    for change in history:
        if change.at > now:
            break
        before, after = statuses.kind(change.from_status), statuses.kind(change.to_status)
        if before.is_open and after.is_solved:
            solved_at = change.at
        elif before.is_solved and after.is_open:
            solved_at, reopens = None, reopens + 1
        status = change.to_status
    return status, solved_at, reopens


class _Measure:
    """Business time of first response and resolution, by policy (pauses excluded) or by calendar."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.measuring: dict[tuple[str, int], SlaPolicy] = {}

    def _policy(self, policy: SlaPolicy) -> SlaPolicy:
        """``policy`` with targets on first response and resolution so long they never stop its clocks."""
        found = self.measuring.get(policy.key)
        if found is None:
            targets = (
                SlaTarget(metric=SlaMetric.FIRST_RESPONSE, minutes=_MEASURE_MINUTES),
                SlaTarget(metric=SlaMetric.RESOLUTION, minutes=_MEASURE_MINUTES),
            )
            found = attrs.evolve(policy, targets=targets, warning_percent=None)
            self.measuring[policy.key] = found
        return found

    def business(
        self, ticket: Ticket, created: datetime, first: datetime | None, solved: datetime | None
    ) -> tuple[int | None, int | None]:
        """(first response, resolution) business microseconds; None where not measured."""
        settings = self.settings
        if settings.policies is not None:
            policy = settings.policies.policy_for(ticket)
            if policy is not None:
                report = evaluate_policy(self._policy(policy), ticket, settings.now, explain=False)
                out: list[int | None] = []
                for metric, stop in ((SlaMetric.FIRST_RESPONSE, first), (SlaMetric.RESOLUTION, solved)):
                    status = report.status(metric)
                    done = stop is not None and status is not None and status.stopped_at is not None
                    out.append(status.elapsed // _US if done and status is not None else None)
                return out[0], out[1]
        calendar = settings.calendar
        if calendar is None:
            return None, None
        return (
            None if first is None else calendar.between(created, first) // _US,
            None if solved is None else calendar.between(created, solved) // _US,
        )


def _sort_key(group: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is not None, v or "") for v in group)


def service_metrics(
    tickets: Iterable[Ticket],
    now: datetime,
    *,
    surveys: Iterable[SatisfactionSurvey] = (),
    period: MetricsPeriod | str = MetricsPeriod.WEEK,
    timezone: str = "UTC",
    group_by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    calendar: BusinessCalendar | None = None,
    policies: SlaPolicies | None = None,
    response_within: timedelta | None = None,
    resolution_within: timedelta | None = None,
) -> ServiceMetrics:
    """Service metrics of ``tickets`` and ``surveys`` as of ``now``, per period and group.

    Each ticket is read once (an iterator of any length will do). Business times: with
    ``policies``, a ticket's policy measures them (its calendar, its pause statuses not counted,
    as its SLA clocks do); tickets without a policy, and every ticket without ``policies``, are
    measured with ``calendar`` from creation to first response or solve; with neither, business
    times are not measured (and the within-threshold counts stay 0 of 0). Wall-clock times are
    always measured. A survey is grouped by its ticket's fields when that ticket is among
    ``tickets``, else under None values.

    Args:
        tickets: the tickets (extra ones are harmless: only events in range count).
        now: the moment the report is as of; later events are ignored.
        surveys: satisfaction surveys about these tickets.
        period: ``"day"``, ``"week"`` (ISO, from Monday), ``"month"`` or ``"quarter"``.
        timezone: the IANA zone whose local dates bound the periods.
        group_by: ticket fields from `GROUP_FIELDS`, e.g. ``("team", "priority")``.
        since: count only events at or after this moment (None: no lower bound).
        until: count only events before this moment (None: up to ``now``).
        calendar: business hours for tickets without an SLA policy.
        policies: SLA policies: attainment per SLA metric, and business times with pauses excluded.
        response_within: count first responses within this business time (``responded_within``).
        resolution_within: count tickets resolved within this business time (``resolved_within``).

    Raises:
        ValidationError: a naive ``now``/``since``/``until``, ``until`` before ``since``, an unknown
            period, zone or group field (the message lists the valid ones), a threshold that is
            not a positive timedelta (all at once); a ticket without ``created_at``.
        RuleError: a ticket is pinned to an SLA policy version ``policies`` does not keep.
    """
    settings = _settings(
        now, period, timezone, group_by, since, until, calendar, policies, response_within, resolution_within
    )
    cells: dict[tuple[date, tuple[str | None, ...]], _Acc] = {}
    total = _Acc()
    backlog: dict[tuple[str | None, ...], _Backlog] = {}
    backlog_total = _Backlog()
    groups: dict[str, tuple[str | None, ...]] = {}
    measure = _Measure(settings)
    zone, which, at = settings.zone, settings.period, settings.now
    statuses = current_statuses()
    starts: dict[date, date] = {}

    def cell(when: datetime, group: tuple[str | None, ...]) -> Iterator[_Acc]:
        day = when.astimezone(zone).date()
        start = starts.get(day)
        if start is None:
            start = starts[day] = _period_start(day, which)
        key = (start, group)
        acc = cells.get(key)
        if acc is None:
            acc = cells[key] = _Acc()
        yield acc
        yield total

    for ticket in tickets:
        created = ticket.created_at
        if created is None:
            raise ValidationError(
                "created_at", f"ticket {ticket.id!r} has none: store the ticket or give it a creation time"
            )
        group = tuple(_GROUPERS[name](ticket) for name in settings.group_by)
        groups[ticket.id] = group
        if created > at:
            continue
        status, solved_at, reopens = _as_of(ticket, at)
        first = ticket.first_response_at
        first = first if first is not None and first <= at else None
        if statuses.is_open(status):
            age = at - created
            backlog.setdefault(group, _Backlog()).add(age, ticket.id)
            backlog_total.add(age, ticket.id)
        if settings.counts(created):
            for acc in cell(created, group):
                acc.created += 1
        first_counts = settings.counts(first)
        solve_counts = settings.counts(solved_at) and statuses.is_solved(status)
        if first_counts or solve_counts:
            first_business, solve_business = measure.business(
                ticket, created, first if first_counts else None, solved_at if solve_counts else None
            )
            if first_counts and first is not None:
                for acc in cell(first, group):
                    acc.first_wall.append((first - created) // _US)
                    if first_business is not None:
                        acc.first_business.append(first_business)
                        limit = settings.response_within
                        acc.responded_within += limit is not None and first_business <= limit // _US
            if solve_counts and solved_at is not None:
                for acc in cell(solved_at, group):
                    acc.solved += 1
                    acc.reopened += reopens > 0
                    acc.resolution_wall.append((solved_at - created) // _US)
                    if solve_business is not None:
                        acc.resolution_business.append(solve_business)
                        limit = settings.resolution_within
                        acc.resolved_within += limit is not None and solve_business <= limit // _US
        if settings.policies is not None and (settings.until is None or created < settings.until):
            report = settings.policies.evaluate(ticket, at, explain=False)
            for clock in (*report.history, *report.statuses):
                stopped = clock.stopped_at
                if stopped is None or not settings.counts(stopped):
                    continue
                if clock.state in (SlaState.MET, SlaState.BREACHED):
                    for acc in cell(stopped, group):
                        acc.sla[clock.metric][clock.state is SlaState.BREACHED] += 1

    unknown: tuple[str | None, ...] = (None,) * len(settings.group_by)
    for survey in surveys:
        if not settings.counts(survey.sent_at):
            continue
        group = groups.get(survey.ticket_id, unknown)
        answered = survey.score is not None and survey.answered_at is not None and survey.answered_at <= at
        for acc in cell(survey.sent_at, group):
            acc.sent += 1
            if answered and survey.score is not None:
                acc.answered += 1
                acc.scores[survey.score - 1] += 1

    periods = tuple(
        acc.result(_label(start, which), start, _period_end(start, which), group, settings)
        for (start, group), acc in sorted(cells.items(), key=lambda kv: (kv[0][0], _sort_key(kv[0][1])))
    )
    return ServiceMetrics(
        at=at,
        period=which,
        timezone=settings.timezone,
        group_by=settings.group_by,
        since=settings.since,
        until=settings.until,
        response_within=settings.response_within,
        resolution_within=settings.resolution_within,
        periods=periods,
        total=total.result(None, None, None, (), settings),
        backlog=tuple(b.result(g) for g, b in sorted(backlog.items(), key=lambda kv: _sort_key(kv[0]))),
        backlog_total=backlog_total.result(()),
    )


def _paged(find: Callable[[Condition], list[Any]], where: Condition, batch_size: int) -> Iterator[Any]:
    """Every object matching ``where``, ``batch_size`` at a time by id (keyset paging)."""
    last: str | None = None
    while True:
        page_where = where if last is None else where & (Field("id") > last)
        page = find(page_where)
        yield from page
        if len(page) < batch_size:
            return
        last = page[-1].id


def service_metrics_from_store(
    uow: UnitOfWork,
    now: datetime,
    *,
    since: datetime,
    until: datetime | None = None,
    batch_size: int = 500,
    **options: Any,
) -> ServiceMetrics:
    """`service_metrics` over the tickets and surveys of ``uow``'s tenant that can matter for the range.

    Reads, ``batch_size`` at a time: surveys sent in ``[since, until)``; tickets updated since
    ``since`` (every event in range updated the ticket) or in an open status (the backlog); and the
    tickets those surveys are about, for grouping. ``options`` are those of `service_metrics`.

    Raises:
        ValidationError: as `service_metrics`, or ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size", f"must be a positive integer, got {batch_size!r}")
    low = utc_datetime(since, "since")
    survey_where: Condition = Field("sent_at") >= low
    if until is not None:
        survey_where = survey_where & (Field("sent_at") < utc_datetime(until, "until"))
    surveys = list(
        _paged(lambda w: uow.surveys.find(w, order_by=["id"], limit=batch_size), survey_where, batch_size)
    )
    open_names = [s.name for s in current_statuses().statuses if s.kind.is_open]
    ticket_where = AnyOf(Field("updated_at") >= low, Field("status").in_(open_names))

    def tickets() -> Iterator[Ticket]:
        seen: set[str] = set()
        for ticket in _paged(
            lambda w: uow.tickets.find(w, order_by=["id"], limit=batch_size), ticket_where, batch_size
        ):
            seen.add(ticket.id)
            yield ticket
        missing = sorted({s.ticket_id for s in surveys} - seen)
        for i in range(0, len(missing), batch_size):
            yield from uow.tickets.find(Field("id").in_(missing[i : i + batch_size]), order_by=["id"])

    return service_metrics(tickets(), now, surveys=surveys, since=low, until=until, **options)
