"""Predictive lead scoring: naive Bayes over field-value frequencies of won and lost leads.

`NaiveBayesScorer` is the configuration (which `LEAD_FIELDS` to learn from, the Laplace smoothing
``alpha``, the bands integers fall into); ``scorer.fit(leads, outcomes)`` counts, for every field,
how often each value occurred among won and among lost leads, and returns a frozen
`NaiveBayesModel`. There is nothing to predict with before fitting: only the fitted model has
``predict``. Both are data and round-trip through `crmcore.serialization`, so a host trains once,
stores the model and scores with it in another process.

The model (see docs/lead_scoring.md for the arithmetic): a lead's log-odds of being won are the
training base rate's log-odds plus, for each field, the log-likelihood ratio of the lead's value,
``log P(value | won) - log P(value | lost)``, with ``P(value | class) = (count + alpha) /
(class total + alpha * (distinct values + 1))``. The ``+ 1`` keeps a slot for values never seen in
training, which therefore get a finite, small ratio instead of a division by zero. The
probability is the logistic function of the log-odds; each field's ratio is the lead's `Factor`.
Missing values (``None`` or empty text) are a value of their own ("not given"), since a missing
company size can say something too. Integers are grouped into bands (``bands`` are the lower
edges: ``(10, 50)`` gives ``< 10``, ``10-49`` and ``>= 50``).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from crmcore.conditions import FieldType
from crmcore.errors import FieldError, ValidationError
from crmcore.pipeline.lead import LEAD_FIELDS
from crmcore.pipeline.scoring.score import Factor, Score, factor_order
from crmcore.validation import checked, instance_of, run_checks, text, tuple_of

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_FIELDS",
    "FieldCounts",
    "NaiveBayesModel",
    "NaiveBayesScorer",
]

DEFAULT_FIELDS = ("source", "campaign", "industry", "company_size", "country", "region", "title")
"""The lead fields a `NaiveBayesScorer` learns from unless told otherwise."""

DEFAULT_BANDS = (10, 50, 200, 1000, 5000)
"""Lower edges of the integer bands: company sizes ``< 10``, ``10-49``, ..., ``>= 5000``."""

_USABLE = (FieldType.TEXT, FieldType.BOOLEAN, FieldType.INTEGER)
_MISSING = ""
"""The key missing values (``None``, empty text) are counted under."""


def _usable_fields() -> str:
    return ", ".join(sorted(name for name, fd in LEAD_FIELDS.fields.items() if fd.type in _USABLE))


def _field_name(value: Any, path: str) -> str:
    checked_name: str = text(max_length=200, required=True)(value, path)
    return checked_name


def _alpha(value: Any, path: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(path, f"must be a positive number (1.0 is Laplace smoothing), got {value!r}")
    return float(value)


def _bands(value: Any, path: str) -> tuple[int, ...]:
    edges: tuple[Any, ...] = tuple_of(lambda v, p: v)(value, path)
    if not edges:
        raise ValidationError(path, "name at least one band edge, e.g. (10, 50, 200)")
    if any(isinstance(e, bool) or not isinstance(e, int) for e in edges):
        raise ValidationError(path, f"band edges must be whole numbers, got {list(edges)!r}")
    if any(a >= b for a, b in itertools.pairwise(edges)):
        raise ValidationError(path, f"band edges must increase, got {list(edges)!r}")
    return edges


def _band_labels(edges: Sequence[int]) -> tuple[str, ...]:
    middle = [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
    return (f"< {edges[0]}", *middle, f">= {edges[-1]}")


def _key_function(name: str, bands: Sequence[int]) -> Callable[[Any], str]:
    """How a lead's value of field ``name`` becomes the string it is counted under."""
    fd = LEAD_FIELDS.fields[name]
    get = fd.get
    if fd.type is FieldType.INTEGER:
        labels = _band_labels(bands)
        edges = tuple(bands)

        def band(lead: Any) -> str:
            value = get(lead)
            return _MISSING if value is None else labels[bisect.bisect_right(edges, value)]

        return band
    if fd.type is FieldType.BOOLEAN:

        def boolean(lead: Any) -> str:
            value = get(lead)
            return _MISSING if value is None else ("true" if value else "false")

        return boolean

    def plain(lead: Any) -> str:
        value = get(lead)
        return value or _MISSING

    return plain


def _shown(field: str, key: str, integer: bool) -> str:
    if key == _MISSING:
        return f"{field} not given"
    return f"{field} {key}" if integer else f"{field} = {key!r}"


@attrs.frozen(kw_only=True)
class NaiveBayesScorer:
    """What to learn: which ``fields`` of `LEAD_FIELDS`, smoothing ``alpha``, integer ``bands``.

    ``fields`` may be text (enum fields included), boolean and integer fields; integers are
    counted by band. ``name`` is what scores report as their ``model``.

    Raises:
        ValidationError: on build, listing every problem: unknown or unusable fields, a field
            named twice, no fields, ``alpha`` not positive, band edges not increasing.
    """

    fields: tuple[str, ...] = checked(tuple_of(_field_name), default=DEFAULT_FIELDS)
    alpha: float = checked(_alpha, default=1.0)
    bands: tuple[int, ...] = checked(_bands, default=DEFAULT_BANDS)
    name: str = checked(text(max_length=100, required=True), default="naive_bayes")

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        try:
            run_checks(self)
        except ValidationError as exc:
            errors.extend(exc.errors)
            if any(e.path.startswith("fields") for e in exc.errors):
                raise ValidationError.from_errors(errors) from None
        if not self.fields:
            errors.append(FieldError("fields", f"name at least one field; usable: {_usable_fields()}"))
        seen: dict[str, int] = {}
        for i, name in enumerate(self.fields):
            first = seen.setdefault(name, i)
            path = f"fields[{i}]"
            if first != i:
                errors.append(FieldError(path, f"{name!r} is also fields[{first}]"))
                continue
            fd = LEAD_FIELDS.fields.get(name)
            if fd is None:
                errors.append(FieldError(path, f"unknown field {name!r}; usable fields: {_usable_fields()}"))
            elif fd.type not in _USABLE:
                errors.append(
                    FieldError(
                        path,
                        f"{name!r} is a {fd.type.value} field; naive Bayes learns from text, boolean and "
                        f"integer fields: {_usable_fields()}",
                    )
                )
        if errors:
            raise ValidationError.from_errors(errors)

    def fit(self, leads: Iterable[Any], outcomes: Iterable[bool]) -> NaiveBayesModel:
        """A model learned from ``leads`` and their ``outcomes`` (True: won, False: lost), in order.

        Raises:
            ValidationError: no leads, a count of outcomes other than the leads', an outcome that
                is not a bool, or only won (or only lost) leads: there is nothing to tell apart.
        """
        leads = list(leads)
        outcomes = list(outcomes)
        if not leads:
            raise ValidationError("leads", "no training data: give won and lost leads with their outcomes")
        if len(outcomes) != len(leads):
            raise ValidationError("outcomes", f"has {len(outcomes)} entries for {len(leads)} leads")
        bad = [i for i, o in enumerate(outcomes) if not isinstance(o, bool)]
        if bad:
            shown = ", ".join(f"outcomes[{i}] is {outcomes[i]!r}" for i in bad[:5])
            raise ValidationError("outcomes", f"must be True (won) or False (lost): {shown}")
        won = sum(outcomes)
        lost = len(outcomes) - won
        if not won or not lost:
            which = "won" if won else "lost"
            raise ValidationError(
                "outcomes",
                f"all {len(outcomes)} leads were {which}: naive Bayes needs both won and lost leads",
            )
        counts = []
        for name in self.fields:
            key = _key_function(name, self.bands)
            won_counts: dict[str, int] = {}
            lost_counts: dict[str, int] = {}
            for lead, outcome in zip(leads, outcomes, strict=True):
                k = key(lead)
                table = won_counts if outcome else lost_counts
                table[k] = table.get(k, 0) + 1
            counts.append(
                FieldCounts(
                    field=name, won=dict(sorted(won_counts.items())), lost=dict(sorted(lost_counts.items()))
                )
            )
        return NaiveBayesModel(scorer=self, won=won, lost=lost, counts=tuple(counts))


def _counts(value: Any, path: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict of value to count, not {type(value).__name__}")
    errors = [
        FieldError(path, f"count of {k!r} must be a whole number of at least 1, got {n!r}")
        for k, n in value.items()
        if not isinstance(k, str) or isinstance(n, bool) or not isinstance(n, int) or n < 1
    ]
    if errors:
        raise ValidationError.from_errors(errors)
    return dict(value)


@attrs.frozen(kw_only=True)
class FieldCounts:
    """How often each value of ``field`` occurred among ``won`` and among ``lost`` training leads.

    Values are keys as the model counts them: text as given, integers as band labels (``10-49``),
    booleans as ``true``/``false``, and ``""`` for a missing value.
    """

    field: str = checked(_field_name)
    won: dict[str, int] = checked(_counts, factory=dict)
    lost: dict[str, int] = checked(_counts, factory=dict)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _positive(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(path, f"must be a whole number of at least 1, got {value!r}")
    return value


_Table = tuple[Callable[[Any], str], Mapping[str, Factor], str, float, bool]
"""Per field: key function, value key -> factor, field name, unseen-value ratio, integer field."""


def _sigmoid(z: float) -> float:
    # Two forms, so exp never overflows: exp of a negative number only.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@attrs.frozen(kw_only=True)
class NaiveBayesModel:
    """A fitted naive Bayes model: the ``scorer`` it was fitted with and the training counts.

    Build it with `NaiveBayesScorer.fit`; building one from stored data checks that the counts
    agree with each other (every field counts every training lead once).
    """

    scorer: NaiveBayesScorer = checked(instance_of(NaiveBayesScorer))
    won: int = checked(_positive)
    lost: int = checked(_positive)
    counts: tuple[FieldCounts, ...] = checked(tuple_of(instance_of(FieldCounts)))
    _base: float = attrs.field(init=False, eq=False, repr=False)
    _tables: tuple[_Table, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        names = tuple(c.field for c in self.counts)
        if names != self.scorer.fields:
            errors.append(
                FieldError(
                    "counts",
                    f"count fields {list(names)} differ from the scorer's {list(self.scorer.fields)}",
                )
            )
        for i, c in enumerate(self.counts):
            for side, total in (("won", self.won), ("lost", self.lost)):
                counted = sum(getattr(c, side).values())
                if counted != total:
                    errors.append(
                        FieldError(
                            f"counts[{i}].{side}", f"adds up to {counted}, not the {total} {side} leads"
                        )
                    )
        if errors:
            raise ValidationError.from_errors(errors)
        object.__setattr__(self, "_base", math.log(self.won) - math.log(self.lost))
        object.__setattr__(self, "_tables", tuple(self._table(c) for c in self.counts))

    def _table(self, c: FieldCounts) -> _Table:
        alpha = self.scorer.alpha
        integer = LEAD_FIELDS.fields[c.field].type is FieldType.INTEGER
        keys = sorted(set(c.won) | set(c.lost))
        slots = len(keys) + 1  # the + 1 is the slot of values not seen in training
        log_won = math.log(self.won + alpha * slots)
        log_lost = math.log(self.lost + alpha * slots)
        table = {}
        for key in keys:
            w, lo = c.won.get(key, 0), c.lost.get(key, 0)
            ratio = (math.log(w + alpha) - log_won) - (math.log(lo + alpha) - log_lost)
            share = f"won {w} of {w + lo} training leads ({w / (w + lo):.0%})"
            table[key] = Factor(
                name=c.field, contribution=ratio, detail=f"{_shown(c.field, key, integer)}: {share}"
            )
        unseen = (math.log(alpha) - log_won) - (math.log(alpha) - log_lost)
        return (_key_function(c.field, self.scorer.bands), table, c.field, unseen, integer)

    @property
    def base(self) -> float:
        """The training base rate's log-odds, ``log(won / lost)``: every lead's starting point."""
        return self._base

    @property
    def base_rate(self) -> float:
        """The share of training leads that were won."""
        return self.won / (self.won + self.lost)

    def predict(self, lead: Any) -> Score:
        """``lead``'s probability of being won, with each field's log-likelihood ratio as a factor."""
        factors = []
        z = self._base
        for key_of, table, field, unseen, integer in self._tables:
            key = key_of(lead)
            factor = table.get(key)
            if factor is None:
                factor = Factor(
                    name=field,
                    contribution=unseen,
                    detail=f"{_shown(field, key, integer)}: not seen in training (smoothed)",
                )
            z += factor.contribution
            factors.append(factor)
        factors.sort(key=factor_order)
        return Score(value=_sigmoid(z), factors=tuple(factors), model=self.scorer.name, base=self._base)

    def score_many(self, leads: Iterable[Any]) -> list[Score]:
        """The scores of ``leads``, in order (one call re-scores a whole table of leads)."""
        predict = self.predict
        return [predict(lead) for lead in leads]

    def informativeness(self) -> tuple[Factor, ...]:
        """Each field's average ``|contribution|`` over the training leads, most informative first.

        A field whose values all have the same share of won leads contributes nothing on average;
        the fields that drive the outcome come first.
        """
        total = self.won + self.lost
        out = []
        for (_, table, field, _, _), c in zip(self._tables, self.counts, strict=True):
            mean = 0.0
            for key, factor in table.items():
                mean += (c.won.get(key, 0) + c.lost.get(key, 0)) * abs(factor.contribution)
            out.append(
                Factor(
                    name=field,
                    contribution=mean / total,
                    detail=f"average |contribution| over {total} training leads",
                )
            )
        out.sort(key=factor_order)
        return tuple(out)
