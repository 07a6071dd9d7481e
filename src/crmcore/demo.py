"""The ``crmcore demo`` command: load synthetic customers into a store and tour the public API.

It is a host application in miniature, using only the public API: open a store, load data in one
unit of work, query it with conditions, show tenants, optimistic concurrency, the event bus and
the outbox, and print a report. The clock is fixed, so the report (timings aside) is the same on
every run with the same options.
"""

from __future__ import annotations

import random
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import TextIO

import attrs
from sqlalchemy.engine import make_url

import crmcore
from crmcore import CRM, ConcurrencyError, Field, FixedClock, Money, NotFound, ValidationError
from crmcore._demo_analytics import analytics_section
from crmcore._demo_customers import duplicates_section, history_section, segments_section, view_section
from crmcore._demo_sales import sales_pipeline_section, sales_section
from crmcore._demo_service import service_desk_section, service_metrics_section
from crmcore._report import Report, day, money, n, short, timed
from crmcore.conditions import Condition
from crmcore.customers import Customer
from crmcore.demo_data import COUNTRIES, DEMO_NOW, generate_customers, seeded_id
from crmcore.events import CustomerCreated, CustomerUpdated
from crmcore.ids import MAX_ID_LENGTH
from crmcore.storage.base import check_tenant

__all__ = ["DEFAULT_DB", "DEFAULT_TENANT", "DemoOptions", "Progress", "run_demo"]

DEFAULT_DB = "sqlite:///crm-demo.db"
DEFAULT_TENANT = "demo"
"""Not crmcore's ``default`` tenant: the demo purges its tenant, so it keeps to its own."""
_BATCH = 500
_WIDTH = 78


@attrs.frozen(kw_only=True)
class DemoOptions:
    """What ``crmcore demo`` was asked to do."""

    db: str = DEFAULT_DB
    customers: int = 3000
    seed: int = 42
    tenant: str = DEFAULT_TENANT

    @property
    def second_tenant(self) -> str:
        """The other workspace used to show tenant isolation."""
        return f"{self.tenant}-acme"


class Progress:
    """A text progress bar on ``stream``: redrawn in place on a terminal, a few lines otherwise.

    Logs and CI capture stderr as a file, where ``\\r`` redraws would pile up into one long line.
    """

    def __init__(self, label: str, total: int, stream: TextIO, *, width: int = 30) -> None:
        self.label, self.total, self.stream, self.width = label, max(total, 1), stream, width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.next_milestone = 25

    def update(self, done: int) -> None:
        """Show that ``done`` of ``total`` items are through."""
        percent = 100 * done // self.total
        elapsed = time.perf_counter() - self.started
        if self.tty:
            filled = self.width * done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(
                f"\r{self.label} [{bar}] {done:>7,}/{self.total:,} {percent:3d}%  {elapsed:5.1f} s"
            )
            self.stream.flush()
            return
        while percent >= self.next_milestone:
            self.stream.write(f"{self.label}: {done:,}/{self.total:,} ({percent}%) after {elapsed:.1f} s\n")
            self.next_milestone += 25
        self.stream.flush()

    def note(self, text: str) -> None:
        """Show what happens next (e.g. "committing") after the bar."""
        if self.tty:
            self.stream.write(f"  {text}")
        else:
            self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _describe_store(crm: CRM, url: str) -> str:
    caps = crm.capabilities
    if caps.name == "memory":
        return f"{url}  (in process memory: gone when the demo ends)"
    if caps.name == "sqlite" and not caps.durable:
        return f"{url}  (SQLite in memory: gone when the demo ends)"
    if caps.name == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else url
        return f"{url}  (SQLite file {Path(path).resolve()})"
    return f"{make_url(url).render_as_string(hide_password=True)}  ({caps.name})"


def run_demo(options: DemoOptions, *, out: TextIO, err: TextIO) -> None:
    """Run the demo on ``options.db`` and write its report to ``out`` and progress to ``err``.

    Everything stored before in ``options.tenant`` and its second tenant is deleted first.

    Raises:
        ValidationError: for a bad store URL or tenant name.
        StorageError: if the store cannot be reached.
    """
    check_tenant(options.tenant)
    if len(options.second_tenant) > MAX_ID_LENGTH:
        raise ValidationError(
            "tenant",
            f"{options.tenant!r} is too long: the demo also uses {options.second_tenant!r}, "
            f"and tenant ids have at most {MAX_ID_LENGTH} characters",
        )
    clock = FixedClock(DEMO_NOW)
    report = Report(out)
    with crmcore.open(options.db, clock=clock) as crm:
        tenant, other = options.tenant, options.second_tenant
        report.title(f"crmcore {crmcore.__version__} demo")
        report.line(f"Store     {_describe_store(crm, options.db)}")
        report.line(f"Tenants   {tenant!r}, and {other!r} to show isolation")
        report.line(
            f"Clock     FixedClock({DEMO_NOW:%Y-%m-%d %H:%M} UTC): same report every run (timings aside)"
        )
        report.line(f"Data      {n(options.customers)} synthetic customers from seed {options.seed}")

        removed = crm.purge_tenant(tenant) + crm.purge_tenant(other)
        _load(crm, options, report, err, removed)
        _second_tenant(crm, options)
        _data_set(crm, tenant, report)
        _counting(crm, tenant, report)
        _finding(crm, tenant, report)
        _tenancy(crm, options, report)
        before_race = _last_position(crm, tenant)
        received: list[CustomerUpdated] = []
        unsubscribe = crm.bus.subscribe(CustomerUpdated, received.append)
        try:
            timeline = _concurrency(crm, tenant, clock, received, report)
        finally:
            unsubscribe()
        _event_bus(received, timeline, report)
        _outbox(crm, tenant, before_race, report)
        with crm.unit_of_work(tenant) as uow:
            customers = list(uow.customers.iter_all())
        history_section(crm, tenant, customers, options.seed, report)
        view_section(crm, tenant, report)
        segments_section(crm, tenant, report)
        duplicates_section(crm, tenant, options.seed, report)
        service_desk_section(crm, tenant, options.seed, clock, report)
        service_metrics_section(crm, tenant, report)
        sales, _ = sales_section(crm, tenant, options.seed, clock, report)
        sales_pipeline_section(crm, tenant, sales, report)
        analytics_section(crm, tenant, options.seed, report)
        _next_steps(crm, options, report)


def _load(crm: CRM, options: DemoOptions, report: Report, err: TextIO, removed: int) -> None:
    progress = Progress("Loading customers", options.customers, err)
    progress.update(0)
    generating = inserting = 0.0
    batches = loaded = 0
    customers = generate_customers(options.customers, seed=options.seed)
    event_rng = _event_ids(options.seed)
    with crm.unit_of_work(options.tenant) as uow:
        while True:
            started = time.perf_counter()
            batch = list(islice(customers, _BATCH))
            generating += time.perf_counter() - started
            if not batch:
                break
            started = time.perf_counter()
            uow.customers.bulk_add(batch)
            uow.record(
                *(
                    CustomerCreated(
                        aggregate_id=c.id,
                        occurred_at=c.created_at or DEMO_NOW,
                        name=c.name,
                        event_id=next(event_rng),
                    )
                    for c in batch
                )
            )
            inserting += time.perf_counter() - started
            batches += 1
            loaded += len(batch)
            progress.update(loaded)
        progress.note("committing...")
        started = time.perf_counter()
        uow.commit()
        committing = time.perf_counter() - started
    progress.close()

    total = generating + inserting + committing
    report.section("Load: one unit of work, all or nothing")
    if removed:
        report.line(f"  purge_tenant() removed {n(removed)} rows left by an earlier run.")
    report.table(
        ["step", "what", "seconds"],
        [
            ["generate", f"{n(loaded)} customers (seeded random.Random)", f"{generating:.2f}"],
            ["insert", f"uow.customers.bulk_add() x {batches} batches + uow.record()", f"{inserting:.2f}"],
            ["commit", f"{n(loaded)} rows and {n(loaded)} CustomerCreated events", f"{committing:.2f}"],
            ["total", f"{loaded / total:,.0f} customers per second" if total else "", f"{total:.2f}"],
        ],
        "llr",
    )
    report.line(f"  Loaded {n(loaded)} customers into tenant {options.tenant!r}.")


def _event_ids(seed: int) -> Iterator[str]:
    rng = random.Random(f"events-{seed}")
    while True:
        yield seeded_id(DEMO_NOW, rng)


def _second_tenant(crm: CRM, options: DemoOptions) -> None:
    with crm.unit_of_work(options.second_tenant) as uow:
        few = list(generate_customers(5, seed=options.seed + 1))
        uow.customers.bulk_add(few)
        uow.record(*(CustomerCreated(aggregate_id=c.id, occurred_at=DEMO_NOW, name=c.name) for c in few))
        uow.commit()


def _data_set(crm: CRM, tenant: str, report: Report) -> None:
    report.section("The data set")
    totals: dict[str, Money] = {}
    streamed = 0
    with crm.unit_of_work(tenant) as uow:
        repo = uow.customers
        for customer in repo.iter_all(batch_size=_BATCH):
            streamed += 1
            limit, code = customer.credit_limit, customer.country
            if limit is not None and code is not None:
                totals[code] = totals[code] + limit if code in totals else limit
        rows = []
        for country in sorted(COUNTRIES, key=lambda c: -repo.count(Field("country") == c.code)):
            here = Field("country") == country.code
            rows.append(
                [
                    country.code,
                    n(repo.count(here)),
                    n(repo.count(here & (Field("kind") == "company"))),
                    n(repo.count(here & Field("tags").contains("vip"))),
                    n(repo.count(here & Field("tags").contains("newsletter"))),
                    money(totals.get(country.code)),
                ]
            )
        rows.append(
            [
                "all",
                n(repo.count()),
                n(repo.count(Field("kind") == "company")),
                n(repo.count(Field("tags").contains("vip"))),
                n(repo.count(Field("tags").contains("newsletter"))),
                "(one currency per country)",
            ]
        )
    report.table(["country", "customers", "companies", "vip", "newsletter", "credit limits"], rows, "lrrrrr")
    report.line("  Counts come from uow.customers.count(where); the credit limit totals from one pass")
    report.line(f"  of uow.customers.iter_all(batch_size={_BATCH}) over all {n(streamed)} customers,")
    report.line("  added up as Money (amounts in different currencies are never mixed).")


_QUERIES: list[tuple[str, str, Condition]] = [
    ("Customers in Germany", 'Field("country") == "DE"', Field("country") == "DE"),
    (
        "VIPs in Germany or France",
        'Field("tags").contains("vip") & Field("country").in_(["DE", "FR"])',
        Field("tags").contains("vip") & Field("country").in_(["DE", "FR"]),
    ),
    (
        "Gold-tier companies",
        '(Field("kind") == "company") & (Field("custom.tier") == "gold")',
        (Field("kind") == "company") & (Field("custom.tier") == "gold"),
    ),
    (
        "Joined in the last 90 days",
        'Field("created_at").within_last(days=90)',
        Field("created_at").within_last(days=90),
    ),
    (
        "Churn risks who joined over 2 years ago",
        'Field("tags").contains("churn-risk") & Field("created_at").older_than(years=2)',
        Field("tags").contains("churn-risk") & Field("created_at").older_than(years=2),
    ),
    (
        "Credit limit 10,000-50,000 EUR",
        'Field("credit_limit").between(Money("10000", "EUR"), Money("50000", "EUR"))',
        Field("credit_limit").between(Money("10000", "EUR"), Money("50000", "EUR")),
    ),
    ("Promoters (NPS 9 or 10)", 'Field("custom.nps") >= 9', Field("custom.nps") >= 9),
    (
        "Not surveyed yet (no NPS)",
        'Field("custom.nps").is_null()',
        Field("custom.nps").is_null(),
    ),
    (
        "Unassigned, and not on the newsletter",
        'Field("owner").is_null() & ~Field("tags").contains("newsletter")',
        Field("owner").is_null() & ~Field("tags").contains("newsletter"),
    ),
    (
        "Software or finance firms: US/UK, or 1,000+ staff",
        'Field("custom.industry").in_(["software", "finance"])\n'
        '    & (Field("country").in_(["US", "GB"]) | (Field("custom.employees") >= 1000))',
        Field("custom.industry").in_(["software", "finance"])
        & (Field("country").in_(["US", "GB"]) | (Field("custom.employees") >= 1000)),
    ),
    ("Gmail users", 'Field("email").contains("@gmail.com")', Field("email").contains("@gmail.com")),
]


def _counting(crm: CRM, tenant: str, report: Report) -> None:
    report.section("Counting with the condition language")
    report.line("  uow.customers.count(where) for each question; the number is how many match.")
    report.line()
    with crm.unit_of_work(tenant) as uow:
        for question, code, condition in _QUERIES:
            count, ms = timed(lambda c=condition: uow.customers.count(c))  # type: ignore[misc]
            report.leader(question, n(count), f"{ms:6.1f} ms")
            for code_line in code.splitlines():
                report.line(f"      {code_line}")


def _customer_rows(customers: Sequence[Customer]) -> list[list[str]]:
    return [
        [
            short(c.name, 30),
            c.kind.value,
            f"{c.city}, {c.country}",
            str(c.custom.get("tier", "-")),
            day(c.created_at),
            c.owner or "-",
        ]
        for c in customers
    ]


def _finding(crm: CRM, tenant: str, report: Report) -> None:
    report.section("Finding, ordering and paging")
    headers = ["name", "kind", "city", "tier", "joined", "owner"]
    with crm.unit_of_work(tenant) as uow:
        newest = uow.customers.find(
            Field("tags").contains("vip") & Field("custom.tier").in_(["gold", "platinum"]),
            order_by=["-created_at"],
            limit=5,
        )
        report.line("  Newest five gold or platinum VIPs:")
        report.line(
            '    find(Field("tags").contains("vip") & Field("custom.tier").in_(["gold", "platinum"]),'
        )
        report.line('         order_by=["-created_at"], limit=5)')
        report.table(headers, _customer_rows(newest), "llllll", indent=4)

        report.line()
        page = uow.customers.find(
            (Field("kind") == "company") & (Field("country") == "NL"),
            order_by=["name", "-created_at"],
            limit=5,
            offset=5,
        )
        report.line("  Dutch companies by name (newest first within a name), second page of five:")
        report.line('    find((Field("kind") == "company") & (Field("country") == "NL"),')
        report.line('         order_by=["name", "-created_at"], limit=5, offset=5)')
        report.table(headers, _customer_rows(page), "llllll", indent=4)

        report.line()
        unowned = uow.customers.find(Field("custom.tier") == "platinum", order_by=["owner", "name"], limit=4)
        report.line("  Platinum customers by owner: customers without an owner (None) sort first:")
        report.line('    find(Field("custom.tier") == "platinum", order_by=["owner", "name"], limit=4)')
        report.table(headers, _customer_rows(unowned), "llllll", indent=4)


def _tenancy(crm: CRM, options: DemoOptions, report: Report) -> None:
    report.section("Tenants: every unit of work sees one tenant only")
    tenant, other = options.tenant, options.second_tenant
    rows = []
    for name in (tenant, other):
        with crm.unit_of_work(name) as uow:
            customers = uow.customers.count()
        rows.append([name, n(customers), n(len(_all_events(crm, name)))])
    report.table(["tenant", "customers", "outbox events"], rows, "lrr")
    with crm.unit_of_work(tenant) as uow:
        someone = uow.customers.find(order_by=["created_at"], limit=1)[0]
    with crm.unit_of_work(other) as uow:
        try:
            uow.customers.get(someone.id)
            outcome = "found it (this would be a bug)"
        except NotFound as exc:
            outcome = f"NotFound: {exc}"
    report.line()
    report.line(f"  {tenant!r} has customer {someone.name!r}; asked from {other!r}:")
    report.line(f'    crm.unit_of_work("{other}").customers.get("{someone.id}")')
    report.line(f"    -> {outcome}")


def _all_events(crm: CRM, tenant: str) -> list[crmcore.events.OutboxRecord]:
    events: list[crmcore.events.OutboxRecord] = []
    while batch := crm.events_since(events[-1].position if events else 0, 1000, tenant=tenant):
        events.extend(batch)
    return events


def _last_position(crm: CRM, tenant: str) -> int:
    events = _all_events(crm, tenant)
    return events[-1].position if events else 0


@attrs.define
class _Timeline:
    """What the event bus had delivered at each step of the race."""

    before_commit: int = 0
    after_alice: int = 0
    after_bob_failed: int = 0
    after_bob_retry: int = 0


def _concurrency(
    crm: CRM, tenant: str, clock: FixedClock, received: list[CustomerUpdated], report: Report
) -> _Timeline:
    report.section("Optimistic concurrency: no update is lost")
    timeline = _Timeline()
    with crm.unit_of_work(tenant) as uow:
        target = uow.customers.find(
            (Field("kind") == "company") & (Field("country") == "DE"), order_by=["name"], limit=1
        ) or uow.customers.find(order_by=["name"], limit=1)
    customer_id = target[0].id

    # Alice and Bob each open the customer's page: two reads of the same version.
    with crm.unit_of_work(tenant) as uow:
        alice_copy = uow.customers.get(customer_id)
    with crm.unit_of_work(tenant) as uow:
        bob_copy = uow.customers.get(customer_id)
    currency = alice_copy.currency or "EUR"
    old_limit = alice_copy.credit_limit
    new_limit = Money(Decimal(75_000) * _scale(currency), currency)
    report.line(f"  Alice and Bob both load {alice_copy.name!r} (version {alice_copy.version}),")
    report.line("  each in their own unit of work, then both save a change:")
    report.line()

    clock.advance(timedelta(minutes=3))
    with crm.unit_of_work(tenant) as uow:
        alice_copy.credit_limit = new_limit
        uow.customers.save(alice_copy)
        uow.record(
            CustomerUpdated(aggregate_id=customer_id, occurred_at=clock.now(), fields=("credit_limit",))
        )
        timeline.before_commit = len(received)
        uow.commit()
    timeline.after_alice = len(received)
    rows = [
        [
            "Alice",
            f"credit limit {money(old_limit)} -> {money(new_limit)}",
            "saved",
            f"v{alice_copy.version}",
        ]
    ]

    clock.advance(timedelta(minutes=1))
    outcomes = {"saved": 1, "ConcurrencyError": 0}
    with crm.unit_of_work(tenant) as uow:
        bob_copy.tags = (*bob_copy.tags, "key-account")
        try:
            uow.customers.save(bob_copy)
            uow.record(CustomerUpdated(aggregate_id=customer_id, occurred_at=clock.now(), fields=("tags",)))
            uow.commit()
            outcomes["saved"] += 1
            rows.append(["Bob", "adds tag 'key-account'", "saved (unexpected)", f"v{bob_copy.version}"])
            error = ""
        except ConcurrencyError as exc:
            outcomes["ConcurrencyError"] += 1
            error = str(exc)
            rows.append(["Bob", "adds tag 'key-account'", "ConcurrencyError", f"v{bob_copy.version} stale"])
    timeline.after_bob_failed = len(received)

    clock.advance(timedelta(minutes=1))
    with crm.unit_of_work(tenant) as uow:
        fresh = uow.customers.get(customer_id)
        fresh.tags = (*fresh.tags, "key-account")
        uow.customers.save(fresh)
        uow.record(CustomerUpdated(aggregate_id=customer_id, occurred_at=clock.now(), fields=("tags",)))
        uow.commit()
    timeline.after_bob_retry = len(received)
    rows.append(["Bob", "reloads, adds the tag again", "saved", f"v{fresh.version}"])

    report.table(["who", "change", "outcome", "version"], rows, "llll")
    report.line()
    if error:
        report.line("  Bob's save raised crmcore.ConcurrencyError:")
        for part in textwrap.wrap(error, _WIDTH - 4):
            report.line(f"    {part}")
    with crm.unit_of_work(tenant) as uow:
        final = uow.customers.get(customer_id)
    report.line(
        f"  Result: {outcomes['saved']} save won, {outcomes['ConcurrencyError']} raised ConcurrencyError; "
        "after Bob's retry"
    )
    report.line(
        f"  version {final.version} has both changes: credit limit {money(final.credit_limit)}, "
        f"tags {', '.join(final.tags)}."
    )
    return timeline


def _scale(currency: str) -> int:
    for country in COUNTRIES:
        if country.currency == currency:
            return country.credit_scale
    return 1


def _event_bus(received: list[CustomerUpdated], timeline: _Timeline, report: Report) -> None:
    report.section("Event bus: delivered after commit, never before")
    report.line("  crm.bus.subscribe(CustomerUpdated, handler) was called before the race;")
    report.line("  how many events the handler had received at each moment:")
    report.table(
        ["moment", "received"],
        [
            ["Alice saved and recorded her event, not yet committed", str(timeline.before_commit)],
            ["Alice's unit of work committed", str(timeline.after_alice)],
            ["Bob's save failed (his unit of work rolled back)", str(timeline.after_bob_failed)],
            ["Bob's retry committed", str(timeline.after_bob_retry)],
        ],
        "lr",
        indent=4,
    )
    report.line()
    report.table(
        ["event_type", "aggregate_id", "occurred_at", "fields"],
        [
            [e.event_type, e.aggregate_id, f"{e.occurred_at:%Y-%m-%d %H:%M}", ", ".join(e.fields)]
            for e in received
        ],
        "llll",
    )


def _outbox(crm: CRM, tenant: str, before_race: int, report: Report) -> None:
    report.section("Outbox: every committed event, in order, for other processes")
    pages: list[int] = []
    position = 0
    by_type: Counter[str] = Counter()
    while batch := crm.events_since(position, 1000, tenant=tenant):
        pages.append(len(batch))
        by_type.update(r.event.event_type for r in batch)
        position = batch[-1].position
    report.line(f"  Paging with crm.events_since(position, limit=1000, tenant={tenant!r}):")
    report.line(f"  {len(pages)} pages ({' + '.join(n(p) for p in pages)}) = {n(sum(pages))} events.")
    report.table(["event_type", "events"], [[k, n(v)] for k, v in sorted(by_type.items())], "lr", indent=4)
    report.line()
    new = crm.events_since(before_race, tenant=tenant)
    report.line(f"  A consumer that had read up to position {n(before_race)} before the race asks")
    report.line(f"  crm.events_since({before_race}) and gets just the {len(new)} new events:")
    report.table(
        ["position", "event_type", "aggregate_id", "occurred_at"],
        [
            [
                n(r.position),
                r.event.event_type,
                r.event.aggregate_id,
                f"{r.event.occurred_at:%Y-%m-%d %H:%M}",
            ]
            for r in new
        ],
        "rlll",
        indent=4,
    )


def _next_steps(crm: CRM, options: DemoOptions, report: Report) -> None:
    report.section("Next steps")
    if crm.capabilities.durable:
        with crm.unit_of_work(options.tenant) as uow:
            vips = uow.customers.count(Field("tags").contains("vip"))
        report.line("  The data stays in the store; explore it from Python:")
        report.line()
        report.line("    >>> import crmcore")
        report.line("    >>> from crmcore import Field")
        report.line(f'    >>> crm = crmcore.open("{options.db}")')
        report.line(f'    >>> with crm.unit_of_work("{options.tenant}") as uow:')
        report.line('    ...     uow.customers.count(Field("tags").contains("vip"))')
        report.line(f"    {vips}")
        report.line()
        report.line(
            f"  Running the demo again replaces tenants {options.tenant!r} and {options.second_tenant!r}."
        )
    else:
        report.line("  This store lives in memory; run with --db sqlite:///crm-demo.db to keep the data.")
    report.line("  Read docs/index.md for the concepts, the storage contract and the condition language;")
    report.line("  the service desk is in docs/tickets.md, calendars.md, assignment.md, escalation.md")
    report.line("  and service_metrics.md; sales in docs/leads_and_opportunities.md, pipelines.md,")
    report.line(
        "  lead_conversion.md, lead_scoring.md and quotes.md; analytics in docs/customer_summaries.md,"
    )
    report.line("  rfm.md, lifetime_value.md, churn.md, funnel.md and forecasting.md (models need")
    report.line('  pip install "crmcore[analytics]").')
