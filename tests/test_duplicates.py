"""Duplicate detection: signals, scores, blocking, config, determinism, stores, and seeded quality."""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.customers import (
    Address,
    Customer,
    CustomerKind,
    EmailAddress,
    PhoneNumber,
    phone_region,
)
from crmcore.customers.duplicates import (
    DuplicatePair,
    DuplicateRules,
    MatchKind,
    MatchReason,
    duplicate_groups,
    duplicates_in_store,
    find_duplicates,
    find_matches,
    normalize_name,
    scan_duplicates,
)
from crmcore.demo_data import generate_customers
from crmcore.errors import ValidationError
from crmcore.facade import CRM
from crmcore.ids import new_id
from crmcore.serialization import structure, unstructure

ROOT = Path(__file__).resolve().parents[1]


def person(
    name: str,
    *,
    city: str = "Berlin",
    country: str = "DE",
    line1: str = "",
    postal_code: str = "",
    email: str | None = None,
    phone: str | None = None,
    birthday: date | None = None,
    kind: CustomerKind = CustomerKind.PERSON,
    custom: dict[str, Any] | None = None,
    id: str | None = None,
) -> Customer:
    """A customer with just the fields duplicate detection reads."""
    return Customer(
        id=id or new_id(),
        name=name,
        kind=kind,
        emails=(EmailAddress(address=email),) if email else (),
        phones=(PhoneNumber(number=phone),) if phone else (),
        addresses=(Address(country=country, city=city, line1=line1, postal_code=postal_code),),
        birthday=birthday,
        custom=custom or {},
    )


def kinds(pair: DuplicatePair) -> list[MatchKind]:
    """The kinds of a pair's reasons, in order."""
    return [r.kind for r in pair.reasons]


def test_same_email_found_whatever_the_case() -> None:
    """Two records with one address written in different case are paired, the address named."""
    a = person("Anna Schmidt", email="Anna.Schmidt@Example.org", city="Berlin")
    b = person("Ana Schmitt", email="anna.schmidt@example.org", city="Hamburg")
    [pair] = find_duplicates([a, b])
    assert {pair.a, pair.b} == {a.id, b.id} and pair.a < pair.b
    assert pair.reasons == (
        MatchReason(kind=MatchKind.SAME_EMAIL, value="anna.schmidt@example.org", weight=0.9),
    )
    assert pair.score == 0.9


@pytest.mark.parametrize("written", ["030 1234567", "+49 30 1234567", "+49-30-123-4567", "0049301234567"])
def test_phone_format_variants_found(written: str) -> None:
    """A phone typed in national, spaced, dashed or 00 format is the same E.164 number, so a pair."""
    a = person("Jonas Weber", phone="+49301234567", city="Berlin")
    with phone_region("DE"):
        b = person("J. Weber", phone=written, city="Potsdam")
    [pair] = find_duplicates([a, b])
    assert kinds(pair) == [MatchKind.SAME_PHONE] and pair.reasons[0].value == "+49301234567"


def test_name_typo_in_city_found_with_a_second_signal() -> None:
    """A typo in the name in the same city counts; with the same birthday or address it is reported."""
    a = person("Jonathan Meyer", birthday=date(1980, 5, 17), line1="Hauptstraße 5", postal_code="10115")
    b = person("Jonathna Meyer", birthday=date(1980, 5, 17))
    c = person("Jonathan Meier", line1="Hauptstrasse 5", postal_code="10115")
    pairs = {frozenset((p.a, p.b)): p for p in find_duplicates([a, b, c])}
    ab = pairs[frozenset((a.id, b.id))]
    assert kinds(ab) == [MatchKind.SIMILAR_NAME_SAME_CITY, MatchKind.SIMILAR_NAME_SAME_BIRTHDAY]
    assert ab.reasons[0].value == "Berlin, DE" and ab.reasons[0].name_similarity == ab.name_similarity
    assert ab.score == 0.75 and 85 <= ab.name_similarity < 100
    ac = pairs[frozenset((a.id, c.id))]
    assert kinds(ac) == [MatchKind.SIMILAR_NAME_SAME_ADDRESS]  # "straße" folds to "strasse"
    assert frozenset((b.id, c.id)) not in pairs  # similar names in one city, nothing else


def test_similar_name_in_city_alone_is_below_the_default_threshold() -> None:
    """Namesakes in a city are common: name and city alone need a lower ``min_score`` to be reported."""
    a, b = person("Lukas Fischer"), person("Lukas Fischre")
    assert find_duplicates([a, b]) == []
    [pair] = find_duplicates([a, b], DuplicateRules(min_score=0.5))
    assert kinds(pair) == [MatchKind.SIMILAR_NAME_SAME_CITY] and pair.score == 0.5


def test_same_common_name_in_different_cities_not_paired() -> None:
    """Two John Smiths in different cities (or countries) are never paired on the name alone."""
    customers = [
        person("John Smith", city="London", country="GB"),
        person("John Smith", city="Leeds", country="GB"),
        person("John Smith", city="London", country="CA"),
        person("Smith, John", city="Boston", country="US"),
    ]
    assert find_duplicates(customers, DuplicateRules(min_score=0.5)) == []


def test_reasons_listed_and_combined_as_independent_evidence() -> None:
    """Every matching signal is listed, in `MatchKind` order, and the score combines their weights."""
    a = person("Sabine Koch", email="sabine@koch.example", phone="+4940123456", line1="Am Markt 1")
    b = person("Sabine Koch", email="sabine@koch.example", phone="+4940123456", line1="Am Markt 1")
    [pair] = find_duplicates([b, a])
    assert kinds(pair) == [
        MatchKind.SAME_EMAIL,
        MatchKind.SAME_PHONE,
        MatchKind.SIMILAR_NAME_SAME_ADDRESS,
    ]  # not the company too: its domain comes from the shared address, one fact counted once
    assert pair.score == round(1 - 0.1 * 0.2 * 0.2, 4)
    assert pair.name_similarity == 100.0
    assert [r.value for r in pair.reasons[:2]] == ["sabine@koch.example", "+4940123456"]


def test_similar_email_counts_only_for_a_typo() -> None:
    """A typo in the local part counts; a different number or a difference that mirrors the names does not."""
    rules = DuplicateRules(weights={MatchKind.SIMILAR_NAME_SIMILAR_EMAIL: 0.8})
    typo = [
        person("Emily Davis", email="emily.davis@gmail.com"),
        person("Emily Davis", email="emliy.davis@gmail.com"),
    ]
    [pair] = find_duplicates(typo, rules)
    assert pair.reasons[0].value == "emily.davis@gmail.com / emliy.davis@gmail.com"
    numbered = [
        person("Emily Davis", email="emily.davis7@gmail.com"),
        person("Emily Davis", email="emily.davis@gmail.com"),
    ]
    assert find_duplicates(numbered, rules) == []
    namesakes = [
        person("Fleur Vos", email="fleur.vos@gmail.com"),
        person("Fleur Bos", email="fleur.bos@gmail.com"),
    ]
    assert find_duplicates(namesakes, rules) == []
    other_domain = [
        person("Emily Davis", email="emily.davis@gmail.com"),
        person("Emily Davis", email="emliy.davis@aol.com"),
    ]
    assert find_duplicates(other_domain, rules) == []


def test_companies_compare_without_legal_form_and_by_domain() -> None:
    """``Acme GmbH`` and ``ACME Ltd.`` at one domain and city are paired; a free-mail domain is no company."""
    company = CustomerKind.COMPANY
    a = person("Acme Röhren GmbH", kind=company, email="info@acme-roehren.de")
    b = person("ACME Rohren Ltd.", kind=company, email="sales@acme-roehren.de")
    [pair] = find_duplicates([a, b])
    assert kinds(pair) == [MatchKind.SIMILAR_NAME_SAME_COMPANY, MatchKind.SIMILAR_NAME_SAME_CITY]
    assert pair.reasons[0].value == "acme-roehren.de" and pair.name_similarity == 100.0
    assert normalize_name("Acme Röhren GmbH & Co. KG", company) == "acme rohren"
    assert normalize_name("Smith, John") == "john smith"
    freemail = [
        person("Tom Berg", email="tom@gmail.com", city="Oslo"),
        person("Tom Berg", email="t@gmail.com"),
    ]
    assert find_duplicates(freemail, DuplicateRules(min_score=0.6)) == []


def test_people_at_the_same_company_by_custom_field() -> None:
    """For people, the ``company`` custom field names the employer; similar names there count."""
    a = person("Maria Garcia", city="Madrid", country="ES", custom={"company": "Iberia Foods S.L."})
    b = person("Maria Garcya", city="Sevilla", country="ES", custom={"company": "IBERIA FOODS"})
    c = person("Maria Garcia", city="Madrid", country="ES", custom={"company": "Other Co"})
    rules = DuplicateRules(min_score=0.6)
    pairs = find_duplicates([a, b, c], rules)
    ab = next(p for p in pairs if {p.a, p.b} == {a.id, b.id})
    assert kinds(ab) == [MatchKind.SIMILAR_NAME_SAME_COMPANY] and ab.reasons[0].value == "iberia foods"
    assert find_duplicates([a, b], DuplicateRules(min_score=0.6, company_field=None)) == []


def test_blocking_compares_far_fewer_pairs_than_all() -> None:
    """On 2,000 generated customers, blocking considers under 1% of all pairs."""
    customers = list(generate_customers(2_000, seed=3))
    scan = scan_duplicates(customers)
    all_pairs = 2_000 * 1_999 // 2
    assert scan.stats.customers == 2_000
    assert 0 < scan.stats.comparisons < all_pairs // 100
    assert scan.stats.scored_pairs <= scan.stats.comparisons
    assert scan.stats.pairs == len(scan.pairs)


def test_huge_blocks_are_compared_in_windows() -> None:
    """300 records on one switchboard number are compared in windows, not all 44,850 pairs."""
    customers = [person(f"Agent {i:03d}", phone="+4930999999", city=f"C{i}") for i in range(300)]
    scan = scan_duplicates(customers, DuplicateRules(max_block_size=20))
    assert scan.stats.windowed_blocks == 1
    assert scan.stats.comparisons == 29 * (20 * 19 // 2)  # windows of 20, every 10 records
    assert len(scan.pairs) == scan.stats.scored_pairs < 300 * 299 // 2
    assert all(kinds(p) == [MatchKind.SAME_PHONE] for p in scan.pairs)


def test_rules_round_trip_through_the_converter() -> None:
    """Default and custom rules structure back equal from their JSON form; enums by value."""
    custom = DuplicateRules(
        min_score=0.8,
        name_threshold=90,
        weights={MatchKind.SAME_EMAIL: 1.0, MatchKind.SAME_PHONE: 0.7},
        shared_email_domains=("Example.COM", "mail.test"),
        company_field=None,
        email_typo_edits=2,
        max_block_size=50,
    )
    for rules in (DuplicateRules(), custom):
        data = unstructure(rules)
        assert structure(data, DuplicateRules) == rules
    data = unstructure(custom)
    assert data["weights"] == {"same_email": 1.0, "same_phone": 0.7}
    assert data["shared_email_domains"] == ["example.com", "mail.test"]


@given(
    min_score=st.floats(0.01, 1),
    name_threshold=st.floats(50, 100),
    weights=st.dictionaries(st.sampled_from(list(MatchKind)), st.floats(0, 1)),
    edits=st.integers(0, 3),
)
def test_any_valid_rules_round_trip(
    min_score: float, name_threshold: float, weights: dict[MatchKind, float], edits: int
) -> None:
    """Any valid rules survive unstructure then structure unchanged."""
    rules = DuplicateRules(
        min_score=min_score, name_threshold=name_threshold, weights=weights, email_typo_edits=edits
    )
    assert structure(unstructure(rules), DuplicateRules) == rules


def test_pairs_round_trip_through_the_converter() -> None:
    """Results are plain data: a pair with its reasons structures back equal."""
    [pair] = find_duplicates([person("A Bc", email="a@b.example"), person("A Bc", email="a@b.example")])
    assert structure(unstructure(pair), DuplicatePair) == pair


def test_bad_rules_report_every_problem() -> None:
    """Out-of-range thresholds, unknown kinds and bad weights are all named in one ValidationError."""
    with pytest.raises(ValidationError) as caught:
        DuplicateRules(
            min_score=0,
            name_threshold=120,
            weights={"nope": 0.5, MatchKind.SAME_EMAIL: 2},  # type: ignore[dict-item]
            max_block_size=1,
            email_typo_edits=-1,
        )
    fields = {e.path for e in caught.value.errors}
    assert fields == {
        "min_score",
        "name_threshold",
        "weights.nope",
        "weights.same_email",
        "max_block_size",
        "email_typo_edits",
    }
    with pytest.raises(ValidationError, match="min_score"):
        structure({"min_score": 1.5}, DuplicateRules)


def test_shuffled_input_gives_the_same_output() -> None:
    """The pairs and their order do not depend on the input order."""
    customers = list(generate_customers(400, seed=11))
    customers += [
        person(c.name + "x", email=c.primary_email, city=c.city or "", country=c.country or "DE")
        for c in customers[:40]
    ]
    expected = find_duplicates(customers)
    assert len(expected) >= 40
    assert expected == sorted(expected, key=lambda p: (-p.score, p.a, p.b))
    for seed in range(3):
        shuffled = customers[:]
        random.Random(seed).shuffle(shuffled)
        assert find_duplicates(shuffled) == expected


_POOL = list(generate_customers(60, seed=5))
_FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(_POOL) - 1),
    style=st.sampled_from(_FORMATS),
    new_name=st.text(st.characters(categories=["L"]), min_size=1, max_size=20),
)
def test_a_record_with_its_phone_reformatted_is_always_found(index: int, style: int, new_name: str) -> None:
    """Whatever the name and however the phone is written, a copy with the same phone is paired."""
    original = _POOL[index]
    parsed = phonenumbers.parse(original.phones[0].number)
    written = phonenumbers.format_number(parsed, style)
    with phone_region(original.country):
        copy = Customer(name=new_name, phones=(PhoneNumber(number=written),))
    pairs = find_duplicates([*_POOL, copy])
    assert any({p.a, p.b} == {original.id, copy.id} and MatchKind.SAME_PHONE in kinds(p) for p in pairs)


def test_find_matches_pairs_candidates_with_existing_only() -> None:
    """Imports: each candidate is matched to existing records; candidates are not paired together."""
    existing = [person("Lea Becker", email="lea@becker.example"), person("Tom Wolf", phone="+4989123456")]
    candidates = [
        person("Lea Becker", email="LEA@becker.example"),
        person("Lea Becker", email="lea@becker.example"),
        person("Thomas Wolf", phone="+49 89 123456"),
    ]
    matches = find_matches(candidates, existing)
    assert {(m.a, m.b) for m in matches} == {
        (candidates[0].id, existing[0].id),
        (candidates[1].id, existing[0].id),
        (candidates[2].id, existing[1].id),
    }
    assert find_matches(existing, existing) == []  # the same records are no duplicates of themselves


def test_duplicate_groups_are_connected_components() -> None:
    """Pairs A-B and B-C make one group A, B, C; groups and members are sorted."""

    def pair(a: str, b: str) -> DuplicatePair:
        return DuplicatePair(a=a, b=b, score=0.9, name_similarity=100.0, reasons=())

    groups = duplicate_groups([pair("D", "E"), pair("B", "C"), pair("A", "B"), pair("E", "D")])
    assert groups == [("A", "B", "C"), ("D", "E")]
    assert duplicate_groups([]) == []


def test_duplicates_in_store(any_crm: CRM, tenant: str) -> None:
    """The shell function reads every customer of the tenant and finds the duplicates among them."""
    customers = list(generate_customers(50, seed=9))
    twin = person(customers[0].name, email=customers[0].primary_email)
    with any_crm.unit_of_work(tenant=tenant) as uow:
        uow.customers.bulk_add([*customers, twin])
        uow.commit()
    with any_crm.unit_of_work(tenant=tenant) as uow:
        pairs = duplicates_in_store(uow)
    assert pairs == find_duplicates([*customers, twin])
    assert any({p.a, p.b} == {customers[0].id, twin.id} for p in pairs)


def _benchmark() -> ModuleType:
    """benchmarks/duplicates.py, for its seeding (the benchmark is a script, not a package)."""
    name = "crmcore_benchmark_duplicates"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "duplicates.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_seeded_duplicates_found_with_high_recall_and_precision() -> None:
    """The benchmark's seeding on 3,000 customers: recall and precision both at least 95%."""
    bench = _benchmark()
    population = bench.seed_population(3_000, seed=7)
    assert len(population.seeded) == 60
    quality = bench.measure(find_duplicates(population.customers), population)
    assert quality.recall >= 0.95, quality.missed_by_scenario
    assert quality.precision >= 0.95, quality.false_natural + quality.false_seeded
