"""A customer's history and their 360-degree view, on generated demo data in a SQLite file.

Loads 200 generated customers with their contacts, interactions and orders, then prints the
view of the best buyer and the timeline of their latest touches.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import crmcore
from crmcore.customers.view import customer_view
from crmcore.demo_data import DEMO_NOW, generate_customers, generate_history


def main() -> None:
    """Load generated data, then print one customer page."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'crm.db'}"
        with crmcore.open(url, clock=crmcore.FixedClock(DEMO_NOW)) as crm:
            customers = list(generate_customers(200, seed=7))
            history = generate_history(customers, seed=7)
            with crm.unit_of_work() as uow:
                uow.customers.bulk_add(customers)
                uow.contacts.bulk_add(history.contacts)
                uow.interactions.bulk_add(history.interactions)
                uow.orders.bulk_add(history.orders)
                uow.commit()

            with crm.unit_of_work() as uow:
                totals = uow.orders.totals()  # one GROUP BY in SQLite
                best = max(totals.values(), key=lambda t: (t.orders, t.customer_id))
                view = customer_view(uow, best.customer_id, recent=5)

            c, t = view.customer, view.order_totals
            print(f"{c.name} ({c.kind.value}, {c.city}, {c.country})")
            print(f"  {t.orders} purchases, spend {', '.join(str(m) for m in t.spend)}")
            print(f"  first order {t.first_order_at:%Y-%m-%d}, last {t.last_order_at:%Y-%m-%d}")
            print(f"  {len(view.contacts)} contacts, {view.interaction_count} interactions; latest:")
            for touch in view.recent_interactions:
                print(f"    {touch.occurred_at:%Y-%m-%d} {touch.channel.value:<9} {touch.subject}")
            assert t.orders == best.orders


if __name__ == "__main__":
    main()
