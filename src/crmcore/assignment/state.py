"""A queue's rotation state: whose turn it is, stored so rotation survives processes and restarts.

`QueueState` is an aggregate (``uow.assignment_queues``), one per queue, keyed by the queue's
name. Each assignment from the queue takes the next turn number (``sequence``); each member keeps
the turn of their last assignment, how many they got, and how many in the current weighted cycle.
Saving it with the store's optimistic concurrency (``version``) is what stops two processes from
handing out the same turn.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, record_fields
from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id
from crmcore.validation import (
    MAX_JSON_INT,
    check_on_setattr,
    checked,
    optional,
    run_checks,
    utc_datetime,
    version_number,
)

__all__ = ["MemberTurns", "QUEUE_STATE_FIELDS", "QueueState"]


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_JSON_INT:
        raise ValidationError(path, f"must be a non-negative integer, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class MemberTurns:
    """One member's place in a queue's rotation.

    ``last_turn``: the turn number of their last assignment from the queue (0: never);
    ``count``: assignments they got from it; ``cycle``: those in the current weighted
    round-robin cycle (weighted queues only).
    """

    last_turn: int = checked(_count, default=0)
    count: int = checked(_count, default=0)
    cycle: int = checked(_count, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.cycle > self.count:
            raise ValidationError("cycle", f"{self.cycle} turns this cycle is more than {self.count} in all")


def _members(value: Any, path: str) -> dict[str, MemberTurns]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict of user id to MemberTurns, not {type(value).__name__}")
    errors: list[FieldError] = []
    for user, turns in value.items():
        try:
            check_id(user, path)
        except ValidationError as exc:
            errors.extend(exc.errors)
        else:
            if not isinstance(turns, MemberTurns):
                errors.append(
                    FieldError(f"{path}.{user}", f"must be a MemberTurns, not {type(turns).__name__}")
                )
    if errors:
        raise ValidationError.from_errors(errors)
    return dict(value)


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class QueueState:
    """The stored rotation of one queue (``id`` is the queue's name).

    Invariants (checked by stores before writing): the members' counts add up to ``sequence``;
    every turn number from 1 to ``sequence`` went to exactly one assignment, so the members'
    ``last_turn`` values above 0 are distinct and at most ``sequence``.
    """

    id: str = checked(check_id)
    sequence: int = checked(_count, default=0)
    """Assignments this queue has made: the number of its latest turn."""
    members: dict[str, MemberTurns] = checked(_members, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless the turns add up (see the class docstring)."""
        errors: list[FieldError] = []
        total = sum(t.count for t in self.members.values())
        if total != self.sequence:
            errors.append(
                FieldError("members", f"counts add up to {total}, not the sequence {self.sequence}")
            )
        holder: dict[int, str] = {}
        for user, turns in sorted(self.members.items()):
            if turns.last_turn > self.sequence:
                errors.append(
                    FieldError(
                        f"members.{user}.last_turn",
                        f"{turns.last_turn} is after the sequence {self.sequence}",
                    )
                )
            if (turns.last_turn == 0) != (turns.count == 0):
                errors.append(
                    FieldError(f"members.{user}", "last_turn and count must be both 0 or both positive")
                )
            if turns.last_turn:
                other = holder.setdefault(turns.last_turn, user)
                if other != user:
                    errors.append(
                        FieldError(
                            f"members.{user}.last_turn", f"turn {turns.last_turn} also went to {other!r}"
                        )
                    )
        if errors:
            raise ValidationError.from_errors(errors)

    def turns(self, user: str) -> MemberTurns:
        """The rotation place of ``user`` (all zero if they never had a turn)."""
        return self.members.get(user, _NO_TURNS)

    def count(self, user: str) -> int:
        """How many assignments ``user`` got from this queue."""
        return self.members.get(user, _NO_TURNS).count


_NO_TURNS = MemberTurns()

QUEUE_STATE_FIELDS = FieldSet.of(
    "QueueState",
    [
        *record_fields(),
        FieldDef("sequence", FieldType.INTEGER, operator.attrgetter("sequence"), nullable=False),
    ],
)
"""The fields of `QueueState` that ``find`` and ``order_by`` can use."""
