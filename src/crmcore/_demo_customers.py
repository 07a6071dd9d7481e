"""The demo's customer-management sections: history, the 360-degree view, segments, duplicates."""

from __future__ import annotations

import time
from collections import Counter

from crmcore._report import Report, day, money, n, short, timed
from crmcore.conditions import Field
from crmcore.customers import (
    Customer,
    Direction,
    Interaction,
    InteractionChannel,
    OrderStatus,
    PhoneNumber,
    phone_region,
)
from crmcore.customers.duplicates import duplicate_groups, scan_duplicates
from crmcore.customers.merge import merge_customers
from crmcore.customers.segments import Segment, count_members, members
from crmcore.customers.view import customer_view
from crmcore.demo_data import DEMO_NOW, History, generate_history, seed_duplicates
from crmcore.facade import CRM
from crmcore.money import Money

__all__ = ["duplicates_section", "history_section", "segments_section", "view_section"]


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


_SEGMENTS: list[tuple[Segment, str]] = [
    (
        Segment(
            name="Lapsed big spenders (US)",
            condition=(Field("country") == "US")
            & (Field("total_spend") >= Money("1000", "USD"))
            & Field("last_order_at").older_than(days=180),
            currency="USD",
            description="Spent 1,000 USD or more, but no purchase in six months: call them.",
        ),
        '(Field("country") == "US") & (Field("total_spend") >= Money("1000", "USD"))\n'
        '    & Field("last_order_at").older_than(days=180)    currency="USD"',
    ),
    (
        Segment(
            name="Loyal companies",
            condition=(Field("kind") == "company") & (Field("order_count") >= 5),
        ),
        '(Field("kind") == "company") & (Field("order_count") >= 5)',
    ),
    (
        Segment(
            name="Newsletter readers who never bought",
            condition=Field("tags").contains("newsletter") & (Field("order_count") == 0),
        ),
        'Field("tags").contains("newsletter") & (Field("order_count") == 0)',
    ),
    (
        Segment(
            name="Gold tier, bought in the last 30 days",
            condition=(Field("custom.tier") == "gold") & Field("last_order_at").within_last(days=30),
        ),
        '(Field("custom.tier") == "gold") & Field("last_order_at").within_last(days=30)',
    ),
]


def segments_section(crm: CRM, tenant: str, report: Report) -> None:
    """Count a few segments over customer fields and order facts, and list one's top members."""
    report.section("Segments: conditions over customers and what they bought")
    report.line("  A Segment is a named condition that may use order facts (order_count, total_spend,")
    report.line("  first_order_at, last_order_at). Membership is live: count_members(uow, segment)")
    report.line("  and members(uow, segment) run one query in the store (a join on SQL stores).")
    report.line()
    with crm.unit_of_work(tenant) as uow:
        for segment, code in _SEGMENTS:
            count, ms = timed(lambda s=segment: count_members(uow, s))  # type: ignore[misc]
            report.leader(segment.name, n(count), f"{ms:6.1f} ms")
            for code_line in code.splitlines():
                report.line(f"      {code_line}")
        first = _SEGMENTS[0][0]
        top = members(uow, first, order_by=["-order_count", "last_order_at"], limit=5)
        totals = uow.orders.totals([c.id for c in top])
    report.line()
    report.line(f"  members(uow, {first.name!r}, order_by=['-order_count', 'last_order_at'], limit=5):")
    report.table(
        ["name", "city", "orders", "spend", "last order"],
        [
            [
                short(c.name, 30),
                c.city or "-",
                n(totals[c.id].orders),
                money(totals[c.id].spend_in("USD")),
                day(totals[c.id].last_order_at),
            ]
            for c in top
        ],
        "llrrl",
        indent=4,
    )


def duplicates_section(crm: CRM, tenant: str, seed: int, report: Report) -> None:
    """Re-enter some customers, find the duplicates with their reasons, and merge them."""
    report.section("Duplicates: found, explained and merged")
    with crm.unit_of_work(tenant) as uow:
        customers = list(uow.customers.iter_all())
    pairs = seed_duplicates(customers, max(3, len(customers) // 100), seed=seed, now=DEMO_NOW)
    copies = [copy for _, copy in pairs]
    with crm.unit_of_work(tenant) as uow:
        uow.customers.bulk_add(copies)
        uow.interactions.bulk_add(
            Interaction(
                customer_id=copy.id,
                occurred_at=copy.created_at or DEMO_NOW,
                channel=InteractionChannel.IN_STORE,
                direction=Direction.INBOUND,
                subject="Trade fair visit",
            )
            for copy in copies
        )
        uow.commit()
    report.line(
        f"  A trade-fair list re-entered {n(len(copies))} existing customers, with a typo in the name,"
    )
    report.line("  the phone typed the local way, the email in capitals or left out, or a new phone.")
    with phone_region("DE"):
        typed = PhoneNumber(number="030 1234567")
    report.line(f'  Phones are stored in E.164: PhoneNumber("030 1234567") in region DE -> {typed.number}.')
    report.line()

    started = time.perf_counter()
    with crm.unit_of_work(tenant) as uow:
        scan = scan_duplicates(uow.customers.iter_all())
    elapsed = time.perf_counter() - started
    seeded = {(min(a.id, b.id), max(a.id, b.id)) for a, b in pairs}
    found = {(p.a, p.b) for p in scan.pairs}
    stats = scan.stats
    everyone = stats.customers * (stats.customers - 1) // 2
    report.leader("customers scanned", n(stats.customers))
    report.leader("pairs compared (blocking)", n(stats.scored_pairs), f"of {n(everyone)} possible")
    report.leader("likely duplicates reported", n(len(scan.pairs)))
    hits = found & seeded
    report.leader("  of them re-entered copies", n(len(hits)), f"recall {_share(hits, seeded)}")
    report.leader("  other pairs, for a person to review", n(len(found - seeded)))
    others = Counter(p.reasons[0].kind.value for p in scan.pairs if (p.a, p.b) not in seeded)
    for kind, count in others.most_common():
        report.leader(f"    strongest signal {kind}", n(count))
    report.line(f"  scan_duplicates() took {elapsed:.2f} s.")
    report.line()
    names = {c.id: c.name for c in customers} | {c.id: c.name for c in copies}
    report.line("  The best pairs and why:")
    for pair in scan.pairs[:4]:
        report.line(f"    {pair.score:.2f}  {short(names[pair.a], 30)}  ~  {short(names[pair.b], 30)}")
        for reason in pair.reasons:
            similarity = f" (names {reason.name_similarity:.0f}% alike)" if reason.name_similarity else ""
            report.line(f"          {reason.kind.value}: {short(reason.value, 40)}{similarity}")

    groups = duplicate_groups(p for p in scan.pairs if (p.a, p.b) in seeded)
    moved: Counter[str] = Counter()
    with crm.unit_of_work(tenant) as uow:
        for group in groups:
            # the oldest record survives; ULIDs sort by creation time
            report_ = merge_customers(uow, group[0], list(group[1:]))
            moved.update(report_.moved)
        uow.commit()
        remaining = uow.customers.count()
    report.line()
    report.line(
        f"  merge_customers() on the {n(len(groups))} groups a reviewer confirmed (the re-entered copies),"
    )
    report.line("  in one unit of work: the oldest record survives, fields follow survivorship rules (keep")
    report.line("  non-empty, union of lists), linked records move over, duplicates are deleted, and a")
    report.line("  CustomersMerged event is recorded.")
    moves = ", ".join(f"{k} {n(v)}" for k, v in sorted(moved.items()) if v)
    report.leader("records moved to survivors", moves or "-")
    report.leader("customers after merging", n(remaining))


def _share(part: set[tuple[str, str]], whole: set[tuple[str, str]]) -> str:
    return f"{100 * len(part) / len(whole):.1f}%" if whole else "-"
