"""The `Opportunity` aggregate: a deal with an account, moving through the stages of a pipeline.

``stage``, ``probability`` and ``forecast_category`` are set by the stage machine
(`crmcore.pipeline.StageMachine`), which also appends a `StageChange` to ``stage_history`` on every
move, so velocity metrics and forecasts read how long each deal spent where.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.money import Money, check_quantity
from crmcore.validation import (
    a_date,
    check_on_setattr,
    checked,
    custom_fields,
    instance_of,
    one_of,
    optional,
    run_checks,
    tags_check,
    text,
    tuple_of,
    utc_datetime,
    version_number,
)

__all__ = [
    "ForecastCategory",
    "LineItem",
    "OPPORTUNITY_FIELDS",
    "Opportunity",
    "StageChange",
]


class ForecastCategory(enum.Enum):
    """How a deal counts in a forecast: ``pipeline`` < ``best_case`` < ``commit``; ``closed`` (won),
    ``omitted`` (lost or left out)."""

    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    CLOSED = "closed"
    OMITTED = "omitted"


def _probability(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationError(path, f"must be a whole percentage from 0 to 100, got {value!r}")
    return value


def _duration(value: Any, path: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise ValidationError(path, f"must be a timedelta, not {type(value).__name__}")
    if value < timedelta(0):
        raise ValidationError(path, "must not be negative")
    return value


@attrs.frozen(kw_only=True)
class LineItem:
    """A product on a deal: quantity x unit price less a discount amount."""

    product: str = checked(text(max_length=300, required=True))
    quantity: Decimal = checked(check_quantity, default=Decimal(1))
    unit_price: Money = checked(instance_of(Money))
    discount: Money | None = checked(optional(instance_of(Money)), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.unit_price.amount < 0:
            raise ValidationError("unit_price", "must not be negative")
        if self.discount is not None and (
            self.discount.currency != self.unit_price.currency
            or self.discount.amount < 0
            or self.discount > self.unit_price * self.quantity
        ):
            raise ValidationError(
                "discount", "must be in the unit price's currency, from 0 to the line's gross"
            )

    @property
    def total(self) -> Money:
        """Quantity x unit price less the discount (not rounded)."""
        gross = self.unit_price * self.quantity
        return gross if self.discount is None else gross - self.discount


@attrs.frozen(kw_only=True)
class StageChange:
    """A deal moved from ``from_stage`` to ``to_stage`` at ``at`` by ``by``, after ``time_in_stage``
    in the previous stage (wall clock)."""

    at: datetime = checked(utc_datetime)
    from_stage: str = checked(text(max_length=100, required=True))
    to_stage: str = checked(text(max_length=100, required=True))
    time_in_stage: timedelta = checked(_duration)
    by: str | None = checked(optional(check_id), default=None)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Opportunity:
    """A deal with ``customer_id`` (the account) in ``pipeline`` at ``stage``.

    ``amount`` is the deal's value (derived from ``line_items`` when there are any: see
    `line_total`). Move stages with the stage machine, which keeps ``probability``,
    ``forecast_category`` and ``stage_history`` right; ``stage_entered_at`` is when the deal
    entered its current stage.
    """

    name: str = checked(text(max_length=300, required=True))
    customer_id: str = checked(check_id)
    pipeline: str = checked(text(max_length=100, required=True))
    stage: str = checked(text(max_length=100, required=True))
    id: str = checked(check_id, factory=new_id)
    amount: Money | None = checked(optional(instance_of(Money)), default=None)
    close_date: date | None = checked(optional(a_date), default=None)
    owner: str | None = checked(optional(check_id), default=None)
    contact_id: str | None = checked(optional(check_id), default=None)
    lead_id: str | None = checked(optional(check_id), default=None)
    probability: int = checked(_probability, default=0)
    forecast_category: ForecastCategory = checked(one_of(ForecastCategory), default=ForecastCategory.PIPELINE)
    next_step: str = checked(text(max_length=500), default="")
    lost_reason: str = checked(text(max_length=500), default="")
    source: str = checked(text(max_length=100), default="")
    line_items: Sequence[LineItem] = checked(tuple_of(instance_of(LineItem)), default=())
    stage_history: Sequence[StageChange] = checked(tuple_of(instance_of(StageChange)), default=())
    stage_entered_at: datetime | None = checked(optional(utc_datetime), default=None)
    closed_at: datetime | None = checked(optional(utc_datetime), default=None)
    won: bool | None = checked(optional(instance_of(bool)), default=None)
    """True won, False lost, None open; set by the stage machine from the stage's flags."""
    tags: Sequence[str] = checked(tags_check, default=())
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless money, history and closing agree (stores call it)."""
        errors: list[FieldError] = []
        currency = self.amount.currency if self.amount is not None else None
        if self.amount is not None and self.amount.amount < 0:
            errors.append(FieldError("amount", "must not be negative"))
        for i, item in enumerate(self.line_items):
            if currency is not None and item.unit_price.currency != currency:
                errors.append(
                    FieldError(
                        f"line_items[{i}].unit_price",
                        f"is in {item.unit_price.currency}, the deal in {currency}",
                    )
                )
            currency = currency or item.unit_price.currency
        history = self.stage_history
        for i in range(1, len(history)):
            if history[i].at < history[i - 1].at:
                errors.append(FieldError(f"stage_history[{i}].at", "is earlier than the change before it"))
            if history[i].from_stage != history[i - 1].to_stage:
                errors.append(
                    FieldError(f"stage_history[{i}].from_stage", "does not follow the change before it")
                )
        if history and history[-1].to_stage != self.stage:
            errors.append(
                FieldError("stage", f"is {self.stage!r}, the last change went to {history[-1].to_stage!r}")
            )
        if (self.won is None) != (self.closed_at is None):
            errors.append(FieldError("closed_at", "and won are set together (a closed deal is won or lost)"))
        if self.won is False and not self.lost_reason:
            errors.append(FieldError("lost_reason", "is required for a lost deal"))
        if errors:
            raise ValidationError.from_errors(errors)

    @property
    def is_open(self) -> bool:
        """Whether the deal is neither won nor lost."""
        return self.won is None

    @property
    def line_total(self) -> Money | None:
        """The sum of the line items, rounded to minor units (None without line items)."""
        if not self.line_items:
            return None
        total = Money.zero(self.line_items[0].unit_price.currency)
        for item in self.line_items:
            total = total + item.total
        return total.rounded()

    @property
    def weighted_amount(self) -> Money | None:
        """``amount`` x ``probability`` %, rounded (None without an amount)."""
        if self.amount is None:
            return None
        return (self.amount * (Decimal(self.probability) / Decimal(100))).rounded()


def _money_amount(o: Opportunity) -> Money | None:
    return o.amount


OPPORTUNITY_FIELDS = FieldSet.of(
    "Opportunity",
    [
        *record_fields(),
        FieldDef("name", FieldType.TEXT, lambda o: o.name, nullable=False),
        FieldDef("customer_id", FieldType.TEXT, lambda o: o.customer_id, nullable=False),
        FieldDef("pipeline", FieldType.TEXT, lambda o: o.pipeline, nullable=False),
        FieldDef("stage", FieldType.TEXT, lambda o: o.stage, nullable=False),
        FieldDef("amount", FieldType.MONEY, _money_amount),
        FieldDef("close_date", FieldType.DATE, lambda o: o.close_date),
        FieldDef("owner", FieldType.TEXT, lambda o: o.owner),
        FieldDef("contact_id", FieldType.TEXT, lambda o: o.contact_id),
        FieldDef("lead_id", FieldType.TEXT, lambda o: o.lead_id),
        FieldDef("probability", FieldType.INTEGER, lambda o: o.probability, nullable=False),
        enum_field("forecast_category", ForecastCategory),
        FieldDef("source", FieldType.TEXT, lambda o: o.source, nullable=False),
        FieldDef("stage_entered_at", FieldType.DATETIME, lambda o: o.stage_entered_at),
        FieldDef("closed_at", FieldType.DATETIME, lambda o: o.closed_at),
        FieldDef("won", FieldType.BOOLEAN, lambda o: o.won),
        FieldDef("tags", FieldType.TEXT_LIST, lambda o: o.tags, nullable=False),
    ],
    json={"custom": lambda o: o.custom},
)
"""The fields of `Opportunity` that conditions, ``find``, ``order_by`` and stage requirements can use."""
