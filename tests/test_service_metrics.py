"""Service metrics: volumes, durations, SLA attainment, reopens, CSAT and backlog per period and group."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.errors import ValidationError
from crmcore.facade import CRM
from crmcore.serialization import structure, unstructure
from crmcore.service.calendar import BusinessCalendar, Weekday, WorkingHours
from crmcore.service.metrics import (
    GROUP_FIELDS,
    DurationStats,
    MetricsPeriod,
    PeriodMetrics,
    ServiceMetrics,
    period_of,
    service_metrics,
    service_metrics_from_store,
)
from crmcore.service.sla import SlaMetric, SlaPolicies, SlaPolicy, SlaTarget
from crmcore.service.ticket import SatisfactionSurvey, Ticket, TicketChannel, TicketPriority
from crmcore.testing.strategies import NOW, tickets

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
MON = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
"""Monday 9 March 2026, 09:00 UTC (ISO week 11)."""
OFFICE = BusinessCalendar(
    timezone="UTC",
    hours=tuple(WorkingHours(weekday=d, start="09:00", end="17:00") for d in list(Weekday)[:5]),
)
"""Monday to Friday, 09:00-17:00 UTC."""


def make(
    created: datetime,
    *,
    response: timedelta | None = None,
    solved: timedelta | None = None,
    reopen: timedelta | None = None,
    team: str | None = None,
    priority: TicketPriority = TicketPriority.NORMAL,
    channel: TicketChannel = TicketChannel.EMAIL,
) -> Ticket:
    """A ticket created at ``created``, answered, solved and reopened after the given offsets."""
    ticket = Ticket(
        customer_id="c-1", subject="help", team=team, priority=priority, channel=channel, created_at=created
    )
    ticket = ticket.change_status("open", created)
    if response is not None:
        ticket = ticket.add_comment("u-1", "On it", created + response)
    if solved is not None:
        ticket = ticket.change_status("solved", created + solved)
    if reopen is not None:
        ticket = ticket.change_status("open", created + reopen)
        if solved is not None:
            ticket = ticket.change_status("solved", created + reopen + solved)
    return ticket


def survey(
    ticket: Ticket, sent: datetime, score: int | None = None, answered: datetime | None = None
) -> SatisfactionSurvey:
    """A survey about ``ticket``, answered with ``score`` at ``answered`` if given."""
    s = SatisfactionSurvey(ticket_id=ticket.id, customer_id=ticket.customer_id, sent_at=sent)
    return s if score is None else s.answer(score, answered or sent)


def test_medians_percentiles_and_reopen_rate_have_known_values() -> None:
    """Resolutions of 1h, 2h and 6h give median 2h, p90 5h12m (interpolated), mean 3h; 1 of 3 reopened."""
    ts = [
        make(MON, response=10 * M, solved=H),
        make(MON, response=20 * M, solved=2 * H),
        # created Sat 09:00, answered and solved Sat 10:00, reopened Mon 12:00, solved again Mon 13:00
        make(MON - 2 * D, response=H, solved=H, reopen=2 * D + 3 * H),
    ]
    report = service_metrics(ts, MON + D, calendar=BusinessCalendar.always_open())
    saturday, week = report.periods
    assert (saturday.period, saturday.created, saturday.solved, saturday.first_response.count) == (
        "2026-W10",
        1,
        0,
        1,
    )
    assert week.period == "2026-W11" and week.solved == 3 and week.reopened == 1
    assert week.reopen_rate == pytest.approx(1 / 3)
    walls = sorted([H, 2 * H, 2 * D + 4 * H])
    assert week.resolution == DurationStats.of([w // timedelta(microseconds=1) for w in walls])
    assert week.resolution.median == 2 * H
    assert week.resolution.mean == sum(walls, timedelta()) / 3
    # inclusive 90th percentile of (1h, 2h, 52h): 2h + 0.8 * 50h
    assert week.resolution.p90 == 2 * H + 40 * H
    # first responses: the third ticket's (Sat 10:00) falls in week 10, the others in week 11
    assert week.first_response.count == 2 and week.first_response.median == 15 * M
    assert report.total.first_response.count == 3 and report.total.first_response.median == 20 * M
    # an always-open calendar makes business time equal wall-clock time
    assert week.resolution_business == week.resolution


def test_duration_stats_of_one_and_none() -> None:
    """One value is its own median and p90; no values give None everywhere, count 0."""
    one = DurationStats.of([5_000_000])
    assert (one.count, one.median, one.p90, one.mean) == (
        1,
        timedelta(seconds=5),
        timedelta(seconds=5),
        timedelta(seconds=5),
    )
    assert DurationStats.of([]) == DurationStats(count=0, median=None, p90=None, mean=None)


def test_csat_counts_rates_average_and_distribution() -> None:
    """Scores 5, 4, 2, one unanswered and one answered after now: 3 of 5, average 11/3, CSAT 2/3."""
    t = make(MON, response=H, solved=2 * H)
    now = MON + 3 * D
    surveys = [
        survey(t, MON + 3 * H, 5, MON + 4 * H),
        survey(t, MON + 3 * H, 4, MON + 5 * H),
        survey(t, MON + 3 * H, 2, MON + 6 * H),
        survey(t, MON + 3 * H),
        survey(t, MON + 3 * H, 1, now + H),  # answered after now: unanswered as of now
    ]
    csat = service_metrics([t], now, surveys=surveys).total.csat
    assert (csat.sent, csat.answered, csat.distribution) == (5, 3, (0, 1, 0, 1, 1))
    assert csat.response_rate == pytest.approx(0.6)
    assert csat.average == pytest.approx(11 / 3)
    assert csat.satisfied == pytest.approx(2 / 3)


def test_business_and_wall_clock_across_a_weekend() -> None:
    """Created Friday 16:00, answered Monday 16:00, solved Monday 17:00: 8h/9h business, 72h/73h wall."""
    friday = MON - 3 * D + 7 * H  # Fri 6 March 16:00
    t = make(friday, response=3 * D, solved=3 * D + H)
    report = service_metrics(
        [t], MON + 2 * D, calendar=OFFICE, response_within=8 * H, resolution_within=8 * H, period="day"
    )
    day = report.periods[-1]
    assert day.period == "2026-03-09"
    assert day.first_response_business.median == 8 * H and day.first_response.median == 72 * H
    assert day.resolution_business.median == 9 * H and day.resolution.median == 73 * H
    assert (day.responded_within, day.responded_within_rate) == (1, 1.0)  # 8h is within 8h
    assert (day.resolved_within, day.resolved_within_rate) == (0, 0.0)
    assert report.periods[0].period == "2026-03-06" and report.periods[0].created == 1


def test_without_calendar_or_policies_business_time_is_not_measured() -> None:
    """No calendar and no policies: business stats are empty, thresholds 0 of 0 (rate None)."""
    report = service_metrics([make(MON, response=H, solved=2 * H)], MON + D, resolution_within=H)
    assert report.total.resolution.count == 1
    assert report.total.resolution_business.count == 0
    assert report.total.resolved_within == 0 and report.total.resolved_within_rate is None
    assert report.total.responded_within is None  # no response threshold given


def test_policies_exclude_pauses_and_give_attainment_of_finished_clocks() -> None:
    """Policy time skips the 5h pending; met/breached counts only stopped clocks; no target: None rate."""
    policy = SlaPolicy(name="std", targets=(SlaTarget.hours("resolution", 4),))
    policies = SlaPolicies(policies=(policy,))
    paused = make(MON, response=H / 2)
    paused = paused.change_status("pending", MON + H).change_status("open", MON + 6 * H)
    paused = paused.change_status("solved", MON + 8 * H)  # 8h wall, 3h running: met
    late = make(MON, solved=6 * H)  # 6h: breached
    running = make(MON)  # still open at now, long past due: not counted
    now = MON + 2 * D
    report = service_metrics([paused, late, running], now, policies=policies)
    total = report.total
    assert total.resolution.median == 7 * H  # wall: 6h and 8h
    assert total.resolution_business.median == (3 * H + 6 * H) / 2  # pauses excluded: 3h and 6h
    resolution = total.attainment("resolution")
    assert resolution is not None and (resolution.met, resolution.breached, resolution.rate) == (1, 1, 0.5)
    first = total.attainment(SlaMetric.FIRST_RESPONSE)
    assert first is not None and first.rate is None
    # the same tickets with only a 24x7 calendar count the pause as business time
    plain = service_metrics([paused, late, running], now, calendar=BusinessCalendar.always_open())
    assert plain.total.resolution_business.median == 7 * H and plain.total.sla == ()


def test_period_bucketing_across_month_week_and_quarter_in_another_zone() -> None:
    """31 March 23:30 UTC is 1 April in Berlin; Sunday 1 March 23:30 UTC is Monday there."""
    late_march = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    sunday = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    ts = [make(late_march), make(sunday)]
    now = datetime(2026, 4, 10, tzinfo=UTC)
    month_utc = service_metrics(ts, now, period="month")
    month_berlin = service_metrics(ts, now, period=MetricsPeriod.MONTH, timezone="Europe/Berlin")
    assert [(p.period, p.created) for p in month_utc.periods] == [("2026-03", 2)]
    assert [(p.period, p.created) for p in month_berlin.periods] == [("2026-03", 1), ("2026-04", 1)]
    assert month_berlin.periods[1].start == date(2026, 4, 1) and month_berlin.periods[1].end == date(
        2026, 5, 1
    )
    week_utc = service_metrics(ts, now, period="week")
    week_berlin = service_metrics(ts, now, period="week", timezone="Europe/Berlin")
    assert [p.period for p in week_utc.periods] == ["2026-W09", "2026-W14"]
    assert [p.period for p in week_berlin.periods] == ["2026-W10", "2026-W14"]
    quarters = service_metrics(ts, now, period="quarter", timezone="Europe/Berlin")
    assert [(p.period, p.start, p.end) for p in quarters.periods] == [
        ("2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-Q2", date(2026, 4, 1), date(2026, 7, 1)),
    ]
    assert period_of(sunday, "week", "Europe/Berlin") == ("2026-W10", date(2026, 3, 2), date(2026, 3, 9))
    assert period_of(datetime(2026, 12, 31, 12, tzinfo=UTC), "week") == (
        "2026-W53",
        date(2026, 12, 28),
        date(2027, 1, 4),
    )
    assert period_of(datetime(2026, 12, 31, 12, tzinfo=UTC), "quarter")[2] == date(2027, 1, 1)


def test_group_by_team_and_priority_with_missing_values() -> None:
    """Groups hold the field values (enums by value, None kept), sorted None first; rows name them."""
    ts = [
        make(MON, team="billing", priority=TicketPriority.HIGH, solved=H),
        make(MON, team="billing", priority=TicketPriority.HIGH),
        make(MON, team="billing", priority=TicketPriority.LOW),
        make(MON, team=None, priority=TicketPriority.LOW),
    ]
    report = service_metrics(ts, MON + D, group_by=("team", "priority"))
    assert [(p.group, p.created, p.solved) for p in report.periods] == [
        ((None, "low"), 1, 0),
        (("billing", "high"), 2, 1),
        (("billing", "low"), 1, 0),
    ]
    rows = report.rows()
    assert rows[1]["team"] == "billing" and rows[1]["priority"] == "high" and rows[1]["solved"] == 1
    assert [(b.group, b.open) for b in report.backlog] == [
        ((None, "low"), 1),
        (("billing", "high"), 1),
        (("billing", "low"), 1),
    ]
    assert report.backlog_total.open == 3
    by_channel = service_metrics(ts, MON + D, group_by="channel")
    assert [p.group for p in by_channel.periods] == [("email",)]


def test_survey_groups_follow_their_ticket_or_fall_under_none() -> None:
    """A survey is grouped by its ticket's team; one about a ticket not given goes under None."""
    t = make(MON, team="billing", solved=H)
    other = make(MON, team="sales", solved=H)
    report = service_metrics(
        [t], MON + D, surveys=[survey(t, MON + 2 * H, 5), survey(other, MON + 2 * H, 1)], group_by=["team"]
    )
    assert [(p.group, p.csat.answered, p.csat.average) for p in report.periods] == [
        ((None,), 1, 1.0),
        (("billing",), 1, 5.0),
    ]


def test_backlog_buckets_ages_and_oldest_at_now() -> None:
    """Open tickets aged 2h, exactly 1d, 5d and 10d fill each bucket; solved and future ones do not count."""
    now = MON + 20 * D
    ts = [
        make(now - 2 * H),
        make(now - D),
        make(now - 5 * D),
        oldest := make(now - 10 * D),
        make(now - 30 * D, solved=H),
        make(now + H),
    ]
    b = service_metrics(ts, now).backlog_total
    assert (b.open, b.under_1d, b.from_1d_to_3d, b.from_3d_to_7d, b.over_7d) == (4, 1, 1, 1, 1)
    assert b.oldest_age == 10 * D and b.oldest_ticket == oldest.id


def test_changes_after_now_are_ignored() -> None:
    """A ticket solved before now and reopened after it counts as solved, not reopened, not in the backlog."""
    t = make(MON, response=H, solved=2 * H, reopen=3 * D)
    assert t.reopen_count == 1 and t.solved_at is not None  # solved again after the reopen
    report = service_metrics([t], MON + D)
    assert report.total.solved == 1 and report.total.reopened == 0
    assert report.total.resolution.median == 2 * H
    assert report.backlog_total.open == 0
    reopened = service_metrics([t], MON + 3 * D + H)  # reopened, not solved again yet
    assert reopened.total.solved == 0 and reopened.backlog_total.open == 1


def test_since_and_until_bound_every_event_but_not_the_backlog() -> None:
    """Only events in [since, until) count; the backlog is still every open ticket at now."""
    before = make(MON - 10 * D)
    inside = make(MON, response=H, solved=2 * H)
    after = make(MON + 5 * D)
    report = service_metrics([before, inside, after], MON + 6 * D, since=MON, until=MON + 5 * D)
    assert report.total.created == 1 and report.total.solved == 1
    assert report.backlog_total.open == 2
    assert (report.since, report.until) == (MON, MON + 5 * D)


def test_empty_input_gives_zero_counts_and_no_rates() -> None:
    """No tickets: no periods, zero counts, None for every rate and duration (no division by zero)."""
    report = service_metrics(
        [],
        MON,
        policies=SlaPolicies(policies=(SlaPolicy(name="p", targets=(SlaTarget.hours("resolution", 4),)),)),
    )
    total = report.total
    assert report.periods == () and report.backlog == ()
    assert (total.created, total.solved, total.reopen_rate, total.resolution.median) == (0, 0, None, None)
    assert (total.csat.response_rate, total.csat.average, total.csat.satisfied) == (None, None, None)
    assert all(a.rate is None for a in total.sla) and len(total.sla) == len(SlaMetric)
    assert report.backlog_total.open == 0 and report.backlog_total.oldest_age is None
    assert "total" in report.to_text()


def test_report_round_trips_and_rows_are_json_ready() -> None:
    """The report survives unstructure/structure; rows serialize to JSON with durations in seconds."""
    t = make(MON, response=H, solved=2 * H, team="billing")
    policies = SlaPolicies(policies=(SlaPolicy(name="p", targets=(SlaTarget.hours("resolution", 4),)),))
    report = service_metrics(
        [t, make(MON, team="sales")],
        MON + D,
        surveys=[survey(t, MON + 3 * H, 4)],
        group_by=("team",),
        calendar=OFFICE,
        policies=policies,
        resolution_within=4 * H,
        timezone="Europe/Berlin",
    )
    assert structure(unstructure(report), ServiceMetrics) == report
    rows = json.loads(json.dumps(report.rows()))
    billing = next(r for r in rows if r["team"] == "billing" and r["solved"])
    assert billing["resolution_median_seconds"] == 7200 and billing["sla_resolution_rate"] == 1.0
    assert billing["csat_4"] == 1 and billing["resolved_within_rate"] == 1.0
    assert json.loads(json.dumps(report.backlog_rows())) == [
        {
            "team": "sales",
            "open": 1,
            "under_1d": 0,
            "from_1d_to_3d": 1,
            "from_3d_to_7d": 0,
            "over_7d": 0,
            "oldest_age_seconds": 86400,
            "oldest_ticket": report.backlog[0].oldest_ticket,
        }
    ]
    text = report.to_text()
    assert "billing" in text and "2h 00m" in text and "business time" in text


def test_bad_input_is_refused_with_every_problem() -> None:
    """Naive now, unknown period, zone and group field, until before since: one error lists them all."""
    with pytest.raises(ValidationError) as info:
        service_metrics(
            [],
            datetime(2026, 3, 9),
            period="fortnight",
            timezone="Mars/Olympus",
            group_by=("team", "mood"),
            since=MON,
            until=MON - D,
            resolution_within=timedelta(0),
        )
    paths = {e.path: e.reason for e in info.value.errors}
    assert set(paths) == {"now", "period", "timezone", "group_by[1]", "until", "resolution_within"}
    assert "naive" in paths["now"]
    assert "'week'" in paths["period"] and "'quarter'" in paths["period"]
    assert all(repr(name) in paths["group_by[1]"] for name in GROUP_FIELDS)
    with pytest.raises(ValidationError, match="given twice"):
        service_metrics([], MON, group_by=("team", "team"))
    with pytest.raises(ValidationError, match="naive"):
        period_of(datetime(2026, 3, 9), "day")


def test_ticket_without_creation_time_is_refused() -> None:
    """A ticket never stored (no created_at) cannot be placed in a period."""
    with pytest.raises(ValidationError, match="created_at"):
        service_metrics([Ticket(customer_id="c-1", subject="x")], MON)


def test_from_store_reads_what_matters_and_matches_the_pure_function(any_crm: CRM, tenant: str) -> None:
    """The store helper gives the pure function's answer over all tickets, old surveyed tickets included."""
    old = make(MON - 40 * D, solved=H, team="billing")  # last touched long before since
    old = attrs.evolve(old, updated_at=MON - 40 * D + H)
    recent = make(MON, response=H, solved=3 * H, team="sales", priority=TicketPriority.HIGH)
    still_open = make(MON - 60 * D, team="sales")
    ts = [attrs.evolve(t, updated_at=t.status_history[-1].at) for t in (recent, still_open)]
    ts.append(old)
    surveys = [survey(old, MON + H, 2, MON + 2 * H), survey(recent, MON + 4 * H, 5, MON + 5 * H)]
    with any_crm.unit_of_work(tenant) as uow:
        uow.tickets.bulk_add(ts)
        uow.surveys.bulk_add(surveys)
        uow.commit()
    since, now = MON - 7 * D, MON + 2 * D
    with any_crm.unit_of_work(tenant) as uow:
        stored = service_metrics_from_store(
            uow, now, since=since, batch_size=1, group_by=("team",), period="week", calendar=OFFICE
        )
    expected = service_metrics(
        ts, now, surveys=surveys, since=since, group_by=("team",), period="week", calendar=OFFICE
    )
    assert stored == expected
    assert [(p.group, p.csat.answered) for p in stored.periods if p.csat.answered] == [
        (("billing",), 1),
        (("sales",), 1),
    ]
    assert stored.backlog_total.open == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(tickets(), max_size=12, unique_by=lambda t: t.id),
    st.sampled_from(list(MetricsPeriod)),
    st.sampled_from([(), ("team",), ("priority", "assignee"), ("channel", "type")]),
)
def test_group_counts_add_up_to_totals_and_rates_stay_in_range(
    ts: list[Ticket], period: MetricsPeriod, group_by: tuple[str, ...]
) -> None:
    """Per period and group counts sum to the totals, and every rate lies in [0, 1]."""
    now = NOW + 90 * D
    report = service_metrics(ts, now, period=period, group_by=group_by, timezone="America/New_York")
    total = report.total
    for name in ("created", "solved", "reopened"):
        assert sum(getattr(p, name) for p in report.periods) == getattr(total, name)
    assert sum(p.first_response.count for p in report.periods) == total.first_response.count
    assert total.created == len(ts) and total.solved <= len(ts)
    assert sum(b.open for b in report.backlog) == report.backlog_total.open
    assert report.backlog_total.open + total.solved == len(ts)  # every ticket is open or solved at now
    for p in (*report.periods, total):
        assert p.reopen_rate is None or 0 <= p.reopen_rate <= 1
        assert p.csat.answered <= p.csat.sent
    assert all(len(p.group) == len(group_by) for p in report.periods)
    keys = [(p.start, [(v is not None, v or "") for v in p.group]) for p in report.periods]
    assert keys == sorted(keys)
    for p in report.periods:
        assert p.start is not None
        noon = datetime.combine(p.start, datetime.min.time(), UTC) + 12 * H
        assert period_of(noon, period, "America/New_York")[1] == p.start


def test_period_metrics_default_is_empty_total() -> None:
    """A bare PeriodMetrics is an all-zero cell (what an empty report's total is)."""
    assert service_metrics([], MON).total == PeriodMetrics(period=None, start=None, end=None)


def test_docs_example_output_is_what_the_page_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """The table printed by docs/service_metrics.md's example is the one the page shows after it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "service_metrics.md").read_text("utf-8")
    code = re.search(r"^```python\n(.*?)^```$", page, re.S | re.M)
    shown = re.search(r"^```text\n(.*?)^```$", page, re.S | re.M)
    assert code is not None and shown is not None
    exec(compile(code.group(1), "service_metrics.md", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out == shown.group(1)
