"""Contract tests for assignment queues' rotation state (`crmcore.assignment.QueueState`).

Mixed into `crmcore.testing.StoreContract`; the fixtures (``crm``, ``tenant``) come from there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.assignment import (
    AssignmentConfig,
    AssignmentRule,
    Member,
    Queue,
    QueueState,
    Roster,
    Router,
    Strategy,
    Target,
    assign,
    assign_with_retry,
)
from crmcore.assignment.strategies import advance
from crmcore.conditions import All, Field
from crmcore.errors import AlreadyExists, ConcurrencyError, NotFound
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.service.ticket import TICKET_FIELDS, Ticket
from crmcore.storage.base import UnitOfWork

__all__ = ["AssignmentContract"]

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)
_USERS = ("ann", "bob", "cy", "dan")


@st.composite
def queue_states(draw: st.DrawFn) -> QueueState:
    """A rotation state reached by a random run of turns of a random queue."""
    strategy = draw(st.sampled_from([Strategy.ROUND_ROBIN, Strategy.WEIGHTED_ROUND_ROBIN]))
    members = tuple(draw(st.lists(st.sampled_from(_USERS), min_size=1, unique=True)))
    weights = (
        {u: draw(st.integers(1, 4)) for u in members} if strategy is Strategy.WEIGHTED_ROUND_ROBIN else {}
    )
    name = draw(st.sampled_from(["support", "sales-emea", "q_1"]))
    queue = Queue(name=name, strategy=strategy, members=members, weights=weights)
    state = QueueState(id=queue.name)
    for user in draw(st.lists(st.sampled_from(members), max_size=12)):
        state = advance(queue, state, user)
    return state


def _router() -> Router:
    config = AssignmentConfig(
        rules=(AssignmentRule(name="everything", condition=All(), target=Target.to_queue("support")),),
        queues=(Queue(name="support", members=("ann", "bob", "cy")),),
    )
    return Router(config, TICKET_FIELDS)


_ROSTER = Roster(members=tuple(Member(user=u) for u in ("ann", "bob", "cy")))


class AssignmentContract:
    """Queue rotation state: round trips, versions and conflicts, tenancy, the assign() shell."""

    @_SETTINGS
    @given(state=queue_states())
    def test_queue_state_round_trips(self, crm: CRM, state: QueueState) -> None:
        """A rotation state comes back equal, members' turns included, after add and after save."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.assignment_queues.add(state)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            got = uow.assignment_queues.get(state.id)
            assert got == state
            got = advance(Queue(name=state.id, members=("zoe",)), got, "zoe")
            uow.assignment_queues.save(got)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            again = uow.assignment_queues.get(state.id)
            assert again == got and again.version == 2
            assert again.turns("zoe").last_turn == state.sequence + 1

    def test_stale_queue_state_is_refused(self, crm: CRM, tenant: str) -> None:
        """Two units of work take a turn from the same version: the second gets ConcurrencyError."""
        queue = Queue(name="support", members=("ann", "bob"))
        with crm.unit_of_work(tenant) as uow:
            uow.assignment_queues.add(QueueState(id="support"))
            uow.commit()
        first, second = crm.unit_of_work(tenant), crm.unit_of_work(tenant)
        refused = False
        with first, second:
            a, b = first.assignment_queues.get("support"), second.assignment_queues.get("support")
            first.assignment_queues.save(advance(queue, a, "ann"))
            first.commit()
            try:
                second.assignment_queues.save(advance(queue, b, "ann"))
                second.commit()
            except ConcurrencyError:
                refused = True
        assert refused
        with crm.unit_of_work(tenant) as uow:
            stored = uow.assignment_queues.get("support")
            assert (stored.sequence, stored.version, stored.count("ann")) == (1, 2, 1)

    def test_creating_a_queue_state_twice_is_refused(self, crm: CRM, tenant: str) -> None:
        """Two units of work create the same queue's state: the second fails, the first's stays."""
        first, second = crm.unit_of_work(tenant), crm.unit_of_work(tenant)
        queue = Queue(name="support", members=("ann", "bob"))
        with first, second:
            first.assignment_queues.add(advance(queue, QueueState(id="support"), "ann"))
            first.commit()
            with pytest.raises((AlreadyExists, ConcurrencyError)):
                second.assignment_queues.add(advance(queue, QueueState(id="support"), "bob"))
                second.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.assignment_queues.get("support").turns("ann").last_turn == 1

    def test_queue_states_stay_in_their_tenant(self, crm: CRM, tenant: str) -> None:
        """A queue's rotation in one tenant is invisible to, and independent of, another tenant's."""
        other = f"t-{new_id()}"
        queue = Queue(name="support", members=("ann", "bob"))
        with crm.unit_of_work(tenant) as uow:
            uow.assignment_queues.add(advance(queue, QueueState(id="support"), "ann"))
            uow.commit()
        with crm.unit_of_work(other) as uow:
            assert not uow.assignment_queues.exists("support")
            with pytest.raises(NotFound):
                uow.assignment_queues.get("support")
            uow.assignment_queues.add(advance(queue, QueueState(id="support"), "bob"))
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.assignment_queues.get("support").count("ann") == 1
            assert uow.assignment_queues.count() == 1

    def test_assign_rotates_across_units_of_work(self, crm: CRM, tenant: str) -> None:
        """assign() keeps the rotation in the store: each unit of work continues where the last stopped."""
        router = _router()
        owners: list[str | None] = []
        for _ in range(7):

            def work(uow: UnitOfWork) -> str | None:
                ticket = Ticket(customer_id="c1", subject="Printer on fire")
                decision = assign(uow, router, ticket, _ROSTER, T0)
                ticket.assignee = decision.owner
                uow.tickets.add(ticket)
                return decision.owner

            owners.append(assign_with_retry(crm, tenant, work))
        assert owners == ["ann", "bob", "cy", "ann", "bob", "cy", "ann"]
        with crm.unit_of_work(tenant) as uow:
            state = uow.assignment_queues.get("support")
            assert (state.sequence, state.version) == (7, 7)
            assert [s.id for s in uow.assignment_queues.find(Field("sequence") >= 7)] == ["support"]
            assert uow.tickets.count(Field("assignee") == "ann") == 3

    def test_assign_without_commit_takes_no_turn(self, crm: CRM, tenant: str) -> None:
        """A unit of work that routes but does not commit leaves the stored rotation unchanged."""
        router = _router()
        with crm.unit_of_work(tenant) as uow:
            assert assign(uow, router, Ticket(customer_id="c1", subject="x"), _ROSTER, T0).owner == "ann"
        with crm.unit_of_work(tenant) as uow:
            assert not uow.assignment_queues.exists("support")
            assert assign(uow, router, Ticket(customer_id="c1", subject="x"), _ROSTER, T0).owner == "ann"
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert assign(uow, router, Ticket(customer_id="c1", subject="x"), _ROSTER, T0).owner == "bob"
