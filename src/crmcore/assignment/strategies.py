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

__all__ = ["advance", "take_turn"]

_NONE = MemberTurns()


def take_turn(
    queue: Queue, eligible: Sequence[str], state: QueueState, roster: Roster
) -> tuple[str, str, QueueState]:
    """Pick the member of ``eligible`` to assign; (user, why in words, the queue's new state).

    ``eligible``: the queue's available members (not empty); ``state``: the queue's rotation
    state; ``roster``: the loads, for least loaded.
    """
    turns = state.members
    strategy = queue.strategy
    if strategy is Strategy.ROUND_ROBIN:
        user = min(eligible, key=lambda u: (turns.get(u, _NONE).last_turn, u))
        last = turns.get(user, _NONE).last_turn
        waited = "never had a turn" if last == 0 else f"last turn {last}"
        return user, f"who has waited longest ({waited})", _advanced(state, user, 0, False)
    if strategy is Strategy.LEAST_LOADED:
        loads = roster.loads
        user = min(eligible, key=lambda u: (loads.get(u, 0), turns.get(u, _NONE).last_turn, u))
        why = f"who has the least open work ({loads.get(user, 0)})"
        return user, why, _advanced(state, user, 0, False)
    if strategy is Strategy.WEIGHTED_ROUND_ROBIN:
        cycle, n, total = _cycle(queue, state)
        weights = queue.weights
        below = [u for u in eligible if cycle.get(u, 0) * total < (n + 1) * weights.get(u, 1)]
        user = min(
            below or eligible,
            key=lambda u: ((cycle.get(u, 0) + 1) / weights.get(u, 1), turns.get(u, _NONE).last_turn, u),
        )
        due = cycle.get(user, 0) + 1
        why = f"whose turn is due ({due} of {weights.get(user, 1)} in a cycle of {total})"
        return user, why, _advanced(state, user, due, not cycle)
    raise ValueError(f"{strategy.label} queues do not pick members")  # pragma: no cover - router resolves


def advance(queue: Queue, state: QueueState, user: str) -> QueueState:
    """``state`` after ``user`` took the queue's next turn (a new state; ``state`` is unchanged).

    For replaying or preparing a rotation; `take_turn` picks the user and advances at once.
    """
    if queue.strategy is Strategy.WEIGHTED_ROUND_ROBIN:
        cycle, _, _ = _cycle(queue, state)
        return _advanced(state, user, cycle.get(user, 0) + 1, not cycle)
    return _advanced(state, user, 0, False)


def _cycle(queue: Queue, state: QueueState) -> tuple[dict[str, int], int, int]:
    """(turns per member in the current cycle, turns taken in it, the cycle's length W).

    A cycle ends after W turns among the queue's members; the next one starts from zero.
    """
    weights = queue.weights
    total = sum(weights.get(u, 1) for u in queue.members)
    turns = state.members
    cycle = {u: turns[u].cycle for u in queue.members if u in turns and turns[u].cycle}
    n = sum(cycle.values())
    if n >= total:
        return {}, 0, total
    return cycle, n, total


def _turns(last_turn: int, count: int, cycle: int) -> MemberTurns:
    """A `MemberTurns` known to be valid, built without its checks (routing builds one per turn)."""
    turns: MemberTurns = object.__new__(MemberTurns)
    object.__setattr__(turns, "last_turn", last_turn)
    object.__setattr__(turns, "count", count)
    object.__setattr__(turns, "cycle", cycle)
    return turns


def _advanced(state: QueueState, user: str, cycle: int, new_cycle: bool) -> QueueState:
    """``state`` with the next turn given to ``user``, who has ``cycle`` turns in the current cycle.

    Valid by construction (one more turn, to one member), so built without checks; stores check
    the invariants again before writing. ``new_cycle`` forgets every member's turns of the last one.
    """
    members = dict(state.members)
    if new_cycle:
        for name, turns in members.items():
            if turns.cycle:
                members[name] = _turns(turns.last_turn, turns.count, 0)
    sequence = state.sequence + 1
    members[user] = _turns(sequence, members.get(user, _NONE).count + 1, cycle)
    new: QueueState = object.__new__(QueueState)
    for name, value in (
        ("id", state.id),
        ("sequence", sequence),
        ("members", members),
        ("created_at", state.created_at),
        ("updated_at", state.updated_at),
        ("version", state.version),
    ):
        object.__setattr__(new, name, value)
    return new
