"""Value objects for reaching a person: email addresses, phone numbers, postal addresses, consent.

Emails are checked and normalized with ``email-validator`` (syntax only, never the network);
phone numbers are parsed with ``phonenumbers`` and stored in E.164, so the same number written
two ways is stored once and duplicates can be found by exact match.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import attrs
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crmcore.errors import ValidationError
from crmcore.validation import checked, instance_of, one_of, run_checks, text, tuple_of, utc_datetime

__all__ = [
    "Address",
    "Consent",
    "ConsentChannel",
    "EmailAddress",
    "PhoneNumber",
    "default_phone_region",
    "normalize_email",
    "normalize_phone",
    "phone_region",
]

_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_region: ContextVar[str | None] = ContextVar("crmcore_phone_region", default=None)


def default_phone_region() -> str | None:
    """The region national phone numbers are read in, set with `phone_region` (None: none)."""
    return _region.get()


@contextmanager
def phone_region(region: str | None) -> Iterator[None]:
    """Read phone numbers without a ``+`` country code as numbers of ``region`` (e.g. ``"DE"``).

    A context variable, so threads and async tasks each keep their own setting; imports and the
    `crmcore.open` facade set it from their ``phone_region`` option.
    """
    token = _region.set(None if region is None else _check_region(region, "phone_region"))
    try:
        yield
    finally:
        _region.reset(token)


def _check_region(value: Any, path: str) -> str:
    region = text(max_length=2, required=True)(value, path).upper()
    if not _COUNTRY.match(region) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(path, f"{value!r} is not a region phonenumbers knows (ISO 3166-1 alpha-2)")
    return str(region)


def normalize_email(value: Any, path: str = "email") -> str:
    """An email address checked for syntax and normalized (domain lower-cased, Unicode NFC).

    Raises:
        ValidationError: naming ``path``, the value and what is wrong with it.
    """
    address: str = text(max_length=254, required=True)(value, path)
    try:
        normalized: str = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationError(path, f"{address!r} is not an email address: {exc}") from None
    return normalized


def normalize_phone(value: Any, path: str = "phone", region: str | None = None) -> tuple[str, str]:
    """A phone number as (E.164 number, extension).

    Numbers without ``+`` are read in ``region``, else in `default_phone_region`. Numbers of an
    impossible length for their country are refused; whether a range is assigned is not checked
    (ranges change, and test numbers such as 555 ones are common).

    Raises:
        ValidationError: the value, and why it is not a phone number.
    """
    number: str = text(max_length=40, required=True)(value, path)
    region = region or _region.get()
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and not region:
            reason = "has no +country code and no default region is set (see crmcore.customers.phone_region)"
        else:
            reason = f"is not a phone number ({exc._msg})"
        raise ValidationError(path, f"{number!r} {reason}") from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:  # local-only numbers cannot be dialled
        raise ValidationError(path, f"{number!r} has an impossible length for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), parsed.extension or ""


def _label(value: Any, path: str) -> str:
    label: str = text(max_length=40)(value, path)
    return label


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(path, f"must be True or False, not {type(value).__name__}")
    return value


def _country(value: Any, path: str) -> str:
    code: str = text(max_length=100, required=True)(value, path).upper()
    if not _COUNTRY.match(code):
        raise ValidationError(path, f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


@attrs.frozen(kw_only=True)
class EmailAddress:
    """An email address with a label, normalized by ``email-validator`` (syntax only)."""

    address: str = checked(normalize_email)
    label: str = checked(_label, default="work")
    primary: bool = checked(_flag, default=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def _e164(value: Any, path: str) -> str:
    return normalize_phone(value, path)[0]


def _extension(value: Any, path: str) -> str:
    ext: str = text(max_length=10)(value, path)
    if ext and not ext.isdigit():
        raise ValidationError(path, f"{ext!r} must be digits")
    return ext


@attrs.frozen(kw_only=True)
class PhoneNumber:
    """A phone number stored in E.164 (``+4930123456``), with an extension and a label.

    Give it in any common format; one without ``+`` needs a region (`phone_region`). An
    extension written in the number (``ext. 12``) moves to ``extension``.
    """

    number: str = checked(_e164)
    label: str = checked(_label, default="work")
    primary: bool = checked(_flag, default=False)
    extension: str = checked(_extension, default="")

    def __attrs_post_init__(self) -> None:
        if not self.extension and isinstance(self.number, str) and _HAS_EXTENSION.search(self.number):
            try:
                ext = normalize_phone(self.number, "number")[1]
            except ValidationError:
                ext = ""  # run_checks reports the bad number
            object.__setattr__(self, "extension", ext)
        run_checks(self)


_HAS_EXTENSION = re.compile(r"[A-Za-z#;,]")


@attrs.frozen(kw_only=True)
class Address:
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    country: str = checked(_country)
    line1: str = checked(text(max_length=200), default="")
    line2: str = checked(text(max_length=200), default="")
    city: str = checked(text(max_length=100), default="")
    region: str = checked(text(max_length=100), default="")
    postal_code: str = checked(text(max_length=20), default="")
    label: str = checked(_label, default="main")
    primary: bool = checked(_flag, default=False)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


class ConsentChannel(enum.Enum):
    """Channels a person may agree (or refuse) to be contacted on."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POST = "post"


@attrs.frozen(kw_only=True)
class Consent:
    """Whether a person agreed to contact on one channel, where that was given, and when."""

    channel: ConsentChannel = checked(one_of(ConsentChannel))
    granted: bool = checked(_flag)
    source: str = checked(text(max_length=200, required=True))
    """Where the consent was given or withdrawn, e.g. ``"signup form"``, ``"call 2026-03-01"``."""
    at: datetime = checked(utc_datetime)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


def one_primary(cls: type[Any], kind: str) -> Any:
    """A check for a list of contact points of which at most one is primary."""
    items_check = tuple_of(instance_of(cls))

    def check(value: Any, path: str) -> tuple[Any, ...]:
        items: tuple[Any, ...] = items_check(value, path)
        if sum(1 for i in items if i.primary) > 1:
            raise ValidationError(path, f"at most one of the {kind} can be primary")
        return items

    return check


def consents_check(value: Any, path: str) -> tuple[Consent, ...]:
    """At most one consent per channel (the current state), kept in channel order."""
    items: tuple[Consent, ...] = tuple_of(instance_of(Consent))(value, path)
    seen: set[ConsentChannel] = set()
    for index, consent in enumerate(items):
        if consent.channel in seen:
            raise ValidationError(f"{path}[{index}]", f"a second consent for {consent.channel.value!r}")
        seen.add(consent.channel)
    order = list(ConsentChannel)
    return tuple(sorted(items, key=lambda c: order.index(c.channel)))


def primary(items: Sequence[Any]) -> Any:
    """The item flagged primary, else the first, else None."""
    for item in items:
        if item.primary:
            return item
    return items[0] if items else None
