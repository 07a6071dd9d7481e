"""Quotes: line and document totals with half-even rounding per line, currencies, statuses and transitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.conditions import Field, evaluate
from crmcore.errors import TransitionError, ValidationError
from crmcore.money import Money, minor_units
from crmcore.pipeline.quote import QUOTE_FIELDS, Quote, QuoteLine, QuoteStatus
from crmcore.serialization import structure, unstructure
from crmcore.testing import strategies as cst

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
D = Decimal


def _line(price: str, currency: str = "EUR", **kw: Any) -> QuoteLine:
    return QuoteLine(product=kw.pop("product", "Widget"), unit_price=Money(price, currency), **kw)


def _quote(*lines: QuoteLine, currency: str = "EUR", **kw: Any) -> Quote:
    return Quote(opportunity_id="o1", customer_id="c1", currency=currency, lines=list(lines), **kw)


def _totals(q: Quote) -> tuple[str, str, str, str]:
    return (
        str(q.subtotal.amount),
        str(q.discount_total.amount),
        str(q.tax_total.amount),
        str(q.total.amount),
    )


# --- totals and rounding ----------------------------------------------------------------------------


def test_three_at_0_335_with_19_percent_tax_rounds_half_even() -> None:
    """3 x 0.335 = 1.005 rounds half-even to 1.00 (not 1.01); tax is 19 % of 1.00; total 1.19 EUR."""
    q = _quote(_line("0.335", quantity=D(3), tax_rate=D(19)))
    assert _totals(q) == ("1.00", "0.00", "0.19", "1.19")
    assert q.total == Money("1.19", "EUR")


def test_discount_and_tax_on_a_line() -> None:
    """2 x 49.99 less 15 %: net 84.983 -> 84.98, discount 15.00, tax 19 % of 84.98 = 16.1462 -> 16.15."""
    line = _line("49.99", quantity=D(2), discount_percent=D(15), tax_rate=D(19))
    assert (line.gross, line.net, line.discount, line.tax) == (
        Money("99.98", "EUR"),
        Money("84.98", "EUR"),
        Money("15.00", "EUR"),
        Money("16.15", "EUR"),
    )
    q = _quote(line, _line("10", tax_rate=D(7)))
    assert _totals(q) == ("109.98", "15.00", "16.85", "111.83")


def test_ties_round_to_the_even_cent_on_net_and_tax() -> None:
    """Nets of 0.125 and 0.135 round to 0.12 and 0.14; a tax of 0.175 to 0.18 and 0.105 to 0.10."""
    assert _line("0.125").net == Money("0.12", "EUR")
    assert _line("0.135").net == Money("0.14", "EUR")
    assert _line("2.50", tax_rate=D(7)).tax == Money("0.18", "EUR")
    assert _line("1.50", tax_rate=D(7)).tax == Money("0.10", "EUR")


def test_tax_is_charged_on_each_rounded_line_net() -> None:
    """Two lines of 0.125 at 10 %: each net 0.12, tax 0.01; totals sum the printed lines (0.24 + 0.02)."""
    q = _quote(_line("0.125", tax_rate=D(10)), _line("0.125", tax_rate=D(10)))
    assert _totals(q) == ("0.24", "0.00", "0.02", "0.26")


def test_zero_decimal_currency_rounds_to_whole_yen() -> None:
    """JPY has no minor unit: 3 x 333.5 = 1000.5 -> 1000 yen, 10 % tax 100, total 1100, all whole."""
    q = _quote(_line("333.5", "JPY", quantity=D(3), tax_rate=D(10)), currency="JPY")
    assert _totals(q) == ("1000", "0", "100", "1100")
    assert _line("0.5", "JPY").net == Money("0", "JPY") and _line("1.5", "JPY").net == Money("2", "JPY")


def test_three_decimal_currency_keeps_three_places() -> None:
    """KWD has three minor digits: 1 x 1.2345 at 5 % gives 1.234 (tie to even) and tax 0.062."""
    q = _quote(_line("1.2345", "KWD", tax_rate=D(5)), currency="KWD")
    assert _totals(q) == ("1.234", "0.000", "0.062", "1.296")


def test_full_discount_and_empty_quote_total_zero() -> None:
    """A 100 % discount leaves nothing to tax; a quote without lines totals zero in its currency."""
    q = _quote(_line("80", discount_percent=D(100), tax_rate=D(19)))
    assert _totals(q) == ("80.00", "80.00", "0.00", "0.00")
    assert _totals(_quote()) == ("0.00", "0.00", "0.00", "0.00")
    assert str(_quote(currency="JPY").total.amount) == "0"


def test_mixed_currencies_are_refused_naming_each_line() -> None:
    """A line in another currency than the quote's is a ValidationError naming every such line."""
    with pytest.raises(ValidationError) as caught:
        _quote(_line("1", "USD"), _line("1"), _line("1", "JPY"))
    assert [(e.path, e.reason) for e in caught.value.errors] == [
        ("lines[0].unit_price", "is in USD, the quote in EUR"),
        ("lines[2].unit_price", "is in JPY, the quote in EUR"),
    ]


def test_bad_lines_report_every_problem_at_once() -> None:
    """Non-positive quantity, percentages outside 0-100, floats and empty products are reported together."""
    with pytest.raises(ValidationError) as caught:
        QuoteLine(
            product=" ",
            quantity=D(0),
            unit_price=Money("1", "EUR"),
            discount_percent=D(101),
            tax_rate=0.19,  # type: ignore[arg-type]
        )
    assert [e.path for e in caught.value.errors] == ["product", "quantity", "discount_percent", "tax_rate"]
    assert "float" in str(caught.value)
    with pytest.raises(ValidationError, match="must not be negative"):
        _line("-1")
    with pytest.raises(ValidationError, match="below 10"):
        _line("1000000000", quantity=D(10) ** 7)
    with pytest.raises(ValidationError, match="currency"):
        Quote(opportunity_id="o1", customer_id="c1", currency="eur")


# --- statuses and transitions -------------------------------------------------------------------------


def _draft(**kw: Any) -> Quote:
    return _quote(_line("100", tax_rate=D(19)), expires_on=date(2026, 3, 31), **kw)


def test_happy_path_draft_sent_accepted() -> None:
    """send then accept set the status and its time; the original quote is unchanged (pure methods)."""
    draft = _draft()
    sent = draft.send(T0)
    accepted = sent.accept(T0 + timedelta(days=3))
    assert draft.status is QuoteStatus.DRAFT and draft.sent_at is None
    assert (sent.status, sent.sent_at) == (QuoteStatus.SENT, T0)
    assert (accepted.status, accepted.accepted_at, accepted.sent_at) == (
        QuoteStatus.ACCEPTED,
        T0 + timedelta(days=3),
        T0,
    )
    assert accepted.accepted and accepted.status.final and not sent.accepted
    assert accepted.opportunity_id == "o1" and accepted.total == Money("119.00", "EUR")


def test_reject_keeps_the_reason_and_expire_needs_the_day_after() -> None:
    """A rejection records its reason; expiry is refused on expires_on and allowed the day after."""
    sent = _draft().send(T0)
    rejected = sent.reject(T0 + timedelta(hours=1), "too expensive")
    assert (rejected.status, rejected.rejection_reason) == (QuoteStatus.REJECTED, "too expensive")
    last_day = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    with pytest.raises(TransitionError, match="valid through 2026-03-31"):
        sent.expire(last_day)
    expired = sent.expire(last_day + timedelta(minutes=1))
    assert (expired.status, expired.expired_at) == (QuoteStatus.EXPIRED, datetime(2026, 4, 1, tzinfo=UTC))


def test_the_expiry_day_is_read_in_the_zone_of_the_time_given() -> None:
    """April 1st 01:00 in UTC+2 is still March 31st in UTC: expiry follows the zone the caller passes."""
    sent = _draft().send(T0)
    berlin = timezone(timedelta(hours=2))
    assert sent.expire(datetime(2026, 4, 1, 1, 0, tzinfo=berlin)).status is QuoteStatus.EXPIRED
    with pytest.raises(TransitionError):
        sent.expire(datetime(2026, 4, 1, 1, 0, tzinfo=berlin).astimezone(UTC))


@pytest.mark.parametrize(
    ("move", "message"),
    [
        (lambda q: q.accept(T0), "only a sent quote can be accepted"),
        (lambda q: q.reject(T0), "only a sent quote can be rejected"),
        (lambda q: q.expire(T0 + timedelta(days=60)), "only a sent quote can be expired"),
    ],
)
def test_a_draft_cannot_be_decided(move: Any, message: str) -> None:
    """Accept, reject and expire need a sent quote; on a draft each raises TransitionError saying so."""
    with pytest.raises(TransitionError, match=message):
        move(_draft())


def test_final_statuses_do_not_move() -> None:
    """An accepted, rejected or expired quote can be neither sent again nor decided again."""
    sent = _draft().send(T0)
    for final in (
        sent.accept(T0),
        sent.reject(T0),
        sent.expire(datetime(2026, 4, 2, tzinfo=UTC)),
    ):
        with pytest.raises(TransitionError, match="only a draft can be sent"):
            final.send(T0)
        for move in (final.accept, final.reject):
            with pytest.raises(TransitionError, match=f"the quote is {final.status.value}"):
                move(T0 + timedelta(days=1))


def test_refused_send_lists_every_unmet_requirement() -> None:
    """Sending an empty quote past its expiry date names both problems in one TransitionError."""
    with pytest.raises(TransitionError) as caught:
        _quote(expires_on=date(2026, 3, 1)).send(T0)
    assert caught.value.unmet == ("the quote has no lines", "it expires on 2026-03-01, before 2026-03-02")


def test_accepting_after_expiry_or_before_sending_is_refused() -> None:
    """A quote cannot be accepted after expires_on, nor decided at a time before it was sent."""
    sent = _draft().send(T0)
    with pytest.raises(TransitionError, match="expired on 2026-03-31"):
        sent.accept(datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    with pytest.raises(TransitionError, match="before it was sent"):
        sent.reject(T0 - timedelta(seconds=1))
    with pytest.raises(TransitionError, match="no expires_on"):
        _quote(_line("1")).send(T0).expire(T0 + timedelta(days=999))


def test_naive_times_are_refused() -> None:
    """Every transition refuses a naive datetime with a ValidationError on ``at``."""
    naive = datetime(2026, 3, 2, 9, 0)
    sent = _draft().send(T0)
    for move in (_draft().send, sent.accept, sent.reject, sent.expire):
        with pytest.raises(ValidationError, match="at"):
            move(naive)


def test_status_and_its_times_must_agree() -> None:
    """A quote built with a status but without its times (or with stray ones) is refused, all at once."""
    with pytest.raises(ValidationError) as caught:
        _draft(status=QuoteStatus.ACCEPTED, expired_at=T0, rejection_reason="x")
    assert [e.path for e in caught.value.errors] == [
        "sent_at",
        "accepted_at",
        "expired_at",
        "rejection_reason",
    ]
    with pytest.raises(ValidationError, match="earlier than sent_at"):
        _draft(status=QuoteStatus.REJECTED, sent_at=T0, rejected_at=T0 - timedelta(days=1))


def test_quote_fields_evaluate_totals_as_money() -> None:
    """QUOTE_FIELDS exposes the derived total as Money and the status by value, for conditions."""
    q = _draft().send(T0)
    assert evaluate(Field("total") == Money("119", "EUR"), q, QUOTE_FIELDS)
    assert evaluate((Field("status") == "sent") & (Field("opportunity_id") == "o1"), q, QUOTE_FIELDS)
    assert not evaluate(Field("total") > Money("1", "USD"), q, QUOTE_FIELDS)


# --- properties ------------------------------------------------------------------------------------------


def _half_even(value: Fraction, digits: int) -> Fraction:
    """An independent oracle: ``value`` rounded half to even at ``digits`` decimals, on exact fractions."""
    scaled = value * 10**digits
    low = scaled.numerator // scaled.denominator
    rest = scaled - low
    up = rest > Fraction(1, 2) or (rest == Fraction(1, 2) and low % 2 == 1)
    return Fraction(low + up, 10**digits)


@settings(max_examples=300, deadline=None)
@given(quote=cst.quotes())
def test_totals_add_up_to_the_minor_unit(quote: Quote) -> None:
    """total == subtotal - discounts + tax exactly, every amount has the currency's minor units, and
    each line matches a fraction-based rounding oracle."""
    digits = minor_units(quote.currency)
    amounts = [quote.subtotal, quote.discount_total, quote.net_total, quote.tax_total, quote.total]
    assert quote.total == quote.subtotal - quote.discount_total + quote.tax_total
    for line in quote.lines:
        amounts += [line.gross, line.net, line.discount, line.tax, line.total]
        exact = Fraction(line.quantity) * Fraction(line.unit_price.amount)
        net = _half_even(exact * (100 - Fraction(line.discount_percent)) / 100, digits)
        assert Fraction(line.gross.amount) == _half_even(exact, digits)
        assert Fraction(line.net.amount) == net
        assert Fraction(line.tax.amount) == _half_even(net * Fraction(line.tax_rate) / 100, digits)
        assert Money.zero(quote.currency) <= line.discount <= line.gross
    for amount in amounts:
        assert amount.currency == quote.currency
        assert amount.amount.as_tuple().exponent == -digits


@settings(max_examples=100, deadline=None)
@given(quote=cst.quotes())
def test_quotes_round_trip_through_the_converter(quote: Quote) -> None:
    """structure(unstructure(q), Quote) == q for quotes in every status, lines and totals included."""
    data = unstructure(quote)
    back = structure(data, Quote)
    assert back == quote and back.total == quote.total
    assert data["status"] == quote.status.value


@given(status=st.sampled_from(QuoteStatus))
def test_only_accepted_rejected_and_expired_are_final(status: QuoteStatus) -> None:
    """QuoteStatus.final holds exactly for the three end states."""
    assert status.final == (status not in (QuoteStatus.DRAFT, QuoteStatus.SENT))
