"""Field checks for domain classes: every bad field is reported at once, on build and on assignment.

attrs stops at the first failing validator; CRM users fixing a form want every problem in one go.
A field declares its check with `checked(...)`; `run_checks` (called from ``__attrs_post_init__``)
runs them all and raises one `ValidationError` listing each bad field; `check_on_setattr` keeps an
entity valid when a field is assigned later.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import attrs

from crmcore.clock import require_aware
from crmcore.errors import FieldError, ValidationError, join_path

__all__ = [
    "Check",
    "JsonValue",
    "MAX_JSON_INT",
    "a_date",
    "check_on_setattr",
    "checked",
    "custom_fields",
    "instance_of",
    "json_value",
    "one_of",
    "optional",
    "run_checks",
    "tags_check",
    "text",
    "trusted",
    "tuple_of",
    "utc_datetime",
    "version_number",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
Check = Callable[[Any, str], Any]
"""A check takes (value, field path) and returns the normalized value or raises ValidationError."""

_CHECK_KEY = "crmcore_check"
_trusted: ContextVar[bool] = ContextVar("crmcore_trusted", default=False)


@contextmanager
def trusted() -> Iterator[None]:
    """Skip field checks while loading rows this library wrote itself (already checked on write)."""
    token = _trusted.set(True)
    try:
        yield
    finally:
        _trusted.reset(token)


def checked(check: Check, **kwargs: Any) -> Any:
    """An attrs field whose value `check` normalizes and validates (see `run_checks`)."""
    metadata = dict(kwargs.pop("metadata", {}))
    metadata[_CHECK_KEY] = check
    return attrs.field(metadata=metadata, **kwargs)


def run_checks(instance: object) -> None:
    """Run every field check of ``instance``, store normalized values, raise all failures at once."""
    if _trusted.get():
        return
    errors: list[FieldError] = []
    for field in attrs.fields(type(instance)):  # type: ignore[arg-type]
        check = field.metadata.get(_CHECK_KEY)
        if check is None:
            continue
        try:
            value = check(getattr(instance, field.name), field.name)
        except ValidationError as exc:
            errors.extend(exc.errors)
        else:
            object.__setattr__(instance, field.name, value)
    if errors:
        raise ValidationError.from_errors(errors)


def check_on_setattr(instance: object, attribute: attrs.Attribute[Any], value: Any) -> Any:
    """attrs ``on_setattr`` hook: assignments pass the same check as construction."""
    check = attribute.metadata.get(_CHECK_KEY)
    return value if check is None else check(value, attribute.name)


# --- reusable checks -------------------------------------------------------------------------


def text(*, max_length: int = 1000, required: bool = False, strip: bool = True) -> Check:
    """A string check: trimmed, no NUL or other control characters but tab/newline, bounded length."""

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise ValidationError(path, f"must be a string, not {type(value).__name__}")
        if strip:
            value = value.strip()
        if required and not value:
            raise ValidationError(path, "is required")
        if len(value) > max_length:
            raise ValidationError(path, f"must be at most {max_length} characters, got {len(value)}")
        if _CONTROL.search(value):
            raise ValidationError(path, "contains control characters")
        checked_text: str = value
        return checked_text

    return check


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def optional(check: Check) -> Check:
    """``None`` passes; anything else goes through ``check``."""

    def optional_check(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return optional_check


def utc_datetime(value: Any, path: str) -> datetime:
    """An aware datetime, normalized to UTC so every store returns the same value."""
    return require_aware(value, path).astimezone(UTC)


def a_date(value: Any, path: str) -> date:
    """A calendar date (not a datetime)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValidationError(path, f"must be a date, not {type(value).__name__}")
    return value


def instance_of(cls: type[T]) -> Check:
    """The value must already be a ``cls`` (built, hence checked, by its own class)."""

    def check(value: Any, path: str) -> T:
        if not isinstance(value, cls):
            raise ValidationError(path, f"must be a {cls.__name__}, not {type(value).__name__}")
        return value

    return check


def tuple_of(item: Check, *, unique: bool = False, sort: bool = False) -> Check:
    """A list whose items each pass ``item``, stored as a tuple; optionally deduplicated and sorted."""

    def check(value: Any, path: str) -> tuple[Any, ...]:
        if isinstance(value, str | bytes | dict) or not isinstance(value, list | tuple | set | frozenset):
            raise ValidationError(path, f"must be a list, not {type(value).__name__}")
        errors: list[FieldError] = []
        items: list[Any] = []
        for index, element in enumerate(value):
            try:
                items.append(item(element, f"{path}[{index}]"))
            except ValidationError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ValidationError.from_errors(errors)
        if unique:
            items = list(dict.fromkeys(items))
        if sort:
            items.sort()
        return tuple(items)

    return check


MAX_JSON_INT = 2**53 - 1
"""The largest integer every JSON reader (JavaScript, SQL casts to double) keeps exact."""


def json_value(value: Any, path: str) -> JsonValue:
    """A JSON-ready value (None, bool, int, finite float, str, list, dict with string keys), copied."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            raise ValidationError(
                path, f"{value} is beyond +-(2^53 - 1), where JSON numbers stop being exact"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, f"{value} is not a finite number")
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError(path, "contains a NUL character")
        return value
    if isinstance(value, list | tuple):
        return [json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, v in value.items():
            if not isinstance(key, str) or not key or "\x00" in key:
                raise ValidationError(path, f"keys must be non-empty strings, got {key!r}")
            out[key] = json_value(v, join_path(path, key))
        return out
    raise ValidationError(
        path,
        f"{type(value).__name__} is not a JSON value (use str, int, float, bool, None, list or dict)",
    )


def one_of(cls: type[E]) -> Check:
    """A member of the enum ``cls``, or its value; the error lists the valid values."""

    def check(value: Any, path: str) -> E:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ValidationError(path, f"{value!r} is not one of {valid}") from None

    return check


_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def custom_fields(value: Any, path: str) -> dict[str, JsonValue]:
    """Custom fields: identifier keys (so conditions can name them) with JSON values."""
    if not isinstance(value, dict):
        raise ValidationError(path, f"must be a dict, not {type(value).__name__}")
    errors: list[FieldError] = []
    out: dict[str, JsonValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CUSTOM_KEY.match(key):
            errors.append(FieldError(path, f"key {key!r} must be letters, digits and _ (not first a digit)"))
            continue
        try:
            out[key] = json_value(item, join_path(path, key))
        except ValidationError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationError.from_errors(errors)
    return out


def version_number(value: Any, path: str) -> int:
    """An optimistic-concurrency version: a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(path, f"must be a non-negative integer, got {value!r}")
    return value


tags_check: Check = tuple_of(text(max_length=64, required=True), unique=True, sort=True)
"""Tags: non-empty strings of up to 64 characters, stored sorted and without repeats."""
