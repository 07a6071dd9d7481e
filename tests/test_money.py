"""Money: exact decimal amounts in one currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore import Money, ValidationError
from crmcore.money import CURRENCIES, minor_units
from crmcore.serialization import structure, unstructure
from crmcore.testing.strategies import money


def test_amounts_are_exact_decimals() -> None:
    """Strings and ints become exact Decimals; 0.1 + 0.2 is 0.3."""
    assert Money("0.1", "EUR") + Money("0.2", "EUR") == Money(Decimal("0.3"), "EUR")
    assert Money(5, "JPY").amount == Decimal(5)


@pytest.mark.parametrize("bad", [0.1, True, "abc", "NaN", "Infinity", None, [1]])
def test_bad_amounts_are_refused(bad: object) -> None:
    """Floats, booleans, non-numbers and non-finite values raise ValidationError on 'amount'."""
    with pytest.raises(ValidationError) as caught:
        Money(bad, "EUR")  # type: ignore[arg-type]
    assert caught.value.field == "amount"


def test_float_refusal_explains_itself() -> None:
    """A float is refused with a hint to pass a string."""
    with pytest.raises(ValidationError, match="pass a string"):
        Money(19.99, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["EURO", "eur", "XXX", "", 978])
def test_unknown_currencies_are_refused(bad: object) -> None:
    """Only ISO 4217 codes are currencies; lower case gets a hint."""
    with pytest.raises(ValidationError) as caught:
        Money("1", bad)  # type: ignore[arg-type]
    assert caught.value.field == "currency"
    if bad == "eur":
        assert "upper case" in caught.value.reason


def test_mixing_currencies_raises() -> None:
    """Adding, subtracting or comparing EUR with USD is an error naming both."""
    eur, usd = Money("1", "EUR"), Money("1", "USD")
    for op in (lambda: eur + usd, lambda: eur - usd, lambda: eur < usd, lambda: eur >= usd):
        with pytest.raises(ValidationError, match="EUR and USD"):
            op()


def test_arithmetic_and_rounding() -> None:
    """Multiplication by Decimal/int, negation, comparison and rounding to minor units."""
    price = Money("19.995", "EUR")
    assert (price * 2).amount == Decimal("39.990")
    assert (3 * price).amount == Decimal("59.985")
    assert -price == Money("-19.995", "EUR")
    assert price.rounded() == Money("20.00", "EUR")
    assert Money("2.5", "JPY").rounded() == Money("2", "JPY")  # banker's rounding
    assert Money("1.2345", "KWD").rounded().amount == Decimal("1.234")
    assert Money("1", "EUR") < Money("2", "EUR") <= Money("2", "EUR")
    assert Money.zero("USD") == Money("0", "USD")
    assert str(Money("1.50", "EUR")) == "1.50 EUR"
    with pytest.raises(TypeError):
        price * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        price + 1  # type: ignore[operator]


def test_minor_units() -> None:
    """Minor units follow ISO 4217."""
    assert (minor_units("EUR"), minor_units("JPY"), minor_units("BHD")) == (2, 0, 3)
    assert {"EUR", "USD", "JPY", "GBP", "CHF"} <= CURRENCIES


@given(money())
def test_money_round_trips_through_the_converter(m: Money) -> None:
    """Money unstructures to a string amount and comes back equal."""
    data = unstructure(m)
    assert isinstance(data["amount"], str)
    assert structure(data, Money) == m


@given(
    st.sampled_from(
        [
            {"amount": 1.5, "currency": "EUR"},
            {"amount": "1"},
            {"amount": "1", "currency": "EUR", "x": 1},
        ]
    )
)
def test_bad_money_payloads_name_the_field(data: dict[str, object]) -> None:
    """Structured Money with a float, a missing or an unknown key is refused by field."""
    with pytest.raises(ValidationError) as caught:
        structure(data, Money)
    assert caught.value.field in {"amount", "currency", "x"}
