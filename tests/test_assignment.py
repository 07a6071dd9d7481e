"""The assignment engine: rules, strategies, availability, tie-breaks, validation, concurrency."""

from __future__ import annotations

import multiprocessing
import operator
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any, cast

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import crmcore
from crmcore.assignment import (
    MAX_WEIGHT,
    AssignmentConfig,
    AssignmentDecision,
    AssignmentRule,
    Member,
    MemberTurns,
    Queue,
    QueueState,
    Roster,
    Router,
    SkipReason,
    Strategy,
    Target,
    Territory,
    assign,
    assign_with_retry,
)
from crmcore.assignment.strategies import advance
from crmcore.conditions import All, Condition, Field, FieldDef, FieldSet, FieldType, evaluate
from crmcore.errors import ConcurrencyError, ValidationError
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.predicates import compile_condition
from crmcore.serialization import structure, unstructure
from crmcore.service import TICKET_FIELDS, BusinessCalendar, Ticket, Weekday, WorkingHours
from crmcore.storage.base import UnitOfWork
from crmcore.storage.sql import SqlStore
from crmcore.testing import strategies as cst

from .conftest import postgres_url

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
REGIONS = ("emea", "amer", "apac")
INDUSTRIES = ("retail", "banking", "health")
USERS = ("ann", "bob", "cy", "dan", "eve", "fay")


@attrs.frozen
class Lead:
    """A small subject for the engine: the router only sees it through `LEAD_FIELDS`."""

    region: str
    industry: str
    size: int
    band: str | None = None


LEAD_FIELDS = FieldSet.of(
    "Lead",
    [
        FieldDef("region", FieldType.TEXT, operator.attrgetter("region"), nullable=False, choices=REGIONS),
        FieldDef(
            "industry", FieldType.TEXT, operator.attrgetter("industry"), nullable=False, choices=INDUSTRIES
        ),
        FieldDef("size", FieldType.INTEGER, operator.attrgetter("size"), nullable=False),
        FieldDef("band", FieldType.TEXT, operator.attrgetter("band")),
    ],
)

leads = st.builds(
    Lead,
    region=st.sampled_from(REGIONS),
    industry=st.sampled_from(INDUSTRIES),
    size=st.integers(0, 5000),
    band=st.none() | st.sampled_from(["small", "mid", "large"]),
)


def _one_queue(queue: Queue) -> Router:
    rule = AssignmentRule(name="all", condition=All(), target=Target.to_queue(queue.name))
    return Router(AssignmentConfig(rules=(rule,), queues=(queue,)), LEAD_FIELDS)


def _everyone(users: tuple[str, ...] | list[str], **kw: Any) -> Roster:
    return Roster(members=tuple(Member(user=u) for u in users), **kw)


def _run(
    router: Router, roster: Roster, n: int, state: QueueState | None = None
) -> tuple[list[str], QueueState]:
    """Route ``n`` leads in a row, carrying the rotation state; the owners and the last state."""
    owners: list[str] = []
    states = {} if state is None else {state.id: state}
    for _ in range(n):
        routing = router.route(Lead(region="emea", industry="retail", size=10), roster, NOW, states)
        assert routing.decision.owner is not None and routing.state is not None
        owners.append(routing.decision.owner)
        states[routing.state.id] = routing.state
    return owners, states[router.config.queues[0].name] if states else QueueState(id="q")


# --- round robin ---------------------------------------------------------------------------


@given(
    members=st.lists(st.sampled_from(USERS), min_size=1, unique=True),
    history=st.lists(st.sampled_from(USERS), max_size=20),
    n=st.integers(0, 40),
)
def test_round_robin_never_favours_anyone_by_more_than_one(
    members: list[str], history: list[str], n: int
) -> None:
    """Whatever the stored history, any run of round-robin turns keeps members within one of each other."""
    queue = Queue(name="q", members=tuple(members))
    prior = QueueState(id="q")
    for user in history:  # earlier turns, some to users no longer in the queue
        prior = advance(Queue(name="q", members=tuple(sorted({*members, user}))), prior, user)
    owners, state = _run(_one_queue(queue), _everyone(USERS), n, prior)
    counts = Counter(owners)
    assert max(counts[m] for m in members) - min(counts[m] for m in members) <= 1
    assert state.sequence == prior.sequence + n


def test_round_robin_ties_go_to_the_longest_waiting_then_the_smallest_id() -> None:
    """Never-assigned members go first by user id; a newcomer gets one turn at once, then rotates."""
    router = _one_queue(Queue(name="q", members=("cy", "ann", "bob")))
    owners, state = _run(router, _everyone(USERS), 4)
    assert owners == ["ann", "bob", "cy", "ann"]
    joined = _one_queue(Queue(name="q", members=("cy", "ann", "bob", "aaron")))
    more, _ = _run(joined, _everyone([*USERS, "aaron"]), 5, state)
    assert more == ["aaron", "bob", "cy", "ann", "aaron"]


def test_round_robin_does_not_depend_on_member_order() -> None:
    """Listing the members in another order hands out the same turns."""
    a, _ = _run(_one_queue(Queue(name="q", members=("ann", "bob", "cy"))), _everyone(USERS), 7)
    b, _ = _run(_one_queue(Queue(name="q", members=("cy", "bob", "ann"))), _everyone(USERS), 7)
    assert a == b


def test_a_member_back_from_leave_gets_one_turn_not_a_flood() -> None:
    """A member skipped while away takes the next turn on return and then rotates normally."""
    router = _one_queue(Queue(name="q", members=("ann", "bob", "cy")))
    away = Roster(members=(Member(user="ann", out_of_office=True), Member(user="bob"), Member(user="cy")))
    owners, state = _run(router, away, 6)
    assert owners == ["bob", "cy"] * 3
    back, _ = _run(router, _everyone(USERS), 4, state)
    assert back == ["ann", "bob", "cy", "ann"]


# --- weighted round robin ------------------------------------------------------------------


@settings(max_examples=150)
@given(weights=st.lists(st.integers(1, 6), min_size=1, max_size=len(USERS)), cycles=st.integers(1, 3))
def test_weighted_round_robin_follows_the_weights_within_one(weights: list[int], cycles: int) -> None:
    """Every member's turns stay within one of n * weight / W at every point, and each cycle is exact."""
    members = USERS[: len(weights)]
    weight = dict(zip(members, weights, strict=True))
    queue = Queue(name="q", strategy=Strategy.WEIGHTED_ROUND_ROBIN, members=members, weights=weight)
    owners, _ = _run(_one_queue(queue), _everyone(USERS), cycles * sum(weights))
    total = sum(weights)
    counts: Counter[str] = Counter()
    for n, owner in enumerate(owners, start=1):
        counts[owner] += 1
        for m in members:
            assert abs(counts[m] - Fraction(n * weight[m], total)) < 1, (n, m, dict(counts))
        if n % total == 0:
            assert all(counts[m] == n // total * weight[m] for m in members)


def test_weighted_round_robin_interleaves_rather_than_batches() -> None:
    """Weights 3:1 give ann three of every four turns, spread out, never four in a row."""
    queue = Queue(
        name="q", strategy=Strategy.WEIGHTED_ROUND_ROBIN, members=("ann", "bob"), weights={"ann": 3}
    )
    owners, state = _run(_one_queue(queue), _everyone(USERS), 8)
    assert owners == ["ann", "ann", "bob", "ann"] * 2
    assert state.turns("ann") == MemberTurns(last_turn=8, count=6, cycle=3)


# --- least loaded --------------------------------------------------------------------------


@given(
    loads=st.dictionaries(st.sampled_from(USERS), st.integers(0, 6)),
    capacities=st.dictionaries(st.sampled_from(USERS), st.integers(0, 6)),
    n=st.integers(1, 25),
)
def test_least_loaded_picks_a_minimum_and_respects_capacity(
    loads: dict[str, int], capacities: dict[str, int], n: int
) -> None:
    """Each turn goes to a member with the least open work among those below capacity; none goes over."""
    queue = Queue(name="q", strategy=Strategy.LEAST_LOADED, members=USERS)
    config = AssignmentConfig(
        rules=(AssignmentRule(name="all", condition=All(), target=Target.to_queue("q")),),
        queues=(queue,),
    )
    router = Router(config, LEAD_FIELDS)
    roster = Roster(members=tuple(Member(user=u, capacity=capacities.get(u)) for u in USERS), loads=loads)
    states: dict[str, QueueState] = {}
    for _ in range(n):
        open_to = {u: roster.load(u) for u in USERS if u not in capacities or roster.load(u) < capacities[u]}
        routing = router.route(Lead(region="emea", industry="retail", size=1), roster, NOW, states)
        owner = routing.decision.owner
        if not open_to:
            assert owner is None and {s.reason for s in routing.decision.skipped} == {SkipReason.AT_CAPACITY}
            break
        assert owner is not None and routing.state is not None
        assert roster.load(owner) == min(open_to.values())
        states["q"] = routing.state
        roster = roster.with_assignment(owner)
        assert owner not in capacities or roster.load(owner) <= capacities[owner]


def test_least_loaded_ties_go_to_the_longest_waiting_member() -> None:
    """Equal loads: the member whose last turn is oldest wins, not the first listed or the oldest account."""
    queue = Queue(name="q", strategy=Strategy.LEAST_LOADED, members=("ann", "bob", "cy"))
    router = _one_queue(queue)
    state = QueueState(id="q")
    for user in ("cy", "ann", "bob"):
        state = advance(queue, state, user)
    roster = _everyone(["ann", "bob", "cy"], loads={"ann": 2, "bob": 2, "cy": 2})
    owners, _ = _run(router, roster, 3, state)  # loads never change here: ties rotate by last turn
    assert owners == ["cy", "ann", "bob"]


# --- availability, fallback, determinism ----------------------------------------------------


def _closed_calendar() -> BusinessCalendar:
    """Open only on Sundays, so closed at `NOW` (a Monday)."""
    return BusinessCalendar(
        timezone="Europe/Berlin", hours=(WorkingHours(weekday=Weekday.SUNDAY, start="09:00", end="17:00"),)
    )


def test_unavailable_members_are_skipped_with_their_reason() -> None:
    """Inactive, out of office (flag or period), off hours and full members are skipped, each named."""
    roster = Roster(
        members=(
            Member(user="ann", active=False),
            Member(user="bob", out_of_office=True),
            Member(user="cy", away_until=NOW + timedelta(days=3)),
            Member(user="dan", calendar=_closed_calendar()),
            Member(user="eve", capacity=2),
            Member(user="fay", away_until=NOW),
        ),
        loads={"eve": 2},
    )
    router = _one_queue(Queue(name="q", members=("ann", "bob", "cy", "dan", "eve", "fay", "gus")))
    decision = router.route(Lead(region="emea", industry="retail", size=1), roster, NOW).decision
    assert decision.owner == "fay"
    reasons = {s.user: s.reason for s in decision.skipped}
    assert reasons == {
        "ann": SkipReason.INACTIVE,
        "bob": SkipReason.OUT_OF_OFFICE,
        "cy": SkipReason.OUT_OF_OFFICE,
        "dan": SkipReason.OFF_HOURS,
        "eve": SkipReason.AT_CAPACITY,
        "gus": SkipReason.NOT_ON_ROSTER,
    }
    assert "'cy' is out of office until 2026-03-05" in {s.user: s.detail for s in decision.skipped}["cy"]


@settings(max_examples=50)
@given(
    offsets=st.lists(st.integers(-3 * 24 * 60, 10 * 24 * 60), min_size=1, max_size=30),
    away=st.none() | st.integers(-24 * 60, 5 * 24 * 60),
    sunday_only=st.booleans(),
)
def test_a_roster_answers_like_its_members_at_any_instant(
    offsets: list[int], away: int | None, sunday_only: bool
) -> None:
    """What a roster remembers of calendars and absences never changes an answer, in any order of instants."""
    office = BusinessCalendar(
        timezone="Europe/Berlin",
        hours=tuple(WorkingHours(weekday=d, start="09:00", end="17:30") for d in list(Weekday)[:5]),
    )
    until = None if away is None else NOW + timedelta(minutes=away)
    members = (
        Member(user="ann", calendar=_closed_calendar() if sunday_only else office, away_until=until),
        Member(user="bob", away_until=until),
        Member(user="cy", calendar=office, active=False),
    )
    roster = Roster(members=members)
    for offset in offsets:
        at = NOW + timedelta(minutes=offset)
        for member in members:
            assert roster.unavailable(member.user, at) == member.unavailable(at), (member.user, at)
        assert roster.unavailable("zed", at) is not None
        free, passed_over = roster.sort_out(("ann", "bob", "cy", "zed"), at)
        assert free == [m.user for m in members if m.unavailable(at) is None]
        assert [s.user for s in passed_over] == [m.user for m in members if m.unavailable(at)] + ["zed"]


def test_unavailable_target_falls_back_and_says_why() -> None:
    """A rule's user who is away sends the subject to the fallback; without one it stays unassigned."""
    rule = AssignmentRule(name="big", condition=Field("size") >= 1000, target=Target.to_user("ann"))
    queues = (Queue(name="pool", members=("bob", "cy")),)
    roster = Roster(members=(Member(user="ann", out_of_office=True), Member(user="bob"), Member(user="cy")))
    big = Lead(region="emea", industry="retail", size=5000)
    with_fallback = Router(
        AssignmentConfig(rules=(rule,), queues=queues, fallback=Target.to_queue("pool")), LEAD_FIELDS
    )
    decision = with_fallback.route(big, roster, NOW).decision
    assert (decision.owner, decision.rule, decision.queue, decision.fallback) == ("bob", "big", "pool", True)
    assert decision.reason.startswith("rule 'big' matched; user 'ann' is unavailable; fallback queue 'pool'")
    bare = (
        Router(AssignmentConfig(rules=(rule,), queues=queues), LEAD_FIELDS).route(big, roster, NOW).decision
    )
    assert (bare.owner, bare.rule, bare.fallback, bare.turn) == (None, "big", False, None)
    assert bare.reason == "rule 'big' matched; user 'ann' is unavailable; left unassigned"
    small = Lead(region="emea", industry="retail", size=1)
    nothing = (
        Router(AssignmentConfig(rules=(rule,), queues=queues), LEAD_FIELDS).route(small, roster, NOW).decision
    )
    assert (nothing.owner, nothing.rule, nothing.reason) == (None, None, "no rule matched; left unassigned")


@st.composite
def configs(draw: st.DrawFn) -> AssignmentConfig:
    """Random rule tables over `LEAD_FIELDS`: every strategy, user targets, territories, fallback or not."""
    queues: list[Queue] = []
    for i in range(draw(st.integers(1, 4))):
        strategy = draw(st.sampled_from([s for s in Strategy if s is not Strategy.TERRITORY]))
        members = tuple(draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=4, unique=True)))
        weights = (
            {m: draw(st.integers(1, 4)) for m in members} if strategy is Strategy.WEIGHTED_ROUND_ROBIN else {}
        )
        queues.append(Queue(name=f"q{i}", strategy=strategy, members=members, weights=weights))
    names = [q.name for q in queues]
    target = st.builds(Target.to_queue, st.sampled_from(names)) | st.builds(
        Target.to_user, st.sampled_from(USERS)
    )
    if draw(st.booleans()):
        regions = draw(st.lists(st.sampled_from(REGIONS), max_size=3, unique=True)) or ["emea"]
        territories = tuple(Territory(values=(r,), target=draw(target)) for r in regions)
        otherwise = draw(st.none() | target)
        queues.append(
            Queue(
                name="geo",
                strategy=Strategy.TERRITORY,
                field="region",
                territories=territories,
                otherwise=otherwise,
            )
        )
        target = target | st.just(Target.to_queue("geo"))
    rules = tuple(
        AssignmentRule(
            name=f"r{i}", condition=draw(cst.conditions(3, fields=LEAD_FIELDS)), target=draw(target)
        )
        for i in range(draw(st.integers(0, 5)))
    )
    return AssignmentConfig(rules=rules, queues=tuple(queues), fallback=draw(st.none() | target))


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    """Random availability: inactive, out of office, away, off hours, at capacity, or not on the roster."""
    members = []
    for user in draw(st.lists(st.sampled_from(USERS), unique=True)):
        members.append(
            Member(
                user=user,
                active=draw(st.booleans()),
                out_of_office=draw(st.booleans()),
                away_until=draw(
                    st.none() | st.sampled_from([NOW - timedelta(hours=1), NOW + timedelta(hours=1)])
                ),
                calendar=draw(
                    st.none() | st.sampled_from([_closed_calendar(), BusinessCalendar.always_open()])
                ),
                capacity=draw(st.none() | st.integers(0, 3)),
            )
        )
    loads = draw(st.dictionaries(st.sampled_from(USERS), st.integers(0, 4)))
    return Roster(members=tuple(members), loads=loads)


def _available(roster: Roster, user: str) -> bool:
    member = roster.member(user)
    return (
        member is not None
        and member.active
        and not member.out_of_office
        and (member.away_until is None or member.away_until <= NOW)
        and (member.calendar is None or member.calendar.is_open(NOW))
        and (member.capacity is None or roster.load(user) < member.capacity)
    )


@settings(max_examples=200)
@given(config=configs(), roster=rosters(), subjects=st.lists(leads, min_size=1, max_size=6))
def test_every_subject_gets_one_available_owner_or_the_fallback(
    config: AssignmentConfig, roster: Roster, subjects: list[Lead]
) -> None:
    """The first matching rule is reported; an owner is always available; no owner only after the fallback."""
    router = Router(config, LEAD_FIELDS)
    states: dict[str, QueueState] = {}
    for subject in subjects:
        routing = router.route(subject, roster, NOW, states)
        decision = routing.decision
        expected = next(
            (r.name for r in config.rules if evaluate(r.condition, subject, LEAD_FIELDS, NOW)), None
        )
        assert decision.rule == expected
        if decision.owner is not None:
            assert _available(roster, decision.owner)
            assert decision.owner not in {s.user for s in decision.skipped}
            assert (routing.state is None) == (decision.queue is None)
        else:
            assert decision.fallback or config.fallback is None
            assert routing.state is None and decision.reason.endswith("left unassigned")
        if decision.rule is None:
            assert decision.fallback == (config.fallback is not None)
        if routing.state is not None:
            assert decision.turn == routing.state.sequence
            assert decision.owner in config.queue(routing.state.id).members
            states[routing.state.id] = routing.state
        assert structure(unstructure(decision), AssignmentDecision) == decision


@settings(max_examples=100)
@given(config=configs(), roster=rosters(), subjects=st.lists(leads, min_size=1, max_size=6))
def test_same_inputs_same_decisions(config: AssignmentConfig, roster: Roster, subjects: list[Lead]) -> None:
    """Routing is deterministic: a router built from the config's serialized form decides the same."""
    first = Router(config, LEAD_FIELDS)
    second = Router(structure(unstructure(config), AssignmentConfig), LEAD_FIELDS)
    again = structure(unstructure(roster), Roster)
    a_states: dict[str, QueueState] = {}
    b_states: dict[str, QueueState] = {}
    for subject in subjects:
        a, b = first.route(subject, roster, NOW, a_states), second.route(subject, again, NOW, b_states)
        assert a == b
        assert first.queue_for(subject, roster, NOW) == (a.state.id if a.state else None)
        if a.state is not None and b.state is not None:
            a_states[a.state.id], b_states[b.state.id] = a.state, b.state


# --- territories ----------------------------------------------------------------------------


def test_territories_route_by_field_value_to_users_and_sub_queues() -> None:
    """Region picks a sub-queue or a user; a region without territory goes to ``otherwise``."""
    config = AssignmentConfig(
        rules=(AssignmentRule(name="by region", condition=All(), target=Target.to_queue("geo")),),
        queues=(
            Queue(
                name="geo",
                strategy=Strategy.TERRITORY,
                field="region",
                territories=(
                    Territory(values=("emea",), target=Target.to_queue("europe")),
                    Territory(values=("apac",), target=Target.to_user("dan")),
                ),
                otherwise=Target.to_user("eve"),
            ),
            Queue(name="europe", members=("ann", "bob")),
        ),
    )
    router = Router(config, LEAD_FIELDS)
    roster = _everyone(USERS)
    owners = [
        router.route(Lead(region=r, industry="retail", size=1), roster, NOW).decision
        for r in ("emea", "apac", "amer")
    ]
    assert [(d.owner, d.queue) for d in owners] == [("ann", "europe"), ("dan", None), ("eve", None)]
    assert "territory queue 'geo': region 'amer' goes to otherwise, user 'eve'" in owners[2].reason


def test_bands_on_an_optional_field_without_otherwise_use_the_fallback() -> None:
    """A subject with no value in the territory field lands in the fallback."""
    config = AssignmentConfig(
        rules=(AssignmentRule(name="by band", condition=All(), target=Target.to_queue("bands")),),
        queues=(
            Queue(
                name="bands",
                strategy=Strategy.TERRITORY,
                field="band",
                territories=(Territory(values=("large", "mid"), target=Target.to_user("ann")),),
            ),
        ),
        fallback=Target.to_user("bob"),
    )
    router = Router(config, LEAD_FIELDS)
    decision = router.route(Lead(region="emea", industry="retail", size=1), _everyone(USERS), NOW).decision
    assert (decision.owner, decision.fallback) == ("bob", True)
    assert "no territory for band no value" in decision.reason


# --- validation -----------------------------------------------------------------------------


def test_a_bad_rule_table_reports_every_problem_at_once() -> None:
    """Repeated rule and queue names, unknown queues and empty queues are all listed together."""
    rule = AssignmentRule(name="a", condition=All(), target=Target.to_queue("nowhere"))
    with pytest.raises(ValidationError) as info:
        AssignmentConfig(
            rules=(rule, attrs.evolve(rule, target=Target.to_queue("q"))),
            queues=(Queue(name="q", members=("ann",)), Queue(name="q", members=("bob",))),
            fallback=Target.to_queue("gone"),
        )
    paths = {e.path: e.reason for e in info.value.errors}
    assert set(paths) == {"rules[1].name", "queues[1].name", "rules[0].target", "fallback"}
    assert paths["rules[0].target"] == "unknown queue 'nowhere'; queues: 'q'"
    with pytest.raises(ValidationError, match="round robin queue 'q' has no members"):
        Queue(name="q")


def test_queue_definitions_are_checked() -> None:
    """Bad weights, weights of non-members or other strategies, repeated members, territory slips fail."""
    with pytest.raises(ValidationError) as info:
        Queue(
            name="q",
            strategy=Strategy.WEIGHTED_ROUND_ROBIN,
            members=("ann", "ann"),
            weights={"ann": 0, "bob": MAX_WEIGHT + 1, "cy": True},
        )
    assert {e.path for e in info.value.errors} == {"weights.ann", "weights.bob", "weights.cy"}
    with pytest.raises(ValidationError) as info:
        Queue(name="q", members=("ann", "ann"), weights={"bob": 2})
    assert {e.path for e in info.value.errors} == {"members[1]", "weights", "weights.bob"}
    with pytest.raises(ValidationError) as info:
        Queue(
            name="t",
            strategy=Strategy.TERRITORY,
            members=("ann",),
            territories=(
                Territory(values=("emea",), target=Target.to_user("ann")),
                Territory(values=("emea", "apac"), target=Target.to_user("bob")),
            ),
        )
    assert {e.path for e in info.value.errors} == {"members", "field", "territories[1].values"}
    with pytest.raises(ValidationError, match="name exactly one of user and queue"):
        Target(user="ann", queue="q")


def test_territory_loops_are_refused() -> None:
    """A territory queue whose targets lead back to itself is refused when the config is built."""

    def geo(name: str, to: str) -> Queue:
        territory = Territory(values=("emea",), target=Target.to_queue(to))
        return Queue(name=name, strategy=Strategy.TERRITORY, field="region", territories=(territory,))

    with pytest.raises(ValidationError, match="territory queue 'a' leads back to itself"):
        AssignmentConfig(queues=(geo("a", "b"), geo("b", "a")))


def test_conditions_and_territory_fields_are_checked_against_the_fields() -> None:
    """Unknown fields, wrong value types and bad territory values are refused when the router is built."""
    config = AssignmentConfig(
        rules=(
            AssignmentRule(name="x", condition=Field("nope") == "a", target=Target.to_user("ann")),
            AssignmentRule(name="y", condition=All(Field("size") == "big"), target=Target.to_user("ann")),
        ),
        queues=(
            Queue(
                name="geo",
                strategy=Strategy.TERRITORY,
                field="region",
                territories=(Territory(values=("mars",), target=Target.to_user("ann")),),
            ),
            Queue(
                name="by-size",
                strategy=Strategy.TERRITORY,
                field="size",
                territories=(Territory(values=("1",), target=Target.to_user("ann")),),
            ),
        ),
    )
    with pytest.raises(ValidationError) as info:
        Router(config, LEAD_FIELDS)
    paths = {e.path: e.reason for e in info.value.errors}
    assert set(paths) == {
        "rules[0].condition",
        "rules[1].condition.conditions[0]",
        "queues[0].territories[0].values",
        "queues[1].field",
    }
    assert "unknown field 'nope' on Lead" in paths["rules[0].condition"]
    assert "'mars' is not a valid region" in paths["queues[0].territories[0].values"]


def test_bad_inputs_are_refused() -> None:
    """A naive now, bad capacities and loads, a repeated roster member and a wrong state are refused."""
    router = _one_queue(Queue(name="q", members=("ann",)))
    lead = Lead(region="emea", industry="retail", size=1)
    with pytest.raises(ValidationError, match="naive datetime"):
        router.route(lead, _everyone(["ann"]), datetime(2026, 3, 2, 10))
    with pytest.raises(ValidationError, match="now"):
        router.queue_for(lead, _everyone(["ann"]), datetime(2026, 3, 2, 10))
    bad: list[Any] = [-1, 1.5, True, "3"]
    for capacity in bad:
        with pytest.raises(ValidationError, match="capacity"):
            Member(user="ann", capacity=capacity)
    with pytest.raises(ValidationError) as info:
        Roster(members=(Member(user="ann"), Member(user="ann")), loads={"ann": -1, "bob": cast(int, 1.0)})
    assert {e.path for e in info.value.errors} == {"loads.ann", "loads.bob"}
    with pytest.raises(ValidationError, match="on the roster twice"):
        Roster(members=(Member(user="ann"), Member(user="ann")))
    with pytest.raises(ValidationError, match="the state under 'q' is for queue 'other'"):
        router.route(lead, _everyone(["ann"]), NOW, {"q": QueueState(id="other")})
    with pytest.raises(ValidationError, match="away_until"):
        Member(user="ann", away_until=datetime(2026, 3, 2))
    with pytest.raises(ValidationError, match="counts add up to 1, not the sequence 2"):
        QueueState(id="q", sequence=2, members={"ann": MemberTurns(last_turn=2, count=1)})
    with pytest.raises(ValidationError, match="attempts"):
        assign_with_retry(crmcore.open("memory://"), "t", lambda uow: None, attempts=0)


# --- compiled conditions, the rule index and serialization -------------------------------------


@settings(max_examples=60)
@given(
    conditions=st.lists(
        st.builds(
            lambda region, industries, size: All(
                Field("region") == region, Field("industry").in_(industries), Field("size") >= size
            ),
            st.sampled_from(REGIONS),
            st.lists(st.sampled_from(INDUSTRIES), max_size=3),
            st.integers(0, 5000),
        )
        | cst.conditions(3, fields=LEAD_FIELDS),
        min_size=1,
        max_size=40,
    ),
    subjects=st.lists(leads, min_size=1, max_size=20),
)
def test_the_rule_index_finds_the_first_match_of_a_full_scan(
    conditions: list[Condition], subjects: list[Lead]
) -> None:
    """Large tables indexed by their equality fields give the same first match as evaluating every rule."""
    rules = tuple(
        AssignmentRule(name=f"r{i}", condition=c, target=Target.to_user("ann"))
        for i, c in enumerate(conditions)
    )
    router = Router(AssignmentConfig(rules=rules), LEAD_FIELDS)
    for subject in subjects:
        expected = next((r for r in rules if evaluate(r.condition, subject, LEAD_FIELDS, NOW)), None)
        assert router.match(subject, NOW) == expected


@settings(max_examples=300)
@given(ticket=cst.tickets(), where=cst.conditions(5, fields=TICKET_FIELDS))
def test_compiled_conditions_agree_with_evaluate(ticket: Ticket, where: Condition) -> None:
    """The router's compiled conditions give exactly `evaluate`'s answer on every ticket and condition."""
    assert compile_condition(where, TICKET_FIELDS)(ticket, cst.NOW) == evaluate(
        where, ticket, TICKET_FIELDS, cst.NOW
    )


@given(config=configs(), roster=rosters())
def test_config_roster_and_state_round_trip(config: AssignmentConfig, roster: Roster) -> None:
    """Configs, rosters (calendars included) and queue states survive structure(unstructure(x))."""
    assert structure(unstructure(config), AssignmentConfig) == config
    assert structure(unstructure(roster), Roster) == roster
    state = advance(config.queues[0], QueueState(id=config.queues[0].name), "ann")
    assert structure(unstructure(state), QueueState) == state


# --- the shell under real concurrency ----------------------------------------------------------


def _pg_worker(url: str, tenant: str, n: int) -> list[tuple[int, str]]:
    """One OS process: assign ``n`` tickets through the shared queue, retrying lost races."""
    engine = create_engine(url)
    crm = CRM(SqlStore(engine))
    router = Router(
        AssignmentConfig(
            rules=(AssignmentRule(name="all", condition=All(), target=Target.to_queue("support")),),
            queues=(Queue(name="support", members=("ann", "bob", "cy")),),
        ),
        TICKET_FIELDS,
    )
    roster = _everyone(["ann", "bob", "cy"])
    turns: list[tuple[int, str]] = []

    def work(uow: UnitOfWork) -> tuple[int, str]:
        ticket = Ticket(customer_id="c1", subject="Help")
        decision = assign(uow, router, ticket, roster, NOW)
        assert decision.turn is not None and decision.owner is not None
        ticket.assignee = decision.owner
        uow.tickets.add(ticket)
        return decision.turn, decision.owner

    try:
        for _ in range(n):
            turns.append(assign_with_retry(crm, tenant, work, attempts=200))
    finally:
        engine.dispose()
    return turns


def test_two_processes_share_one_rotation_without_duplicates_or_gaps() -> None:
    """Two OS processes assigning through one round-robin queue on PostgreSQL give every turn once."""
    base = postgres_url()
    schema = f"crmcore_assign_{new_id().lower()}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    try:
        crm = CRM(SqlStore(create_engine(url)))
        crm.create_schema()
        tenant, n = f"t-{new_id()}", 40
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            results = pool.starmap(_pg_worker, [(url, tenant, n), (url, tenant, n)])
        turns = sorted(t for result in results for t in result)
        assert [t for t, _ in turns] == list(range(1, 2 * n + 1))
        counts = Counter(owner for _, owner in turns)
        assert sum(counts.values()) == 2 * n and max(counts.values()) - min(counts.values()) <= 1
        assert [owner for _, owner in turns] == ["ann", "bob", "cy"] * (2 * n // 3) + ["ann", "bob", "cy"][
            : 2 * n % 3
        ]
        with crm.unit_of_work(tenant) as uow:
            state = uow.assignment_queues.get("support")
            assert state.sequence == 2 * n and uow.tickets.count() == 2 * n
            assert {u: state.count(u) for u in counts} == dict(counts)
        crm.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_retry_gives_up_after_the_attempts() -> None:
    """assign_with_retry runs the work again on ConcurrencyError and re-raises after the last attempt."""
    calls: list[int] = []

    def always_loses(uow: UnitOfWork) -> None:
        calls.append(1)
        raise ConcurrencyError("lost")

    with pytest.raises(ConcurrencyError, match="lost"):
        assign_with_retry(crmcore.open("memory://"), "t", always_loses, attempts=3)
    assert len(calls) == 3
