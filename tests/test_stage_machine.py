"""The stage transition engine: pipelines checked when built, moves enforcing every requirement."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.conditions import All, Field
from crmcore.errors import TransitionError, ValidationError
from crmcore.events import event_from_data, event_to_data
from crmcore.money import Money
from crmcore.pipeline.opportunity import ForecastCategory, Opportunity
from crmcore.pipeline.stages import ANY_OPEN_STAGE, CreateTask, Pipeline, Stage, Transition
from crmcore.pipeline.transitions import (
    FollowUpTaskRequested,
    Moved,
    OpportunityLost,
    OpportunityReopened,
    OpportunityWon,
    StageChanged,
    StageMachine,
    describe_condition,
)
from crmcore.serialization import structure, unstructure

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EUR = "EUR"


def sales_pipeline(**flags: Any) -> Pipeline:
    """Prospect -> Qualify -> Proposal -> Negotiation, then Won or Lost."""
    return Pipeline(
        name="sales",
        stages=[
            Stage(
                name="Prospect",
                probability=10,
                rotting_days=14,
                on_enter=[CreateTask(title="Qualify the lead", due_in_days=2)],
            ),
            Stage(name="Qualify", probability=20),
            Stage(
                name="Proposal",
                probability=50,
                forecast_category=ForecastCategory.BEST_CASE,
                required_fields=["amount", "close_date"],
                on_enter=[CreateTask(title="Send the proposal", due_in_days=3, assignee="user:sales-ops")],
            ),
            Stage(
                name="Negotiation",
                probability=80,
                forecast_category=ForecastCategory.COMMIT,
                required_fields=["contact_id"],
                condition=All(
                    Field("custom.budget_confirmed") == True,  # noqa: E712 - a condition, not a truth test
                    Field("amount") >= Money("1000", EUR),
                ),
                guard="credit_ok",
            ),
            Stage(name="Won", won=True, required_fields=["amount"]),
            Stage(name="Lost", lost=True),
        ],
        **flags,
    )


def credit_ok(opportunity: Opportunity, stage: Stage) -> str | None:
    """Refuses deals tagged 'credit-hold'."""
    return "the account is on credit hold" if "credit-hold" in opportunity.tags else None


def machine(**flags: Any) -> StageMachine:
    return StageMachine([sales_pipeline(**flags)], guards={"credit_ok": credit_ok})


def deal(**fields: Any) -> Opportunity:
    values: dict[str, Any] = {
        "id": "deal-1",
        "name": "Acme renewal",
        "customer_id": "acme",
        "pipeline": "sales",
        "stage": "Prospect",
        "owner": "rep-1",
        "created_at": T0,
    }
    values.update(fields)
    return Opportunity(**values)


def ready(**fields: Any) -> Opportunity:
    """A deal that meets every stage requirement."""
    values: dict[str, Any] = {
        "amount": Money("5000", EUR),
        "close_date": date(2026, 6, 30),
        "contact_id": "ann",
        "custom": {"budget_confirmed": True},
    }
    values.update(fields)
    return machine().start(deal(**values), T0).opportunity


# --- refused moves -----------------------------------------------------------------------------


def test_refused_move_names_every_unmet_requirement() -> None:
    """A move breaking every rule lists each: the move, each field, condition part, guard, the time."""
    m = machine(allow_skip=False)
    start = m.start(deal(tags=["credit-hold"], custom={"budget_confirmed": False}), T0).opportunity
    with pytest.raises(TransitionError) as info:
        m.move(start, "Negotiation", T0 - timedelta(minutes=1))
    assert info.value.unmet == (
        "pipeline 'sales' does not allow moving from 'Prospect' to 'Negotiation' (skipping stages is off)",
        "stage 'Negotiation' requires field 'contact_id'",
        "stage 'Negotiation' requires custom.budget_confirmed = True",
        "stage 'Negotiation' requires amount >= 1000 EUR",
        "stage 'Negotiation': the account is on credit hold",
        "now (2026-03-02T08:59:00+00:00) is before the deal's last stage change (2026-03-02T09:00:00+00:00)",
    )
    assert "cannot move deal 'deal-1' to 'Negotiation'" in str(info.value)


def test_each_missing_required_field_is_named() -> None:
    """Entering Proposal without amount and close date names both fields."""
    m = machine()
    start = m.start(deal(), T0).opportunity
    assert m.check(start, "Proposal", T0) == (
        "stage 'Proposal' requires field 'amount'",
        "stage 'Proposal' requires field 'close_date'",
    )
    with pytest.raises(TransitionError) as info:
        m.move(start, "Proposal", T0)
    assert len(info.value.unmet) == 2


def test_custom_required_fields_and_empty_values_count_as_missing() -> None:
    """'custom.<key>' is required like a field; blank text and unset keys are missing."""
    stage = Stage(name="Demo", probability=30, required_fields=["custom.demo_date"])
    p = Pipeline(
        name="p",
        stages=[Stage(name="A", probability=5), stage, Stage(name="W", won=True), Stage(name="L", lost=True)],
    )
    m = StageMachine([p])
    base = Opportunity(name="x", customer_id="c", pipeline="p", stage="A", created_at=T0)
    assert m.check(base, "Demo", T0) == ("stage 'Demo' requires field 'custom.demo_date'",)
    assert m.check(attrs.evolve(base, custom={"demo_date": ""}), "Demo", T0) == (
        "stage 'Demo' requires field 'custom.demo_date'",
    )
    assert m.check(attrs.evolve(base, custom={"demo_date": "2026-04-01"}), "Demo", T0) == ()


def test_condition_message_replaces_the_condition_text() -> None:
    """A stage's condition_message is what users see when its condition fails (once, not per part)."""
    stage = Stage(
        name="Commit",
        probability=90,
        condition=All(Field("custom.signed") == True, Field("contact_id").is_not_null()),  # noqa: E712
        condition_message="a signed order form from a named contact",
    )
    p = Pipeline(
        name="p",
        stages=[Stage(name="A", probability=5), stage, Stage(name="W", won=True), Stage(name="L", lost=True)],
    )
    opp = Opportunity(name="x", customer_id="c", pipeline="p", stage="A")
    assert StageMachine([p]).check(opp, "Commit", T0) == (
        "stage 'Commit' requires a signed order form from a named contact",
    )


def test_moving_to_lost_requires_a_reason_and_only_lost_takes_one() -> None:
    """Lost needs lost_reason (a transition requirement); a reason for another stage is a bad argument."""
    m = machine()
    opp = m.start(deal(), T0).opportunity
    with pytest.raises(TransitionError) as info:
        m.move(opp, "Lost", T0)
    assert info.value.unmet == ("moving to lost stage 'Lost' requires a lost reason",)
    with pytest.raises(ValidationError) as bad:
        m.move(opp, "Qualify", T0, lost_reason="price")
    assert bad.value.field == "lost_reason"


def test_bad_arguments_are_validation_errors_reported_together() -> None:
    """A naive now and a bad 'by' are reported at once; an unknown target names the pipeline's stages."""
    m = machine()
    opp = m.start(deal(), T0).opportunity
    with pytest.raises(ValidationError) as info:
        m.move(opp, "Qualify", datetime(2026, 3, 3, 9, 0), by="has space")
    assert [e.path for e in info.value.errors] == ["now", "by"]
    with pytest.raises(ValidationError, match=r"no stage 'Closing'.*'Prospect', 'Qualify'"):
        m.move(opp, "Closing", T0)
    with pytest.raises(ValidationError, match="unknown pipeline 'partners'"):
        m.move(attrs.evolve(opp, pipeline="partners"), "Qualify", T0)
    with pytest.raises(ValidationError, match="does not have"):
        m.move(attrs.evolve(opp, stage="Gone", stage_history=()), "Qualify", T0)


def test_moving_to_the_current_stage_is_refused() -> None:
    """A deal is already in its stage: no empty history entries."""
    m = machine()
    opp = m.start(deal(), T0).opportunity
    assert m.check(opp, "Prospect", T0) == ("the deal is already in stage 'Prospect'",)


def test_refusal_says_which_rule_forbids_the_move() -> None:
    """Moving back with allow_back off, and out of Won with reopening off, say why."""
    m = machine(allow_back=False)
    opp = m.move(ready(), "Qualify", T0).opportunity
    assert m.check(opp, "Prospect", T0) == (
        "pipeline 'sales' does not allow moving from 'Qualify' to 'Prospect' (moving back is off)",
    )
    won = m.move(opp, "Won", T0).opportunity
    assert m.check(won, "Qualify", T0) == (
        "pipeline 'sales' does not allow moving from 'Won' to 'Qualify' "
        "(the deal is closed and reopening is off)",
    )


# --- moves -----------------------------------------------------------------------------------


def test_move_sets_stage_probability_category_history_and_is_pure() -> None:
    """A move returns a new deal in the target stage with its figures and history; the input is unchanged."""
    m = machine()
    opp = ready()
    later = T0 + timedelta(days=3, hours=4)
    moved = m.move(opp, "Proposal", later, by="rep-2")
    new = moved.opportunity
    assert (new.stage, new.probability, new.forecast_category) == ("Proposal", 50, ForecastCategory.BEST_CASE)
    assert new.stage_entered_at == later
    assert new.stage_history[-1].from_stage == "Prospect"
    assert new.stage_history[-1].time_in_stage == timedelta(days=3, hours=4)
    assert new.stage_history[-1].by == "rep-2"
    assert (opp.stage, opp.probability, opp.stage_history) == ("Prospect", 10, ())
    assert new.won is None and new.closed_at is None


def test_history_and_time_in_stage_over_several_moves() -> None:
    """Each move records where from, where to, when, by whom and how long the deal sat there."""
    m = machine()
    opp = ready()
    steps = [("Qualify", timedelta(days=2)), ("Proposal", timedelta(days=5)), ("Qualify", timedelta(hours=1))]
    at = T0
    for stage, wait in steps:
        at += wait
        opp = m.move(opp, stage, at, by="rep-1").opportunity
    history = [(c.from_stage, c.to_stage, c.at, c.time_in_stage) for c in opp.stage_history]
    assert history == [
        ("Prospect", "Qualify", T0 + timedelta(days=2), timedelta(days=2)),
        ("Qualify", "Proposal", T0 + timedelta(days=7), timedelta(days=5)),
        ("Proposal", "Qualify", T0 + timedelta(days=7, hours=1), timedelta(hours=1)),
    ]
    assert (opp.probability, opp.forecast_category) == (20, ForecastCategory.PIPELINE)


def test_time_in_stage_falls_back_to_created_at() -> None:
    """A deal never started measures its first stage from created_at."""
    m = machine()
    opp = deal(created_at=T0 - timedelta(days=10))
    moved = m.move(opp, "Qualify", T0).opportunity
    assert moved.stage_history[0].time_in_stage == timedelta(days=10)


def test_winning_sets_won_closed_at_and_emits_events() -> None:
    """Entering Won sets won, closed_at, 100 % and 'closed'; emits StageChanged then OpportunityWon."""
    m = machine()
    moved = m.move(ready(), "Won", T0 + timedelta(days=1), by="rep-1")
    won = moved.opportunity
    assert (won.won, won.closed_at, won.probability, won.forecast_category) == (
        True,
        T0 + timedelta(days=1),
        100,
        ForecastCategory.CLOSED,
    )
    assert [type(e) for e in moved.events] == [StageChanged, OpportunityWon]
    event = moved.events[1]
    assert isinstance(event, OpportunityWon) and event.amount == Money("5000", EUR)


def test_back_from_won_resets_probability_category_and_won() -> None:
    """Reopening a won deal takes the target stage's probability and category and clears won and closed_at."""
    m = machine(allow_reopen=True)
    won = m.move(ready(), "Won", T0).opportunity
    moved = m.move(won, "Negotiation", T0 + timedelta(days=1), by="rep-1")
    back = moved.opportunity
    assert (back.probability, back.forecast_category, back.won, back.closed_at) == (
        80,
        ForecastCategory.COMMIT,
        None,
        None,
    )
    assert back.weighted_amount == Money("4000.00", EUR)
    assert [type(e) for e in moved.events] == [StageChanged, OpportunityReopened]
    reopened = moved.events[1]
    assert isinstance(reopened, OpportunityReopened) and reopened.was_won


def test_reopening_a_lost_deal_clears_the_lost_reason() -> None:
    """Lost sets won=False and the reason; moving out clears both."""
    m = machine(allow_reopen=True)
    moved = m.move(ready(), "Lost", T0, lost_reason="  went with a competitor ")
    lost = moved.opportunity
    assert (lost.won, lost.lost_reason, lost.probability) == (False, "went with a competitor", 0)
    assert isinstance(moved.events[1], OpportunityLost) and moved.events[1].reason == "went with a competitor"
    back = m.move(lost, "Qualify", T0 + timedelta(days=1)).opportunity
    assert (back.won, back.lost_reason, back.closed_at, back.probability) == (None, "", None, 20)


def test_won_to_lost_moves_close_again() -> None:
    """With reopening on, a won deal can be marked lost directly: closed_at is the new time."""
    m = machine(allow_reopen=True)
    won = m.move(ready(), "Won", T0).opportunity
    lost = m.move(won, "Lost", T0 + timedelta(days=2), lost_reason="cancelled").opportunity
    assert (lost.won, lost.closed_at, lost.forecast_category) == (
        False,
        T0 + timedelta(days=2),
        ForecastCategory.OMITTED,
    )


def test_entry_actions_request_follow_up_tasks() -> None:
    """CreateTask resolves 'owner' to the deal's owner and 'user:<id>' to that user, due N days later."""
    m = machine()
    started = m.start(deal(owner="rep-7"), T0)
    task = started.events[-1]
    assert isinstance(task, FollowUpTaskRequested)
    assert (task.title, task.assignee, task.due_at, task.stage) == (
        "Qualify the lead",
        "rep-7",
        T0 + timedelta(days=2),
        "Prospect",
    )
    moved = m.move(ready(), "Proposal", T0)
    proposal_task = moved.events[-1]
    assert isinstance(proposal_task, FollowUpTaskRequested) and proposal_task.assignee == "sales-ops"
    ownerless = m.start(deal(owner=None), T0).events[-1]
    assert isinstance(ownerless, FollowUpTaskRequested) and ownerless.assignee is None


def test_events_round_trip_through_the_outbox_format() -> None:
    """Every event the machine emits survives event_to_data / event_from_data."""
    m = machine(allow_reopen=True)
    events = [
        *m.start(deal(), T0).events,
        *m.move(ready(), "Proposal", T0).events,
        *m.move(ready(), "Won", T0).events,
        *m.move(ready(), "Lost", T0, lost_reason="budget").events,
        *m.move(m.move(ready(), "Won", T0).opportunity, "Qualify", T0).events,
    ]
    assert {type(e) for e in events} == {
        StageChanged,
        FollowUpTaskRequested,
        OpportunityWon,
        OpportunityLost,
        OpportunityReopened,
    }
    for event in events:
        assert event_from_data(event.event_type, event_to_data(event)) == event


# --- start, allowed moves, rotting --------------------------------------------------------------


def test_start_places_a_new_deal_in_the_first_stage() -> None:
    """start sets the first stage's figures, entered and created times, and a StageChanged from None."""
    fresh = Opportunity(name="New", customer_id="acme", pipeline="sales", stage="?", probability=99)
    moved = machine().start(fresh, T0, by="rep-1")
    opp = moved.opportunity
    assert (opp.stage, opp.probability, opp.forecast_category) == ("Prospect", 10, ForecastCategory.PIPELINE)
    assert (opp.stage_entered_at, opp.created_at, opp.stage_history) == (T0, T0, ())
    changed = moved.events[0]
    assert isinstance(changed, StageChanged) and (changed.from_stage, changed.to_stage) == (None, "Prospect")


def test_start_in_a_later_stage_checks_its_requirements() -> None:
    """Starting in Proposal (an import mid-pipeline) needs Proposal's fields; closed stages are refused."""
    m = machine()
    with pytest.raises(TransitionError) as info:
        m.start(deal(), T0, stage="Proposal")
    assert len(info.value.unmet) == 2
    assert (
        m.start(
            deal(amount=Money("1", EUR), close_date=date(2026, 5, 1)), T0, stage="Proposal"
        ).opportunity.probability
        == 50
    )
    with pytest.raises(ValidationError, match="start deals in an open stage"):
        m.start(deal(), T0, stage="Won")
    with pytest.raises(ValidationError, match="has stage history already"):
        m.start(m.move(ready(), "Qualify", T0).opportunity, T0)


def test_allowed_moves_follow_the_rule_flags() -> None:
    """Defaults allow back and skip; turning them off leaves one step forward plus won and lost."""
    opp = ready()
    assert machine().allowed_moves(opp) == ("Qualify", "Proposal", "Negotiation", "Won", "Lost")
    qualify = machine().move(opp, "Qualify", T0).opportunity
    assert machine(allow_skip=False, allow_back=False).allowed_moves(qualify) == ("Proposal", "Won", "Lost")
    assert machine(allow_skip=False).allowed_moves(qualify) == ("Prospect", "Proposal", "Won", "Lost")
    won = machine().move(opp, "Won", T0).opportunity
    assert machine().allowed_moves(won) == ()
    assert machine(allow_reopen=True).allowed_moves(won) == (
        "Prospect",
        "Qualify",
        "Proposal",
        "Negotiation",
        "Lost",
    )


def test_explicit_transition_table_allows_exactly_its_moves() -> None:
    """A table with '*' for lost from anywhere: only listed moves pass, others name the table."""
    p = Pipeline(
        name="renewals",
        stages=[
            Stage(name="Due", probability=60),
            Stage(name="Quoted", probability=80),
            Stage(name="Renewed", won=True),
            Stage(name="Churned", lost=True),
        ],
        transitions=[
            Transition(from_stage="Due", to_stage="Quoted"),
            Transition(from_stage="Quoted", to_stage="Renewed"),
            Transition(from_stage=ANY_OPEN_STAGE, to_stage="Churned"),
        ],
    )
    m = StageMachine([p])
    opp = Opportunity(name="r", customer_id="c", pipeline="renewals", stage="Due", created_at=T0)
    assert m.allowed_moves(opp) == ("Quoted", "Churned")
    assert m.check(opp, "Renewed", T0) == (
        "pipeline 'renewals' does not allow moving from 'Due' to 'Renewed' (not in its transition table)",
    )
    quoted = m.move(opp, "Quoted", T0).opportunity
    assert m.allowed_moves(quoted) == ("Renewed", "Churned")


def test_rotting_counts_from_entering_the_stage() -> None:
    """Past rotting_days a deal rots by the excess; within it, without a limit, or closed it does not."""
    m = machine()
    opp = ready()
    assert m.rotting(opp, T0 + timedelta(days=14)) is None
    assert m.rotting(opp, T0 + timedelta(days=15, hours=2)) == timedelta(days=1, hours=2)
    moved = m.move(opp, "Qualify", T0 + timedelta(days=1)).opportunity
    assert m.rotting(moved, T0 + timedelta(days=400)) is None
    won = m.move(opp, "Won", T0).opportunity
    assert m.rotting(won, T0 + timedelta(days=400)) is None


# --- guards and several pipelines ------------------------------------------------------------------


def test_guard_sees_the_deal_and_stage_and_none_allows() -> None:
    """A guard gets the deal before the move and the target stage; returning None lets the move through."""
    seen: list[tuple[str, str]] = []

    def spy(opportunity: Opportunity, stage: Stage) -> str | None:
        seen.append((opportunity.stage, stage.name))
        return None

    m = StageMachine([sales_pipeline()], guards={"credit_ok": spy})
    opp = m.start(deal(amount=Money("5000", EUR), contact_id="ann", custom={"budget_confirmed": True}), T0)
    m.move(opp.opportunity, "Negotiation", T0)
    assert seen == [("Prospect", "Negotiation")]


def test_unknown_guard_names_and_duplicate_pipelines_are_refused_at_construction() -> None:
    """A stage naming an unregistered guard and two pipelines with one name are both reported."""
    with pytest.raises(ValidationError) as info:
        StageMachine([sales_pipeline(), sales_pipeline()], guards={"other": credit_ok})
    assert [(e.path, e.reason) for e in info.value.errors] == [
        ("pipelines[0].stages[3].guard", "no guard 'credit_ok' is registered (registered: other)"),
        ("pipelines[1].name", "'sales' is used by an earlier pipeline"),
    ]
    with pytest.raises(ValidationError, match="at least one pipeline"):
        StageMachine([])


def test_several_pipelines_each_apply_their_own_stages() -> None:
    """Deals in two pipelines with a same-named stage take each pipeline's probability."""
    partner = Pipeline(
        name="partners",
        stages=[
            Stage(name="Prospect", probability=5),
            Stage(name="Proposal", probability=35),
            Stage(name="Signed", won=True),
            Stage(name="Dropped", lost=True),
        ],
    )
    m = StageMachine([sales_pipeline(), partner], guards={"credit_ok": credit_ok})
    assert [p.name for p in m.pipelines] == ["sales", "partners"]
    sales_deal = m.start(deal(amount=Money("10", EUR), close_date=date(2026, 5, 1)), T0).opportunity
    partner_deal = m.start(deal(id="deal-2", pipeline="partners"), T0).opportunity
    assert (sales_deal.probability, partner_deal.probability) == (10, 5)
    assert m.move(sales_deal, "Proposal", T0).opportunity.probability == 50
    assert m.move(partner_deal, "Proposal", T0).opportunity.probability == 35
    with pytest.raises(ValidationError, match="no stage 'Won'"):
        m.move(partner_deal, "Won", T0)


# --- building pipelines ------------------------------------------------------------------------

OPEN_A = Stage(name="A", probability=10)
OPEN_B = Stage(name="B", probability=40)
WON = Stage(name="Won", won=True)
LOST = Stage(name="Lost", lost=True)


@pytest.mark.parametrize(
    ("build", "path", "reason"),
    [
        (
            lambda: Pipeline(name="p", stages=[OPEN_A, OPEN_A, WON, LOST]),
            "stages[1].name",
            "'A' is used by an earlier stage",
        ),
        (lambda: Pipeline(name="p", stages=[OPEN_A, LOST]), "stages", "needs a won stage"),
        (lambda: Pipeline(name="p", stages=[OPEN_A, WON]), "stages", "needs a lost stage"),
        (lambda: Pipeline(name="p", stages=[]), "stages", "must hold at least one"),
        (
            lambda: Pipeline(name="p", stages=[WON, OPEN_A, LOST]),
            "stages[0]",
            "is where deals start: it must be open",
        ),
        (
            lambda: Pipeline(
                name="p",
                stages=[OPEN_A, OPEN_B, WON, LOST],
                transitions=[
                    Transition(from_stage="A", to_stage="Won"),
                    Transition(from_stage="*", to_stage="Lost"),
                ],
            ),
            "stages[1]",
            "stage 'B' cannot be reached from the first stage 'A'",
        ),
        (
            lambda: Pipeline(
                name="p",
                stages=[OPEN_A, OPEN_B, WON, LOST],
                transitions=[
                    Transition(from_stage="A", to_stage="B"),
                    Transition(from_stage="A", to_stage="Won"),
                    Transition(from_stage="A", to_stage="Lost"),
                ],
            ),
            "stages[1]",
            "stage 'B' is a dead end: no moves lead to a won or lost stage",
        ),
        (
            lambda: Pipeline(
                name="p",
                stages=[OPEN_A, WON, LOST],
                transitions=[
                    Transition(from_stage="A", to_stage="Won"),
                    Transition(from_stage="Nope", to_stage="Lost"),
                    Transition(from_stage="A", to_stage="Lost"),
                ],
            ),
            "transitions[1].from_stage",
            "unknown stage 'Nope'; stages: 'A', 'Won', 'Lost'",
        ),
        (
            lambda: Pipeline(
                name="p",
                stages=[OPEN_A, WON, LOST],
                transitions=[
                    Transition(from_stage="A", to_stage="Won"),
                    Transition(from_stage="A", to_stage="Won"),
                    Transition(from_stage="A", to_stage="Lost"),
                ],
            ),
            "transitions[1]",
            "'A' -> 'Won' is listed twice",
        ),
        (
            lambda: Pipeline(
                name="p",
                stages=[OPEN_A, WON, LOST],
                transitions=[
                    Transition(from_stage="*", to_stage="Won"),
                    Transition(from_stage="*", to_stage="Lost"),
                ],
                allow_reopen=True,
            ),
            "allow_reopen",
            "applies to the rule only",
        ),
        (lambda: Stage(name="X", won=True, lost=True), "lost", "a stage cannot be won and lost at once"),
        (
            lambda: Stage(name="X", probability=10, required_fields=["budget"]),
            "required_fields[0]",
            "unknown field 'budget' on Opportunity",
        ),
        (
            lambda: Stage(name="X", probability=10, condition=Field("budget") > 5),
            "condition",
            "unknown field 'budget' on Opportunity",
        ),
        (lambda: Stage(name="X"), "probability", "is required for an open stage"),
        (lambda: Stage(name="X", won=True, probability=90), "probability", "must be 100 for a won stage"),
        (
            lambda: Stage(name="X", lost=True, forecast_category=ForecastCategory.PIPELINE),
            "forecast_category",
            "must be 'omitted'",
        ),
        (
            lambda: Stage(name="X", probability=90, forecast_category=ForecastCategory.CLOSED),
            "forecast_category",
            "'closed' is for won stages",
        ),
        (lambda: Stage(name="X", won=True, rotting_days=5), "rotting_days", "closed deals do not rot"),
        (lambda: Transition(from_stage="A", to_stage="A"), "to_stage", "is the stage the move starts from"),
        (lambda: CreateTask(title="Call", assignee="bob"), "assignee", "must be 'owner' or 'user:<id>'"),
    ],
)
def test_bad_definitions_are_refused_when_built(build: Any, path: str, reason: str) -> None:
    """Each kind of broken pipeline, stage, transition or task is refused when built, naming the place."""
    with pytest.raises(ValidationError) as info:
        build()
    assert any(e.path == path and reason in e.reason for e in info.value.errors), info.value.errors


def test_pipeline_reports_all_problems_at_once() -> None:
    """Duplicate names, no lost stage, an unknown transition target and an unreachable stage come together."""
    with pytest.raises(ValidationError) as info:
        Pipeline(
            name="p",
            stages=[OPEN_A, OPEN_A, OPEN_B, WON],
            transitions=[
                Transition(from_stage="A", to_stage="Won"),
                Transition(from_stage="A", to_stage="Gone"),
            ],
        )
    assert [e.path for e in info.value.errors] == [
        "stages[1].name",
        "stages",
        "transitions[1].to_stage",
        "stages[2]",
    ]


def test_stage_reports_all_problems_at_once() -> None:
    """Unknown required fields and a bad condition on one stage are reported together."""
    with pytest.raises(ValidationError) as info:
        Stage(name="X", probability=120, required_fields=["nope", "custom.ok"], condition=Field("zzz") == 1)
    assert [e.path for e in info.value.errors] == ["probability", "required_fields[0]", "condition"]


def test_describe_condition_reads_like_the_rule() -> None:
    """Conditions render as short text for messages."""
    cond = (Field("amount") >= Money("1000", EUR)) & (
        Field("owner").is_not_null() | Field("tags").contains("vip")
    )
    assert describe_condition(cond) == "amount >= 1000 EUR and (owner is set or tags contains 'vip')"
    assert describe_condition(Field("close_date").within_next(days=30)) == (
        "close_date >= now and close_date <= now +30 days"
    )
    assert describe_condition(Field("stage").in_(["A", "B"])) == "stage in ['A', 'B']"


# --- serialization -------------------------------------------------------------------------------


def test_pipeline_round_trips_through_serialization() -> None:
    """A pipeline with conditions, guards, tasks and a table survives unstructure/structure."""
    table = Pipeline(
        name="renewals",
        stages=[OPEN_A, OPEN_B, WON, LOST],
        transitions=[
            Transition(from_stage="A", to_stage="B"),
            Transition(from_stage="B", to_stage="Won"),
            Transition(from_stage="*", to_stage="Lost"),
        ],
    )
    for pipeline in (sales_pipeline(), sales_pipeline(allow_skip=False, allow_reopen=True), table):
        data = unstructure(pipeline)
        assert structure(data, Pipeline) == pipeline
    assert unstructure(table)["transitions"][2] == {"from_stage": "*", "to_stage": "Lost"}


def test_bad_pipeline_data_is_refused_on_structure() -> None:
    """Structuring data for an invalid pipeline raises ValidationError, as building it does."""
    data = unstructure(sales_pipeline())
    data["stages"] = [s for s in data["stages"] if s["name"] != "Lost"]
    with pytest.raises(ValidationError, match="needs a lost stage"):
        structure(data, Pipeline)


NAMES = ("S1", "S2", "S3", "S4", "S5")


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    """Valid pipelines: 1-5 open stages, 1-2 won and lost stages placed anywhere after the first,
    rule flags, or a table that chains the open stages and closes from each."""
    n_open = draw(st.integers(1, 5))
    open_stages = [
        Stage(
            name=NAMES[i],
            probability=draw(st.integers(0, 100)),
            forecast_category=draw(
                st.sampled_from(
                    [
                        ForecastCategory.PIPELINE,
                        ForecastCategory.BEST_CASE,
                        ForecastCategory.COMMIT,
                        ForecastCategory.OMITTED,
                    ]
                )
            ),
            rotting_days=draw(st.none() | st.integers(1, 60)),
        )
        for i in range(n_open)
    ]
    closed = [Stage(name=f"Won{i}", won=True) for i in range(draw(st.integers(1, 2)))]
    closed += [Stage(name=f"Lost{i}", lost=True) for i in range(draw(st.integers(1, 2)))]
    rest = draw(st.permutations([*open_stages[1:], *closed]))
    stages = [open_stages[0], *rest]
    if draw(st.booleans()):
        return Pipeline(
            name="gen",
            stages=stages,
            allow_skip=draw(st.booleans()),
            allow_back=draw(st.booleans()),
            allow_reopen=draw(st.booleans()),
        )
    pairs = {(a.name, b.name) for a, b in itertools.pairwise(open_stages)}
    pairs |= {(ANY_OPEN_STAGE, s.name) for s in closed}
    names = [s.name for s in stages]
    extra = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=6))
    pairs |= {(a, b) for a, b in extra if a != b}
    return Pipeline(
        name="gen",
        stages=stages,
        transitions=[Transition(from_stage=a, to_stage=b) for a, b in sorted(pairs)],
    )


@given(pipelines())
def test_generated_pipelines_round_trip(pipeline: Pipeline) -> None:
    """Every valid pipeline survives unstructure/structure unchanged, moves included."""
    back = structure(unstructure(pipeline), Pipeline)
    assert back == pipeline
    assert all(back.moves_from(n) == pipeline.moves_from(n) for n in pipeline.stage_names)


@settings(max_examples=150)
@given(
    pipelines(),
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5 * 24 * 60), st.booleans()), max_size=25),
)
def test_random_move_sequences_keep_figures_history_and_events_consistent(
    pipeline: Pipeline, steps: list[tuple[int, int, bool]]
) -> None:
    """Over any moves (allowed or not): probability and category follow the stage, history chains,
    won/closed match the stage, each StageChanged matches a history entry, refusals list why."""
    m = StageMachine([pipeline])
    opp = m.start(
        Opportunity(name="d", customer_id="c", pipeline="gen", stage="x", amount=Money("100", EUR)), T0
    ).opportunity
    events: list[StageChanged] = []
    at = T0
    names = pipeline.stage_names
    for index, minutes, go_back_in_time in steps:
        target = names[index % len(names)]
        when = (
            at - timedelta(minutes=1)
            if go_back_in_time and index % 3 == 0
            else at + timedelta(minutes=minutes)
        )
        expected_unmet = m.check(opp, target, when, lost_reason="r")
        allowed = pipeline.allows(opp.stage, target) and when >= at
        assert (not expected_unmet) == allowed
        reason = "r" if pipeline.stage(target).lost else ""
        if not allowed:
            with pytest.raises(TransitionError) as refused:
                m.move(opp, target, when, lost_reason=reason)
            assert refused.value.unmet == expected_unmet
            continue
        moved: Moved = m.move(opp, target, when, lost_reason=reason)
        previous, opp, at = opp, moved.opportunity, when
        stage = pipeline.stage(opp.stage)
        assert (opp.probability, opp.forecast_category) == (stage.probability, stage.forecast_category)
        assert opp.won == (True if stage.won else False if stage.lost else None)
        assert (opp.closed_at is None) == stage.is_open
        assert opp.stage_history[-1].from_stage == previous.stage
        assert opp.stage_history[-1].time_in_stage == when - (previous.stage_entered_at or T0)
        events.extend(e for e in moved.events if isinstance(e, StageChanged))
    history = opp.stage_history
    assert all(history[i].from_stage == history[i - 1].to_stage for i in range(1, len(history)))
    assert [(e.from_stage, e.to_stage, e.occurred_at, e.time_in_stage) for e in events] == [
        (c.from_stage, c.to_stage, c.at, c.time_in_stage) for c in history
    ]
    Opportunity(**attrs.asdict(opp, recurse=False))  # the final deal passes its own invariants
