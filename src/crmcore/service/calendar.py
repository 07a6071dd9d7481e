"""Business calendars: when a service team works, so SLA timers count only working time.

A `BusinessCalendar` is a value composed of a few data values, like dateutil's ``rruleset``:
weekly `WorkingHours` (several a day, overnight shifts allowed), public holidays from the
``holidays`` library (`HolidayRule`) and `SpecialDay` exceptions (a custom closed day, 24 Dec
closing at 12:00). It answers `BusinessCalendar.add` (a due time), `BusinessCalendar.between`
(business time elapsed) and `BusinessCalendar.intervals` (which stretches counted, to explain it).

Working hours are wall-clock times in the calendar's zone. The business time of an interval is
the real time during which the zone's clocks read a time inside it: 09:00-17:00 is 8 hours on a
DST day too, 00:00-24:00 is 23 or 25 hours there, and an hour a spring-forward skips counts for
nothing. Cost grows with the number of days spanned (each day's business stretches are computed
once per calendar and cached), never with minutes.
"""

from __future__ import annotations

import bisect
import enum
import re
import threading
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import attrs

from crmcore.clock import require_aware
from crmcore.errors import FieldError, ValidationError
from crmcore.validation import a_date, checked, instance_of, one_of, optional, run_checks, text, tuple_of

__all__ = [
    "BusinessCalendar",
    "HolidayRule",
    "SpecialDay",
    "TimeRange",
    "Weekday",
    "WorkingHours",
]

_US = timedelta(microseconds=1)
_SECOND = 1_000_000
_DAY = 86_400 * _SECOND
_WEEK = 7 * _DAY
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_CACHED_DAYS = 50_000


class Weekday(enum.Enum):
    """A day of the week, by its English name (as config files spell it)."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def index(self) -> int:
        """0 for Monday to 6 for Sunday, as `date.weekday` counts."""
        return _WEEKDAYS.index(self)


_WEEKDAYS = tuple(Weekday)
_CLOCK = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?\Z")


def _clock_time(*, end: bool) -> Any:
    """A wall-clock time as ``"HH:MM"`` (or ``"HH:MM:SS"``); a `datetime.time` is accepted too.

    Stored as text because JSON has no time type and an end of day needs ``"24:00"``.
    """

    def check(value: Any, path: str) -> str:
        if isinstance(value, time):
            if value.tzinfo is not None:
                raise ValidationError(path, "must be a wall-clock time without a time zone")
            value = value.strftime("%H:%M:%S" if value.second else "%H:%M")
        if not isinstance(value, str):
            raise ValidationError(path, f"must be a time like '09:00', not {type(value).__name__}")
        match = _CLOCK.match(value.strip())
        hours, minutes, seconds = (int(g or 0) for g in match.groups()) if match else (99, 0, 0)
        limit = 24 if end else 23
        if hours > limit or minutes > 59 or seconds > 59 or (hours == 24 and (minutes or seconds)):
            allowed = "00:00 to 24:00" if end else "00:00 to 23:59"
            raise ValidationError(path, f"{value!r} is not a time of day ('HH:MM', {allowed})")
        return f"{hours:02}:{minutes:02}:{seconds:02}" if seconds else f"{hours:02}:{minutes:02}"

    return check


def _seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def _span(start: str, end: str) -> tuple[int, int]:
    """(start, end) in microseconds after the day's midnight; an end at or before the start is next day."""
    s, e = _seconds(start) * _SECOND, _seconds(end) * _SECOND
    return (s, e if e > s else e + _DAY)


def _check_range(start: str, end: str, path: str) -> None:
    if start == end:
        raise ValidationError(
            path, f"start and end are both {start}; for a whole day write start '00:00', end '24:00'"
        )


@attrs.frozen(kw_only=True)
class TimeRange:
    """A stretch of one day's working time, wall clock; an ``end`` at or before ``start`` is the next day."""

    start: str = checked(_clock_time(end=False))
    """``"HH:MM"`` (seconds optional)."""
    end: str = checked(_clock_time(end=True))
    """``"HH:MM"``, up to ``"24:00"``; ``"22:00"``-``"06:00"`` runs overnight."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        _check_range(self.start, self.end, "end")

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@attrs.frozen(kw_only=True)
class WorkingHours:
    """One stretch of the weekly working time: on ``weekday``, from ``start`` to ``end`` (wall clock).

    A day may have several (09:00-12:00 and 13:00-17:00). An ``end`` at or before ``start`` is an
    overnight shift: Friday 22:00-06:00 ends on Saturday at 06:00 and belongs to Friday.
    """

    weekday: Weekday = checked(one_of(Weekday))
    start: str = checked(_clock_time(end=False))
    end: str = checked(_clock_time(end=True))

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        _check_range(self.start, self.end, "end")

    def __str__(self) -> str:
        return f"{self.weekday.value} {self.start}-{self.end}"


def _country(value: Any, path: str) -> str:
    code: str = text(max_length=3, required=True)(value, path)
    return code.upper()


@attrs.frozen(kw_only=True)
class HolidayRule:
    """The public holidays of a country (ISO 3166 code), optionally one subdivision, as closed days.

    Taken from the ``holidays`` library (``holidays.list_supported_countries()`` lists the codes).
    """

    country: str = checked(_country)
    subdivision: str | None = checked(optional(text(max_length=20, required=True)), default=None)
    """A state or province code (``"BY"`` for Bavaria); None for the national holidays."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        _check_supported(self)


def _check_supported(rule: HolidayRule) -> None:
    import holidays  # imported on use: loading its country tables takes a noticeable moment

    supported = holidays.list_supported_countries()
    if rule.country not in supported:
        raise ValidationError(
            "country", f"{rule.country!r} is not a country the holidays library knows (ISO 3166 alpha-2)"
        )
    subdivisions = supported[rule.country]
    if rule.subdivision is not None and rule.subdivision not in subdivisions:
        valid = ", ".join(subdivisions) if subdivisions else "none"
        raise ValidationError(
            "subdivision", f"{rule.subdivision!r} is not a subdivision of {rule.country}; valid: {valid}"
        )


def _overlaps(spans: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(earlier, later) index pairs of overlapping spans ``(start, end, index)``, each later index once."""
    found: dict[int, int] = {}
    reach: tuple[int, int] | None = None  # (end, index) of the span reaching furthest so far
    for start, end, index in sorted(spans):
        if reach is not None and start < reach[0] and reach[1] != index:
            first, second = min(reach[1], index), max(reach[1], index)
            found.setdefault(second, first)
        if reach is None or end > reach[0]:
            reach = (end, index)
    return sorted((first, second) for second, first in found.items())


def _check_day_ranges(ranges: tuple[TimeRange, ...], path: str) -> list[FieldError]:
    spans = [(*_span(r.start, r.end), i) for i, r in enumerate(ranges)]
    return [FieldError(f"{path}[{b}]", f"{ranges[b]} overlaps {ranges[a]}") for a, b in _overlaps(spans)]


@attrs.frozen(kw_only=True)
class SpecialDay:
    """A date whose working time differs from the week's: closed (no ``hours``) or partly open.

    It replaces the weekly hours and any public holiday on that date (so it can also open a holiday).
    """

    date: date = checked(a_date)
    hours: tuple[TimeRange, ...] = checked(tuple_of(instance_of(TimeRange)), default=())
    """The working time of that day; empty for a closed day."""
    name: str = checked(text(max_length=200), default="")
    """Why (``"Christmas Eve"``), shown in explanations."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors = _check_day_ranges(self.hours, "hours")
        if errors:
            raise ValidationError.from_errors(errors)


def _zone_key(value: Any, path: str) -> str:
    key: str = text(max_length=100, required=True)(value, path)
    try:
        zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            path, f"{key!r} is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"
        ) from None
    return key


@attrs.frozen(kw_only=True)
class BusinessCalendar:
    """When a team works: weekly hours in one time zone, minus holidays, with special days.

    Results of `add`, `intervals` and `next_open` are given in the zone of the datetime passed in
    (UTC in, UTC out); the calendar's own zone only decides what the wall-clock hours mean.
    """

    timezone: str = checked(_zone_key)
    """IANA zone key (``"Europe/Berlin"``) in which the working hours are read."""
    hours: tuple[WorkingHours, ...] = checked(tuple_of(instance_of(WorkingHours)), default=())
    """The weekly working time; no two may overlap (overnight shifts included)."""
    holidays: tuple[HolidayRule, ...] = checked(tuple_of(instance_of(HolidayRule)), default=())
    """Public holidays that close the whole day (a `SpecialDay` on the date takes precedence)."""
    special_days: tuple[SpecialDay, ...] = checked(tuple_of(instance_of(SpecialDay)), default=())
    """Dates with their own hours (or closed); one per date."""
    _engine: _Engine = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        try:
            run_checks(self)
        except ValidationError as exc:
            errors.extend(exc.errors)
        bad = {e.path.split("[")[0].split(".")[0] for e in errors}
        if "hours" not in bad:
            errors.extend(_check_week(self.hours))
        if "special_days" not in bad:
            seen: dict[date, int] = {}
            for i, day in enumerate(self.special_days):
                if day.date in seen:
                    reason = f"{day.date} repeats special_days[{seen[day.date]}]"
                    errors.append(FieldError(f"special_days[{i}].date", reason))
                seen.setdefault(day.date, i)
        if errors:
            raise ValidationError.from_errors(errors)
        object.__setattr__(self, "_engine", _Engine(self))

    @classmethod
    def always_open(cls, timezone: str = "UTC") -> BusinessCalendar:
        """A 24x7 calendar: business time is real time."""
        return cls(
            timezone=timezone,
            hours=tuple(WorkingHours(weekday=d, start="00:00", end="24:00") for d in Weekday),
        )

    def replace(self, **changes: Any) -> BusinessCalendar:
        """A copy with ``changes`` applied (``cal.replace(timezone="Europe/Paris")``), validated again."""
        return attrs.evolve(self, **changes)

    @property
    def zone(self) -> tzinfo:
        """The calendar's time zone."""
        return self._engine.zone

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of business time has elapsed since ``start``.

        Time before the next opening does not count: adding 1 hour on Friday 18:00 to a
        09:00-17:00 calendar gives Monday 10:00. A zero duration gives ``start`` itself.

        Args:
            start: an aware datetime; the result is in its zone.
            duration: business time to add, zero or more.

        Raises:
            ValidationError: ``start`` is naive, ``duration`` negative, or the calendar has no
                working time left to reach the end (no weekly hours and no special day ahead).
        """
        t = _micros(start, "start")
        if not isinstance(duration, timedelta):
            raise ValidationError("duration", f"must be a timedelta, not {type(duration).__name__}")
        if duration < timedelta(0):
            raise ValidationError("duration", f"must not be negative, got {duration}")
        return _datetime(self._engine.add(t, duration // _US), start.tzinfo)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The business time in ``[start, end)``.

        Raises:
            ValidationError: a naive datetime, or ``end`` before ``start``.
        """
        t0, t1 = _ordered(start, end)
        return self._engine.between(t0, t1) * _US

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The business stretches in ``[start, end)``, in order, each ``(from, to)`` in ``start``'s zone.

        Their lengths add up to `between`; contiguous stretches are joined (a 24x7 calendar gives one).

        Raises:
            ValidationError: a naive datetime, or ``end`` before ``start``.
        """
        t0, t1 = _ordered(start, end)
        zone = start.tzinfo
        return [(_datetime(a, zone), _datetime(b, zone)) for a, b in self._engine.pieces(t0, t1)]

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls in business time."""
        t = _micros(at, "at")
        return bool(self._engine.pieces(t, t + 1))

    def next_open(self, at: datetime) -> datetime:
        """``at`` if it is business time, else the next opening (in ``at``'s zone).

        Raises:
            ValidationError: ``at`` is naive, or the calendar never opens again.
        """
        return _datetime(self._engine.next_open(_micros(at, "at")), at.tzinfo)

    def hours_on(self, day: date) -> tuple[TimeRange, ...]:
        """The working hours that start on local date ``day`` (special day, holiday or weekly hours)."""
        engine = self._engine
        special = engine.special_by_date.get(day)
        if special is not None:
            return special.hours
        if engine.is_holiday(day.toordinal()):
            return ()
        return tuple(
            TimeRange(start=h.start, end=h.end) for h in self.hours if h.weekday.index == day.weekday()
        )


def _check_week(hours: tuple[WorkingHours, ...]) -> list[FieldError]:
    """Overlaps in the weekly hours, the week taken as a cycle (Sunday night runs into Monday)."""
    spans: list[tuple[int, int, int]] = []
    for i, h in enumerate(hours):
        s, e = _span(h.start, h.end)
        base = h.weekday.index * _DAY
        spans.append((base + s, base + e, i))
        if base + e > _WEEK:
            spans.append((base + s - _WEEK, base + e - _WEEK, i))
    return [FieldError(f"hours[{b}]", f"{hours[b]} overlaps {hours[a]}") for a, b in _overlaps(spans)]


def _micros(value: Any, path: str) -> int:
    aware = require_aware(value, path)
    return (aware - _EPOCH) // _US


def _datetime(micros: int, zone: tzinfo | None) -> datetime:
    try:
        return (_EPOCH + micros * _US).astimezone(zone)
    except OverflowError:
        raise ValidationError("duration", "the result lies beyond the year 9999") from None


def _ordered(start: datetime, end: datetime) -> tuple[int, int]:
    errors: list[FieldError] = []
    times: list[int] = []
    for value, path in ((start, "start"), (end, "end")):
        try:
            times.append(_micros(value, path))
        except ValidationError as exc:
            errors.extend(exc.errors)
    if not errors and times[1] < times[0]:
        errors.append(FieldError("end", f"{end.isoformat()} is before start {start.isoformat()}"))
    if errors:
        raise ValidationError.from_errors(errors)
    return times[0], times[1]


_CHUNK = 64
"""Days added to the cumulative index at a time."""


_Pieces = tuple[tuple[int, int], ...]


class _Index:
    """The cumulative business-time index of an engine (see `_Engine.cover`)."""

    __slots__ = ("base", "begins", "cum", "pieces", "shift")

    def __init__(
        self, base: int, begins: list[int], cum: list[int], pieces: list[_Pieces], shift: int
    ) -> None:
        self.base, self.begins, self.cum, self.pieces, self.shift = base, begins, cum, pieces, shift


@attrs.frozen
class _Day:
    """The business time of one local date's block of real time, ``[begin, end)`` in UTC microseconds."""

    begin: int
    end: int
    pieces: tuple[tuple[int, int], ...]
    total: int


class _Engine:
    """The compiled calendar: day blocks of UTC microseconds, cached per local date ordinal.

    A local date's block is the real time from its midnight to the next (both read with fold=0);
    its pieces are the instants in it whose wall-clock reading falls in the working hours of that
    date or of the two days before (overnight shifts) or the day after (a skipped midnight).
    Blocks partition time, so sums over whole blocks are exact and a walk goes block by block.
    """

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.zone = zoneinfo.ZoneInfo(calendar.timezone)
        weekly: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for h in calendar.hours:
            weekly[h.weekday.index].append(_span(h.start, h.end))
        self.weekly = tuple(tuple(sorted(day)) for day in weekly)
        self.special_by_date = {d.date: d for d in calendar.special_days}
        self.special = {
            d.date.toordinal(): tuple(sorted(_span(r.start, r.end) for r in d.hours))
            for d in calendar.special_days
        }
        self.last_special = max(self.special, default=0)
        self.rules = calendar.holidays
        self.holiday_years: dict[int, frozenset[int]] = {}
        self.days: dict[int, _Day] = {}
        self.index: _Index | None = None
        self.lock = threading.RLock()

    # --- the days ---------------------------------------------------------------------------

    def is_holiday(self, ordinal: int) -> bool:
        if not self.rules:
            return False
        year = date.fromordinal(ordinal).year
        closed = self.holiday_years.get(year)
        if closed is None:
            import holidays

            closed = frozenset(
                d.toordinal()
                for rule in self.rules
                for d in holidays.country_holidays(rule.country, subdiv=rule.subdivision, years=year)
            )
            self.holiday_years[year] = closed
        return ordinal in closed

    def ranges(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        """Working hours starting on this local date, in microseconds after its midnight."""
        special = self.special.get(ordinal)
        if special is not None:
            return special
        if self.is_holiday(ordinal):
            return ()
        return self.weekly[(ordinal - 1) % 7]

    def midnight(self, ordinal: int) -> int:
        return (datetime.combine(date.fromordinal(ordinal), time(), self.zone) - _EPOCH) // _US

    def offset(self, t: int) -> int:
        offset = (_EPOCH + t * _US).astimezone(self.zone).utcoffset()
        assert offset is not None
        return offset // _US

    def segments(self, begin: int, end: int) -> list[tuple[int, int, int]]:
        """``[from, to, utc offset)`` pieces of ``[begin, end)`` (at most a few transitions a day)."""
        out: list[tuple[int, int, int]] = []
        while begin < end:
            first = self.offset(begin)
            if self.offset(end - 1) == first:
                out.append((begin, end, first))
                break
            lo, hi = begin // _SECOND, (end - 1) // _SECOND  # transitions fall on whole seconds
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if self.offset(mid * _SECOND) == first:
                    lo = mid
                else:
                    hi = mid
            change = max(hi * _SECOND, begin + 1)
            out.append((begin, change, first))
            begin = change
        return out

    def day(self, ordinal: int) -> _Day:
        cached = self.days.get(ordinal)
        if cached is not None:
            return cached
        try:
            begin, end = self.midnight(ordinal), self.midnight(ordinal + 1)
        except (ValueError, OverflowError):
            raise ValidationError("duration", "the calendar reaches beyond the years 1-9999") from None
        walls = [
            ((k - _EPOCH_ORDINAL) * _DAY + s, (k - _EPOCH_ORDINAL) * _DAY + e)
            for k in range(ordinal - 2, ordinal + 2)
            for s, e in self.ranges(k)
        ]
        found: list[tuple[int, int]] = []
        for seg_from, seg_to, offset in self.segments(begin, end):
            for wall_from, wall_to in walls:
                lo, hi = max(seg_from, wall_from - offset), min(seg_to, wall_to - offset)
                if lo < hi:
                    found.append((lo, hi))
        pieces = _merge(sorted(found))
        result = _Day(begin, end, tuple(pieces), sum(b - a for a, b in pieces))
        if len(self.days) >= _MAX_CACHED_DAYS:
            self.days.clear()
        self.days[ordinal] = result
        return result

    def locate(self, t: int) -> int:
        """The ordinal of the local date whose block holds instant ``t``."""
        ordinal = (_EPOCH + t * _US).astimezone(self.zone).toordinal()
        while t < self.day(ordinal).begin:
            ordinal -= 1
        while t >= self.day(ordinal).end:
            ordinal += 1
        return ordinal

    def closed_for_good(self, ordinal: int) -> bool:
        """No working time can come after this date (no weekly hours, no special day ahead)."""
        return not any(self.weekly) and ordinal > self.last_special + 2

    # --- the walks --------------------------------------------------------------------------

    # --- the cumulative index -----------------------------------------------------------------
    # Consecutive local dates from ``base``: ``begins[i]`` is where date ``base + i`` begins (one more
    # entry: where the last ends), ``cum[i]`` the business time from ``begins[0]`` to ``begins[i]``,
    # ``pieces[i]`` the business pieces of date ``base + i`` (so readers need no day cache lookup),
    # and ``shift`` the business time from a fixed origin to ``begins[0]`` (it falls as dates are
    # prepended). A *position* -- business time from that origin to an instant -- is then one
    # bisect plus one day's pieces, so `between` and `add` cost the same for an hour or a year and
    # need no time zone conversion.

    def cover(self, t: int) -> tuple[_Index, int]:
        """The index and the position ``i`` of the date whose block holds ``t`` (extending the index)."""
        idx = self.index
        if idx is None or not idx.begins[0] <= t < idx.begins[-1]:
            with self.lock:
                current = self.index
                if current is None:
                    ordinal = self.locate(t)
                    day = self.day(ordinal)
                    current = self.index = _Index(
                        ordinal, [day.begin, day.end], [0, day.total], [day.pieces], 0
                    )
                idx = current
                while t < idx.begins[0]:
                    idx = self.index = self.prepend(idx, _CHUNK)
                while t >= idx.begins[-1]:
                    self.append(idx, _CHUNK)
        return idx, bisect.bisect_right(idx.begins, t) - 1

    def prepend(self, idx: _Index, days: int) -> _Index:
        base = idx.base - days
        blocks = [self.day(base + k) for k in range(days)]
        cum = [0]
        for day in blocks:
            cum.append(cum[-1] + day.total)
        added = cum[-1]
        return _Index(
            base,
            [d.begin for d in blocks] + idx.begins,
            cum[:-1] + [c + added for c in idx.cum],
            [d.pieces for d in blocks] + idx.pieces,
            idx.shift - added,
        )

    def append(self, idx: _Index, days: int) -> None:
        for _ in range(days):
            day = self.day(idx.base + len(idx.begins) - 1)
            idx.pieces.append(day.pieces)  # pieces and cum first: readers bisect begins (and cum)
            idx.cum.append(idx.cum[-1] + day.total)
            idx.begins.append(day.end)

    def position(self, t: int) -> int:
        """Business time from the engine's fixed origin to instant ``t`` (negative before it)."""
        idx = self.index
        if idx is not None and idx.begins[0] <= t < idx.begins[-1]:
            i = bisect.bisect_right(idx.begins, t) - 1
        else:
            idx, i = self.cover(t)
        total = idx.shift + idx.cum[i]
        for a, b in idx.pieces[i]:
            if a >= t:
                break
            total += (b if b < t else t) - a
        return total

    def moment(self, target: int) -> int | None:
        """The earliest instant whose `position` is ``target``; None if the calendar never gets there."""
        idx = self.index
        assert idx is not None, "moment() follows position(), which builds the index"
        local = target - idx.shift
        if local <= 0:  # callers ask for positions after an instant they measured, so inside the index
            raise AssertionError(f"position {target} lies before the calendar index")
        while idx.cum[-1] < local:
            with self.lock:
                if self.closed_for_good(idx.base + len(idx.begins) - 1):
                    return None
                self.append(idx, _CHUNK)
        i = bisect.bisect_left(idx.cum, local) - 1
        rest = local - idx.cum[i]
        for a, b in idx.pieces[i]:
            if rest <= b - a:
                return a + rest
            rest -= b - a
        raise AssertionError("unreachable: the index says the day holds the time")  # pragma: no cover

    # --- the walks --------------------------------------------------------------------------

    def add(self, t: int, remaining: int) -> int:
        if remaining == 0:
            return t
        found = self.moment(self.position(t) + remaining)
        if found is None:
            raise ValidationError(
                "duration", "the calendar has no working hours left to reach the end (no weekly hours)"
            )
        return found

    def between(self, t0: int, t1: int) -> int:
        if t0 >= t1:
            return 0
        return self.position(t1) - self.position(t0)

    def pieces(self, t0: int, t1: int) -> list[tuple[int, int]]:
        if t0 >= t1:
            return []
        idx, i0 = self.cover(t0)
        idx, i1 = self.cover(t1 - 1)
        i0 = bisect.bisect_right(idx.begins, t0) - 1
        found: list[tuple[int, int]] = []
        for i in range(i0, i1 + 1):
            for a, b in idx.pieces[i]:
                if a >= t1:
                    break
                lo, hi = max(a, t0), min(b, t1)
                if lo < hi:
                    found.append((lo, hi))
        return _merge(found)

    def next_open(self, t: int) -> int:
        ordinal = self.locate(t)
        while True:
            for a, b in self.day(ordinal).pieces:
                if b > t:
                    return max(a, t)
            ordinal += 1
            if self.closed_for_good(ordinal):
                raise ValidationError("at", "the calendar never opens after this time (no weekly hours)")


def _merge(pieces: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching pieces joined."""
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out
