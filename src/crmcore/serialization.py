"""The library's one cattrs converter: domain objects and config to JSON-ready data and back.

Never cattrs' global converter: hosts may configure that one for their own types.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, get_origin

import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from crmcore.clock import require_aware
from crmcore.conditions import register_condition_hooks
from crmcore.errors import FieldError, ValidationError, join_path
from crmcore.money import Money, _to_decimal

__all__ = ["configure_converter", "converter", "make_converter", "structure", "unstructure"]

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    """A new converter with crmcore's encoding rules (see `configure_converter`)."""
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    configure_converter(conv)
    return conv


def configure_converter(conv: cattrs.Converter) -> None:
    """Teach ``conv`` crmcore's encoding rules.

    - ``datetime`` <-> ISO 8601 string with its UTC offset; naive datetimes are refused both ways.
    - ``date`` <-> ``YYYY-MM-DD``.
    - ``Decimal`` <-> string (exact); ints and numeric strings are accepted, floats refused as inexact.
    - ``Money`` <-> ``{"amount": "19.99", "currency": "EUR"}``.
    - ``timedelta`` <-> a number of seconds (int when whole; exact to the microsecond).
    - ``Enum`` <-> its value; an unknown value lists the valid ones.
    - ``str``, ``int``, ``float``, ``bool`` are strict: ``5`` is not silently the string ``"5"``.
    - fields typed as tuples or sequences unstructure to lists, and refuse a string or an object
      where a list belongs (cattrs alone would split ``"vip"`` into characters).
    - conditions (`crmcore.conditions`) <-> tagged objects ``{"type": "compare", ...}``; values that
      JSON lacks are tagged: ``{"$datetime": ...}``, ``{"$date": ...}``, ``{"$money": {...}}``.
    """
    conv.register_unstructure_hook(datetime, lambda v: require_aware(v).isoformat())
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(date, lambda v: v.isoformat())
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Money, lambda m: {"amount": str(m.amount), "currency": m.currency})
    conv.register_structure_hook(Money, _structure_money)
    conv.register_unstructure_hook(timedelta, _unstructure_timedelta)
    conv.register_structure_hook(timedelta, _structure_timedelta)
    conv.register_unstructure_hook_func(_is_enum, lambda v: v.value)
    conv.register_structure_hook_func(_is_enum, _structure_enum)
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(bool, _strict(bool))
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook_factory(_is_list_like, _no_text_as_list)
    register_condition_hooks(conv)


def _is_list_like(t: Any) -> bool:
    return bool(is_sequence(t))


def _no_text_as_list(t: Any, conv: cattrs.Converter) -> Any:
    """cattrs would split ``"vip"`` into ``["v", "i", "p"]``; a string where a list belongs is an error."""
    tuple_type = get_origin(t) is tuple
    base = homogenous_tuple_structure_factory(t, conv) if tuple_type else list_structure_factory(t, conv)

    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, str | bytes | dict):
            raise ValidationError("", f"expected a list, got {type(value).__name__}")
        return base(value, t)

    return hook


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _strict(cls: type[T]) -> Any:
    def hook(value: Any, _: Any) -> T:
        if not isinstance(value, cls):
            raise ValidationError("", f"expected {cls.__name__}, got {type(value).__name__}")
        return value

    return hook


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("", f"expected int, got {type(value).__name__}")
    return value


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError("", f"expected a number, got {type(value).__name__}")
    return float(value)


def _structure_datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("", f"{value!r} is not an ISO 8601 datetime") from None
    try:
        return require_aware(value, "")
    except ValidationError as exc:
        raise ValidationError("", exc.reason) from None


def _unstructure_timedelta(value: timedelta) -> int | float:
    micros = value // timedelta(microseconds=1)
    seconds, rest = divmod(micros, 1_000_000)
    return seconds if rest == 0 else micros / 1_000_000


def _structure_timedelta(value: Any, _: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError("", f"expected a number of seconds, got {value!r}")
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise ValidationError("", f"{value!r} seconds is out of range") from None


def _structure_date(value: Any, _: Any) -> date:
    if isinstance(value, datetime):
        raise ValidationError("", "expected a date, got a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError("", f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)")


def _structure_decimal(value: Any, _: Any) -> Decimal:
    try:
        return _to_decimal(value)
    except ValidationError as exc:
        raise ValidationError("", exc.reason) from None


def _structure_money(value: Any, _: Any) -> Money:
    if not isinstance(value, dict):
        raise ValidationError("", f"expected an object with amount and currency, got {type(value).__name__}")
    unknown = set(value) - {"amount", "currency"}
    missing = {"amount", "currency"} - set(value)
    problems = [FieldError(k, "unknown field") for k in sorted(unknown)]
    problems += [FieldError(k, "is required") for k in sorted(missing)]
    if problems:
        raise ValidationError.from_errors(problems)
    return Money(value["amount"], value["currency"])


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in cls)
        raise ValidationError("", f"{value!r} is not one of {valid}") from None


def _note_path(exc: BaseException) -> str:
    path = ""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            path = join_path(path, note.name)
        elif isinstance(note, IterableValidationNote):
            path = join_path(path, f"[{note.index}]")
    return path


def field_errors(exc: BaseException, path: str = "") -> list[FieldError]:
    """Flatten a cattrs error tree into `FieldError`s with dotted paths to each bad field."""
    path = join_path(path, _note_path(exc))
    if isinstance(exc, ForbiddenExtraKeysError):
        return [FieldError(join_path(path, k), "unknown field") for k in sorted(exc.extra_fields)]
    if isinstance(exc, ClassValidationError | IterableValidationError | ExceptionGroup):
        out: list[FieldError] = []
        for sub in exc.exceptions:
            out.extend(field_errors(sub, path))
        return out
    if isinstance(exc, ValidationError):
        return [FieldError(join_path(path, e.path), e.reason) for e in exc.errors]
    if isinstance(exc, KeyError):
        return [FieldError(path, "is required")]
    return [FieldError(path, f"invalid value ({type(exc).__name__}: {exc})")]


converter = make_converter()
"""The converter crmcore uses everywhere; `make_converter()` gives a private copy to extend."""


def structure(data: Any, cls: type[T], *, conv: cattrs.Converter | None = None) -> T:
    """Build a ``cls`` from plain data; bad data raises `ValidationError` naming each bad path."""
    try:
        return (conv or converter).structure(data, cls)
    except (
        ValidationError,
        ClassValidationError,
        IterableValidationError,
        ExceptionGroup,
        KeyError,
    ) as exc:
        raise ValidationError.from_errors(field_errors(exc) or [FieldError("", str(exc))]) from None


def unstructure(obj: Any, *, conv: cattrs.Converter | None = None) -> Any:
    """Plain, JSON-ready data for ``obj`` (dicts, lists, strings, numbers, booleans, None)."""
    return (conv or converter).unstructure(obj)
