"""Contract tests for segments: the customer facts queries every store must answer alike.

Mixed into `crmcore.testing.StoreContract`; the fixtures (``crm``, ``tenant``, ``clock``, ``fixed``)
come from there. Members are checked against an oracle computed straight from the documented rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.clock import FixedClock
from crmcore.conditions import All, Field, evaluate, sort_key
from crmcore.customers.customer import Customer
from crmcore.customers.order import Order, OrderLine, OrderStatus
from crmcore.customers.segments import (
    CUSTOMER_FACT_FIELDS,
    CustomerFacts,
    Segment,
    count_members,
    is_member,
    members,
)
from crmcore.errors import ValidationError
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.storage.base import CustomerRepository
from crmcore.testing import strategies as cst

__all__ = ["SegmentsContract"]

_NOW = cst.NOW
_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    # one test body runs under every adapter subclass, which is the point of a contract suite
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
    ],
)


def _order(customer_id: str, amount: str, currency: str = "EUR", days_ago: int = 1, **kw: Any) -> Order:
    return Order(
        customer_id=customer_id,
        ordered_at=_NOW - timedelta(days=days_ago),
        currency=currency,
        lines=[OrderLine(product="Widget", unit_price=Money(amount, currency))],
        **kw,
    )


def _ids(customers: list[Customer]) -> list[str]:
    return [c.id for c in customers]


def _oracle_facts(customer: Customer, orders: list[Order], currency: str | None) -> CustomerFacts:
    """Facts computed the obvious way, straight from the rules in the docs."""
    counted = [
        o
        for o in orders
        if o.customer_id == customer.id and o.status not in (OrderStatus.CANCELLED, OrderStatus.REFUNDED)
    ]
    spend = sum((o.total.amount for o in counted if o.currency == currency), Decimal(0))
    times = [o.ordered_at for o in counted]
    return CustomerFacts(
        customer=customer,
        order_count=len(counted),
        total_spend=None if currency is None else Money(spend, currency),
        first_order_at=min(times) if times else None,
        last_order_at=max(times) if times else None,
    )


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[Customer], list[Order]]:
    customers = draw(st.lists(cst.customers(), max_size=8))
    for i, customer in enumerate(customers):
        customer.id = f"c{i}"
    ids = st.sampled_from([c.id for c in customers] or ["c0"]) | st.just("orphan")
    orders = draw(st.lists(cst.orders(ids), max_size=12, unique_by=lambda o: o.id))
    return customers, orders


class SegmentsContract:
    """Segment members and counts: fact rules, exact money, live membership, tenants, refusals."""

    def test_fact_rules(self, fixed: CRM, clock: FixedClock, tenant: str) -> None:
        """Counted orders only; spend in the segment currency only; first/last order over every currency."""
        clock.set(_NOW)  # relative dates below are left to default to the unit of work's clock
        with fixed.unit_of_work(tenant) as uow:
            uow.customers.bulk_add([Customer(name=n, id=n) for n in ("none", "eur", "mixed", "cancelled")])
            uow.orders.bulk_add(
                [
                    _order("eur", "10.00", days_ago=5),
                    _order("eur", "5.50", days_ago=2),
                    _order("mixed", "7.00", days_ago=40),
                    _order("mixed", "700", "JPY", days_ago=400),
                    _order("cancelled", "99.00", status=OrderStatus.CANCELLED),
                    _order("cancelled", "99.00", status=OrderStatus.REFUNDED),
                ]
            )
            uow.commit()

        def who(cond: Any, currency: str | None = "EUR", **kw: Any) -> list[str]:
            with fixed.unit_of_work(tenant) as uow:
                segment = Segment(name="s", condition=cond, currency=currency)
                found = _ids(members(uow, segment, **kw))
                if "limit" not in kw:
                    assert count_members(uow, segment) == len(found)
                return found

        assert who(Field("order_count") == 0) == ["cancelled", "none"]
        assert who(Field("order_count") == 2) == ["eur", "mixed"]
        assert who(Field("total_spend") == Money("15.50", "EUR")) == ["eur"]
        assert who(Field("total_spend") == Money("7", "EUR")) == ["mixed"]  # the JPY order is left out
        assert who(Field("total_spend") == Money("0", "EUR")) == ["cancelled", "none"]
        assert who(Field("total_spend") == Money("700", "JPY"), "JPY") == ["mixed"]
        assert who(Field("first_order_at").is_null(), None) == ["cancelled", "none"]
        assert who(Field("first_order_at").older_than(days=365), None) == ["mixed"]  # the JPY order
        assert who(Field("last_order_at").within_last(days=30), None) == ["eur"]
        assert who(All(), None, order_by=["-last_order_at", "name"]) == ["eur", "mixed", "cancelled", "none"]
        assert who(All(), "EUR", order_by=["-order_count", "-name"], limit=2, offset=1) == ["eur", "none"]

    def test_money_comparisons_are_exact(self, crm: CRM, tenant: str) -> None:
        """Spend compares exactly, beyond float precision and with amounts finer than cents."""
        with crm.unit_of_work(tenant) as uow:
            uow.customers.bulk_add([Customer(name="big", id="big"), Customer(name="small", id="small")])
            uow.orders.bulk_add([_order("big", "90071992547409.93"), _order("small", "10.01")])

            def who(cond: Any) -> list[str]:
                segment = Segment(name="s", condition=cond, currency="EUR")
                found = _ids(members(uow, segment))
                assert count_members(uow, segment) == len(found)
                return found

            spend = Field("total_spend")
            assert who(spend > Money("90071992547409.92", "EUR")) == ["big"]
            assert who(spend == Money("90071992547409.93", "EUR")) == ["big"]
            assert who(spend < Money("90071992547409.93", "EUR")) == ["small"]
            assert who(spend > Money("10.005", "EUR")) == ["big", "small"]
            assert who(spend >= Money("10.015", "EUR")) == ["big"]
            assert who(spend <= Money("10.019", "EUR")) == ["small"]
            assert who(spend < Money("10.01", "EUR")) == []
            assert who(spend == Money("10.010", "EUR")) == ["small"]
            assert who(spend == Money("10.0100001", "EUR")) == []
            assert who(spend != Money("10.0100001", "EUR")) == ["big", "small"]
            assert who(spend.in_([Money("10.01", "EUR"), Money("1", "EUR")])) == ["small"]
            assert who(spend.between(Money("10.001", "EUR"), Money("10.019", "EUR"))) == ["small"]

    def test_membership_is_live_and_sees_the_unit_of_work(self, crm: CRM, tenant: str) -> None:
        """members() answers at call time: an order added in the same unit of work counts at once."""
        vip = Segment(
            name="VIPs",
            condition=Field("tags").contains("vip") & (Field("total_spend") >= Money("100", "EUR")),
            currency="EUR",
        )
        with crm.unit_of_work(tenant) as uow:
            uow.customers.add(Customer(name="Ada", id="ada", tags=["vip"]))
            assert members(uow, vip) == []
            uow.orders.add(_order("ada", "100.00"))
            assert _ids(members(uow, vip)) == ["ada"]
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            order = uow.orders.find()[0]
            order.status = OrderStatus.REFUNDED
            uow.orders.save(order)
            assert count_members(uow, vip) == 0

    def test_orders_of_other_tenants_do_not_count(self, crm: CRM, tenant: str) -> None:
        """Facts are computed from this tenant's orders only, even for a customer id used in both."""
        mine, other = tenant, f"t-{new_id()}"
        for each in (mine, other):
            with crm.unit_of_work(each) as uow:
                uow.customers.add(Customer(name="Ada", id="ada"))
                if each == other:
                    uow.orders.add(_order("ada", "50.00"))
                uow.commit()
        segment = Segment(name="buyers", condition=Field("order_count") > 0)
        with crm.unit_of_work(mine) as uow:
            assert members(uow, segment) == []
        with crm.unit_of_work(other) as uow:
            assert _ids(members(uow, segment)) == ["ada"]

    def test_bad_queries_are_refused_at_once(self, crm: CRM, tenant: str) -> None:
        """A naive now, an unsortable field and bad paging are reported together."""
        segment = Segment(name="all", condition=All())
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError) as caught:
            members(uow, segment, now=datetime(2026, 1, 1), order_by=["total_spend", "nope"], limit=-1)
        assert [e.path for e in caught.value.errors] == ["order_by[0]", "order_by[1]", "limit", "now"]
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError, match="currency"):
            uow.customers.count_with_facts(Field("total_spend") > Money("1", "EUR"))
        with crm.unit_of_work(tenant) as uow, pytest.raises(ValidationError) as caught:
            uow.customers.find_with_facts(Field("total_spend") > Money("1", "EUR"), currency="euro")
        assert [e.path for e in caught.value.errors] == ["currency"]

    def test_every_store_has_a_customer_repository_with_facts(self, crm: CRM, tenant: str) -> None:
        """The unit of work's customers repository implements the facts queries (the adapter hooks)."""
        with crm.unit_of_work(tenant) as uow:
            assert isinstance(uow.customers, CustomerRepository)
            assert uow.customers.find_with_facts() == []

    @_SETTINGS
    @given(
        history=_histories(),
        segment=cst.segments(),
        order=cst.order_by(["order_count", "first_order_at", "last_order_at"]),
        limit=st.none() | st.integers(0, 4),
        offset=st.integers(0, 3),
    )
    def test_members_agree_with_the_oracle(
        self,
        crm: CRM,
        history: tuple[list[Customer], list[Order]],
        segment: Segment,
        order: list[str],
        limit: int | None,
        offset: int,
    ) -> None:
        """Random segments over fields, tags, custom fields and facts: a store's members are the oracle's."""
        customers, orders = history
        with crm.unit_of_work(f"t-{new_id()}") as uow:
            uow.customers.bulk_add(customers)  # stamps version 1, as stored
            uow.orders.bulk_add(orders)
            facts = [_oracle_facts(c, orders, segment.currency) for c in customers]
            expected = sorted(
                (f for f in facts if evaluate(segment.condition, f, CUSTOMER_FACT_FIELDS, _NOW)),
                key=lambda f: f.customer.id,
            )
            for key, descending in reversed(sort_key(CUSTOMER_FACT_FIELDS, order)):
                expected.sort(key=key, reverse=descending)
            end = None if limit is None else offset + limit
            got = members(uow, segment, now=_NOW, order_by=order, limit=limit, offset=offset)
            assert _ids(got) == [f.customer.id for f in expected[offset:end]]
            assert count_members(uow, segment, _NOW) == len(expected)
            totals = uow.orders.totals()
        assert [c.id for c in customers if is_member(c, totals.get(c.id), segment, _NOW)] == sorted(
            (f.customer.id for f in expected), key=lambda i: int(i[1:])
        )
