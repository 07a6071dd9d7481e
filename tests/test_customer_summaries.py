"""Customer summaries: the CDNOW golden check, the conventions, and SQL == Python on every store."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.analytics.summaries import (
    CustomerSummaries,
    TimeUnit,
    customer_summaries,
    summarize,
)
from crmcore.customers.order import Order, OrderLine, OrderStatus
from crmcore.errors import CrmError, ValidationError
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.serialization import structure, unstructure

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _order(customer_id: str, at: datetime, price: str, currency: str = "EUR", **kw: Any) -> Order:
    line = OrderLine(product="Widget", unit_price=Money(price, currency))
    return Order(customer_id=customer_id, ordered_at=at, currency=currency, lines=[line], **kw)


def _datasets() -> str:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the CDNOW sample ships in the test-only 'lifetimes' wheel")
    return f"{spec.submodule_search_locations[0]}/datasets/"


@cache
def _cdnow_orders() -> tuple[Order, ...]:
    """The 6,919 CDNOW sample transactions (master id, sample id, YYYYMMDD, CDs, dollars) as orders."""
    orders = []
    with open(_datasets() + "CDNOW_sample.txt") as f:
        for line in f:
            _, sample_id, day, _, dollars = line.split()
            at = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
            orders.append(_order(f"c{int(sample_id):04d}", at, dollars, "USD"))
    return tuple(orders)


def test_cdnow_sample_reproduces_the_published_summary() -> None:
    """Weeks to 1997-09-30: frequency exact, recency and T within 0.01 weeks, zbar to the cent."""
    summaries = summarize(_cdnow_orders(), datetime(1997, 9, 30, 23, 59, 59, tzinfo=UTC), unit="weeks")
    with open(_datasets() + "cdnow_customers_summary.csv") as f:
        published = {f"c{int(r['ID']):04d}": r for r in csv.DictReader(f)}
    with open(_datasets() + "cdnow_customers_summary_with_transactions.csv") as f:
        zbar = {f"c{int(r['ID']):04d}": r["zbar"] for r in csv.DictReader(f)}
    assert len(summaries) == len(published) == 2357
    assert sum(1 for s in summaries if s.frequency > 0) == 946
    worst = 0.0
    for s in summaries:
        row = published[s.customer_id]
        assert s.frequency == int(row["frequency"]), s.customer_id
        worst = max(worst, abs(s.recency - float(row["recency"])), abs(s.age - float(row["T"])))
        assert s.monetary_value == Money(zbar[s.customer_id], "USD"), s.customer_id
    assert worst < 0.005  # the published values are rounded to 0.01 weeks
    first = summaries.get("c0001")
    assert first is not None
    assert (first.frequency, round(first.recency, 2), round(first.age, 2)) == (2, 30.43, 38.86)


def test_same_day_orders_are_one_purchase_and_the_first_day_is_left_out_of_the_mean() -> None:
    """Frequency counts days; monetary value averages repeat days' sums; totals keep every order."""
    orders = [
        _order("c1", T0, "10.00"),
        _order("c1", T0 + timedelta(hours=3), "5.00"),  # same UTC day as the first
        _order("c1", T0 + timedelta(days=7), "20.00"),
        _order("c1", T0 + timedelta(days=7, hours=1), "4.00"),
        _order("c1", T0 + timedelta(days=14), "6.00"),
    ]
    s = summarize(orders, T0 + timedelta(days=21), unit="days").customers[0]
    assert (s.frequency, s.recency, s.age, s.orders) == (2, 14.0, 21.0, 5)
    assert s.monetary_value == Money("15.00", "EUR")  # (24 + 6) / 2
    assert s.total_spend == Money("45.00", "EUR")
    assert (s.first_order_at, s.last_order_at) == (T0, T0 + timedelta(days=14))
    weeks = summarize(orders, T0 + timedelta(days=21), unit=TimeUnit.WEEKS).customers[0]
    assert (weeks.recency, weeks.age) == (2.0, 3.0)


def test_days_are_utc_calendar_days_whatever_the_order_offset() -> None:
    """23:30 at UTC-5 is the next UTC day, so it is a second purchase; recency and T use UTC days."""
    east = timezone(timedelta(hours=-5))
    orders = [
        _order("c1", datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "1.00"),
        _order("c1", datetime(2026, 3, 1, 23, 30, tzinfo=east), "2.00"),
    ]
    s = summarize(orders, datetime(2026, 3, 5, 1, 0, tzinfo=east)).customers[0]
    assert (s.frequency, s.recency, s.age) == (1, 1.0, 4.0)


def test_one_time_buyer_has_zero_frequency_recency_and_monetary_value() -> None:
    """A single purchase day: frequency and recency 0, monetary value zero, T still counts."""
    s = summarize([_order("c1", T0, "9.99")], T0 + timedelta(days=10)).customers[0]
    assert (s.frequency, s.recency, s.age) == (0, 0.0, 10.0)
    assert s.monetary_value == Money.zero("EUR")
    assert s.total_spend == Money("9.99", "EUR")


def test_uncounted_and_later_orders_are_ignored() -> None:
    """Cancelled and refunded orders and orders after the observation time do not count."""
    orders = [
        _order("c1", T0, "10.00"),
        _order("c1", T0 + timedelta(days=1), "99.00", status=OrderStatus.CANCELLED),
        _order("c1", T0 + timedelta(days=2), "99.00", status=OrderStatus.REFUNDED),
        _order("c1", T0 + timedelta(days=5), "7.00"),  # exactly at the observation time: counts
        _order("c1", T0 + timedelta(days=5, seconds=1), "99.00"),
        _order("c2", T0 + timedelta(days=6), "99.00"),
    ]
    summaries = summarize(orders, T0 + timedelta(days=5))
    assert [s.customer_id for s in summaries] == ["c1"]
    assert summaries.customers[0].frequency == 1
    assert summaries.customers[0].total_spend == Money("17.00", "EUR")


def test_mixed_currencies_are_refused_unless_one_is_chosen() -> None:
    """Without currency= orders in two currencies raise; with it only that currency counts."""
    orders = [_order("c1", T0, "10.00", "EUR"), _order("c1", T0 + timedelta(days=1), "30.00", "USD")]
    with pytest.raises(ValidationError, match=r"several currencies \(EUR, USD\)") as info:
        summarize(orders, T0 + timedelta(days=3))
    assert info.value.field == "currency"
    usd = summarize(orders, T0 + timedelta(days=3), currency="USD")
    assert usd.currency == "USD"
    assert [(s.frequency, s.total_spend) for s in usd] == [(0, Money("30.00", "USD"))]


def test_bad_arguments_are_refused_with_the_valid_choices() -> None:
    """A wrong unit lists the valid ones; naive observation times and bad currencies raise."""
    with pytest.raises(ValidationError, match="'days', 'weeks'"):
        summarize([], T0, unit="months")
    with pytest.raises(ValidationError, match="observed_at"):
        summarize([], datetime(2026, 3, 1))
    with pytest.raises(ValidationError, match="currency"):
        summarize([], T0, currency="euro")
    assert summarize([], T0).currency is None


def test_summaries_round_trip_through_json() -> None:
    """unstructure gives JSON-ready data that structures back to an equal value."""
    orders = [_order("c1", T0, "10.00"), _order("c1", T0 + timedelta(days=3), "2.50")]
    summaries = summarize(orders, T0 + timedelta(days=9), unit="weeks")
    data = json.loads(json.dumps(unstructure(summaries)))
    assert data["unit"] == "weeks"
    assert structure(data, CustomerSummaries) == summaries


def test_to_dataframe_uses_the_lifetimes_column_names() -> None:
    """The frame is indexed by customer id with frequency, recency, T and monetary_value as floats."""
    pytest.importorskip("pandas")
    orders = [_order("c1", T0, "10.00"), _order("c1", T0 + timedelta(days=7), "2.50")]
    frame = summarize(orders, T0 + timedelta(days=14), unit="weeks").to_dataframe()
    assert list(frame.columns[:4]) == ["frequency", "recency", "T", "monetary_value"]
    assert frame.loc["c1", "T"] == 2.0
    assert frame.loc["c1", "monetary_value"] == 2.5


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pandas, to_dataframe raises a CrmError telling what to install."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(CrmError, match=r"crmcore\[pandas\]"):
        summarize([], T0).to_dataframe()


# --- the store: one grouped query on SQL, identical to the Python summariser ---


_ZONES = (UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30)))
# a handful of days, so orders often share a UTC day and fall on either side of the observation time
_NEAR = st.builds(
    lambda minutes, zone: (T0 + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(-2 * 1440, 1440),
    st.sampled_from(_ZONES),
)


@st.composite
def _clustered_orders(draw: st.DrawFn) -> Order:
    """Orders of three customers over a few days, mostly in EUR, so purchase days often repeat."""
    currency = draw(st.sampled_from(["EUR", "EUR", "EUR", "USD", "JPY"]))
    scale = 0 if currency == "JPY" else 2
    cents = draw(st.integers(0, 10**8))
    return _order(
        draw(st.sampled_from(["c1", "c2", "c3"])),
        draw(_NEAR),
        str(Decimal(cents).scaleb(-scale)),
        currency,
        status=draw(st.sampled_from(OrderStatus)),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    orders=st.lists(_clustered_orders(), min_size=1, max_size=25),
    observed_at=_NEAR,
    unit=st.sampled_from(TimeUnit),
    pick=st.integers(0, 19),
)
def test_store_summaries_equal_python_summaries(
    any_crm: CRM, orders: list[Order], observed_at: datetime, unit: TimeUnit, pick: int
) -> None:
    """On every store, customer_summaries gives exactly what summarize gives over the same orders."""
    currency = orders[pick % len(orders)].currency
    tenant = f"t-{new_id()}"
    with any_crm.unit_of_work(tenant) as uow:
        uow.orders.bulk_add(orders)
        uow.commit()
    with any_crm.unit_of_work(tenant) as uow:
        assert customer_summaries(uow, observed_at, unit=unit, currency=currency) == summarize(
            orders, observed_at, unit=unit, currency=currency
        )
        try:
            expected = summarize(orders, observed_at, unit=unit)
        except ValidationError:
            with pytest.raises(ValidationError, match="several currencies"):
                customer_summaries(uow, observed_at, unit=unit)
        else:
            assert customer_summaries(uow, observed_at, unit=unit) == expected


def test_store_summaries_for_chosen_customers_in_one_tenant(any_crm: CRM, tenant: str) -> None:
    """customer_ids limits the summaries; other tenants' orders never show up."""
    orders = [
        _order("c1", T0, "10.00"),
        _order("c1", T0 + timedelta(days=2), "4.00"),
        _order("c2", T0, "3.00"),
    ]
    with any_crm.unit_of_work(tenant) as uow:
        uow.orders.bulk_add(orders)
        uow.commit()
    with any_crm.unit_of_work(f"{tenant}-other") as uow:
        uow.orders.add(_order("c1", T0 + timedelta(days=1), "50.00"))
        uow.commit()
    with any_crm.unit_of_work(tenant) as uow:
        got = customer_summaries(uow, T0 + timedelta(days=7), customer_ids=["c1"])
        assert [(s.customer_id, s.frequency, s.monetary_value) for s in got] == [
            ("c1", 1, Money("4.00", "EUR"))
        ]
        everyone = customer_summaries(uow, T0 + timedelta(days=7))
        assert [s.customer_id for s in everyone] == ["c1", "c2"]
        assert everyone.customers[1].total_spend == Money("3.00", "EUR")
        with pytest.raises(ValidationError, match="customer_ids"):
            customer_summaries(uow, T0, customer_ids="c1")


def test_store_summaries_of_the_cdnow_sample_match_python(any_crm: CRM, tenant: str) -> None:
    """The 6,919 CDNOW orders summarised by the store equal the Python summaries."""
    orders = _cdnow_orders()
    with any_crm.unit_of_work(tenant) as uow:
        uow.orders.bulk_add(list(orders))
        uow.commit()
    observed = datetime(1997, 9, 30, 23, 59, 59, tzinfo=UTC)
    with any_crm.unit_of_work(tenant) as uow:
        got = customer_summaries(uow, observed, unit="weeks", currency="USD")
    assert got == summarize(orders, observed, unit="weeks")
    assert sum(s.total_spend.amount for s in got) == sum(
        (o.total.amount for o in orders if o.ordered_at <= observed), Decimal(0)
    )
