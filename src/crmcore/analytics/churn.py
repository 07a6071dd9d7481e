"""Churn warnings from customer behaviour, their backtest, and a customer-feature churn classifier.

`ChurnMonitor` holds rules as data (each round-trips through `crmcore.serialization`); `check`
runs them over a batch of `CustomerActivity` records (built from orders, surveys, tickets and deals
by `activity_from`) at an explicit ``now`` and returns one `ChurnWarning` per rule that fired, with
reasons that name the rule. `backtest` replays the monitor at a past date and scores its warnings
against who really stopped buying afterwards.

`fit_churn_classifier` fits an L2-penalized logistic regression on customer features (numpy, from the
``analytics`` extra, imported only when called) and returns a frozen `ChurnClassifier` whose
predictions explain themselves per feature.
"""

from __future__ import annotations

import enum
import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

import attrs

from crmcore.analytics._extras import require
from crmcore.customers.order import Order
from crmcore.errors import CrmError, FieldError, ValidationError
from crmcore.events import DomainEvent
from crmcore.ids import check_id
from crmcore.money import Money
from crmcore.pipeline.opportunity import Opportunity
from crmcore.service.ticket import SatisfactionSurvey, Ticket
from crmcore.validation import (
    checked,
    instance_of,
    one_of,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
)

__all__ = [
    "ChurnBacktest",
    "ChurnClassifier",
    "ChurnMonitor",
    "ChurnPrediction",
    "ChurnRule",
    "ChurnWarning",
    "ChurnWarningRaised",
    "CustomerActivity",
    "DeclineMeasure",
    "DeclineRule",
    "FeatureContribution",
    "FeatureKind",
    "FeatureSpec",
    "InactivityRule",
    "LostDealsRule",
    "ProbabilityAliveRule",
    "Purchase",
    "RuleBacktest",
    "SatisfactionRule",
    "Severity",
    "SurveyAnswer",
    "TicketSpikeRule",
    "activity_from",
    "auc",
    "fit_churn_classifier",
]

_DAY = timedelta(days=1)


class Severity(enum.Enum):
    """How urgent a warning is; hosts decide what each level sets off."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# --- checks ----------------------------------------------------------------------------------------


def _count(low: int, high: int = 100_000) -> Callable[[Any, str], int]:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(path, f"must be a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _number(low: float, high: float, *, low_open: bool = False) -> Callable[[Any, str], float]:
    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValidationError(path, f"must be a number, got {value!r}")
        if value < low or value > high or (low_open and value == low):
            bound = "above" if low_open else "from"
            raise ValidationError(path, f"must be {bound} {low} up to {high}, got {value!r}")
        return float(value)

    return check


def _optional_number(
    low: float, high: float, *, low_open: bool = False
) -> Callable[[Any, str], float | None]:
    inner = _number(low, high, low_open=low_open)

    def check(value: Any, path: str) -> float | None:
        return None if value is None else inner(value, path)

    return check


def _optional_count(low: int, high: int = 100_000) -> Callable[[Any, str], int | None]:
    inner = _count(low, high)

    def check(value: Any, path: str) -> int | None:
        return None if value is None else inner(value, path)

    return check


_rule_name = text(max_length=100, required=True)


# --- facts -----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Purchase:
    """One order that counts as a purchase: when, and its total."""

    at: datetime = checked(utc_datetime)
    total: Money = checked(instance_of(Money))

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class SurveyAnswer:
    """One answered CSAT survey: when it was answered and its 1-5 score."""

    at: datetime = checked(utc_datetime)
    score: int = checked(_count(1, 5))

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _sorted_times(value: Any, path: str) -> tuple[datetime, ...]:
    return tuple(sorted(tuple_of(utc_datetime)(value, path)))


def _sorted_by_time(cls: type[Any]) -> Callable[[Any, str], tuple[Any, ...]]:
    inner = tuple_of(instance_of(cls))

    def check(value: Any, path: str) -> tuple[Any, ...]:
        return tuple(sorted(inner(value, path), key=lambda item: item.at))

    return check


@attrs.frozen(kw_only=True)
class CustomerActivity:
    """What the churn rules know about one customer, each list sorted by time.

    Built by `activity_from` from domain objects, or directly by a host with its own facts.
    """

    customer_id: str = checked(check_id)
    purchases: tuple[Purchase, ...] = checked(_sorted_by_time(Purchase), default=())
    surveys: tuple[SurveyAnswer, ...] = checked(_sorted_by_time(SurveyAnswer), default=())
    tickets: tuple[datetime, ...] = checked(_sorted_times, default=())
    """When each of the customer's tickets was opened."""
    lost_deals: tuple[datetime, ...] = checked(_sorted_times, default=())
    """When each of the customer's lost opportunities was closed."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def until(self, moment: datetime) -> CustomerActivity:
        """The facts known at ``moment`` (everything later dropped), for backtests."""
        return CustomerActivity(
            customer_id=self.customer_id,
            purchases=tuple(p for p in self.purchases if p.at <= moment),
            surveys=tuple(s for s in self.surveys if s.at <= moment),
            tickets=tuple(t for t in self.tickets if t <= moment),
            lost_deals=tuple(t for t in self.lost_deals if t <= moment),
        )


def activity_from(
    orders: Iterable[Order],
    surveys: Iterable[SatisfactionSurvey] = (),
    tickets: Iterable[Ticket] = (),
    opportunities: Iterable[Opportunity] = (),
) -> dict[str, CustomerActivity]:
    """Per-customer facts from domain objects, keyed by customer id.

    Only orders whose status counts as a purchase, answered surveys (at ``answered_at``), tickets
    with a ``created_at`` and lost deals (at ``closed_at``) are used; every customer seen in any
    input gets a record.
    """
    purchases: dict[str, list[Purchase]] = {}
    answers: dict[str, list[SurveyAnswer]] = {}
    opened: dict[str, list[datetime]] = {}
    lost: dict[str, list[datetime]] = {}
    for order in orders:
        purchases.setdefault(order.customer_id, [])
        if order.status.counts:
            purchases[order.customer_id].append(Purchase(at=order.ordered_at, total=order.total))
    for survey in surveys:
        answers.setdefault(survey.customer_id, [])
        if survey.score is not None and survey.answered_at is not None:
            answers[survey.customer_id].append(SurveyAnswer(at=survey.answered_at, score=survey.score))
    for ticket in tickets:
        opened.setdefault(ticket.customer_id, [])
        if ticket.created_at is not None:
            opened[ticket.customer_id].append(ticket.created_at)
    for deal in opportunities:
        lost.setdefault(deal.customer_id, [])
        if deal.won is False and deal.closed_at is not None:
            lost[deal.customer_id].append(deal.closed_at)
    ids = sorted({*purchases, *answers, *opened, *lost})
    return {
        cid: CustomerActivity(
            customer_id=cid,
            purchases=tuple(purchases.get(cid, ())),
            surveys=tuple(answers.get(cid, ())),
            tickets=tuple(opened.get(cid, ())),
            lost_deals=tuple(lost.get(cid, ())),
        )
        for cid in ids
    }


# --- rules -----------------------------------------------------------------------------------------


def _days(delta: timedelta) -> float:
    return delta / _DAY


@attrs.frozen(kw_only=True)
class InactivityRule:
    """No purchase for ``days`` days, or for ``gap_multiple`` times the customer's own median gap.

    The gap test needs at least ``min_purchases`` purchases (so a usual gap exists); either test
    firing raises the warning, and both reasons are given when both fire. Customers who never
    bought are not judged.
    """

    kind: Literal["inactivity"] = "inactivity"
    name: str = checked(_rule_name, default="inactive")
    days: int | None = checked(_optional_count(1), default=90)
    gap_multiple: float | None = checked(_optional_number(1.0, 1000.0), default=None)
    min_purchases: int = checked(_count(2), default=3)
    severity: Severity = checked(one_of(Severity), default=Severity.MEDIUM)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.days is None and self.gap_multiple is None:
            raise ValidationError("days", "or gap_multiple must be set")

    def reasons(self, activity: CustomerActivity, now: datetime) -> list[str]:
        """Why this rule fires for ``activity`` at ``now`` (empty when it does not)."""
        bought = activity.purchases
        if not bought:
            return []
        idle = _days(now - bought[-1].at)
        out = []
        if self.days is not None and idle >= self.days:
            out.append(f"{self.name}: no purchase for {idle:.0f} days (limit {self.days})")
        if self.gap_multiple is not None and len(bought) >= self.min_purchases:
            gaps = [_days(b.at - a.at) for a, b in itertools.pairwise(bought)]
            usual = statistics.median(gaps)
            if usual > 0 and idle >= self.gap_multiple * usual:
                out.append(
                    f"{self.name}: no purchase for {idle:.0f} days, {idle / usual:.1f}x the usual "
                    f"gap of {usual:.0f} days (limit {self.gap_multiple:g}x)"
                )
        return out


class DeclineMeasure(enum.Enum):
    """What a `DeclineRule` compares: the number of purchases or the amount spent."""

    ORDERS = "orders"
    SPEND = "spend"


@attrs.frozen(kw_only=True)
class DeclineRule:
    """Purchases (or spend) per day in the last ``recent_days`` fell by at least ``min_drop``
    against the ``baseline_days`` before them.

    Both windows are normalized per day, so "last 90 days vs the previous 365" compares like with
    like. The baseline needs ``min_baseline_purchases``; customers who became customers inside the
    baseline are judged on the part of it they were customers for. Spend counts the currency of the
    customer's latest purchase only (currencies never mix).
    """

    kind: Literal["decline"] = "decline"
    name: str = checked(_rule_name, default="declining")
    measure: DeclineMeasure = checked(one_of(DeclineMeasure), default=DeclineMeasure.ORDERS)
    recent_days: int = checked(_count(1), default=90)
    baseline_days: int = checked(_count(1), default=365)
    min_drop: float = checked(_number(0.0, 1.0, low_open=True), default=0.5)
    min_baseline_purchases: int = checked(_count(1), default=3)
    severity: Severity = checked(one_of(Severity), default=Severity.MEDIUM)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def reasons(self, activity: CustomerActivity, now: datetime) -> list[str]:
        """Why this rule fires for ``activity`` at ``now`` (empty when it does not)."""
        bought = activity.purchases
        if not bought:
            return []
        split = now - timedelta(days=self.recent_days)
        start = max(split - timedelta(days=self.baseline_days), bought[0].at)
        if start >= split:
            return []
        currency = bought[-1].total.currency
        base = [p for p in bought if start <= p.at < split]
        recent = [p for p in bought if split <= p.at <= now]
        if len(base) < self.min_baseline_purchases:
            return []
        base_days = max(_days(split - start), 1.0)

        def size(items: list[Purchase]) -> float:
            if self.measure is DeclineMeasure.ORDERS:
                return float(len(items))
            return float(sum((p.total.amount for p in items if p.total.currency == currency), Decimal(0)))

        before = size(base) / base_days
        after = size(recent) / self.recent_days
        if before <= 0 or after > (1 - self.min_drop) * before:
            return []
        what = "purchases" if self.measure is DeclineMeasure.ORDERS else f"spend ({currency})"
        drop = 1 - after / before
        return [
            f"{self.name}: {what} per 30 days fell {drop:.0%}, from {before * 30:.2f} over the previous "
            f"{base_days:.0f} days to {after * 30:.2f} in the last {self.recent_days} "
            f"(limit {self.min_drop:.0%})"
        ]


@attrs.frozen(kw_only=True)
class ProbabilityAliveRule:
    """The model's probability that the customer is still active is below ``threshold``.

    The values come from the caller (``check(..., probability_alive=...)``): a mapping of customer id
    to probability or a function of the activity, e.g. a fitted BG/NBD model; customers without a
    value are not judged.
    """

    kind: Literal["probability_alive"] = "probability_alive"
    name: str = checked(_rule_name, default="probably_gone")
    threshold: float = checked(_number(0.0, 1.0, low_open=True), default=0.3)
    severity: Severity = checked(one_of(Severity), default=Severity.HIGH)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def reasons_for(self, probability: float | None) -> list[str]:
        """Why this rule fires for a customer with ``probability`` alive (empty when it does not)."""
        if probability is None or probability >= self.threshold:
            return []
        return [f"{self.name}: probability alive {probability:.2f} (below {self.threshold:.2f})"]


@attrs.frozen(kw_only=True)
class SatisfactionRule:
    """The average CSAT score answered in the last ``window_days`` is at most ``max_average``."""

    kind: Literal["satisfaction"] = "satisfaction"
    name: str = checked(_rule_name, default="unhappy")
    window_days: int = checked(_count(1), default=180)
    max_average: float = checked(_number(1.0, 5.0), default=2.5)
    min_answers: int = checked(_count(1), default=1)
    severity: Severity = checked(one_of(Severity), default=Severity.MEDIUM)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def reasons(self, activity: CustomerActivity, now: datetime) -> list[str]:
        """Why this rule fires for ``activity`` at ``now`` (empty when it does not)."""
        since = now - timedelta(days=self.window_days)
        scores = [s.score for s in activity.surveys if since < s.at <= now]
        if len(scores) < self.min_answers:
            return []
        average = sum(scores) / len(scores)
        if average > self.max_average:
            return []
        return [
            f"{self.name}: average CSAT {average:.1f} from {len(scores)} answer(s) in the last "
            f"{self.window_days} days (limit {self.max_average:g})"
        ]


@attrs.frozen(kw_only=True)
class TicketSpikeRule:
    """At least ``min_tickets`` tickets in the last ``window_days``, and ``ratio`` times the
    customer's usual rate over the ``baseline_days`` before (a customer with no baseline tickets
    fires on ``min_tickets`` alone)."""

    kind: Literal["ticket_spike"] = "ticket_spike"
    name: str = checked(_rule_name, default="ticket_spike")
    window_days: int = checked(_count(1), default=30)
    min_tickets: int = checked(_count(1), default=3)
    baseline_days: int = checked(_count(1), default=365)
    ratio: float = checked(_number(1.0, 1000.0), default=3.0)
    severity: Severity = checked(one_of(Severity), default=Severity.MEDIUM)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def reasons(self, activity: CustomerActivity, now: datetime) -> list[str]:
        """Why this rule fires for ``activity`` at ``now`` (empty when it does not)."""
        split = now - timedelta(days=self.window_days)
        start = split - timedelta(days=self.baseline_days)
        recent = sum(1 for t in activity.tickets if split < t <= now)
        base = sum(1 for t in activity.tickets if start < t <= split)
        expected = base * self.window_days / self.baseline_days
        if recent < self.min_tickets or recent < self.ratio * expected:
            return []
        return [
            f"{self.name}: {recent} tickets in the last {self.window_days} days, usual "
            f"{expected:.1f} (limit {self.min_tickets} and {self.ratio:g}x usual)"
        ]


@attrs.frozen(kw_only=True)
class LostDealsRule:
    """At least ``min_lost`` of the customer's opportunities were lost in the last ``window_days``."""

    kind: Literal["lost_deals"] = "lost_deals"
    name: str = checked(_rule_name, default="lost_deals")
    window_days: int = checked(_count(1), default=90)
    min_lost: int = checked(_count(1), default=1)
    severity: Severity = checked(one_of(Severity), default=Severity.LOW)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def reasons(self, activity: CustomerActivity, now: datetime) -> list[str]:
        """Why this rule fires for ``activity`` at ``now`` (empty when it does not)."""
        since = now - timedelta(days=self.window_days)
        lost = sum(1 for t in activity.lost_deals if since < t <= now)
        if lost < self.min_lost:
            return []
        return [
            f"{self.name}: {lost} lost deal(s) in the last {self.window_days} days (limit {self.min_lost})"
        ]


ChurnRule = (
    InactivityRule | DeclineRule | ProbabilityAliveRule | SatisfactionRule | TicketSpikeRule | LostDealsRule
)
"""Any churn rule; each has a ``kind`` tag (its serialized type) and a unique ``name``."""

_RULE_TYPES = (
    InactivityRule,
    DeclineRule,
    ProbabilityAliveRule,
    SatisfactionRule,
    TicketSpikeRule,
    LostDealsRule,
)

ProbabilityAlive = Mapping[str, float] | Callable[[CustomerActivity], float | None]
"""Probability-alive values for `ProbabilityAliveRule`: by customer id, or computed per activity."""


# --- warnings and events ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ChurnWarningRaised(DomainEvent):
    """A churn rule fired for a customer (``aggregate_id``); hosts act on it (a task, an offer)."""

    event_type: ClassVar[str] = "customer.churn_warning"
    rule: str
    severity: str
    reasons: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ChurnWarning:
    """Rule ``rule`` fired for ``customer_id`` at ``at``, with a ``severity`` and its ``reasons``
    (each starting with the rule's name)."""

    customer_id: str = checked(check_id)
    rule: str = checked(_rule_name)
    severity: Severity = checked(one_of(Severity))
    reasons: tuple[str, ...] = checked(tuple_of(text(max_length=1000, required=True)))
    at: datetime = checked(utc_datetime)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def event(self) -> ChurnWarningRaised:
        """The `ChurnWarningRaised` event for this warning (record it with ``uow.record``)."""
        return ChurnWarningRaised(
            aggregate_id=self.customer_id,
            occurred_at=self.at,
            rule=self.rule,
            severity=self.severity.value,
            reasons=self.reasons,
        )


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2}


@attrs.frozen(kw_only=True)
class RuleBacktest:
    """How one rule did in a backtest: customers it flagged, and how many of them stopped buying."""

    rule: str
    flagged: int
    true_positives: int

    @property
    def precision(self) -> float | None:
        """Share of the flagged customers who stopped buying (None when none were flagged)."""
        return None if not self.flagged else self.true_positives / self.flagged


@attrs.frozen(kw_only=True)
class ChurnBacktest:
    """Warnings raised at ``observed_at`` against who bought nothing in the next ``horizon``.

    The population is the customers with a purchase on or before ``observed_at``; a customer is
    flagged when any rule fired (at ``min_severity`` or above).
    """

    observed_at: datetime
    horizon: timedelta
    customers: int
    flagged: int
    stopped: int
    true_positives: int
    rules: tuple[RuleBacktest, ...] = ()

    @property
    def precision(self) -> float | None:
        """Share of flagged customers who stopped buying (None when none were flagged)."""
        return None if not self.flagged else self.true_positives / self.flagged

    @property
    def recall(self) -> float | None:
        """Share of the customers who stopped buying that were flagged (None when none stopped)."""
        return None if not self.stopped else self.true_positives / self.stopped

    @property
    def base_rate(self) -> float | None:
        """Share of the population that stopped buying: the precision of flagging everyone."""
        return None if not self.customers else self.stopped / self.customers

    def to_dataframe(self) -> Any:
        """One row for all rules together (``rule`` = ``"any"``), then one per rule, as a pandas DataFrame.

        Columns: rule, flagged, true_positives, precision, recall (of the customers who stopped).

        Raises:
            MissingExtra: pandas is not installed (``pip install "crmcore[pandas]"``).
        """

        rows = [("any", self.flagged, self.true_positives)]
        rows += [(r.rule, r.flagged, r.true_positives) for r in self.rules]
        return require("pandas", "pandas").DataFrame(
            [
                {
                    "rule": rule,
                    "flagged": flagged,
                    "true_positives": hits,
                    "precision": hits / flagged if flagged else None,
                    "recall": hits / self.stopped if self.stopped else None,
                }
                for rule, flagged, hits in rows
            ]
        )


def _rules(value: Any, path: str) -> tuple[ChurnRule, ...]:
    if isinstance(value, str | bytes | dict) or not isinstance(value, list | tuple):
        raise ValidationError(path, f"must be a list, not {type(value).__name__}")
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(value):
        if not isinstance(rule, _RULE_TYPES):
            errors.append(FieldError(f"{path}[{i}]", f"must be a churn rule, not {type(rule).__name__}"))
            continue
        first = seen.setdefault(rule.name, i)
        if first != i:
            errors.append(
                FieldError(f"{path}[{i}].name", f"{rule.name!r} is already used by {path}[{first}]")
            )
    if errors:
        raise ValidationError.from_errors(errors)
    return tuple(value)


@attrs.frozen(kw_only=True)
class ChurnMonitor:
    """A set of churn rules with unique names; every rule that fires gives its own warning."""

    rules: tuple[ChurnRule, ...] = checked(_rules)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def check(
        self,
        activities: Iterable[CustomerActivity],
        now: datetime,
        *,
        probability_alive: ProbabilityAlive | None = None,
    ) -> list[ChurnWarning]:
        """Every warning for ``activities`` at ``now``, by customer then rule order.

        Args:
            activities: the customers to check (facts after ``now`` are ignored).
            now: the moment of the check (aware).
            probability_alive: values for `ProbabilityAliveRule`, by customer id or a function.

        Raises:
            ValidationError: a naive ``now``.
        """
        now = utc_datetime(now, "now")
        alive = _alive_lookup(probability_alive)
        warnings: list[ChurnWarning] = []
        for activity in activities:
            for rule in self.rules:
                if isinstance(rule, ProbabilityAliveRule):
                    reasons = rule.reasons_for(alive(activity))
                else:
                    reasons = rule.reasons(activity, now)
                if reasons:
                    warnings.append(
                        ChurnWarning(
                            customer_id=activity.customer_id,
                            rule=rule.name,
                            severity=rule.severity,
                            reasons=tuple(reasons),
                            at=now,
                        )
                    )
        return warnings

    def backtest(
        self,
        activities: Iterable[CustomerActivity],
        observed_at: datetime,
        horizon: timedelta,
        *,
        min_severity: Severity = Severity.LOW,
        probability_alive: ProbabilityAlive | None = None,
    ) -> ChurnBacktest:
        """Check at ``observed_at`` seeing only what was known then; score against the next ``horizon``.

        A customer "stopped buying" when no purchase falls in (``observed_at``, ``observed_at`` +
        ``horizon``]. ``probability_alive`` must itself be computed from data up to ``observed_at``.

        Raises:
            ValidationError: a naive ``observed_at`` or a horizon that is not positive.
        """
        observed_at = utc_datetime(observed_at, "observed_at")
        if horizon <= timedelta(0):
            raise ValidationError("horizon", "must be positive")
        end = observed_at + horizon
        past: list[CustomerActivity] = []
        stopped: set[str] = set()
        for activity in activities:
            seen = activity.until(observed_at)
            if not seen.purchases:
                continue
            past.append(seen)
            if not any(observed_at < p.at <= end for p in activity.purchases):
                stopped.add(activity.customer_id)
        floor = _RANK[min_severity]
        warned = [
            w
            for w in self.check(past, observed_at, probability_alive=probability_alive)
            if _RANK[w.severity] >= floor
        ]
        flagged = {w.customer_id for w in warned}
        per_rule = []
        for rule in self.rules:
            who = {w.customer_id for w in warned if w.rule == rule.name}
            per_rule.append(RuleBacktest(rule=rule.name, flagged=len(who), true_positives=len(who & stopped)))
        return ChurnBacktest(
            observed_at=observed_at,
            horizon=horizon,
            customers=len(past),
            flagged=len(flagged),
            stopped=len(stopped),
            true_positives=len(flagged & stopped),
            rules=tuple(per_rule),
        )


def _alive_lookup(values: ProbabilityAlive | None) -> Callable[[CustomerActivity], float | None]:
    if values is None:
        return lambda _: None
    if isinstance(values, Mapping):
        table = values
        return lambda activity: table.get(activity.customer_id)
    return values


# --- customer-feature classifier ---------------------------------------------------------------------


def _numpy() -> Any:
    return require("numpy", "analytics")


class FeatureKind(enum.Enum):
    """How a feature enters the model: a standardized number (or its log) or one-hot categories.

    ``LOG_NUMERIC`` standardizes log(1 + value) of a non-negative number instead: right-skewed
    counts and amounts (tenure, spend) often act on churn by their ratio rather than their
    difference, and the transform stays in the fitted model, so rows are predicted and explained
    in their own units.
    """

    NUMERIC = "numeric"
    LOG_NUMERIC = "log_numeric"
    CATEGORICAL = "categorical"


@attrs.frozen(kw_only=True)
class FeatureSpec:
    """A model input: the ``name`` of a row key and how it is encoded.

    For numeric features ``center``/``scale`` standardize the value (log(1 + value) for log-numeric
    ones; a missing value is the center, so it contributes nothing); for categorical ones ``levels``
    are the categories seen in fitting (an unseen one contributes nothing).
    """

    name: str
    kind: FeatureKind
    levels: tuple[str, ...] = ()
    center: float = 0.0
    scale: float = 1.0

    @property
    def columns(self) -> tuple[str, ...]:
        """The design-matrix column names of this feature."""
        if self.kind is FeatureKind.CATEGORICAL:
            return tuple(f"{self.name}={level}" for level in self.levels)
        return (self.name,)


@attrs.frozen(kw_only=True)
class FeatureContribution:
    """How much one feature moved the log-odds of churn for one customer (positive: more likely)."""

    feature: str
    value: Any
    log_odds: float


@attrs.frozen(kw_only=True)
class ChurnPrediction:
    """The probability of churn with each feature's contribution, largest in size first."""

    probability: float
    intercept: float
    contributions: tuple[FeatureContribution, ...]

    def to_dataframe(self) -> Any:
        """The contributions as a pandas DataFrame (feature, value, log_odds), largest first.

        Raises:
            MissingExtra: pandas is not installed (``pip install "crmcore[pandas]"``).
        """

        return require("pandas", "pandas").DataFrame(
            [attrs.asdict(c) for c in self.contributions], columns=["feature", "value", "log_odds"]
        )


@attrs.frozen(kw_only=True)
class ChurnClassifier:
    """A fitted L2-penalized logistic regression: churn log-odds = intercept + coefficients . x.

    ``coefficients`` follow the columns of ``features`` in order (see `FeatureSpec.columns`).
    """

    features: tuple[FeatureSpec, ...]
    intercept: float
    coefficients: tuple[float, ...]
    l2: float
    iterations: int
    log_likelihood: float

    @property
    def columns(self) -> tuple[str, ...]:
        """Every design-matrix column name, in coefficient order."""
        return tuple(c for f in self.features for c in f.columns)

    def coefficient(self, column: str) -> float:
        """The coefficient of ``column`` (``"tenure"`` or ``"contract=Two year"``).

        Raises:
            ValidationError: an unknown column (the message lists the valid ones).
        """
        columns = self.columns
        if column not in columns:
            raise ValidationError("column", f"{column!r} is not one of {', '.join(map(repr, columns))}")
        return self.coefficients[columns.index(column)]

    def to_dataframe(self) -> Any:
        """The intercept (column ``"(intercept)"``) then each coefficient, as a pandas DataFrame.

        Raises:
            MissingExtra: pandas is not installed (``pip install "crmcore[pandas]"``).
        """

        return require("pandas", "pandas").DataFrame(
            {
                "column": ["(intercept)", *self.columns],
                "coefficient": [self.intercept, *self.coefficients],
            }
        )

    def _encode(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        return _design(_numpy(), self.features, rows)

    def predict(self, row: Mapping[str, Any]) -> ChurnPrediction:
        """The churn probability of one customer, explained per feature.

        Raises:
            ValidationError: a negative value of a log-numeric feature.
        """
        x = self._encode([row])[0]
        contributions = []
        start = 0
        for spec in self.features:
            width = len(spec.columns)
            share = sum(float(x[start + k]) * self.coefficients[start + k] for k in range(width))
            contributions.append(
                FeatureContribution(feature=spec.name, value=row.get(spec.name), log_odds=share)
            )
            start += width
        z = self.intercept + sum(c.log_odds for c in contributions)
        contributions.sort(key=lambda c: -abs(c.log_odds))
        return ChurnPrediction(
            probability=_sigmoid(z), intercept=self.intercept, contributions=tuple(contributions)
        )

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        """Churn probabilities of many customers at once (vectorized).

        Raises:
            ValidationError: a negative value of a log-numeric feature.
        """
        np = _numpy()
        x = self._encode(rows)
        z = self.intercept + x @ np.asarray(self.coefficients, dtype=float)
        return [float(p) for p in 0.5 * (1.0 + np.tanh(0.5 * z))]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _feature_number(value: Any, path: str) -> float:
    """A numeric feature's value as a finite float; anything else is a `ValidationError` at ``path``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(path, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValidationError(path, f"must be a finite number, got {value!r}")
    return number


def _log1p(value: float, path: str) -> float:
    """log(1 + value) of a log-numeric feature's value, which must not be negative."""
    if value < 0:
        raise ValidationError(path, f"must be at least 0 for a log_numeric feature, got {value!r}")
    return math.log1p(value)


def _design(np: Any, features: Sequence[FeatureSpec], rows: Sequence[Mapping[str, Any]]) -> Any:
    n = len(rows)
    blocks = []
    for spec in features:
        values: list[Any] = [row.get(spec.name) for row in rows]
        if spec.kind is FeatureKind.NUMERIC:
            col = np.array(
                [spec.center if _is_missing(v) else _feature_number(v, spec.name) for v in values],
                dtype=float,
            )
            blocks.append(((col - spec.center) / spec.scale).reshape(n, 1))
        elif spec.kind is FeatureKind.LOG_NUMERIC:
            logs = [
                spec.center if _is_missing(v) else _log1p(_feature_number(v, spec.name), spec.name)
                for v in values
            ]
            col = np.array(logs, dtype=float)
            blocks.append(((col - spec.center) / spec.scale).reshape(n, 1))
        else:
            index = {level: k for k, level in enumerate(spec.levels)}
            block = np.zeros((n, len(spec.levels)))
            for i, v in enumerate(values):
                k = index.get(str(v)) if not _is_missing(v) else None
                if k is not None:
                    block[i, k] = 1.0
            blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((n, 0))


def fit_churn_classifier(
    rows: Sequence[Mapping[str, Any]],
    outcomes: Sequence[bool],
    features: Mapping[str, FeatureKind | str],
    *,
    l2: float = 1.0,
    max_iterations: int = 50,
    tolerance: float = 1e-8,
) -> ChurnClassifier:
    """Fit churn (True) against customer features by Newton's method with an L2 penalty.

    Numeric features are standardized (missing values take the mean), log-numeric ones the same
    after log(1 + value); categorical ones are one-hot encoded with every level kept (the penalty
    makes that identifiable, and each level's coefficient reads directly). The intercept is not
    penalized.

    Args:
        rows: one mapping per customer, feature name to value.
        outcomes: whether each customer churned.
        features: feature name to `FeatureKind` (or its value: ``"numeric"``, ``"log_numeric"``,
            ``"categorical"``).
        l2: penalty on the sum of squared coefficients; positive, since every category level is kept
            (1e-3 is close to plain maximum likelihood; much smaller values may not converge when
            categorical columns repeat each other, e.g. several "No internet service" levels).

    Raises:
        ValidationError: mismatched lengths, one outcome class only, bad kinds, a constant feature or
            a negative value of a log-numeric one.
        CrmError: numpy is missing, or Newton's method did not converge.
    """
    np = _numpy()
    errors: list[FieldError] = []
    if len(rows) != len(outcomes):
        errors.append(FieldError("outcomes", f"has {len(outcomes)} items for {len(rows)} rows"))
    y = np.array([bool(o) for o in outcomes], dtype=float)
    if len(y) and (y.min() == y.max()):
        errors.append(FieldError("outcomes", "must contain both churned and retained customers"))
    if not features:
        errors.append(FieldError("features", "must name at least one feature"))
    if not (l2 > 0 and math.isfinite(l2)):
        errors.append(FieldError("l2", f"must be a positive number (all levels are kept), got {l2!r}"))
    specs: list[FeatureSpec] = []
    for name, raw in features.items():
        try:
            kind = one_of(FeatureKind)(raw, f"features.{name}")
        except ValidationError as exc:
            errors.extend(exc.errors)
            continue
        values: list[Any] = [row.get(name) for row in rows]
        present = [v for v in values if not _is_missing(v)]
        if kind is not FeatureKind.CATEGORICAL:
            try:
                nums = np.array([float(v) for v in present], dtype=float)
            except (TypeError, ValueError):
                errors.append(FieldError(f"features.{name}", "has values that are not numbers"))
                continue
            if not np.all(np.isfinite(nums)):
                errors.append(FieldError(f"features.{name}", "has infinite values"))
                continue
            if kind is FeatureKind.LOG_NUMERIC:
                lowest = float(nums.min()) if len(nums) else 0.0
                if lowest < 0:
                    reason = f"has negative values (log_numeric needs 0 or more), the lowest {lowest!r}"
                    errors.append(FieldError(f"features.{name}", reason))
                    continue
                nums = np.log1p(nums)
            scale = float(nums.std()) if len(nums) else 0.0
            if scale == 0.0:
                errors.append(FieldError(f"features.{name}", "is constant (or missing) in every row"))
                continue
            specs.append(FeatureSpec(name=name, kind=kind, center=float(nums.mean()), scale=scale))
        else:
            levels = tuple(sorted({str(v) for v in present}))
            if len(levels) < 2:
                errors.append(FieldError(f"features.{name}", "has fewer than two categories"))
                continue
            specs.append(FeatureSpec(name=name, kind=kind, levels=levels))
    if errors:
        raise ValidationError.from_errors(errors)
    x = np.hstack([np.ones((len(rows), 1)), _design(np, specs, rows)])
    width = x.shape[1]
    penalty = np.full(width, float(l2))
    penalty[0] = 0.0
    beta = np.zeros(width)
    iteration, converged = 0, False
    while not converged and iteration < max_iterations:
        iteration += 1
        z = x @ beta
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow
        gradient = x.T @ (y - p) - penalty * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            raise CrmError("the churn classifier's Newton step is singular (raise l2)") from None
        beta = beta + step
        converged = float(np.max(np.abs(step))) < tolerance
    if not converged:
        raise CrmError(
            f"the churn classifier did not converge in {max_iterations} Newton steps "
            "(separable data? raise l2 or max_iterations)"
        )
    z = x @ beta
    log_likelihood = float(np.sum(y * z - np.logaddexp(0.0, z)))
    return ChurnClassifier(
        features=tuple(specs),
        intercept=float(beta[0]),
        coefficients=tuple(float(b) for b in beta[1:]),
        l2=float(l2),
        iterations=iteration,
        log_likelihood=log_likelihood,
    )


def auc(scores: Sequence[float], outcomes: Sequence[bool]) -> float:
    """The area under the ROC curve by the rank (Mann-Whitney) formula, ties counted half.

    The chance that a random positive scores above a random negative.

    Raises:
        ValidationError: mismatched lengths or only one outcome class.
    """
    if len(scores) != len(outcomes):
        raise ValidationError("outcomes", f"has {len(outcomes)} items for {len(scores)} scores")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = average
        i = j + 1
    positives = sum(1 for o in outcomes if o)
    negatives = len(outcomes) - positives
    if not positives or not negatives:
        raise ValidationError("outcomes", "must contain both classes")
    rank_sum = sum(r for r, o in zip(ranks, outcomes, strict=True) if o)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
