"""Merging duplicate customers: survivorship rules (data), a pure plan, and the unit-of-work shell.

`plan_merge` decides, field by field, which record's value the merged customer keeps and says
why; `merge_customers` applies a plan in a unit of work: it moves every record linked to the
duplicates (every aggregate in `CUSTOMER_LINKS`, so later ones such as tickets move too), saves
the survivor, deletes the duplicates and records `CustomersMerged`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import attrs

from crmcore.conditions import Field
from crmcore.customers.contact_points import Address, Consent, EmailAddress, PhoneNumber
from crmcore.customers.customer import Customer
from crmcore.errors import FieldError, ValidationError
from crmcore.events import DomainEvent
from crmcore.ids import check_id
from crmcore.storage.base import CUSTOMER_LINKS, Aggregate, UnitOfWork
from crmcore.validation import checked, custom_fields, one_of, run_checks

__all__ = [
    "CustomersMerged",
    "FieldChoice",
    "LIST_FIELDS",
    "MERGEABLE_FIELDS",
    "MergePlan",
    "MergeReport",
    "MergeRules",
    "Survivorship",
    "linked_records",
    "merge_customers",
    "plan_merge",
]


class Survivorship(enum.Enum):
    """How the merged customer picks a field's value from the survivor and its duplicates."""

    KEEP_SURVIVOR = "keep_survivor"
    """The survivor's value, even when empty."""
    KEEP_NEWEST = "keep_newest"
    """The non-empty value of the most recently updated record (``updated_at``; ties: earlier in order)."""
    KEEP_NON_EMPTY = "keep_non_empty"
    """The survivor's value unless empty, else the first non-empty one among the duplicates, in order."""
    UNION = "union"
    """List fields and custom fields only: every distinct item (or key) of every record."""


_MANAGED = ("id", "created_at", "updated_at", "version")
LIST_FIELDS: tuple[str, ...] = ("addresses", "consents", "emails", "phones", "tags")
"""Customer fields holding lists, which `Survivorship.UNION` can combine."""
MERGEABLE_FIELDS: tuple[str, ...] = tuple(
    sorted(f.name for f in attrs.fields(Customer) if f.name not in _MANAGED)
)
"""Customer fields a merge decides on; ``id``, ``version`` and the time stamps are the store's."""
_TOGETHER = ("credit_limit", "currency")
"""Fields a merge takes from one record, so the credit limit stays in the customer's currency."""
_CUSTOM_PREFIX = "custom."


def _rule_field(value: Any, path: str) -> Survivorship:
    rule: Survivorship = one_of(Survivorship)(value, path)
    return rule


def _rule_map(value: Any, path: str) -> dict[str, Survivorship]:
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict of field name to rule, not {type(value).__name__}")
    errors: list[FieldError] = []
    out: dict[str, Survivorship] = {}
    valid = ", ".join([*MERGEABLE_FIELDS, "custom.<key>"])
    for name, rule in value.items():
        where = f"{path}.{name}"
        if not isinstance(name, str):
            errors.append(FieldError(path, f"field names must be strings, got {name!r}"))
            continue
        if name.startswith(_CUSTOM_PREFIX):
            try:
                custom_fields({name[len(_CUSTOM_PREFIX) :]: None}, where)
            except ValidationError as exc:
                errors.extend(exc.errors)
                continue
        elif name not in MERGEABLE_FIELDS:
            errors.append(FieldError(where, f"is not a field a merge decides on; valid: {valid}"))
            continue
        try:
            out[name] = _rule_field(rule, where)
        except ValidationError as exc:
            errors.extend(exc.errors)
            continue
        if out[name] is Survivorship.UNION and name not in (*LIST_FIELDS, "custom"):
            errors.append(
                FieldError(where, f"UNION combines lists; use it on {', '.join(LIST_FIELDS)} or custom")
            )
    if errors:
        raise ValidationError.from_errors(errors)
    return out


@attrs.frozen(kw_only=True)
class MergeRules:
    """Survivorship rules: which value of each field the merged customer keeps.

    ``default`` applies to single-valued fields (name, owner, birthday, ...), ``lists`` to the
    list fields (`LIST_FIELDS`) and to custom fields, and ``fields`` overrides either for named
    fields. Custom fields are merged key by key with the ``"custom"`` rule; name one key as
    ``"custom.<key>"`` to give it a rule of its own. On custom fields `Survivorship.UNION` keeps
    every key, each with the survivor's value unless empty, else the first non-empty duplicate's.
    Checked when built: unknown field names, and UNION on a single-valued field, are refused.
    """

    default: Survivorship = checked(_rule_field, default=Survivorship.KEEP_NON_EMPTY)
    lists: Survivorship = checked(_rule_field, default=Survivorship.UNION)
    fields: dict[str, Survivorship] = checked(_rule_map, factory=dict)

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.default is Survivorship.UNION:
            raise ValidationError(
                "default", "UNION combines lists; set it in `lists` or for a list field in `fields`"
            )
        paired = {self.fields[f] for f in _TOGETHER if f in self.fields}
        if len(paired) > 1:
            raise ValidationError(
                "fields.currency",
                "currency and credit_limit are merged together (from one record); give them one rule",
            )

    def rule_for(self, field: str) -> Survivorship:
        """The rule for ``field`` (a `MERGEABLE_FIELDS` name or ``"custom.<key>"``).

        ``currency`` and ``credit_limit`` share one rule: a rule named for either governs both.
        """
        if field in _TOGETHER:
            return next((self.fields[f] for f in _TOGETHER if f in self.fields), self.default)
        if field in self.fields:
            return self.fields[field]
        if field.startswith(_CUSTOM_PREFIX):
            return self.rule_for("custom")
        return self.lists if field in (*LIST_FIELDS, "custom") else self.default


@attrs.frozen(kw_only=True)
class FieldChoice:
    """What a merge kept for one field (``"custom.<key>"`` for a custom field), from where, and why."""

    field: str
    rule: Survivorship | None
    """The rule applied; None for what no rule governs (``created_at``)."""
    sources: tuple[str, ...]
    """Ids of the records whose value (or items, for a union) the merged customer has."""
    reason: str


@attrs.frozen(kw_only=True)
class MergePlan:
    """The merged customer (the survivor's id and version) and the choice made for each field."""

    survivor_id: str
    duplicate_ids: tuple[str, ...]
    merged: Customer
    choices: tuple[FieldChoice, ...]

    def choice(self, field: str) -> FieldChoice:
        """The choice made for ``field``.

        Raises:
            ValidationError: if the plan has no choice for that field.
        """
        for choice in self.choices:
            if choice.field == field:
                return choice
        raise ValidationError(
            "field", f"no choice for {field!r}; made for: {[c.field for c in self.choices]}"
        )


@attrs.frozen(kw_only=True)
class CustomersMerged(DomainEvent):
    """Duplicates were merged into the customer ``aggregate_id`` and deleted; ids and counts only.

    ``moved`` counts the linked records moved to the survivor, per repository (``"contacts"``).
    """

    event_type: ClassVar[str] = "customer.merged"
    duplicate_ids: tuple[str, ...]
    moved: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class MergeReport:
    """What `merge_customers` did: the saved survivor, records moved per repository, the choices."""

    survivor: Customer
    duplicate_ids: tuple[str, ...]
    moved: dict[str, int]
    """Linked records moved from the duplicates to the survivor, per repository name."""
    choices: tuple[FieldChoice, ...]
    event: CustomersMerged


# --- the pure part ---------------------------------------------------------------------------------

_OLDEST = datetime.min.replace(tzinfo=UTC)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | tuple | list | dict) and not value)


def _pick(
    field: str, rule: Survivorship, records: Sequence[Customer], values: Sequence[Any]
) -> tuple[Any, FieldChoice]:
    """A single value (or a whole list) chosen by KEEP_SURVIVOR, KEEP_NON_EMPTY or KEEP_NEWEST."""
    survivor = records[0]
    if rule is Survivorship.KEEP_SURVIVOR:
        return values[0], FieldChoice(
            field=field, rule=rule, sources=(survivor.id,), reason="the rule keeps the survivor's value"
        )
    candidates = [i for i, v in enumerate(values) if not _empty(v)]
    if not candidates:
        return values[0], FieldChoice(field=field, rule=rule, sources=(), reason="no record has a value")
    if rule is Survivorship.KEEP_NEWEST:
        index = max(candidates, key=lambda i: (records[i].updated_at or _OLDEST, -i))
        when = records[index].updated_at
        reason = (
            "the most recently updated record with a value"
            + (f" (updated {when.isoformat()})" if when else "")
            + ("; the survivor" if index == 0 else "")
        )
    else:
        index = candidates[0]
        reason = (
            "the survivor has a value" if index == 0 else "the survivor's is empty; first duplicate with one"
        )
    return values[index], FieldChoice(field=field, rule=rule, sources=(records[index].id,), reason=reason)


def _collapse(text: str) -> str:
    return " ".join(text.split()).casefold()


_ITEM_KEYS: dict[str, Callable[[Any], Any]] = {
    "emails": lambda e: e.address.casefold(),
    "phones": lambda p: (p.number, p.extension),
    "addresses": lambda a: (
        a.country,
        _collapse(a.line1),
        _collapse(a.line2),
        _collapse(a.city),
        _collapse(a.region),
        _collapse(a.postal_code),
    ),
    "tags": lambda t: t,
}


def _union(field: str, records: Sequence[Customer]) -> tuple[tuple[Any, ...], FieldChoice]:
    """Every distinct item; the survivor's version of an item wins, and at most one stays primary.

    The survivor's primary stays primary (the flagged one, else its first item); only when the
    survivor has no items does the first duplicate's flagged item stay primary.
    """
    key = _ITEM_KEYS[field]
    survivor_has_items = bool(getattr(records[0], field))
    seen: set[Any] = set()
    kept: list[Any] = []
    sources: list[str] = []
    dropped = 0
    primary_taken = False
    for index, record in enumerate(records):
        for item in getattr(record, field):
            k = key(item)
            if k in seen:
                dropped += 1
                continue
            seen.add(k)
            if isinstance(item, EmailAddress | PhoneNumber | Address) and item.primary:
                if primary_taken or (index > 0 and survivor_has_items):
                    item = attrs.evolve(item, primary=False)
                else:
                    primary_taken = True
            kept.append(item)
            if record.id not in sources:
                sources.append(record.id)
    reason = f"every distinct item of {len(records)} records: {len(kept)} kept, {dropped} repeated dropped"
    if field != "tags":
        reason += (
            "; the survivor's primary stays primary"
            if survivor_has_items
            else "; the survivor had none: the first duplicate's primary stays primary"
        )
    return tuple(kept), FieldChoice(
        field=field, rule=Survivorship.UNION, sources=tuple(sources), reason=reason
    )


def _consents(records: Sequence[Customer]) -> tuple[tuple[Consent, ...], FieldChoice]:
    """The most recent consent per channel (by ``at``; ties: earlier in order)."""
    best: dict[Any, tuple[Consent, int]] = {}
    for index, record in enumerate(records):
        for consent in record.consents:
            current = best.get(consent.channel)
            if current is None or consent.at > current[0].at:
                best[consent.channel] = (consent, index)
    sources = sorted({i for _, i in best.values()})
    choice = FieldChoice(
        field="consents",
        rule=Survivorship.UNION,
        sources=tuple(records[i].id for i in sources),
        reason=f"the most recent consent per channel: {len(best)} channel(s)",
    )
    return tuple(c for c, _ in best.values()), choice


def _currency_and_limit(
    rule: Survivorship, records: Sequence[Customer]
) -> tuple[dict[str, Any], list[FieldChoice]]:
    """``currency`` and ``credit_limit`` from one record, chosen by ``rule`` as if they were one field.

    Taken separately they could come from two records (a EUR currency with a USD limit); a
    record counts as having a value when it has either.
    """
    pairs = [(r.currency, r.credit_limit) for r in records]
    value, choice = _pick("currency", rule, records, [None if p == (None, None) else p for p in pairs])
    currency, limit = pairs[0] if value is None else value
    if choice.sources:
        choice = attrs.evolve(choice, reason=f"{choice.reason}; currency and credit_limit are taken together")
    return {"currency": currency, "credit_limit": limit}, [
        choice,
        attrs.evolve(choice, field="credit_limit"),
    ]


def _custom(rules: MergeRules, records: Sequence[Customer]) -> tuple[dict[str, Any], list[FieldChoice]]:
    keys = list(dict.fromkeys(k for r in records for k in r.custom))
    merged: dict[str, Any] = {}
    choices: list[FieldChoice] = []
    for key in keys:
        field = f"{_CUSTOM_PREFIX}{key}"
        rule = rules.rule_for(field)
        pick_rule = Survivorship.KEEP_NON_EMPTY if rule is Survivorship.UNION else rule
        values = [r.custom.get(key) for r in records]
        value, choice = _pick(field, pick_rule, records, values)
        choice = attrs.evolve(choice, rule=rule)
        if rule is Survivorship.KEEP_SURVIVOR and key not in records[0].custom:
            choice = attrs.evolve(
                choice, sources=(), reason="the rule keeps the survivor's, which has no such key"
            )
        else:
            merged[key] = value
        choices.append(choice)
    return merged, choices


def plan_merge(
    survivor: Customer, duplicates: Sequence[Customer], rules: MergeRules | None = None
) -> MergePlan:
    """Decide the merged customer: the survivor's id and version, each field by ``rules``.

    Pure: reads nothing, writes nothing. The merged customer's ``created_at`` is the earliest
    of the records' (the person was known since then). Duplicates are consulted in the order given.

    Args:
        survivor: the customer that stays.
        duplicates: the customers merged into it (at least one; none the survivor, no repeats).
        rules: survivorship rules; `MergeRules()` by default.

    Raises:
        ValidationError: bad input (listing every problem), or a merged value the model refuses.
    """
    rules = MergeRules() if rules is None else rules
    errors: list[FieldError] = []
    if not isinstance(survivor, Customer):
        raise ValidationError("survivor", f"must be a Customer, not {type(survivor).__name__}")
    if isinstance(duplicates, Customer) or not isinstance(duplicates, Sequence):
        raise ValidationError("duplicates", "must be a list of customers")
    errors += [
        FieldError(f"duplicates[{i}]", f"must be a Customer, not {type(d).__name__}")
        for i, d in enumerate(duplicates)
        if not isinstance(d, Customer)
    ]
    if errors:
        raise ValidationError.from_errors(errors)
    _check_group(survivor.id, [d.id for d in duplicates], "duplicates")
    records = [survivor, *duplicates]
    values: dict[str, Any] = {}
    choices: list[FieldChoice] = []
    for field in MERGEABLE_FIELDS:
        if field == "custom":
            values[field], custom_choices = _custom(rules, records)
            choices += custom_choices
            continue
        if field in _TOGETHER:
            if field == _TOGETHER[0]:
                paired, paired_choices = _currency_and_limit(rules.rule_for(field), records)
                values.update(paired)
                choices += paired_choices
            continue
        rule = rules.rule_for(field)
        if rule is Survivorship.UNION:
            value, choice = _consents(records) if field == "consents" else _union(field, records)
        else:
            value, choice = _pick(field, rule, records, [getattr(r, field) for r in records])
        values[field] = value
        choices.append(choice)
    created = [(r.created_at, i) for i, r in enumerate(records) if r.created_at is not None]
    if created:
        at, index = min(created)
        values["created_at"] = at
        choices.append(
            FieldChoice(
                field="created_at",
                rule=None,
                sources=(records[index].id,),
                reason="the earliest record: the customer is known since then",
            )
        )
    try:
        merged = attrs.evolve(survivor, **values)
    except ValidationError as exc:
        raise exc.prefixed("merged") from None
    return MergePlan(
        survivor_id=survivor.id,
        duplicate_ids=tuple(d.id for d in duplicates),
        merged=merged,
        choices=tuple(sorted(choices, key=lambda c: c.field)),
    )


def _check_group(survivor_id: Any, duplicate_ids: Any, path: str) -> tuple[str, tuple[str, ...]]:
    """Check a survivor id and duplicate ids together, reporting every problem at once."""
    errors: list[FieldError] = []
    try:
        survivor_id = check_id(survivor_id, "survivor_id")
    except ValidationError as exc:
        errors += exc.errors
    if isinstance(duplicate_ids, str) or not isinstance(duplicate_ids, Iterable):
        if isinstance(duplicate_ids, str):
            what = "not one string"
        else:
            what = "got None" if duplicate_ids is None else f"got {type(duplicate_ids).__name__}"
        raise ValidationError.from_errors([*errors, FieldError(path, f"must be a list of ids, {what}")])
    ids: list[str] = []
    for index, value in enumerate(duplicate_ids):
        try:
            ids.append(check_id(value, f"{path}[{index}]"))
        except ValidationError as exc:
            errors += exc.errors
    if not ids and not errors:
        errors.append(FieldError(path, "name at least one duplicate to merge"))
    for index, value in enumerate(ids):
        if value == survivor_id:
            errors.append(FieldError(f"{path}[{index}]", f"{value!r} is the survivor"))
        elif value in ids[:index]:
            errors.append(FieldError(f"{path}[{index}]", f"{value!r} is named twice"))
    if errors:
        raise ValidationError.from_errors(errors)
    return survivor_id, tuple(ids)


# --- the shell -------------------------------------------------------------------------------------

_BATCH = 500


def linked_records(uow: UnitOfWork, aggregate: Aggregate[Any], customer_ids: Sequence[str]) -> Iterator[Any]:
    """Every record of ``aggregate`` linked to one of ``customer_ids``, in id order, a page at a time.

    Pages by id, so the caller may change or delete each record as it goes.
    """
    if aggregate.customer_field is None:
        raise ValidationError("aggregate", f"{aggregate.name} records are not linked to customers")
    repo = uow.repository(aggregate)
    where = Field(aggregate.customer_field).in_(list(customer_ids))
    after: str | None = None
    while True:
        page_where = where if after is None else where & (Field("id") > after)
        page = repo.find(page_where, order_by=["id"], limit=_BATCH)
        yield from page
        if len(page) < _BATCH:
            return
        after = page[-1].id


def merge_customers(
    uow: UnitOfWork, survivor_id: str, duplicate_ids: Sequence[str], rules: MergeRules | None = None
) -> MergeReport:
    """Merge customers into ``survivor_id`` in ``uow``; the caller commits (nothing is written until then).

    Deletes the duplicates (each at the version read, so a change made to one meanwhile is
    refused, not lost), moves every record linked to them (each aggregate of `CUSTOMER_LINKS`) to
    the survivor, saves the merged survivor (see `plan_merge`) and records `CustomersMerged`.
    If anything fails, roll the unit of work back and nothing has changed.

    Args:
        uow: an open unit of work.
        survivor_id: the customer that stays.
        duplicate_ids: the customers merged into it, in the order `KEEP_NON_EMPTY` consults them.
        rules: survivorship rules; `MergeRules()` by default.

    Raises:
        ValidationError: no duplicates, a repeated id, the survivor among the duplicates (all reported).
        NotFound: the survivor or a duplicate does not exist.
        ConcurrencyError: another unit of work changed one of the records meanwhile.
    """
    survivor_id, dup_ids = _check_group(survivor_id, duplicate_ids, "duplicate_ids")
    survivor = uow.customers.get(survivor_id)
    duplicates = [uow.customers.get(i) for i in dup_ids]
    plan = plan_merge(survivor, duplicates, rules)
    # The duplicates go first, each only at the version the plan read: a change made to one
    # meanwhile raises ConcurrencyError instead of being lost. Their linked records are looked
    # up afterwards, so the window in which another unit of work can link a new one is short.
    for duplicate in duplicates:
        uow.customers.delete(duplicate.id, expected_version=duplicate.version)
    moved: dict[str, int] = {}
    for aggregate in CUSTOMER_LINKS:
        assert aggregate.customer_field is not None
        repo = uow.repository(aggregate)
        count = 0
        for record in linked_records(uow, aggregate, dup_ids):
            setattr(record, aggregate.customer_field, survivor_id)
            repo.save(record)
            count += 1
        moved[aggregate.attribute] = count
    merged = attrs.evolve(plan.merged)
    uow.customers.save(merged)
    event = CustomersMerged(
        aggregate_id=survivor_id, occurred_at=uow.clock.now(), duplicate_ids=dup_ids, moved=dict(moved)
    )
    uow.record(event)
    return MergeReport(survivor=merged, duplicate_ids=dup_ids, moved=moved, choices=plan.choices, event=event)
