"""The stage machine: moves opportunities through their pipeline's stages, enforcing its rules.

`StageMachine` is pure: it takes an opportunity, a target stage and ``now`` and returns a new
opportunity with its stage, probability, forecast category, history and won/lost state set,
plus the events to record (`StageChanged`, `OpportunityWon`, `OpportunityLost`,
`OpportunityReopened`, `FollowUpTaskRequested`). It never reads a clock or a store; the caller
saves the opportunity and records the events in one unit of work.

A refused move raises `TransitionError` whose ``unmet`` lists every reason at once: the move is
not allowed, each missing required field, each failed part of the stage's condition, the
guard's reason, a missing lost reason, a time before the deal's last change.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import attrs

from crmcore.conditions import (
    MISSING,
    All,
    Between,
    Compare,
    Condition,
    Contains,
    In,
    IsNull,
    Not,
    Relative,
    evaluate,
)
from crmcore.conditions import Any as AnyOf
from crmcore.errors import FieldError, TransitionError, ValidationError
from crmcore.events import DomainEvent
from crmcore.ids import check_id
from crmcore.money import Money
from crmcore.pipeline.opportunity import OPPORTUNITY_FIELDS, ForecastCategory, Opportunity, StageChange
from crmcore.pipeline.stages import Pipeline, Stage
from crmcore.validation import utc_datetime

__all__ = [
    "FollowUpTaskRequested",
    "Guard",
    "Moved",
    "OpportunityLost",
    "OpportunityReopened",
    "OpportunityWon",
    "StageChanged",
    "StageMachine",
    "describe_condition",
]

Guard = Callable[[Opportunity, Stage], "str | None"]
"""A developer's check on entering a stage: None to allow, else the reason the move is refused."""


@attrs.frozen(kw_only=True)
class StageChanged(DomainEvent):
    """A deal moved from ``from_stage`` to ``to_stage`` after ``time_in_stage`` there; ``probability``
    and ``forecast_category`` are the new stage's. ``from_stage`` is None when the deal started."""

    event_type: ClassVar[str] = "opportunity.stage_changed"
    pipeline: str
    from_stage: str | None
    to_stage: str
    by: str | None = None
    probability: int
    forecast_category: ForecastCategory
    time_in_stage: timedelta = timedelta(0)


@attrs.frozen(kw_only=True)
class OpportunityWon(DomainEvent):
    """A deal entered the won stage ``stage``."""

    event_type: ClassVar[str] = "opportunity.won"
    pipeline: str
    stage: str
    amount: Money | None = None
    by: str | None = None


@attrs.frozen(kw_only=True)
class OpportunityLost(DomainEvent):
    """A deal entered the lost stage ``stage`` for ``reason``."""

    event_type: ClassVar[str] = "opportunity.lost"
    pipeline: str
    stage: str
    reason: str
    by: str | None = None


@attrs.frozen(kw_only=True)
class OpportunityReopened(DomainEvent):
    """A won or lost deal moved out of its closed stage ``from_stage``; ``was_won`` says which it was."""

    event_type: ClassVar[str] = "opportunity.reopened"
    pipeline: str
    from_stage: str
    to_stage: str
    was_won: bool
    by: str | None = None


@attrs.frozen(kw_only=True)
class FollowUpTaskRequested(DomainEvent):
    """Entering ``stage`` asks for a task: the host creates it for ``assignee`` (a user id; None when
    the action names the owner and the deal has none), due at ``due_at``."""

    event_type: ClassVar[str] = "opportunity.follow_up_requested"
    pipeline: str
    stage: str
    title: str
    description: str = ""
    assignee: str | None = None
    due_at: datetime


@attrs.frozen(kw_only=True)
class Moved:
    """The result of a move: the new opportunity (save it) and the events to record, in order."""

    opportunity: Opportunity
    events: tuple[DomainEvent, ...]


_OPS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _value(value: Any) -> str:
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return repr(value.value)
    return repr(value)


def describe_condition(cond: Condition) -> str:
    """A condition as short readable text (``amount >= 1000 EUR``) for messages to users."""
    if isinstance(cond, All | AnyOf):
        word = " and " if isinstance(cond, All) else " or "
        if not cond.conditions:
            return "true" if isinstance(cond, All) else "false"
        parts = [describe_condition(c) for c in cond.conditions]
        return word.join(
            f"({p})" if isinstance(c, All | AnyOf) else p for p, c in zip(parts, cond.conditions, strict=True)
        )
    if isinstance(cond, Not):
        inner = cond.condition
        if isinstance(inner, IsNull):
            return f"{inner.field} is set"
        return f"not ({describe_condition(inner)})"
    if isinstance(cond, Compare):
        return f"{cond.field} {_OPS[cond.op.value]} {_value(cond.value)}"
    if isinstance(cond, In):
        return f"{cond.field} in [{', '.join(_value(v) for v in cond.values)}]"
    if isinstance(cond, Contains):
        return f"{cond.field} contains {cond.value!r}"
    if isinstance(cond, Between):
        return f"{cond.field} between {_value(cond.low)} and {_value(cond.high)}"
    if isinstance(cond, IsNull):
        return f"{cond.field} is empty"
    if isinstance(cond, Relative):
        when = f"now {cond.amount:+d} {cond.unit.value}" if cond.amount else "now"
        return f"{cond.field} {_OPS[cond.op.value]} {when}"
    return type(cond).__name__


def _has_value(value: Any) -> bool:
    if value is None or value is MISSING:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict):
        return bool(value)
    return True


class StageMachine:
    """Applies pipelines (several per installation, by name) to opportunities.

    Args:
        pipelines: the installation's pipelines; an opportunity names its own in ``pipeline``.
        guards: the developer checks stages name in ``guard``, by name: each takes the deal (as
            it is before the move) and the target stage and returns None, or why the move is
            refused.

    Raises:
        ValidationError: two pipelines with one name, a stage naming a guard that is not
            registered, a guard that is not callable; all at once.
    """

    def __init__(self, pipelines: Iterable[Pipeline], guards: Mapping[str, Guard] | None = None) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        self._guards: dict[str, Guard] = dict(guards or {})
        errors: list[FieldError] = []
        for i, pipeline in enumerate(pipelines):
            if not isinstance(pipeline, Pipeline):
                errors.append(
                    FieldError(f"pipelines[{i}]", f"must be a Pipeline, not {type(pipeline).__name__}")
                )
                continue
            if pipeline.name in self._pipelines:
                errors.append(
                    FieldError(f"pipelines[{i}].name", f"{pipeline.name!r} is used by an earlier pipeline")
                )
                continue
            self._pipelines[pipeline.name] = pipeline
            for j, stage in enumerate(pipeline.stages):
                if stage.guard is not None and stage.guard not in self._guards:
                    known = ", ".join(sorted(self._guards)) or "none"
                    errors.append(
                        FieldError(
                            f"pipelines[{i}].stages[{j}].guard",
                            f"no guard {stage.guard!r} is registered (registered: {known})",
                        )
                    )
        for name, guard in self._guards.items():
            if not callable(guard):
                errors.append(
                    FieldError(f"guards.{name}", "must be callable (opportunity, stage) -> str | None")
                )
        if not self._pipelines and not errors:
            errors.append(FieldError("pipelines", "must hold at least one pipeline"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def pipelines(self) -> tuple[Pipeline, ...]:
        """The pipelines, in the order given."""
        return tuple(self._pipelines.values())

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``.

        Raises:
            ValidationError: there is none (the message lists the known pipelines).
        """
        found = self._pipelines.get(name)
        if found is None:
            known = ", ".join(repr(n) for n in self._pipelines)
            raise ValidationError("pipeline", f"unknown pipeline {name!r}; pipelines: {known}")
        return found

    def _locate(self, opportunity: Opportunity) -> tuple[Pipeline, Stage]:
        pipeline = self.pipeline(opportunity.pipeline)
        if not pipeline.has_stage(opportunity.stage):
            raise ValidationError(
                "stage",
                f"the deal is in {opportunity.stage!r}, which pipeline {pipeline.name!r} does not have "
                f"(stages: {', '.join(repr(n) for n in pipeline.stage_names)})",
            )
        return pipeline, pipeline.stage(opportunity.stage)

    def allowed_moves(self, opportunity: Opportunity) -> tuple[str, ...]:
        """The stages the pipeline lets the deal move to from its stage, in stage order.

        Only the pipeline's moves count here; the target's requirements are checked by `check`
        and `move`.
        """
        pipeline, current = self._locate(opportunity)
        return pipeline.moves_from(current.name)

    def _requirements(
        self, opportunity: Opportunity, pipeline: Pipeline, target: Stage, now: datetime
    ) -> list[str]:
        """What entering ``target`` needs that the deal lacks (move rules aside)."""
        unmet: list[str] = []
        for name in target.required_fields:
            if not _has_value(OPPORTUNITY_FIELDS.resolve(name).get(opportunity)):
                unmet.append(f"stage {target.name!r} requires field {name!r}")
        if target.condition is not None:
            parts = target.condition.conditions if isinstance(target.condition, All) else (target.condition,)
            failed = [p for p in parts if not evaluate(p, opportunity, OPPORTUNITY_FIELDS, now)]
            if failed and target.condition_message:
                unmet.append(f"stage {target.name!r} requires {target.condition_message}")
            else:
                unmet.extend(f"stage {target.name!r} requires {describe_condition(p)}" for p in failed)
        if target.guard is not None:
            reason = self._guards[target.guard](opportunity, target)
            if reason:
                unmet.append(f"stage {target.name!r}: {reason}")
        return unmet

    @staticmethod
    def _check_now(now: Any) -> datetime:
        return utc_datetime(now, "now")

    def check(
        self, opportunity: Opportunity, to_stage: str, now: datetime, *, lost_reason: str = ""
    ) -> tuple[str, ...]:
        """Every unmet requirement of moving ``opportunity`` to ``to_stage`` at ``now`` (empty: allowed).

        Raises:
            ValidationError: bad arguments: a naive ``now``, an unknown pipeline or stage.
        """
        at = self._check_now(now)
        pipeline, current = self._locate(opportunity)
        target = pipeline.stage(to_stage)
        unmet: list[str] = []
        if to_stage == current.name:
            unmet.append(f"the deal is already in stage {to_stage!r}")
        elif not pipeline.allows(current.name, to_stage):
            unmet.append(self._refusal(pipeline, current, target))
        unmet.extend(self._requirements(opportunity, pipeline, target, at))
        if target.lost and not lost_reason.strip():
            unmet.append(f"moving to lost stage {to_stage!r} requires a lost reason")
        last = self._last_change(opportunity)
        if last is not None and at < last:
            unmet.append(
                f"now ({at.isoformat()}) is before the deal's last stage change ({last.isoformat()})"
            )
        return tuple(unmet)

    @staticmethod
    def _last_change(opportunity: Opportunity) -> datetime | None:
        times = [t for t in (opportunity.stage_entered_at,) if t is not None]
        if opportunity.stage_history:
            times.append(opportunity.stage_history[-1].at)
        return max(times) if times else None

    @staticmethod
    def _refusal(pipeline: Pipeline, current: Stage, target: Stage) -> str:
        move = f"pipeline {pipeline.name!r} does not allow moving from {current.name!r} to {target.name!r}"
        if pipeline.transitions is not None:
            return f"{move} (not in its transition table)"
        if not current.is_open:
            return f"{move} (the deal is closed and reopening is off)"
        names = pipeline.stage_names
        if names.index(target.name) < names.index(current.name):
            return f"{move} (moving back is off)"
        return f"{move} (skipping stages is off)"

    def move(
        self,
        opportunity: Opportunity,
        to_stage: str,
        now: datetime,
        *,
        by: str | None = None,
        lost_reason: str = "",
    ) -> Moved:
        """Move ``opportunity`` to ``to_stage`` at ``now`` (pure: save the result, record its events).

        The new deal takes the target stage's probability and forecast category (always, also
        when it leaves a won stage), enters it at ``now``, and has a `StageChange` appended with
        the time spent in the stage it left. Entering a won stage sets ``won`` and
        ``closed_at``; a lost stage also ``lost_reason``; leaving a won or lost stage clears
        them.

        Args:
            by: the user making the move (recorded in the history and events).
            lost_reason: required for a lost stage, refused for others.

        Raises:
            ValidationError: bad arguments: a naive ``now``, an unknown pipeline or stage, a
                bad ``by`` id, a lost reason for a stage that is not lost.
            TransitionError: the move is refused; ``unmet`` lists every reason.
        """
        errors: list[FieldError] = []
        for check in (
            lambda: self._check_now(now),
            lambda: by is None or check_id(by, "by"),
            lambda: self._locate(opportunity),
        ):
            try:
                check()
            except ValidationError as exc:
                errors.extend(exc.errors)
        if not errors:
            pipeline = self.pipeline(opportunity.pipeline)
            try:
                target = pipeline.stage(to_stage)
            except ValidationError as exc:
                errors.append(FieldError("to_stage", exc.reason))
            else:
                if lost_reason.strip() and not target.lost:
                    errors.append(
                        FieldError("lost_reason", f"is only for lost stages; {to_stage!r} is not one")
                    )
        if errors:
            raise ValidationError.from_errors(errors)
        unmet = self.check(opportunity, to_stage, now, lost_reason=lost_reason)
        if unmet:
            raise TransitionError(f"cannot move deal {opportunity.id!r} to {to_stage!r}", unmet)
        return self._apply(opportunity, to_stage, utc_datetime(now, "now"), by, lost_reason.strip())

    def _apply(
        self, opportunity: Opportunity, to_stage: str, at: datetime, by: str | None, lost_reason: str
    ) -> Moved:
        pipeline, current = self._locate(opportunity)
        target = pipeline.stage(to_stage)
        entered = opportunity.stage_entered_at or opportunity.created_at or at
        spent = max(at - entered, timedelta(0))
        change = StageChange(at=at, from_stage=current.name, to_stage=target.name, time_in_stage=spent, by=by)
        won = True if target.won else False if target.lost else None
        moved = attrs.evolve(
            opportunity,
            stage=target.name,
            probability=target.probability,
            forecast_category=target.forecast_category,
            stage_entered_at=at,
            stage_history=(*opportunity.stage_history, change),
            won=won,
            closed_at=None if won is None else at,
            lost_reason=lost_reason if target.lost else "",
        )
        oid = opportunity.id
        events: list[DomainEvent] = [
            StageChanged(
                aggregate_id=oid,
                occurred_at=at,
                pipeline=pipeline.name,
                from_stage=current.name,
                to_stage=target.name,
                by=by,
                probability=target.probability,
                forecast_category=target.forecast_category,
                time_in_stage=spent,
            )
        ]
        if not current.is_open:
            events.append(
                OpportunityReopened(
                    aggregate_id=oid,
                    occurred_at=at,
                    pipeline=pipeline.name,
                    from_stage=current.name,
                    to_stage=target.name,
                    was_won=current.won,
                    by=by,
                )
            )
        if target.won:
            events.append(
                OpportunityWon(
                    aggregate_id=oid,
                    occurred_at=at,
                    pipeline=pipeline.name,
                    stage=target.name,
                    amount=moved.amount,
                    by=by,
                )
            )
        if target.lost:
            events.append(
                OpportunityLost(
                    aggregate_id=oid,
                    occurred_at=at,
                    pipeline=pipeline.name,
                    stage=target.name,
                    reason=lost_reason,
                    by=by,
                )
            )
        events.extend(self._tasks(moved, pipeline, target, at))
        return Moved(opportunity=moved, events=tuple(events))

    @staticmethod
    def _tasks(
        opportunity: Opportunity, pipeline: Pipeline, stage: Stage, at: datetime
    ) -> list[FollowUpTaskRequested]:
        return [
            FollowUpTaskRequested(
                aggregate_id=opportunity.id,
                occurred_at=at,
                pipeline=pipeline.name,
                stage=stage.name,
                title=task.title,
                description=task.description,
                assignee=opportunity.owner
                if task.assignee == "owner"
                else task.assignee.removeprefix("user:"),
                due_at=at + timedelta(days=task.due_in_days),
            )
            for task in stage.on_enter
        ]

    def start(
        self, opportunity: Opportunity, now: datetime, *, stage: str | None = None, by: str | None = None
    ) -> Moved:
        """Place a new deal in its pipeline's first stage (or ``stage``, an open one) at ``now``.

        Sets the stage, its probability and forecast category, ``stage_entered_at`` (and
        ``created_at`` when unset), and runs the stage's entry actions. The stage's requirements
        apply; the pipeline's move rules do not (the deal comes from outside the pipeline).

        Raises:
            ValidationError: a naive ``now``, an unknown pipeline or stage, a deal with stage
                history already, a won or lost ``stage``.
            TransitionError: the deal does not meet the stage's requirements (all listed).
        """
        at = utc_datetime(now, "now")
        pipeline = self.pipeline(opportunity.pipeline)
        target = pipeline.first if stage is None else pipeline.stage(stage)
        errors: list[FieldError] = []
        if opportunity.stage_history:
            errors.append(FieldError("opportunity", "has stage history already: move it instead"))
        if not target.is_open:
            errors.append(FieldError("stage", f"{target.name!r} is closed: start deals in an open stage"))
        if by is not None:
            try:
                check_id(by, "by")
            except ValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ValidationError.from_errors(errors)
        unmet = self._requirements(opportunity, pipeline, target, at)
        if unmet:
            raise TransitionError(f"cannot start deal {opportunity.id!r} in {target.name!r}", unmet)
        started = attrs.evolve(
            opportunity,
            stage=target.name,
            probability=target.probability,
            forecast_category=target.forecast_category,
            stage_entered_at=at,
            created_at=opportunity.created_at or at,
            won=None,
            closed_at=None,
            lost_reason="",
        )
        changed = StageChanged(
            aggregate_id=opportunity.id,
            occurred_at=at,
            pipeline=pipeline.name,
            from_stage=None,
            to_stage=target.name,
            by=by,
            probability=target.probability,
            forecast_category=target.forecast_category,
        )
        return Moved(opportunity=started, events=(changed, *self._tasks(started, pipeline, target, at)))

    def rotting(self, opportunity: Opportunity, now: datetime) -> timedelta | None:
        """How long past its stage's ``rotting_days`` the deal has sat without moving; None when it
        is not rotting (the stage has no limit, the deal is closed, or it is within the limit).

        Time counts from ``stage_entered_at`` (``created_at`` without it).
        """
        at = utc_datetime(now, "now")
        _, stage = self._locate(opportunity)
        entered = opportunity.stage_entered_at or opportunity.created_at
        if stage.rotting_days is None or not stage.is_open or entered is None:
            return None
        over = at - entered - timedelta(days=stage.rotting_days)
        return over if over > timedelta(0) else None
