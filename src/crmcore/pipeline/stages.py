"""Pipelines as data: ordered `Stage`s with their requirements and entry actions, and the moves allowed.

A `Pipeline` is checked when it is built (duplicate names, no won or lost stage, unreachable
stages, dead ends, transitions naming unknown stages, all reported at once) and round-trips
through `crmcore.serialization`, so it can live in a config file. The stage machine
(`crmcore.pipeline.transitions.StageMachine`) applies it to opportunities.

Which moves a pipeline allows:

- with an explicit ``transitions`` table: exactly the listed `Transition`s (``"*"`` as the
  source means every open stage);
- otherwise by rule, over the open stages in order: one step forward always; further forward
  when ``allow_skip``; backward when ``allow_back``; any open stage to any won or lost stage; out
  of a won or lost stage (reopening) only when ``allow_reopen``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from crmcore.conditions import Condition, check_condition
from crmcore.errors import FieldError, ValidationError
from crmcore.pipeline.opportunity import OPPORTUNITY_FIELDS, ForecastCategory
from crmcore.validation import checked, instance_of, one_of, optional, run_checks, text, tuple_of

__all__ = [
    "ANY_OPEN_STAGE",
    "CreateTask",
    "Pipeline",
    "Stage",
    "Transition",
]

ANY_OPEN_STAGE = "*"
"""As a `Transition`'s ``from_stage``: the move is allowed from every open stage."""


def _whole(low: int, high: int | None = None) -> Any:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(path, f"must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValidationError(path, f"must be {bound}, got {value}")
        return value

    return check


def _assignee(value: Any, path: str) -> str:
    if value == "owner":
        return "owner"
    if isinstance(value, str) and value.startswith("user:") and len(value) > 5:
        user: str = text(max_length=105, required=True)(value, path)
        if " " not in user:
            return user
    raise ValidationError(path, f"must be 'owner' or 'user:<id>', got {value!r}")


@attrs.frozen(kw_only=True)
class CreateTask:
    """On entering a stage, ask the host for a follow-up task (a ``FollowUpTaskRequested`` event).

    ``assignee`` is ``"owner"`` (the deal's owner when the deal enters the stage) or
    ``"user:<id>"``; the task is due ``due_in_days`` calendar days after the move.
    """

    title: str = checked(text(max_length=300, required=True))
    due_in_days: int = checked(_whole(0, 3650), default=0)
    assignee: str = checked(_assignee, default="owner")
    description: str = checked(text(max_length=2000), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _probability_default(stage: Any) -> int | None:
    return 100 if stage.won else 0 if stage.lost else None


def _category_default(stage: Any) -> ForecastCategory:
    if stage.won:
        return ForecastCategory.CLOSED
    return ForecastCategory.OMITTED if stage.lost else ForecastCategory.PIPELINE


def _required_probability(value: Any, path: str) -> int:
    if value is None:
        raise ValidationError(path, "is required for an open stage (a whole percentage from 0 to 100)")
    checked_value: int = _whole(0, 100)(value, path)
    return checked_value


def _field_name(value: Any, path: str) -> str:
    name: str = text(max_length=100, required=True)(value, path)
    try:
        OPPORTUNITY_FIELDS.resolve(name)
    except ValidationError as exc:
        raise ValidationError(path, exc.reason) from None
    return name


def _condition(value: Any, path: str) -> Condition:
    condition: Condition = instance_of(Condition)(value, path)
    try:
        check_condition(condition, OPPORTUNITY_FIELDS)
    except ValidationError as exc:
        raise ValidationError.from_errors(
            [FieldError(path + e.path.removeprefix("where"), e.reason) for e in exc.errors]
        ) from None
    return condition


@attrs.frozen(kw_only=True)
class Stage:
    """One step of a pipeline and what entering it takes and does.

    Entering a stage sets the deal's ``probability`` and ``forecast_category`` to the stage's
    (a won stage defaults to 100 % and ``closed``, a lost one to 0 % and ``omitted``; an open
    stage must give its probability). To enter, the deal must have every field in
    ``required_fields`` (names of `OPPORTUNITY_FIELDS`, ``custom.<key>`` for custom fields),
    satisfy ``condition`` (over `OPPORTUNITY_FIELDS`; ``condition_message`` is shown when it
    fails, else the condition itself), and pass ``guard``: the name of a callable registered on
    the stage machine, so the stage stays plain data. ``on_enter`` lists follow-up tasks to
    request. A deal is rotting after ``rotting_days`` in an open stage without moving.

    Raises:
        ValidationError: when built: won and lost at once, unknown required fields, a condition
            on unknown fields, a closed stage with an open forecast category (or the reverse),
            rotting days on a closed stage; all at once.
    """

    name: str = checked(text(max_length=100, required=True))
    won: bool = checked(instance_of(bool), default=False)
    lost: bool = checked(instance_of(bool), default=False)
    probability: int = checked(
        _required_probability, default=attrs.Factory(_probability_default, takes_self=True)
    )
    forecast_category: ForecastCategory = checked(
        one_of(ForecastCategory), default=attrs.Factory(_category_default, takes_self=True)
    )
    rotting_days: int | None = checked(optional(_whole(1, 3650)), default=None)
    required_fields: Sequence[str] = checked(tuple_of(_field_name, unique=True), default=())
    condition: Condition | None = checked(optional(_condition), default=None)
    condition_message: str = checked(text(max_length=500), default="")
    guard: str | None = checked(optional(text(max_length=100, required=True)), default=None)
    on_enter: Sequence[CreateTask] = checked(tuple_of(instance_of(CreateTask)), default=())
    description: str = checked(text(max_length=1000), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        if self.won and self.lost:
            errors.append(FieldError("lost", "a stage cannot be won and lost at once"))
        elif self.won:
            if self.forecast_category is not ForecastCategory.CLOSED:
                errors.append(FieldError("forecast_category", "must be 'closed' for a won stage"))
            if self.probability != 100:
                errors.append(
                    FieldError("probability", f"must be 100 for a won stage, got {self.probability}")
                )
        elif self.lost:
            if self.forecast_category is not ForecastCategory.OMITTED:
                errors.append(FieldError("forecast_category", "must be 'omitted' for a lost stage"))
            if self.probability != 0:
                errors.append(
                    FieldError("probability", f"must be 0 for a lost stage, got {self.probability}")
                )
        elif self.forecast_category is ForecastCategory.CLOSED:
            errors.append(
                FieldError("forecast_category", "'closed' is for won stages; use commit or best_case")
            )
        if not self.is_open and self.rotting_days is not None:
            errors.append(FieldError("rotting_days", "is for open stages; closed deals do not rot"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def is_open(self) -> bool:
        """Whether deals in this stage are still open (neither won nor lost)."""
        return not (self.won or self.lost)


@attrs.frozen(kw_only=True)
class Transition:
    """An allowed move in an explicit transition table (``from_stage`` ``"*"``: from any open stage)."""

    from_stage: str = checked(text(max_length=100, required=True))
    to_stage: str = checked(text(max_length=100, required=True))

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.from_stage == self.to_stage:
            raise ValidationError("to_stage", f"{self.to_stage!r} is the stage the move starts from")


def _stages(value: Any, path: str) -> tuple[Stage, ...]:
    stages: tuple[Stage, ...] = tuple_of(instance_of(Stage))(value, path)
    return stages


def _transitions(value: Any, path: str) -> tuple[Transition, ...] | None:
    if value is None:
        return None
    transitions: tuple[Transition, ...] = tuple_of(instance_of(Transition))(value, path)
    return transitions


@attrs.frozen(kw_only=True)
class Pipeline:
    """A named sales process: ``stages`` in order (the first is where deals start) and its moves.

    ``transitions`` is an explicit table of allowed moves; None (the default) allows moves by
    rule: forward one step, forward skipping stages when ``allow_skip``, backward when
    ``allow_back``, from any open stage to any won or lost stage, and out of a won or lost stage
    when ``allow_reopen``. The flags apply to the rule only: with a table, list the moves.

    Raises:
        ValidationError: when built, every problem at once: no stages, duplicate stage names, no
            won or no lost stage, a won or lost first stage, transitions naming unknown stages
            or listed twice, flags set beside a table, stages unreachable from the first,
            open stages with no way to a won or lost stage.
    """

    name: str = checked(text(max_length=100, required=True))
    stages: Sequence[Stage] = checked(_stages)
    transitions: Sequence[Transition] | None = checked(_transitions, default=None)
    allow_skip: bool = checked(instance_of(bool), default=True)
    allow_back: bool = checked(instance_of(bool), default=True)
    allow_reopen: bool = checked(instance_of(bool), default=False)
    description: str = checked(text(max_length=1000), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            if stage.name in seen:
                errors.append(FieldError(f"stages[{i}].name", f"{stage.name!r} is used by an earlier stage"))
            seen.add(stage.name)
        if not self.stages:
            errors.append(FieldError("stages", "must hold at least one open, one won and one lost stage"))
            raise ValidationError.from_errors(errors)
        if not any(s.won for s in self.stages):
            errors.append(FieldError("stages", "needs a won stage (Stage(name=..., won=True))"))
        if not any(s.lost for s in self.stages):
            errors.append(FieldError("stages", "needs a lost stage (Stage(name=..., lost=True))"))
        if not self.stages[0].is_open:
            errors.append(
                FieldError("stages[0]", f"{self.stages[0].name!r} is where deals start: it must be open")
            )
        if self.transitions is not None:
            errors.extend(self._check_table(self._by_name))
        errors.extend(self._check_graph(self._moves))
        if errors:
            raise ValidationError.from_errors(errors)

    def _check_table(self, by_name: dict[str, Stage]) -> Iterator[FieldError]:
        assert self.transitions is not None
        for flag, default in (("allow_skip", True), ("allow_back", True), ("allow_reopen", False)):
            if getattr(self, flag) != default:
                yield FieldError(flag, "applies to the rule only; with a transitions table, list the moves")
        seen: set[tuple[str, str]] = set()
        for i, move in enumerate(self.transitions):
            path = f"transitions[{i}]"
            if move.from_stage != ANY_OPEN_STAGE and move.from_stage not in by_name:
                yield FieldError(f"{path}.from_stage", f"unknown stage {move.from_stage!r}; {self._known()}")
            if move.to_stage not in by_name:
                yield FieldError(f"{path}.to_stage", f"unknown stage {move.to_stage!r}; {self._known()}")
            if (move.from_stage, move.to_stage) in seen:
                yield FieldError(path, f"{move.from_stage!r} -> {move.to_stage!r} is listed twice")
            seen.add((move.from_stage, move.to_stage))

    @functools.cached_property
    def _by_name(self) -> dict[str, Stage]:
        by_name: dict[str, Stage] = {}
        for stage in self.stages:
            by_name.setdefault(stage.name, stage)
        return by_name

    @functools.cached_property
    def _moves(self) -> dict[str, tuple[str, ...]]:
        return self._table_moves() if self.transitions is not None else self._rule_moves()

    def _known(self) -> str:
        return "stages: " + ", ".join(repr(s.name) for s in self.stages)

    def _table_moves(self) -> dict[str, tuple[str, ...]]:
        assert self.transitions is not None
        targets: dict[str, set[str]] = {s.name: set() for s in self.stages}
        for move in self.transitions:
            if move.to_stage not in self._by_name:
                continue
            sources = (
                [s.name for s in self.stages if s.is_open]
                if move.from_stage == ANY_OPEN_STAGE
                else [move.from_stage]
            )
            for source in sources:
                if source in targets and source != move.to_stage:
                    targets[source].add(move.to_stage)
        return {name: tuple(s.name for s in self.stages if s.name in t) for name, t in targets.items()}

    def _rule_moves(self) -> dict[str, tuple[str, ...]]:
        open_names = [s.name for s in self.stages if s.is_open]
        closed = [s.name for s in self.stages if not s.is_open]
        moves: dict[str, tuple[str, ...]] = {}
        for i, name in enumerate(open_names):
            back = open_names[:i] if self.allow_back else []
            forward = open_names[i + 1 :] if self.allow_skip else open_names[i + 1 : i + 2]
            allowed = {*back, *forward, *closed}
            moves[name] = tuple(s.name for s in self.stages if s.name in allowed)
        for name in closed:
            others = [s.name for s in self.stages if s.name != name] if self.allow_reopen else []
            moves[name] = tuple(others)
        return moves

    def _check_graph(self, moves: dict[str, tuple[str, ...]]) -> Iterator[FieldError]:
        start = self.stages[0].name
        reached = {start}
        frontier = [start]
        while frontier:
            for target in moves.get(frontier.pop(), ()):
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        closes = {s.name for s in self.stages if not s.is_open}
        changed = True
        while changed:
            changed = False
            for name, targets in moves.items():
                if name not in closes and any(t in closes for t in targets):
                    closes.add(name)
                    changed = True
        for i, stage in enumerate(self.stages):
            if stage.name not in reached:
                yield FieldError(
                    f"stages[{i}]", f"stage {stage.name!r} cannot be reached from the first stage {start!r}"
                )
            elif stage.is_open and stage.name not in closes:
                yield FieldError(
                    f"stages[{i}]",
                    f"stage {stage.name!r} is a dead end: no moves lead to a won or lost stage",
                )

    @property
    def first(self) -> Stage:
        """The stage new deals start in."""
        return self.stages[0]

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The names of the stages, in order."""
        return tuple(s.name for s in self.stages)

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            ValidationError: the pipeline has no such stage (the message lists its stages).
        """
        found = self._by_name.get(name)
        if found is None:
            raise ValidationError("stage", f"pipeline {self.name!r} has no stage {name!r}; {self._known()}")
        return found

    def has_stage(self, name: str) -> bool:
        """Whether the pipeline has a stage called ``name``."""
        return name in self._by_name

    def moves_from(self, name: str) -> tuple[str, ...]:
        """The stages a deal in stage ``name`` may move to (in stage order), by table or rule."""
        self.stage(name)
        return self._moves[name]

    def allows(self, from_stage: str, to_stage: str) -> bool:
        """Whether the pipeline allows moving from ``from_stage`` to ``to_stage``."""
        return to_stage in self._moves.get(from_stage, ())
