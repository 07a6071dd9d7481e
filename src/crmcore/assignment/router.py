"""The assignment engine: first matching rule, its target, the target's strategy, or the fallback.

`Router.route` is pure: it takes the subject, the roster (who is available, their open work),
``now`` and the queues' rotation states, and returns the decision with the new rotation state.
It never reads a clock or a store; `crmcore.assignment.assign` is the shell that loads and saves
the state in a unit of work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from crmcore.assignment.decision import AssignmentDecision, Routing
from crmcore.assignment.roster import Roster, Skipped
from crmcore.assignment.rules import AssignmentConfig, AssignmentRule, Queue, Strategy, Target
from crmcore.assignment.state import QueueState
from crmcore.assignment.strategies import take_turn
from crmcore.clock import require_aware
from crmcore.conditions import FieldSet, FieldType, In, check_condition
from crmcore.errors import FieldError, ValidationError
from crmcore.predicates import Predicate, compile_condition, requirements

__all__ = ["Router"]

_TERRITORY_TYPES = {FieldType.TEXT, FieldType.JSON}
_INDEX_FIELDS = 3
"""At most this many fields index the rule table."""
_INDEX_ENTRIES = 10_000
"""Combinations of index values whose candidate rules are remembered."""

_LABELS = {s: s.label for s in Strategy}
_Rules = Sequence[tuple[AssignmentRule, Predicate]]


class _RuleIndex:
    """The rules a subject can match, looked up by the values of a few fields.

    Many rule tables test the same fields for equality (region, industry). A rule requiring
    ``region == "emea"`` cannot match a subject from "apac", so for each combination of the index
    fields' values the index keeps the rules not ruled out by them, in table order; first-match
    evaluation then runs on those alone, with the same answer as over the whole table.
    """

    def __init__(self, rules: _Rules, fields: FieldSet) -> None:
        needs = [requirements(rule.condition, fields) for rule, _ in rules]
        counts = Counter(name for need in needs for name in need)
        names = [name for name, count in counts.most_common(_INDEX_FIELDS) if count >= 2]
        self.rules = tuple(rules)
        self.getters = tuple(fields.fields[name].get for name in names)
        self.needs = [tuple(need.get(name) for name in names) for need in needs]
        self.cache: dict[Any, _Rules] = {}

    def candidates(self, subject: Any) -> _Rules:
        """The rules ``subject`` may match, in table order."""
        getters = self.getters
        if not getters:
            return self.rules
        key = tuple([get(subject) for get in getters])
        try:
            return self.cache[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: no shortcut
            return self.rules
        found = tuple(
            rule
            for rule, need in zip(self.rules, self.needs, strict=True)
            if all(values is None or value in values for value, values in zip(key, need, strict=True))
        )
        if len(self.cache) < _INDEX_ENTRIES:
            self.cache[key] = found
        return found


class _Choice:
    """Where a subject lands before a queue picks: a user, or a queue with its available members."""

    __slots__ = ("eligible", "queue", "user")

    def __init__(self, user: str | None, queue: Queue | None, eligible: list[str]) -> None:
        self.user, self.queue, self.eligible = user, queue, eligible


@attrs.frozen
class _Territories:
    get: Callable[[Any], Any]
    table: dict[str, Target]


class Router:
    """Routes subjects (tickets, leads, anything a `FieldSet` describes) to one owner each.

    Built once from an `AssignmentConfig` and the subjects' `FieldSet`; every rule condition and
    territory field is checked against the fields then (all problems at once), and conditions are
    compiled, so routing does no validation of its own beyond ``now``.

    Raises:
        ValidationError: a condition names an unknown field or compares a wrong type; a territory
            field is unknown or not text, or a territory value is not one of the field's choices.
    """

    def __init__(self, config: AssignmentConfig, fields: FieldSet) -> None:
        errors: list[FieldError] = []
        if not isinstance(config, AssignmentConfig):
            raise ValidationError("config", f"must be an AssignmentConfig, not {type(config).__name__}")
        if not isinstance(fields, FieldSet):
            raise ValidationError("fields", f"must be a FieldSet, not {type(fields).__name__}")
        for i, rule in enumerate(config.rules):
            try:
                check_condition(rule.condition, fields)
            except ValidationError as exc:
                errors.extend(_rebased(exc, f"rules[{i}].condition"))
        territories: dict[str, _Territories] = {}
        for i, queue in enumerate(config.queues):
            if queue.strategy is not Strategy.TERRITORY or queue.field is None:
                continue
            try:
                fd = fields.resolve(queue.field)
            except ValidationError as exc:
                errors.append(FieldError(f"queues[{i}].field", exc.reason))
                continue
            if fd.type not in _TERRITORY_TYPES:
                errors.append(
                    FieldError(
                        f"queues[{i}].field", f"{fd.name!r} is a {fd.type.value} field; territories need text"
                    )
                )
                continue
            for j, territory in enumerate(queue.territories):
                try:
                    check_condition(In(queue.field, territory.values), fields)
                except ValidationError as exc:
                    errors.extend(_rebased(exc, f"queues[{i}].territories[{j}].values"))
            table = {v: t.target for t in queue.territories for v in t.values}
            territories[queue.name] = _Territories(fd.get, table)
        if errors:
            raise ValidationError.from_errors(errors)
        self._config = config
        self._fields = fields
        self._rules = _RuleIndex(
            [(rule, compile_condition(rule.condition, fields)) for rule in config.rules], fields
        )
        self._queues = {q.name: q for q in config.queues}
        self._territories = territories

    @property
    def config(self) -> AssignmentConfig:
        """The configuration this router was built from."""
        return self._config

    @property
    def fields(self) -> FieldSet:
        """The subjects' fields the rules are written in."""
        return self._fields

    def match(self, subject: Any, now: datetime) -> AssignmentRule | None:
        """The first rule whose condition ``subject`` satisfies at ``now``, or None."""
        now = require_aware(now, "now")
        for rule, holds in self._rules.candidates(subject):
            if holds(subject, now):
                return rule
        return None

    def queue_for(self, subject: Any, roster: Roster, now: datetime) -> str | None:
        """The queue that will take a turn for ``subject`` (None: a user target or nobody).

        What the shell loads before `route`: the queue follows from the rules, the roster and
        ``now`` alone, never from rotation state.
        """
        now = require_aware(now, "now")
        choice = self._choose(subject, roster, now, [], [], set())[1]
        return None if choice is None or choice.queue is None else choice.queue.name

    def route(
        self,
        subject: Any,
        roster: Roster,
        now: datetime,
        states: Mapping[str, QueueState] | None = None,
    ) -> Routing:
        """Decide the owner of ``subject`` at ``now``; the decision and the queue's new state.

        Args:
            subject: the object the rules' `FieldSet` reads (a ticket, a lead).
            roster: the users, their availability and open work.
            now: an aware datetime; availability and relative-date conditions use it.
            states: rotation states by queue name; a queue without one starts fresh.

        Raises:
            ValidationError: ``now`` is naive, or ``roster`` is not a `Roster`.
        """
        now = require_aware(now, "now")
        if not isinstance(roster, Roster):
            raise ValidationError("roster", f"must be a Roster, not {type(roster).__name__}")
        skipped: list[Skipped] = []
        notes: list[str] = []
        rule, choice, fallback = self._choose(subject, roster, now, skipped, notes, set())
        if choice is None:
            notes.append("left unassigned")
            decision = AssignmentDecision(
                owner=None,
                rule=None if rule is None else rule.name,
                queue=None,
                strategy=None,
                fallback=fallback,
                turn=None,
                reason="; ".join(notes),
                skipped=tuple(skipped),
            )
            return Routing(decision=decision, state=None)
        queue = choice.queue
        if queue is None:
            notes.append(f"assigned to user {choice.user!r}")
            decision = AssignmentDecision(
                owner=choice.user,
                rule=None if rule is None else rule.name,
                queue=None,
                strategy=None,
                fallback=fallback,
                turn=None,
                reason="; ".join(notes),
                skipped=tuple(skipped),
            )
            return Routing(decision=decision, state=None)
        state = (states or {}).get(queue.name)
        if state is None:
            state = QueueState(id=queue.name)
        elif state.id != queue.name:
            raise ValidationError("states", f"the state under {queue.name!r} is for queue {state.id!r}")
        user, why, new_state = take_turn(queue, choice.eligible, state, roster)
        label = _LABELS[queue.strategy]
        notes.append(f"queue {queue.name!r} ({label}) gave turn {new_state.sequence} to {user!r}, {why}")
        decision = AssignmentDecision(
            owner=user,
            rule=None if rule is None else rule.name,
            queue=queue.name,
            strategy=queue.strategy,
            fallback=fallback,
            turn=new_state.sequence,
            reason="; ".join(notes),
            skipped=tuple(skipped),
        )
        return Routing(decision=decision, state=new_state)

    # --- resolution ---

    def _choose(
        self,
        subject: Any,
        roster: Roster,
        now: datetime,
        skipped: list[Skipped],
        notes: list[str],
        seen: set[str],
    ) -> tuple[AssignmentRule | None, _Choice | None, bool]:
        """(matched rule, where the subject lands, whether the fallback was used)."""
        rule = None
        for candidate, holds in self._rules.candidates(subject):
            if holds(subject, now):
                rule = candidate
                break
        choice = None
        if rule is not None:
            notes.append(f"rule {rule.name!r} matched")
            choice = self._resolve(rule.target, subject, roster, now, skipped, notes, seen)
        else:
            notes.append("no rule matched")
        fallback = self._config.fallback
        if choice is None and fallback is not None:
            notes.append(f"fallback {fallback}")
            return rule, self._resolve(fallback, subject, roster, now, skipped, notes, seen), True
        return rule, choice, False

    def _resolve(
        self,
        target: Target,
        subject: Any,
        roster: Roster,
        now: datetime,
        skipped: list[Skipped],
        notes: list[str],
        seen: set[str],
    ) -> _Choice | None:
        user = target.user
        if user is not None:
            why = roster.blocked(user, now)
            if why is None:
                return _Choice(user, None, [])
            if user not in seen:
                seen.add(user)
                skipped.append(why)
            notes.append(f"user {user!r} is unavailable")
            return None
        queue = self._queues[target.queue]  # type: ignore[index]
        if queue.strategy is Strategy.TERRITORY:
            return self._territory(queue, subject, roster, now, skipped, notes, seen)
        eligible, passed_over = roster.sort_out(queue.members, now)
        for why in passed_over:
            if why.user not in seen:
                seen.add(why.user)
                skipped.append(why)
        if eligible:
            return _Choice(None, queue, eligible)
        notes.append(f"queue {queue.name!r} has nobody available")
        return None

    def _territory(
        self,
        queue: Queue,
        subject: Any,
        roster: Roster,
        now: datetime,
        skipped: list[Skipped],
        notes: list[str],
        seen: set[str],
    ) -> _Choice | None:
        territories = self._territories[queue.name]
        value = territories.get(subject)
        found = territories.table.get(value) if isinstance(value, str) else None
        shown = "no value" if value is None or not isinstance(value, str | int | float) else repr(value)
        if found is None:
            found = queue.otherwise
            if found is None:
                notes.append(f"territory queue {queue.name!r}: no territory for {queue.field} {shown}")
                return None
            notes.append(f"territory queue {queue.name!r}: {queue.field} {shown} goes to otherwise, {found}")
        else:
            notes.append(f"territory queue {queue.name!r}: {queue.field} {shown} goes to {found}")
        return self._resolve(found, subject, roster, now, skipped, notes, seen)


def _rebased(exc: ValidationError, prefix: str) -> list[FieldError]:
    """The errors of a condition check, with ``where`` replaced by the condition's place."""
    out: list[FieldError] = []
    for e in exc.errors:
        path = e.path
        rest = path[len("where") :] if path.startswith("where") else f".{path}" if path else ""
        out.append(FieldError(f"{prefix}{rest}", e.reason))
    return out
