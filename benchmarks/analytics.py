"""Analytics benchmark: customer summaries and the BG/NBD fit, next to the ``lifetimes`` package.

Summaries: ``--orders`` orders of ``--customers`` customers (fixed seed: every customer has at least
one order, the rest go to customers drawn with skewed weights, at random seconds over two years, a
third of them on a day the customer already bought, one in 20 refunded) are loaded with
``uow.orders.bulk_add`` in batches (load time reported apart, never in the timed part; it includes
keeping the per-customer rollup ``crm_order_stats`` current). Timed:
``crmcore.analytics.summaries.customer_summaries(uow, observed_at, unit="weeks", currency="USD")``
in a new unit of work (the rollup read in one statement, customers with orders after
``observed_at`` aggregated from their orders, then the columns computed), on a SQLite file and on
PostgreSQL (a fresh tenant, purged at the end), against lifetimes'
``summary_data_from_transaction_data(df, ..., freq="D", freq_multiplier=7)`` on a pandas DataFrame of
the same counted transactions (customer id, naive UTC timestamp, amount; built before the clock
starts). Both sides read the same conventions: a purchase is a UTC day, recency and T in whole days
divided by 7, monetary value the mean of the repeat days' spend. Three races per store: observed at
the end of the data (the target), the same with crmcore's ``.to_dataframe()`` included, and
observed a year earlier (most customers then have orders on both sides, so crmcore aggregates
them from the orders). A check after each compares frequency, recency, T and monetary value for a
sample of customers.

BG/NBD: `crmcore.analytics.clv.BetaGeoModel().fit(frequency, recency, age)` against
``lifetimes.BetaGeoFitter().fit(frequency, recency, T)`` on the 2,357-customer CDNOW summary that ships
with lifetimes (``datasets/cdnow_customers_summary.csv``, read by path), asserting the same four
parameters to 3 significant figures.

Each figure is the median of ``--repeat`` (summaries) or ``--fit-repeat`` (fits) runs, min-max shown;
the side that runs first alternates. Run: ``python benchmarks/analytics.py`` (``--orders 1000000
--customers 100000`` for the full size; ``--no-postgres`` without a server).
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

import crmcore
from crmcore.analytics.clv import BetaGeoFit, BetaGeoModel
from crmcore.analytics.summaries import CustomerSummaries, customer_summaries
from crmcore.customers.order import Order, OrderLine, OrderStatus
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.money import Money

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 730 * 86_400
OBSERVED_AT = START + timedelta(days=730, hours=23, minutes=59, seconds=59)
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SAMPLE = 2_000


@dataclass(frozen=True)
class Transactions:
    """The generated orders as plain columns (one entry per order)."""

    customer_ids: list[str]
    seconds: list[int]
    cents: list[int]
    refunded: list[bool]


def generate(n_orders: int, n_customers: int, seed: int) -> Transactions:
    """Seeded orders: one per customer first, the rest to skewed random customers (see module docs)."""
    if n_orders < n_customers:
        raise SystemExit("--orders must be at least --customers (every customer has an order)")
    rng = random.Random(seed)
    ids = [f"cust{i:07d}" for i in range(n_customers)]
    weights = [rng.gammavariate(0.7, 1.0) for _ in range(n_customers)]
    picks = list(range(n_customers)) + rng.choices(range(n_customers), weights, k=n_orders - n_customers)
    rng.shuffle(picks)
    last: dict[int, int] = {}
    customer_ids: list[str] = []
    seconds: list[int] = []
    for c in picks:
        prior = last.get(c)
        if prior is not None and rng.random() < 0.3:  # another order on a day the customer already bought
            s = prior - prior % 86_400 + rng.randrange(86_400)
        else:
            s = rng.randrange(SPAN_SECONDS)
        last[c] = s
        customer_ids.append(ids[c])
        seconds.append(s)
    cents = [rng.randrange(500, 25_000) for _ in range(n_orders)]
    refunded = [rng.random() < 0.05 for _ in range(n_orders)]
    return Transactions(customer_ids, seconds, cents, refunded)


def orders(tx: Transactions, start: int, stop: int) -> list[Order]:
    """Orders ``start:stop`` of the generated transactions, one line each, in USD."""
    out = []
    for i in range(start, stop):
        price = Money(Decimal(tx.cents[i]).scaleb(-2), "USD")
        out.append(
            Order(
                customer_id=tx.customer_ids[i],
                ordered_at=START + timedelta(seconds=tx.seconds[i]),
                currency="USD",
                lines=[OrderLine(product="Widget", unit_price=price)],
                status=OrderStatus.REFUNDED if tx.refunded[i] else OrderStatus.PAID,
            )
        )
    return out


def load(crm: CRM, tenant: str, tx: Transactions, batch: int) -> float:
    """bulk_add every order in batches of ``batch`` (one commit each); seconds, building orders included."""
    started = time.perf_counter()
    for start in range(0, len(tx.customer_ids), batch):
        chunk = orders(tx, start, min(start + batch, len(tx.customer_ids)))
        with crm.unit_of_work(tenant) as uow:
            uow.orders.bulk_add(chunk)
            uow.commit()
    return time.perf_counter() - started


def quiet_import(name: str) -> Any:
    """Import a module of the old lifetimes package without its pandas deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*mode.chained_assignment.*")
        return importlib.import_module(name)


def frame(tx: Transactions) -> Any:
    """The counted transactions as the DataFrame lifetimes takes: customer_id, date (naive UTC), amount."""
    pd = quiet_import("pandas")
    keep = [i for i, r in enumerate(tx.refunded) if not r]
    base = START.replace(tzinfo=None)
    return pd.DataFrame(
        {
            "customer_id": [tx.customer_ids[i] for i in keep],
            "date": pd.to_datetime([base + timedelta(seconds=tx.seconds[i]) for i in keep]),
            "amount": [tx.cents[i] / 100 for i in keep],
        }
    )


def lifetimes_summaries(df: Any, observed_at: datetime = OBSERVED_AT) -> Any:
    """lifetimes' summary with daily periods, recency and T in weeks (days / 7), as crmcore's."""
    utils = quiet_import("lifetimes.utils")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return utils.summary_data_from_transaction_data(
            df,
            "customer_id",
            "date",
            monetary_value_col="amount",
            observation_period_end=observed_at.replace(tzinfo=None),
            freq="D",
            freq_multiplier=7,
        )


def crmcore_summaries(crm: CRM, tenant: str, observed_at: datetime = OBSERVED_AT) -> CustomerSummaries:
    """customer_summaries in weeks, in USD, from a new unit of work."""
    with crm.unit_of_work(tenant) as uow:
        return customer_summaries(uow, observed_at, unit="weeks", currency="USD")


@dataclass(frozen=True)
class Timing:
    """Median and range of repeated runs, in seconds."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.runs)

    def show(self) -> str:
        """``1.23 s (1.20-1.30)``."""
        return f"{self.median:.3f} s ({min(self.runs):.3f}-{max(self.runs):.3f})"


def race(ours: Callable[[], object], theirs: Callable[[], object], repeat: int) -> tuple[Timing, Timing]:
    """Time both sides ``repeat`` times, alternating which goes first, a collection before each."""
    a: list[float] = []
    b: list[float] = []
    for i in range(repeat):
        pair = [(ours, a), (theirs, b)]
        for fn, into in pair if i % 2 == 0 else reversed(pair):
            gc.collect()
            started = time.perf_counter()
            fn()
            into.append(time.perf_counter() - started)
    return Timing(tuple(a)), Timing(tuple(b))


def check_agreement(ours: CustomerSummaries, theirs: Any, seed: int) -> str:
    """Assert frequency equal and recency, T, monetary value equal for a sample; say what was checked."""
    assert len(ours) == len(theirs), f"crmcore has {len(ours)} customers, lifetimes {len(theirs)}"
    ids = sorted(s.customer_id for s in ours)
    sample = random.Random(seed).sample(ids, min(SAMPLE, len(ids)))
    worst = 0.0
    for cid in sample:
        s = ours.get(cid)
        assert s is not None
        row = theirs.loc[cid]
        assert s.frequency == int(row["frequency"]), (cid, s.frequency, row["frequency"])
        assert abs(s.recency - float(row["recency"])) < 1e-9, (cid, s.recency, row["recency"])
        assert abs(s.age - float(row["T"])) < 1e-9, (cid, s.age, row["T"])
        worst = max(worst, abs(float(s.monetary_value.amount) - float(row["monetary_value"])))
    assert worst <= 0.005 + 1e-9, f"monetary value differs by {worst}"
    return (
        f"{len(sample):,} sampled customers of {len(ours):,}: frequency, recency and T identical, "
        f"monetary value within {worst:.4f} (crmcore rounds to the cent)"
    )


def cdnow() -> tuple[Any, Any]:
    """The CDNOW summary: crmcore's input as three float arrays, lifetimes' as a DataFrame."""
    np = importlib.import_module("numpy")
    pd = quiet_import("pandas")
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the CDNOW summary ships in the 'lifetimes' package: pip install lifetimes")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "cdnow_customers_summary.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    arrays = tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))
    return arrays, pd.read_csv(path)


def bench_fit(repeat: int) -> list[str]:
    """Time the two BG/NBD fits on CDNOW, assert the same parameters; markdown lines."""
    (x, t_x, age), df = cdnow()
    lifetimes = quiet_import("lifetimes")
    got: list[BetaGeoFit] = []
    theirs: list[Any] = []

    def ours_fit() -> None:
        got.append(BetaGeoModel().fit(x, t_x, age))

    def their_fit() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.append(lifetimes.BetaGeoFitter().fit(df["frequency"], df["recency"], df["T"]))

    ours_fit()  # warm-up: numpy, scipy and the optimizer loaded and compiled on both sides
    their_fit()
    ours_t, theirs_t = race(ours_fit, their_fit, repeat)
    fit, ref = got[-1], theirs[-1].params_
    cells = []
    for name in ("r", "alpha", "a", "b"):
        mine, other = getattr(fit, name), float(ref[name])
        assert f"{mine:.3g}" == f"{other:.3g}", f"{name}: crmcore {mine:.6g}, lifetimes {other:.6g}"
        cells.append(f"{name} {mine:.4g} / {other:.4g}")
    ratio = theirs_t.median / ours_t.median
    return [
        "| fit | crmcore | lifetimes | lifetimes / crmcore | target |",
        "|---|---:|---:|---:|---|",
        f"| BG/NBD on CDNOW ({fit.n_customers:,} customers) | {ours_t.show()} | {theirs_t.show()} | "
        f"**{ratio:.1f}x** | >= 5x: {'met' if ratio >= 5 else '**missed**'} |",
        "",
        f"Same parameters to 3 significant figures (crmcore / lifetimes): {', '.join(cells)}; "
        f"{repeat} runs each after a warm-up.",
    ]


@contextmanager
def opened(url: str, tmp: str) -> Iterator[tuple[str, CRM]]:
    """(label, crm) for ``sqlite`` (a file in ``tmp``) or a PostgreSQL URL.

    On PostgreSQL the store lives in a schema of its own (first on the search path), dropped at the
    end, so tables that tests or others change in the shared database cannot get in the way.
    """
    if url == "sqlite":
        crm = crmcore.open(f"sqlite:///{tmp}/analytics.db")
        try:
            yield f"SQLite {sqlite3.sqlite_version} (file, WAL)", crm
        finally:
            crm.close()
        return
    schema = f"crmcore_bench_analytics_{os.getpid()}"
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            server = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
        crm = crmcore.open(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            yield f"PostgreSQL {server} ({make_url(url).host}, psycopg 3)", crm
        finally:
            crm.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def measure_store(
    args: argparse.Namespace, tx: Transactions, df: Any, url: str, tmp: str
) -> tuple[list[str], str]:
    """Load one store, race the summaries (at the end, a year earlier, and into a DataFrame), check
    they agree; (table rows, note)."""
    with opened(url, tmp) as (label, crm):
        tenant = f"bench-analytics-{new_id()}"
        print(f"loading {len(tx.customer_ids):,} orders into {label} ...", file=sys.stderr)
        loaded = load(crm, tenant, tx, args.batch)
        crmcore_summaries(crm, tenant)  # warm-up: the page cache and the query plan
        ours: list[CustomerSummaries] = []
        theirs: list[Any] = []
        ours_t, theirs_t = race(
            lambda: ours.append(crmcore_summaries(crm, tenant)),
            lambda: theirs.append(lifetimes_summaries(df)),
            args.repeat,
        )
        note = f"{label}: {check_agreement(ours[-1], theirs[-1], args.seed)}."
        frame_t, theirs_frame_t = race(
            lambda: crmcore_summaries(crm, tenant).to_dataframe(),
            lambda: lifetimes_summaries(df),
            args.repeat,
        )
        earlier = OBSERVED_AT - timedelta(days=365)
        mid: list[CustomerSummaries] = []
        theirs_mid: list[Any] = []
        mid_t, theirs_mid_t = race(
            lambda: mid.append(crmcore_summaries(crm, tenant, earlier)),
            lambda: theirs_mid.append(lifetimes_summaries(df, earlier)),
            args.repeat,
        )
        note += f" A year earlier: {check_agreement(mid[-1], theirs_mid[-1], args.seed)}."
        crm.purge_tenant(tenant)
    rate = len(tx.customer_ids) / loaded

    def row(what: str, mine: Timing, other: Timing, target: bool) -> str:
        ratio = other.median / mine.median
        verdict = ("met" if ratio >= 3 else "**missed**") if target else "(no target)"
        return f"| {label} | {what} | {mine.show()} | {other.show()} | **{ratio:.1f}x** | {verdict} |"

    return [
        row(
            f"at the end of the data (load {loaded:.0f} s, {rate:,.0f} orders/s, apart)",
            ours_t,
            theirs_t,
            True,
        ),
        row("the same, plus `.to_dataframe()`", frame_t, theirs_frame_t, False),
        row("a year earlier (most customers bought after it)", mid_t, theirs_mid_t, False),
    ], note


def bench_summaries(args: argparse.Namespace, tx: Transactions) -> list[str]:
    """Load, time and check summaries on each store; markdown lines."""
    df = frame(tx)
    lines = [
        "| store | observed | crmcore `customer_summaries` | lifetimes "
        "`summary_data_from_transaction_data` | lifetimes / crmcore | target >= 3x |",
        "|---|---|---:|---:|---:|---|",
    ]
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for url in ["sqlite"] if args.no_postgres else ["sqlite", args.postgres]:
            rows, note = measure_store(args, tx, df, url, tmp)
            lines += rows
            notes.append(note)
    return [*lines, "", *notes]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run both benchmarks, print markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="summary runs per side")
    parser.add_argument("--fit-repeat", type=int, default=7, help="BG/NBD fits per side")
    parser.add_argument("--batch", type=int, default=10_000, help="orders per bulk_add")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--postgres", default=os.environ.get("CRMCORE_TEST_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--skip-summaries", action="store_true", help="only the BG/NBD fit")
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    load_before = os.getloadavg()
    command = " ".join(["python benchmarks/analytics.py", *(sys.argv[1:] if argv is None else argv)])
    out = [f"Measured {started:%Y-%m-%d %H:%M} UTC with `{command}`.", ""]
    out += bench_fit(args.fit_repeat)
    if not args.skip_summaries:
        tx = generate(args.orders, args.customers, args.seed)
        counted = sum(1 for r in tx.refunded if not r)
        out += [
            "",
            f"{args.orders:,} orders ({counted:,} counted, the rest refunded) of {args.customers:,} "
            f"customers; {args.repeat} runs each after a warm-up.",
            "",
            *bench_summaries(args, tx),
        ]
    load_after = os.getloadavg()
    out += [
        "",
        f"- Machine: {os.cpu_count()} CPUs ({platform.machine()}, {platform.system()}), shared with other "
        f"work; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        f"- Python {platform.python_version()}, crmcore {metadata.version('crmcore')}, lifetimes "
        f"{metadata.version('lifetimes')}, pandas {metadata.version('pandas')}, numpy "
        f"{metadata.version('numpy')}, scipy {metadata.version('scipy')}",
    ]
    print("\n".join(out))


if __name__ == "__main__":
    main()
