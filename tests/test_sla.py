"""SLA policies: targets in business time, pauses, cycles, priorities, versions, events, explanations."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.conditions import Field
from crmcore.customers import Customer
from crmcore.errors import RuleError, ValidationError
from crmcore.serialization import structure, unstructure
from crmcore.service import (
    DEFAULT_STATUSES,
    AuthorRole,
    BusinessCalendar,
    SlaBreached,
    SlaMet,
    SlaMetric,
    SlaPolicies,
    SlaPolicy,
    SlaReport,
    SlaState,
    SlaTarget,
    SlaWarning,
    Ticket,
    TicketPriority,
    event_key,
    next_check,
    sla_events,
)
from tests.test_calendar import MINUTE, calendars_and_starts, office, oracle_minutes

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_3PM = datetime(2026, 11, 20, 15, 0, tzinfo=BERLIN)
OFFICE = office()


def berlin(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


def policy(*targets: SlaTarget, **kw: object) -> SlaPolicy:
    return SlaPolicy(name=str(kw.pop("name", "standard")), targets=targets, calendar=OFFICE, **kw)  # type: ignore[arg-type]


def ticket(**kw: object) -> Ticket:
    return Ticket(customer_id="c1", subject="Printer on fire", created_at=FRIDAY_3PM, **kw)  # type: ignore[arg-type]


RESOLVE_8H = SlaTarget.hours("resolution", 8)
FIRST_2H = SlaTarget.hours("first_response", 2)
NEXT_4H = SlaTarget.hours("next_response", 4)
STANDARD = SlaPolicies(policies=(policy(FIRST_2H, NEXT_4H, RESOLVE_8H),))


def status_of(report: SlaReport, metric: str) -> object:
    found = report.status(metric)
    assert found is not None
    return found


def test_due_time_skips_the_weekend_and_reports_what_is_left() -> None:
    """Friday 15:00 + 8 business hours (09-17) is Monday 15:00; at Monday 10:00 3 h are used, 5 h left."""
    report = STANDARD.evaluate(ticket(), berlin(23, 10))
    res = report.status("resolution")
    assert res is not None
    assert res.state is SlaState.ON_TRACK
    assert res.due_at == berlin(23, 15)
    assert res.elapsed == timedelta(hours=3) and res.remaining == timedelta(hours=5)
    assert res.warning_at == berlin(23, 13, 24)  # 80 % of 8 h = 6 h 24 min
    assert [(s.start, s.end) for s in res.counted] == [
        (berlin(20, 15), berlin(20, 17)),
        (berlin(23, 9), berlin(23, 10)),
    ]
    assert res.due_at.utcoffset() == timedelta(0)  # UTC: ambiguous local times compare unequal across zones
    assert "due 2026-11-23T15:00+01:00" in res.explain("Europe/Berlin")


def test_a_pause_gives_back_business_time_only_not_wall_clock_time() -> None:
    """Waiting on the customer from Friday 16:00 to Monday 10:00 pauses 2 business hours, not 66."""
    t = ticket().change_status("pending", berlin(20, 16)).change_status("open", berlin(23, 10))
    res = STANDARD.evaluate(t, berlin(23, 10)).status("resolution")
    assert res is not None
    assert res.elapsed == timedelta(hours=1)
    assert res.due_at == berlin(23, 17)  # 7 h left from Monday 10:00
    assert [(p.start, p.end, p.status) for p in res.paused] == [(berlin(20, 16), berlin(23, 10), "pending")]
    # Without the pause the due time would be two business hours earlier.
    plain = STANDARD.evaluate(ticket(), berlin(23, 10)).status("resolution")
    assert plain is not None and plain.due_at is not None
    assert OFFICE.between(plain.due_at, res.due_at) == timedelta(hours=2)


def test_a_paused_clock_does_not_move_and_has_no_due_time() -> None:
    """While pending, elapsed stays put however late it gets; the state is paused and due_at is None."""
    t = ticket().change_status("on_hold", berlin(20, 16))
    early = STANDARD.evaluate(t, berlin(23, 9)).status("resolution")
    late = STANDARD.evaluate(t, berlin(30, 12)).status("resolution")
    assert early is not None and late is not None
    assert early.elapsed == late.elapsed == timedelta(hours=1)
    assert late.state is SlaState.PAUSED and late.due_at is None
    assert "not counted: " in late.explain() and "(wall clock) in on_hold" in late.explain()


def test_first_response_is_met_by_a_public_agent_comment_only() -> None:
    """Internal notes and the customer's messages leave the first-response clock running."""
    t = (
        ticket()
        .add_comment("a1", "looking", berlin(20, 15, 30), public=False)
        .add_comment("c1", "any news?", berlin(20, 16), role=AuthorRole.CUSTOMER)
    )
    first = STANDARD.evaluate(t, berlin(23, 9, 30)).status("first_response")
    assert first is not None and first.state is SlaState.BREACHED
    assert first.due_at == berlin(20, 17)
    t = t.add_comment("a1", "Fixed the toner", berlin(20, 16, 30))
    first = STANDARD.evaluate(t, berlin(23, 9, 30)).status("first_response")
    assert first is not None and first.state is SlaState.MET
    assert first.stopped_at == berlin(20, 16, 30) and first.remaining == timedelta(minutes=30)


def test_solving_without_a_reply_meets_the_first_response_target() -> None:
    """A ticket solved before any public reply needs no reply any more: first response is met at the solve."""
    t = ticket().change_status("solved", berlin(20, 15, 45))
    first = STANDARD.evaluate(t, berlin(25, 9)).status("first_response")
    assert first is not None and first.state is SlaState.MET and first.stopped_at == berlin(20, 15, 45)


def test_next_response_cycles_start_at_customer_messages_and_keep_history() -> None:
    """Each customer message after the first reply starts a cycle; the next agent reply ends it."""
    t = (
        ticket()
        .add_comment("a1", "Hi", berlin(20, 15, 10))
        .add_comment("c1", "Still broken", berlin(20, 16), role=AuthorRole.CUSTOMER)
        .add_comment("c1", "Hello?", berlin(23, 9), role=AuthorRole.CUSTOMER)
        .add_comment("a1", "On it", berlin(23, 14))  # 1 h Friday + 5 h Monday = 6 h > 4 h
        .add_comment("c1", "Thanks, one more thing", berlin(24, 9), role=AuthorRole.CUSTOMER)
    )
    report = STANDARD.evaluate(t, berlin(24, 10))
    [done] = report.history
    assert done.state is SlaState.BREACHED and done.due_at == berlin(23, 12)
    assert done.started_at == berlin(20, 16) and done.stopped_at == berlin(23, 14)
    now = report.status("next_response")
    assert now is not None and now.state is SlaState.ON_TRACK and now.due_at == berlin(24, 13)


def test_resolution_continues_after_a_reopen_and_stops_while_solved() -> None:
    """Time while solved does not count; a reopen resumes the same resolution clock."""
    t = (
        ticket()
        .change_status("solved", berlin(20, 16))
        .change_status("open", berlin(23, 11))  # solved time Fri 16:00 - Mon 11:00 not counted
    )
    res = STANDARD.evaluate(t, berlin(23, 12)).status("resolution")
    assert res is not None and res.elapsed == timedelta(hours=2) and res.state is SlaState.ON_TRACK
    t = t.change_status("solved", berlin(23, 13))
    res = STANDARD.evaluate(t, berlin(27, 9)).status("resolution")
    assert res is not None and res.state is SlaState.MET and res.elapsed == timedelta(hours=3)
    assert res.stopped_at == berlin(23, 13)


def test_raising_the_priority_applies_the_shorter_target_from_the_start() -> None:
    """Targets follow the current priority, measured from the ticket's start: urgent 2 h breaches at once."""
    policies = SlaPolicies(
        policies=(policy(SlaTarget.hours("resolution", 8), SlaTarget.hours("resolution", 2, "urgent")),)
    )
    t = ticket()
    res = policies.evaluate(t, berlin(23, 10)).status("resolution")
    assert res is not None and res.state is SlaState.ON_TRACK
    t.priority = TicketPriority.URGENT
    res = policies.evaluate(t, berlin(23, 10)).status("resolution")
    assert res is not None and res.state is SlaState.BREACHED and res.due_at == berlin(20, 17)


def test_warning_state_and_no_warnings_when_disabled() -> None:
    """At 80 % used the state is warning; a policy without warning_percent never warns."""
    t = ticket()
    res = STANDARD.evaluate(t, berlin(23, 14)).status("resolution")
    assert res is not None and res.state is SlaState.WARNING
    quiet = SlaPolicies(policies=(policy(RESOLVE_8H, warning_percent=None),))
    res = quiet.evaluate(t, berlin(23, 14)).status("resolution")
    assert res is not None and res.state is SlaState.ON_TRACK and res.warning_at is None


def test_first_matching_policy_wins_and_conditions_see_the_customer() -> None:
    """Policies are tried in order; customer_tags lets a VIP policy match; no match gives no statuses."""
    vip = policy(
        SlaTarget.hours("resolution", 4), name="vip", condition=Field("customer_tags").contains("vip")
    )
    urgent = policy(SlaTarget.hours("resolution", 6), name="urgent", condition=Field("priority") == "urgent")
    policies = SlaPolicies(policies=(vip, urgent))
    t = ticket(priority=TicketPriority.URGENT)
    vip_customer = Customer(id="c1", name="Ada", tags=("vip",))
    assert policies.match(t, vip_customer) is vip
    assert policies.match(t) is urgent
    plain = ticket()
    assert policies.match(plain) is None
    report = policies.evaluate(plain, berlin(23, 10))
    assert report.policy is None and report.statuses == ()


def test_a_ticket_keeps_its_pinned_version_until_reapplied() -> None:
    """apply() pins name and version; new versions need old ones kept as retired."""
    v1 = policy(SlaTarget.hours("resolution", 8))
    t = SlaPolicies(policies=(v1,)).apply(ticket())
    assert (t.sla_policy, t.sla_version) == ("standard", 1)
    v2 = policy(SlaTarget.hours("resolution", 4), version=2)
    with pytest.raises(RuleError, match="version 1 is neither in force nor retired"):
        SlaPolicies(policies=(v2,)).evaluate(t, berlin(23, 10))
    both = SlaPolicies(policies=(v2,), retired=(v1,))
    res = both.evaluate(t, berlin(23, 10)).status("resolution")
    assert res is not None and res.target == timedelta(hours=8)
    again = both.apply(t, reapply=True)
    assert again.sla_version == 2 and both.apply(t) is t


def test_events_fire_once_per_moment_and_next_check_points_at_the_next_moment() -> None:
    """sla_events gives warning then breach with their own moments; fired keys silence them."""
    t = ticket()
    early = STANDARD.evaluate(t, berlin(20, 16))
    assert sla_events(early, []) == []
    assert next_check(early, []) == berlin(20, 16, 36)  # first response warning: 80 % of 2 h
    report = STANDARD.evaluate(t, berlin(23, 10))
    events = sla_events(report, [])
    assert [(type(e), e.metric, e.occurred_at) for e in events] == [
        (SlaWarning, SlaMetric.FIRST_RESPONSE, berlin(20, 16, 36)),
        (SlaBreached, SlaMetric.FIRST_RESPONSE, berlin(20, 17)),
    ]
    fired = [event_key(e, "warning" if isinstance(e, SlaWarning) else "breached") for e in events]
    assert sla_events(report, fired) == []
    assert next_check(report, fired) == berlin(23, 13, 24)  # the resolution warning is next
    late_reply = t.add_comment("a1", "Done", berlin(23, 11))
    assert sla_events(STANDARD.evaluate(late_reply, berlin(23, 12)), fired) == []  # breached, so no met


def test_met_event_for_a_timely_reply() -> None:
    """A reply within target gives one SlaMet with the time to spare; none again once fired."""
    t = ticket().add_comment("a1", "Hello", berlin(20, 15, 30))
    report = STANDARD.evaluate(t, berlin(20, 16))
    [met] = sla_events(report, [])
    assert isinstance(met, SlaMet) and met.remaining == timedelta(minutes=90)
    assert met.occurred_at == berlin(20, 15, 30)
    assert sla_events(report, [event_key(met, "met")]) == []


def test_explanation_intervals_add_up_to_elapsed() -> None:
    """The counted intervals are business time only and sum to elapsed; explain() says it in words."""
    t = ticket().change_status("pending", berlin(23, 11)).change_status("open", berlin(24, 9, 30))
    res = STANDARD.evaluate(t, berlin(24, 12)).status("resolution")
    assert res is not None
    assert (
        sum((s.duration for s in res.counted), timedelta(0)) == res.elapsed == timedelta(hours=6, minutes=30)
    )
    assert all(OFFICE.between(s.start, s.end) == s.duration for s in res.counted)
    assert res.explain().startswith("resolution: warning; 6h 30m of 8h 00m business time used")
    fast = STANDARD.evaluate(t, berlin(24, 12), explain=False).status("resolution")
    assert fast is not None and fast.counted == () and fast.paused == () and fast.due_at == res.due_at


def test_config_and_reports_round_trip_through_the_converter() -> None:
    """Policies (conditions, calendars, targets) and reports come back equal from plain data."""
    policies = SlaPolicies(
        policies=(
            policy(
                FIRST_2H, RESOLVE_8H, name="vip", version=2, condition=Field("customer_tags").contains("vip")
            ),
            policy(SlaTarget.hours("resolution", 24, "low"), pause_statuses=("pending",), warning_percent=50),
        ),
        retired=(policy(RESOLVE_8H, name="vip", description="old"),),
    )
    assert structure(unstructure(policies), SlaPolicies) == policies
    t = ticket().change_status("pending", berlin(23, 11)).add_comment("a1", "x", berlin(23, 12))
    report = STANDARD.evaluate(t, berlin(24, 12))
    data = unstructure(report)
    assert data["statuses"][0]["target"] == 7200
    assert structure(data, SlaReport) == report


def test_bad_policies_report_every_problem_at_once() -> None:
    """No targets, a repeated target, an unknown field and a bad pause status are all named together."""
    with pytest.raises(ValidationError) as info:
        SlaPolicy(name="x", targets=(), condition=Field("nope") == 1, pause_statuses=("waiting", "solved"))
    paths = {e.path for e in info.value.errors}
    assert {"targets", "pause_statuses[0]", "pause_statuses[1]"} <= paths
    assert any(p.startswith("condition") for p in paths)
    with pytest.raises(ValidationError, match="repeats the resolution target for any priority"):
        SlaPolicy(name="x", targets=(RESOLVE_8H, SlaTarget.hours("resolution", 9)))
    with pytest.raises(ValidationError, match="minutes"):
        SlaTarget(metric=SlaMetric.RESOLUTION, minutes=0)
    with pytest.raises(ValidationError, match="warning_percent"):
        SlaPolicy(name="x", targets=(RESOLVE_8H,), warning_percent=100)
    with pytest.raises(ValidationError, match="in force twice"):
        SlaPolicies(policies=(policy(RESOLVE_8H), policy(FIRST_2H)))
    with pytest.raises(ValidationError, match="defined twice"):
        SlaPolicies(policies=(policy(RESOLVE_8H),), retired=(policy(FIRST_2H),))


def test_bad_evaluation_input_is_refused() -> None:
    """A naive now and an unstored ticket (no created_at) raise ValidationError naming the field."""
    with pytest.raises(ValidationError, match="now"):
        STANDARD.evaluate(ticket(), datetime(2026, 11, 23, 10))
    with pytest.raises(ValidationError, match="created_at"):
        STANDARD.evaluate(Ticket(customer_id="c1", subject="x"), berlin(23, 10))
    with pytest.raises(ValidationError, match="sla_version"):
        Ticket(customer_id="c1", subject="x", sla_policy="standard")


def test_changes_after_now_are_ignored() -> None:
    """Evaluating as of an earlier moment replays only the history up to it."""
    t = ticket().change_status("solved", berlin(23, 10)).add_comment("a1", "late", berlin(23, 11))
    report = STANDARD.evaluate(t, berlin(23, 9, 30))
    first, res = report.status("first_response"), report.status("resolution")
    assert first is not None and first.state is SlaState.BREACHED
    assert (
        res is not None and res.state is SlaState.ON_TRACK and res.elapsed == timedelta(hours=2, minutes=30)
    )


# --- the pause oracle ----------------------------------------------------------------------------

OPEN_NAMES = ["new", "open", "pending", "on_hold", "solved"]


@settings(max_examples=60, deadline=None)
@given(
    case=calendars_and_starts(),
    steps=st.lists(st.tuples(st.integers(0, 600), st.sampled_from(OPEN_NAMES)), max_size=6),
    target=st.integers(1, 1500),
    later=st.integers(0, 1500),
)
def test_clock_matches_a_minute_by_minute_oracle_on_every_status_path(
    case: tuple[BusinessCalendar, datetime], steps: list[tuple[int, str]], target: int, later: int
) -> None:
    """Elapsed, state and due time equal a slow oracle that counts running business minutes one by one."""
    cal, start = case
    if not cal.hours and not cal.special_days:
        cal = BusinessCalendar.always_open(cal.timezone)
    pol = SlaPolicy(name="p", targets=(SlaTarget(metric=SlaMetric.RESOLUTION, minutes=target),), calendar=cal)
    t = Ticket(customer_id="c1", subject="s", created_at=start)
    at = start
    for gap, name in steps:
        at += gap * MINUTE
        if name != t.status:
            t = t.change_status(name, at)
    now = at + later * MINUTE
    book = SlaPolicies(policies=(pol,))
    res = book.evaluate(t, now).status("resolution")
    assert res is not None
    [bulk] = book.evaluate_many([t], now)  # the fast path agrees, explanation aside
    assert bulk.statuses == (attrs.evolve(res, counted=(), paused=()),)

    business = set(oracle_minutes(cal, start, now))
    kinds = DEFAULT_STATUSES
    changes = [(c.at, c.to_status) for c in t.status_history]

    def status_at(minute: datetime) -> str:
        current = "new"
        for when, name in changes:
            if when <= minute:
                current = name
        return current

    counted = 0
    crossed: datetime | None = None
    minute = start
    while minute < now:
        name = status_at(minute)
        if name not in ("pending", "on_hold") and not kinds.is_solved(name) and minute in business:
            counted += 1
            if counted == target and crossed is None:
                crossed = minute + MINUTE
        minute += MINUTE
    assert res.elapsed == counted * MINUTE
    current = t.status
    if kinds.is_solved(current):
        expected = SlaState.MET if counted <= target else SlaState.BREACHED
    elif counted >= target:
        expected = SlaState.BREACHED
    elif current in ("pending", "on_hold"):
        expected = SlaState.PAUSED
    elif counted * 100 >= target * 80:
        expected = SlaState.WARNING
    else:
        expected = SlaState.ON_TRACK
    assert res.state is expected
    if counted >= target and crossed is not None:
        assert res.due_at == crossed
    if expected is SlaState.PAUSED:
        assert res.due_at is None
    # Staying paused longer never moves the clock.
    if current in ("pending", "on_hold"):
        later_res = SlaPolicies(policies=(pol,)).evaluate(t, now + timedelta(days=3)).status("resolution")
        assert later_res is not None and later_res.elapsed == res.elapsed
