"""The points model: fit rules over a lead's fields plus decaying behaviour points from activities.

A `PointsModel` adds the points of every `PointsRule` whose condition the lead satisfies (fit:
industry, company size, title, ...) and, for each `BehaviourRule`, the points of the lead's
activities of that kind (behaviour: emails opened, demos requested, pricing page visits). An
activity's points halve every ``half_life_days`` (exponential decay): an activity ``age`` days old
is worth ``points * 0.5 ** (age / half_life_days)``, so interest shown last week outweighs the
same interest last year. ``max_count`` caps how many activities of a kind count (the most recent
ones, which are worth the most). Activities after ``now`` have not happened yet and count nothing,
so a host can score a lead as it stood on any past day.

The model is data (it round-trips through `crmcore.serialization`) and is checked when built:
duplicate rule names or activity kinds, and conditions that do not fit `LEAD_FIELDS`, are refused
together. Conditions are compiled once, so `PointsModel.score_many` re-scores many leads quickly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore.clock import require_aware
from crmcore.conditions import All, Between, Compare, CompareOp, Condition, FieldType, Not, check_condition
from crmcore.conditions import Any as AnyOf
from crmcore.errors import FieldError, ValidationError, join_path
from crmcore.pipeline.lead import LEAD_FIELDS
from crmcore.pipeline.scoring.score import Factor, Score, factor_order
from crmcore.predicates import compile_condition
from crmcore.validation import checked, instance_of, optional, run_checks, text, tuple_of, utc_datetime

__all__ = [
    "Activity",
    "BehaviourRule",
    "MAX_POINTS",
    "PointsModel",
    "PointsRule",
]

MAX_POINTS = 10_000
"""The largest number of points (plus or minus) one rule or one activity may give."""

_DAY_SECONDS = 86_400.0
_PLAIN_ORDERED = (FieldType.TEXT, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME)


def _points(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_POINTS <= value <= MAX_POINTS:
        raise ValidationError(
            path, f"must be a whole number from -{MAX_POINTS} to {MAX_POINTS}, got {value!r}"
        )
    return value


def _condition(value: Any, path: str) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(path, f"must be a condition (crmcore.conditions), not {type(value).__name__}")
    return value


def _kind(value: Any, path: str) -> str:
    checked_kind: str = text(max_length=100, required=True)(value, path)
    return checked_kind


def _half_life(value: Any, path: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(path, f"must be a positive number of days, got {value!r}")
    return float(value)


def _max_count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(path, f"must be a whole number of at least 1, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class Activity:
    """Something a lead did, of a ``kind`` (``email_opened``, ``demo_requested``, ...), ``at`` a time."""

    kind: str = checked(_kind)
    at: datetime = checked(utc_datetime)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class PointsRule:
    """A fit rule: leads satisfying ``condition`` (over `LEAD_FIELDS`) get ``points`` (may be negative)."""

    name: str = checked(text(max_length=100, required=True))
    condition: Condition = checked(_condition)
    points: int = checked(_points)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class BehaviourRule:
    """A behaviour rule: each activity of ``kind`` gives ``points``, halving every ``half_life_days``.

    ``half_life_days=None`` means no decay. ``max_count`` counts only that many activities of the
    kind, the most recent ones (None counts all).
    """

    kind: str = checked(_kind)
    points: int = checked(_points)
    half_life_days: float | None = checked(optional(_half_life), default=None)
    max_count: int | None = checked(optional(_max_count), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def points_at(self, age_days: float) -> float:
        """What one activity ``age_days`` old is worth (``age_days >= 0``)."""
        if self.half_life_days is None:
            return float(self.points)
        decayed: float = self.points * 0.5 ** (age_days / self.half_life_days)
        return decayed


def _rebased(exc: ValidationError, prefix: str) -> list[FieldError]:
    """``check_condition`` reports paths under ``where``; put them under the rule's own path."""
    out = []
    for e in exc.errors:
        rest = e.path.removeprefix("where")
        out.append(FieldError(join_path(prefix, rest.removeprefix(".")), e.reason))
    return out


def _count(n: int) -> str:
    return f"{n} activity" if n == 1 else f"{n} activities"


def _suffix(rule: BehaviourRule) -> str:
    """The end of a behaviour factor's detail: what one activity is worth."""
    sentence = f", {rule.points:+d} points each"
    if rule.half_life_days is not None:
        days = f"{rule.half_life_days:g}"
        sentence += f", halving every {days} {'day' if days == '1' else 'days'}"
    return sentence


def _plain_between(cond: Condition) -> Condition:
    """``Between`` on a plain ordered field as the two comparisons it means (they compile to closures)."""
    if isinstance(cond, All):
        return All(*(_plain_between(c) for c in cond.conditions))
    if isinstance(cond, AnyOf):
        return AnyOf(*(_plain_between(c) for c in cond.conditions))
    if isinstance(cond, Not):
        return Not(_plain_between(cond.condition))
    if isinstance(cond, Between) and LEAD_FIELDS.resolve(cond.field).type in _PLAIN_ORDERED:
        return All(Compare(cond.field, CompareOp.GE, cond.low), Compare(cond.field, CompareOp.LE, cond.high))
    return cond


@attrs.frozen(kw_only=True)
class PointsModel:
    """A points model: fit ``rules`` and ``behaviour`` rules; a lead's score is the sum of its points.

    ``name`` is what scores report as their ``model``. Scores list each matched rule and each
    activity kind with points as a `Factor`, the largest first.

    Raises:
        ValidationError: on build, listing every problem: no rules at all, two rules with one
            name, two behaviour rules for one kind, conditions that do not fit `LEAD_FIELDS`.
    """

    rules: tuple[PointsRule, ...] = checked(tuple_of(instance_of(PointsRule)), default=())
    behaviour: tuple[BehaviourRule, ...] = checked(tuple_of(instance_of(BehaviourRule)), default=())
    name: str = checked(text(max_length=100, required=True), default="points")
    _fit: tuple[tuple[Callable[[Any, datetime | None], bool], Factor], ...] = attrs.field(
        init=False, eq=False, repr=False
    )
    _by_kind: Mapping[str, BehaviourRule] = attrs.field(init=False, eq=False, repr=False)
    _decay: tuple[tuple[BehaviourRule, str, float | None], ...] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        if not self.rules and not self.behaviour:
            errors.append(FieldError("rules", "a points model needs at least one rule or behaviour rule"))
        names: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            first = names.setdefault(rule.name, i)
            if first != i:
                errors.append(
                    FieldError(f"rules[{i}].name", f"{rule.name!r} is also the name of rules[{first}]")
                )
            try:
                check_condition(rule.condition, LEAD_FIELDS)
            except ValidationError as exc:
                errors.extend(_rebased(exc, f"rules[{i}].condition"))
        kinds: dict[str, int] = {}
        for i, b in enumerate(self.behaviour):
            first = kinds.setdefault(b.kind, i)
            if first != i:
                errors.append(
                    FieldError(f"behaviour[{i}].kind", f"{b.kind!r} already has a rule: behaviour[{first}]")
                )
        if errors:
            raise ValidationError.from_errors(errors)
        fit = tuple(
            (
                compile_condition(_plain_between(rule.condition), LEAD_FIELDS),
                Factor(
                    name=rule.name,
                    contribution=float(rule.points),
                    detail=f"matched: {rule.points:+d} points",
                ),
            )
            for rule in self.rules
        )
        object.__setattr__(self, "_fit", fit)
        object.__setattr__(self, "_by_kind", {b.kind: b for b in self.behaviour})
        decay = tuple(
            (b, _suffix(b), None if b.half_life_days is None else b.half_life_days * _DAY_SECONDS)
            for b in self.behaviour
        )
        object.__setattr__(self, "_decay", decay)

    def score(self, lead: Any, activities: Iterable[Activity], now: datetime) -> Score:
        """``lead``'s score at ``now``, from its fields and its ``activities``.

        Raises:
            ValidationError: ``now`` is naive.
        """
        return self._score(lead, activities, require_aware(now, "now"))

    def score_many(
        self, leads: Iterable[Any], activities: Mapping[str, Iterable[Activity]], now: datetime
    ) -> list[Score]:
        """The scores of ``leads`` at ``now``, in order; ``activities`` maps a lead's id to its activities.

        Leads absent from ``activities`` have none.

        Raises:
            ValidationError: ``now`` is naive.
        """
        now = require_aware(now, "now")
        score = self._score
        get = activities.get
        return [score(lead, get(lead.id, ()), now) for lead in leads]

    def _score(self, lead: Any, activities: Iterable[Activity], now: datetime) -> Score:
        factors = [factor for holds, factor in self._fit if holds(lead, now)]
        if self._by_kind:
            factors.extend(self._behaviour(activities, now))
        total = 0.0
        for f in factors:
            total += f.contribution
        factors.sort(key=factor_order)
        return Score(value=total, factors=tuple(factors), model=self.name)

    def _behaviour(self, activities: Iterable[Activity], now: datetime) -> list[Factor]:
        ages: dict[str, list[timedelta]] = {}
        by_kind = self._by_kind
        for activity in activities:
            kind = activity.kind
            if kind in by_kind:
                at = activity.at
                if at <= now:
                    found = ages.get(kind)
                    if found is None:
                        ages[kind] = [now - at]
                    else:
                        found.append(now - at)
        if not ages:
            return []
        factors = []
        # Rule order and ascending ages, so the sums are added up the same way every time.
        for rule, suffix, half_life in self._decay:
            found = ages.get(rule.kind)
            if not found:
                continue
            found.sort()
            counted = found if rule.max_count is None else found[: rule.max_count]
            if half_life is None:
                total = float(rule.points * len(counted))
            else:
                total = 0.0
                for age in counted:
                    total += rule.points * 0.5 ** (age.total_seconds() / half_life)
            if len(counted) < len(found):
                what = f"the {len(counted)} most recent of {len(found)} activities"
            else:
                what = _count(len(counted))
            newest = counted[0].total_seconds() / _DAY_SECONDS
            detail = f"{what}, newest {newest:.1f} days ago{suffix}"
            factors.append(Factor(name=rule.kind, contribution=total, detail=detail))
        return factors
