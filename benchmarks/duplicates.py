"""Duplicate-detection benchmark: speed, recall and precision of `find_duplicates` on 100,000 customers.

Method:

- ``--n`` customers: ``n - 2%`` from `crmcore.demo_data.generate_customers` (fixed seed), then 2% seeded
  duplicates, each a new record (new id, created later) of a distinct original, made the way
  duplicates arise in a CRM (see `seed_population`): a typo in the name (swap, drop or insert a
  letter) in most, and one of several realistic variations of the contact data.
- The generator draws names from 16 first x 16 last names per country and derives emails and
  company web domains from names, so its emails and domains collide between unrelated records.
  Real addresses belong to one person and domains to one company, so colliding emails get a
  number and colliding company domains a suffix (``summit-software-2.com``) *before* seeding.
  Names stay as generated: thousands of same-name people per city, a hard case for precision.
- The customers are loaded into a SQLite file store with ``bulk_add`` (not timed); then timed:
  a new unit of work reads them back with ``iter_all`` and `scan_duplicates` runs on them.
- Recall: seeded pairs reported / seeded pairs. Precision: seeded pairs among reported / reported.
  A reported pair that is not seeded is a false positive, whatever it looks like; the script
  lists a sample of them with their reasons, split into pairs of two generated records and
  pairs involving a seeded duplicate, so they can be examined.
- ``--repeat`` runs; the median is reported.

Run: ``python benchmarks/duplicates.py --n 100000 --repeat 3``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import attrs
import phonenumbers

import crmcore
from crmcore.clock import FixedClock
from crmcore.customers import Address, Customer, CustomerKind, EmailAddress, PhoneNumber, phone_region
from crmcore.customers.duplicates import DuplicatePair, DuplicateRules, scan_duplicates
from crmcore.demo_data import COUNTRIES, DEMO_NOW, Country, generate_customers, seeded_id

SCENARIOS: dict[str, int] = {
    "same_email": 25,
    "phone_reformatted": 25,
    "email_typo": 20,
    "same_address": 15,
    "birthday_or_company_domain": 13,
    "moved": 2,
}
"""Seeded variations and their shares (percent). ``moved`` keeps only the name and the birthday:
no engine can tell it from a namesake, so it bounds recall on purpose."""

_BY_CODE = {c.code: c for c in COUNTRIES}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@attrs.frozen
class Population:
    """Customers with seeded duplicates, and which pairs were seeded (by scenario)."""

    customers: tuple[Customer, ...]
    seeded: dict[frozenset[str], str]
    """{original id, duplicate id} -> scenario."""


@attrs.frozen
class Quality:
    """Recall and precision of reported pairs against the seeded ones."""

    recall: float
    precision: float
    found: int
    seeded: int
    reported: int
    missed_by_scenario: dict[str, int]
    false_natural: tuple[DuplicatePair, ...]
    false_seeded: tuple[DuplicatePair, ...]


def seed_population(n: int, *, rate: float = 0.02, seed: int = 7) -> Population:
    """``n`` customers of which ``round(n * rate)`` are seeded duplicates of distinct others."""
    dups = round(n * rate)
    base = _unique_contact_points(list(generate_customers(n - dups, seed=seed)))
    rng = random.Random(seed + 1)
    originals = rng.sample(base, dups)
    names, weights = list(SCENARIOS), list(SCENARIOS.values())
    seeded: dict[frozenset[str], str] = {}
    customers = list(base)
    taken = {e.address.casefold() for c in base for e in c.emails}
    for original in originals:
        scenario = rng.choices(names, weights)[0]
        duplicate = _duplicate(original, scenario, rng, taken)
        customers.append(duplicate)
        seeded[frozenset((original.id, duplicate.id))] = scenario
    rng.shuffle(customers)
    return Population(customers=tuple(customers), seeded=seeded)


def measure(pairs: Sequence[DuplicatePair], population: Population) -> Quality:
    """Recall and precision of ``pairs`` against the population's seeded pairs."""
    reported = {frozenset((p.a, p.b)): p for p in pairs}
    found = [k for k in population.seeded if k in reported]
    missed = Counter(s for k, s in population.seeded.items() if k not in reported)
    seeded_ids = {i for k in population.seeded for i in k}
    dup_ids = set()
    for key in population.seeded:
        dup_ids.add(max(key))  # duplicates are created later, so their ULID is the larger
    false = [p for k, p in reported.items() if k not in population.seeded]
    natural = tuple(p for p in false if p.a not in dup_ids and p.b not in dup_ids)
    del seeded_ids
    return Quality(
        recall=len(found) / len(population.seeded) if population.seeded else 1.0,
        precision=len(found) / len(reported) if reported else 1.0,
        found=len(found),
        seeded=len(population.seeded),
        reported=len(reported),
        missed_by_scenario=dict(sorted(missed.items())),
        false_natural=natural,
        false_seeded=tuple(p for p in false if p not in natural),
    )


def _unique_contact_points(customers: list[Customer]) -> list[Customer]:
    seen_emails: set[str] = set()
    seen_domains: Counter[str] = Counter()
    result = []
    for customer in customers:
        emails = []
        for email in customer.emails:
            local, _, domain = email.address.rpartition("@")
            if customer.kind is CustomerKind.COMPANY:
                seen_domains[domain] += 1
                if seen_domains[domain] > 1:
                    stem, _, tld = domain.partition(".")
                    domain = f"{stem}-{seen_domains[domain]}.{tld}"
            address, number = f"{local}@{domain}", 1
            while address.casefold() in seen_emails:
                number += 1
                address = f"{local}{number}@{domain}"
            seen_emails.add(address.casefold())
            emails.append(email if address == email.address else attrs.evolve(email, address=address))
        changed = any(new is not old for new, old in zip(emails, customer.emails, strict=True))
        result.append(attrs.evolve(customer, emails=tuple(emails)) if changed else customer)
    return result


def _typo(word: str, rng: random.Random) -> str:
    """One swap, drop or insert of a letter, somewhere among the letters of ``word``."""
    spots = [i for i, c in enumerate(word) if c.isalpha()]
    if len(spots) < 3:
        return word
    kind = rng.choice(("swap", "drop", "insert"))
    at = rng.choice(spots[:-1])
    if kind == "swap" and word[at + 1].isalpha() and word[at] != word[at + 1]:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if kind == "drop":
        return word[:at] + word[at + 1 :]
    return word[:at] + rng.choice(_LETTERS) + word[at:]


def _name_typo(name: str, rng: random.Random) -> str:
    words = name.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3]
    if not candidates:
        return name
    index = rng.choice(candidates)
    words[index] = _typo(words[index], rng)
    return " ".join(words)


def _new_phone(country: Country, rng: random.Random) -> PhoneNumber:
    groups = ["".join(str(rng.randrange(10)) for _ in range(n)) for n in country.phone_digits]
    groups[0] = str(rng.randrange(1, 10)) + groups[0][1:]
    return PhoneNumber(number=" ".join([country.calling_code, *groups]), label="mobile")


def _reformatted(phone: PhoneNumber, country: Country, rng: random.Random) -> PhoneNumber:
    """The same number as a person would type it: national format, dashes, or national digits only."""
    parsed = phonenumbers.parse(phone.number)
    style = rng.choice(("national", "dashes", "compact"))
    if style == "national":
        written = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    elif style == "dashes":
        written = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        written = written.replace(" ", "-").replace("-", " ", 1)
    else:
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        written = "".join(c for c in national if c.isdigit())
    with phone_region(country.code):
        return PhoneNumber(number=written, label="home")


def _moved_address(address: Address, country: Country, rng: random.Random) -> Address:
    cities = [c for c in country.cities if c[0] != address.city] or list(country.cities)
    city, region, _ = rng.choice(cities)
    street = rng.choice(country.streets)
    number = rng.randrange(1, 200)
    line1 = f"{street} {number}" if country.street_first else f"{number} {street}"
    return Address(country=country.code, line1=line1, city=city, region=region, primary=True)


def _same_city_new_street(address: Address, country: Country, rng: random.Random) -> Address:
    street = rng.choice(country.streets)
    number = rng.randrange(1, 200)
    line1 = f"{street} {number}" if country.street_first else f"{number} {street}"
    return attrs.evolve(address, line1=line1, postal_code="")


def _other_provider(email: str, country: Country, rng: random.Random) -> EmailAddress:
    local, _, domain = email.rpartition("@")
    others = [d for d in country.mail_domains if d != domain]
    return EmailAddress(address=f"{local}@{rng.choice(others)}", label="home")


def _fresh(email: EmailAddress, taken: set[str]) -> EmailAddress:
    """``email``, with a number added if another record has it: an address belongs to one person."""
    local, _, domain = email.address.rpartition("@")
    address, number = email.address, 1
    while address.casefold() in taken:
        number += 1
        address = f"{local}{number}@{domain}"
    taken.add(address.casefold())
    return attrs.evolve(email, address=address)


def _duplicate(original: Customer, scenario: str, rng: random.Random, taken: set[str]) -> Customer:
    """A second record of ``original``, varied as ``scenario`` says; new emails are nobody else's."""
    address = original.primary_address
    assert address is not None  # the generator gives everyone an address
    country = _BY_CODE[address.country]
    email = original.primary_email or ""
    is_person = original.kind is CustomerKind.PERSON
    name = _name_typo(original.name, rng) if rng.random() < 0.85 else original.name
    birthday = original.birthday if rng.random() < 0.5 else None
    emails: tuple[EmailAddress, ...] = ()
    phones: tuple[PhoneNumber, ...] = (_new_phone(country, rng),)
    addresses = (_same_city_new_street(address, country, rng),)
    if scenario == "birthday_or_company_domain":
        if not is_person:
            scenario = "company_domain"
        elif original.birthday is None:
            scenario = "email_typo"
    if scenario == "same_email":
        local, _, domain = email.rpartition("@")
        written = local.capitalize() if rng.random() < 0.5 else local
        emails = (EmailAddress(address=f"{written}@{domain.upper() if rng.random() < 0.3 else domain}"),)
    elif scenario == "phone_reformatted":
        phones = (_reformatted(original.phones[0], country, rng),)
        if is_person and rng.random() < 0.5:
            emails = (_other_provider(email, country, rng),)
    elif scenario == "email_typo":
        local, _, domain = email.rpartition("@")
        emails = (EmailAddress(address=f"{_typo(local, rng)}@{domain}"),)
    elif scenario == "same_address":
        addresses = (
            attrs.evolve(address, line1=address.line1.lower() if rng.random() < 0.3 else address.line1),
        )
        if is_person and rng.random() < 0.5:
            emails = (_other_provider(email, country, rng),)
    elif scenario == "birthday_or_company_domain":  # a person with a birthday: same birthday
        birthday = original.birthday
        emails = (_other_provider(email, country, rng),)
    elif scenario == "company_domain":
        local, _, domain = email.rpartition("@")
        mailbox = rng.choice([m for m in ("info", "sales", "contact", "office", "billing") if m != local])
        emails = (EmailAddress(address=f"{mailbox}@{domain}"),)
        words = name.split(" ")
        if len(words) > 2 and rng.random() < 0.5:
            name = " ".join(words[:-1])  # "Summit Software Inc." entered as "Summit Software"
    elif scenario == "moved":
        addresses = (_moved_address(address, country, rng),)
        birthday = original.birthday
        if is_person:
            emails = (_other_provider(email, country, rng),)
    if scenario != "same_email":
        emails = tuple(_fresh(e, taken) for e in emails)
    assert original.created_at is not None
    created_at = min(DEMO_NOW, original.created_at + timedelta(days=rng.randrange(1, 400)))
    return attrs.evolve(
        original,
        id=seeded_id(created_at, rng),
        name=name,
        emails=emails,
        phones=phones,
        addresses=addresses,
        birthday=birthday if is_person else None,
        created_at=created_at,
        updated_at=created_at,
    )


@attrs.frozen
class Timing:
    """One timed run: wall-clock and CPU seconds of reading back and of finding duplicates."""

    read: float
    read_cpu: float
    find: float
    find_cpu: float

    @property
    def total(self) -> float:
        """Wall-clock seconds, read + find."""
        return self.read + self.find

    @property
    def total_cpu(self) -> float:
        """CPU seconds of this process, read + find (less sensitive to other load on the machine)."""
        return self.read_cpu + self.find_cpu


def _run(path: Path, tenant: str, rules: DuplicateRules) -> tuple[Timing, list[DuplicatePair], str]:
    crm = crmcore.open(f"sqlite:///{path}", clock=FixedClock(DEMO_NOW))
    try:
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        with crm.unit_of_work(tenant=tenant) as uow:
            customers = list(uow.customers.iter_all(batch_size=1000))
        read, read_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        scan = scan_duplicates(customers, rules)
        find, find_cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        crm.close()
    stats = scan.stats
    line = (
        f"{stats.customers:,} customers, {stats.blocks:,} blocks ({stats.windowed_blocks} windowed), "
        f"{stats.comparisons:,} comparisons, {stats.scored_pairs:,} scored, {stats.pairs:,} reported"
    )
    return Timing(read, read_cpu, find, find_cpu), list(scan.pairs), line


def _cpu(timing: Timing) -> tuple[float, float, float]:
    return timing.read_cpu, timing.find_cpu, timing.total_cpu


def main(argv: Sequence[str] | None = None) -> int:
    """Seed, load, time and report; see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--examples", type=int, default=5, help="false positives to print")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    population = seed_population(args.n, seed=args.seed)
    print(
        f"generated {len(population.customers):,} customers in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    rules = DuplicateRules()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crm.db"
        crm = crmcore.open(f"sqlite:///{path}", clock=FixedClock(DEMO_NOW))
        tenant = "bench"
        start = time.perf_counter()
        with crm.unit_of_work(tenant=tenant) as uow:
            uow.customers.bulk_add(list(population.customers))
            uow.commit()
        crm.close()
        print(f"loaded with bulk_add in {time.perf_counter() - start:.1f} s (not timed)", flush=True)
        timings: list[Timing] = []
        pairs: list[DuplicatePair] = []
        for run in range(args.repeat):
            timing, pairs, line = _run(path, tenant, rules)
            timings.append(timing)
            print(
                f"run {run + 1}: read {timing.read:.2f} s + find {timing.find:.2f} s = {timing.total:.2f} s "
                f"(CPU {timing.read_cpu:.2f} + {timing.find_cpu:.2f} = {timing.total_cpu:.2f} s); {line}",
                flush=True,
            )
    quality = measure(pairs, population)
    print()
    print(f"Python {platform.python_version()}, {platform.machine()}, SQLite file store")
    for label, pick in (("wall", lambda t: (t.read, t.find, t.total)), ("CPU", _cpu)):
        reads, finds, totals = zip(*(pick(t) for t in timings), strict=True)
        print(
            f"median of {args.repeat} ({label}): read {statistics.median(reads):.2f} s, "
            f"find_duplicates {statistics.median(finds):.2f} s, total {statistics.median(totals):.2f} s "
            f"(min {min(totals):.2f}, max {max(totals):.2f})"
        )
    print(
        f"recall {quality.recall:.2%} ({quality.found:,}/{quality.seeded:,}), "
        f"precision {quality.precision:.2%} ({quality.found:,}/{quality.reported:,})"
    )
    print(f"seeded by scenario: {dict(sorted(Counter(population.seeded.values()).items()))}")
    print(f"missed by scenario: {quality.missed_by_scenario}")
    print(
        f"false positives: {len(quality.false_natural)} between two generated records, "
        f"{len(quality.false_seeded)} involving a seeded duplicate"
    )
    by_id = {c.id: c for c in population.customers}
    for pair in (quality.false_natural + quality.false_seeded)[: args.examples]:
        a, b = by_id[pair.a], by_id[pair.b]
        reasons = ", ".join(f"{r.kind.value}={r.value}" for r in pair.reasons)
        print(f"  {pair.score:.2f} {a.name!r} ({a.city}) ~ {b.name!r} ({b.city}): {reasons}")
    median_total = statistics.median(t.total for t in timings)
    met = quality.recall >= 0.95 and quality.precision >= 0.95 and median_total < 30
    print("targets (recall >= 95%, precision >= 95%, total < 30 s):", "met" if met else "MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
