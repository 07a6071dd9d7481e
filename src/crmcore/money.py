"""Money: a `Decimal` amount with an ISO 4217 currency; arithmetic never mixes currencies."""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from crmcore.errors import ValidationError

__all__ = [
    "CURRENCIES",
    "MAX_AMOUNT",
    "Money",
    "check_currency",
    "check_quantity",
    "exact_decimal",
    "minor_units",
]

# Active ISO 4217 codes and their minor units (digits after the decimal point).
_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        [
            "AED",
            "AFN",
            "ALL",
            "AMD",
            "ANG",
            "AOA",
            "ARS",
            "AUD",
            "AWG",
            "AZN",
            "BAM",
            "BBD",
            "BDT",
            "BGN",
            "BMD",
            "BND",
            "BOB",
            "BRL",
            "BSD",
            "BTN",
            "BWP",
            "BYN",
            "BZD",
            "CAD",
            "CDF",
            "CHF",
            "CNY",
            "COP",
            "CRC",
            "CUP",
            "CVE",
            "CZK",
            "DKK",
            "DOP",
            "DZD",
            "EGP",
            "ERN",
            "ETB",
            "EUR",
            "FJD",
            "FKP",
            "GBP",
            "GEL",
            "GHS",
            "GIP",
            "GMD",
            "GTQ",
            "GYD",
            "HKD",
            "HNL",
            "HTG",
            "HUF",
            "IDR",
            "ILS",
            "INR",
            "IRR",
            "JMD",
            "KES",
            "KGS",
            "KHR",
            "KPW",
            "KYD",
            "KZT",
            "LAK",
            "LBP",
            "LKR",
            "LRD",
            "LSL",
            "MAD",
            "MDL",
            "MKD",
            "MMK",
            "MNT",
            "MOP",
            "MRU",
            "MUR",
            "MVR",
            "MWK",
            "MXN",
            "MYR",
            "MZN",
            "NAD",
            "NGN",
            "NIO",
            "NOK",
            "NPR",
            "NZD",
            "PAB",
            "PEN",
            "PGK",
            "PHP",
            "PKR",
            "PLN",
            "QAR",
            "RON",
            "RSD",
            "RUB",
            "SAR",
            "SBD",
            "SCR",
            "SDG",
            "SEK",
            "SGD",
            "SHP",
            "SLE",
            "SOS",
            "SRD",
            "SSP",
            "STN",
            "SVC",
            "SYP",
            "SZL",
            "THB",
            "TJS",
            "TMT",
            "TOP",
            "TRY",
            "TTD",
            "TWD",
            "TZS",
            "UAH",
            "USD",
            "UYU",
            "UZS",
            "VES",
            "WST",
            "XCD",
            "YER",
            "ZAR",
            "ZMW",
            "ZWG",
        ],
        2,
    ),
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(
        ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"],
        3,
    ),
    "CLF": 4,
    "UYW": 4,
}
CURRENCIES: frozenset[str] = frozenset(_MINOR_UNITS)


def check_currency(code: object, field: str = "currency") -> str:
    """Return ``code`` if it is an active ISO 4217 currency code, else raise `ValidationError`."""
    if not isinstance(code, str):
        raise ValidationError(field, f"must be a currency code string, not {type(code).__name__}")
    if code not in _MINOR_UNITS:
        hint = " (codes are upper case)" if code.upper() in _MINOR_UNITS else ""
        raise ValidationError(field, f"{code!r} is not an ISO 4217 currency code{hint}")
    return code


def minor_units(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (2 for EUR, 0 for JPY, 3 for KWD)."""
    return _MINOR_UNITS[check_currency(currency)]


MAX_AMOUNT = Decimal(10) ** 15
"""Amounts stay below a quadrillion, so any total in minor units fits a 64-bit integer column."""


def _to_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError(
            "amount",
            f"must be a Decimal, int or numeric string, not {type(value).__name__}"
            + (" (floats are inexact: pass a string such as '19.99')" if isinstance(value, float) else ""),
        )
    try:
        amount = Decimal(value)
    except decimal.InvalidOperation:
        raise ValidationError("amount", f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise ValidationError("amount", f"{value!r} is not a finite number")
    if abs(amount) >= MAX_AMOUNT:
        raise ValidationError("amount", f"{value!r} is too large: amounts must be below 10^15")
    return amount


def exact_decimal(value: Any, path: str) -> Decimal:
    """``value`` as a finite `Decimal` below `MAX_AMOUNT` (from a Decimal, int or numeric string).

    Raises:
        ValidationError: at ``path``, for floats (inexact), non-numbers and out-of-range values.
    """
    if isinstance(value, float):
        raise ValidationError(path, "must be a Decimal, int or string, not a float (floats are inexact)")
    try:
        return _to_decimal(value)
    except ValidationError as exc:
        raise ValidationError(path, exc.reason) from None


def check_quantity(value: Any, path: str) -> Decimal:
    """A positive quantity (order, deal and quote lines), checked like `exact_decimal`."""
    quantity = exact_decimal(value, path)
    if quantity <= 0:
        raise ValidationError(path, f"must be a positive number, got {value!r}")
    return quantity


def _check_currency(_: Any, __: Any, value: Any) -> None:
    check_currency(value)


@attrs.frozen(order=False)
class Money:
    """An amount in one currency. ``Money("19.99", "EUR")``; floats are refused as inexact.

    Adding, subtracting or comparing amounts in different currencies raises `ValidationError`:
    converting needs a rate, which is the host's business.
    """

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field(validator=_check_currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``: the start value for sums."""
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor(cls, minor: int, currency: str) -> Money:
        """``minor`` whole minor units of ``currency``: ``from_minor(1999, "EUR")`` is 19.99 EUR."""
        return cls(Decimal(minor).scaleb(-minor_units(currency)), currency)

    @property
    def minor(self) -> int:
        """The amount in whole minor units (19.99 EUR -> 1999); exact integer sums use it.

        Raises:
            ValidationError: the amount has digits finer than the minor unit (round it first).
        """
        scaled = self.amount.scaleb(minor_units(self.currency))
        if scaled != scaled.to_integral_value():
            raise ValidationError("amount", f"{self} has digits below the minor unit: round it first")
        return int(scaled)

    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise ValidationError(
                "currency", f"cannot {op} {self.currency} and {other.currency}: convert first"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other, "add").amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other, "subtract").amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise TypeError(f"Money can be multiplied by Decimal or int, not {type(factor).__name__}")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other, "compare").amount

    def rounded(self, rounding: str = ROUND_HALF_EVEN) -> Money:
        """Rounded to the currency's minor units (banker's rounding unless told otherwise)."""
        exponent = Decimal(1).scaleb(-minor_units(self.currency))
        try:
            return Money(self.amount.quantize(exponent, rounding=rounding), self.currency)
        except (decimal.InvalidOperation, TypeError):
            raise ValidationError("rounding", f"{rounding!r} is not a decimal rounding mode") from None

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
