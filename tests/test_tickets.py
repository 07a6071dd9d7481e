"""Tickets and satisfaction surveys: status history, reopens, first response, validation, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings

from crmcore.conditions import Field, check_condition, evaluate
from crmcore.errors import TransitionError, ValidationError
from crmcore.serialization import structure, unstructure
from crmcore.service.ticket import (
    DEFAULT_STATUSES,
    SURVEY_FIELDS,
    TICKET_FIELDS,
    AuthorRole,
    SatisfactionSurvey,
    StatusChange,
    StatusDef,
    StatusKind,
    StatusSet,
    Ticket,
    TicketConfig,
    TicketPriority,
    current_statuses,
    ticket_statuses,
)
from crmcore.testing import strategies as cst

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _ticket(**kw: object) -> Ticket:
    return Ticket(customer_id="c1", subject="Printer on fire", created_at=T0, **kw)  # type: ignore[arg-type]


def test_new_ticket_starts_in_the_initial_status_with_no_history() -> None:
    """A new ticket is 'new', open, unsolved, with an empty history and no reopens."""
    t = _ticket()
    assert (t.status, t.is_open, t.status_history, t.solved_at, t.reopen_count) == ("new", True, (), None, 0)
    assert t.priority is TicketPriority.NORMAL


def test_change_status_appends_history_and_leaves_the_original_alone() -> None:
    """Each change is recorded with from, to, time and who; the ticket it was called on is unchanged."""
    t = _ticket()
    opened = t.change_status("open", T0 + H, by="u1")
    pending = opened.change_status("pending", T0 + 2 * H)
    assert t.status == "new" and t.status_history == ()
    assert pending.status == "pending"
    assert pending.status_history == (
        StatusChange(at=T0 + H, from_status="new", to_status="open", by="u1"),
        StatusChange(at=T0 + 2 * H, from_status="open", to_status="pending", by=None),
    )


def test_moving_to_the_current_status_changes_nothing() -> None:
    """Setting the status a ticket already has adds no history entry."""
    t = _ticket().change_status("open", T0 + H)
    assert t.change_status("open", T0 + 2 * H) == t


def test_solving_sets_solved_at_and_reopening_counts_and_clears_it() -> None:
    """solved sets solved_at; solved -> open counts a reopen and clears it; solving again sets it anew."""
    t = _ticket().change_status("open", T0 + H).change_status("solved", T0 + 2 * H)
    assert t.solved_at == T0 + 2 * H and not t.is_open
    t = t.change_status("open", T0 + 3 * H)
    assert (t.solved_at, t.reopen_count) == (None, 1)
    t = t.change_status("solved", T0 + 4 * H).change_status("pending", T0 + 5 * H)
    assert (t.solved_at, t.reopen_count) == (None, 2)
    t = t.change_status("closed", T0 + 6 * H)
    assert t.solved_at == T0 + 6 * H and t.reopen_count == 2


def test_closing_a_solved_ticket_keeps_its_solved_time() -> None:
    """solved -> closed is not a new solution: solved_at stays the first one."""
    t = _ticket().change_status("solved", T0 + H).change_status("closed", T0 + 2 * H)
    assert t.solved_at == T0 + H and t.reopen_count == 0


def test_closed_is_final() -> None:
    """A closed ticket refuses any change of status with a TransitionError."""
    t = _ticket().change_status("closed", T0 + H)
    with pytest.raises(TransitionError, match="closed"):
        t.change_status("open", T0 + 2 * H)


def test_bad_status_changes_are_reported_all_at_once() -> None:
    """An unknown status, a naive time and a bad actor id are named together; so is going back in time."""
    t = _ticket().change_status("open", T0 + H)
    with pytest.raises(ValidationError) as caught:
        t.change_status("escalated", datetime(2026, 3, 2, 12, 0), by="")
    assert [e.path for e in caught.value.errors] == ["to", "at", "by"]
    assert "'new', 'open', 'pending'" in caught.value.errors[0].reason
    with pytest.raises(ValidationError, match="before the ticket's last status change"):
        t.change_status("pending", T0)


def test_first_public_agent_comment_sets_first_response() -> None:
    """Internal notes, customer and system messages don't count; the first public agent reply does, once."""
    t = _ticket()
    t = t.add_comment("c1", "Still burning", T0 + H, role=AuthorRole.CUSTOMER)
    t = t.add_comment("bot", "We got your request", T0 + 2 * H, role=AuthorRole.SYSTEM)
    t = t.add_comment("u1", "Customer sounds upset", T0 + 3 * H, public=False)
    assert t.first_response_at is None
    t = t.add_comment("u1", "Extinguisher on its way", T0 + 4 * H)
    t = t.add_comment("u2", "Any news?", T0 + 5 * H)
    assert t.first_response_at == T0 + 4 * H
    assert [c.body for c in t.public_comments] == [
        "Still burning",
        "We got your request",
        "Extinguisher on its way",
        "Any news?",
    ]
    assert [c.public for c in t.comments] == [True, True, False, True, True]


def test_bad_comments_are_refused() -> None:
    """An empty body, a naive time and a bad author are reported together; repeated comment ids too."""
    with pytest.raises(ValidationError) as caught:
        _ticket().add_comment("", "  ", datetime(2026, 3, 2))
    assert sorted(e.path for e in caught.value.errors) == ["at", "author", "body"]
    t = _ticket().add_comment("u1", "a", T0, id="k1")
    with pytest.raises(ValidationError, match="repeats the id"):
        t.add_comment("u1", "b", T0, id="k1")


def test_invalid_fields_are_reported_together() -> None:
    """Bad status, bad priority, a naive time and a negative reopen count are all named at once."""
    with pytest.raises(ValidationError) as caught:
        Ticket(
            customer_id="c1",
            subject="x",
            status="escalated",
            priority="critical",  # type: ignore[arg-type]
            solved_at=datetime(2026, 1, 1),
            reopen_count=-1,
        )
    assert sorted(e.path for e in caught.value.errors) == ["priority", "reopen_count", "solved_at", "status"]
    assert "'low', 'normal', 'high', 'urgent'" in str(caught.value)
    t = _ticket()
    with pytest.raises(ValidationError, match="status"):
        t.status = "nope"


def test_history_must_agree_with_the_status() -> None:
    """A history whose last change is not the status, or whose changes don't chain, is refused."""
    change = StatusChange(at=T0, from_status="new", to_status="open")
    with pytest.raises(ValidationError, match="the last change went to 'open'"):
        _ticket(status="pending", status_history=[change])
    back = StatusChange(at=T0 - H, from_status="solved", to_status="open")
    with pytest.raises(ValidationError) as caught:
        _ticket(status="open", status_history=[change, back])
    assert [e.path for e in caught.value.errors] == ["status_history[1].at", "status_history[1].from_status"]


def test_custom_status_sets_apply_inside_ticket_statuses() -> None:
    """A host's own statuses are accepted inside ticket_statuses() and refused outside it."""
    custom = StatusSet(
        statuses=(
            StatusDef(name="triage", kind=StatusKind.ACTIVE),
            StatusDef(name="waiting_vendor", kind=StatusKind.WAITING),
            StatusDef(name="done", kind=StatusKind.SOLVED),
        ),
        initial="triage",
    )
    with ticket_statuses(custom):
        assert current_statuses() is custom
        t = _ticket()
        assert t.status == "triage"
        t = t.change_status("done", T0 + H).change_status("waiting_vendor", T0 + 2 * H)
        assert t.reopen_count == 1 and t.is_open
    assert current_statuses() is DEFAULT_STATUSES
    with pytest.raises(ValidationError, match="'triage'"):
        _ticket(status="triage")
    with pytest.raises(ValidationError, match="StatusSet"), ticket_statuses("mine"):  # type: ignore[arg-type]
        pass


def test_bad_status_sets_are_refused_when_built() -> None:
    """Repeated names, a missing or non-active initial status and no solved status are all reported."""
    with pytest.raises(ValidationError) as caught:
        StatusSet(
            statuses=(
                StatusDef(name="a", kind=StatusKind.WAITING),
                StatusDef(name="a", kind=StatusKind.ACTIVE),
            ),
            initial="a",
        )
    assert [e.path for e in caught.value.errors] == ["statuses[1].name", "initial", "statuses"]
    with pytest.raises(ValidationError, match="not one of the statuses"):
        StatusSet(statuses=(StatusDef(name="done", kind=StatusKind.SOLVED),), initial="new")
    with pytest.raises(ValidationError, match="lower-case"):
        StatusDef(name="Open", kind=StatusKind.ACTIVE)


def test_default_statuses_say_what_is_open_and_solved() -> None:
    """new/open/pending/on_hold are open (pending and on_hold waiting); solved and closed are solved."""
    s = DEFAULT_STATUSES
    assert [n for n in s.names if s.is_open(n)] == ["new", "open", "pending", "on_hold"]
    assert [n for n in s.names if s.is_solved(n)] == ["solved", "closed"]
    assert [n for n in s.names if s.kind(n) is StatusKind.WAITING] == ["pending", "on_hold"]


def test_config_round_trips() -> None:
    """TicketConfig with a custom status set survives unstructure/structure."""
    config = TicketConfig(
        statuses=StatusSet(
            statuses=(
                StatusDef(name="triage", kind=StatusKind.ACTIVE, label="Triage"),
                StatusDef(name="done", kind=StatusKind.SOLVED),
            ),
            initial="triage",
        )
    )
    assert structure(unstructure(config), TicketConfig) == config
    assert structure(unstructure(TicketConfig()), TicketConfig).statuses == DEFAULT_STATUSES


@settings(max_examples=60, deadline=None)
@given(ticket=cst.tickets())
def test_tickets_round_trip(ticket: Ticket) -> None:
    """Every generated ticket survives unstructure/structure unchanged, comments and history included."""
    assert structure(unstructure(ticket), Ticket) == ticket


@settings(max_examples=60, deadline=None)
@given(survey=cst.surveys())
def test_surveys_round_trip(survey: SatisfactionSurvey) -> None:
    """Every generated survey survives unstructure/structure unchanged."""
    assert structure(unstructure(survey), SatisfactionSurvey) == survey


def test_survey_answer_and_csat_range() -> None:
    """A survey is answered once with 1-5; 0, 6, True and a naive time are refused."""
    s = SatisfactionSurvey(ticket_id="t1", customer_id="c1", sent_at=T0)
    assert not s.answered and s.score is None
    done = s.answer(4, T0 + H, comment="quick")
    assert (done.score, done.answered_at, done.comment, done.answered) == (4, T0 + H, "quick", True)
    for bad in (0, 6, True, 2.5):
        with pytest.raises(ValidationError, match="from 1 to 5"):
            s.answer(bad, T0 + H)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="time zone"):
        s.answer(3, datetime(2026, 3, 3))
    with pytest.raises(ValidationError, match="before sent_at"):
        s.answer(3, T0 - H)
    with pytest.raises(TransitionError, match="answered already"):
        done.answer(5, T0 + 2 * H)


def test_survey_score_and_answer_time_go_together() -> None:
    """A score without an answer time, or a comment before an answer, is refused."""
    with pytest.raises(ValidationError, match="both set"):
        SatisfactionSurvey(ticket_id="t1", customer_id="c1", sent_at=T0, score=5)
    with pytest.raises(ValidationError, match="needs an answer"):
        SatisfactionSurvey(ticket_id="t1", customer_id="c1", sent_at=T0, comment="hm")


def test_field_sets_read_tickets_and_surveys() -> None:
    """Conditions over the declared ticket and survey fields evaluate on objects, custom fields too."""
    t = attrs.evolve(
        _ticket(priority=TicketPriority.URGENT, tags=["vip"], team="support", custom={"tier": "gold"}),
        updated_at=T0,
        version=1,
    ).change_status("solved", T0 + H)
    cond = (
        (Field("priority") == "urgent")
        & (Field("status") == "solved")
        & Field("tags").contains("vip")
        & (Field("team") == "support")
        & (Field("custom.tier") == "gold")
        & (Field("reopen_count") == 0)
        & (Field("solved_at") > T0)
    )
    assert evaluate(cond, t, TICKET_FIELDS, T0)
    assert not evaluate(Field("first_response_at") > T0, t, TICKET_FIELDS, T0)
    s = SatisfactionSurvey(ticket_id=t.id, customer_id="c1", sent_at=T0).answer(2, T0 + H)
    assert evaluate((Field("score") <= 2) & (Field("ticket_id") == t.id), s, SURVEY_FIELDS, T0)
    with pytest.raises(ValidationError, match="one of"):
        check_condition(Field("priority") == "critical", TICKET_FIELDS)
