"""What routing decided, and why: plain data that round-trips through `crmcore.serialization`."""

from __future__ import annotations

import attrs

from crmcore.assignment.roster import Skipped
from crmcore.assignment.rules import Strategy
from crmcore.assignment.state import QueueState

__all__ = ["AssignmentDecision", "Routing"]


@attrs.frozen(kw_only=True)
class AssignmentDecision:
    """The owner chosen for one subject, or None (unassigned), with everything that led to it.

    ``rule``: the rule that matched (None: none did). ``queue`` and ``strategy``: the queue that
    picked the owner (None for a user target). ``fallback``: the fallback target was used (no
    rule matched, or the matched target had nobody available). ``turn``: the queue's turn number
    given to this assignment. ``skipped``: users passed over, each with why. ``reason``: all of
    it in one sentence for people.
    """

    owner: str | None
    rule: str | None
    queue: str | None
    strategy: Strategy | None
    fallback: bool
    turn: int | None
    reason: str
    skipped: tuple[Skipped, ...] = ()

    @property
    def assigned(self) -> bool:
        """Whether the subject got an owner."""
        return self.owner is not None


@attrs.frozen(kw_only=True)
class Routing:
    """A decision and the queue's rotation state after it (None when no queue took a turn).

    Store ``state`` in the same unit of work as the subject's new owner (`crmcore.assignment.assign`
    does both), or keep it in memory for the next routing.
    """

    decision: AssignmentDecision
    state: QueueState | None
