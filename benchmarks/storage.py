"""Storage benchmark: crmcore's `bulk_add` and `iter_all` against plain SQLAlchemy Core, same run.

Why a same-run baseline: the machines are shared and noisy, so absolute seconds drift from run to
run; the ratio to plain Core measured minutes apart on the same machine does not. The target is
crmcore within 1.5x of plain Core, for writing and for reading.

Method, per backend (SQLite file, PostgreSQL in a schema of its own):

- ``--n`` realistic customers (names, one or two emails, a phone, an address, tags, custom
  fields, a credit limit) are built once from a fixed seed, before anything is timed.
- crmcore write: ``with crm.unit_of_work(t) as uow: uow.customers.bulk_add(cs); uow.commit()``.
- crmcore read: a new unit of work consumes ``uow.customers.iter_all(batch_size=...)`` to the end.
- Core write: ``conn.execute(insert(customers), rows)`` in one transaction, where ``rows`` are
  the dicts crmcore itself writes (`customer_to_row`, with ``version`` 1 as `bulk_add` stamps
  it), built *before* the clock starts: the baseline times the executemany only.
- Core read: ``select(customers).where(tenant_id == t)`` in one statement, rows consumed fully
  and never turned into objects: the best case any mapping layer could reach.
- Both sides use the same engine (crmcore's, so the same pool, pragmas and column types) and the
  same table, which is dropped and recreated before every write, so each write starts empty.
- Each of ``--repeat`` repetitions times both sides; the order alternates between repetitions so
  neither side always runs on a warmer cache. Reported: the median of the repetitions, min-max,
  rows/s and the ratio crmcore / Core of the medians.
- Garbage collection stays on while timing (what the timed code allocates is collected as in
  any host), but the generated inputs are frozen out of it (`gc.freeze`) and a collection runs
  before each timed section: otherwise every full collection walks the benchmark's own millions
  of input objects and bills whichever side triggers it. ``--no-freeze`` measures without that.
- A separate, untimed pass measures the peak Python memory (tracemalloc) of reading every row
  with ``iter_all`` at several batch sizes, and a last pass checks that every customer read back
  equals the one written.

Run ``python benchmarks/storage.py --out docs/performance.md``: the figures replace the part of
that file between the ``benchmark-results`` markers, so the prose around them stays.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, create_engine, insert, select, text

import crmcore
from crmcore.customers import Address, Customer, CustomerKind, EmailAddress, PhoneNumber
from crmcore.ids import ulid
from crmcore.money import Money, minor_units
from crmcore.storage.sql import SqlStore
from crmcore.storage.sql.mapping import customer_to_row
from crmcore.storage.sql.tables import customers as customers_table

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET = 1.5
CRM_TENANT = "bench-crmcore"
CORE_TENANT = "bench-plaincore"
BEGIN_MARK = "<!-- benchmark-results:start -->"
END_MARK = "<!-- benchmark-results:end -->"

# --- realistic customers ---------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "Ada Alan Grace Linus Margaret Barbara Ken Dennis Frances Edsger Donald Radia Tim Sophie Jean "
    "Hedy Katherine John Mary Niklaus Ole-Johan Kristen Guido Bjarne Anita Shafi Leslie Tony Joan "
    "Lynn Annie Evelyn Ida Karen Chloé Zoë Jürgen Søren Ángel Łukasz Mei Hiro Priya Aarav"
)
_LAST = _words(
    "Lovelace Turing Hopper Torvalds Hamilton Liskov Thompson Ritchie Allen Dijkstra Knuth Perlman "
    "Berners-Lee Wilson Sammet Lamarr Johnson Backus Keller Wirth Dahl Nygaard van-Rossum Stroustrup "
    "Borg Goldwasser Lamport Hoare Clarke Conway Easley Boyd Rhodes Spärck-Jones Müller Ødegaard "
    "García Nowak Nakamura Sato Sharma Patel O'Brien"
)
_COMPANY_WORDS = _words(
    "Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay Nordwind "
    "Alpen Baltic Meridian Zenith Apex Harbor Summit Cedar Falcon Orion Atlas Helix"
)
_COMPANY_SUFFIX = ("GmbH", "Ltd", "Inc.", "AG", "SARL", "B.V.", "AB", "Oy", "S.p.A.", "LLC")
_DOMAINS = ("example.com", "mail.example.org", "example.net", "corp.example.de", "example.co.uk")
_PLACES = (  # country, city, region, postal code pattern, phone prefix, currency
    ("DE", "Berlin", "Berlin", "1####", "+49 30", "EUR"),
    ("DE", "München", "Bayern", "8####", "+49 89", "EUR"),
    ("FR", "Lyon", "Auvergne-Rhône-Alpes", "69###", "+33 4", "EUR"),
    ("GB", "Manchester", "Greater Manchester", "M# #AA", "+44 161", "GBP"),
    ("US", "Portland", "Oregon", "972##", "+1 503", "USD"),
    ("US", "Austin", "Texas", "787##", "+1 512", "USD"),
    ("SE", "Göteborg", "Västra Götaland", "41# ##", "+46 31", "SEK"),
    ("JP", "Osaka", "Osaka", "5##-####", "+81 6", "JPY"),
    ("IN", "Bengaluru", "Karnataka", "560###", "+91 80", "INR"),
    ("NL", "Utrecht", "Utrecht", "35## AB", "+31 30", "EUR"),
)
_STREETS = ("Hauptstraße", "Rue de la Paix", "High Street", "Main St", "Storgatan", "Kerkstraat")
_TAGS = (
    "vip",
    "newsletter",
    "b2b",
    "b2c",
    "churn-risk",
    "trial",
    "partner",
    "reseller",
    "enterprise",
    "smb",
    "event-2024",
    "webinar",
    "referral",
    "do-not-call",
    "gdpr-consent",
    "beta-tester",
)
_SOURCES = ("web", "webinar", "trade-show", "referral", "cold-call", "import", "partner")
_SEGMENTS = ("smb", "mid-market", "enterprise", "consumer")


def _pattern(rng: random.Random, pattern: str) -> str:
    return "".join(
        str(rng.randrange(10)) if ch == "#" else rng.choice("ABDEFHJLNPRSTUWXYZ") if ch == "A" else ch
        for ch in pattern
    )


def make_customers(n: int, seed: int = 20240601) -> list[Customer]:
    """``n`` varied customers, reproducible from ``seed``, with ids in creation (= id) order.

    About a quarter are companies; most have one email, some two; each has a phone and an
    address; most carry tags, custom fields and a credit limit, as a CRM import would.
    """
    rng = random.Random(seed)
    owners = [ulid(1_700_000_000_000 + i, rng.getrandbits(80)) for i in range(25)]
    start = datetime(2019, 1, 1, tzinfo=UTC)
    id_ms = 1_717_200_000_000
    cents = {p[5]: Decimal(1).scaleb(-minor_units(p[5])) for p in _PLACES}
    out: list[Customer] = []
    for i in range(n):
        id_ms += rng.randrange(1, 40)
        country, city, region, postal, dial, currency = rng.choice(_PLACES)
        company = rng.random() < 0.25
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        if company:
            name = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_SUFFIX)}"
            local = f"{rng.choice(('info', 'sales', 'billing', 'office'))}{i}"
        else:
            name = f"{first} {last}"
            local = f"{first.lower()}.{last.lower()}{i}"
        emails = [EmailAddress(address=f"{local}@{rng.choice(_DOMAINS)}", label="work", primary=True)]
        if rng.random() < 0.4:
            emails.append(EmailAddress(address=f"{first.lower()}{i}@home.example.com", label="home"))
        phone = f"{dial} {rng.randrange(100, 999)} {rng.randrange(1000, 99999)}"
        if rng.random() < 0.1:
            phone += f" ext. {rng.randrange(10, 999)}"
        address = Address(
            country=country,
            line1=f"{rng.choice(_STREETS)} {rng.randrange(1, 300)}",
            line2=f"Floor {rng.randrange(1, 20)}" if rng.random() < 0.2 else "",
            city=city,
            region=region,
            postal_code=_pattern(rng, postal),
            label="billing" if company else "home",
            primary=True,
        )
        created = start + timedelta(
            seconds=rng.randrange(0, 5 * 365 * 86400), microseconds=rng.randrange(10**6)
        )
        custom: dict[str, Any] = {
            "source": rng.choice(_SOURCES),
            "score": rng.randrange(0, 101),
            "segment": rng.choice(_SEGMENTS),
            "consent": {"email": rng.random() < 0.7, "sms": rng.random() < 0.2},
        }
        if rng.random() < 0.5:
            custom["lifetime_value"] = round(rng.uniform(0, 50_000), 2)
        if rng.random() < 0.2:
            custom["interests"] = rng.sample(("crm", "erp", "bi", "support", "mobile", "api"), 2)
        out.append(
            Customer(
                id=ulid(id_ms, rng.getrandbits(80)),
                name=name,
                kind=CustomerKind.COMPANY if company else CustomerKind.PERSON,
                emails=tuple(emails),
                phones=(PhoneNumber(number=phone, label="office" if company else "mobile", primary=True),),
                addresses=(address,),
                tags=tuple(rng.sample(_TAGS, rng.randrange(0, 5))),
                owner=rng.choice(owners),
                currency=currency,
                credit_limit=(
                    Money(Decimal(rng.randrange(5, 500) * 100).quantize(cents[currency]), currency)
                    if rng.random() < 0.8
                    else None
                ),
                birthday=(
                    date(1950, 1, 1) + timedelta(days=rng.randrange(0, 50 * 365))
                    if not company and rng.random() < 0.4
                    else None
                ),
                custom=custom,
                created_at=created,
                updated_at=created + timedelta(days=rng.randrange(0, 400)),
            )
        )
    return out


# --- backends --------------------------------------------------------------------------------


@dataclass
class Backend:
    """One database under test: crmcore opened on it, and a way to empty it between measurements."""

    name: str
    label: str
    crm: crmcore.CRM
    store: SqlStore

    @property
    def engine(self) -> Engine:
        """crmcore's own engine, which the baseline shares (same pool, pragmas and types)."""
        return self.store.engine

    def reset(self) -> None:
        """Drop and recreate crmcore's tables, so the next write starts from an empty table."""
        self.store.drop_schema()
        self.store.create_schema()


def _sql_store(crm: crmcore.CRM) -> SqlStore:
    if not isinstance(crm.store, SqlStore):
        raise TypeError(f"expected a SQL store, got {crm.store!r}")
    return crm.store


@contextmanager
def sqlite_backend() -> Iterator[Backend]:
    """crmcore on a SQLite file in a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="crmcore-bench-") as tmp:
        crm = crmcore.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            label = f"SQLite {sqlite3.sqlite_version} (file, WAL, synchronous=NORMAL)"
            yield Backend("sqlite", label, crm, _sql_store(crm))
        finally:
            crm.close()


@contextmanager
def postgresql_backend(url: str) -> Iterator[Backend]:
    """crmcore on PostgreSQL, in a schema of its own that is dropped afterwards.

    A private schema (first on the search path) keeps the benchmark away from any crm_ tables
    that tests or other users of the same database may have.
    """
    schema = f"crmcore_bench_{os.getpid()}"
    admin = create_engine(sqlalchemy.make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            server = str(conn.execute(text("SHOW server_version")).scalar())
        crm = crmcore.open(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            label = f"PostgreSQL {server.split()[0]} ({sqlalchemy.make_url(url).host}, psycopg 3)"
            yield Backend("postgresql", label, crm, _sql_store(crm))
        finally:
            crm.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


# --- what is timed ---------------------------------------------------------------------------


def crm_write(b: Backend, customers: list[Customer]) -> None:
    """crmcore: bulk_add every customer in one unit of work."""
    with b.crm.unit_of_work(CRM_TENANT) as uow:
        uow.customers.bulk_add(customers)
        uow.commit()


def crm_read(b: Backend, batch_size: int) -> int:
    """crmcore: read every customer back as objects with iter_all; returns how many."""
    count = 0
    with b.crm.unit_of_work(CRM_TENANT) as uow:
        for _ in uow.customers.iter_all(batch_size=batch_size):
            count += 1
    return count


def core_write(b: Backend, rows: list[dict[str, Any]]) -> None:
    """Plain Core: one executemany of prepared row dicts in one transaction."""
    with b.engine.begin() as conn:
        conn.execute(insert(customers_table), rows)


def core_read(b: Backend) -> int:
    """Plain Core: one SELECT of the tenant's rows, consumed fully as rows; returns how many."""
    count = 0
    with b.engine.connect() as conn:
        for _ in conn.execute(select(customers_table).where(customers_table.c.tenant_id == CORE_TENANT)):
            count += 1
    return count


def core_read_streamed(b: Backend, batch_size: int) -> int:
    """Plain Core with iter_all's access pattern: id order, streamed ``batch_size`` rows at a time."""
    count = 0
    stmt = (
        select(customers_table)
        .where(customers_table.c.tenant_id == CORE_TENANT)
        .order_by(customers_table.c.id)
        .execution_options(stream_results=True, yield_per=batch_size)
    )
    with b.engine.connect() as conn:
        for _ in conn.execute(stmt):
            count += 1
    return count


def core_rows(customers: list[Customer]) -> list[dict[str, Any]]:
    """The rows crmcore writes for ``customers`` (version 1, as bulk_add stamps it), for the baseline."""
    rows = [customer_to_row(c, CORE_TENANT) for c in customers]
    for row in rows:
        row["version"] = 1
    return rows


def timed(action: Callable[[], object]) -> tuple[float, object]:
    """Seconds ``action`` takes (after a garbage collection, so earlier garbage is not billed)."""
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


# --- results ---------------------------------------------------------------------------------


_KEYS = ("crm_write", "core_write", "crm_read", "core_read", "core_stream")


@dataclass
class Timings:
    """Seconds of each repetition of one measurement."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median seconds."""
        return statistics.median(self.runs)

    def spread(self) -> str:
        """min-max, for a sense of the noise."""
        return f"{min(self.runs):.2f}-{max(self.runs):.2f}"


@dataclass
class BackendResult:
    """Everything measured on one backend."""

    label: str
    timings: dict[str, Timings] = field(default_factory=lambda: {k: Timings() for k in _KEYS})
    peak_mib: dict[int, float] = field(default_factory=dict)
    verified: bool = False

    def ratio(self, op: str) -> float:
        """crmcore median / plain Core median for ``op`` ("write", "read", or "stream": the read
        against plain Core streaming in id order like iter_all)."""
        crm = self.timings["crm_read" if op == "stream" else f"crm_{op}"]
        return crm.median / self.timings[f"core_{op}"].median


def run_backend(
    b: Backend,
    customers: list[Customer],
    rows: list[dict[str, Any]],
    *,
    repeat: int,
    batch_size: int,
    memory_batch_sizes: Sequence[int],
    log: Callable[[str], None],
) -> BackendResult:
    """Warm up, time both sides ``repeat`` times in alternating order, then measure memory and verify."""
    n = len(customers)
    result = BackendResult(b.label)

    def crm_side() -> None:
        b.reset()
        seconds, _ = timed(lambda: crm_write(b, customers))
        result.timings["crm_write"].runs.append(seconds)
        seconds, count = timed(lambda: crm_read(b, batch_size))
        result.timings["crm_read"].runs.append(seconds)
        if count != n:
            raise AssertionError(f"crmcore read {count} customers, wrote {n}")

    def core_side() -> None:
        b.reset()
        seconds, _ = timed(lambda: core_write(b, rows))
        result.timings["core_write"].runs.append(seconds)
        seconds, count = timed(lambda: core_read(b))
        result.timings["core_read"].runs.append(seconds)
        if count != n:
            raise AssertionError(f"plain Core read {count} rows, wrote {n}")
        seconds, count = timed(lambda: core_read_streamed(b, batch_size))
        result.timings["core_stream"].runs.append(seconds)
        if count != n:
            raise AssertionError(f"plain Core streamed {count} rows, wrote {n}")

    # Warm-up: imports, statement caches, connection pool, server plans. Not recorded.
    warm = min(n, 1000)
    b.reset()
    crm_write(b, customers[:warm])
    crm_read(b, batch_size)
    core_write(b, rows[:warm])
    core_read(b)
    core_read_streamed(b, batch_size)

    for rep in range(repeat):
        sides = (crm_side, core_side) if rep % 2 == 0 else (core_side, crm_side)
        for side in sides:
            side()
        t = result.timings
        log(
            f"  {b.name} rep {rep + 1}/{repeat}: write crmcore {t['crm_write'].runs[-1]:.2f}s "
            f"core {t['core_write'].runs[-1]:.2f}s; read crmcore {t['crm_read'].runs[-1]:.2f}s "
            f"core {t['core_read'].runs[-1]:.2f}s, streamed in id order {t['core_stream'].runs[-1]:.2f}s"
        )

    b.reset()
    crm_write(b, customers)
    for size in memory_batch_sizes:
        result.peak_mib[size] = peak_read_mib(b, size)
        log(f"  {b.name} iter_all(batch_size={size}) peak {result.peak_mib[size]:.1f} MiB")
    verify(b, customers)
    result.verified = True
    log(f"  {b.name}: all {n} customers read back equal to those written")
    return result


def peak_read_mib(b: Backend, batch_size: int) -> float:
    """Peak Python memory (MiB, tracemalloc) allocated while reading every customer with iter_all."""
    gc.collect()
    tracemalloc.start()
    try:
        crm_read(b, batch_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def verify(b: Backend, customers: list[Customer]) -> None:
    """Every customer read back with iter_all equals the one written, in id order."""
    expected = iter(sorted(customers, key=lambda c: c.id))
    count = 0
    with b.crm.unit_of_work(CRM_TENANT) as uow:
        for got in uow.customers.iter_all():
            want = next(expected, None)
            if got != want:
                raise AssertionError(f"read back {got!r}, wrote {want!r}")
            count += 1
    if count != len(customers):
        raise AssertionError(f"read back {count} customers, wrote {len(customers)}")


def profile(b: Backend, customers: list[Customer], batch_size: int, top: int) -> str:
    """cProfile of one crmcore write and one read (both sorted by own time), as text."""
    out = io.StringIO()
    for what, action in (
        ("bulk_add", lambda: crm_write(b, customers)),
        ("iter_all", lambda: crm_read(b, batch_size)),
    ):
        if what == "bulk_add":
            b.reset()
        profiler = cProfile.Profile()
        profiler.runcall(action)
        out.write(f"\n=== {b.name}: crmcore {what}, {len(customers)} customers ===\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- report ----------------------------------------------------------------------------------


def render(
    results: dict[str, BackendResult],
    *,
    n: int,
    repeat: int,
    batch_size: int,
    frozen: bool,
    when: datetime,
) -> str:
    """The results as Markdown: environment, a summary, one table per backend, memory."""
    command = f"python benchmarks/storage.py --n {n} --repeat {repeat} --batch-size {batch_size}"
    lines = [
        f"Measured {when:%Y-%m-%d %H:%M} UTC with `{command}{'' if frozen else ' --no-freeze'}`.",
        "",
        f"- Machine: {os.cpu_count()} CPUs ({platform.machine()}, {platform.system()}), shared with "
        "other work, so expect a few percent of noise between runs",
        f"- Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
        f"psycopg {_version('psycopg')}, crmcore {crmcore.__version__}",
        f"- Generated inputs frozen out of the garbage collector: {'yes' if frozen else 'no'}",
        "",
        f"| backend | write: crmcore / Core | read: crmcore / Core | read: crmcore / Core in id order, "
        f"streamed (for information) | target <= {TARGET}x |",
        "|---|---:|---:|---:|---|",
    ]
    names = {"write": "write", "read": "read"}
    for result in results.values():
        verdicts = ", ".join(
            f"{names[op]} {'met' if result.ratio(op) <= TARGET else '**missed**'}" for op in ("write", "read")
        )
        lines.append(
            f"| {result.label} | {result.ratio('write'):.2f}x | {result.ratio('read'):.2f}x "
            f"| {result.ratio('stream'):.2f}x | {verdicts} |"
        )
    lines.append("")
    for result in results.values():
        t = result.timings
        lines += [
            f"### {result.label}",
            "",
            f"{n:,} customers; seconds are the median of {repeat} runs, min-max in brackets.",
            "",
            "| | crmcore | plain Core | crmcore / Core |",
            "|---|---:|---:|---:|",
        ]
        for op, verb in (("write", "write (`bulk_add` + commit)"), ("read", "read (`iter_all`)")):
            crm, core = t[f"crm_{op}"], t[f"core_{op}"]
            lines.append(
                f"| {verb} | {crm.median:.2f} s ({crm.spread()}) | {core.median:.2f} s ({core.spread()}) "
                f"| **{result.ratio(op):.2f}x** |"
            )
        crm, core = t["crm_read"], t["core_stream"]
        lines.append(
            f"| read, plain Core in id order streamed by {batch_size} (iter_all's access pattern) "
            f"| {crm.median:.2f} s ({crm.spread()}) | {core.median:.2f} s ({core.spread()}) "
            f"| **{result.ratio('stream'):.2f}x** |"
        )
        for op in ("write", "read"):
            crm, core = t[f"crm_{op}"], t[f"core_{op}"]
            lines.append(f"| {op}, rows/s | {n / crm.median:,.0f} | {n / core.median:,.0f} | |")
        if result.peak_mib:
            peaks = ", ".join(f"{m:.1f} MiB at `batch_size={s}`" for s, m in result.peak_mib.items())
            lines += ["", f"Peak Python memory while `iter_all` reads all {n:,} (tracemalloc): {peaks}."]
        if result.verified:
            lines += ["", f"Checked: all {n:,} customers read back equal to those written."]
        lines.append("")
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def write_report(path: Path, section: str) -> None:
    """Put ``section`` between the result markers of ``path`` (or write a new file around it)."""
    block = f"{BEGIN_MARK}\n{section.rstrip()}\n{END_MARK}"
    if path.exists():
        old = path.read_text(encoding="utf-8")
        start, end = old.find(BEGIN_MARK), old.find(END_MARK)
        if 0 <= start < end:
            path.write_text(old[:start] + block + old[end + len(END_MARK) :], encoding="utf-8")
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Storage performance\n\n{block}\n", encoding="utf-8")


# --- command line ----------------------------------------------------------------------------


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _sizes(value: str) -> list[int]:
    return [_positive(v) for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=_positive, default=100_000, help="customers (default 100000)")
    parser.add_argument("--repeat", type=_positive, default=5, help="repetitions; the median is reported")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--batch-size", type=_positive, default=1000, help="iter_all batch size")
    parser.add_argument(
        "--memory-batch-sizes",
        type=_sizes,
        default=[100, 1000, 10000],
        help="batch sizes for the tracemalloc pass (empty to skip)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CRMCORE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL URL (default $CRMCORE_BENCH_POSTGRES_URL or the local test database)",
    )
    parser.add_argument(
        "--no-freeze",
        dest="freeze",
        action="store_false",
        help="leave the generated inputs to the garbage collector (see the module docstring)",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the generated customers")
    parser.add_argument("--out", type=Path, help="Markdown file to put the results in")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one crmcore write and read instead"
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - {"sqlite", "postgresql"})
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}: choose from sqlite, postgresql")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown results and optionally write them to ``--out``."""
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log(f"building {args.n:,} customers (seed {args.seed}) ...")
    customers = make_customers(args.n, args.seed)
    rows = core_rows(customers)
    if args.freeze:
        # The inputs (millions of objects) are the benchmark's, not the library's: keep the
        # collector from walking them on every full collection, which would bill either side
        # for a heap a real host would not have. Garbage the timed code makes is still collected.
        gc.collect()
        gc.freeze()
    results: dict[str, BackendResult] = {}
    for name in args.backends:
        context = sqlite_backend() if name == "sqlite" else postgresql_backend(args.postgres_url)
        with context as backend:
            if args.profile:
                print(profile(backend, customers, args.batch_size, top=30))
                continue
            log(f"{backend.label}:")
            results[name] = run_backend(
                backend,
                customers,
                rows,
                repeat=args.repeat,
                batch_size=args.batch_size,
                memory_batch_sizes=args.memory_batch_sizes,
                log=log,
            )
    if args.profile:
        return 0
    section = render(
        results,
        n=args.n,
        repeat=args.repeat,
        batch_size=args.batch_size,
        frozen=args.freeze,
        when=datetime.now(UTC),
    )
    print(section)
    if args.out is not None:
        write_report(args.out, section)
        log(f"results written to {args.out}")
    missed = [
        f"{name} {op}" for name, r in results.items() for op in ("write", "read") if r.ratio(op) > TARGET
    ]
    if missed:
        log(f"target {TARGET}x missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
