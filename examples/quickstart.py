"""The README's quick start as a script: open a store, add customers, query, save, read events."""

from __future__ import annotations

import crmcore
from crmcore import Field, Money
from crmcore.customers import Address, Customer, EmailAddress
from crmcore.events import CustomerCreated, CustomerUpdated


def main() -> None:
    """Run the quick start on an in-memory store and print what happens."""
    crm = crmcore.open("memory://")  # or "sqlite:///crm.db", "postgresql://user@host/db"
    crm.bus.subscribe(CustomerUpdated, lambda event: print("updated:", event.fields))

    with crm.unit_of_work() as uow:  # one transaction
        for name, country in [("Ada Lovelace", "GB"), ("Grace Hopper", "US"), ("Emmy Noether", "DE")]:
            email = EmailAddress(address=f"{name.split()[0].lower()}@example.com")
            customer = Customer(name=name, emails=[email], addresses=[Address(country=country)])
            uow.customers.add(customer)
            uow.record(CustomerCreated(aggregate_id=customer.id, occurred_at=crm.clock.now(), name=name))
        uow.commit()  # nothing is stored before this

    with crm.unit_of_work() as uow:
        europeans = uow.customers.find(Field("country").in_(["GB", "DE"]), order_by=["name"])
        ada = europeans[0]  # version 1
        ada.credit_limit = Money("5000.00", "GBP")
        uow.customers.save(ada)  # version 2; saving a stale copy raises ConcurrencyError
        uow.record(
            CustomerUpdated(aggregate_id=ada.id, occurred_at=crm.clock.now(), fields=("credit_limit",))
        )
        uow.commit()  # prints "updated: ('credit_limit',)"

    print([c.name for c in europeans])  # ['Ada Lovelace', 'Emmy Noether']
    print([r.event.event_type for r in crm.events_since(0)])  # the outbox, in commit order


if __name__ == "__main__":
    main()
