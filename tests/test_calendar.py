"""Business calendars: due times and business time, checked against a minute-by-minute oracle."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.errors import ValidationError
from crmcore.serialization import structure, unstructure
from crmcore.service.calendar import (
    BusinessCalendar,
    HolidayRule,
    SpecialDay,
    TimeRange,
    Weekday,
    WorkingHours,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe"]
MINUTE = timedelta(minutes=1)
WEEKDAYS = list(Weekday)


def office(timezone: str = "Europe/Berlin", *, country: str | None = "DE") -> BusinessCalendar:
    """Monday to Friday 09:00-17:00, with the country's public holidays."""
    return BusinessCalendar(
        timezone=timezone,
        hours=tuple(WorkingHours(weekday=d, start="09:00", end="17:00") for d in WEEKDAYS[:5]),
        holidays=(HolidayRule(country=country),) if country else (),
    )


# --- the oracle ---------------------------------------------------------------------------------


def _clock(text: str) -> timedelta:
    hours, minutes = text.split(":")[:2]
    return timedelta(hours=int(hours), minutes=int(minutes))


def oracle_minutes(cal: BusinessCalendar, start: datetime, end: datetime) -> list[datetime]:
    """Each minute of [start, end) (minute-aligned) whose wall-clock reading is in working hours."""
    zone = ZoneInfo(cal.timezone)
    closed: set[date] = set()
    for rule in cal.holidays:
        years = range(start.year - 1, end.year + 2)
        closed |= set(holidays.country_holidays(rule.country, subdiv=rule.subdivision, years=years))
    special = {d.date: d.hours for d in cal.special_days}

    def ranges(day: date) -> list[tuple[datetime, datetime]]:
        if day in special:
            hours = [(r.start, r.end) for r in special[day]]
        elif day in closed:
            hours = []
        else:
            hours = [(h.start, h.end) for h in cal.hours if h.weekday.index == day.weekday()]
        midnight = datetime(day.year, day.month, day.day)
        out = []
        for s, e in hours:
            a, b = midnight + _clock(s), midnight + _clock(e)
            out.append((a, b if b > a else b + timedelta(days=1)))
        return out

    found = []
    t = start
    while t < end:
        wall = t.astimezone(zone).replace(tzinfo=None)
        days = (wall.date() - timedelta(days=k) for k in (0, 1))
        if any(a <= wall < b for d in days for a, b in ranges(d)):
            found.append(t)
        t += MINUTE
    return found


# --- strategies --------------------------------------------------------------------------------

HALF_HOURS_A_WEEK = 7 * 48


@st.composite
def weekly_hours(draw: st.DrawFn) -> tuple[WorkingHours, ...]:
    """Up to six non-overlapping stretches on a 30-minute grid, overnight ones included."""
    taken: list[tuple[int, int]] = []
    hours = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, HALF_HOURS_A_WEEK - 1))
        length = draw(st.integers(1, 47))
        copies = [(start, start + length), (start - HALF_HOURS_A_WEEK, start + length - HALF_HOURS_A_WEEK)]
        copies.append((start + HALF_HOURS_A_WEEK, start + length + HALF_HOURS_A_WEEK))
        if any(a < e and s < b for s, e in taken for a, b in copies):
            continue
        taken.extend(copies)
        end = (start + length) % 48
        hours.append(
            WorkingHours(
                weekday=WEEKDAYS[start // 48],
                start=f"{start % 48 // 2:02}:{start % 2 * 30:02}",
                end="24:00" if end == 0 else f"{end // 2:02}:{end % 2 * 30:02}",
            )
        )
    return tuple(hours)


def _quarter(i: int) -> str:
    return f"{i // 4:02}:{i % 4 * 15:02}"


@st.composite
def special_days(draw: st.DrawFn, around: date) -> tuple[SpecialDay, ...]:
    """Closed or partly open days near ``around``, each with up to two stretches on a 15-minute grid."""
    days = draw(st.sets(st.integers(-2, 4), max_size=3))
    out = []
    for offset in sorted(days):
        cuts = sorted(draw(st.sets(st.integers(1, 95), max_size=4)))
        ranges = tuple(
            TimeRange(start=_quarter(a), end=_quarter(b)) for a, b in zip(cuts[::2], cuts[1::2], strict=False)
        )
        out.append(SpecialDay(date=around + timedelta(days=offset), hours=ranges))
    return tuple(out)


# Windows around the 2026 DST changes (Berlin 29 Mar / 25 Oct, New York 8 Mar / 1 Nov, Sydney 5 Apr /
# 4 Oct) and a year end, where mistakes would show.
AROUND = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 10, 4), date(2026, 10, 25)]
AROUND += [date(2026, 11, 1), date(2026, 12, 31), date(2026, 6, 15)]


@st.composite
def calendars_and_starts(draw: st.DrawFn) -> tuple[BusinessCalendar, datetime]:
    """A random calendar and a minute-aligned start within two days of an interesting date."""
    around = draw(st.sampled_from(AROUND))
    timezone = draw(st.sampled_from(ZONES))
    rules = draw(
        st.sampled_from([(), (HolidayRule(country="DE"),), (HolidayRule(country="US", subdivision="NY"),)])
    )
    cal = BusinessCalendar(
        timezone=timezone, hours=draw(weekly_hours()), holidays=rules, special_days=draw(special_days(around))
    )
    minute = draw(st.integers(-2 * 24 * 60, 2 * 24 * 60))
    start = datetime(around.year, around.month, around.day, tzinfo=UTC) + minute * MINUTE
    return cal, start


SPAN = timedelta(days=3)


@settings(max_examples=60, deadline=None)
@given(calendars_and_starts())
def test_between_and_intervals_match_the_oracle(case: tuple[BusinessCalendar, datetime]) -> None:
    """between() counts exactly the minutes whose wall clock reads working hours; intervals() agrees."""
    cal, start = case
    end = start + SPAN
    minutes = oracle_minutes(cal, start, end)
    assert cal.between(start, end) == len(minutes) * MINUTE
    pieces = cal.intervals(start, end)
    assert sum((b - a for a, b in pieces), timedelta()) == len(minutes) * MINUTE
    assert all(a < b for a, b in pieces)
    assert all(b < c for (_, b), (c, _) in itertools.pairwise(pieces))
    covered = {a + k * MINUTE for a, b in pieces for k in range((b - a) // MINUTE)}
    assert covered == set(minutes)


@settings(max_examples=60, deadline=None)
@given(calendars_and_starts(), st.integers(1, 3000))
def test_add_gives_the_earliest_instant_the_oracle_gives(
    case: tuple[BusinessCalendar, datetime], minutes: int
) -> None:
    """add(s, d) is the end of the d-th business minute after s, and between(s, add(s, d)) == d."""
    cal, start = case
    business = oracle_minutes(cal, start, start + SPAN)
    if len(business) < minutes:
        return
    due = cal.add(start, minutes * MINUTE)
    assert due == business[minutes - 1] + MINUTE
    assert cal.between(start, due) == minutes * MINUTE
    assert cal.between(start, due - timedelta(microseconds=1)) < minutes * MINUTE
    assert due.tzinfo is start.tzinfo


@settings(max_examples=40, deadline=None)
@given(calendars_and_starts(), st.integers(0, 10**6))
def test_between_and_add_are_inverse_on_long_spans(
    case: tuple[BusinessCalendar, datetime], seconds: int
) -> None:
    """between(s, add(s, d)) == d for durations up to weeks, and is_open/next_open agree with add."""
    cal, start = case
    if not cal.hours:
        return
    duration = timedelta(seconds=seconds, microseconds=seconds % 7)
    due = cal.add(start, duration)
    assert cal.between(start, due) == duration
    opening = cal.next_open(start)
    assert cal.is_open(opening)
    assert cal.between(start, opening) == timedelta(0)
    assert cal.add(start, timedelta(microseconds=1)) == opening + timedelta(microseconds=1)


@settings(max_examples=50, deadline=None)
@given(calendars_and_starts())
def test_config_round_trips_through_the_converter(case: tuple[BusinessCalendar, datetime]) -> None:
    """Every calendar unstructures to JSON-ready data and structures back equal."""
    cal, _ = case
    data = unstructure(cal)
    assert "_engine" not in data and "engine" not in data
    assert structure(data, BusinessCalendar) == cal


# --- explicit cases ----------------------------------------------------------------------------


def test_due_times_across_the_2026_dst_changes_in_berlin() -> None:
    """A 09:00-17:00 day is 8 hours on both DST Sundays' neighbours; 24x7 days are 23 and 25 hours."""
    cal = office(country=None)
    friday = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)  # before the 29 March change
    assert cal.add(friday, timedelta(hours=2)) == datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert cal.between(friday, datetime(2026, 3, 31, 9, 0, tzinfo=BERLIN)) == timedelta(hours=9)
    autumn = datetime(2026, 10, 23, 12, 0, tzinfo=BERLIN)
    assert cal.add(autumn, timedelta(hours=13)) == datetime(2026, 10, 26, 17, 0, tzinfo=BERLIN)
    always = BusinessCalendar.always_open("Europe/Berlin")
    spring, fall = date(2026, 3, 29), date(2026, 10, 25)
    assert always.between(_midnight(spring, BERLIN), _midnight(spring, BERLIN, 1)) == timedelta(hours=23)
    assert always.between(_midnight(fall, BERLIN), _midnight(fall, BERLIN, 1)) == timedelta(hours=25)


def test_a_shift_across_the_change_instant_counts_real_time_in_new_york() -> None:
    """A Saturday 22:00-06:00 shift lasts 7 hours on 7-8 March 2026 and 9 hours on 31 Oct-1 Nov 2026."""
    cal = BusinessCalendar(
        timezone="America/New_York",
        hours=(WorkingHours(weekday=Weekday.SATURDAY, start="22:00", end="06:00"),),
    )
    march = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)
    assert cal.between(march, march + timedelta(days=1)) == timedelta(hours=7)
    october = datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK)
    assert cal.between(october, october + timedelta(days=1)) == timedelta(hours=9)
    # The due time 8 business hours after the March shift opens is the next shift's first hour.
    due = cal.add(datetime(2026, 3, 7, 22, 0, tzinfo=NEW_YORK), timedelta(hours=8))
    assert due == datetime(2026, 3, 14, 23, 0, tzinfo=NEW_YORK)


def test_year_end_skips_german_holidays_and_a_partial_christmas_eve() -> None:
    """25/26 Dec and 1 Jan are closed; 24 Dec closes at 12:00 as a special day says."""
    cal = office().replace(
        special_days=(
            SpecialDay(
                date=date(2026, 12, 24), hours=(TimeRange(start="09:00", end="12:00"),), name="Christmas Eve"
            ),
            SpecialDay(date=date(2026, 12, 31), name="closed for inventory"),
        )
    )
    start = datetime(2026, 12, 23, 15, 0, tzinfo=BERLIN)
    # The earliest instant: the 5th hour ends as Christmas Eve closes, not when work resumes.
    assert cal.add(start, timedelta(hours=5)) == datetime(2026, 12, 24, 12, 0, tzinfo=BERLIN)
    assert cal.add(start, timedelta(hours=5, minutes=1)) == datetime(2026, 12, 28, 9, 1, tzinfo=BERLIN)
    assert cal.between(start, datetime(2027, 1, 5, tzinfo=BERLIN)) == timedelta(hours=2 + 3 + 8 * 3 + 8)
    assert cal.hours_on(date(2026, 12, 25)) == ()
    assert cal.hours_on(date(2026, 12, 24)) == (TimeRange(start="09:00", end="12:00"),)
    assert cal.hours_on(date(2027, 1, 4)) == (TimeRange(start="09:00", end="17:00"),)
    assert cal.intervals(start, datetime(2026, 12, 29, tzinfo=BERLIN)) == [
        (start, datetime(2026, 12, 23, 17, 0, tzinfo=BERLIN)),
        (datetime(2026, 12, 24, 9, 0, tzinfo=BERLIN), datetime(2026, 12, 24, 12, 0, tzinfo=BERLIN)),
        (datetime(2026, 12, 28, 9, 0, tzinfo=BERLIN), datetime(2026, 12, 28, 17, 0, tzinfo=BERLIN)),
    ]


def test_a_special_day_opens_a_holiday() -> None:
    """A special day takes precedence over a public holiday on the same date."""
    cal = office().replace(
        special_days=(SpecialDay(date=date(2026, 12, 25), hours=(TimeRange(start="10:00", end="11:00"),)),)
    )
    assert cal.between(
        _midnight(date(2026, 12, 25), BERLIN), _midnight(date(2026, 12, 26), BERLIN)
    ) == timedelta(hours=1)


def test_always_open_counts_real_time_and_returns_the_input_zone() -> None:
    """A 24x7 calendar adds durations as real time; results come in the zone of the start."""
    cal = BusinessCalendar.always_open("Australia/Sydney")
    start = datetime(2026, 4, 4, 12, 0, tzinfo=UTC)
    assert cal.add(start, timedelta(days=3, seconds=7)) == start + timedelta(days=3, seconds=7)
    assert cal.add(start, timedelta(hours=1)).tzinfo is UTC
    berlin_start = start.astimezone(BERLIN)
    assert cal.add(berlin_start, timedelta(hours=1)).tzinfo is BERLIN
    assert cal.intervals(start, start + timedelta(days=9)) == [(start, start + timedelta(days=9))]


def test_empty_calendar_refuses_to_add_instead_of_looping() -> None:
    """With no working hours at all, add and next_open raise ValidationError; between is zero."""
    cal = BusinessCalendar(timezone="UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="no working hours") as info:
        cal.add(start, timedelta(hours=1))
    assert info.value.field == "duration"
    with pytest.raises(ValidationError, match="never opens"):
        cal.next_open(start)
    assert cal.between(start, start + timedelta(days=400)) == timedelta(0)
    assert cal.add(start, timedelta(0)) == start
    only_once = cal.replace(
        special_days=(SpecialDay(date=date(2026, 2, 2), hours=(TimeRange(start="09:00", end="10:00"),)),)
    )
    assert only_once.add(start, timedelta(hours=1)) == datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="no working hours"):
        only_once.add(start, timedelta(hours=1, seconds=1))


def test_naive_datetimes_and_bad_arguments_are_refused() -> None:
    """Naive datetimes, negative durations and an end before the start raise ValidationError naming them."""
    cal = office(country=None)
    aware = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    with pytest.raises(ValidationError, match="naive") as info:
        cal.add(datetime(2026, 5, 4, 9, 0), timedelta(hours=1))
    assert info.value.field == "start"
    with pytest.raises(ValidationError) as info:
        cal.between(datetime(2026, 5, 4), datetime(2026, 5, 5))
    assert {e.path for e in info.value.errors} == {"start", "end"}
    with pytest.raises(ValidationError, match="negative"):
        cal.add(aware, timedelta(hours=-1))
    with pytest.raises(ValidationError, match="before start") as info:
        cal.between(aware, aware - MINUTE)
    assert info.value.field == "end"
    with pytest.raises(ValidationError, match="naive"):
        cal.is_open(datetime(2026, 5, 4))


def test_bad_config_reports_every_problem_at_once() -> None:
    """Unknown zone and overlapping hours (overnight into Monday included) are reported together."""
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(
            timezone="Mars/Olympus",
            hours=(
                WorkingHours(weekday=Weekday.MONDAY, start="09:00", end="17:00"),
                WorkingHours(weekday=Weekday.MONDAY, start="16:00", end="18:00"),
                WorkingHours(weekday=Weekday.SUNDAY, start="22:00", end="09:30"),
            ),
            special_days=(SpecialDay(date=date(2026, 1, 2)), SpecialDay(date=date(2026, 1, 2))),
        )
    paths = [e.path for e in info.value.errors]
    assert paths == ["timezone", "hours[1]", "hours[2]", "special_days[1].date"]
    assert "overlaps monday 09:00-17:00" in str(info.value)


def test_bad_config_data_names_the_field() -> None:
    """Structuring bad data names each bad field: unknown holiday country, subdivision, time of day."""
    with pytest.raises(ValidationError) as info:
        structure(
            {
                "timezone": "UTC",
                "hours": [{"weekday": "monday", "start": "25:00", "end": "17:00"}],
                "holidays": [{"country": "XX"}, {"country": "DE", "subdivision": "Narnia"}],
                "special_days": [{"date": "2026-12-24", "hours": [{"start": "09:00", "end": "09:00"}]}],
            },
            BusinessCalendar,
        )
    paths = {e.path for e in info.value.errors}
    assert paths == {
        "hours[0].start",
        "holidays[0].country",
        "holidays[1].subdivision",
        "special_days[0].hours[0].end",
    }
    assert "BY" in str(info.value)


def test_overlapping_special_day_hours_are_refused() -> None:
    """A special day's own stretches may not overlap."""
    with pytest.raises(ValidationError, match=r"hours\[1\]: 11:00-13:00 overlaps 09:00-12:00"):
        SpecialDay(
            date=date(2026, 1, 1),
            hours=(TimeRange(start="09:00", end="12:00"), TimeRange(start="11:00", end="13:00")),
        )


def test_times_accept_time_objects_and_normalize() -> None:
    """A datetime.time or ' 9:00'-style text becomes canonical 'HH:MM' text; 24:00 only as an end."""
    from datetime import time

    assert TimeRange(start=time(9, 30), end="24:00") == TimeRange(start="09:30", end="24:00")  # type: ignore[arg-type]
    assert TimeRange(start="08:00:30", end="09:00").start == "08:00:30"
    with pytest.raises(ValidationError, match="start"):
        TimeRange(start="24:00", end="09:00")
    with pytest.raises(ValidationError, match="whole day"):
        WorkingHours(weekday=Weekday.MONDAY, start="00:00", end="00:00")


def test_overnight_shift_belongs_to_its_start_day_and_survives_a_holiday_next_day() -> None:
    """A Thursday 22:00-06:00 shift runs into Friday even when Friday is a public holiday (Good Friday)."""
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        hours=(
            WorkingHours(weekday=Weekday.THURSDAY, start="22:00", end="06:00"),
            WorkingHours(weekday=Weekday.FRIDAY, start="22:00", end="06:00"),
        ),
        holidays=(HolidayRule(country="DE"),),
    )
    thursday = datetime(2026, 4, 2, 12, 0, tzinfo=BERLIN)  # Good Friday is 3 April 2026
    assert cal.between(thursday, thursday + timedelta(days=2)) == timedelta(hours=8)
    assert cal.add(thursday, timedelta(hours=8, minutes=1)) == datetime(2026, 4, 9, 22, 1, tzinfo=BERLIN)


def _midnight(day: date, zone: ZoneInfo, plus_days: int = 0) -> datetime:
    day += timedelta(days=plus_days)
    return datetime(day.year, day.month, day.day, tzinfo=zone)
