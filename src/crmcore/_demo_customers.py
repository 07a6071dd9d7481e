"""The demo's customer-management sections: history, the 360-degree view, segments, duplicates."""

from __future__ import annotations

import time
from collections import Counter

from crmcore._report import Report, day, money, n, short
from crmcore.customers import Customer, OrderStatus
from crmcore.customers.view import customer_view
from crmcore.demo_data import DEMO_NOW, History, generate_history
from crmcore.facade import CRM

__all__ = ["history_section", "view_section"]


def history_section(crm: CRM, tenant: str, customers: list[Customer], seed: int, report: Report) -> History:
    """Load contacts, interactions and orders for ``customers`` and describe them."""
    started = time.perf_counter()
    history = generate_history(customers, seed=seed, now=DEMO_NOW)
    with crm.unit_of_work(tenant) as uow:
        uow.contacts.bulk_add(history.contacts)
        uow.interactions.bulk_add(history.interactions)
        uow.orders.bulk_add(history.orders)
        uow.commit()
    elapsed = time.perf_counter() - started
    report.section("Customer history: contacts, interactions, orders")
    report.line("  Each in its own table, linked by customer_id, added with bulk_add in one unit of work.")
    report.line()
    with crm.unit_of_work(tenant) as uow:
        companies = {c.id for c in customers if c.kind.value == "company"}
        with_contacts = len({c.customer_id for c in history.contacts})
        report.leader("contacts (people at company customers)", n(uow.contacts.count()))
        report.leader("  companies with at least one contact", f"{n(with_contacts)} of {n(len(companies))}")
        report.leader("interactions", n(uow.interactions.count()))
        channels = Counter(i.channel.value for i in history.interactions)
        for channel, count in channels.most_common():
            report.leader(f"  {channel}", n(count))
        report.leader("orders", n(uow.orders.count()))
        statuses = Counter(o.status.value for o in history.orders)
        for status in OrderStatus:
            report.leader(
                f"  {status.value}{'' if status.counts else ' (not a purchase)'}", n(statuses[status.value])
            )
        totals = uow.orders.totals()
    buyers = len(totals)
    repeat = sum(1 for t in totals.values() if t.orders > 1)
    report.line()
    report.line(f"  uow.orders.totals(): {n(buyers)} customers bought, {n(repeat)} of them more than once;")
    report.line("  spend is summed per currency (one GROUP BY on SQL stores; never mixed across currencies).")
    report.line(f"  Generated and stored in {elapsed:.2f} s.")
    return history


def view_section(crm: CRM, tenant: str, report: Report) -> None:
    """Show the 360-degree view of the customer with the most purchases."""
    report.section("A 360-degree view")
    with crm.unit_of_work(tenant) as uow:
        totals = uow.orders.totals()
        if not totals:
            report.line("  (no orders yet)")
            return
        best = min(totals.values(), key=lambda t: (-t.orders, t.customer_id))
        view = customer_view(uow, best.customer_id, recent=5)
    c = view.customer
    report.line(f"  customer_view(uow, {c.id!r}, recent=5): the customer with the most orders.")
    report.line()
    report.leader(short(c.name, 40), f"{c.kind.value}, {c.city}, {c.country}")
    report.leader("owner / lifecycle stage", f"{c.owner or '-'} / {c.lifecycle_stage.value}")
    report.leader("email / phone (E.164)", f"{c.primary_email or '-'} / {c.primary_phone or '-'}")
    report.leader("tags", ", ".join(c.tags) or "-")
    t = view.order_totals
    report.leader("orders (purchases)", n(t.orders))
    report.leader("spend", ", ".join(money(m) for m in t.spend))
    report.leader("first / last order", f"{day(t.first_order_at)} / {day(t.last_order_at)}")
    report.leader("interactions", n(view.interaction_count))
    report.line()
    report.line("  Contacts:")
    report.table(
        ["name", "title", "roles", "email"],
        [[p.name, p.title, ", ".join(p.roles) or "-", p.primary_email or "-"] for p in view.contacts],
        "llll",
        indent=4,
    )
    report.line()
    report.line("  Latest interactions (uow.interactions.timeline, newest first):")
    report.table(
        ["when", "channel", "direction", "subject", "outcome"],
        [
            [
                f"{i.occurred_at:%Y-%m-%d %H:%M}",
                i.channel.value,
                i.direction.value,
                i.subject,
                i.outcome or "-",
            ]
            for i in view.recent_interactions
        ],
        "lllll",
        indent=4,
    )
    report.line()
    report.line("  Latest orders:")
    report.table(
        ["date", "number", "status", "lines", "total"],
        [
            [day(o.ordered_at), o.number, o.status.value, str(len(o.lines)), money(o.total)]
            for o in view.recent_orders
        ],
        "lllrr",
        indent=4,
    )
