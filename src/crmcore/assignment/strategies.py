"""How a queue picks one of its available members, and the rotation state after the pick.

Every strategy breaks ties the same documented way, never by list position or member age:
``round_robin`` takes the member whose last turn from this queue is oldest (never-assigned
members first), then the smallest user id. ``least_loaded`` takes the least open work, then the
oldest last turn, then the smallest user id. ``weighted_round_robin`` runs cycles of W turns (W:
the queue's total weight); within a cycle it takes, among members still below their upper quota
(``turns this cycle < (n + 1) * weight / W`` for the cycle's n-th turn), the one whose next turn
is due earliest (smallest ``(turns this cycle + 1) / weight``), then the oldest last turn, then
the smallest user id. This is Balinski and Young's quota method: with everyone available each
member's turns stay within 1 of ``n * weight / W`` at every point, and every full cycle gives
each member exactly ``weight`` turns. A member unavailable during a cycle does not make up the
missed turns in a later cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from crmcore.assignment.roster import Roster
from crmcore.assignment.rules import Queue, Strategy
from crmcore.assignment.state import MemberTurns, QueueState
from crmcore.validation import trusted

__all__ = ["advance", "pick"]

_NONE = MemberTurns()


def pick(queue: Queue, eligible: Sequence[str], state: QueueState, roster: Roster) -> tuple[str, str]:
    """The member of ``eligible`` (non-empty, available members of ``queue``) to assign, and why.

    ``state`` is the queue's rotation state; ``roster`` gives the loads for least loaded.
    """
    turns = state.members
    strategy = queue.strategy
    if strategy is Strategy.ROUND_ROBIN:
        user = min(eligible, key=lambda u: (turns.get(u, _NONE).last_turn, u))
        last = turns.get(user, _NONE).last_turn
        waited = "never had a turn" if last == 0 else f"last turn {last}"
        return user, f"who has waited longest ({waited})"
    if strategy is Strategy.LEAST_LOADED:
        loads = roster.loads
        user = min(eligible, key=lambda u: (loads.get(u, 0), turns.get(u, _NONE).last_turn, u))
        return user, f"who has the least open work ({loads.get(user, 0)})"
    if strategy is Strategy.WEIGHTED_ROUND_ROBIN:
        cycle, n, total = _cycle(queue, state)
        weights = queue.weights
        below = [u for u in eligible if cycle.get(u, 0) * total < (n + 1) * weights.get(u, 1)]
        user = min(
            below or eligible,
            key=lambda u: ((cycle.get(u, 0) + 1) / weights.get(u, 1), turns.get(u, _NONE).last_turn, u),
        )
        weight = weights.get(user, 1)
        return user, f"whose turn is due ({cycle.get(user, 0) + 1} of {weight} in a cycle of {total})"
    raise ValueError(f"{strategy.label} queues do not pick members")  # pragma: no cover - router resolves


def _cycle(queue: Queue, state: QueueState) -> tuple[dict[str, int], int, int]:
    """(turns per member in the current cycle, turns taken in it, the cycle's length W).

    A cycle ends after W turns among the queue's members; the next one starts from zero.
    """
    total = sum(queue.weights.get(u, 1) for u in queue.members)
    turns = state.members
    cycle = {u: turns[u].cycle for u in queue.members if u in turns and turns[u].cycle}
    n = sum(cycle.values())
    if n >= total:
        return {}, 0, total
    return cycle, n, total


def advance(queue: Queue, state: QueueState, user: str) -> QueueState:
    """``state`` after ``user`` took the queue's next turn (a new state; ``state`` is unchanged)."""
    sequence = state.sequence + 1
    members = dict(state.members)
    cycle = 0
    if queue.strategy is Strategy.WEIGHTED_ROUND_ROBIN:
        current, _, _ = _cycle(queue, state)
        if not current:
            # A new cycle: every member's turns of the last one are forgotten.
            for name, turns in members.items():
                if turns.cycle:
                    members[name] = MemberTurns(last_turn=turns.last_turn, count=turns.count)
        cycle = current.get(user, 0) + 1
    old = members.get(user, _NONE)
    with trusted():
        members[user] = MemberTurns(last_turn=sequence, count=old.count + 1, cycle=cycle)
        return QueueState(
            id=state.id,
            sequence=sequence,
            members=members,
            created_at=state.created_at,
            updated_at=state.updated_at,
            version=state.version,
        )
