"""RFM: recency, frequency and monetary scores per customer, named segments, and a Pareto view.

Scores come from `CustomerSummaries`:

- **R** from the time since the last purchase (``age - recency`` of the summary, in its unit);
  the more recent, the higher the score;
- **F** from the number of purchase days (``frequency + 1``);
- **M** from the total spend.

Quantile scores (the default, quintiles) use mid-ranks: a customer's score is
``1 + floor(scores * (below + tied / 2) / n)``, so tied customers always share a score (many
one-time buyers all get the same F). Fixed bins take ascending edges per dimension; a value equal
to an edge falls in the upper bin (for R, the less recent one).

Segments come from the R and F scores through a grid of rules, first match wins (`DEFAULT_SEGMENTS`
is the usual 5 x 5 grid; pass your own for other score counts).
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from crmcore.analytics.summaries import CustomerSummaries, TimeUnit, _require_pandas
from crmcore.errors import FieldError, ValidationError
from crmcore.money import Money

__all__ = [
    "DEFAULT_SEGMENTS",
    "ParetoView",
    "RfmConfig",
    "RfmMethod",
    "RfmResult",
    "RfmScore",
    "SegmentRule",
    "pareto",
    "rfm",
]


class RfmMethod(enum.Enum):
    """How values become scores."""

    QUANTILE = "quantile"
    """Equal-count groups by mid-rank (quintiles for 5 scores)."""
    BINS = "bins"
    """Fixed edges per dimension (`RfmConfig` ``*_edges``)."""


@attrs.frozen(kw_only=True)
class SegmentRule:
    """Customers whose R and F scores fall in both inclusive ranges belong to ``segment``."""

    segment: str
    recency: tuple[int, int]
    frequency: tuple[int, int]

    def matches(self, r: int, f: int) -> bool:
        """Whether scores ``r`` and ``f`` fall in this rule's ranges."""
        return self.recency[0] <= r <= self.recency[1] and self.frequency[0] <= f <= self.frequency[1]


def _rule(segment: str, recency: tuple[int, int], frequency: tuple[int, int]) -> SegmentRule:
    return SegmentRule(segment=segment, recency=recency, frequency=frequency)


DEFAULT_SEGMENTS: tuple[SegmentRule, ...] = (
    _rule("champions", (5, 5), (4, 5)),
    _rule("loyal customers", (3, 4), (4, 5)),
    _rule("potential loyalists", (4, 5), (2, 3)),
    _rule("new customers", (5, 5), (1, 1)),
    _rule("promising", (4, 4), (1, 1)),
    _rule("need attention", (3, 3), (3, 3)),
    _rule("about to sleep", (3, 3), (1, 2)),
    _rule("can't lose them", (1, 2), (5, 5)),
    _rule("at risk", (1, 2), (3, 4)),
    _rule("hibernating", (2, 2), (1, 2)),
    _rule("lost", (1, 1), (1, 2)),
)
"""The usual R x F grid for 1-5 scores (rows R = 5 down to 1, columns F = 1 to 5)::

    R5  new customers   potential loyalists  potential loyalists  champions        champions
    R4  promising       potential loyalists  potential loyalists  loyal customers  loyal customers
    R3  about to sleep  about to sleep       need attention       loyal customers  loyal customers
    R2  hibernating     hibernating          at risk              at risk          can't lose them
    R1  lost            lost                 at risk              at risk          can't lose them
"""


def _check_edges(errors: list[FieldError], name: str, edges: Sequence[Any], config: RfmConfig) -> None:
    if config.method is RfmMethod.QUANTILE:
        if edges:
            errors.append(FieldError(name, "is only used with method 'bins'"))
        return
    if len(edges) != config.scores - 1:
        errors.append(FieldError(name, f"needs {config.scores - 1} edges for {config.scores} scores"))
    elif any(b <= a for a, b in itertools.pairwise(edges)):
        errors.append(FieldError(name, "must be strictly ascending"))


def _method(value: Any) -> Any:
    try:
        return RfmMethod(value)
    except ValueError:
        return value  # refused with the valid choices in __attrs_post_init__


@attrs.frozen(kw_only=True)
class RfmConfig:
    """How to score (quantiles or fixed bins, how many scores) and how to name segments."""

    method: RfmMethod = attrs.field(default=RfmMethod.QUANTILE, converter=_method)
    scores: int = 5
    recency_edges: tuple[float, ...] = ()
    """Bins: ascending times since the last purchase (in the summaries' unit)."""
    frequency_edges: tuple[float, ...] = ()
    """Bins: ascending numbers of purchase days."""
    monetary_edges: tuple[Decimal, ...] = ()
    """Bins: ascending total spends."""
    segments: tuple[SegmentRule, ...] = DEFAULT_SEGMENTS

    def __attrs_post_init__(self) -> None:
        errors: list[FieldError] = []
        if not isinstance(self.method, RfmMethod):
            valid = ", ".join(repr(m.value) for m in RfmMethod)
            raise ValidationError("method", f"{self.method!r} is not a method; use one of {valid}")
        if isinstance(self.scores, bool) or not isinstance(self.scores, int) or not 2 <= self.scores <= 10:
            raise ValidationError("scores", "must be a whole number from 2 to 10")
        _check_edges(errors, "recency_edges", self.recency_edges, self)
        _check_edges(errors, "frequency_edges", self.frequency_edges, self)
        _check_edges(errors, "monetary_edges", self.monetary_edges, self)
        for i, rule in enumerate(self.segments):
            for dim in ("recency", "frequency"):
                lo, hi = getattr(rule, dim)
                if not 1 <= lo <= hi <= self.scores:
                    errors.append(
                        FieldError(f"segments[{i}].{dim}", f"must be a range within 1..{self.scores}")
                    )
        if not errors:
            cells = range(1, self.scores + 1)
            uncovered = [
                f"R{r}F{f}"
                for r in cells
                for f in cells
                if not any(rule.matches(r, f) for rule in self.segments)
            ]
            if uncovered:
                errors.append(FieldError("segments", f"no rule covers {', '.join(uncovered)}"))
        if errors:
            raise ValidationError.from_errors(errors)


@attrs.frozen(kw_only=True)
class RfmScore:
    """One customer's RFM values, scores (1 = worst, ``scores`` = best) and segment."""

    customer_id: str
    recency: float
    """Time since the last purchase, in the summaries' unit."""
    frequency: int
    """Purchase days (repeat purchases + 1)."""
    monetary: Money
    """Total spend."""
    r: int
    f: int
    m: int
    segment: str

    @property
    def code(self) -> str:
        """The scores as one string, e.g. ``"545"``."""
        return f"{self.r}{self.f}{self.m}"


@attrs.frozen(kw_only=True)
class RfmResult:
    """RFM scores of every summarised customer, sorted by customer id."""

    observed_at: datetime
    unit: TimeUnit
    currency: str | None
    config: RfmConfig
    customers: tuple[RfmScore, ...] = ()

    def segment_counts(self) -> dict[str, int]:
        """Customers per segment, in rule order (segments nobody falls in count 0)."""
        counts = dict.fromkeys((rule.segment for rule in self.config.segments), 0)
        for score in self.customers:
            counts[score.segment] += 1
        return counts

    def grid(self) -> dict[tuple[int, int], int]:
        """Customers per (R, F) cell, every cell present."""
        cells = range(1, self.config.scores + 1)
        counts = {(r, f): 0 for r in cells for f in cells}
        for score in self.customers:
            counts[score.r, score.f] += 1
        return counts

    def to_dataframe(self) -> Any:
        """A pandas DataFrame indexed by ``customer_id``: values, scores, code and segment."""
        pd = _require_pandas()
        rows = self.customers
        frame = pd.DataFrame(
            {
                "customer_id": [s.customer_id for s in rows],
                "recency": [s.recency for s in rows],
                "frequency": [s.frequency for s in rows],
                "monetary": [float(s.monetary.amount) for s in rows],
                "r": [s.r for s in rows],
                "f": [s.f for s in rows],
                "m": [s.m for s in rows],
                "code": [s.code for s in rows],
                "segment": [s.segment for s in rows],
            }
        )
        return frame.set_index("customer_id")


def _quantile_scores(values: Sequence[Any], k: int) -> list[int]:
    """Mid-rank scores: ``1 + floor(k * (below + tied / 2) / n)``, exact in integers."""
    ordered = sorted(values)
    n = len(ordered)
    out = []
    for v in values:
        below = bisect.bisect_left(ordered, v)
        tied = bisect.bisect_right(ordered, v) - below
        out.append(min(k, 1 + (k * (2 * below + tied)) // (2 * n)))
    return out


def _bin_scores(values: Sequence[Any], edges: Sequence[Any]) -> list[int]:
    return [1 + bisect.bisect_right(edges, v) for v in values]


def rfm(summaries: CustomerSummaries, config: RfmConfig | None = None) -> RfmResult:
    """Score every customer in ``summaries`` and name their segment.

    Args:
        summaries: from `summarize` or `customer_summaries`.
        config: method, number of scores, bin edges and segment rules (quintiles by default).
    """
    config = RfmConfig() if config is None else config
    rows = summaries.customers
    recency = [s.age - s.recency for s in rows]
    frequency = [s.frequency + 1 for s in rows]
    monetary = [s.total_spend.amount for s in rows]
    k = config.scores
    r: list[int] = []
    f: list[int] = []
    m: list[int] = []
    if not rows:
        pass
    elif config.method is RfmMethod.QUANTILE:
        r = _quantile_scores([-x for x in recency], k)
        f = _quantile_scores(frequency, k)
        m = _quantile_scores(monetary, k)
    else:
        r = [k + 1 - s for s in _bin_scores(recency, config.recency_edges)]
        f = _bin_scores(frequency, config.frequency_edges)
        m = _bin_scores(monetary, config.monetary_edges)

    def segment(ri: int, fi: int) -> str:
        return next(rule.segment for rule in config.segments if rule.matches(ri, fi))

    scores = tuple(
        RfmScore(
            customer_id=s.customer_id,
            recency=recency[i],
            frequency=frequency[i],
            monetary=s.total_spend,
            r=r[i],
            f=f[i],
            m=m[i],
            segment=segment(r[i], f[i]),
        )
        for i, s in enumerate(rows)
    )
    return RfmResult(
        observed_at=summaries.observed_at,
        unit=summaries.unit,
        currency=summaries.currency,
        config=config,
        customers=scores,
    )


@attrs.frozen(kw_only=True)
class ParetoView:
    """How concentrated revenue is: the fewest customers that bring ``target`` of it, and the curve."""

    customers: int
    revenue: Money
    target: float
    customers_needed: int
    """The fewest customers (biggest spenders first) whose spend reaches ``target`` of the revenue."""
    customer_share: float
    """``customers_needed / customers``: 0.2 is the classic 80/20."""
    curve: tuple[tuple[float, float], ...]
    """(share of customers, share of revenue), biggest spenders first, from (0, 0) to (1, 1)."""

    def revenue_share_of_top(self, share: float) -> float:
        """The share of revenue the top ``share`` of customers bring (rounded down to whole customers)."""
        if not 0 <= share <= 1:
            raise ValidationError("share", "must be between 0 and 1")
        return self.curve[int(share * self.customers + 1e-9)][1]

    def to_dataframe(self) -> Any:
        """The curve as a pandas DataFrame with columns ``customer_share`` and ``revenue_share``."""
        pd = _require_pandas()
        return pd.DataFrame(self.curve, columns=["customer_share", "revenue_share"])


def pareto(summaries: CustomerSummaries, target: float = 0.8) -> ParetoView:
    """The Pareto view of total spend per customer.

    Args:
        summaries: customers with a purchase (those who spent nothing still count as customers).
        target: the share of revenue to reach, between 0 and 1 (0.8 by default).

    Raises:
        ValidationError: a target outside (0, 1], or no revenue at all.
    """
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target <= 1:
        raise ValidationError("target", "must be a share of revenue above 0 and at most 1")
    spends = sorted(
        ((s.total_spend.amount, s.customer_id) for s in summaries.customers), key=lambda x: (-x[0], x[1])
    )
    total = sum((amount for amount, _ in spends), Decimal(0))
    if total <= 0:
        raise ValidationError("summaries", "there is no revenue to split")
    n = len(spends)
    curve = [(0.0, 0.0)]
    running = Decimal(0)
    needed = 0
    goal = total * Decimal(str(target))
    for i, (amount, _) in enumerate(spends, start=1):
        running += amount
        if not needed and running >= goal:
            needed = i
        curve.append((i / n, float(running / total)))
    currency = summaries.customers[0].total_spend.currency
    return ParetoView(
        customers=n,
        revenue=Money(total, currency),
        target=float(target),
        customers_needed=needed,
        customer_share=needed / n,
        curve=tuple(curve),
    )
