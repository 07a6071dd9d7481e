"""Conditions, their JSON form, ordering and paging with limit/offset, and iter_all.

Loads 500 synthetic customers (the demo's generator) into an in-memory SQLite database.
"""

from __future__ import annotations

import json

import crmcore
from crmcore import Field, FixedClock, Money, ValidationError
from crmcore.conditions import structure_condition, unstructure_condition
from crmcore.demo_data import DEMO_NOW, generate_customers


def main() -> None:
    """Query, serialize a condition, page through results and stream everything."""
    crm = crmcore.open("sqlite://", clock=FixedClock(DEMO_NOW))  # relative dates use this clock
    with crm.unit_of_work() as uow:
        uow.customers.bulk_add(generate_customers(500, seed=1))
        uow.commit()

    # A condition is plain data: build it with Field and &, |, ~.
    promoters = (
        (Field("custom.nps") >= 9)
        & Field("country").in_(["DE", "FR", "NL"])
        & Field("created_at").within_last(years=1)
        & ~Field("tags").contains("churn-risk")
    )
    # It round-trips through JSON, e.g. to save a segment definition or send it over HTTP.
    text = json.dumps(unstructure_condition(promoters))
    assert structure_condition(json.loads(text)) == promoters
    print(f"condition as JSON: {len(text)} characters, starting {text[:60]}...")

    with crm.unit_of_work() as uow:
        print("recent promoters in DE/FR/NL:", uow.customers.count(promoters))

        # Page through a sorted result, ten at a time; the id breaks ties, so pages never overlap.
        where = Field("kind") == "company"
        order_by = ["country", "-created_at"]
        pages: list[list[str]] = []
        while page := uow.customers.find(where, order_by=order_by, limit=10, offset=10 * len(pages)):
            pages.append([c.id for c in page])
        ids = [i for page in pages for i in page]
        assert len(ids) == len(set(ids)) == uow.customers.count(where)
        print(f"{len(ids)} companies in {len(pages)} pages of up to 10; first page:")
        for c in uow.customers.find(where, order_by=order_by, limit=10):
            print(f"  {c.country}  {c.created_at:%Y-%m-%d}  {c.name}")

        # iter_all streams every customer in id order, a batch at a time (bounded memory).
        totals: dict[str, Money] = {}
        for c in uow.customers.iter_all(batch_size=100):
            if c.credit_limit is not None:
                currency = c.credit_limit.currency
                totals[currency] = totals.get(currency, Money.zero(currency)) + c.credit_limit
        print("credit limits by currency:", ", ".join(str(m) for _, m in sorted(totals.items())))

        # A bad query is refused before it runs, with every problem listed.
        try:
            uow.customers.find((Field("nps") > 9) & (Field("kind") == "robot"), order_by=["tags"])
        except ValidationError as exc:
            print("refused:")
            for error in exc.errors:
                print(f"  {error}")


if __name__ == "__main__":
    main()
