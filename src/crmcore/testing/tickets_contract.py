"""Contract tests for tickets and satisfaction surveys.

Mixed into `crmcore.testing.StoreContract`; the fixtures (``crm``, ``tenant``) come from there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.conditions import Condition, Field, evaluate
from crmcore.errors import ConcurrencyError, NotFound
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.service.ticket import (
    TICKET_FIELDS,
    SatisfactionSurvey,
    StatusDef,
    StatusKind,
    StatusSet,
    Ticket,
    TicketPriority,
    ticket_statuses,
)
from crmcore.service.timers import SlaTimer
from crmcore.testing import strategies as cst

__all__ = ["TicketsContract"]

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def _ticket(**kw: object) -> Ticket:
    return Ticket(customer_id="c0", subject="Cannot log in", **kw)  # type: ignore[arg-type]


class TicketsContract:
    """Tickets and surveys: round trips, queries on the denormalized fields, tenancy, versions."""

    @_SETTINGS
    @given(
        tickets=st.lists(cst.tickets(), max_size=4, unique_by=lambda t: t.id),
        surveys=st.lists(cst.surveys(), max_size=3, unique_by=lambda s: s.id),
    )
    def test_tickets_and_surveys_round_trip(
        self, crm: CRM, tickets: list[Ticket], surveys: list[SatisfactionSurvey]
    ) -> None:
        """Tickets (comments and status history included) and surveys come back equal, field by field."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            for ticket in tickets[:1]:
                uow.tickets.add(ticket)
            uow.tickets.bulk_add(tickets[1:])
            uow.surveys.bulk_add(surveys)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [uow.tickets.get(t.id) for t in tickets] == tickets
            assert {s.id: s for s in uow.surveys.iter_all()} == {s.id: s for s in surveys}

    @_SETTINGS
    @given(
        data=st.lists(cst.tickets(), max_size=10, unique_by=lambda t: t.id),
        where=cst.conditions(4, fields=TICKET_FIELDS),
    )
    def test_ticket_queries_agree_with_python_evaluation(
        self, crm: CRM, data: list[Ticket], where: Condition
    ) -> None:
        """find() and count() on tickets return exactly what the condition's Python evaluation accepts."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.tickets.bulk_add(data)
            uow.commit()
        expected = sorted(t.id for t in data if evaluate(where, t, TICKET_FIELDS, cst.NOW))
        with crm.unit_of_work(tenant) as uow:
            assert [t.id for t in uow.tickets.find(where, now=cst.NOW)] == expected
            assert uow.tickets.count(where, now=cst.NOW) == len(expected)

    def test_find_by_status_priority_team_and_assignee(self, crm: CRM, tenant: str) -> None:
        """The denormalized columns answer queries and sorts, and follow the ticket when it changes."""
        a = _ticket(priority=TicketPriority.URGENT, team="support", assignee="u1", id="a")
        b = _ticket(priority=TicketPriority.LOW, team="billing", id="b").change_status("pending", T0)
        c = _ticket(priority=TicketPriority.HIGH, team="support", id="c").change_status("solved", T0)
        with crm.unit_of_work(tenant) as uow:
            uow.tickets.bulk_add([a, b, c])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            open_support = (Field("team") == "support") & Field("status").in_(["new", "open", "pending"])
            assert [t.id for t in uow.tickets.find(open_support)] == ["a"]
            assert [t.id for t in uow.tickets.find(Field("priority") == "low")] == ["b"]
            assert [t.id for t in uow.tickets.find(order_by=["-solved_at"])] == ["c", "a", "b"]
            assert uow.tickets.count(Field("assignee").is_null()) == 2
            reopened = uow.tickets.get("c").change_status("open", T0 + timedelta(hours=1), by="u2")
            uow.tickets.save(reopened)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [t.id for t in uow.tickets.find(Field("reopen_count") >= 1)] == ["c"]
            assert uow.tickets.count(Field("solved_at").is_null()) == 3
            assert uow.tickets.get("c").status_history[-1].by == "u2"

    def test_find_surveys_by_score(self, crm: CRM, tenant: str) -> None:
        """Surveys can be found by score, answer time and ticket; unanswered ones have no score."""
        sent = SatisfactionSurvey(ticket_id="t1", customer_id="c0", sent_at=T0, id="s1")
        low = SatisfactionSurvey(ticket_id="t2", customer_id="c0", sent_at=T0, id="s2").answer(
            2, T0 + timedelta(days=1)
        )
        with crm.unit_of_work(tenant) as uow:
            uow.surveys.bulk_add([sent, low])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [s.id for s in uow.surveys.find(Field("score") <= 3)] == ["s2"]
            assert [s.id for s in uow.surveys.find(Field("answered_at").is_null())] == ["s1"]
            assert [s.id for s in uow.surveys.find(Field("ticket_id") == "t2")] == ["s2"]

    def test_custom_statuses_are_stored_and_read_back(self, crm: CRM, tenant: str) -> None:
        """A ticket in a host's own status is stored, found and read back, even outside ticket_statuses()."""
        custom = StatusSet(
            statuses=(
                StatusDef(name="triage", kind=StatusKind.ACTIVE),
                StatusDef(name="done", kind=StatusKind.SOLVED),
            ),
            initial="triage",
        )
        with ticket_statuses(custom):
            ticket = _ticket().change_status("done", T0)
        with crm.unit_of_work(tenant) as uow:
            uow.tickets.add(ticket)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [t.id for t in uow.tickets.find(Field("status") == "done")] == [ticket.id]
            assert uow.tickets.get(ticket.id) == ticket

    def test_tickets_and_surveys_stay_in_their_tenant(self, crm: CRM, tenant: str) -> None:
        """Another tenant sees none of a tenant's tickets or surveys."""
        ticket = _ticket()
        survey = SatisfactionSurvey(ticket_id=ticket.id, customer_id="c0", sent_at=T0)
        with crm.unit_of_work(tenant) as uow:
            uow.tickets.add(ticket)
            uow.surveys.add(survey)
            uow.commit()
        with crm.unit_of_work(f"{tenant}-other") as uow:
            for repo, id in ((uow.tickets, ticket.id), (uow.surveys, survey.id)):
                assert not repo.exists(id) and repo.count() == 0 and list(repo.iter_all()) == []
            assert uow.tickets.find(Field("status") == "new") == []
            with pytest.raises(NotFound):
                uow.tickets.delete(ticket.id)

    def test_stale_ticket_and_survey_saves_conflict(self, crm: CRM, tenant: str) -> None:
        """Saving a ticket or survey read before someone else's save raises ConcurrencyError."""
        ticket = _ticket()
        survey = SatisfactionSurvey(ticket_id=ticket.id, customer_id="c0", sent_at=T0)
        with crm.unit_of_work(tenant) as uow:
            uow.tickets.add(ticket)
            uow.surveys.add(survey)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            first, second = uow.tickets.get(ticket.id), uow.tickets.get(ticket.id)
            uow.tickets.save(first.add_comment("u1", "On it", T0))
            with pytest.raises(ConcurrencyError):
                uow.tickets.save(second.change_status("open", T0))
            answered = uow.surveys.get(survey.id).answer(5, T0 + timedelta(hours=2))
            stale = uow.surveys.get(survey.id)
            uow.surveys.save(answered)
            stale.custom = {"k": 1}
            with pytest.raises(ConcurrencyError):
                uow.surveys.save(stale)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            got = uow.tickets.get(ticket.id)
            assert (got.version, got.first_response_at, got.status) == (2, T0, "new")
            assert uow.surveys.get(survey.id).score == 5
            with pytest.raises(ConcurrencyError):
                uow.tickets.delete(ticket.id, expected_version=1)

    def test_sla_timers_round_trip_and_come_due_in_order(self, crm: CRM, tenant: str) -> None:
        """SLA timers keep their fired keys; ``next_check_at <= now`` finds the due ones, earliest first."""
        timers = [
            SlaTimer(id="t1", next_check_at=T0 + timedelta(hours=2), fired=("resolution@x:warning",)),
            SlaTimer(id="t2", next_check_at=T0 - timedelta(minutes=1)),
            SlaTimer(id="t3", next_check_at=None, fired=("a:met", "b:breached")),
            SlaTimer(id="t4", next_check_at=T0),
        ]
        with crm.unit_of_work(tenant) as uow:
            uow.sla_timers.add(timers[0])
            uow.sla_timers.bulk_add(timers[1:])
            uow.commit()
        with crm.unit_of_work(f"{tenant}-other") as uow:
            assert uow.sla_timers.find(Field("next_check_at") <= T0 + timedelta(days=1)) == []
        with crm.unit_of_work(tenant) as uow:
            assert [uow.sla_timers.get(t.id) for t in timers] == timers
            due = uow.sla_timers.find(Field("next_check_at") <= T0, order_by=["next_check_at", "id"])
            assert [t.id for t in due] == ["t2", "t4"]
            stale = uow.sla_timers.get("t1")
            fresh = uow.sla_timers.get("t1")
            fresh.fired = (*fresh.fired, "resolution@x:breached")
            uow.sla_timers.save(fresh)
            stale.next_check_at = None
            with pytest.raises(ConcurrencyError):
                uow.sla_timers.save(stale)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.sla_timers.get("t1").fired == ("resolution@x:warning", "resolution@x:breached")
