"""Merge a duplicate customer, export everything about the person, then erase them.

Runs on an in-memory SQLite database: two records of one person (one typed by a sales rep, one
from the web shop) are merged with an explanation per field; the merged person's data is
exported as JSON; finally the person is erased, and their order stays for revenue figures only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import crmcore
from crmcore.customers import (
    Contact,
    Customer,
    EmailAddress,
    Interaction,
    InteractionChannel,
    Order,
    OrderLine,
    PhoneNumber,
)
from crmcore.customers.merge import MergeRules, Survivorship, merge_customers
from crmcore.customers.privacy import erase_customer, export_customer, record_consent
from crmcore.events import CustomerCreated
from crmcore.money import Money

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def main() -> None:
    """Merge, export and erase one person, printing what each step did."""
    rep_entry = Customer(
        id="c-rep",
        name="Grace Hopper",
        phones=[PhoneNumber(number="+1 202 555 0143", label="mobile")],
        owner="rep-ann",
        updated_at=datetime(2026, 1, 10, tzinfo=UTC),
    )
    shop_signup = record_consent(
        Customer(
            id="c-shop",
            name="Grace B. Hopper",
            emails=[EmailAddress(address="grace@navy.example", primary=True)],
            custom={"shop_tier": "plus"},
            updated_at=datetime(2026, 2, 20, tzinfo=UTC),
        ),
        "email",
        True,
        "web shop signup",
        datetime(2026, 2, 20, tzinfo=UTC),
    )
    with crmcore.open("sqlite://", clock=crmcore.FixedClock(NOW)) as crm:
        with crm.unit_of_work() as uow:
            uow.customers.bulk_add([rep_entry, shop_signup])
            uow.contacts.add(Contact(customer_id="c-rep", name="Assistant to Grace Hopper"))
            uow.interactions.add(
                Interaction(
                    customer_id="c-rep", occurred_at=NOW, channel=InteractionChannel.CALL, subject="Intro"
                )
            )
            line = OrderLine(product="COBOL manual", quantity=Decimal(2), unit_price=Money("39.50", "USD"))
            uow.orders.add(Order(customer_id="c-shop", ordered_at=NOW, currency="USD", lines=[line]))
            uow.record(
                *(
                    CustomerCreated(aggregate_id=c.id, occurred_at=NOW, name=c.name)
                    for c in (rep_entry, shop_signup)
                )
            )
            uow.commit()

        rules = MergeRules(fields={"name": Survivorship.KEEP_NEWEST})
        with crm.unit_of_work() as uow:
            merged = merge_customers(uow, "c-rep", ["c-shop"], rules)
            uow.commit()
        print(f"Merged c-shop into c-rep; moved {merged.moved}")
        for choice in merged.choices:
            if choice.sources:
                print(f"  {choice.field:<17} from {', '.join(choice.sources):<7} {choice.reason}")

        with crm.unit_of_work() as uow:
            export = export_customer(uow, "c-rep")
        print(f"\nExport: {len(json.dumps(export))} bytes of JSON, {len(export['events'])} events")
        print(f"  name {export['customer']['name']!r}, may email: {merged.survivor.may_contact('email')}")

        with crm.unit_of_work() as uow:
            erased = erase_customer(uow, "c-rep", reason="erasure request 42")
            uow.commit()
        print(f"\nErased c-rep: deleted {erased.deleted}, anonymized {erased.anonymized}")
        print(f"  outbox events redacted: {erased.events_redacted}")
        with crm.unit_of_work() as uow:
            [order] = uow.orders.find()
            assert not uow.customers.exists("c-rep")
        print(f"  the order stays for revenue: {order.total}, now linked to no customer record")


if __name__ == "__main__":
    main()
