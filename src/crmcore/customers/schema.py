"""Custom-field schemas and validation rules an installation declares, as plain data.

A `FieldSchema` declares the custom fields of one entity (their types, whether they are
required, the choices), so a UI can render a form and the library can refuse bad ``custom``
dicts. A `ValidationRule` is a condition that must hold ("companies need a country"). `DataRules`
bundles both; `DataRules.check` is pure, and a `CRM` given ``rules=`` runs it in the repositories
before anything is written.
"""

from __future__ import annotations

import enum
import re
import typing as t
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import attrs

from crmcore.conditions import Condition, FieldSet, check_condition, evaluate
from crmcore.customers.contact import CONTACT_FIELDS
from crmcore.customers.customer import CUSTOMER_FIELDS
from crmcore.customers.interaction import INTERACTION_FIELDS
from crmcore.customers.order import ORDER_FIELDS
from crmcore.errors import FieldError, ValidationError, join_path
from crmcore.service.ticket import SURVEY_FIELDS, TICKET_FIELDS
from crmcore.validation import (
    checked,
    instance_of,
    json_value,
    one_of,
    run_checks,
    text,
    tuple_of,
    utc_datetime,
)

__all__ = [
    "CustomFieldDef",
    "CustomFieldType",
    "DataRules",
    "ENTITY_FIELDS",
    "FieldSchema",
    "UnknownKeys",
    "ValidationRule",
]

ENTITY_FIELDS: dict[str, FieldSet] = {
    "customer": CUSTOMER_FIELDS,
    "contact": CONTACT_FIELDS,
    "interaction": INTERACTION_FIELDS,
    "order": ORDER_FIELDS,
    "ticket": TICKET_FIELDS,
    "survey": SURVEY_FIELDS,
}
"""Entities that schemas and rules may name, with the fields their rules' conditions may use.

Packages that add entities with custom fields (deals, tickets) add theirs here, under the name of
their storage aggregate.
"""

_BY_CLASS = {fields.entity: name for name, fields in ENTITY_FIELDS.items()}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


class CustomFieldType(enum.Enum):
    """What a custom field holds, as JSON.

    ``decimal`` is an exact number written as a string (``"19.99"``); ``date`` an ISO date string
    (``"2025-06-30"``); ``multi_choice`` a list of distinct choices.
    """

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"


class UnknownKeys(enum.Enum):
    """What a schema does with ``custom`` keys it does not declare."""

    REFUSE = "refuse"
    ALLOW = "allow"


def _key(value: t.Any, path: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise ValidationError(path, f"{value!r} must be letters, digits and _ (not first a digit)")
    return value


def _type_problem(ftype: CustomFieldType, value: t.Any, choices: Sequence[str]) -> str | None:
    """Why ``value`` (not None) is no ``ftype`` value, or None if it is one."""
    if ftype is CustomFieldType.TEXT:
        return None if isinstance(value, str) else f"must be text, not {_json_name(value)}"
    if ftype is CustomFieldType.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok:
            return None
        return (
            f"must be a whole number, got {value!r}"
            if isinstance(value, float)
            else (f"must be a whole number, not {_json_name(value)}")
        )
    if ftype is CustomFieldType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"must be a number, not {_json_name(value)}"
    if ftype is CustomFieldType.DECIMAL:
        if isinstance(value, str) and _DECIMAL.match(value):
            return None
        return f"must be a decimal number written as text, such as '19.99'; got {value!r}"
    if ftype is CustomFieldType.BOOLEAN:
        return None if isinstance(value, bool) else f"must be true or false, not {_json_name(value)}"
    if ftype is CustomFieldType.DATE:
        if isinstance(value, str) and _DATE.match(value):
            try:
                date.fromisoformat(value)
                return None
            except ValueError:
                pass
        return f"must be a date written YYYY-MM-DD; got {value!r}"
    valid = ", ".join(repr(c) for c in choices)
    if ftype is CustomFieldType.CHOICE:
        if isinstance(value, str) and value in choices:
            return None
        return f"{value!r} is not one of {valid}"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"must be a list of choices ({valid}), not {_json_name(value)}"
    wrong = [v for v in value if v not in choices]
    if wrong:
        return f"{', '.join(repr(w) for w in wrong)} not in {valid}"
    if len(set(value)) != len(value):
        return "repeats a choice"
    return None


def _json_name(value: t.Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


_CHOICE_TYPES = (CustomFieldType.CHOICE, CustomFieldType.MULTI_CHOICE)


@attrs.frozen(kw_only=True)
class CustomFieldDef:
    """One declared custom field: ``custom[key]`` holds a ``type`` value.

    ``label`` and ``help`` are for forms (a UI shows ``key`` when ``label`` is empty); ``default``
    is what a form pre-fills and `FieldSchema.with_defaults` adds (never added silently on write).
    """

    key: str = checked(_key)
    type: CustomFieldType = checked(one_of(CustomFieldType), default=CustomFieldType.TEXT)
    required: bool = False
    choices: tuple[str, ...] = checked(tuple_of(text(max_length=200, required=True)), default=())
    label: str = checked(text(max_length=200), default="")
    help: str = checked(text(max_length=2000), default="")
    default: t.Any = checked(json_value, default=None)
    """A JSON value of the field's type, or None for no default."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors: list[FieldError] = []
        if not isinstance(self.required, bool):
            errors.append(FieldError("required", "must be true or false"))
        if self.type in _CHOICE_TYPES:
            if not self.choices:
                errors.append(FieldError("choices", f"a {self.type.value} field needs choices"))
            elif len(set(self.choices)) != len(self.choices):
                errors.append(FieldError("choices", "repeats a choice"))
        elif self.choices:
            errors.append(FieldError("choices", f"only choice fields have choices, not {self.type.value}"))
        if self.default is not None and not errors:
            problem = _type_problem(self.type, self.default, self.choices)
            if problem is not None:
                errors.append(FieldError("default", problem))
        if errors:
            raise ValidationError.from_errors(errors)

    def problem(self, value: t.Any) -> str | None:
        """Why ``value`` cannot be stored in this field, or None if it can (None means unset)."""
        if value is None:
            return "is required" if self.required else None
        return _type_problem(self.type, value, self.choices)


def _defs(value: t.Any, path: str) -> tuple[CustomFieldDef, ...]:
    defs: tuple[CustomFieldDef, ...] = tuple_of(instance_of(CustomFieldDef))(value, path)
    seen: set[str] = set()
    for i, d in enumerate(defs):
        if d.key in seen:
            raise ValidationError(f"{path}[{i}].key", f"{d.key!r} is declared twice")
        seen.add(d.key)
    return defs


def _entity(value: t.Any, path: str) -> str:
    if value not in ENTITY_FIELDS:
        raise ValidationError(path, f"{value!r} is not one of {', '.join(ENTITY_FIELDS)}")
    return t.cast(str, value)


@attrs.frozen(kw_only=True)
class FieldSchema:
    """The declared custom fields of one entity (``customer``, ``contact``, ``interaction``, ``order``).

    ``unknown_keys`` says whether ``custom`` may hold keys the schema does not declare.
    """

    entity: str = checked(_entity, default="customer")
    fields: tuple[CustomFieldDef, ...] = checked(_defs, default=())
    unknown_keys: UnknownKeys = checked(one_of(UnknownKeys), default=UnknownKeys.REFUSE)

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def field(self, key: str) -> CustomFieldDef | None:
        """The definition of ``key``, or None when it is not declared."""
        return next((f for f in self.fields if f.key == key), None)

    def check(self, custom: Mapping[str, t.Any], path: str = "custom") -> list[FieldError]:
        """Every problem of a ``custom`` dict, each at ``custom.<key>`` (pure; empty when valid)."""
        errors: list[FieldError] = []
        for d in self.fields:
            problem = d.problem(custom.get(d.key))
            if problem is not None:
                errors.append(FieldError(join_path(path, d.key), problem))
        if self.unknown_keys is UnknownKeys.REFUSE:
            declared = {d.key for d in self.fields}
            known = ", ".join(sorted(declared)) or "none"
            errors += [
                FieldError(join_path(path, key), f"is not a declared {self.entity} field (declared: {known})")
                for key in custom
                if key not in declared
            ]
        return errors

    def with_defaults(self, custom: Mapping[str, t.Any]) -> dict[str, t.Any]:
        """A copy of ``custom`` with each unset field that has a default set to it (for new objects)."""
        out = dict(custom)
        for d in self.fields:
            if d.default is not None and out.get(d.key) is None:
                out[d.key] = json_value(d.default, d.key)
        return out


def _condition_check(value: t.Any, path: str) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(path, f"must be a condition, not {type(value).__name__}")
    return value


@attrs.frozen(kw_only=True)
class ValidationRule:
    """A condition every ``entity`` object must satisfy, and the message shown when it does not.

    ``Not(Field("kind") == "company") | Field("country").is_not_null()`` reads "companies need a
    country". ``field`` is the path the error is reported at (the field a form highlights); it
    defaults to the rule's ``name``. The condition is checked against the entity's fields when
    the rule is built.
    """

    name: str = checked(text(max_length=100, required=True))
    condition: Condition = checked(_condition_check)
    message: str = checked(text(max_length=500, required=True))
    entity: str = checked(_entity, default="customer")
    field: str = checked(text(max_length=200), default="")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        try:
            check_condition(self.condition, ENTITY_FIELDS[self.entity])
        except ValidationError as exc:
            raise ValidationError.from_errors(
                [FieldError("condition" + e.path.removeprefix("where"), e.reason) for e in exc.errors]
            ) from None

    def holds(self, obj: t.Any, now: datetime | None = None) -> bool:
        """Whether ``obj`` satisfies the rule (``now`` for relative dates)."""
        return evaluate(self.condition, obj, ENTITY_FIELDS[self.entity], now)


def _schemas(value: t.Any, path: str) -> tuple[FieldSchema, ...]:
    schemas: tuple[FieldSchema, ...] = tuple_of(instance_of(FieldSchema))(value, path)
    seen: set[str] = set()
    for i, s in enumerate(schemas):
        if s.entity in seen:
            raise ValidationError(f"{path}[{i}].entity", f"a second schema for {s.entity!r}")
        seen.add(s.entity)
    return schemas


def _rules(value: t.Any, path: str) -> tuple[ValidationRule, ...]:
    rules: tuple[ValidationRule, ...] = tuple_of(instance_of(ValidationRule))(value, path)
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(rules):
        if (r.entity, r.name) in seen:
            raise ValidationError(f"{path}[{i}].name", f"a second {r.entity} rule named {r.name!r}")
        seen.add((r.entity, r.name))
    return rules


@attrs.frozen(kw_only=True)
class DataRules:
    """An installation's custom-field schemas (one per entity) and validation rules."""

    schemas: tuple[FieldSchema, ...] = checked(_schemas, default=())
    rules: tuple[ValidationRule, ...] = checked(_rules, default=())

    def __attrs_post_init__(self) -> None:
        run_checks(self)

    def schema(self, entity: str) -> FieldSchema | None:
        """The custom-field schema of ``entity``, or None when none is declared."""
        return next((s for s in self.schemas if s.entity == entity), None)

    def check(self, obj: t.Any, now: datetime, *, entity: str | None = None) -> list[FieldError]:
        """Every problem of ``obj``: its ``custom`` against the schema, then each failed rule (pure).

        Args:
            obj: a customer, contact, interaction or order.
            now: the current time, for rules with relative dates.
            entity: the entity name; found from the object's type when omitted.

        Raises:
            ValidationError: for an object of no known entity, or a naive ``now``.
        """
        if entity is None:
            entity = _BY_CLASS.get(type(obj).__name__)
            if entity is None:
                raise ValidationError("entity", f"no entity is known for {type(obj).__name__}")
        now = utc_datetime(now, "now")
        errors: list[FieldError] = []
        schema = self.schema(entity)
        if schema is not None:
            errors += schema.check(getattr(obj, "custom", {}))
        errors += [
            FieldError(rule.field or rule.name, rule.message)
            for rule in self.rules
            if rule.entity == entity and not rule.holds(obj, now)
        ]
        return errors

    def validate(self, entity: str, obj: t.Any, now: datetime) -> None:
        """Raise one `ValidationError` listing every problem of ``obj`` (the store's write hook).

        Raises:
            ValidationError: if `check` finds anything.
        """
        if not any(s.entity == entity for s in self.schemas) and not any(
            r.entity == entity for r in self.rules
        ):
            return
        errors = self.check(obj, now, entity=entity)
        if errors:
            raise ValidationError.from_errors(errors)
