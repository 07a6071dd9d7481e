"""The `Quote` aggregate: priced lines offered to a customer for an opportunity, with exact totals.

Rounding rule: each line's net (quantity x unit price less its discount percentage) and its tax
(the rounded net x the tax rate) are rounded half-even to the currency's minor units; a line's
discount is its rounded gross less its rounded net; every total is the sum of the lines' rounded
amounts. So each printed line recomputes from what is printed, the totals add up to the cent
(``total == subtotal - discount_total + tax_total`` exactly), and half-even rounding does not bias
long quotes upwards the way half-up does.

Statuses move ``draft -> sent -> accepted | rejected | expired`` through pure methods that
return a new quote (`Quote.send`, `Quote.accept`, `Quote.reject`, `Quote.expire`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from crmcore.conditions import FieldDef, FieldSet, FieldType, enum_field, record_fields
from crmcore.errors import FieldError, TransitionError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.money import MAX_AMOUNT, Money, check_currency, check_quantity, exact_decimal, minor_units
from crmcore.validation import (
    a_date,
    check_on_setattr,
    checked,
    custom_fields,
    instance_of,
    one_of,
    optional,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
    version_number,
)

__all__ = [
    "QUOTE_FIELDS",
    "Quote",
    "QuoteLine",
    "QuoteStatus",
]

_HUNDRED = Decimal(100)


class QuoteStatus(enum.Enum):
    """Where a quote stands: ``draft`` (being written), ``sent`` (the customer has it), then one
    of ``accepted``, ``rejected`` or ``expired`` (final)."""

    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """Whether no further move is possible (accepted, rejected or expired)."""
        return self in (QuoteStatus.ACCEPTED, QuoteStatus.REJECTED, QuoteStatus.EXPIRED)


def _percent(value: Any, path: str) -> Decimal:
    percent = exact_decimal(value, path)
    if not 0 <= percent <= _HUNDRED:
        raise ValidationError(path, f"must be a percentage from 0 to 100, got {value!r}")
    return percent


def _round(amount: Decimal, currency: str) -> Money:
    """``amount`` rounded half-even to ``currency``'s minor units."""
    return Money(amount.quantize(Decimal(1).scaleb(-minor_units(currency)), ROUND_HALF_EVEN), currency)


@attrs.frozen(kw_only=True)
class QuoteLine:
    """A product offered: ``quantity`` x ``unit_price``, less ``discount_percent``, plus ``tax_rate``.

    Both percentages are from 0 to 100 (``Decimal("19")`` is 19 %). The amounts below follow the
    module's rounding rule: ``net`` and ``tax`` are rounded, ``discount = gross - net``.
    """

    product: str = checked(text(max_length=300, required=True))
    quantity: Decimal = checked(check_quantity, default=Decimal(1))
    unit_price: Money = checked(instance_of(Money))
    discount_percent: Decimal = checked(_percent, default=Decimal(0))
    tax_rate: Decimal = checked(_percent, default=Decimal(0))

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.unit_price.amount < 0:
            raise ValidationError("unit_price", "must not be negative")
        if self.quantity * self.unit_price.amount >= MAX_AMOUNT:
            raise ValidationError("quantity", "x unit price must stay below 10^15")

    @property
    def currency(self) -> str:
        """The unit price's currency."""
        return self.unit_price.currency

    @property
    def gross(self) -> Money:
        """Quantity x unit price, rounded."""
        return _round(self.quantity * self.unit_price.amount, self.currency)

    @property
    def net(self) -> Money:
        """Quantity x unit price x (1 - discount %), rounded from the exact product."""
        exact = self.quantity * self.unit_price.amount * (_HUNDRED - self.discount_percent) / _HUNDRED
        return _round(exact, self.currency)

    @property
    def discount(self) -> Money:
        """What the discount takes off: ``gross - net`` (never negative)."""
        return self.gross - self.net

    @property
    def tax(self) -> Money:
        """The rounded net x the tax rate, rounded (tax is charged on the amount the customer sees)."""
        return _round(self.net.amount * self.tax_rate / _HUNDRED, self.currency)

    @property
    def total(self) -> Money:
        """Net plus tax."""
        return self.net + self.tax


@attrs.define(kw_only=True, on_setattr=check_on_setattr)
class Quote:
    """Priced lines in one ``currency`` offered to ``customer_id`` for ``opportunity_id``.

    Valid through ``expires_on`` (inclusive). Each status after ``draft`` has its time:
    ``sent_at`` (kept once sent), and ``accepted_at``, ``rejected_at`` (with
    ``rejection_reason``) or ``expired_at``. Change lines while the quote is a draft; once sent,
    write a new quote instead, so the record shows what the customer saw.
    """

    opportunity_id: str = checked(check_id)
    customer_id: str = checked(check_id)
    currency: str = checked(check_currency)
    id: str = checked(check_id, factory=new_id)
    number: str = checked(text(max_length=64), default="")
    """The host's quote number (``Q-2026-0042``); free text."""
    lines: Sequence[QuoteLine] = checked(tuple_of(instance_of(QuoteLine)), default=())
    expires_on: date | None = checked(optional(a_date), default=None)
    """Last day the offer holds; None: until withdrawn (such a quote cannot expire)."""
    status: QuoteStatus = checked(one_of(QuoteStatus), default=QuoteStatus.DRAFT)
    sent_at: datetime | None = checked(optional(utc_datetime), default=None)
    accepted_at: datetime | None = checked(optional(utc_datetime), default=None)
    rejected_at: datetime | None = checked(optional(utc_datetime), default=None)
    rejection_reason: str = checked(text(max_length=500), default="")
    expired_at: datetime | None = checked(optional(utc_datetime), default=None)
    custom: dict[str, Any] = checked(custom_fields, factory=dict)
    created_at: datetime | None = checked(optional(utc_datetime), default=None)
    updated_at: datetime | None = checked(optional(utc_datetime), default=None)
    version: int = checked(version_number, default=0)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Raise `ValidationError` unless currencies, status and its times agree (stores call it)."""
        errors: list[FieldError] = [
            FieldError(f"lines[{i}].unit_price", f"is in {line.currency}, the quote in {self.currency}")
            for i, line in enumerate(self.lines)
            if line.currency != self.currency
        ]
        status = self.status
        expected = {
            "sent_at": status is not QuoteStatus.DRAFT,
            "accepted_at": status is QuoteStatus.ACCEPTED,
            "rejected_at": status is QuoteStatus.REJECTED,
            "expired_at": status is QuoteStatus.EXPIRED,
        }
        for name, wanted in expected.items():
            present = getattr(self, name) is not None
            if wanted and not present:
                errors.append(FieldError(name, f"is required for a {status.value} quote"))
            elif present and not wanted:
                errors.append(FieldError(name, f"must be empty for a {status.value} quote"))
        if self.rejection_reason and status is not QuoteStatus.REJECTED:
            errors.append(FieldError("rejection_reason", "is only for rejected quotes"))
        decided = self.accepted_at or self.rejected_at or self.expired_at
        if self.sent_at is not None and decided is not None and decided < self.sent_at:
            errors.append(FieldError(f"{status.value}_at", "is earlier than sent_at"))
        if errors:
            raise ValidationError.from_errors(errors)

    # --- totals ---

    @property
    def subtotal(self) -> Money:
        """The sum of the lines' rounded gross amounts (before discounts and tax)."""
        return self._sum(lambda line: line.gross)

    @property
    def discount_total(self) -> Money:
        """The sum of the lines' discounts."""
        return self._sum(lambda line: line.discount)

    @property
    def net_total(self) -> Money:
        """``subtotal - discount_total``: the sum of the lines' rounded nets."""
        return self._sum(lambda line: line.net)

    @property
    def tax_total(self) -> Money:
        """The sum of the lines' rounded taxes."""
        return self._sum(lambda line: line.tax)

    @property
    def total(self) -> Money:
        """What the customer pays: ``subtotal - discount_total + tax_total``."""
        return self.net_total + self.tax_total

    def _sum(self, amount: Any) -> Money:
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + amount(line)
        return _round(total.amount, self.currency)  # a zero gets the currency's exponent too

    # --- transitions (pure: each returns a new quote) ---

    @property
    def accepted(self) -> bool:
        """Whether the customer accepted the quote (the stage machine may then move the deal)."""
        return self.status is QuoteStatus.ACCEPTED

    def send(self, at: datetime) -> Quote:
        """This quote sent to the customer at ``at``.

        Raises:
            ValidationError: ``at`` is naive.
            TransitionError: the quote is not a draft, has no lines, or ``expires_on`` is before
                ``at``'s date (all unmet requirements listed).
        """
        when = utc_datetime(at, "at")
        unmet: list[str] = []
        if self.status is not QuoteStatus.DRAFT:
            unmet.append(f"the quote is {self.status.value}, only a draft can be sent")
        if not self.lines:
            unmet.append("the quote has no lines")
        if self.expires_on is not None and at.date() > self.expires_on:
            unmet.append(f"it expires on {self.expires_on.isoformat()}, before {at.date().isoformat()}")
        if unmet:
            raise TransitionError(f"quote {self.id!r} cannot be sent", unmet)
        return attrs.evolve(self, status=QuoteStatus.SENT, sent_at=when)

    def accept(self, at: datetime) -> Quote:
        """This quote accepted by the customer at ``at`` (on or before ``expires_on``).

        ``expires_on`` is compared with ``at``'s date in ``at``'s own time zone: pass the time
        in the zone the offer was made in.

        Raises:
            ValidationError: ``at`` is naive.
            TransitionError: the quote is not sent, ``at`` is before it was sent, or after the
                day it expires.
        """
        when = self._deciding(at, "accepted")
        if self.expires_on is not None and at.date() > self.expires_on:
            raise TransitionError(
                f"quote {self.id!r} cannot be accepted",
                [f"it expired on {self.expires_on.isoformat()}; send a new quote"],
            )
        return attrs.evolve(self, status=QuoteStatus.ACCEPTED, accepted_at=when)

    def reject(self, at: datetime, reason: str = "") -> Quote:
        """This quote rejected by the customer at ``at``, for ``reason`` (optional free text).

        Raises:
            ValidationError: ``at`` is naive, or the reason is too long.
            TransitionError: the quote is not sent, or ``at`` is before it was sent.
        """
        when = self._deciding(at, "rejected")
        return attrs.evolve(self, status=QuoteStatus.REJECTED, rejected_at=when, rejection_reason=reason)

    def expire(self, at: datetime) -> Quote:
        """This quote expired at ``at``, which must be on a day after ``expires_on``.

        The day of ``at`` is taken in ``at``'s own time zone (see `accept`).

        Raises:
            ValidationError: ``at`` is naive.
            TransitionError: the quote is not sent, has no ``expires_on``, or is still valid at ``at``.
        """
        when = self._deciding(at, "expired")
        if self.expires_on is None:
            raise TransitionError(f"quote {self.id!r} cannot expire", ["it has no expires_on date"])
        if at.date() <= self.expires_on:
            raise TransitionError(
                f"quote {self.id!r} cannot expire",
                [f"it is valid through {self.expires_on.isoformat()} (the day of at: {at.date()})"],
            )
        return attrs.evolve(self, status=QuoteStatus.EXPIRED, expired_at=when)

    def _deciding(self, at: datetime, outcome: str) -> datetime:
        """``at`` in UTC, if a sent quote can get its final status ``outcome`` at that time."""
        when = utc_datetime(at, "at")
        if self.status is not QuoteStatus.SENT:
            raise TransitionError(
                f"quote {self.id!r} cannot be {outcome}",
                [f"the quote is {self.status.value}, only a sent quote can be {outcome}"],
            )
        assert self.sent_at is not None
        if when < self.sent_at:
            raise TransitionError(
                f"quote {self.id!r} cannot be {outcome}",
                [f"{when.isoformat()} is before it was sent ({self.sent_at.isoformat()})"],
            )
        return when


def _total(q: Quote) -> Money:
    return q.total


QUOTE_FIELDS = FieldSet.of(
    "Quote",
    [
        *record_fields(),
        FieldDef("number", FieldType.TEXT, lambda q: q.number, nullable=False),
        FieldDef("customer_id", FieldType.TEXT, lambda q: q.customer_id, nullable=False),
        FieldDef("opportunity_id", FieldType.TEXT, lambda q: q.opportunity_id, nullable=False),
        enum_field("status", QuoteStatus),
        FieldDef("currency", FieldType.TEXT, lambda q: q.currency, nullable=False),
        FieldDef("total", FieldType.MONEY, _total, nullable=False),
        FieldDef("expires_on", FieldType.DATE, lambda q: q.expires_on),
        FieldDef("sent_at", FieldType.DATETIME, lambda q: q.sent_at),
        FieldDef("accepted_at", FieldType.DATETIME, lambda q: q.accepted_at),
        FieldDef("rejected_at", FieldType.DATETIME, lambda q: q.rejected_at),
        FieldDef("expired_at", FieldType.DATETIME, lambda q: q.expired_at),
    ],
    json={"custom": lambda q: q.custom},
)
"""The fields of `Quote` that conditions, ``find`` and ``order_by`` can use (``total`` is Money)."""
