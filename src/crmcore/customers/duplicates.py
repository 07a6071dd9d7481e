"""Duplicate detection for customers: which records are probably the same person or company.

A pure engine: it takes customers and `DuplicateRules` and returns scored pairs, each with the
signals that matched (same email, same phone, a similar name at the same address or in the same
city, ...), so a person can check the evidence before merging. Only `duplicates_in_store` reads a
store. Records are never compared all against all: they are compared only within *blocks* of
records that share an email, a phone, or a name key in one city, company or birthday.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from itertools import combinations
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import attrs
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from crmcore.customers.contact_points import primary
from crmcore.customers.customer import Customer, CustomerKind
from crmcore.errors import ValidationError
from crmcore.validation import checked, run_checks, text

if TYPE_CHECKING:
    from crmcore.storage.base import UnitOfWork

K = TypeVar("K")

__all__ = [
    "DuplicatePair",
    "DuplicateRules",
    "DuplicateScan",
    "DuplicateStats",
    "LEGAL_FORMS",
    "MatchKind",
    "MatchReason",
    "SHARED_EMAIL_DOMAINS",
    "duplicate_groups",
    "duplicates_in_store",
    "find_duplicates",
    "find_matches",
    "normalize_name",
    "scan_duplicates",
]


class MatchKind(enum.Enum):
    """A signal that two customer records describe the same person or company.

    The ``similar_name_*`` signals count only when the names are similar (see
    `DuplicateRules.name_threshold`); the exact ones count whatever the names say.
    """

    SAME_EMAIL = "same_email"
    SAME_PHONE = "same_phone"
    SIMILAR_NAME_SAME_ADDRESS = "similar_name_same_address"
    SIMILAR_NAME_SAME_COMPANY = "similar_name_same_company"
    SIMILAR_NAME_SIMILAR_EMAIL = "similar_name_similar_email"
    SIMILAR_NAME_SAME_CITY = "similar_name_same_city"
    SIMILAR_NAME_SAME_BIRTHDAY = "similar_name_same_birthday"


SHARED_EMAIL_DOMAINS: tuple[str, ...] = tuple(
    sorted(
        {
            *("gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.co.jp", "yahoo.fr"),
            *("yahoo.de", "ymail.com", "outlook.com", "outlook.jp", "hotmail.com", "hotmail.nl"),
            *("hotmail.co.uk", "hotmail.fr", "hotmail.de", "live.com", "msn.com", "icloud.com"),
            *("me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net"),
            *("gmx.com", "web.de", "t-online.de", "posteo.de", "mail.com", "btinternet.com"),
            *("orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr", "ziggo.nl", "kpnmail.nl"),
            *("telia.com", "bredband.net", "docomo.ne.jp", "uol.com.br", "bol.com.br", "yandex.ru"),
            *("mail.ru", "qq.com", "163.com", "zoho.com", "fastmail.com", "hey.com"),
        }
    )
)
"""Email domains many unrelated people share (free mail, ISPs): they say nothing about an employer."""

LEGAL_FORMS: frozenset[str] = frozenset(
    {
        "ab",
        "ag",
        "as",
        "asa",
        "bv",
        "co",
        "company",
        "corp",
        "corporation",
        "eireli",
        "gmbh",
        "group",
        "inc",
        "incorporated",
        "kg",
        "kgaa",
        "kk",
        "llc",
        "llp",
        "ltd",
        "ltda",
        "limited",
        "mbh",
        "me",
        "nv",
        "oy",
        "partners",
        "plc",
        "pte",
        "pty",
        "sa",
        "sarl",
        "sas",
        "sasu",
        "sl",
        "sons",
        "spa",
        "srl",
        "ug",
    }
)
"""Words dropped from the end of company names before comparing (``Acme GmbH`` ~ ``Acme Ltd.``)."""

_DEFAULT_WEIGHTS: dict[MatchKind, float] = {
    MatchKind.SAME_EMAIL: 0.9,
    MatchKind.SAME_PHONE: 0.8,
    MatchKind.SIMILAR_NAME_SAME_ADDRESS: 0.8,
    MatchKind.SIMILAR_NAME_SAME_COMPANY: 0.6,
    MatchKind.SIMILAR_NAME_SIMILAR_EMAIL: 0.6,
    MatchKind.SIMILAR_NAME_SAME_CITY: 0.5,
    MatchKind.SIMILAR_NAME_SAME_BIRTHDAY: 0.5,
}
_NAME_KINDS = frozenset(k for k in MatchKind if k.value.startswith("similar_name"))


def _unit_interval(*, open_low: bool) -> Any:
    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(path, f"must be a number, not {type(value).__name__}")
        if not (0 < value <= 1 if open_low else 0 <= value <= 1):
            raise ValidationError(path, f"must be {'above 0' if open_low else 'at least 0'} and at most 1")
        return float(value)

    return check


def _percent(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, f"must be a number, not {type(value).__name__}")
    if not 50 <= value <= 100:
        raise ValidationError(path, f"must be between 50 and 100 (a similarity in percent), got {value}")
    return float(value)


def _weights(value: Any, path: str) -> dict[MatchKind, float]:
    if not isinstance(value, Mapping):
        raise ValidationError(path, f"must be a mapping of match kind to weight, not {type(value).__name__}")
    checked_weights: dict[MatchKind, float] = {}
    problems: list[ValidationError] = []
    for key, weight in value.items():
        try:
            kind = MatchKind(key)
        except ValueError:
            valid = ", ".join(repr(k.value) for k in MatchKind)
            problems.append(ValidationError(f"{path}.{key}", f"is not a match kind; valid: {valid}"))
            continue
        try:
            checked_weights[kind] = _unit_interval(open_low=False)(weight, f"{path}.{kind.value}")
        except ValidationError as exc:
            problems.append(exc)
    if problems:
        raise ValidationError.from_errors([e for p in problems for e in p.errors])
    return {k: checked_weights[k] for k in MatchKind if k in checked_weights}


def _domains(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(path, "must be a list of email domains")
    domains = []
    for index, domain in enumerate(value):
        checked_domain: str = text(max_length=253, required=True)(domain, f"{path}[{index}]")
        domains.append(checked_domain.casefold())
    return tuple(sorted(set(domains)))


def _field_name(value: Any, path: str) -> str | None:
    if value is None:
        return None
    name: str = text(max_length=100, required=True)(value, path)
    return name


def _bounded_int(low: int, high: int) -> Any:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(path, f"must be a whole number, not {type(value).__name__}")
        if not low <= value <= high:
            raise ValidationError(path, f"must be between {low} and {high}, got {value}")
        return value

    return check


@attrs.frozen(kw_only=True)
class DuplicateRules:
    """What counts as a duplicate: the signals, their weights and the thresholds.

    A pair's score combines the weights of its signals as independent evidence,
    ``1 - (1 - w1) * (1 - w2) * ...``, so it stays within 0..1 and each extra signal raises it.
    With the defaults, one strong signal suffices (same email, same phone, similar name at the
    same address) but a similar name in the same city does not: common names repeat in every
    city, so that needs a second signal (similar email, same birthday, same company).
    """

    min_score: float = checked(_unit_interval(open_low=True), default=0.7)
    """Pairs scoring below this are not reported."""
    name_threshold: float = checked(_percent, default=85.0)
    """Similarity (0-100, token-sort ratio of normalized names) from which two names count as similar."""
    weights: Mapping[MatchKind, float] = checked(_weights, factory=lambda: dict(_DEFAULT_WEIGHTS))
    """Weight (0..1) of each signal; a signal missing here or weighted 0 is off."""
    shared_email_domains: tuple[str, ...] = checked(_domains, default=SHARED_EMAIL_DOMAINS)
    """Email domains that do not identify a company (free mail, ISPs)."""
    company_field: str | None = checked(_field_name, default="company")
    """Custom field naming a person's employer; None to use email domains only."""
    email_typo_edits: int = checked(_bounded_int(0, 3), default=1)
    """Edits (insert, delete, substitute, swap) between two local parts that still count as a typo."""
    max_block_size: int = checked(_bounded_int(10, 100_000), default=200)
    """Blocks larger than this are compared in overlapping windows in name order (see docs)."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def weight(self, kind: MatchKind) -> float:
        """The weight of ``kind`` (0 when off)."""
        return self.weights.get(kind, 0.0)


@attrs.frozen(kw_only=True)
class MatchReason:
    """One signal that matched for a pair, with the value behind it."""

    kind: MatchKind
    value: str
    """The shared value (email, phone, address, city, company, birthday); ``a / b`` for similar emails."""
    name_similarity: float | None = None
    """Similarity of the two names (0-100) for the ``similar_name_*`` signals."""
    weight: float
    """What this signal contributed (its weight in the rules)."""


@attrs.frozen(kw_only=True)
class DuplicatePair:
    """Two customer records that are probably the same, with the evidence.

    From `find_duplicates`, ``a`` is the smaller id; from `find_matches`, ``a`` is the
    candidate and ``b`` the existing record.
    """

    a: str
    b: str
    score: float
    """0..1, see `DuplicateRules`."""
    name_similarity: float
    """Similarity of the two normalized names, 0-100, whatever the signals."""
    reasons: tuple[MatchReason, ...]


@attrs.frozen(kw_only=True)
class DuplicateStats:
    """How much work a scan did: the proof that blocking avoided comparing every pair."""

    customers: int
    blocks: int
    """Blocks with at least two records (one per shared email, phone or name key)."""
    windowed_blocks: int
    """Blocks larger than ``max_block_size``, compared in windows."""
    comparisons: int
    """Record pairs considered inside blocks (a pair in several blocks counts in each)."""
    scored_pairs: int
    """Distinct pairs scored in full."""
    pairs: int
    """Pairs reported."""


@attrs.frozen(kw_only=True)
class DuplicateScan:
    """The pairs found and the work it took."""

    pairs: tuple[DuplicatePair, ...]
    stats: DuplicateStats


def normalize_name(name: str, kind: CustomerKind = CustomerKind.PERSON) -> str:
    """A name reduced for comparison: case-folded, accents stripped, tokens sorted.

    For companies, legal forms at the end (`LEGAL_FORMS`) are dropped: ``"Müller & Söhne GmbH"`` ->
    ``"muller sohne"``. Sorting tokens makes ``"Smith, John"`` equal ``"John Smith"``.
    """
    return " ".join(sorted(_name_tokens(name, kind)))


_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a]")
_SEPARATORS = re.compile(r"[\W_]+")
_SPELLED = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "å": "aa", "ø": "oe", "æ": "ae"})


@functools.lru_cache(maxsize=1 << 16)
def _fold(value: str) -> str:
    """Case-folded, accents stripped, words separated by one space: ``"Köln-Süd"`` -> ``"koln sud"``."""
    decomposed = unicodedata.normalize("NFKD", value.casefold().replace("ß", "ss"))
    return " ".join(_SEPARATORS.split(_COMBINING.sub("", decomposed))).strip()


@functools.lru_cache(maxsize=1 << 16)
def _name_tokens(name: str, kind: CustomerKind) -> tuple[str, ...]:
    tokens = _fold(name.replace(".", "")).split()  # "K.K." -> "kk", "B.V." -> "bv"
    if kind is CustomerKind.COMPANY:
        while len(tokens) > 1 and tokens[-1] in LEGAL_FORMS:
            tokens.pop()
    return tuple(tokens)


@functools.lru_cache(maxsize=1 << 16)
def _spellings(name: str) -> tuple[str, ...]:
    """The words of a name as addresses spell them (``müller``: ``muller``, ``mueller``), longest first."""
    words = set(_fold(name).split()) | set(_fold(name.casefold().translate(_SPELLED)).split())
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


class _Record(NamedTuple):
    """What the engine compares of a customer (a tuple: cheap to build 100,000 of)."""

    id: str
    side: int
    name: str
    """Tokens sorted: ``"smith john"``."""
    raw: str
    """All tokens as written, legal forms included, for typos that change the sorted order
    (``ren ito`` / ``ern ito``) or that hit a legal form (``acme ltd`` / ``acme lstd``)."""
    tokens: tuple[str, ...]
    full: tuple[str, ...]
    """All tokens sorted, legal forms included, when they differ from ``tokens`` (else empty)."""
    spellings: tuple[str, ...]
    emails: frozenset[str]
    domains: frozenset[str]
    phones: frozenset[str]
    city: str | None
    city_label: str
    address: str | None
    address_label: str
    company: str | None
    company_by_email: bool
    birthday: date | None


def _record(customer: Customer, side: int, rules: DuplicateRules) -> _Record:
    emails = frozenset(e.address.casefold() for e in customer.emails)
    address = primary(customer.addresses)
    city = city_label = ""
    street = street_label = ""
    if address is not None and address.city:
        city = f"{address.country}|{_fold(address.city)}"
        city_label = f"{address.city}, {address.country}"
        if address.line1:
            postal = _fold(address.postal_code).replace(" ", "")
            street = f"{city}|{postal}|{_fold(address.line1)}"
            street_label = f"{address.line1}, {address.postal_code} {address.city}, {address.country}"
    company = None
    employer = customer.custom.get(rules.company_field) if rules.company_field else None
    if customer.kind is CustomerKind.PERSON and isinstance(employer, str) and employer.strip():
        company = " ".join(_name_tokens(employer, CustomerKind.COMPANY)) or None
    by_email = company is None
    if company is None:
        own = sorted(e.split("@", 1)[1] for e in emails)
        company = next((d for d in own if d not in rules.shared_email_domains), None)
    tokens = _name_tokens(customer.name, customer.kind)
    written = _name_tokens(customer.name, CustomerKind.PERSON)
    ordered = tuple(sorted(tokens))
    return _Record(
        id=customer.id,
        side=side,
        name=" ".join(ordered),
        raw=" ".join(written),
        tokens=ordered,
        full=tuple(sorted(written)) if written != tokens else (),
        spellings=_spellings(customer.name),
        emails=emails,
        domains=frozenset(e.rpartition("@")[2] for e in emails),
        phones=frozenset(p.number for p in customer.phones),
        city=city or None,
        city_label=city_label,
        address=street or None,
        address_label=street_label,
        company=company,
        company_by_email=company is not None and by_email,
        birthday=customer.birthday,
    )


@functools.lru_cache(maxsize=1 << 16)
def _name_keys(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Keys two names share when they differ by one typo in one token (``tokens`` sorted).

    For each token: the other tokens in full plus the token's first letter, and the same with its
    last letter. One insert, delete, change or swap in a token changes at most one of its two ends.
    """
    keys = []
    for index, token in enumerate(tokens):
        others = " ".join(tokens[:index] + tokens[index + 1 :])
        keys.append(f"{others}|<{token[0]}")
        keys.append(f"{others}|>{token[-1]}")
    return tuple(keys)


class _Blocks(Generic[K]):
    """Block members by key; only keys seen twice get a list (most keys are one record's)."""

    def __init__(self) -> None:
        self.first: dict[K, int] = {}
        self.shared: dict[K, list[int]] = {}

    def add(self, key: K, index: int) -> None:
        first = self.first.setdefault(key, index)
        if first != index:
            members = self.shared.get(key)
            if members is None:
                self.shared[key] = [first, index]
            else:
                members.append(index)


class _Scanner:
    def __init__(self, records: list[_Record], rules: DuplicateRules, cross: bool) -> None:
        self.records = records
        self.rules = rules
        self.cross = cross
        self.blocks = 0
        self.windowed = 0
        self.comparisons = 0
        self.candidates: set[tuple[int, int]] = set()
        self.weights = {kind: rules.weight(kind) for kind in MatchKind}

    def run(self) -> DuplicateScan:
        exact, named = self._blocks()
        for members in exact.values():
            self._block(members, by_name=False)
        for members in named.values():
            self._block(members, by_name=True)
        pairs = [p for p in (self._score(i, j) for i, j in self.candidates) if p is not None]
        pairs.sort(key=lambda p: (-p.score, p.a, p.b))
        stats = DuplicateStats(
            customers=len(self.records),
            blocks=self.blocks,
            windowed_blocks=self.windowed,
            comparisons=self.comparisons,
            scored_pairs=len(self.candidates),
            pairs=len(pairs),
        )
        return DuplicateScan(pairs=tuple(pairs), stats=stats)

    def _blocks(self) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, object, str], list[int]]]:
        rules = self.rules
        exact = _Blocks[tuple[str, str]]()
        named = _Blocks[tuple[str, object, str]]()
        use_email = rules.weight(MatchKind.SAME_EMAIL) > 0
        use_phone = rules.weight(MatchKind.SAME_PHONE) > 0
        # City blocks find the address, city, birthday and similar-email signals of people who stayed put.
        use_city = any(rules.weight(k) > 0 for k in _NAME_KINDS - {MatchKind.SIMILAR_NAME_SAME_COMPANY})
        use_company = rules.weight(MatchKind.SIMILAR_NAME_SAME_COMPANY) > 0
        use_birthday = rules.weight(MatchKind.SIMILAR_NAME_SAME_BIRTHDAY) > 0
        for index, record in enumerate(self.records):
            if use_email:
                for email in record.emails:
                    exact.add(("e", email), index)
            if use_phone:
                for phone in record.phones:
                    exact.add(("p", phone), index)
            if not record.tokens:
                continue
            # Company names get keys with and without their legal form, so a typo there still blocks.
            keys = _name_keys(record.tokens) + (_name_keys(record.full) if record.full else ())
            scopes: list[tuple[str, object]] = []
            if use_city and record.city:
                scopes.append(("c", record.city))
            if use_company and record.company:
                scopes.append(("o", record.company))
            if use_birthday and record.birthday:
                scopes.append(("b", record.birthday))
            for scope, value in scopes:
                for key in keys:
                    named.add((scope, value, key), index)
        return exact.shared, named.shared

    def _block(self, members: list[int], *, by_name: bool) -> None:
        if len(members) < 2:
            return
        records = self.records
        if self.cross and len({records[i].side for i in members}) < 2:
            return
        members = sorted(set(members), key=lambda i: (records[i].name, records[i].id))
        if len(members) < 2:
            return
        self.blocks += 1
        size = self.rules.max_block_size
        if len(members) <= size:
            self._compare(members, by_name)
            return
        self.windowed += 1
        step = size // 2
        for start in range(0, len(members) - step, step):
            self._compare(members[start : start + size], by_name)

    def _compare(self, members: list[int], by_name: bool) -> None:
        records = self.records
        pairs: Iterable[tuple[int, int]]
        left = [i for i in members if records[i].side == 1]
        right = [i for i in members if records[i].side == 0]
        if self.cross:
            self.comparisons += len(left) * len(right)
        else:
            self.comparisons += len(members) * (len(members) - 1) // 2
        if not by_name:
            pairs = ((i, j) for i in left for j in right) if self.cross else combinations(members, 2)
            self.candidates.update((i, j) if i < j else (j, i) for i, j in pairs)
            return
        # Compare each distinct name once: blocks often hold the same name many times.
        spelled: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i in members:
            spelled[records[i].name, records[i].raw].append(i)
        if len(spelled) == 1:
            pairs = ((i, j) for i in left for j in right) if self.cross else combinations(members, 2)
            self.candidates.update((i, j) if i < j else (j, i) for i, j in pairs)
            return
        cutoff = self.rules.name_threshold
        similar = _similar_names({name for name, _ in spelled}, cutoff)
        similar_raw = _similar_names({raw for _, raw in spelled}, cutoff)
        names = list(spelled)
        for index, (name, raw) in enumerate(names):
            group = spelled[name, raw]
            for other_name, other_raw in names[index:]:
                if (name, other_name) not in similar and (raw, other_raw) not in similar_raw:
                    continue
                other = spelled[other_name, other_raw]
                same = other is group
                pairs = combinations(group, 2) if same else ((i, j) for i in group for j in other)
                if self.cross:
                    pairs = ((i, j) for i, j in pairs if records[i].side != records[j].side)
                self.candidates.update((i, j) if i < j else (j, i) for i, j in pairs)

    def _score(self, i: int, j: int) -> DuplicatePair | None:
        rules = self.rules
        weight = self.weights
        first, second = self.records[i], self.records[j]
        if first.id == second.id:
            return None
        if self.cross and first.side == 0:
            first, second = second, first  # a is the candidate
        elif not self.cross and second.id < first.id:
            first, second = second, first
        same_email = (
            sorted(first.emails & second.emails) if not first.emails.isdisjoint(second.emails) else []
        )
        same_phone = (
            sorted(first.phones & second.phones) if not first.phones.isdisjoint(second.phones) else []
        )
        same_address = first.address is not None and first.address == second.address
        same_city = not same_address and first.city is not None and first.city == second.city
        # One shared address is one fact: its domain does not count again as the company.
        same_company = (
            first.company is not None
            and first.company == second.company
            and not (same_email and first.company_by_email and second.company_by_email)
        )
        same_birthday = first.birthday is not None and first.birthday == second.birthday
        maybe_typo = not same_email and not first.domains.isdisjoint(second.domains)
        # Most scored pairs are namesakes with nothing else in common: drop them before the costly checks.
        best = 1.0
        if same_email:
            best *= 1 - weight[MatchKind.SAME_EMAIL]
        if same_phone:
            best *= 1 - weight[MatchKind.SAME_PHONE]
        if same_address:
            best *= 1 - weight[MatchKind.SIMILAR_NAME_SAME_ADDRESS]
        if same_city:
            best *= 1 - weight[MatchKind.SIMILAR_NAME_SAME_CITY]
        if same_company:
            best *= 1 - weight[MatchKind.SIMILAR_NAME_SAME_COMPANY]
        if same_birthday:
            best *= 1 - weight[MatchKind.SIMILAR_NAME_SAME_BIRTHDAY]
        if maybe_typo:
            best *= 1 - weight[MatchKind.SIMILAR_NAME_SIMILAR_EMAIL]
        if round(1 - best, 4) < rules.min_score:
            return None
        similarity = _name_similarity(first, second)
        found: list[tuple[MatchKind, str, float | None]] = []
        if same_email:
            found.append((MatchKind.SAME_EMAIL, same_email[0], None))
        if same_phone:
            found.append((MatchKind.SAME_PHONE, same_phone[0], None))
        if similarity >= rules.name_threshold:
            if same_address:
                found.append((MatchKind.SIMILAR_NAME_SAME_ADDRESS, first.address_label, similarity))
            if same_city:
                found.append((MatchKind.SIMILAR_NAME_SAME_CITY, first.city_label, similarity))
            if same_company and first.company:
                found.append((MatchKind.SIMILAR_NAME_SAME_COMPANY, first.company, similarity))
            if same_birthday and first.birthday:
                found.append((MatchKind.SIMILAR_NAME_SAME_BIRTHDAY, first.birthday.isoformat(), similarity))
            typo = _email_typo(first, second, rules.email_typo_edits) if maybe_typo else None
            if typo:
                found.append((MatchKind.SIMILAR_NAME_SIMILAR_EMAIL, typo, similarity))
        reasons = []
        remaining = 1.0
        for kind, value, name_similarity in found:
            if weight[kind] > 0:
                remaining *= 1 - weight[kind]
                reason = MatchReason(
                    kind=kind, value=value, name_similarity=name_similarity, weight=weight[kind]
                )
                reasons.append(reason)
        score = round(1 - remaining, 4)
        if not reasons or score < rules.min_score:
            return None
        reasons.sort(key=lambda r: _KIND_ORDER[r.kind])
        return DuplicatePair(
            a=first.id, b=second.id, score=score, name_similarity=similarity, reasons=tuple(reasons)
        )


_KIND_ORDER = {kind: index for index, kind in enumerate(MatchKind)}


def _similar_names(names: set[str], cutoff: float) -> set[tuple[str, str]]:
    """Ordered pairs of ``names`` at least ``cutoff`` similar (each name with itself included)."""
    keys = sorted(names)
    similar = {(k, k) for k in keys}
    for index, key in enumerate(keys[:-1]):
        for match, _score, _index in process.extract_iter(
            key, keys[index + 1 :], scorer=fuzz.ratio, processor=None, score_cutoff=cutoff
        ):
            similar.add((key, match))
            similar.add((match, key))
    return similar


def _name_similarity(first: _Record, second: _Record) -> float:
    """Similarity of two names, 0-100: the better of tokens sorted and tokens as written."""
    if not first.name or not second.name:
        return 0.0
    return round(max(fuzz.ratio(first.name, second.name), fuzz.ratio(first.raw, second.raw)), 1)


def _email_typo(first: _Record, second: _Record, edits: int) -> str | None:
    """``a / b`` for the first two addresses on one domain whose local parts differ by a typo.

    Not typos: local parts that differ only in digits (``jo.smith1`` / ``jo.smith2``: numbers tell
    accounts apart), and local parts that differ just as the names do (``fleur.vos`` /
    ``fleur.bos`` for Fleur Vos and Fleur Bos): an address spelled from the name adds no evidence.
    """
    if edits == 0:
        return None
    for left in sorted(first.emails):
        local, _, domain = left.rpartition("@")
        for right in sorted(second.emails):
            other, _, other_domain = right.rpartition("@")
            if domain != other_domain or min(len(local), len(other)) < 4:
                continue
            if _DIGITS.sub("", local) == _DIGITS.sub("", other):
                continue
            if OSA.distance(local, other, score_cutoff=edits) > edits:
                continue
            if _skeleton(local, first.spellings) != _skeleton(other, second.spellings):
                return f"{left} / {right}"
    return None


_DIGITS = re.compile(r"\d+")
_RUNS = re.compile(r"[^\W\d_]+|#|[\W\d_]+")


def _skeleton(local: str, spellings: tuple[str, ...]) -> str:
    """A local part with its owner's name taken out: ``j.smith`` of John Smith -> ``#.#``."""
    rest = _DIGITS.sub("", local)
    for word in spellings:
        if len(word) > 1:
            rest = rest.replace(word, "#")
    initials = {w[0] for w in spellings}
    return "".join("#" if len(run) == 1 and run in initials else run for run in _RUNS.findall(rest))


def scan_duplicates(customers: Iterable[Customer], rules: DuplicateRules | None = None) -> DuplicateScan:
    """Like `find_duplicates`, with `DuplicateStats` on the work done.

    Args:
        customers: the records to search, in any order (the result does not depend on it).
        rules: signals, weights and thresholds; the defaults when None.
    """
    rules = rules or DuplicateRules()
    records = sorted((_record(c, 0, rules) for c in customers), key=lambda r: r.id)
    return _Scanner(records, rules, cross=False).run()


def find_duplicates(
    customers: Iterable[Customer], rules: DuplicateRules | None = None
) -> list[DuplicatePair]:
    """Pairs of customers that are probably the same, best first.

    Sorted by score (highest first), then ids; in each pair ``a`` is the smaller id. Only records
    that share a block are compared (see the module docs); two records with the same id are the
    same record, never a pair.

    Args:
        customers: the records to search, in any order (the result does not depend on it).
        rules: signals, weights and thresholds; the defaults when None.
    """
    return list(scan_duplicates(customers, rules).pairs)


def find_matches(
    candidates: Iterable[Customer], existing: Iterable[Customer], rules: DuplicateRules | None = None
) -> list[DuplicatePair]:
    """Existing records that each candidate (e.g. a row being imported) probably duplicates.

    Only candidate-to-existing pairs are reported (use `find_duplicates` on the candidates for
    duplicates among them); ``a`` is the candidate's id and ``b`` the existing record's.
    Sorted by score (highest first), then ids.

    Args:
        candidates: the new records.
        existing: the records already known.
        rules: signals, weights and thresholds; the defaults when None.
    """
    rules = rules or DuplicateRules()
    records = [_record(c, 1, rules) for c in candidates] + [_record(c, 0, rules) for c in existing]
    records.sort(key=lambda r: (r.id, r.side))
    return list(_Scanner(records, rules, cross=True).run().pairs)


def duplicates_in_store(uow: UnitOfWork, rules: DuplicateRules | None = None) -> list[DuplicatePair]:
    """`find_duplicates` over every customer of the unit of work's tenant.

    Reads them with ``uow.customers.iter_all()``; holds a compact form of each in memory.
    """
    return find_duplicates(uow.customers.iter_all(), rules)


def duplicate_groups(pairs: Iterable[DuplicatePair]) -> list[tuple[str, ...]]:
    """Ids linked by pairs, as groups (connected components): each group is one entity to merge.

    Each group's ids are sorted; groups are sorted by their first id. Pairs chain: if A~B and B~C,
    A, B and C form one group even when A and C were not paired, so review large groups.
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        left, right = root(pair.a), root(pair.b)
        if left != right:
            parent[max(left, right)] = min(left, right)
    groups: dict[str, list[str]] = defaultdict(list)
    for node in parent:
        groups[root(node)].append(node)
    return sorted(tuple(sorted(members)) for members in groups.values() if len(members) > 1)
