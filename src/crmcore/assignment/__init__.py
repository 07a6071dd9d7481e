"""Assignment: route tickets, leads or any subject to one owner by ordered rules and queues.

Rules (first match wins) send a subject to a user or a queue; a queue picks one of its available
members by round robin, weighted round robin, least loaded, or territory; a fallback takes the
rest. `Router.route` is pure; `assign` loads and saves a queue's rotation state in a unit of work.
See docs/assignment.md.
"""

from crmcore.assignment.decision import AssignmentDecision, Routing
from crmcore.assignment.roster import Member, Roster, Skipped, SkipReason
from crmcore.assignment.router import Router
from crmcore.assignment.rules import (
    MAX_WEIGHT,
    AssignmentConfig,
    AssignmentRule,
    Queue,
    Strategy,
    Target,
    Territory,
)
from crmcore.assignment.shell import assign, assign_with_retry
from crmcore.assignment.state import QUEUE_STATE_FIELDS, MemberTurns, QueueState

__all__ = [
    "AssignmentConfig",
    "AssignmentDecision",
    "AssignmentRule",
    "MAX_WEIGHT",
    "Member",
    "MemberTurns",
    "QUEUE_STATE_FIELDS",
    "Queue",
    "QueueState",
    "Roster",
    "Router",
    "Routing",
    "SkipReason",
    "Skipped",
    "Strategy",
    "Target",
    "Territory",
    "assign",
    "assign_with_retry",
]
