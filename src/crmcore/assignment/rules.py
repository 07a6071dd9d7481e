"""Assignment configuration as data: rules, targets, queues and their strategies.

An `AssignmentConfig` is an ordered rule table (the first rule whose condition holds wins), the
queues rules send subjects to, and a fallback target. It round-trips through
`crmcore.serialization`, and refuses to be built with dangling or contradictory parts (every
problem reported at once); the conditions are checked against a subject's `FieldSet` when a
`crmcore.assignment.Router` is built from it.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from crmcore.conditions import Condition
from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id
from crmcore.validation import checked, instance_of, one_of, optional, run_checks, text, tuple_of

__all__ = [
    "AssignmentConfig",
    "AssignmentRule",
    "MAX_WEIGHT",
    "Queue",
    "Strategy",
    "Target",
    "Territory",
]

MAX_WEIGHT = 1000
"""The largest member weight of a weighted round-robin queue."""


class Strategy(enum.Enum):
    """How a queue picks one of its members (see docs/assignment.md for the exact tie-breaks).

    ``round_robin``: the available member who has waited longest since their last turn.
    ``weighted_round_robin``: members get turns in proportion to their weights (smooth weighted
    round robin). ``least_loaded``: the available member with the least open work.
    ``territory``: no members of its own; a field of the subject picks a user or a sub-queue.
    """

    ROUND_ROBIN = "round_robin"
    WEIGHTED_ROUND_ROBIN = "weighted_round_robin"
    LEAST_LOADED = "least_loaded"
    TERRITORY = "territory"

    @property
    def label(self) -> str:
        """The strategy's name for people (``round robin``)."""
        return self.value.replace("_", " ")


@attrs.frozen(kw_only=True)
class Target:
    """Where a subject goes: one user (``user``) or a queue (``queue``), exactly one of the two."""

    user: str | None = checked(optional(check_id), default=None)
    queue: str | None = checked(optional(check_id), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if (self.user is None) == (self.queue is None):
            raise ValidationError("target", "name exactly one of user and queue")

    @classmethod
    def to_user(cls, user: str) -> Target:
        """A target that is one user."""
        return cls(user=user)

    @classmethod
    def to_queue(cls, queue: str) -> Target:
        """A target that is a queue (its strategy picks the member)."""
        return cls(queue=queue)

    def __str__(self) -> str:
        return f"user {self.user!r}" if self.user is not None else f"queue {self.queue!r}"


def _condition(value: Any, path: str) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(path, f"must be a condition (crmcore.conditions), not {type(value).__name__}")
    return value


@attrs.frozen(kw_only=True)
class AssignmentRule:
    """One row of the rule table: subjects matching ``condition`` go to ``target``.

    Use ``All()`` (always true) as the condition of a catch-all last rule.
    """

    name: str = checked(text(max_length=100, required=True))
    condition: Condition = checked(_condition)
    target: Target = checked(instance_of(Target))

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _territory_value(value: Any, path: str) -> str:
    checked_value: str = text(max_length=200, required=True)(value, path)
    return checked_value


@attrs.frozen(kw_only=True)
class Territory:
    """Subjects whose territory field holds one of ``values`` go to ``target``."""

    values: tuple[str, ...] = checked(tuple_of(_territory_value))
    target: Target = checked(instance_of(Target))

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if not self.values:
            raise ValidationError("values", "name at least one value")


def _weights(value: Any, path: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict of user id to weight, not {type(value).__name__}")
    errors: list[FieldError] = []
    out: dict[str, int] = {}
    for user, weight in value.items():
        try:
            check_id(user, path)
        except ValidationError as exc:
            errors.extend(exc.errors)
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            errors.append(
                FieldError(f"{path}.{user}", f"must be an integer from 1 to {MAX_WEIGHT}, got {weight!r}")
            )
            continue
        out[user] = weight
    if errors:
        raise ValidationError.from_errors(errors)
    return out


@attrs.frozen(kw_only=True)
class Queue:
    """A named group of users and the strategy that picks one of them.

    ``weights`` (weighted round robin only) give members other than 1 their weight. A territory
    queue has no members: ``field`` names the subject's field, ``territories`` map its values to
    users or sub-queues, ``otherwise`` takes values no territory names (else the fallback does).
    """

    name: str = checked(check_id)
    strategy: Strategy = checked(one_of(Strategy), default=Strategy.ROUND_ROBIN)
    members: tuple[str, ...] = checked(tuple_of(check_id), default=())
    weights: dict[str, int] = checked(_weights, factory=dict)
    field: str | None = checked(optional(text(max_length=200, required=True)), default=None)
    territories: tuple[Territory, ...] = checked(tuple_of(instance_of(Territory)), default=())
    otherwise: Target | None = checked(optional(instance_of(Target)), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        seen: dict[str, int] = {}
        for i, user in enumerate(self.members):
            first = seen.setdefault(user, i)
            if first != i:
                errors.append(FieldError(f"members[{i}]", f"{user!r} is listed twice"))
        if self.strategy is Strategy.TERRITORY:
            errors.extend(self._territory_problems())
        else:
            if not self.members:
                errors.append(
                    FieldError("members", f"{self.strategy.label} queue {self.name!r} has no members")
                )
            for name in ("field", "territories", "otherwise"):
                if getattr(self, name):
                    errors.append(
                        FieldError(name, f"only territory queues have one; this is {self.strategy.label}")
                    )
        if self.weights and self.strategy is not Strategy.WEIGHTED_ROUND_ROBIN:
            errors.append(
                FieldError("weights", f"only weighted round robin uses weights, not {self.strategy.label}")
            )
        for user in self.weights:
            if user not in seen:
                errors.append(
                    FieldError(f"weights.{user}", f"{user!r} is not a member of queue {self.name!r}")
                )
        if errors:
            raise ValidationError.from_errors(errors)

    def _territory_problems(self) -> list[FieldError]:
        errors: list[FieldError] = []
        if self.members:
            errors.append(
                FieldError("members", "a territory queue has no members; its territories name them")
            )
        if self.field is None:
            errors.append(
                FieldError("field", "a territory queue needs the field whose value picks the territory")
            )
        if not self.territories:
            errors.append(FieldError("territories", f"territory queue {self.name!r} has no territories"))
        owner: dict[str, int] = {}
        for i, territory in enumerate(self.territories):
            for value in territory.values:
                first = owner.setdefault(value, i)
                if first != i:
                    errors.append(
                        FieldError(
                            f"territories[{i}].values", f"{value!r} is already in territories[{first}]"
                        )
                    )
        return errors

    def weight(self, user: str) -> int:
        """The weight of ``user`` in this queue (1 unless ``weights`` says otherwise)."""
        return self.weights.get(user, 1)

    def targets(self) -> list[tuple[str, Target]]:
        """(path, target) of every target inside this queue (its territories and ``otherwise``)."""
        found = [(f"territories[{i}].target", t.target) for i, t in enumerate(self.territories)]
        if self.otherwise is not None:
            found.append(("otherwise", self.otherwise))
        return found


@attrs.frozen(kw_only=True)
class AssignmentConfig:
    """The rule table, its queues and the fallback: everything a router needs besides the fields.

    Rules are tried in order and the first match wins. ``fallback`` takes subjects no rule
    matches and those whose target has nobody available; without one (or when it has nobody
    either) the subject stays unassigned, with the reason in the decision.

    Refused when built (all at once): repeated rule or queue names, targets naming unknown
    queues, queues without members, territory queues that lead back to themselves.
    """

    rules: tuple[AssignmentRule, ...] = checked(tuple_of(instance_of(AssignmentRule)), default=())
    queues: tuple[Queue, ...] = checked(tuple_of(instance_of(Queue)), default=())
    fallback: Target | None = checked(optional(instance_of(Target)), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        rule_at: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            first = rule_at.setdefault(rule.name, i)
            if first != i:
                errors.append(
                    FieldError(f"rules[{i}].name", f"{rule.name!r} repeats the name of rules[{first}]")
                )
        queue_at: dict[str, int] = {}
        for i, queue in enumerate(self.queues):
            first = queue_at.setdefault(queue.name, i)
            if first != i:
                errors.append(
                    FieldError(f"queues[{i}].name", f"{queue.name!r} repeats the name of queues[{first}]")
                )

        def check_target(path: str, target: Target) -> None:
            if target.queue is not None and target.queue not in queue_at:
                known = ", ".join(repr(q) for q in sorted(queue_at)) or "none"
                errors.append(FieldError(path, f"unknown queue {target.queue!r}; queues: {known}"))

        for i, rule in enumerate(self.rules):
            check_target(f"rules[{i}].target", rule.target)
        for i, queue in enumerate(self.queues):
            for path, target in queue.targets():
                check_target(f"queues[{i}].{path}", target)
        if self.fallback is not None:
            check_target("fallback", self.fallback)
        errors.extend(self._cycles(queue_at))
        if errors:
            raise ValidationError.from_errors(errors)

    def _cycles(self, queue_at: dict[str, int]) -> list[FieldError]:
        """Territory queues whose targets lead back to themselves (they would never settle)."""
        by_name = {q.name: q for q in self.queues}
        errors: list[FieldError] = []

        def reaches(start: str, name: str, seen: set[str]) -> bool:
            queue = by_name.get(name)
            for _, target in queue.targets() if queue is not None else ():
                nxt = target.queue
                if nxt is None or nxt in seen:
                    continue
                if nxt == start:
                    return True
                seen.add(nxt)
                if reaches(start, nxt, seen):
                    return True
            return False

        for queue in self.queues:
            if queue.strategy is Strategy.TERRITORY and reaches(queue.name, queue.name, set()):
                path = f"queues[{queue_at[queue.name]}]"
                errors.append(FieldError(path, f"territory queue {queue.name!r} leads back to itself"))
        return errors

    def queue(self, name: str) -> Queue:
        """The queue called ``name``.

        Raises:
            ValidationError: there is none (the message lists the queues).
        """
        for queue in self.queues:
            if queue.name == name:
                return queue
        known = ", ".join(repr(q.name) for q in self.queues) or "none"
        raise ValidationError("queue", f"unknown queue {name!r}; queues: {known}")
