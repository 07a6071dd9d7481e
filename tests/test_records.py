"""Contact points, consent, contacts, interactions and orders: normalization and invariants."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

import crmcore
from crmcore import Money, ValidationError
from crmcore.customers import (
    Consent,
    ConsentChannel,
    Contact,
    Customer,
    EmailAddress,
    Interaction,
    Order,
    OrderLine,
    OrderStatus,
    PhoneNumber,
    normalize_email,
    normalize_phone,
    order_totals,
    phone_region,
)
from crmcore.customers.view import customer_view
from crmcore.money import MAX_AMOUNT
from crmcore.validation import MAX_JSON_INT

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "region", "e164", "extension"),
    [
        ("+49 30 1234567", None, "+49301234567", ""),
        ("+49 (30) 123-4567", None, "+49301234567", ""),
        ("030 1234567", "DE", "+49301234567", ""),
        ("(202) 555-0100", "US", "+12025550100", ""),
        ("+1 202 555 0100 ext. 12", None, "+12025550100", "12"),
        ("0044 20 7946 0958", "DE", "+442079460958", ""),
    ],
)
def test_phones_are_stored_in_e164(typed: str, region: str | None, e164: str, extension: str) -> None:
    """Any common way of writing a number becomes the same E.164 string; extensions move aside."""
    with phone_region(region):
        phone = PhoneNumber(number=typed)
    assert (phone.number, phone.extension) == (e164, extension)
    assert normalize_phone(typed, region=region) == (e164, extension)


def test_phone_errors_say_what_is_wrong() -> None:
    """No region, an impossible length and garbage each get their own reason, naming the field."""
    with pytest.raises(ValidationError, match="no default region is set"):
        PhoneNumber(number="030 1234567")
    with pytest.raises(ValidationError, match="impossible length"):
        PhoneNumber(number="+49 30 1")
    with pytest.raises(ValidationError) as caught:
        PhoneNumber(number="call me maybe")
    assert caught.value.field == "number" and "call me maybe" in caught.value.reason
    with pytest.raises(ValidationError, match="phone_region"), phone_region("XX"):
        pass


def test_phone_region_is_scoped() -> None:
    """The default region applies inside the block only, and nests."""
    with phone_region("DE"):
        assert PhoneNumber(number="030 1234567").number == "+49301234567"
        with phone_region("FR"):
            assert PhoneNumber(number="01 23 45 67 89").number == "+33123456789"
        assert crmcore.customers.default_phone_region() == "DE"
    assert crmcore.customers.default_phone_region() is None


def test_emails_are_checked_and_normalized() -> None:
    """email-validator lower-cases the domain, keeps the local part, refuses bad syntax with a reason."""
    assert EmailAddress(address=" Ada@Example.COM ").address == "Ada@example.com"
    assert normalize_email("müller@bücher.de") == "müller@bücher.de"
    for bad in ("ada.example.com", "a@b", "a@@b.com", ""):
        with pytest.raises(ValidationError):
            normalize_email(bad)


def test_consent_is_one_per_channel_and_checked() -> None:
    """One consent per channel; no record means no; an unknown channel is a ValidationError."""
    email = Consent(channel=ConsentChannel.EMAIL, granted=True, source="signup form", at=T0)
    sms = Consent(channel=ConsentChannel.SMS, granted=False, source="call", at=T0)
    c = Customer(name="Ada", consents=[sms, email])
    assert [x.channel for x in c.consents] == [ConsentChannel.EMAIL, ConsentChannel.SMS]
    assert c.may_contact("email") and not c.may_contact("sms") and not c.may_contact("phone")
    with pytest.raises(ValidationError, match="channel"):
        c.may_contact("fax")
    with pytest.raises(ValidationError, match="channel"):
        Contact(customer_id="c1", name="x").may_contact("fax")
    with pytest.raises(ValidationError, match=r"consents\[1\]"):
        Customer(name="Ada", consents=[email, email])
    with pytest.raises(ValidationError, match="at"):
        Consent(channel=ConsentChannel.EMAIL, granted=True, source="form", at=datetime(2026, 1, 1))


def test_credit_limit_cannot_be_negative() -> None:
    """A negative credit limit is refused on build and on assignment."""
    with pytest.raises(ValidationError, match="credit_limit"):
        Customer(name="x", credit_limit=Money("-1", "EUR"))
    c = Customer(name="x")
    with pytest.raises(ValidationError, match="credit_limit"):
        c.credit_limit = Money("-0.01", "EUR")
    assert c.credit_limit is None


def test_order_totals_round_once_per_order() -> None:
    """Line totals stay exact; the order total is rounded to minor units (banker's rounding)."""
    line = OrderLine(product="x", quantity=Decimal("3"), unit_price=Money("0.335", "EUR"))
    order = Order(customer_id="c", ordered_at=T0, currency="EUR", lines=[line])
    assert line.total == Money("1.005", "EUR") and order.total == Money("1.00", "EUR")
    yen = Order(
        customer_id="c",
        ordered_at=T0,
        currency="JPY",
        lines=[OrderLine(product="y", quantity=Decimal("0.5"), unit_price=Money("101", "JPY"))],
    )
    assert yen.total == Money("50", "JPY")
    assert Order(customer_id="c", ordered_at=T0, currency="EUR").total == Money("0.00", "EUR")


def test_order_amounts_are_checked() -> None:
    """Currencies, discounts, negative prices and out-of-range totals are refused with the field named."""
    eur = Money("10", "EUR")
    with pytest.raises(ValidationError, match="unit_price"):
        OrderLine(product="x", unit_price=Money("-1", "EUR"))
    with pytest.raises(ValidationError, match="discount"):
        OrderLine(product="x", unit_price=eur, discount=Money("11", "EUR"))
    with pytest.raises(ValidationError, match="quantity"):
        OrderLine(product="x", unit_price=eur, quantity=Decimal(0))
    with pytest.raises(ValidationError, match="quantity"):
        OrderLine(product="x", unit_price=eur, quantity=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        Order(
            customer_id="c",
            ordered_at=T0,
            currency="EUR",
            lines=[OrderLine(product="x", unit_price=Money("1", "USD"))],
            discount=Money("1", "GBP"),
        )
    assert [e.path for e in caught.value.errors] == ["lines[0].unit_price", "discount"]
    huge = OrderLine(product="x", unit_price=Money("999999999999999", "EUR"), quantity=Decimal(1000))
    with pytest.raises(ValidationError, match="out of range"):
        Order(customer_id="c", ordered_at=T0, currency="EUR", lines=[huge])


def test_money_and_json_numbers_stay_in_range() -> None:
    """Amounts of 10^15 and more, and integers JSON cannot hold exactly, are refused clearly."""
    with pytest.raises(ValidationError, match="too large"):
        Money(MAX_AMOUNT, "EUR")
    assert Money(MAX_AMOUNT - 1, "EUR").amount == MAX_AMOUNT - 1
    with pytest.raises(ValidationError, match=r"custom\.big"):
        Customer(name="x", custom={"big": MAX_JSON_INT + 1})
    assert Customer(name="x", custom={"big": -MAX_JSON_INT}).custom == {"big": -MAX_JSON_INT}
    with pytest.raises(ValidationError, match="rounding"):
        Money("1.5", "EUR").rounded("bogus")


def test_order_totals_leave_out_non_purchases() -> None:
    """order_totals counts paid, pending and fulfilled orders only, per currency."""
    orders = [
        Order(customer_id="c", ordered_at=T0, currency="EUR", status=status)
        for status in (OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.REFUNDED, OrderStatus.PENDING)
    ]
    assert order_totals(orders)["c"].orders == 2


def test_interaction_needs_an_aware_time_and_known_channel() -> None:
    """Interactions refuse naive times and unknown channels, listing both."""
    with pytest.raises(ValidationError) as caught:
        Interaction(customer_id="c", occurred_at=datetime(2026, 1, 1), channel="fax")  # type: ignore[arg-type]
    assert [e.path for e in caught.value.errors] == ["occurred_at", "channel"]


def test_view_refuses_a_naive_now() -> None:
    """customer_view checks its `now` like every other entry point."""
    crm = crmcore.open("memory://")
    c = Customer(name="x")
    with crm.unit_of_work() as uow:
        uow.customers.add(c)
        with pytest.raises(ValidationError, match="now"):
            customer_view(uow, c.id, now=datetime(2026, 1, 1))
        assert customer_view(uow, c.id, now=T0).as_of == T0
