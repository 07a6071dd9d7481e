"""Contract tests for the sales pipeline aggregates: leads, opportunities and quotes.

Mixed into `crmcore.testing.StoreContract`; the fixtures (``crm``, ``tenant``) come from there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.conditions import Condition, Field, FieldSet, FieldType, evaluate, sort_key
from crmcore.customers.contact_points import EmailAddress
from crmcore.errors import ConcurrencyError, NotFound
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money
from crmcore.pipeline.lead import Lead, LeadStatus
from crmcore.pipeline.opportunity import LineItem, Opportunity, StageChange
from crmcore.pipeline.quote import Quote, QuoteLine, QuoteStatus
from crmcore.storage.base import LEADS, OPPORTUNITIES, QUOTES, Aggregate
from crmcore.testing import strategies as cst

__all__ = ["PipelineContract"]

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)
_CUSTOMERS = st.sampled_from(["c0", "c1", "c2"])
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "email": st.sampled_from(cst.LEAD_EMAIL_POOL),
    "converted_customer_id": _CUSTOMERS,
    "customer_id": _CUSTOMERS,
    "opportunity_id": st.sampled_from(["o0", "o1", "o2"]),
    "stage": st.sampled_from(["prospect", "proposal", "won", "lost"]),
    "pipeline": st.sampled_from(["sales", "renewals"]),
    "probability": st.sampled_from([0, 3, 10, 50, 100]),
    "company_size": st.sampled_from([1, 3, 50]),
    "source": st.sampled_from(["", "web", "event"]),
    "number": st.sampled_from(["", "Q-1"]),
    "campaign": st.sampled_from(["spring", "a"]),
    "industry": st.sampled_from(["software", "", "a"]),
    "region": st.sampled_from(["emea", "a"]),
}
_SORTABLE = {FieldType.TEXT, FieldType.INTEGER, FieldType.DATE, FieldType.DATETIME, FieldType.BOOLEAN}


def _order_by(fields: FieldSet) -> st.SearchStrategy[list[str]]:
    names = sorted(n for n, f in fields.fields.items() if f.type in _SORTABLE)
    return st.lists(st.sampled_from(names).flatmap(lambda n: st.sampled_from([n, f"-{n}"])), max_size=3)


def _opportunity(**kw: Any) -> Opportunity:
    values: dict[str, Any] = {
        "name": "Big deal",
        "customer_id": "c0",
        "pipeline": "sales",
        "stage": "prospect",
    }
    return Opportunity(**{**values, **kw})


def _quote(**kw: Any) -> Quote:
    line = QuoteLine(
        product="Widget", quantity=Decimal(3), unit_price=Money("0.335", "EUR"), tax_rate=Decimal(19)
    )
    values: dict[str, Any] = {"opportunity_id": "o0", "customer_id": "c0", "currency": "EUR", "lines": [line]}
    return Quote(**{**values, **kw})


class PipelineContract:
    """Leads, opportunities and quotes: round trips, queries vs Python, Money in SQL, tenancy, versions."""

    @_SETTINGS
    @given(
        leads=st.lists(cst.leads(), max_size=4, unique_by=lambda x: x.id),
        opportunities=st.lists(cst.opportunities(), max_size=4, unique_by=lambda x: x.id),
        quotes=st.lists(cst.quotes(), max_size=4, unique_by=lambda x: x.id),
    )
    def test_pipeline_records_round_trip(
        self, crm: CRM, leads: list[Lead], opportunities: list[Opportunity], quotes: list[Quote]
    ) -> None:
        """Leads (contact points with labels), opportunities (line items, stage history) and quotes
        (lines, status times) come back equal, field by field."""
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            batches: list[tuple[Aggregate[Any], list[Any]]] = [
                (LEADS, leads),
                (OPPORTUNITIES, opportunities),
                (QUOTES, quotes),
            ]
            for aggregate, objs in batches:
                repo = uow.repository(aggregate)
                for obj in objs[:1]:
                    repo.add(obj)
                repo.bulk_add(objs[1:])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [uow.leads.get(x.id) for x in leads] == leads
            assert [uow.opportunities.get(x.id) for x in opportunities] == opportunities
            got = {q.id: q for q in uow.quotes.iter_all()}
            assert got == {q.id: q for q in quotes}
            assert all(got[q.id].total == q.total and got[q.id].lines == q.lines for q in quotes)

    @pytest.mark.parametrize("aggregate", [LEADS, OPPORTUNITIES, QUOTES], ids=lambda a: a.name)
    @_SETTINGS
    @given(data=st.data())
    def test_pipeline_queries_agree_with_python_evaluation(
        self, crm: CRM, aggregate: Aggregate[Any], data: st.DataObject
    ) -> None:
        """find() (sorted and paged) and count() return exactly what Python evaluation and sorting give."""
        strategies: dict[str, st.SearchStrategy[Any]] = {
            "lead": cst.leads(_CUSTOMERS),
            "opportunity": cst.opportunities(_CUSTOMERS),
            "quote": cst.quotes(_CUSTOMERS),
        }
        strategy = strategies[aggregate.name]
        objs: list[Any] = data.draw(
            st.lists(strategy, max_size=10, unique_by=lambda x: x.id), label="objects"
        )
        where: Condition = data.draw(
            cst.conditions(4, fields=aggregate.fields, values=_VALUES), label="where"
        )
        order = data.draw(_order_by(aggregate.fields), label="order_by")
        limit = data.draw(st.none() | st.integers(0, 4), label="limit")
        tenant = f"t-{new_id()}"
        with crm.unit_of_work(tenant) as uow:
            uow.repository(aggregate).bulk_add(objs)
            uow.commit()
        matching = sorted(
            (x for x in objs if evaluate(where, x, aggregate.fields, cst.NOW)), key=lambda x: x.id
        )
        for key, descending in reversed(sort_key(aggregate.fields, order)):
            matching.sort(key=key, reverse=descending)
        with crm.unit_of_work(tenant) as uow:
            repo = uow.repository(aggregate)
            assert repo.count(where, now=cst.NOW) == len(matching)
            got = repo.find(where, order_by=order, limit=limit, now=cst.NOW)
            assert [x.id for x in got] == [x.id for x in matching[:limit]]

    def test_opportunity_amounts_compare_as_money_in_the_store(self, crm: CRM, tenant: str) -> None:
        """Amount conditions compare within a currency, exactly to the cent, and never match another
        currency or a deal without an amount."""
        deals = [
            _opportunity(id="a", amount=Money("999.99", "EUR")),
            _opportunity(id="b", amount=Money("1000.00", "EUR")),
            _opportunity(id="c", amount=Money("1000.01", "EUR")),
            _opportunity(id="d", amount=Money("5000", "USD")),
            _opportunity(id="e", amount=Money("1000", "JPY")),
            _opportunity(id="f"),
        ]
        with crm.unit_of_work(tenant) as uow:
            uow.opportunities.bulk_add(deals)
            uow.commit()
        thousand = Money("1000", "EUR")
        with crm.unit_of_work(tenant) as uow:
            find = uow.opportunities.find
            assert [o.id for o in find(Field("amount") >= thousand)] == ["b", "c"]
            assert [o.id for o in find(Field("amount") < thousand)] == ["a"]
            assert [o.id for o in find(Field("amount") == Money("1000.0", "EUR"))] == ["b"]
            assert [o.id for o in find(Field("amount").between(Money("999.995", "EUR"), thousand))] == ["b"]
            assert [o.id for o in find(Field("amount") != thousand)] == ["a", "c", "d", "e", "f"]
            assert [o.id for o in find(Field("amount").is_null())] == ["f"]
            assert [o.id for o in find(Field("amount") > Money("10", "USD"))] == ["d"]

    def test_quote_totals_compare_as_money_in_the_store(self, crm: CRM, tenant: str) -> None:
        """Quote totals (derived, rounded) are found by Money conditions exactly, also between minor units."""
        a = _quote(id="a")  # 3 x 0.335 = 1.005 -> 1.00 net, 0.19 tax: 1.19 EUR
        b = _quote(id="b", lines=[QuoteLine(product="Plan", unit_price=Money("1.2", "EUR"))])
        with crm.unit_of_work(tenant) as uow:
            uow.quotes.bulk_add([a, b])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert a.total == Money("1.19", "EUR")
            assert [q.id for q in uow.quotes.find(Field("total") == Money("1.19", "EUR"))] == ["a"]
            assert [q.id for q in uow.quotes.find(Field("total") > Money("1.195", "EUR"))] == ["b"]
            assert [q.id for q in uow.quotes.find(Field("total") <= Money("1.199", "EUR"))] == ["a"]
            assert uow.quotes.count(Field("total") > Money("0", "USD")) == 0

    def test_leads_found_by_status_owner_email_and_touch(self, crm: CRM, tenant: str) -> None:
        """The indexed lead columns answer queries and sorts, and follow the lead when it changes."""
        a = Lead(
            id="a", name="Ada", email=EmailAddress(address="Ada@example.com"), owner="u1", last_touched_at=T0
        )
        b = Lead(id="b", name="Bob", status=LeadStatus.WORKING, owner="u2")
        c = Lead(id="c", name="Cy", last_touched_at=T0 - timedelta(days=3)).disqualify("student")
        with crm.unit_of_work(tenant) as uow:
            uow.leads.bulk_add([a, b, c])
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [x.id for x in uow.leads.find(Field("status").in_(["new", "working"]))] == ["a", "b"]
            assert [x.id for x in uow.leads.find(Field("email") == "Ada@example.com")] == ["a"]
            assert uow.leads.find(Field("email") == "ada@example.com") == []  # the address as given
            assert [x.id for x in uow.leads.find(order_by=["-last_touched_at"])] == ["a", "c", "b"]
            stale = Field("last_touched_at") < T0 - timedelta(days=1)
            assert [x.id for x in uow.leads.find(stale | Field("last_touched_at").is_null())] == ["b", "c"]
            lead = uow.leads.get("b")
            lead.owner, lead.last_touched_at = "u1", T0
            uow.leads.save(lead)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert [x.id for x in uow.leads.find(Field("owner") == "u1")] == ["a", "b"]
            assert uow.leads.get("c").disqualified_reason == "student"

    def test_opportunities_keep_stage_history_and_line_items(self, crm: CRM, tenant: str) -> None:
        """Stage history and line items survive a save; stage, close date and won are queryable."""
        deal = _opportunity(
            id="d",
            amount=Money("30.00", "EUR"),
            close_date=date(2026, 4, 30),
            line_items=[LineItem(product="Seat", quantity=Decimal(3), unit_price=Money("10", "EUR"))],
        )
        with crm.unit_of_work(tenant) as uow:
            uow.opportunities.add(deal)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            got = uow.opportunities.get("d")
            change = StageChange(
                at=T0,
                from_stage="prospect",
                to_stage="proposal",
                time_in_stage=timedelta(hours=26, seconds=1),
            )
            got.stage, got.stage_history, got.stage_entered_at = "proposal", (change,), T0
            uow.opportunities.save(got)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            got = uow.opportunities.get("d")
            assert got.stage_history == (change,) and got.line_total == Money("30.00", "EUR")
            assert [o.id for o in uow.opportunities.find(Field("stage") == "proposal")] == ["d"]
            assert uow.opportunities.count(Field("close_date") <= date(2026, 4, 1)) == 0
            assert uow.opportunities.count(Field("won").is_null()) == 1

    def test_pipeline_records_stay_in_their_tenant(self, crm: CRM, tenant: str) -> None:
        """Another tenant sees none of a tenant's leads, opportunities or quotes."""
        lead, deal, quote = Lead(name="Ada"), _opportunity(), _quote()
        with crm.unit_of_work(tenant) as uow:
            uow.leads.add(lead)
            uow.opportunities.add(deal)
            uow.quotes.add(quote)
            uow.commit()
        with crm.unit_of_work(f"{tenant}-other") as uow:
            repos: list[tuple[Any, str]] = [
                (uow.leads, lead.id),
                (uow.opportunities, deal.id),
                (uow.quotes, quote.id),
            ]
            for repo, id in repos:
                assert not repo.exists(id) and repo.count() == 0 and list(repo.iter_all()) == []
                with pytest.raises(NotFound):
                    repo.delete(id)
            assert uow.leads.find(Field("status") == "new") == []
            assert uow.opportunities.find(Field("customer_id") == "c0") == []
            assert uow.quotes.find(Field("status") == "draft") == []

    def test_stale_pipeline_saves_conflict(self, crm: CRM, tenant: str) -> None:
        """Saving a lead, opportunity or quote read before someone else's save raises ConcurrencyError."""
        lead, deal, quote = Lead(name="Ada"), _opportunity(), _quote(expires_on=date(2026, 3, 31))
        with crm.unit_of_work(tenant) as uow:
            uow.leads.add(lead)
            uow.opportunities.add(deal)
            uow.quotes.add(quote)
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            first, second = uow.leads.get(lead.id), uow.leads.get(lead.id)
            uow.leads.save(first.qualify())
            with pytest.raises(ConcurrencyError):
                uow.leads.save(second.disqualify("no budget"))
            deal_a, deal_b = uow.opportunities.get(deal.id), uow.opportunities.get(deal.id)
            deal_a.next_step = "demo"
            uow.opportunities.save(deal_a)
            deal_b.probability = 50
            with pytest.raises(ConcurrencyError):
                uow.opportunities.save(deal_b)
            quote_a, quote_b = uow.quotes.get(quote.id), uow.quotes.get(quote.id)
            uow.quotes.save(quote_a.send(T0))
            with pytest.raises(ConcurrencyError):
                uow.quotes.save(quote_b.send(T0 + timedelta(hours=1)))
            uow.commit()
        with crm.unit_of_work(tenant) as uow:
            assert uow.leads.get(lead.id).status is LeadStatus.QUALIFIED
            assert uow.opportunities.get(deal.id).next_step == "demo"
            sent = uow.quotes.get(quote.id)
            assert (sent.status, sent.sent_at, sent.version) == (QuoteStatus.SENT, T0, 2)
            with pytest.raises(ConcurrencyError):
                uow.quotes.delete(quote.id, expected_version=1)
